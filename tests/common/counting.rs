//! A counting global allocator for the zero-allocation tests: it wraps `System`, and counts
//! only on a thread that switched counting on, so allocations made by the test harness or
//! by other tests on other threads are not counted. Each test crate installs it with
//! `#[global_allocator] static GLOBAL: counting::Counting = counting::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator.
pub struct Counting;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: the allocator can run while this thread's locals are being torn down.
    if ENABLED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` with counting on for this thread; returns its result and the allocations made.
pub fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    ENABLED.with(|e| e.set(true));
    let r = f();
    ENABLED.with(|e| e.set(false));
    (r, COUNT.with(Cell::get))
}

/// Starts counting on this thread, for code that is not one closure (part of an async
/// block on a current-thread runtime); [`stop_counting`] returns the count.
#[allow(dead_code)]
pub fn start_counting() {
    COUNT.with(|c| c.set(0));
    ENABLED.with(|e| e.set(true));
}

/// Stops counting on this thread; the allocations since [`start_counting`].
#[allow(dead_code)]
pub fn stop_counting() -> usize {
    ENABLED.with(|e| e.set(false));
    COUNT.with(Cell::get)
}

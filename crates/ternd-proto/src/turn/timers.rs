//! The timer heap: one live entry per allocation (its next deadline), stale entries
//! skipped when they fire and swept when they pile up.

use std::cmp::Reverse;
use std::time::Instant;

use super::Server;

impl Server {
    /// When [`Server::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Makes sure the allocation's timer fires no later than its next deadline. Only an
    /// earlier deadline pushes a new entry (a later one is handled when the current entry
    /// fires and re-arms), so refreshes and permissions cannot grow the heap: each
    /// allocation has one live entry, plus at most one stale entry per shortening.
    pub(super) fn reschedule(&mut self, idx: u32) {
        if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            let next = a.next_deadline();
            if next < a.scheduled {
                a.scheduled = next;
                self.timers.push(Reverse((next, idx)));
            }
        }
        self.compact_timers();
    }

    /// Most stale timer entries tolerated beyond twice the live allocations.
    pub const TIMER_SLACK: usize = 1024;

    /// A removed allocation, or a shortened deadline, leaves an entry behind until its time
    /// (up to the maximum lifetime). Once stale entries outnumber live ones by
    /// [`Server::TIMER_SLACK`], sweep them (amortised O(1) per entry pushed), so the heap
    /// stays within `2 × allocations + TIMER_SLACK`.
    pub(super) fn compact_timers(&mut self) {
        if self.timers.len() > 2 * self.by_tuple.len() + Self::TIMER_SLACK {
            let slots = &self.slots;
            self.timers.retain(|Reverse((t, i))| {
                slots
                    .get(*i as usize)
                    .and_then(|s| s.as_ref())
                    .is_some_and(|a| a.scheduled == *t)
            });
        }
    }
}

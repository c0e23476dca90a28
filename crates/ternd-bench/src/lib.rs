//! `ternd bench`: a load generator for any RFC 8656 TURN server over UDP.
//!
//! It allocates N relayed addresses (timing the setup, the 401 round trip included), gives
//! each a permission (`--mode send`) or a channel (`--mode channel`) towards an echo peer —
//! by default its own, on 127.0.0.1 — and sends timestamped payloads through the relay at a
//! paced rate. The echo peer reflects them back through the relay, and the generator reports
//! packets per second, Mbit/s, loss and round-trip latency (an HDR histogram), and its own CPU
//! time. At the end it deallocates (Refresh with LIFETIME 0).
//!
//! Threads: one sender (token-bucket pacing over all allocations, non-blocking sockets), one
//! receiver (a current-thread tokio runtime with one task per client socket), the echo peer,
//! and the calling thread, which prints a progress line each second and refreshes the
//! allocations of runs longer than five minutes.
//!
//! The server must allow the echo peer's address: ternd `--allow-peer 127.0.0.1/32`, coturn
//! `--allow-loopback-peers`.

mod args;
mod control;
mod credentials;
pub mod forward;
mod load;
mod peer;
mod report;

use std::time::Duration;

pub use args::{BenchArgs, ForwarderArgs, MetricsUrl, Mode, Rate};
pub use load::run;
pub use report::{Latency, Report, ServerDrops};

/// Long help of `ternd bench`.
pub const LONG_ABOUT: &str = "\
Load generator for any RFC 8656 TURN server over UDP (ternd, coturn, ...).

It allocates --allocations relayed addresses (timing the setup, the 401 round trip \
included), creates a permission (--mode send) or binds a channel (--mode channel) on each \
towards an echo peer, sends timestamped --size-byte payloads at --rate packets per second in \
total for --duration, and reports packets sent/received per second, Mbit/s, loss, round-trip \
latency percentiles and its own CPU time. It deallocates at the end.

The default echo peer is built in and listens on 127.0.0.1: the server must allow that peer \
(ternd: --allow-peer 127.0.0.1/32; coturn: --allow-loopback-peers). Client sockets bind to \
--bind (default 127.0.0.2) so that they never take the server's relay ports on 127.0.0.1.";

/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most allocations.
pub const MAX_ALLOCATIONS: u32 = 20_000;
/// Payload size bounds (the payload carries a 16-byte timestamp header).
pub const MIN_SIZE: usize = 16;
/// Largest payload.
pub const MAX_SIZE: usize = 8192;

const MAGIC: [u8; 4] = *b"tbn1";
const CHANNEL: u16 = 0x4000;
/// Runs longer than this refresh their allocations, permissions and channels.
const REFRESH_AFTER: Duration = Duration::from_secs(300);
const REFRESH_EVERY: Duration = Duration::from_secs(120);

/// Set by SIGINT / SIGTERM (Ctrl-C): every loop stops, and the allocations made so far
/// are deleted before `ternd bench` exits. A second signal exits at once.
static INTERRUPTED: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::LazyLock::new(Default::default);

/// Whether the run was interrupted.
fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes SIGINT and SIGTERM set [`INTERRUPTED`] (the first) or exit with 130 (the second).
fn catch_interrupts() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the exit is armed by the flag the first signal sets.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, INTERRUPTED.clone());
        let _ = signal_hook::flag::register(sig, INTERRUPTED.clone());
    }
}

fn progress(quiet: bool, line: impl FnOnce() -> String) {
    if !quiet {
        eprintln!("{}", line());
    }
}

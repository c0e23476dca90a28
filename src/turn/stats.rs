//! Per-worker counters.
//!
//! Each worker owns one [`Stats`] and is its only writer, so a counter is bumped with a
//! relaxed load and store (no locked read-modify-write); readers sum the workers' values.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the owning worker calls this.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`. Only the owning worker calls this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// The counters of one worker.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: Counter,)*
        }

        /// A point-in-time copy of [`Stats`], summable across workers.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.get(),)* }
            }
        }

        impl std::ops::Add for StatsSnapshot {
            type Output = StatsSnapshot;
            fn add(self, o: StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.wrapping_add(o.$name),)* }
            }
        }
    };
}

stats! {
    /// STUN requests received.
    requests,
    /// STUN indications received.
    indications,
    /// Binding success responses sent.
    binding_responses,
    /// Error responses sent.
    error_responses,
    /// 420 responses sent.
    unknown_attribute_errors,
    /// Packets dropped as malformed (framing, bad fingerprint, disabled RFC 3489).
    malformed,
    /// Other client packets dropped (responses sent to us, ChannelData without a channel, ...).
    dropped,
    /// Client data dropped for lack of a permission.
    client_dropped_no_permission,
    /// Peer datagrams dropped for lack of a permission.
    peer_dropped_no_permission,
    /// Other peer datagrams dropped.
    peer_dropped,
    /// Peers refused by the policy (403 or a dropped Send).
    policy_denied,
    /// 401 and 438 challenges sent.
    auth_challenges,
    /// Requests that failed authentication (including first requests without credentials).
    auth_failures,
    /// Allocations refused by the user quota (486).
    quota_rejections,
    /// Allocations refused for lack of ports or sockets (508).
    capacity_rejections,
    /// Allocations created.
    allocations_created,
    /// Allocations ended.
    allocations_ended,
    /// Packets relayed client to peer.
    relayed_out_packets,
    /// Payload bytes relayed client to peer.
    relayed_out_bytes,
    /// Packets relayed peer to client.
    relayed_in_packets,
    /// Payload bytes relayed peer to client.
    relayed_in_bytes,
}

impl std::iter::Sum for StatsSnapshot {
    fn sum<I: Iterator<Item = StatsSnapshot>>(iter: I) -> StatsSnapshot {
        iter.fold(StatsSnapshot::default(), |a, b| a + b)
    }
}

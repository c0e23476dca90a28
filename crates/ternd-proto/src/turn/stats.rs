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
            /// Responses sent, by request method and response code.
            pub responses: [[Counter; RESPONSE_CODES.len()]; REQUEST_METHODS.len()],
            /// From an Allocate's arrival to its answer (the shell observes it).
            pub allocate_latency: Histogram<{ ALLOCATE_LATENCY_BOUNDS.len() }>,
            /// How long allocations lived, observed when they end.
            pub allocation_duration: Histogram<{ ALLOCATION_DURATION_BOUNDS.len() }>,
        }

        /// A point-in-time copy of [`Stats`], summable across workers.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
            /// Responses sent, by [`REQUEST_METHODS`] then [`RESPONSE_CODES`] index.
            pub responses: [[u64; RESPONSE_CODES.len()]; REQUEST_METHODS.len()],
            /// [`Stats::allocate_latency`].
            pub allocate_latency: HistogramSnapshot<{ ALLOCATE_LATENCY_BOUNDS.len() }>,
            /// [`Stats::allocation_duration`].
            pub allocation_duration: HistogramSnapshot<{ ALLOCATION_DURATION_BOUNDS.len() }>,
        }

        impl Stats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $($name: self.$name.get(),)*
                    responses: std::array::from_fn(|m| std::array::from_fn(|c| self.responses[m][c].get())),
                    allocate_latency: self.allocate_latency.snapshot(),
                    allocation_duration: self.allocation_duration.snapshot(),
                }
            }
        }

        impl std::ops::Add for StatsSnapshot {
            type Output = StatsSnapshot;
            fn add(self, o: StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot {
                    $($name: self.$name.wrapping_add(o.$name),)*
                    responses: std::array::from_fn(|m| {
                        std::array::from_fn(|c| self.responses[m][c].wrapping_add(o.responses[m][c]))
                    }),
                    allocate_latency: self.allocate_latency + o.allocate_latency,
                    allocation_duration: self.allocation_duration + o.allocation_duration,
                }
            }
        }
    };
}

/// Upper bounds, in seconds, of the Allocate latency buckets (+Inf follows).
pub const ALLOCATE_LATENCY_BOUNDS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];
/// Upper bounds, in seconds, of the allocation duration buckets (+Inf follows).
pub const ALLOCATION_DURATION_BOUNDS: [f64; 11] = [
    1.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

// Histogram::bounds tells the two apart by length.
const _: () = assert!(ALLOCATE_LATENCY_BOUNDS.len() != ALLOCATION_DURATION_BOUNDS.len());

/// A histogram with a single writer: a counter per bucket (not cumulative; the last one
/// is +Inf), the count and the sum in microseconds. The bounds are the caller's (one of
/// the constants above, by length).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    buckets: [Counter; N],
    over: Counter,
    sum_us: Counter,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| Counter::default()),
            over: Counter::default(),
            sum_us: Counter::default(),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn bounds() -> &'static [f64] {
        if N == ALLOCATE_LATENCY_BOUNDS.len() {
            &ALLOCATE_LATENCY_BOUNDS
        } else {
            &ALLOCATION_DURATION_BOUNDS
        }
    }

    /// Records one observation. Only the owning worker calls this.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        match Self::bounds().iter().position(|&b| secs <= b) {
            Some(i) if i < N => self.buckets[i].inc(),
            _ => self.over.inc(),
        }
        self.sum_us
            .add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Reads it.
    pub fn snapshot(&self) -> HistogramSnapshot<N> {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            over: self.over.get(),
            sum_us: self.sum_us.get(),
        }
    }
}

/// A point-in-time copy of a [`Histogram`], summable across workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    /// Observations per bucket (not cumulative), by bound.
    pub buckets: [u64; N],
    /// Observations above the last bound.
    pub over: u64,
    /// The sum of the observations, in microseconds.
    pub sum_us: u64,
}

impl<const N: usize> Default for HistogramSnapshot<N> {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; N],
            over: 0,
            sum_us: 0,
        }
    }
}

impl<const N: usize> HistogramSnapshot<N> {
    /// Every observation.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum::<u64>() + self.over
    }
}

impl<const N: usize> std::ops::Add for HistogramSnapshot<N> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].wrapping_add(o.buckets[i])),
            over: self.over.wrapping_add(o.over),
            sum_us: self.sum_us.wrapping_add(o.sum_us),
        }
    }
}

/// Request methods counted separately in [`Stats::responses`]; the last is "other".
pub const REQUEST_METHODS: [&str; 8] = [
    "binding",
    "allocate",
    "refresh",
    "create_permission",
    "channel_bind",
    "connect",
    "connection_bind",
    "other",
];
/// Response codes counted separately in [`Stats::responses`] (0 = success); the last is
/// "other".
pub const RESPONSE_CODES: [u16; 17] = [
    0, 300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 446, 447, 486, 508, 999,
];

/// The [`Stats::responses`] index of a method.
pub fn method_index(method: crate::stun::Method) -> usize {
    use crate::stun::Method;
    match method {
        Method::BINDING => 0,
        Method::ALLOCATE => 1,
        Method::REFRESH => 2,
        Method::CREATE_PERMISSION => 3,
        Method::CHANNEL_BIND => 4,
        Method::CONNECT => 5,
        Method::CONNECTION_BIND => 6,
        _ => 7,
    }
}

/// The [`Stats::responses`] index of a response code (0 = success).
pub fn code_index(code: u16) -> usize {
    RESPONSE_CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(RESPONSE_CODES.len() - 1)
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
    /// Allocates redirected (300 Try Alternate) while draining or over capacity.
    redirects,
    /// Allocates refused because their user was revoked on the cluster (403).
    revoked_rejections,
    /// Allocates that asked the cluster for a verdict on their user's quota.
    admissions_asked,
    /// Allocations refused by the cluster-wide user quota (486).
    cluster_quota_rejections,
    /// Cluster events decided or dropped on the node because the cluster task's queue
    /// was full (admissions by the fallback rule; released entries lapse by lease).
    cluster_fallbacks,
    /// CreatePermission / ChannelBind peers refused by the built-in default deny list.
    peer_denied_default,
    /// ... by an explicit `relay.deny_peer` entry.
    peer_denied_explicit,
    /// ... because the peer is one of the server's own service ports.
    peer_denied_service_port,
    /// Allocations created.
    allocations_created,
    /// Allocations created over a UDP client connection (a part of `allocations_created`).
    allocations_created_udp,
    /// Allocations created over a TCP client connection.
    allocations_created_tcp,
    /// Allocations created over a TLS client connection.
    allocations_created_tls,
    /// Allocations ended (all reasons).
    allocations_ended,
    /// Allocations ended because their lifetime ran out.
    ended_expired,
    /// Allocations deleted by their client (Refresh with LIFETIME 0).
    ended_deleted,
    /// Allocations ended because their TCP/TLS connection closed.
    ended_connection_closed,
    /// Allocations ended by an operator (admin API).
    ended_admin,
    /// Allocations ended at shutdown.
    ended_shutdown,
    /// Requests that failed authentication: no or bad credentials (401).
    auth_unauthorized,
    /// 401s to requests without MESSAGE-INTEGRITY: the challenge every client gets first
    /// (a part of `auth_unauthorized`).
    auth_no_integrity,
    /// 401s for a user no credential source knows.
    auth_unknown_user,
    /// 401s for an expired REST credential.
    auth_expired,
    /// 401s for a MESSAGE-INTEGRITY that does not verify (wrong password or secret).
    auth_wrong_password,
    /// Requests that failed authentication: stale or foreign nonce (438).
    auth_stale_nonce,
    /// Requests that failed authentication: malformed credentials (400).
    auth_bad_request,
    /// Requests with credentials other than their allocation's (441).
    auth_wrong_credentials,
    /// Requests that authenticated.
    auth_ok,
    /// Allocations refused by the total quota (486).
    total_quota_rejections,
    /// Allocations refused by the per-source-IP cap, `max_allocations_per_ip` (486).
    ip_quota_rejections,
    /// Unauthenticated requests (or requests answered 401/438) dropped unanswered by the
    /// per-source-IP limit, `unauth_rate_limit`.
    unauth_rate_limited,
    /// Packets dropped by an allocation's bandwidth limit (max_bps).
    rate_limited,
    /// Packets relayed client to peer.
    relayed_out_packets,
    /// Payload bytes relayed client to peer.
    relayed_out_bytes,
    /// Packets relayed peer to client.
    relayed_in_packets,
    /// Payload bytes relayed peer to client.
    relayed_in_bytes,
    /// Client → peer packets relayed that came as ChannelData (a subset of
    /// `relayed_out_packets`).
    relayed_out_channel_data,
    /// Client → peer packets relayed that came as Send indications (the rest of
    /// `relayed_out_packets`).
    relayed_out_send_indications,
    /// UDP GSO sends of relayed datagrams (one send call for a run of several).
    udp_gso_sends,
    /// Relayed UDP datagrams those GSO sends carried.
    udp_gso_datagrams,
    /// Datagrams the kernel dropped at a UDP listener's receive queue (`SO_RXQ_OVFL`):
    /// lost before ternd could read them.
    listener_rx_queue_drops,
    /// Datagrams the kernel dropped at a relay socket's receive queue (`SO_RXQ_OVFL`).
    relay_rx_queue_drops,
    /// Sends on a UDP listener (to clients) refused because its send buffer was full
    /// (`EAGAIN`); the datagram is dropped, never waited for.
    listener_send_would_block,
    /// Sends on a UDP listener refused for lack of kernel buffers (`ENOBUFS`).
    listener_send_no_buffers,
    /// Sends on a UDP listener that failed otherwise.
    listener_send_other_errors,
    /// Sends on a relay socket (to peers) refused because its send buffer was full.
    relay_send_would_block,
    /// Sends on a relay socket refused for lack of kernel buffers (`ENOBUFS`).
    relay_send_no_buffers,
    /// Sends on a relay socket that failed otherwise.
    relay_send_other_errors,
    /// RFC 6062 peer connections opened by a Connect.
    tcp_connections_opened,
    /// RFC 6062 Connects that failed or timed out (447).
    tcp_connect_failures,
    /// RFC 6062 peer connections accepted on a relay listener (ConnectionAttempt sent).
    tcp_connections_accepted,
    /// RFC 6062 incoming peer connections closed at once (no permission, policy, limit).
    tcp_connections_refused,
    /// RFC 6062 connections bound by a ConnectionBind.
    tcp_connections_bound,
    /// RFC 6062 peer connections closed unbound after 30 s.
    tcp_bind_timeouts,
}

impl std::iter::Sum for StatsSnapshot {
    fn sum<I: Iterator<Item = StatsSnapshot>>(iter: I) -> StatsSnapshot {
        iter.fold(StatsSnapshot::default(), |a, b| a + b)
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn observations_land_in_their_bucket_and_sum() {
        let h = Histogram::<{ ALLOCATE_LATENCY_BOUNDS.len() }>::default();
        h.observe(Duration::from_micros(40));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 1, "<= 50 µs");
        assert_eq!(s.buckets[1], 1, "<= 100 µs (bounds are inclusive)");
        assert_eq!(s.buckets[6], 1, "<= 5 ms");
        assert_eq!(s.over, 1);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_us, 40 + 100 + 3_000 + 5_000_000);
        let d = Histogram::<{ ALLOCATION_DURATION_BOUNDS.len() }>::default();
        d.observe(Duration::from_secs(45));
        assert_eq!(d.snapshot().buckets[3], 1, "<= 60 s");
        assert_eq!((s + s).count(), 8);
    }
}

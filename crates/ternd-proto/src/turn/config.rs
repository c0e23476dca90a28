//! The core's settings ([`CoreConfig`]): relay addresses, RFC 5780 addresses, lifetimes,
//! limits, and the clock anchor that maps `now` to UNIX time.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::allocation::{DEFAULT_MAX_CHANNELS, DEFAULT_MAX_PERMISSIONS};
use super::ports::PortRange;
use crate::stun::channel::ChannelRange;

/// Default of [`CoreConfig::max_allocations_per_ip`].
pub const DEFAULT_MAX_ALLOCATIONS_PER_IP: u32 = 1000;
/// Default of [`CoreConfig::unauth_rate_limit`] (requests per second).
pub const DEFAULT_UNAUTH_RATE_LIMIT: u32 = 200;
/// Default of [`CoreConfig::unauth_rate_burst`] (requests).
pub const DEFAULT_UNAUTH_RATE_BURST: u32 = 1000;

/// Where relay sockets are bound for one address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayAddress {
    /// The local address relay sockets bind to.
    pub bind: IpAddr,
    /// The address advertised in XOR-RELAYED-ADDRESS (differs behind a 1:1 NAT).
    pub advertise: IpAddr,
}

/// RFC 5780 NAT behaviour discovery: the primary and the alternate address, which span
/// four UDP listeners (each IP with each port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc5780 {
    /// The primary IP and port.
    pub primary: SocketAddr,
    /// The alternate IP and port.
    pub alternate: SocketAddr,
}

impl Rfc5780 {
    /// True when `local` is one of the four addresses.
    pub fn serves(&self, local: SocketAddr) -> bool {
        [self.primary.ip(), self.alternate.ip()].contains(&local.ip())
            && [self.primary.port(), self.alternate.port()].contains(&local.port())
    }

    /// The four addresses: primary, primary IP with the alternate port, alternate IP with
    /// the primary port, alternate.
    pub fn addresses(&self) -> [SocketAddr; 4] {
        let (p, a) = (self.primary, self.alternate);
        [
            p,
            SocketAddr::new(p.ip(), a.port()),
            SocketAddr::new(a.ip(), p.port()),
            a,
        ]
    }

    /// `local` with its IP and/or port swapped for the other one.
    pub fn changed(&self, local: SocketAddr, ip: bool, port: bool) -> SocketAddr {
        let other_ip = if local.ip() == self.primary.ip() {
            self.alternate.ip()
        } else {
            self.primary.ip()
        };
        let other_port = if local.port() == self.primary.port() {
            self.alternate.port()
        } else {
            self.primary.port()
        };
        SocketAddr::new(
            if ip { other_ip } else { local.ip() },
            if port { other_port } else { local.port() },
        )
    }
}

/// Longest PADDING put in an RFC 5780 Binding response (the request's own padding, up to
/// this): enough to test fragmentation at Ethernet MTU, never an amplifier.
pub const MAX_RESPONSE_PADDING: usize = 1500;

/// Quotas and per-allocation limits, replaceable at run time (SIGHUP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent allocations per user; 0 = unlimited.
    pub user_quota: u32,
    /// Concurrent allocations on the whole server; 0 = unlimited.
    pub total_quota: u32,
    /// Concurrent allocations per source IP (IPv6: per /64); 0 = unlimited.
    pub max_allocations_per_ip: u32,
    /// Most permissions one allocation may hold.
    pub max_permissions: usize,
    /// Most channels one allocation may bind.
    pub max_channels: usize,
    /// Bandwidth limit per allocation and direction, bytes per second; 0 = unlimited.
    pub max_bps: u64,
}

impl Default for Limits {
    /// The defaults, the configuration's too (`[relay]` in `src/config/schema.rs` reads them).
    fn default() -> Self {
        Self {
            user_quota: 100,
            total_quota: 0,
            max_allocations_per_ip: DEFAULT_MAX_ALLOCATIONS_PER_IP,
            max_permissions: DEFAULT_MAX_PERMISSIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_bps: 0,
        }
    }
}

/// Settings of the core, filled in by the server from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// SOFTWARE attribute to send; `None` sends none.
    pub software: Option<String>,
    /// Answer RFC 3489 clients (no magic cookie).
    pub stun_backward_compatibility: bool,
    /// Valid channel numbers.
    pub channel_range: ChannelRange,
    /// The IPv4 relay address, if IPv4 relaying is on.
    pub relay_v4: Option<RelayAddress>,
    /// The IPv6 relay address, if IPv6 relaying is on.
    pub relay_v6: Option<RelayAddress>,
    /// Relay port range.
    pub ports: PortRange,
    /// Allocation lifetime when the client asks for less (RFC 8656 §7.2).
    pub default_lifetime: Duration,
    /// Longest allocation lifetime granted.
    pub max_lifetime: Duration,
    /// Quotas and per-allocation limits (replaceable at run time through
    /// [`Shared::replace_limits`](super::Shared::replace_limits)).
    pub limits: Limits,
    /// Unauthenticated requests (and 401/438 answers) per second per source IP (IPv6:
    /// per /64), per worker; 0 = no limit. Over it requests are dropped unanswered.
    pub unauth_rate_limit: u32,
    /// Burst of the unauthenticated request limit, in requests.
    pub unauth_rate_burst: u32,
    /// How long a nonce stays valid.
    pub nonce_lifetime: Duration,
    /// A monotonic instant and the UNIX time (seconds) it corresponds to.
    pub clock_anchor: (Instant, u64),
    /// Where to send clients with 300 Try Alternate while draining; `None` answers 508.
    pub alternate_server: Option<SocketAddr>,
    /// RFC 5780 NAT behaviour discovery over UDP; `None`: off.
    pub rfc5780: Option<Rfc5780>,
    /// A cluster counts each user's allocations across nodes: while `user_quota` is set,
    /// an Allocate that passes every local check waits for the cluster's verdict
    /// ([`Command::Admit`](super::Command::Admit), answered with
    /// [`Server::admit`](super::Server::admit)) before it is granted.
    pub cluster_admission: bool,
}

impl CoreConfig {
    /// Settings for a Binding-only core with defaults elsewhere (tests, fuzzing).
    pub fn minimal(anchor: (Instant, u64)) -> Self {
        Self {
            software: None,
            stun_backward_compatibility: false,
            channel_range: ChannelRange::RFC8656,
            relay_v4: None,
            relay_v6: None,
            ports: PortRange {
                lo: 49152,
                hi: 65535,
            },
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            limits: Limits::default(),
            unauth_rate_limit: DEFAULT_UNAUTH_RATE_LIMIT,
            unauth_rate_burst: DEFAULT_UNAUTH_RATE_BURST,
            nonce_lifetime: Duration::from_secs(600),
            clock_anchor: anchor,
            alternate_server: None,
            rfc5780: None,
            cluster_admission: false,
        }
    }

    /// Where relay sockets send to reach `peer`: the advertised (public) form of one of this
    /// server's relayed addresses becomes its bound (private) form, so that relaying between
    /// two allocations of this server stays on the host behind a 1:1 NAT (no hairpinning
    /// needed). The peer policy lets such an address through only while it is a live
    /// relayed address. Other peers are unchanged.
    #[inline]
    pub fn local_form(&self, peer: SocketAddr) -> SocketAddr {
        for r in [self.relay_v4, self.relay_v6].into_iter().flatten() {
            if r.bind != r.advertise && peer.ip() == r.advertise {
                return SocketAddr::new(r.bind, peer.port());
            }
        }
        peer
    }

    /// The reverse of [`CoreConfig::local_form`]: a datagram from one of this server's relay
    /// sockets shows its advertised form, which is what the receiving client permitted.
    #[inline]
    pub fn public_form(&self, peer: SocketAddr) -> SocketAddr {
        for r in [self.relay_v4, self.relay_v6].into_iter().flatten() {
            if r.bind != r.advertise && peer.ip() == r.bind {
                return SocketAddr::new(r.advertise, peer.port());
            }
        }
        peer
    }

    /// The lifetime to grant (RFC 8656 §7.2): the one asked for if it is longer than the
    /// default (capped at the maximum), else the default; never past the credential's
    /// expiry (`expiry_unix`, REST credentials).
    pub fn granted_lifetime(
        &self,
        asked: Option<Duration>,
        expiry_unix: Option<u64>,
        now: Instant,
    ) -> Duration {
        let mut l = match asked {
            Some(a) if a.min(self.max_lifetime) > self.default_lifetime => a.min(self.max_lifetime),
            _ => self.default_lifetime,
        };
        if let Some(exp) = expiry_unix {
            let left = Duration::from_secs(exp.saturating_sub(self.unix_at(now)));
            l = l.min(left);
        }
        l
    }

    /// UNIX seconds at `now`.
    pub fn unix_at(&self, now: Instant) -> u64 {
        let (i, u) = self.clock_anchor;
        if now >= i {
            u + now.duration_since(i).as_secs()
        } else {
            u.saturating_sub(i.duration_since(now).as_secs())
        }
    }

    /// UNIX time in milliseconds at `now` (to the anchor's whole second).
    pub fn unix_ms_at(&self, now: Instant) -> u64 {
        let (i, u) = self.clock_anchor;
        let base = u.saturating_mul(1000);
        if now >= i {
            base.saturating_add(
                u64::try_from(now.duration_since(i).as_millis()).unwrap_or(u64::MAX),
            )
        } else {
            base.saturating_sub(
                u64::try_from(i.duration_since(now).as_millis()).unwrap_or(u64::MAX),
            )
        }
    }

    /// The monotonic instant of UNIX time `unix`.
    pub fn instant_at(&self, unix: u64) -> Instant {
        let (i, u) = self.clock_anchor;
        if unix >= u {
            i + Duration::from_secs((unix - u).min(100 * 365 * 86_400))
        } else {
            i.checked_sub(Duration::from_secs(u - unix)).unwrap_or(i)
        }
    }
}

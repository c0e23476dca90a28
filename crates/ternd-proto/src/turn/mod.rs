//! The sans-IO server core: it takes a packet, the 5-tuple it arrived on and `now`, and
//! writes what to send into a caller's buffer, or says where to forward it. It never opens
//! a socket or reads a clock.
//!
//! # How to drive it
//!
//! One [`Server`] per worker. Its inputs:
//!
//! - [`Server::handle_client`] for every packet a listener receives from a client (a
//!   datagram, or one frame of a stream), with its [`FiveTuple`], `now`, an output buffer
//!   and the worker's [`Relays`] (through which the core opens and closes relay sockets).
//!   Act on the returned [`Outcome`]: send `out[..len]` back to the client for
//!   [`Outcome::Reply`]; send `packet[start..start + len]` from the relay socket `relay` to
//!   `peer` for [`Outcome::Forward`] (the payload is a sub-slice of the receive buffer: no
//!   copy).
//! - [`Server::handle_peer`] for every datagram a relay socket receives. Receive it at
//!   offset [`PEER_HEADROOM`] of the buffer, so the core can write the ChannelData or Data
//!   indication header in front of the payload; then send `buf[start..start + len]` to the
//!   client of [`PeerOutcome::ToClient`].
//! - [`Server::handle_timeout`] when [`Server::poll_timeout`] says (or at least once a
//!   second): it expires allocations, permissions and channels, and closes relay sockets.
//!
//! ## RFC 6062 TCP allocations (`tcp_relay`)
//!
//! Set with [`Shared::with_tcp_relay`]. A TCP allocation's relayed address is a TCP
//! listener ([`Relays::listen_tcp`], closed with [`Relays::close`]); connections with peers
//! are opened with [`Relays::connect_tcp`] and closed with [`Relays::close_tcp`], and are
//! named by CONNECTION-IDs the core chooses. The extra inputs and outputs:
//!
//! - [`Server::handle_tcp_event`] when a peer connection is established or fails (for a
//!   [`Relays::connect_tcp`]), when the relay listener accepts one, and when a peer
//!   connection or its spliced client data connection closes. Act on the [`TcpVerdict`]:
//!   keep the connection under the id given, or close it.
//! - [`Server::poll_output`]: drain it (until `None`) after every `handle_client` on a
//!   TCP/TLS connection (after acting on its [`Outcome`]), every `handle_tcp_event`,
//!   `handle_timeout` and `close_tuple`, and after ending sessions. It yields messages for
//!   control connections (the deferred Connect response, ConnectionAttempt indications),
//!   and the decisions about client connections: [`Output::Splice`] (a ConnectionBind
//!   succeeded: from now on that connection carries raw data to and from the peer) and
//!   [`Output::Handoff`] (the ConnectionBind belongs to another worker's connection).
//! - A Connect request answers nothing at once ([`Outcome::Consumed`]): its response comes
//!   out of `poll_output` when the connection is up, has failed, or after 30 s.
//! - When a spliced client data connection closes, call [`Server::close_tuple`] for it (or
//!   `handle_tcp_event` with [`TcpEvent::Closed`]); either closes its peer connection.
//!
//! Time comes in as `now: Instant`; wall-clock time (for REST credential expiry and nonces)
//! is derived from it through the anchor in [`CoreConfig::clock_anchor`], so tests can
//! move both at once. Counters live in [`Stats`], one per worker, summed when read.

mod allocation;
mod authn;
pub mod limit;
mod stats;
mod tcp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use allocation::{
    Allocation, CHANNEL_COOLDOWN, CHANNEL_LIFETIME, DEFAULT_MAX_CHANNELS, DEFAULT_MAX_PERMISSIONS,
    PERMISSION_LIFETIME, TokenBucket, Traffic,
};
pub use limit::UNAUTH_TABLE_SLOTS;
pub use stats::{Counter, REQUEST_METHODS, RESPONSE_CODES, Stats, StatsSnapshot};
pub use tcp::{
    CONNECTION_BIND_TIMEOUT, DEFAULT_MAX_TCP_CONNECTIONS, Output, TCP_CONNECT_TIMEOUT,
    TRANSPORT_TCP, TcpAllocation, TcpConnState, TcpConnection, TcpEvent, TcpRelayConfig,
    TcpVerdict,
};

use crate::auth::nonce::{self, NonceKey};
use crate::auth::store::{CredentialStore, Key};
mod ports;
use crate::policy::PeerPolicy;
use crate::stun::channel::{self, ChannelData, ChannelRange, PacketKind};
use crate::stun::{
    AddressFamily, Attribute, Class, ErrorCode, Message, MessageBuilder, MessageType, Method,
    ParseOptions, TransactionId, attr_type,
};
use authn::Authenticated;
pub use ports::{ParsePortRangeError, PortRange};

/// Bytes a relay socket must leave free in front of a received payload: room for the
/// largest header the core writes there (a Data indication to an IPv6 peer: 20 + 24 + 4).
pub const PEER_HEADROOM: usize = 48;
/// Bytes a relay receive buffer must leave free after the payload (DATA padding).
pub const PEER_TAILROOM: usize = 3;
/// The REQUESTED-TRANSPORT value for UDP.
pub const TRANSPORT_UDP: u8 = 17;
/// How long an EVEN-PORT R=1 reservation is held (RFC 8656 §7.2: about 30 s).
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// Default of [`CoreConfig::max_allocations_per_ip`].
pub const DEFAULT_MAX_ALLOCATIONS_PER_IP: u32 = 1000;
/// Default of [`CoreConfig::unauth_rate_limit`] (requests per second).
pub const DEFAULT_UNAUTH_RATE_LIMIT: u32 = 200;
/// Default of [`CoreConfig::unauth_rate_burst`] (requests).
pub const DEFAULT_UNAUTH_RATE_BURST: u32 = 1000;
/// Relay port choices tried before answering 508.
const PORT_ATTEMPTS: usize = 64;
/// Most attribute types listed in one UNKNOWN-ATTRIBUTES.
const MAX_UNKNOWN_REPORTED: usize = 16;

/// The transport a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// What a relayed transport address carries towards peers: UDP (a UDP allocation) or TCP
/// (an RFC 6062 TCP allocation). The same IP and port can be a UDP relay of one allocation
/// and a foreign TCP service at once, so the same-server exemption names both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayTransport {
    /// UDP relaying: Send indications, ChannelData, Data indications.
    Udp,
    /// TCP relaying (RFC 6062): Connect and incoming peer connections.
    Tcp,
}

/// A live relayed address's exemption from the peer policy ([`Shared::check_peer_policy`]):
/// a number unique to one allocation's use of that address, so a channel exempted for it
/// stops when that allocation ends, even if another one binds the same address later.
pub type Lease = u64;

/// A client's 5-tuple: its address, the server address it reached, and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The client's address as seen by the server (its server-reflexive address).
    pub client: SocketAddr,
    /// The local address the packet arrived on.
    pub server: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

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
    /// Concurrent allocations per user; 0 = unlimited.
    pub user_quota: u32,
    /// Concurrent allocations on the whole server; 0 = unlimited.
    pub total_quota: u32,
    /// Concurrent allocations per source IP (IPv6: per /64), all workers; 0 = unlimited.
    pub max_allocations_per_ip: u32,
    /// Unauthenticated requests (and 401/438 answers) per second per source IP (IPv6:
    /// per /64), per worker; 0 = no limit. Over it requests are dropped unanswered.
    pub unauth_rate_limit: u32,
    /// Burst of the unauthenticated request limit, in requests.
    pub unauth_rate_burst: u32,
    /// Most permissions one allocation may hold.
    pub max_permissions: usize,
    /// Most channels one allocation may bind.
    pub max_channels: usize,
    /// Bandwidth limit per allocation and direction, bytes per second; 0 = unlimited.
    pub max_bps: u64,
    /// How long a nonce stays valid.
    pub nonce_lifetime: Duration,
    /// A monotonic instant and the UNIX time (seconds) it corresponds to.
    pub clock_anchor: (Instant, u64),
    /// Where to send clients with 300 Try Alternate while draining; `None` answers 508.
    pub alternate_server: Option<SocketAddr>,
    /// RFC 5780 NAT behaviour discovery over UDP; `None`: off.
    pub rfc5780: Option<Rfc5780>,
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
            user_quota: 100,
            total_quota: 0,
            max_allocations_per_ip: DEFAULT_MAX_ALLOCATIONS_PER_IP,
            unauth_rate_limit: DEFAULT_UNAUTH_RATE_LIMIT,
            unauth_rate_burst: DEFAULT_UNAUTH_RATE_BURST,
            max_permissions: DEFAULT_MAX_PERMISSIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_bps: 0,
            nonce_lifetime: Duration::from_secs(600),
            clock_anchor: anchor,
            alternate_server: None,
            rfc5780: None,
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

    /// UNIX seconds at `now`.
    pub fn unix_at(&self, now: Instant) -> u64 {
        let (i, u) = self.clock_anchor;
        if now >= i {
            u + now.duration_since(i).as_secs()
        } else {
            u.saturating_sub(i.duration_since(now).as_secs())
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

/// An EVEN-PORT R=1 reservation: a held port, counted against the quotas of the user and
/// source that made it (one allocation's worth) until it is claimed, expires, or the
/// allocation that made it ends.
#[derive(Debug, Clone)]
struct Reservation {
    addr: SocketAddr,
    expires: Instant,
    user: String,
    client: IpAddr,
}

/// Who an EVEN-PORT R=1 reservation would be counted against, and its token once made.
struct Reserving<'a> {
    user: &'a str,
    client: IpAddr,
    token: Option<[u8; 8]>,
}

/// One session as the admin API lists it.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SessionInfo {
    /// Session id (for `DELETE /admin/sessions/{id}`).
    pub id: u64,
    /// Quota key (REST USER part or static user).
    pub user: String,
    /// Full USERNAME.
    pub username: String,
    /// Client transport address.
    pub client: SocketAddr,
    /// Relayed transport address (as advertised).
    pub relay: SocketAddr,
    /// A dual allocation's second relayed transport address (as advertised).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub additional_relay: Option<SocketAddr>,
    /// "udp", "tcp" or "tls".
    pub transport: &'static str,
    /// Creation time, UNIX seconds.
    pub created_unix: u64,
    /// Expiry time, UNIX seconds.
    pub expires_unix: u64,
    /// Permissions held.
    pub permissions: usize,
    /// Channels bound.
    pub channels: usize,
    /// Traffic so far.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub traffic: Traffic,
}

/// Allocation counts for the quotas.
#[derive(Debug, Default)]
struct Quotas {
    per_user: HashMap<String, u32>,
    /// Allocations per source ([`limit::SourceKey`]), for `max_allocations_per_ip`.
    per_ip: HashMap<limit::SourceKey, u32>,
    total: u32,
}

/// Which quota refused an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuotaExceeded {
    User,
    Ip,
    Total,
}

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

impl Limits {
    /// The limits of a core configuration.
    pub fn of(c: &CoreConfig) -> Self {
        Self {
            user_quota: c.user_quota,
            total_quota: c.total_quota,
            max_allocations_per_ip: c.max_allocations_per_ip,
            max_permissions: c.max_permissions,
            max_channels: c.max_channels,
            max_bps: c.max_bps,
        }
    }
}

/// [`Limits`] as atomics: read with relaxed loads (no lock, no read-modify-write, so the
/// per-packet `max_bps` read stays cheap), written on reload.
#[derive(Debug)]
struct LiveLimits {
    user_quota: AtomicU32,
    total_quota: AtomicU32,
    max_allocations_per_ip: AtomicU32,
    max_permissions: AtomicUsize,
    max_channels: AtomicUsize,
    max_bps: AtomicU64,
}

impl LiveLimits {
    fn new(l: Limits) -> Self {
        Self {
            user_quota: AtomicU32::new(l.user_quota),
            total_quota: AtomicU32::new(l.total_quota),
            max_allocations_per_ip: AtomicU32::new(l.max_allocations_per_ip),
            max_permissions: AtomicUsize::new(l.max_permissions),
            max_channels: AtomicUsize::new(l.max_channels),
            max_bps: AtomicU64::new(l.max_bps),
        }
    }

    fn get(&self) -> Limits {
        Limits {
            user_quota: self.user_quota.load(Relaxed),
            total_quota: self.total_quota.load(Relaxed),
            max_allocations_per_ip: self.max_allocations_per_ip.load(Relaxed),
            max_permissions: self.max_permissions.load(Relaxed),
            max_channels: self.max_channels.load(Relaxed),
            max_bps: self.max_bps.load(Relaxed),
        }
    }

    fn set(&self, l: Limits) {
        self.user_quota.store(l.user_quota, Relaxed);
        self.total_quota.store(l.total_quota, Relaxed);
        self.max_allocations_per_ip
            .store(l.max_allocations_per_ip, Relaxed);
        self.max_permissions.store(l.max_permissions, Relaxed);
        self.max_channels.store(l.max_channels, Relaxed);
        self.max_bps.store(l.max_bps, Relaxed);
    }
}

/// State all workers share. Touched on Allocate and teardown only, never per packet.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: CoreConfig,
    /// Credential sources; replaced on SIGHUP ([`Shared::replace_credentials`]).
    store: RwLock<Arc<CredentialStore>>,
    /// The per-process nonce key.
    pub nonce_key: NonceKey,
    /// Which peers may be reached; replaced on SIGHUP ([`Shared::replace_policy`]).
    policy: RwLock<Arc<PeerPolicy>>,
    quotas: Mutex<Quotas>,
    /// Relayed transport addresses (bound and advertised) of live allocations on this
    /// server, all workers, with what they relay: peers the policy lets through even in
    /// denied ranges, on that transport only; each with its [`Lease`].
    live_relays: RwLock<HashMap<(RelayTransport, SocketAddr), Lease>>,
    /// The last [`Lease`] handed out.
    last_lease: std::sync::atomic::AtomicU64,
    /// Set on SIGTERM: new Allocates are refused while existing allocations drain.
    draining: std::sync::atomic::AtomicBool,
    policy_generation: std::sync::atomic::AtomicU64,
    reservations: Mutex<HashMap<[u8; 8], Reservation>>,
    /// RFC 6062 TCP allocations (off unless set with [`Shared::with_tcp_relay`]).
    pub tcp: TcpRelayConfig,
    /// Live CONNECTION-IDs and the worker owning each.
    tcp_ids: Mutex<HashMap<u32, u16>>,
    /// Quotas and limits now (initially those of `config`; replaced on SIGHUP).
    limits: LiveLimits,
}

impl Shared {
    /// Shared state from its parts.
    pub fn new(
        config: CoreConfig,
        store: CredentialStore,
        nonce_key: NonceKey,
        policy: PeerPolicy,
    ) -> Self {
        Self {
            store: RwLock::new(Arc::new(store)),
            nonce_key,
            policy: RwLock::new(Arc::new(policy)),
            quotas: Mutex::new(Quotas::default()),
            live_relays: RwLock::new(HashMap::new()),
            last_lease: std::sync::atomic::AtomicU64::new(0),
            draining: std::sync::atomic::AtomicBool::new(false),
            policy_generation: std::sync::atomic::AtomicU64::new(0),
            reservations: Mutex::new(HashMap::new()),
            tcp: TcpRelayConfig::default(),
            tcp_ids: Mutex::new(HashMap::new()),
            limits: LiveLimits::new(Limits::of(&config)),
            config,
        }
    }

    /// The quotas and limits in force.
    pub fn limits(&self) -> Limits {
        self.limits.get()
    }

    /// Replaces the quotas and limits (SIGHUP): new allocations, permissions and channels
    /// are checked against them; existing ones are kept (an allocation over a lowered
    /// quota lives on until it ends); `max_bps` applies to every packet from now on.
    pub fn replace_limits(&self, limits: Limits) {
        self.limits.set(limits);
    }

    /// The bandwidth limit in force (per packet: one relaxed load).
    #[inline]
    fn max_bps(&self) -> u64 {
        self.limits.max_bps.load(Relaxed)
    }

    /// The same, with RFC 6062 TCP allocations configured (`tcp_relay`).
    pub fn with_tcp_relay(mut self, tcp: TcpRelayConfig) -> Self {
        self.tcp = tcp;
        self
    }

    /// Allocations currently counted against `user`.
    pub fn user_allocations(&self, user: &str) -> u32 {
        self.quotas
            .lock()
            .map(|q| q.per_user.get(user).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// EVEN-PORT reservations held now.
    pub fn reservation_count(&self) -> usize {
        self.reservations.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Allocations currently counted on the whole server.
    pub fn total_allocations(&self) -> u32 {
        self.quotas.lock().map(|q| q.total).unwrap_or(0)
    }

    /// The current credential sources (requests in flight keep the set they started with).
    pub fn store(&self) -> Arc<CredentialStore> {
        match self.store.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The current peer policy.
    pub fn policy(&self) -> Arc<PeerPolicy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the credential sources (SIGHUP). New authentications use the new set;
    /// existing allocations keep the key they authenticated with (RFC 8656 §6.2), so
    /// removing a secret stops new allocations without breaking live ones.
    pub fn replace_credentials(&self, store: CredentialStore) {
        if let Ok(mut s) = self.store.write() {
            *s = Arc::new(store);
        }
    }

    /// Replaces the peer policy (SIGHUP); applies to every later check.
    pub fn replace_policy(&self, policy: PeerPolicy) {
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
        self.policy_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Bumped by every [`Shared::replace_policy`]: allocations re-check their permissions
    /// and channels when it moves (one relaxed load per relayed packet).
    #[inline]
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts (or stops) draining: new Allocates get 300 or 508, existing ones go on.
    pub fn set_draining(&self, on: bool) {
        self.draining
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// True while draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lease of `addr` if it is the relayed transport address of a live allocation here
    /// that relays over `transport`.
    pub fn live_relay(&self, transport: RelayTransport, addr: SocketAddr) -> Option<Lease> {
        self.live_relays
            .read()
            .ok()
            .and_then(|r| r.get(&(transport, addr)).copied())
    }

    /// True if `addr` is the relayed transport address of a live allocation here that
    /// relays over `transport`.
    pub fn is_live_relay(&self, transport: RelayTransport, addr: SocketAddr) -> bool {
        self.live_relay(transport, addr).is_some()
    }

    /// Marks relayed addresses live (an allocation, or its second family, was opened).
    fn add_live_relays(
        &self,
        transport: RelayTransport,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) {
        if let Ok(mut live) = self.live_relays.write() {
            let lease = self
                .last_lease
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            for a in addrs {
                live.insert((transport, a), lease);
            }
        }
    }

    /// Ends relayed addresses' exemption (their allocation, or its family, went away).
    fn remove_live_relays(
        &self,
        transport: RelayTransport,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) {
        if let Ok(mut live) = self.live_relays.write() {
            for a in addrs {
                live.remove(&(transport, a));
            }
        }
    }

    /// True if `ip` is one of this server's relay addresses (bound or advertised).
    fn is_relay_ip(&self, ip: IpAddr) -> bool {
        [self.config.relay_v4, self.config.relay_v6]
            .into_iter()
            .flatten()
            .any(|r| r.bind == ip || r.advertise == ip)
    }

    /// The peer policy with the same-server exception: two clients of this server that
    /// both need a relay reach each other through it (client → ternd → ternd → client),
    /// even where the relay address is in a denied range. An explicit `--deny-peer` still
    /// wins, and only live relayed addresses are let through (for an IP-only check, the
    /// relay IP; every later check with a port is exact), in their exact form only, and
    /// only for the transport they relay (`transport`: a UDP relay at IP:P does not make a
    /// foreign TCP service on IP:P reachable, nor the other way round).
    ///
    /// `Ok(None)`: the policy allows `peer`. `Ok(Some(lease))`: only the exemption does,
    /// for as long as that live relay's [`Lease`] lasts; whatever relies on it (a channel)
    /// must stop when [`Shared::live_relay`] no longer gives the same lease.
    pub fn check_peer_policy(
        &self,
        peer: SocketAddr,
        with_port: bool,
        transport: RelayTransport,
    ) -> Result<Option<Lease>, crate::policy::Denied> {
        let verdict = if with_port {
            self.policy().check(peer)
        } else {
            self.policy().check_ip(peer.ip())
        };
        match verdict {
            Err(crate::policy::Denied::Explicit(n)) => Err(crate::policy::Denied::Explicit(n)),
            // The exception is for the exact address the relay sockets use: an
            // IPv4-embedding IPv6 form of a relay address (::ffff:, 6to4, Teredo, NAT64)
            // would be sent out of the IPv6 socket to somewhere else entirely.
            Err(e) if with_port => self.live_relay(transport, peer).map(Some).ok_or(e),
            Err(e) => {
                if self.is_relay_ip(peer.ip()) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Ok(()) => Ok(None),
        }
    }

    /// Allocations currently counted against the source of `ip` (its IPv4 address or
    /// IPv6 /64), all workers.
    pub fn ip_allocations(&self, ip: IpAddr) -> u32 {
        self.quotas
            .lock()
            .map(|q| {
                q.per_ip
                    .get(&limit::SourceKey::of(ip))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Takes `slots` allocations' worth of the quotas (2 for an Allocate that also
    /// reserves the next port), all or nothing.
    fn quota_take(&self, user: &str, client: IpAddr, slots: u32) -> Result<(), QuotaExceeded> {
        let Ok(mut q) = self.quotas.lock() else {
            return Err(QuotaExceeded::Total);
        };
        let limits = self.limits();
        let over = |held: u32, limit: u32| limit != 0 && held.saturating_add(slots) > limit;
        if over(q.total, limits.total_quota) {
            return Err(QuotaExceeded::Total);
        }
        let source = limit::SourceKey::of(client);
        let per_ip = q.per_ip.get(&source).copied().unwrap_or(0);
        if over(per_ip, limits.max_allocations_per_ip) {
            return Err(QuotaExceeded::Ip);
        }
        let n = q.per_user.get(user).copied().unwrap_or(0);
        if over(n, limits.user_quota) {
            return Err(QuotaExceeded::User);
        }
        q.per_user.insert(user.to_string(), n + slots);
        q.per_ip.insert(source, per_ip + slots);
        q.total += slots;
        Ok(())
    }

    /// Removes reservation `token` if it is still held; the caller releases its port.
    /// Its quota slot is given back here.
    fn take_reservation(&self, token: &[u8; 8]) -> Option<Reservation> {
        let r = self.reservations.lock().ok()?.remove(token)?;
        self.quota_release(&r.user, r.client);
        Some(r)
    }

    fn quota_release(&self, user: &str, client: IpAddr) {
        if let Ok(mut q) = self.quotas.lock() {
            if let Some(n) = q.per_user.get_mut(user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    q.per_user.remove(user);
                }
            }
            let source = limit::SourceKey::of(client);
            if let Some(n) = q.per_ip.get_mut(&source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    q.per_ip.remove(&source);
                }
            }
            q.total = q.total.saturating_sub(1);
        }
    }
}

/// How the core opens and closes relay sockets: implemented by the I/O layer (and by a fake
/// in tests). Every call happens while the core handles an input.
pub trait Relays {
    /// Binds a fresh relay socket at `addr` and starts receiving on it. `AddrInUse` (also
    /// for an address held by a reservation) makes the core try another port.
    fn open(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()>;
    /// Takes over the socket reserved at `addr` with [`Relays::reserve`] (by any worker)
    /// and starts receiving on it.
    fn claim(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()>;
    /// Binds `addr` and holds it, not receiving, for a later [`Relays::open`] (EVEN-PORT R=1).
    fn reserve(&mut self, addr: SocketAddr) -> io::Result<()>;
    /// Drops a reservation that was never claimed.
    fn release(&mut self, addr: SocketAddr);
    /// Closes the relay socket at `addr` (for a TCP allocation: its listening socket).
    fn close(&mut self, addr: SocketAddr);

    /// Opens a TCP listening socket at `addr`, the relayed transport address of a TCP
    /// allocation (RFC 6062 §5.1), and starts accepting: report each accepted connection
    /// with [`TcpEvent::Accepted`]. Outgoing connections ([`Relays::connect_tcp`]) must
    /// bind the same local address, which on Linux takes `SO_REUSEPORT` on both sockets;
    /// then binding no longer detects a port taken by another TCP allocation, so return
    /// `AddrInUse` for a port this process already listens on. `AddrInUse` makes the core
    /// try another port; `Unsupported` (the default) makes it give up (508).
    fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<()> {
        let _ = addr;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Starts connecting from `relay` (the listener's address, as the local address of
    /// the new socket) to `peer`, asynchronously, for connection `id` (RFC 6062 §5.2).
    /// Report the result with [`TcpEvent::Connected`] or [`TcpEvent::ConnectFailed`]; set
    /// no connect timeout shorter than [`TCP_CONNECT_TIMEOUT`] (the core enforces that
    /// one and calls [`Relays::close_tcp`]). An error here is answered with 447 at once.
    fn connect_tcp(&mut self, relay: SocketAddr, peer: SocketAddr, id: u32) -> io::Result<()> {
        let _ = (relay, peer, id);
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Closes the peer connection `id` (or abandons connecting it) and the client data
    /// connection spliced to it, if any. Never called for a connection the I/O layer
    /// reported closed or failed.
    fn close_tcp(&mut self, id: u32) {
        let _ = id;
    }
}

/// What to do after [`Server::handle_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Send `out[..len]` back to the client on the same 5-tuple.
    Reply {
        /// Length of the answer in the output buffer.
        len: usize,
    },
    /// Send the answer (`len` bytes of the output buffer) from the listener bound at `from`
    /// to `to` instead of back the way the request came (RFC 5780 CHANGE-REQUEST and
    /// RESPONSE-PORT; UDP only).
    ReplyVia {
        /// Length of the answer in the output buffer.
        len: usize,
        /// The local (listener) address to send from.
        from: SocketAddr,
        /// The destination.
        to: SocketAddr,
    },
    /// Send `packet[start..start + len]` from the relay socket bound at `relay` to `peer`.
    Forward {
        /// The relay socket's local address.
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
        /// Start of the payload in the packet.
        start: usize,
        /// Length of the payload.
        len: usize,
    },
    /// Nothing to send: the packet was consumed (an indication, say).
    Consumed,
    /// Nothing to send: the packet was dropped, for this reason (already counted).
    Dropped(DropReason),
}

/// What to do after [`Server::handle_peer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum PeerOutcome {
    /// Send `buf[start..start + len]` to the client on `tuple`.
    ToClient {
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// Start of the message (header written in front of the payload).
        start: usize,
        /// Length of the message.
        len: usize,
    },
    /// Dropped, for this reason (already counted).
    Dropped(DropReason),
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed STUN message or ChannelData frame.
    Malformed,
    /// FINGERPRINT present but wrong.
    BadFingerprint,
    /// A STUN response sent to the server.
    UnexpectedResponse,
    /// An RFC 3489 message while backward compatibility is off.
    Rfc3489Disabled,
    /// ChannelData or a Send indication on a 5-tuple without an allocation.
    NoAllocation,
    /// ChannelData on a channel that is not bound.
    NoChannel,
    /// Data to or from a peer without a permission.
    NoPermission,
    /// A peer the policy denies.
    PolicyDenied,
    /// An indication the server does not act on.
    UnhandledIndication,
    /// The answer did not fit the output buffer.
    OutputTooSmall,
    /// Data for a relay address with no allocation (a late packet after expiry).
    UnknownRelay,
    /// Over the allocation's bandwidth limit (`max_bps`).
    RateLimited,
    /// A Send indication for a TCP allocation (RFC 6062: data goes over data connections).
    TcpAllocation,
    /// An unauthenticated request (or one answered 401/438) over its source's rate limit
    /// (`unauth_rate_limit`): dropped unanswered, so the server amplifies nothing.
    UnauthRateLimited,
}

/// Why an allocation ended (for the accounting line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Its lifetime ran out.
    Expired,
    /// Refresh with LIFETIME 0.
    Deleted,
    /// The server shut down.
    Shutdown,
    /// The client's TCP/TLS connection closed.
    ConnectionClosed,
    /// An operator ended it (admin API).
    Admin,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Deleted => "deleted by client",
            EndReason::Shutdown => "server shutdown",
            EndReason::Admin => "ended by an operator",
            EndReason::ConnectionClosed => "connection closed",
        }
    }
}

/// Applies the client → peer bandwidth limit (`limit` = (max_bps, burst); 0 = none) and
/// counts the packet; false when the limit drops it.
#[inline]
fn count_out(
    alloc: &mut Allocation,
    stats: &Stats,
    len: usize,
    limit: (u64, u64),
    now: Instant,
) -> bool {
    let (max_bps, burst) = limit;
    if max_bps != 0 && !alloc.buckets[0].take(len as u64, max_bps, burst, now) {
        stats.rate_limited.inc();
        return false;
    }
    alloc.traffic.packets_out += 1;
    alloc.traffic.bytes_out += len as u64;
    stats.relayed_out_packets.inc();
    stats.relayed_out_bytes.add(len as u64);
    true
}

/// The error code of a response this core built (every error response starts with
/// ERROR-CODE), or 0 for a success.
fn response_code(resp: &[u8]) -> u16 {
    let is_error = resp.len() >= 28 && resp[0] & 0x01 == 0x01 && resp[1] & 0x10 == 0x10;
    if is_error && resp[20..22] == attr_type::ERROR_CODE.to_be_bytes() {
        u16::from(resp[26] & 0x07) * 100 + u16::from(resp[27])
    } else {
        0
    }
}

/// ADDITIONAL-ADDRESS-FAMILY under the code point of draft-ietf-tram-turn-ipv6 that
/// coturn's clients still send (RFC 8656 assigned 0x8000).
const LEGACY_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8032;
/// ADDRESS-ERROR-CODE under that draft's code point (RFC 8656: 0x8001).
const LEGACY_ADDRESS_ERROR_CODE: u16 = 0x8033;

/// An address of family `f` (to ask an allocation for its relay of that family).
fn family_ip(f: AddressFamily) -> IpAddr {
    match f {
        AddressFamily::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// A small, fast PRNG (SplitMix64) for Data indication transaction ids, which go on the
/// wire: its state is derived from the seed through HMAC, so observing it reveals nothing
/// about [`SecretRng`].
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Unpredictable numbers for relay ports and RESERVATION-TOKENs: HMAC-SHA256 under a key
/// derived from the seed, over a counter.
#[derive(Clone)]
struct SecretRng {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for SecretRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRng(<redacted>)")
    }
}

impl SecretRng {
    fn next(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        let mac = crate::stun::hmac_sha256(&self.key, &[&self.counter.to_le_bytes()]);
        let mut b = [0u8; 8];
        b.copy_from_slice(&mac[..8]);
        u64::from_le_bytes(b)
    }
}

/// The protocol core of one worker.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    slots: Vec<Option<Allocation>>,
    free: Vec<u32>,
    by_tuple: HashMap<FiveTuple, u32>,
    by_relay: HashMap<SocketAddr, u32>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    rng: Rng,
    secret_rng: SecretRng,
    id_prefix: u64,
    next_id: u64,
    /// This worker's index (owner of the CONNECTION-IDs it issues).
    worker: u16,
    /// RFC 6062 connections: by id and by client data connection.
    tcp: tcp::TcpIndex,
    /// What [`Server::poll_output`] hands out.
    outputs: VecDeque<tcp::Queued>,
    /// Per-source budgets for unauthenticated requests and 401/438 answers.
    unauth: limit::UnauthLimiter,
    /// Set by [`Server::challenge`] when the limiter refuses the answer: the request is
    /// dropped instead.
    suppressed: bool,
    /// Set by [`Server::binding`] when an RFC 5780 answer leaves by another way.
    redirect: Option<(SocketAddr, SocketAddr)>,
}

/// A response in progress: the request it answers and how to protect it.
struct Reply<'m, 'a> {
    msg: &'m Message<'a>,
    key: Option<Key>,
}

impl Server {
    /// A core with the shared state, this worker's counters and a random seed (from the OS
    /// in production; fixed in tests).
    pub fn new(shared: Arc<Shared>, stats: Arc<Stats>, seed: [u8; 32]) -> Self {
        let tid_seed = crate::stun::hmac_sha256(&seed, &[b"ternd data indication ids"]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&tid_seed[..8]);
        let secret_key = crate::stun::hmac_sha256(&seed, &[b"ternd ports and tokens"]);
        let limiter_key = crate::stun::hmac_sha256(&seed, &[b"ternd unauthenticated limiter"]);
        let mut lk = [0u8; 16];
        lk.copy_from_slice(&limiter_key[..16]);
        let unauth = limit::UnauthLimiter::new(
            shared.config.unauth_rate_limit,
            shared.config.unauth_rate_burst,
            lk,
            shared.config.clock_anchor.0,
        );
        Self {
            shared,
            stats,
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple: HashMap::new(),
            by_relay: HashMap::new(),
            timers: BinaryHeap::new(),
            rng: Rng(u64::from_le_bytes(t)),
            id_prefix: 0,
            next_id: 0,
            worker: 0,
            tcp: tcp::TcpIndex::default(),
            outputs: VecDeque::new(),
            secret_rng: SecretRng {
                key: secret_key,
                counter: 0,
            },
            unauth,
            suppressed: false,
            redirect: None,
        }
    }

    /// Slots of the unauthenticated rate limiter: [`UNAUTH_TABLE_SLOTS`] (0 when the
    /// limit is off), whatever the number of sources seen.
    pub fn unauth_table_len(&self) -> usize {
        self.unauth.len()
    }

    /// The counters this core updates.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Number of live allocations on this worker.
    pub fn allocation_count(&self) -> usize {
        self.by_tuple.len()
    }

    /// The allocation of a 5-tuple.
    pub fn allocation(&self, tuple: &FiveTuple) -> Option<&Allocation> {
        let &i = self.by_tuple.get(tuple)?;
        self.slots.get(i as usize)?.as_ref()
    }

    /// Sizes of the per-client maps (allocations by 5-tuple, by relay address, timers):
    /// what unauthenticated traffic must never grow.
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        (self.by_tuple.len(), self.by_relay.len(), self.timers.len())
    }

    /// When [`Server::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    // ---------------------------------------------------------------------------------
    // Inputs

    /// Handles one packet (a datagram, or one frame from a stream) from a client.
    pub fn handle_client(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Outcome {
        match channel::classify(packet, self.shared.config.channel_range) {
            PacketKind::ChannelData => self.channel_data(packet, tuple, now),
            PacketKind::Stun => self.handle_stun(packet, tuple, now, out, relays),
            PacketKind::Other => self.drop(DropReason::Malformed),
        }
    }

    /// Handles a datagram a relay socket received from `peer`. The payload is
    /// `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, and `buf` has [`PEER_TAILROOM`] bytes to
    /// spare after it.
    pub fn handle_peer(
        &mut self,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> PeerOutcome {
        let (max_bps, burst) = (self.shared.max_bps(), self.burst());
        let Some(&idx) = self.by_relay.get(&relay) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        };
        let peer = self.shared.config.public_form(peer);
        self.revalidate(idx);
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        };
        if alloc.expires <= now {
            // Expired, waiting for the next timer tick to be removed.
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        }
        if !alloc.permitted(peer.ip(), now) {
            self.stats.peer_dropped_no_permission.inc();
            return PeerOutcome::Dropped(DropReason::NoPermission);
        }
        let Ok(len16) = u16::try_from(len) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::Malformed);
        };
        if buf.len() < PEER_HEADROOM + len + PEER_TAILROOM {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        }
        if max_bps != 0 && !alloc.buckets[1].take(len as u64, max_bps, burst, now) {
            self.stats.rate_limited.inc();
            return PeerOutcome::Dropped(DropReason::RateLimited);
        }
        alloc.traffic.packets_in += 1;
        alloc.traffic.bytes_in += len as u64;
        let tuple = alloc.tuple;
        let stream = tuple.transport != Transport::Udp;
        if let Some(number) = alloc.channel_for_peer(peer, now) {
            let start = PEER_HEADROOM - channel::HEADER_LEN;
            let header: &mut [u8; 4] = (&mut buf[start..PEER_HEADROOM])
                .try_into()
                .unwrap_or_else(|_| unreachable!());
            ChannelData::write_header(header, number, len16);
            let mut total = channel::HEADER_LEN + len;
            if stream {
                let padded = channel::padded_len(len);
                buf[start + total..start + padded].fill(0);
                total = padded;
            }
            self.stats.relayed_in_packets.inc();
            self.stats.relayed_in_bytes.add(len as u64);
            return PeerOutcome::ToClient {
                tuple,
                start,
                len: total,
            };
        }
        // A Data indication: header, XOR-PEER-ADDRESS, then the DATA attribute header.
        let peer_attr = if peer.is_ipv4() { 4 + 8 } else { 4 + 20 };
        let header_len = 20 + peer_attr + 4;
        let start = PEER_HEADROOM - header_len;
        let padded = (len + 3) & !3;
        let total = header_len + padded;
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        tid[8..].copy_from_slice(&(self.rng.next() as u32).to_le_bytes());
        let Ok(mut b) = MessageBuilder::new(
            &mut buf[start..start + 20 + peer_attr],
            MessageType::new(Method::DATA, Class::Indication),
            TransactionId(tid),
        ) else {
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        };
        if b.add(&Attribute::XorPeerAddress(peer)).is_err() {
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        }
        let data_hdr = start + 20 + peer_attr;
        buf[data_hdr..data_hdr + 2].copy_from_slice(&attr_type::DATA.to_be_bytes());
        buf[data_hdr + 2..data_hdr + 4].copy_from_slice(&len16.to_be_bytes());
        buf[PEER_HEADROOM + len..PEER_HEADROOM + padded].fill(0);
        // An IPv6 peer's datagram near 64 KiB no longer fits a STUN message.
        let Ok(body) = u16::try_from(total - 20) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        };
        buf[start + 2..start + 4].copy_from_slice(&body.to_be_bytes());
        self.stats.relayed_in_packets.inc();
        self.stats.relayed_in_bytes.add(len as u64);
        PeerOutcome::ToClient {
            tuple,
            start,
            len: total,
        }
    }

    /// Expires what is due at `now`: allocations (closing their relay sockets through
    /// `relays`), permissions, channels and port reservations.
    pub fn handle_timeout(&mut self, now: Instant, relays: &mut dyn Relays) {
        while let Some(&Reverse((t, idx))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(Some(alloc)) = self.slots.get(idx as usize) else {
                continue;
            };
            if alloc.scheduled != t {
                continue; // stale: superseded by an earlier entry that already fired
            }
            if alloc.expires <= now {
                self.remove(idx, now, EndReason::Expired, relays);
                continue;
            }
            if alloc.tcp.is_some() {
                self.tcp_expire(idx, now, relays);
            }
            let Some(Some(alloc)) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            let next = alloc.sweep(now);
            alloc.scheduled = next;
            self.timers.push(Reverse((next, idx)));
        }
        // Reservations are shared; any worker may drop the expired ones.
        let expired: Vec<Reservation> = match self.shared.reservations.lock() {
            Ok(mut r) => {
                let mut gone = Vec::new();
                r.retain(|_, v| {
                    let keep = v.expires > now;
                    if !keep {
                        gone.push(v.clone());
                    }
                    keep
                });
                gone
            }
            Err(_) => Vec::new(),
        };
        for r in expired {
            self.shared.quota_release(&r.user, r.client);
            relays.release(r.addr);
        }
    }

    /// Numbers this worker's session ids (the admin API's) apart from other workers'.
    pub fn set_worker_index(&mut self, index: u16) {
        self.id_prefix = u64::from(index) << 48;
        self.worker = index;
    }

    /// The live sessions, for operators.
    pub fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        let c = &self.shared.config;
        self.slots
            .iter()
            .flatten()
            .map(|a| SessionInfo {
                id: a.id,
                user: a.user.clone(),
                username: a.username.clone(),
                client: a.tuple.client,
                relay: a.advertised,
                additional_relay: a.additional.map(|(_, adv)| adv),
                transport: match a.tuple.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                },
                created_unix: a.started_unix,
                expires_unix: c.unix_at(a.expires.max(now)),
                permissions: a.permissions.len(),
                channels: a.channels.len(),
                traffic: a.traffic,
            })
            .collect()
    }

    /// Ends the session `id` at once (admin API); false if there is none.
    pub fn end_session(&mut self, id: u64, now: Instant, relays: &mut dyn Relays) -> bool {
        let found = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|a| a.id == id));
        match found {
            Some(idx) => {
                self.remove(idx as u32, now, EndReason::Admin, relays);
                true
            }
            None => false,
        }
    }

    /// Ends every session of `user` at once (admin API); returns how many.
    pub fn end_user_sessions(
        &mut self,
        user: &str,
        now: Instant,
        relays: &mut dyn Relays,
    ) -> usize {
        let idxs: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_ref().is_some_and(|a| a.user == user))
            .map(|(i, _)| i as u32)
            .collect();
        for &i in &idxs {
            self.remove(i, now, EndReason::Admin, relays);
        }
        idxs.len()
    }

    /// Bucket size for `max_bps`: a quarter second of traffic, at least two full-size
    /// datagrams so a packet is never too big to ever pass.
    fn burst(&self) -> u64 {
        (self.shared.max_bps() / 4).max(2 * 1500)
    }

    /// Ends the allocation of a 5-tuple whose connection closed (TCP/TLS clients), with
    /// its TCP connections; or, for a client data connection (RFC 6062), closes its peer
    /// connection.
    pub fn close_tuple(&mut self, tuple: &FiveTuple, now: Instant, relays: &mut dyn Relays) {
        if let Some(&idx) = self.by_tuple.get(tuple) {
            self.remove(idx, now, EndReason::ConnectionClosed, relays);
        } else {
            self.tcp_close_data(tuple, relays);
        }
    }

    /// Ends every allocation (graceful shutdown), logging their accounting lines.
    pub fn shutdown(&mut self, now: Instant, relays: &mut dyn Relays) {
        let all: Vec<u32> = self.by_tuple.values().copied().collect();
        for idx in all {
            self.remove(idx, now, EndReason::Shutdown, relays);
        }
    }

    // ---------------------------------------------------------------------------------
    // Client packets

    fn drop(&self, reason: DropReason) -> Outcome {
        match reason {
            DropReason::Malformed | DropReason::BadFingerprint | DropReason::Rfc3489Disabled => {
                self.stats.malformed.inc()
            }
            DropReason::NoPermission => self.stats.client_dropped_no_permission.inc(),
            _ => self.stats.dropped.inc(),
        }
        Outcome::Dropped(reason)
    }

    #[inline]
    fn channel_data(&mut self, packet: &[u8], tuple: FiveTuple, now: Instant) -> Outcome {
        let (max_bps, burst) = (self.shared.max_bps(), self.burst());
        let Ok(cd) = ChannelData::parse(packet, self.shared.config.channel_range) else {
            return self.drop(DropReason::Malformed);
        };
        let Some(&idx) = self.by_tuple.get(&tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        self.revalidate(idx);
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return self.drop(DropReason::NoAllocation);
        };
        if alloc.expires <= now {
            return self.drop(DropReason::NoAllocation);
        }
        let Some(channel) = alloc.live_channel(cd.channel, now) else {
            return self.drop(DropReason::NoChannel);
        };
        let peer = channel.peer;
        // A channel to another allocation's relayed address (denied by the policy, allowed
        // as the same-server exception) ends with that allocation: whatever binds the
        // address later is not what the channel was allowed to reach.
        if let Some(lease) = channel.exempt
            && self.shared.live_relay(RelayTransport::Udp, peer) != Some(lease)
        {
            alloc.unbind(cd.channel);
            self.stats.policy_denied.inc();
            return self.drop(DropReason::PolicyDenied);
        }
        // The channel installed the permission; it may have lapsed if not refreshed.
        if !alloc.permitted(peer.ip(), now) {
            return self.drop(DropReason::NoPermission);
        }
        // The channel's peer was checked against the allocation's families when bound.
        let Some(relay) = alloc.relay_for(peer.ip()) else {
            return self.drop(DropReason::NoPermission);
        };
        if !count_out(alloc, &self.stats, cd.data.len(), (max_bps, burst), now) {
            return Outcome::Dropped(DropReason::RateLimited);
        }
        Outcome::Forward {
            relay,
            peer: self.shared.config.local_form(peer),
            start: channel::HEADER_LEN,
            len: cd.data.len(),
        }
    }

    fn handle_stun(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Outcome {
        let opts = ParseOptions {
            allow_rfc3489: true,
            ..ParseOptions::default()
        };
        let Ok(msg) = Message::parse_with(packet, opts) else {
            return self.drop(DropReason::Malformed);
        };
        if msg.is_rfc3489() && !self.shared.config.stun_backward_compatibility {
            return self.drop(DropReason::Rfc3489Disabled);
        }
        if msg.has_fingerprint() && msg.verify_fingerprint().is_err() {
            return self.drop(DropReason::BadFingerprint);
        }
        let typ = msg.message_type();
        match typ.class {
            Class::Success | Class::Error => self.drop(DropReason::UnexpectedResponse),
            Class::Indication => {
                self.stats.indications.inc();
                match typ.method {
                    // Binding indications are keepalives (RFC 8489 §6.3.2).
                    Method::BINDING => Outcome::Consumed,
                    Method::SEND if !msg.is_rfc3489() => {
                        self.send_indication(&msg, packet, tuple, now)
                    }
                    _ => self.drop(DropReason::UnhandledIndication),
                }
            }
            Class::Request => {
                self.stats.requests.inc();
                // Unauthenticated requests other than Binding can only be answered with an
                // error (401, 400, ...): each takes from its source's budget, and over it
                // is dropped unanswered. (Requests with integrity are charged only if they
                // end in 401/438: see `challenge`.)
                if typ.method != Method::BINDING
                    && !(msg.has_integrity() || msg.has_integrity_sha256())
                    && !self.unauth.admit(tuple.client.ip(), now)
                {
                    self.stats.unauth_rate_limited.inc();
                    return Outcome::Dropped(DropReason::UnauthRateLimited);
                }
                let result = if typ.method == Method::BINDING {
                    self.binding(&msg, tuple, out)
                } else if msg.is_rfc3489() {
                    self.error(
                        &Reply {
                            msg: &msg,
                            key: None,
                        },
                        400,
                        "Bad Request",
                        out,
                    )
                } else {
                    self.turn_request(&msg, tuple, now, out, relays)
                };
                if std::mem::take(&mut self.suppressed) {
                    self.stats.unauth_rate_limited.inc();
                    return Outcome::Dropped(DropReason::UnauthRateLimited);
                }
                match result {
                    // Answered later (Connect) or elsewhere (a hand-off).
                    Some(0) => Outcome::Consumed,
                    Some(len) => {
                        let code = response_code(&out[..len]);
                        self.stats.responses[stats::method_index(typ.method)]
                            [stats::code_index(code)]
                        .inc();
                        match self.redirect.take() {
                            Some((from, to)) => Outcome::ReplyVia { len, from, to },
                            None => Outcome::Reply { len },
                        }
                    }
                    None => self.drop(DropReason::OutputTooSmall),
                }
            }
        }
    }

    fn send_indication(
        &mut self,
        msg: &Message<'_>,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
    ) -> Outcome {
        let (max_bps, burst) = (self.shared.max_bps(), self.burst());
        let Some(&idx) = self.by_tuple.get(&tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        let peer = match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(p))) => p,
            _ => return self.drop(DropReason::Malformed),
        };
        let Some(data) = msg.get(attr_type::DATA) else {
            return self.drop(DropReason::Malformed);
        };
        // Indications with unknown comprehension-required attributes are dropped
        // (RFC 8489 §6.3.2).
        if msg.unknown_comprehension_required(attr_type::is_known, &mut [0u16; 1]) > 0 {
            return self.drop(DropReason::Malformed);
        }
        if self
            .shared
            .check_peer_policy(peer, true, RelayTransport::Udp)
            .is_err()
        {
            self.stats.policy_denied.inc();
            return self.drop(DropReason::PolicyDenied);
        }
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return self.drop(DropReason::NoAllocation);
        };
        if alloc.expires <= now {
            return self.drop(DropReason::NoAllocation);
        }
        if alloc.tcp.is_some() {
            return self.drop(DropReason::TcpAllocation);
        }
        // A peer of a family the allocation has no relay for matches no permission.
        let Some(relay) = alloc.relay_for(peer.ip()) else {
            return self.drop(DropReason::NoPermission);
        };
        if !alloc.permitted(peer.ip(), now) {
            return self.drop(DropReason::NoPermission);
        }
        if !count_out(alloc, &self.stats, data.value.len(), (max_bps, burst), now) {
            return Outcome::Dropped(DropReason::RateLimited);
        }
        let start = data.offset + 4;
        debug_assert_eq!(&packet[start..start + data.value.len()], data.value);
        Outcome::Forward {
            relay,
            peer: self.shared.config.local_form(peer),
            start,
            len: data.value.len(),
        }
    }

    fn binding(&mut self, msg: &Message<'_>, tuple: FiveTuple, out: &mut [u8]) -> Option<usize> {
        self.redirect = None;
        let reply = Reply { msg, key: None };
        // RFC 5780 applies to UDP requests that reached one of its four addresses; anywhere
        // else its request attributes are unknown (420), as for a server without it.
        let nat = self
            .shared
            .config
            .rfc5780
            .filter(|r| tuple.transport == Transport::Udp && r.serves(tuple.server))
            .filter(|_| !msg.is_rfc3489());
        let known =
            |t: u16| attr_type::is_known(t) && (nat.is_some() || !attr_type::is_rfc5780_request(t));
        if let Some(len) = self.reject_unknown_by(&reply, known, out) {
            return len;
        }
        let mut extra: Option<(SocketAddr, SocketAddr, usize)> = None;
        let mut to = tuple.client;
        if let Some(r) = nat {
            let change = match msg.get_decoded(attr_type::CHANGE_REQUEST) {
                Some(Ok(Attribute::ChangeRequest { ip, port })) => (ip, port),
                Some(_) => return self.error(&reply, 400, "Bad Request", out),
                None => (false, false),
            };
            let response_port = match msg.get_decoded(attr_type::RESPONSE_PORT) {
                Some(Ok(Attribute::ResponsePort(p))) if p != 0 => Some(p),
                Some(_) => return self.error(&reply, 400, "Bad Request", out),
                None => None,
            };
            let padding = msg.get(attr_type::PADDING).map(|a| a.value.len());
            // PADDING with RESPONSE-PORT is refused (RFC 5780 §6.1): large answers to a
            // port the request did not come from.
            if padding.is_some() && response_port.is_some() {
                return self.error(&reply, 400, "Bad Request", out);
            }
            if let Some(p) = response_port {
                to = SocketAddr::new(tuple.client.ip(), p);
            }
            let from = r.changed(tuple.server, change.0, change.1);
            let other = r.changed(tuple.server, true, true);
            let padding = padding.map_or(0, |n| n.min(MAX_RESPONSE_PADDING).next_multiple_of(4));
            extra = Some((from, other, padding));
        }
        let mut b = self.start(msg, msg.message_type().success(), out)?;
        if msg.is_rfc3489() {
            b.add(&Attribute::MappedAddress(tuple.client)).ok()?;
        } else {
            b.add(&Attribute::XorMappedAddress(tuple.client)).ok()?;
        }
        if let Some((from, other, padding)) = extra {
            // MAPPED-ADDRESS too, as RFC 5780 clients (turnutils_natdiscovery) expect.
            b.add(&Attribute::MappedAddress(tuple.client)).ok()?;
            b.add(&Attribute::ResponseOrigin(from)).ok()?;
            b.add(&Attribute::OtherAddress(other)).ok()?;
            if padding > 0 {
                b.add(&Attribute::Padding(&[0u8; MAX_RESPONSE_PADDING][..padding]))
                    .ok()?;
            }
            if from != tuple.server || to != tuple.client {
                self.redirect = Some((from, to));
            }
        }
        self.stats.binding_responses.inc();
        self.finish(&reply, b)
    }

    /// 420 for unknown comprehension-required attributes: `Some(answer)` when it applies.
    /// Outside Binding, RFC 5780's request attributes count as unknown.
    /// Authenticates a request for the allocation in slot `owner` (if any): its credentials
    /// must be that allocation's, and with `owner_nonce` the nonce of the allocation's own
    /// 5-tuple is good too (a ConnectionBind on a new connection). A failure is answered
    /// (401, 438, 400, 441), and so are unknown comprehension-required attributes (420);
    /// `Err` carries that answer, `Ok` what the request's handler needs.
    fn authenticate_request<'m, 'a>(
        &mut self,
        msg: &'m Message<'a>,
        tuple: FiveTuple,
        now: Instant,
        owner: Option<u32>,
        owner_nonce: bool,
        out: &mut [u8],
    ) -> Result<(authn::Authenticated, Reply<'m, 'a>), Option<usize>> {
        let existing = owner.and_then(|i| self.slots.get(i as usize)?.as_ref());
        let also_nonce_of = existing.filter(|_| owner_nonce).map(|a| a.tuple.client);
        let now_unix = self.shared.config.unix_at(now);
        let auth = match authn::authenticate(
            &self.shared,
            msg,
            tuple.client,
            now_unix,
            existing,
            also_nonce_of,
        ) {
            Ok(a) => a,
            Err(f) => return Err(self.auth_failed(msg, f, tuple, now, out)),
        };
        self.stats.auth_ok.inc();
        let reply = Reply {
            msg,
            key: Some(auth.key),
        };
        if let Some(len) = self.reject_unknown(&reply, out) {
            return Err(len);
        }
        Ok((auth, reply))
    }

    fn reject_unknown(&mut self, reply: &Reply<'_, '_>, out: &mut [u8]) -> Option<Option<usize>> {
        let known = |t: u16| attr_type::is_known(t) && !attr_type::is_rfc5780_request(t);
        self.reject_unknown_by(reply, known, out)
    }

    /// 420 for the comprehension-required attributes `known` does not accept.
    fn reject_unknown_by(
        &mut self,
        reply: &Reply<'_, '_>,
        known: impl Fn(u16) -> bool,
        out: &mut [u8],
    ) -> Option<Option<usize>> {
        let mut unknown = [0u16; MAX_UNKNOWN_REPORTED];
        let n = reply
            .msg
            .unknown_comprehension_required(known, &mut unknown);
        if n == 0 {
            return None;
        }
        self.stats.unknown_attribute_errors.inc();
        self.stats.error_responses.inc();
        Some(self.unknown_attributes_error(reply, &unknown[..n], out))
    }

    fn unknown_attributes_error(
        &self,
        reply: &Reply<'_, '_>,
        unknown: &[u16],
        out: &mut [u8],
    ) -> Option<usize> {
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(ErrorCode::new(
            420,
            "Unknown Attribute",
        )))
        .ok()?;
        b.add_unknown_attributes(unknown).ok()?;
        self.finish(reply, b)
    }

    fn start<'b>(
        &self,
        msg: &Message<'_>,
        typ: MessageType,
        out: &'b mut [u8],
    ) -> Option<MessageBuilder<'b>> {
        MessageBuilder::with_cookie(out, typ, msg.cookie(), msg.transaction_id()).ok()
    }

    /// Adds SOFTWARE, then MESSAGE-INTEGRITY(-SHA256) when the request authenticated, then
    /// FINGERPRINT when the request had one.
    fn finish(&self, reply: &Reply<'_, '_>, mut b: MessageBuilder<'_>) -> Option<usize> {
        if let Some(s) = &self.shared.config.software {
            b.add(&Attribute::Software(s)).ok()?;
        }
        if let Some(key) = &reply.key {
            if reply.msg.has_integrity_sha256() {
                b.add_message_integrity_sha256(key.as_bytes()).ok()?;
            } else {
                b.add_message_integrity(key.as_bytes()).ok()?;
            }
        }
        if reply.msg.has_fingerprint() && !reply.msg.is_rfc3489() {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    fn error(
        &mut self,
        reply: &Reply<'_, '_>,
        code: u16,
        reason: &str,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.error_responses.inc();
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(ErrorCode::new(code, reason)))
            .ok()?;
        self.finish(reply, b)
    }

    /// 300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10), protected like the request.
    fn try_alternate(
        &mut self,
        reply: &Reply<'_, '_>,
        alt: SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.error_responses.inc();
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(ErrorCode::new(300, "Try Alternate")))
            .ok()?;
        b.add(&Attribute::AlternateServer(alt)).ok()?;
        self.finish(reply, b)
    }

    /// 401 or 438: ERROR-CODE, REALM, a fresh NONCE and PASSWORD-ALGORITHMS; no integrity.
    fn challenge(
        &mut self,
        msg: &Message<'_>,
        code: u16,
        client: SocketAddr,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        // A request without integrity was charged on arrival; one with integrity that
        // still ends here (bad key, stale nonce) is charged now.
        if (msg.has_integrity() || msg.has_integrity_sha256())
            && !self.unauth.admit(client.ip(), now)
        {
            self.suppressed = true;
            return Some(0);
        }
        self.stats.error_responses.inc();
        self.stats.auth_challenges.inc();
        let reason = if code == 438 {
            "Stale Nonce"
        } else {
            "Unauthorized"
        };
        let nonce = nonce::make_nonce(
            &self.shared.nonce_key,
            client,
            self.shared.config.unix_at(now),
        );
        // One credential set for REALM and PASSWORD-ALGORITHMS, even if SIGHUP replaces it.
        let store = self.shared.store();
        let mut b = self.start(msg, msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(ErrorCode::new(code, reason)))
            .ok()?;
        b.add(&Attribute::Realm(store.realm())).ok()?;
        b.add(&Attribute::Nonce(nonce.as_str())).ok()?;
        b.add_raw(
            attr_type::PASSWORD_ALGORITHMS,
            authn::offered_algorithms(&store),
        )
        .ok()?;
        // No SOFTWARE here: an answer to an unauthenticated request is kept as small as
        // the protocol allows (amplification), and tells nothing about the server.
        if msg.has_fingerprint() {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    fn turn_request(
        &mut self,
        msg: &Message<'_>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let method = msg.message_type().method;
        if !matches!(
            method,
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
        ) {
            return self.error(&Reply { msg, key: None }, 400, "Bad Request", out);
        }
        if method == Method::CONNECTION_BIND {
            return self.connection_bind(msg, tuple, now, out);
        }
        if self.tcp.by_data.contains_key(&tuple) {
            // A client data connection carries no more STUN.
            return self.error(&Reply { msg, key: None }, 400, "Bad Request", out);
        }
        let existing_idx = self.by_tuple.get(&tuple).copied();
        // A retransmitted Allocate gets the original success response again (§7.2).
        if method == Method::ALLOCATE
            && let Some(a) = existing_idx.and_then(|i| self.slots.get(i as usize)?.as_ref())
            && a.allocate_response.0 == msg.transaction_id()
            && msg.has_integrity() | msg.has_integrity_sha256()
        {
            let (_, bytes) = &a.allocate_response;
            let dst = out.get_mut(..bytes.len())?;
            dst.copy_from_slice(bytes);
            return Some(bytes.len());
        }
        let (auth, reply) =
            match self.authenticate_request(msg, tuple, now, existing_idx, false, out) {
                Ok(ok) => ok,
                Err(answer) => return answer,
            };
        match method {
            Method::ALLOCATE => self.allocate(&reply, auth, existing_idx, tuple, now, out, relays),
            _ => {
                let Some(idx) = existing_idx else {
                    return self.error(&reply, 437, "Allocation Mismatch", out);
                };
                match method {
                    Method::REFRESH => self.refresh(&reply, idx, now, out, relays),
                    Method::CREATE_PERMISSION => self.create_permission(&reply, idx, now, out),
                    Method::CONNECT => self.connect(&reply, idx, tuple, now, out, relays),
                    _ => self.channel_bind(&reply, idx, now, out),
                }
            }
        }
    }

    /// The lifetime of RFC 8656 §7.2, clamped to the credential's expiry.
    fn lifetime(&self, msg: &Message<'_>, expiry_unix: Option<u64>, now: Instant) -> Duration {
        let c = &self.shared.config;
        let asked = match msg.get_decoded(attr_type::LIFETIME) {
            Some(Ok(Attribute::Lifetime(s))) => Some(Duration::from_secs(u64::from(s))),
            _ => None,
        };
        let mut l = match asked {
            Some(a) if a.min(c.max_lifetime) > c.default_lifetime => a.min(c.max_lifetime),
            _ => c.default_lifetime,
        };
        if let Some(exp) = expiry_unix {
            let left = Duration::from_secs(exp.saturating_sub(c.unix_at(now)));
            l = l.min(left);
        }
        l
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate(
        &mut self,
        reply: &Reply<'_, '_>,
        auth: Authenticated,
        existing: Option<u32>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        if existing.is_some() {
            return self.error(reply, 437, "Allocation Mismatch", out);
        }
        if self.shared.is_draining() {
            // Shutting down: no new allocations (existing ones keep relaying).
            self.stats.capacity_rejections.inc();
            return match self.shared.config.alternate_server {
                Some(alt) => self.try_alternate(reply, alt, out),
                None => self.error(reply, 508, "Insufficient Capacity", out),
            };
        }
        let tcp = match msg.get_decoded(attr_type::REQUESTED_TRANSPORT) {
            Some(Ok(Attribute::RequestedTransport(TRANSPORT_UDP))) => false,
            Some(Ok(Attribute::RequestedTransport(TRANSPORT_TCP))) if self.shared.tcp.enabled => {
                true
            }
            Some(Ok(Attribute::RequestedTransport(_))) => {
                return self.error(reply, 442, "Unsupported Transport Protocol", out);
            }
            _ => return self.error(reply, 400, "Bad Request", out),
        };
        // RFC 6062 §5.1: a TCP allocation needs a TCP or TLS client connection, and takes
        // none of DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN.
        if tcp
            && (tuple.transport == Transport::Udp
                || [
                    attr_type::DONT_FRAGMENT,
                    attr_type::EVEN_PORT,
                    attr_type::RESERVATION_TOKEN,
                ]
                .iter()
                .any(|&t| msg.get(t).is_some()))
        {
            return self.error(reply, 400, "Bad Request", out);
        }
        let even_port = match msg.get_decoded(attr_type::EVEN_PORT) {
            Some(Ok(Attribute::EvenPort(r))) => Some(r),
            Some(Err(_)) => return self.error(reply, 400, "Bad Request", out),
            _ => None,
        };
        let token = match msg.get_decoded(attr_type::RESERVATION_TOKEN) {
            Some(Ok(Attribute::ReservationToken(t))) => Some(t),
            Some(Err(_)) => return self.error(reply, 400, "Bad Request", out),
            _ => None,
        };
        let family = match msg.get_decoded(attr_type::REQUESTED_ADDRESS_FAMILY) {
            Some(Ok(Attribute::RequestedAddressFamily(f))) => Some(f),
            Some(Err(_)) => return self.error(reply, 400, "Bad Request", out),
            _ => None,
        };
        // ADDITIONAL-ADDRESS-FAMILY asks for a dual allocation: only IPv6 is valid there,
        // and it excludes REQUESTED-ADDRESS-FAMILY, RESERVATION-TOKEN and EVEN-PORT with
        // R=1 (RFC 8656 §7.2).
        // coturn's clients (4.6 and older, `turnutils_uclient -Z`) send it under its draft
        // code point, 0x8032, and read ADDRESS-ERROR-CODE under 0x8033: answered in kind.
        let dual = match msg.get_decoded(attr_type::ADDITIONAL_ADDRESS_FAMILY) {
            Some(Ok(Attribute::AdditionalAddressFamily(AddressFamily::V6))) => {
                Some(attr_type::ADDRESS_ERROR_CODE)
            }
            Some(_) => return self.error(reply, 400, "Bad Request", out),
            None => match msg.get(LEGACY_ADDITIONAL_ADDRESS_FAMILY).map(|a| a.value) {
                Some([2, 0, 0, 0]) => Some(LEGACY_ADDRESS_ERROR_CODE),
                Some(_) => return self.error(reply, 400, "Bad Request", out),
                None => None,
            },
        };
        let error_attr = dual.unwrap_or(attr_type::ADDRESS_ERROR_CODE);
        let dual = dual.is_some();
        if dual && (family.is_some() || token.is_some() || even_port == Some(true)) {
            return self.error(reply, 400, "Bad Request", out);
        }
        if token.is_some() && (even_port.is_some() || family.is_some()) {
            return self.error(reply, 400, "Bad Request", out);
        }
        let dont_fragment = msg.get(attr_type::DONT_FRAGMENT).is_some();
        // A RESERVATION-TOKEN names the relayed address, family included (§7.2 step 5
        // comes before the family checks).
        let reserved = match token {
            Some(t) => {
                // The claiming Allocate takes a quota slot of its own below.
                match self.shared.take_reservation(&t) {
                    Some(r) if r.expires > now => Some(r.addr),
                    Some(r) => {
                        // Expired but not yet swept: release it here, or nobody will.
                        relays.release(r.addr);
                        return self.error(reply, 508, "Insufficient Capacity", out);
                    }
                    None => return self.error(reply, 508, "Insufficient Capacity", out),
                }
            }
            None => None,
        };
        let release_reserved = |relays: &mut dyn Relays| {
            if let Some(a) = reserved {
                relays.release(a);
            }
        };
        // The families to serve, in order (a dual allocation: IPv4, then IPv6), each with
        // where its relay binds (`None`: not configured here).
        let (relay_v4, relay_v6) = (self.shared.config.relay_v4, self.shared.config.relay_v6);
        let config_of = |f: AddressFamily| match f {
            AddressFamily::V4 => relay_v4,
            AddressFamily::V6 => relay_v6,
        };
        let wanted: &[AddressFamily] = if dual {
            &[AddressFamily::V4, AddressFamily::V6]
        } else {
            match reserved.map(|a| AddressFamily::of(a.ip())).or(family) {
                Some(AddressFamily::V6) => &[AddressFamily::V6],
                _ => &[AddressFamily::V4],
            }
        };
        // A dual TCP allocation serves IPv4 only (RFC 6062 relays one family).
        let servable =
            |f: AddressFamily| config_of(f).is_some() && !(tcp && dual && f == AddressFamily::V6);
        if !wanted.iter().any(|&f| servable(f)) {
            release_reserved(relays);
            return self.error(reply, 440, "Address Family not Supported", out);
        }
        let lifetime = self.lifetime(msg, auth.expiry_unix, now);
        if lifetime.is_zero() {
            release_reserved(relays);
            return self.challenge(msg, 401, tuple.client, now, out);
        }
        // EVEN-PORT R=1 holds a second port: it counts as a second allocation.
        let slots = 1 + u32::from(even_port == Some(true));
        if let Err(which) = self.shared.quota_take(&auth.user, tuple.client.ip(), slots) {
            release_reserved(relays);
            // A user over its quota gets 486; a server at its total capacity, 508 (§7.2).
            return match which {
                QuotaExceeded::User => {
                    self.stats.quota_rejections.inc();
                    self.error(reply, 486, "Allocation Quota Reached", out)
                }
                QuotaExceeded::Ip => {
                    self.stats.ip_quota_rejections.inc();
                    self.error(reply, 486, "Allocation Quota Reached", out)
                }
                QuotaExceeded::Total => {
                    self.stats.total_quota_rejections.inc();
                    self.error(reply, 508, "Insufficient Capacity", out)
                }
            };
        }
        // The relay sockets: (bound, advertised) per family served; the families that
        // could not be served, with their ADDRESS-ERROR-CODE.
        let mut reserving = Reserving {
            user: &auth.user,
            client: tuple.client.ip(),
            token: None,
        };
        let mut opened: Vec<(SocketAddr, SocketAddr)> = Vec::with_capacity(2);
        let mut refused: Option<(AddressFamily, u16)> = None;
        for &f in wanted {
            let Some(relay_addr) = config_of(f).filter(|_| servable(f)) else {
                refused = Some((f, 440));
                continue;
            };
            let bound = match reserved {
                Some(addr) => relays.claim(addr, dont_fragment).ok().map(|_| addr),
                None if tcp => self.open_tcp_relay(relay_addr.bind, relays),
                None => self.open_relay(
                    relay_addr.bind,
                    even_port,
                    dont_fragment,
                    now,
                    relays,
                    &mut reserving,
                ),
            };
            match bound {
                Some(relay) => {
                    let advertise_ip = if relay.ip() == relay_addr.bind {
                        relay_addr.advertise
                    } else {
                        relay.ip()
                    };
                    opened.push((relay, SocketAddr::new(advertise_ip, relay.port())));
                }
                None => refused = Some((f, 508)),
            }
        }
        let new_token = reserving.token;
        if slots == 2 && new_token.is_none() {
            // No reservation was made (a TCP allocation reserves nothing).
            self.shared.quota_release(&auth.user, tuple.client.ip());
        }
        let Some(&(relay, advertised)) = opened.first() else {
            self.shared.quota_release(&auth.user, tuple.client.ip());
            self.stats.capacity_rejections.inc();
            return self.error(reply, 508, "Insufficient Capacity", out);
        };
        let additional = opened.get(1).copied();
        let address_error = if dual {
            refused.map(|(f, code)| (error_attr, f, code))
        } else {
            None
        };

        // The success response, kept for retransmissions. If it cannot be written, undo.
        let Some(len) = self.allocate_success(
            reply,
            &opened,
            address_error,
            lifetime,
            new_token,
            tuple,
            out,
        ) else {
            for &(r, _) in &opened {
                relays.close(r);
            }
            if let Some(t) = new_token
                && let Some(r) = self.shared.take_reservation(&t)
            {
                relays.release(r.addr);
            }
            self.shared.quota_release(&auth.user, tuple.client.ip());
            return None;
        };
        let alloc = Allocation {
            tuple,
            relay,
            advertised,
            additional,
            username: auth.username,
            user: auth.user,
            key: auth.key,
            algorithm: auth.algorithm,
            expires: now + lifetime,
            credential_expiry_unix: auth.expiry_unix,
            started: now,
            started_unix: self.shared.config.unix_at(now),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_by_peer: HashMap::new(),
            allocate_response: (msg.transaction_id(), out[..len].to_vec()),
            traffic: Traffic::default(),
            buckets: [TokenBucket::new(now, self.burst()); 2],
            policy_generation: self.shared.policy_generation(),
            scheduled: now + lifetime,
            tcp: tcp.then(TcpAllocation::default),
            reservation: new_token,
            id: {
                self.next_id += 1;
                self.id_prefix | self.next_id
            },
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(alloc);
                i
            }
            None => {
                self.slots.push(Some(alloc));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_tuple.insert(tuple, idx);
        let transport = if tcp {
            RelayTransport::Tcp
        } else {
            RelayTransport::Udp
        };
        self.shared
            .add_live_relays(transport, opened.iter().flat_map(|&(r, a)| [r, a]));
        for &(r, _) in &opened {
            self.by_relay.insert(r, idx);
        }
        self.timers.push(Reverse((now + lifetime, idx)));
        self.stats.allocations_created.inc();
        tracing::debug!(client = %tuple.client, %relay, %advertised, additional = ?additional.map(|a| a.1), lifetime = lifetime.as_secs(), "allocation created");
        Some(len)
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate_success(
        &self,
        reply: &Reply<'_, '_>,
        relayed: &[(SocketAddr, SocketAddr)],
        address_error: Option<(crate::stun::AttributeType, AddressFamily, u16)>,
        lifetime: Duration,
        token: Option<[u8; 8]>,
        tuple: FiveTuple,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let mut b = self.start(msg, msg.message_type().success(), out)?;
        for &(_, advertised) in relayed {
            b.add(&Attribute::XorRelayedAddress(advertised)).ok()?;
        }
        if let Some((typ, family, code)) = address_error {
            let reason = if code == 440 {
                "Address Family not Supported"
            } else {
                "Insufficient Capacity"
            };
            let mut value = [0u8; 64];
            let n = Attribute::AddressErrorCode(family, ErrorCode::new(code, reason))
                .encode_value(&msg.transaction_id(), &mut value)
                .ok()?;
            b.add_raw(typ, &value[..n]).ok()?;
        }
        b.add(&Attribute::Lifetime(
            lifetime.as_secs().min(u64::from(u32::MAX)) as u32,
        ))
        .ok()?;
        if let Some(t) = token {
            b.add(&Attribute::ReservationToken(t)).ok()?;
        }
        b.add(&Attribute::XorMappedAddress(tuple.client)).ok()?;
        self.finish(reply, b)
    }

    /// Picks a port at random in the range (even if asked, with the next one reserved if
    /// R=1) and asks the I/O layer to bind it; retries on ports in use.
    fn open_relay(
        &mut self,
        ip: IpAddr,
        even_port: Option<bool>,
        dont_fragment: bool,
        now: Instant,
        relays: &mut dyn Relays,
        reserving: &mut Reserving<'_>,
    ) -> Option<SocketAddr> {
        let range = self.shared.config.ports;
        let span = u64::from(range.hi - range.lo) + 1;
        for _ in 0..PORT_ATTEMPTS {
            let mut port = range.lo as u64 + self.secret_rng.next() % span;
            if even_port.is_some() {
                port &= !1;
                if port < u64::from(range.lo) {
                    port += 2;
                }
                if port > u64::from(range.hi)
                    || (even_port == Some(true) && port + 1 > u64::from(range.hi))
                {
                    continue;
                }
            }
            let addr = SocketAddr::new(ip, port as u16);
            if even_port == Some(true) {
                let next = SocketAddr::new(ip, port as u16 + 1);
                if relays.reserve(next).is_err() {
                    continue;
                }
                if relays.open(addr, dont_fragment).is_err() {
                    relays.release(next);
                    continue;
                }
                let t = self.secret_rng.next().to_be_bytes();
                if let Ok(mut r) = self.shared.reservations.lock() {
                    r.insert(
                        t,
                        Reservation {
                            addr: next,
                            expires: now + RESERVATION_LIFETIME,
                            user: reserving.user.to_string(),
                            client: reserving.client,
                        },
                    );
                }
                reserving.token = Some(t);
                return Some(addr);
            }
            match relays.open(addr, dont_fragment) {
                Ok(()) => return Some(addr),
                Err(_) => continue,
            }
        }
        None
    }

    fn refresh(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        let Some(alloc) = self
            .slots
            .get(idx as usize)?
            .as_ref()
            .filter(|a| a.expires > now)
        else {
            // Expired (the timer has not removed it yet): it cannot be revived.
            return self.error(reply, 437, "Allocation Mismatch", out);
        };
        // REQUESTED-ADDRESS-FAMILY names one relayed address of the allocation (§8): a
        // family it lacks gets 443.
        let family = match msg.get_decoded(attr_type::REQUESTED_ADDRESS_FAMILY) {
            Some(Ok(Attribute::RequestedAddressFamily(f))) => Some(f),
            Some(Err(_)) => return self.error(reply, 400, "Bad Request", out),
            _ => None,
        };
        if let Some(f) = family
            && alloc.relay_for(family_ip(f)).is_none()
        {
            return self.error(reply, 443, "Peer Address Family Mismatch", out);
        }
        let asked_zero = matches!(
            msg.get_decoded(attr_type::LIFETIME),
            Some(Ok(Attribute::Lifetime(0)))
        );
        // In a dual allocation, LIFETIME 0 with REQUESTED-ADDRESS-FAMILY deletes that
        // family's relayed address only; the other one lives on.
        if asked_zero
            && let Some(f) = family
            && alloc.additional.is_some()
        {
            let len = {
                let mut b = self.start(msg, msg.message_type().success(), out)?;
                b.add(&Attribute::Lifetime(0)).ok()?;
                self.finish(reply, b)?
            };
            self.drop_family(idx, f, relays);
            return Some(len);
        }
        let lifetime = if asked_zero {
            Duration::ZERO
        } else {
            self.lifetime(msg, alloc.credential_expiry_unix, now)
        };
        let len = {
            let mut b = self.start(msg, msg.message_type().success(), out)?;
            b.add(&Attribute::Lifetime(lifetime.as_secs() as u32))
                .ok()?;
            self.finish(reply, b)?
        };
        if lifetime.is_zero() {
            self.remove(idx, now, EndReason::Deleted, relays);
        } else if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            a.expires = now + lifetime;
        }
        self.reschedule(idx);
        Some(len)
    }

    /// Removes one relayed address of a dual allocation (its relay socket, and the
    /// permissions and channels of that family); the allocation keeps the other.
    fn drop_family(&mut self, idx: u32, f: AddressFamily, relays: &mut dyn Relays) {
        let Some(Some(a)) = self.slots.get_mut(idx as usize) else {
            return;
        };
        let Some((extra, extra_adv)) = a.additional.take() else {
            return;
        };
        let gone = if AddressFamily::of(a.relay.ip()) == f {
            let gone = (a.relay, a.advertised);
            (a.relay, a.advertised) = (extra, extra_adv);
            gone
        } else {
            (extra, extra_adv)
        };
        let v4 = f == AddressFamily::V4;
        a.permissions.retain(|ip, _| ip.is_ipv4() != v4);
        a.channels.retain(|_, c| c.peer.is_ipv4() != v4);
        a.channel_by_peer.retain(|p, _| p.is_ipv4() != v4);
        self.by_relay.remove(&gone.0);
        self.shared
            .remove_live_relays(a.relay_transport(), [gone.0, gone.1]);
        relays.close(gone.0);
    }

    /// Validates one XOR-PEER-ADDRESS for an allocation: family, then policy (on the
    /// allocation's relay transport). `Ok(Some(lease))`: allowed only as a live relay of
    /// this server ([`Shared::check_peer_policy`]).
    fn check_peer(
        &self,
        alloc: &Allocation,
        peer: SocketAddr,
        with_port: bool,
    ) -> Result<Option<Lease>, (u16, &'static str)> {
        if alloc.relay_for(peer.ip()).is_none() {
            return Err((443, "Peer Address Family Mismatch"));
        }
        self.shared
            .check_peer_policy(peer, with_port, alloc.relay_transport())
            .map_err(|_| {
                self.stats.policy_denied.inc();
                (403, "Forbidden")
            })
    }

    fn create_permission(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let tid = msg.transaction_id();
        let mut count = 0usize;
        for raw in msg
            .attributes()
            .filter(|a| a.typ == attr_type::XOR_PEER_ADDRESS)
        {
            let Ok(Attribute::XorPeerAddress(peer)) = Attribute::decode(raw, &tid) else {
                return self.error(reply, 400, "Bad Request", out);
            };
            let alloc = self.slots.get(idx as usize)?.as_ref()?;
            if let Err((code, reason)) = self.check_peer(alloc, peer, false) {
                return self.error(reply, code, reason, out);
            }
            count += 1;
        }
        if count == 0 {
            return self.error(reply, 400, "Bad Request", out);
        }
        let max_permissions = self.shared.limits().max_permissions;
        let alloc = self.slots.get_mut(idx as usize)?.as_mut()?;
        let mut new: Vec<IpAddr> = msg
            .attributes()
            .filter(|a| a.typ == attr_type::XOR_PEER_ADDRESS)
            .filter_map(|raw| match Attribute::decode(raw, &tid) {
                Ok(Attribute::XorPeerAddress(p)) => Some(p.ip()),
                _ => None,
            })
            .filter(|ip| !alloc.permissions.contains_key(ip))
            .collect();
        new.sort_unstable();
        new.dedup();
        let new = new.len();
        if alloc.permissions.len() + new > max_permissions {
            return self.error(reply, 508, "Insufficient Capacity", out);
        }
        for raw in msg
            .attributes()
            .filter(|a| a.typ == attr_type::XOR_PEER_ADDRESS)
        {
            if let Ok(Attribute::XorPeerAddress(p)) = Attribute::decode(raw, &tid) {
                alloc.permit(p.ip(), now);
            }
        }
        self.reschedule(idx);
        let b = self.start(msg, msg.message_type().success(), out)?;
        self.finish(reply, b)
    }

    fn channel_bind(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let number = match msg.get_decoded(attr_type::CHANNEL_NUMBER) {
            Some(Ok(Attribute::ChannelNumber(n)))
                if self.shared.config.channel_range.contains(n) =>
            {
                n
            }
            _ => return self.error(reply, 400, "Bad Request", out),
        };
        let peer = match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(p))) => p,
            _ => return self.error(reply, 400, "Bad Request", out),
        };
        // A number bound (or cooling down) for another peer, or a peer with another number
        // (RFC 8656 §11.2 lists these 400s first). A TCP allocation has no channels.
        let alloc = self.slots.get(idx as usize)?.as_ref()?;
        let conflict = alloc.tcp.is_some()
            || alloc.channels.get(&number).is_some_and(|c| c.peer != peer)
            || alloc
                .channel_by_peer
                .get(&peer)
                .is_some_and(|&n| n != number);
        if conflict {
            return self.error(reply, 400, "Bad Request", out);
        }
        let exempt = match self.check_peer(alloc, peer, true) {
            Ok(lease) => lease,
            Err((code, reason)) => return self.error(reply, code, reason, out),
        };
        let (max_permissions, max_channels) = (
            self.shared.limits().max_permissions,
            self.shared.limits().max_channels,
        );
        let alloc = self.slots.get_mut(idx as usize)?.as_mut()?;
        let over_permissions = !alloc.permissions.contains_key(&peer.ip())
            && alloc.permissions.len() >= max_permissions;
        let over_channels =
            !alloc.channels.contains_key(&number) && alloc.channels.len() >= max_channels;
        if over_permissions || over_channels {
            return self.error(reply, 508, "Insufficient Capacity", out);
        }
        alloc.channels.insert(
            number,
            allocation::Channel {
                peer,
                expires: now + CHANNEL_LIFETIME,
                exempt,
            },
        );
        alloc.channel_by_peer.insert(peer, number);
        alloc.permit(peer.ip(), now);
        self.reschedule(idx);
        let b = self.start(msg, msg.message_type().success(), out)?;
        self.finish(reply, b)
    }

    /// After a policy reload, drops the permissions and channels of allocation `idx` that
    /// the new policy denies ("checked again at send time"). Cheap when nothing changed.
    #[inline]
    fn revalidate(&mut self, idx: u32) {
        let generation = self.shared.policy_generation();
        let Some(Some(alloc)) = self.slots.get_mut(idx as usize) else {
            return;
        };
        if alloc.policy_generation == generation {
            return;
        }
        alloc.policy_generation = generation;
        let shared = &self.shared;
        let transport = alloc.relay_transport();
        alloc.permissions.retain(|ip, _| {
            shared
                .check_peer_policy(SocketAddr::new(*ip, 0), false, transport)
                .is_ok()
        });
        let mut gone = Vec::new();
        alloc.channels.retain(|_, c| {
            match shared.check_peer_policy(c.peer, true, RelayTransport::Udp) {
                Ok(lease) => {
                    c.exempt = lease;
                    true
                }
                Err(_) => {
                    gone.push(c.peer);
                    false
                }
            }
        });
        for peer in gone {
            alloc.channel_by_peer.remove(&peer);
        }
    }

    /// Makes sure the allocation's timer fires no later than its next deadline. Only an
    /// earlier deadline pushes a new entry (a later one is handled when the current entry
    /// fires and re-arms), so refreshes and permissions cannot grow the heap: each
    /// allocation has one live entry, plus at most one stale entry per shortening.
    fn reschedule(&mut self, idx: u32) {
        if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            let next = a.next_deadline();
            if next < a.scheduled {
                a.scheduled = next;
                self.timers.push(Reverse((next, idx)));
            }
        }
        self.compact_timers();
    }

    fn remove(&mut self, idx: u32, now: Instant, why: EndReason, relays: &mut dyn Relays) {
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        let Some(mut a) = slot.take() else { return };
        let transport = a.relay_transport();
        self.free.push(idx);
        if let Some(tcp) = a.tcp.take() {
            self.tcp_close_all(tcp, a.tuple, why, relays);
        }
        // A reservation nobody claimed ends with the allocation that made it.
        if let Some(t) = a.reservation.take()
            && let Some(r) = self.shared.take_reservation(&t)
        {
            relays.release(r.addr);
        }
        self.by_tuple.remove(&a.tuple);
        for r in a.relay_sockets() {
            self.by_relay.remove(&r);
        }
        self.shared
            .remove_live_relays(transport, a.relayed_addresses());
        for r in a.relay_sockets() {
            relays.close(r);
        }
        self.shared.quota_release(&a.user, a.tuple.client.ip());
        self.stats.allocations_ended.inc();
        match why {
            EndReason::Expired => self.stats.ended_expired.inc(),
            EndReason::Deleted => self.stats.ended_deleted.inc(),
            EndReason::ConnectionClosed => self.stats.ended_connection_closed.inc(),
            EndReason::Admin => self.stats.ended_admin.inc(),
            EndReason::Shutdown => self.stats.ended_shutdown.inc(),
        }
        let t = a.traffic;
        tracing::info!(
            target: "ternd::session",
            user = %a.user,
            username = %a.username,
            client = %a.tuple.client,
            relay = %a.advertised,
            additional_relay = ?a.additional.map(|(_, adv)| adv),
            start = a.started_unix,
            duration_s = now.saturating_duration_since(a.started).as_secs(),
            packets_out = t.packets_out,
            bytes_out = t.bytes_out,
            packets_in = t.packets_in,
            bytes_in = t.bytes_in,
            reason = why.as_str(),
            "allocation ended"
        );
        if self.by_tuple.is_empty() {
            // Let the timer heap and slab shrink after bursts.
            self.timers.clear();
        } else {
            self.compact_timers();
        }
    }

    /// Most stale timer entries tolerated beyond twice the live allocations.
    pub const TIMER_SLACK: usize = 1024;

    /// A removed allocation, or a shortened deadline, leaves an entry behind until its time
    /// (up to the maximum lifetime). Once stale entries outnumber live ones by
    /// [`Server::TIMER_SLACK`], sweep them (amortised O(1) per entry pushed), so the heap
    /// stays within `2 × allocations + TIMER_SLACK`.
    fn compact_timers(&mut self) {
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

#[cfg(test)]
mod tests;

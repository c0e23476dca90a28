//! The sans-IO server core: it takes a packet, the 5-tuple it arrived on and `now`, and
//! writes what to send into a caller's buffer, or says where to forward it. It never opens
//! a socket or reads a clock.
//!
//! # How to drive it
//!
//! One [`Server`] per worker. Three kinds of output, and the inputs that produce them:
//!
//! - **The routing decision**, returned by value from each per-packet input, so the hot
//!   path never queues or allocates:
//!   - [`Server::handle_client`] for every packet a listener receives from a client (a
//!     datagram, or one frame of a stream), with its [`FiveTuple`], `now`, an output
//!     buffer and the worker's [`Relays`] (through which the core binds relay sockets).
//!     Act on the returned [`Outcome`]: send `out[..len]` back to the client for
//!     [`Outcome::Reply`] (or from `from` to `to` for [`Outcome::ReplyVia`]); send
//!     `packet[start..start + len]` from the relay socket `relay` to `peer` for
//!     [`Outcome::Forward`] (the payload is a sub-slice of the receive buffer: no copy);
//!     nothing for [`Outcome::Consumed`] and [`Outcome::Dropped`] (already counted).
//!   - [`Server::handle_peer`] for every datagram a relay socket receives. Receive it at
//!     offset [`PEER_HEADROOM`] of the buffer, so the core can write the ChannelData or
//!     Data indication header in front of the payload; then send `buf[start..start + len]`
//!     to the client of [`PeerOutcome::ToClient`].
//! - **Commands** ([`Command`], from [`Server::poll_command`]): every control effect, in
//!   the order it arose. Drain them (until `None`) after every input, at the latest after
//!   each batch of datagrams, and carry them out (a packet input queues one only when it
//!   ends something, such as a channel whose peer a reloaded policy denies):
//!   - [`Command::CloseRelay`]: close that relay socket (or TCP relay listener).
//!   - [`Command::CloseTcp`]: close that RFC 6062 peer connection (or abandon connecting
//!     it) and the client data connection spliced to it.
//!   - [`Command::AllocationEnded`]: write its accounting record (the shell's session log
//!     line); the core logs nothing about it itself.
//!   - [`Command::ChannelBound`] / [`Command::ChannelUnbound`]: a channel starts or stops
//!     relaying; for whatever mirrors the channel table (a kernel fast path, a cluster
//!     registry). Nothing needs doing for them otherwise.
//! - **Messages the core sends on its own** (RFC 6062 only): [`Server::poll_output`]; see
//!   below.
//!
//! The timer: call [`Server::handle_timeout`] when [`Server::poll_timeout`] says (or at
//! least once a second). It expires allocations, permissions, channels, RFC 6062
//! connections and port reservations; what the shell must act on comes out as commands
//! (an expired permission needs nothing: the core stops relaying for it). The admin and
//! teardown inputs ([`Server::end_session`], [`Server::end_user_sessions`],
//! [`Server::close_tuple`], [`Server::shutdown`]) produce commands too.
//!
//! The order, after each input: act on the returned decision first (a reply may have to
//! leave before a splice, say), then drain [`Server::poll_output`], then
//! [`Server::poll_command`]; then sleep until the earliest of the sockets and
//! [`Server::poll_timeout`] (which can move after any input).
//!
//! Binding a relay socket stays a synchronous call on [`Relays`] (see there why): its
//! success decides the Allocate's answer.
//!
//! ## RFC 6062 TCP allocations (`tcp_relay`)
//!
//! Set with [`Shared::with_tcp_relay`]. A TCP allocation's relayed address is a TCP
//! listener ([`Relays::listen_tcp`], closed by [`Command::CloseRelay`]); connections with peers
//! are opened with [`Relays::connect_tcp`] and closed by [`Command::CloseTcp`], and are
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
//! - With [`CoreConfig::cluster_admission`] and a user quota, an Allocate answers nothing
//!   at once either: a [`Command::Admit`] asks the cluster, and [`Server::admit`] gives its
//!   verdict and returns the answer to send.
//! - A Connect request answers nothing at once ([`Outcome::Consumed`]): its response comes
//!   out of `poll_output` when the connection is up, has failed, or after 30 s.
//! - When a spliced client data connection closes, call [`Server::close_tuple`] for it (or
//!   `handle_tcp_event` with [`TcpEvent::Closed`]); either closes its peer connection.
//!
//! Time comes in as `now: Instant`; wall-clock time (for REST credential expiry and nonces)
//! is derived from it through the anchor in [`CoreConfig::clock_anchor`], so tests can
//! move both at once. Counters live in [`Stats`], one per worker, summed when read.
//!
//! # Layout
//!
//! One module per request kind, each decoding its request into a typed struct, then
//! validating, deciding and applying: `binding` (with RFC 5780), `allocate`, `refresh`,
//! `permission` (CreatePermission and the peer check), `channel` (ChannelBind, and
//! ChannelData from clients), `indication` (Send indications; ChannelData and Data
//! indications to clients) and `connect` (RFC 6062 Connect, ConnectionBind and peer
//! connections; its types in `tcp`). Around them: `dispatch` routes client packets,
//! `respond` builds answers and authenticates, [`codes`] names the error codes, `shared`
//! holds what workers share (quotas, reservations, [`Limits`], [`Shared`]), `timers` the
//! timer heap, `expiry` expiry and teardown, `sessions` the admin API's view, `admission`
//! the Allocates waiting for a cluster's verdict; `cluster` (what a cluster tells the core:
//! revocations, redirect targets, capacity), `types`, `config`, `relays`, `allocation`, `authn`, `limit`, `rng` and `stats` are leaves. Their
//! imports form no cycle: handlers use the leaves, `dispatch` uses the handlers, and no
//! handler uses another except through the leaves (`permission`'s peer check, `timers`,
//! `expiry`).

mod admission;
mod allocate;
mod allocation;
mod authn;
mod binding;
mod channel;
mod cluster;
pub mod codes;
mod command;
mod config;
mod connect;
mod dispatch;
mod expiry;
mod indication;
pub mod limit;
mod permission;
mod ports;
mod refresh;
mod refusal;
mod relays;
mod respond;
mod rng;
mod sessions;
mod shared;
mod stats;
mod tcp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timers;
mod types;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use admission::{ADMISSION_TIMEOUT, MAX_WAITING};
pub use allocation::{
    Allocation, CHANNEL_COOLDOWN, CHANNEL_LIFETIME, DEFAULT_MAX_CHANNELS, DEFAULT_MAX_PERMISSIONS,
    PERMISSION_LIFETIME, TokenBucket,
};
pub use cluster::{ClusterView, MAX_REVOCATIONS};
pub use command::{AccountingRecord, Admission, ClientAddr, Command, PeerAddr, RelayAddr};
pub use config::{
    CoreConfig, DEFAULT_MAX_ALLOCATIONS_PER_IP, DEFAULT_UNAUTH_RATE_BURST,
    DEFAULT_UNAUTH_RATE_LIMIT, Limits, MAX_RESPONSE_PADDING, RelayAddress, Rfc5780,
};
pub use limit::UNAUTH_TABLE_SLOTS;
pub use ports::{ParsePortRangeError, PortRange};
pub use relays::Relays;
pub use sessions::SessionInfo;
pub use shared::{RESERVATION_LIFETIME, Shared};
pub use stats::{
    ALLOCATE_LATENCY_BOUNDS, ALLOCATION_DURATION_BOUNDS, Counter, Histogram, HistogramSnapshot,
    REQUEST_METHODS, RESPONSE_CODES, Stats, StatsSnapshot,
};
pub use tcp::{
    CONNECTION_BIND_TIMEOUT, DEFAULT_MAX_TCP_CONNECTIONS, Output, TCP_CONNECT_TIMEOUT,
    TRANSPORT_TCP, TcpAllocation, TcpConnState, TcpConnection, TcpEvent, TcpRelayConfig,
    TcpVerdict,
};
pub use types::{
    DropReason, EndReason, FiveTuple, Lease, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome,
    RelayTransport, TRANSPORT_UDP, Traffic, Transport,
};

use limit::UnauthLimiter;
use rng::{Rng, SecretRng};
use tcp::{Queued, TcpIndex};

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
    tcp: TcpIndex,
    /// What [`Server::poll_output`] hands out.
    outputs: VecDeque<Queued>,
    /// What [`Server::poll_command`] hands out.
    commands: VecDeque<Command>,
    /// Per-source budgets for unauthenticated requests and 401/438 answers.
    unauth: UnauthLimiter,
    /// Set by `challenge` when the limiter refuses the answer: the request is dropped
    /// instead.
    suppressed: bool,
    /// Set by `binding` when an RFC 5780 answer leaves by another way.
    redirect: Option<(SocketAddr, SocketAddr)>,
    /// This worker's copy of the shared limits, and its generation.
    limits: (u64, Limits),
    /// Allocates waiting for the cluster's verdict.
    waiting: admission::WaitingRoom,
    /// When each client's refusals were last logged.
    refusals: refusal::RefusalLog,
    /// The reason behind the next error answer, set where it is decided.
    why: std::cell::Cell<Option<refusal::Refusal>>,
    /// The client and the time of the request being handled (for the refusal log).
    ctx: (std::net::SocketAddr, Instant),
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
        let (generation, limits) = (shared.limits_generation(), shared.limits());
        let unauth = UnauthLimiter::new(
            shared.config.unauth_rate_limit,
            shared.config.unauth_rate_burst,
            lk,
            shared.config.clock_anchor.0,
        );
        let shared_anchor = shared.config.clock_anchor.0;
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
            tcp: TcpIndex::default(),
            outputs: VecDeque::new(),
            commands: VecDeque::new(),
            secret_rng: SecretRng::new(secret_key),
            unauth,
            suppressed: false,
            redirect: None,
            limits: (generation, limits),
            waiting: admission::WaitingRoom::default(),
            refusals: refusal::RefusalLog::new(u64::from_le_bytes(t) ^ 0x7265_6675_7361_6c73),
            why: std::cell::Cell::new(None),
            ctx: (std::net::SocketAddr::from(([0, 0, 0, 0], 0)), shared_anchor),
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

    /// The allocation in slot `idx` if it has not expired by `now` (one the timer has not
    /// removed yet cannot be used or revived).
    fn live_allocation(&self, idx: u32, now: Instant) -> Option<&Allocation> {
        self.slots
            .get(idx as usize)?
            .as_ref()
            .filter(|a| a.expires > now)
    }

    /// Sizes of the per-client maps (allocations by 5-tuple, by relay address, timers):
    /// what unauthenticated traffic must never grow.
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        (self.by_tuple.len(), self.by_relay.len(), self.timers.len())
    }

    /// The next control effect for the shell to carry out ([`Command`]), in the order they
    /// arose; `None` when there is none. Drain it (until `None`) after every input.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// Numbers this worker's session ids (the admin API's) apart from other workers'.
    pub fn set_worker_index(&mut self, index: u16) {
        self.id_prefix = u64::from(index) << 48;
        self.worker = index;
    }

    /// The limits in force: this worker's copy, read again from [`Shared`] when they were
    /// replaced (one atomic load when they were not).
    #[inline]
    pub(super) fn limits(&mut self) -> Limits {
        let generation = self.shared.limits_generation();
        if generation != self.limits.0 {
            self.limits = (generation, self.shared.limits());
        }
        self.limits.1
    }

    /// `max_bps` in force and its bucket size: a quarter second of traffic, at least two
    /// full-size datagrams so a packet is never too big to ever pass.
    #[inline]
    fn bandwidth(&mut self) -> (u64, u64) {
        let max_bps = self.limits().max_bps;
        (max_bps, (max_bps / 4).max(2 * 1500))
    }
}

#[cfg(test)]
mod tests;

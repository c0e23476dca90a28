//! RFC 6062 TCP allocations: the Connect, ConnectionBind and ConnectionAttempt state
//! machine, sans IO.
//!
//! A TCP allocation's relayed transport address is a TCP *listening* socket
//! ([`Relays::listen_tcp`]). Each TCP connection with a peer (opened by a Connect request,
//! or accepted on the listener) gets a CONNECTION-ID chosen here, unique on the whole
//! server (registered in [`Shared`], so a ConnectionBind that lands on another worker can
//! be handed to the owner). A connection goes through:
//!
//! - `Connecting` (Connect only): the I/O layer is connecting ([`Relays::connect_tcp`]);
//!   the Connect transaction waits, and is answered when the I/O layer reports
//!   [`TcpEvent::Connected`] (success with CONNECTION-ID) or [`TcpEvent::ConnectFailed`],
//!   or after [`TCP_CONNECT_TIMEOUT`] (447 either way);
//! - `Pending`: the peer data connection is up and waits for a ConnectionBind on a new
//!   client connection; unbound after [`CONNECTION_BIND_TIMEOUT`], it is closed;
//! - `Bound`: the client data connection and the peer data connection are spliced by the
//!   I/O layer ([`Output::Splice`]); the core keeps only the record, until either side
//!   closes ([`TcpEvent::Closed`]) or the allocation ends.
//!
//! Answers and indications produced outside [`Server::handle_client`] (the deferred Connect
//! response, ConnectionAttempt) and decisions about a client connection (splice, hand-off)
//! queue up for [`Server::poll_output`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::authn::AuthFailure;
use super::{
    AddressFamily, Attribute, Class, EndReason, ErrorCode, FiveTuple, Key, Message, MessageBuilder,
    MessageType, Method, PORT_ATTEMPTS, Relays, Reply, Server, Shared, TransactionId, Transport,
    attr_type, stats,
};

/// The REQUESTED-TRANSPORT value for TCP (RFC 6062 §6.1).
pub const TRANSPORT_TCP: u8 = 6;
/// How long a Connect waits for the peer before 447 (RFC 6062 §5.2: at least 30 s).
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer data connection waits for its ConnectionBind before it is closed
/// (RFC 6062 §5.2, §5.3: 30 s).
pub const CONNECTION_BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for the most TCP connections (connecting, pending or bound) per allocation.
pub const DEFAULT_MAX_TCP_CONNECTIONS: usize = 64;
/// Connection ids drawn before giving up on a free one (508).
const ID_ATTEMPTS: usize = 16;

/// RFC 6062 settings (`tcp_relay`, off by default as the hardening guides advise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRelayConfig {
    /// Accept Allocate with REQUESTED-TRANSPORT = TCP (over a TCP or TLS client connection).
    pub enabled: bool,
    /// Most TCP connections with peers one allocation may hold at once (connecting,
    /// waiting for a ConnectionBind, or bound). A Connect over the limit gets 508; an
    /// incoming connection over it is closed.
    pub max_connections_per_allocation: usize,
}

impl Default for TcpRelayConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_connections_per_allocation: DEFAULT_MAX_TCP_CONNECTIONS,
        }
    }
}

/// What the I/O layer reports about TCP connections with peers, through
/// [`Server::handle_tcp_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEvent {
    /// The connection started by [`Relays::connect_tcp`] with this id is established.
    Connected {
        /// Its CONNECTION-ID.
        id: u32,
    },
    /// That connection could not be established (refused, unreachable, reset, error).
    ConnectFailed {
        /// Its CONNECTION-ID.
        id: u32,
    },
    /// A peer connected to the TCP relay listener at `relay` (already accepted).
    Accepted {
        /// The listener's local address (as passed to [`Relays::listen_tcp`]).
        relay: SocketAddr,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// The peer connection `id`, or the client data connection bound to it, closed or
    /// failed. The I/O layer closes the other side itself.
    Closed {
        /// Its CONNECTION-ID.
        id: u32,
    },
}

/// What to do with the connection a [`TcpEvent`] was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum TcpVerdict {
    /// Keep it, tagged with this CONNECTION-ID (for [`TcpEvent::Accepted`], the id the core
    /// chose), and buffer what the peer sends until it is spliced.
    Keep {
        /// Its CONNECTION-ID.
        id: u32,
    },
    /// Close it (if still open) and forget it: the core will not mention it again.
    Close,
}

/// What [`Server::poll_output`] asks the I/O layer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Send `out[..len]` to the client on `tuple` (a control connection): a deferred
    /// Connect response or a ConnectionAttempt indication. Drop it if that connection is
    /// gone.
    Transmit {
        /// The client's control connection.
        tuple: FiveTuple,
        /// Length of the message in the output buffer.
        len: usize,
    },
    /// The client connection `tuple` just bound peer connection `connection_id` (its
    /// ConnectionBind success response was the [`super::Outcome::Reply`] just returned):
    /// after writing that response, stop parsing STUN on `tuple` and splice it with the
    /// peer connection, both ways, as raw bytes. Bytes already read after the
    /// ConnectionBind frame, and what the peer sent meanwhile, go through first.
    Splice {
        /// The client data connection.
        tuple: FiveTuple,
        /// The peer data connection's CONNECTION-ID.
        connection_id: u32,
    },
    /// The ConnectionBind just received on `tuple` belongs to a connection owned by
    /// another worker: move the client connection (socket, TLS state and unread bytes)
    /// to worker `worker` and feed the same frame to that worker's
    /// [`Server::handle_client`]. (Never emitted with a single worker.)
    Handoff {
        /// The client connection.
        tuple: FiveTuple,
        /// The owning worker's index (as given to [`Server::set_worker_index`]).
        worker: u16,
    },
}

/// Where a TCP connection with a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpConnState {
    /// Being opened for a Connect request, whose answer waits.
    Connecting,
    /// Established, waiting for a ConnectionBind.
    Pending,
    /// Spliced with this client data connection.
    Bound {
        /// The client data connection.
        data: FiveTuple,
    },
}

/// One TCP connection with a peer.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    /// Its CONNECTION-ID.
    pub id: u32,
    /// The peer.
    pub peer: SocketAddr,
    /// Its state.
    pub state: TcpConnState,
    /// When it times out (connect or ConnectionBind timeout); `None` once bound.
    pub deadline: Option<Instant>,
    connect: Option<ConnectTx>,
}

/// The RFC 6062 part of a TCP allocation.
#[derive(Debug, Default)]
pub struct TcpAllocation {
    /// Its connections with peers.
    pub connections: Vec<TcpConnection>,
}

impl TcpAllocation {
    /// The earliest connection deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.connections.iter().filter_map(|c| c.deadline).min()
    }
}

/// A Connect transaction waiting for its answer: enough to build and protect it later.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectTx {
    tuple: FiveTuple,
    tid: TransactionId,
    cookie: u32,
    key: Key,
    sha256: bool,
    fingerprint: bool,
}

/// An item of the output queue.
#[derive(Debug, Clone, Copy)]
pub(super) enum Queued {
    ConnectAnswer {
        tx: ConnectTx,
        result: Result<u32, ()>,
    },
    Attempt {
        tuple: FiveTuple,
        peer: SocketAddr,
        id: u32,
    },
    Splice {
        tuple: FiveTuple,
        id: u32,
    },
    Handoff {
        tuple: FiveTuple,
        worker: u16,
    },
}

impl Queued {
    fn tuple(&self) -> FiveTuple {
        match *self {
            Queued::ConnectAnswer { tx, .. } => tx.tuple,
            Queued::Attempt { tuple, .. }
            | Queued::Splice { tuple, .. }
            | Queued::Handoff { tuple, .. } => tuple,
        }
    }
}

impl Shared {
    /// Registers a fresh connection id for `worker`; false if it is taken.
    fn tcp_register(&self, id: u32, worker: u16) -> bool {
        let Ok(mut ids) = self.tcp_ids.lock() else {
            return false;
        };
        if ids.contains_key(&id) {
            return false;
        }
        ids.insert(id, worker);
        true
    }

    fn tcp_unregister(&self, id: u32) {
        if let Ok(mut ids) = self.tcp_ids.lock() {
            ids.remove(&id);
        }
    }

    /// The worker owning connection `id`, if it is live.
    pub fn tcp_owner(&self, id: u32) -> Option<u16> {
        self.tcp_ids.lock().ok()?.get(&id).copied()
    }

    /// TCP connections with peers live on the whole server.
    pub fn tcp_connection_total(&self) -> usize {
        self.tcp_ids.lock().map(|i| i.len()).unwrap_or(0)
    }
}

/// Why a connection is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forget {
    /// The I/O layer reported it closed or failed, or the client data connection closed.
    Closed,
    /// Its connect or ConnectionBind timer ran out.
    TimedOut,
    /// Its allocation ended while the control connection stays.
    AllocationEnded,
    /// Its allocation ended with the control connection.
    ControlGone,
}

/// The server-side index of connections: id → allocation slot, data tuple → id.
#[derive(Debug, Default)]
pub(super) struct TcpIndex {
    pub by_id: HashMap<u32, u32>,
    pub by_data: HashMap<FiveTuple, u32>,
}

impl Server {
    // ---------------------------------------------------------------------------------
    // Public API

    /// Handles what the I/O layer reports about a TCP connection with a peer; see
    /// [`TcpEvent`]. Drain [`Server::poll_output`] afterwards.
    pub fn handle_tcp_event(
        &mut self,
        event: TcpEvent,
        now: Instant,
        relays: &mut dyn Relays,
    ) -> TcpVerdict {
        let _ = relays; // the core never calls back for an event the I/O layer reported
        match event {
            TcpEvent::Accepted { relay, peer } => self.tcp_accepted(relay, peer, now),
            TcpEvent::Connected { id } => {
                let Some((idx, pos)) = self.tcp_find(id) else {
                    return TcpVerdict::Close;
                };
                let Some(Some(a)) = self.slots.get_mut(idx as usize) else {
                    return TcpVerdict::Close;
                };
                let Some(c) = a.tcp.as_mut().and_then(|t| t.connections.get_mut(pos)) else {
                    return TcpVerdict::Close;
                };
                if c.state == TcpConnState::Connecting {
                    c.state = TcpConnState::Pending;
                    c.deadline = Some(now + CONNECTION_BIND_TIMEOUT);
                    if let Some(tx) = c.connect.take() {
                        self.outputs
                            .push_back(Queued::ConnectAnswer { tx, result: Ok(id) });
                    }
                    self.stats.tcp_connections_opened.inc();
                    tracing::debug!(id, peer = %c.peer, "TCP peer connection established");
                    self.reschedule(idx);
                }
                TcpVerdict::Keep { id }
            }
            TcpEvent::ConnectFailed { id } | TcpEvent::Closed { id } => {
                if let Some((idx, pos)) = self.tcp_find(id) {
                    self.tcp_forget(idx, pos, Forget::Closed, None);
                }
                TcpVerdict::Close
            }
        }
    }

    /// The next thing for the I/O layer to do that no input returned directly, writing
    /// any message into `out`; `None` when the queue is empty. Call it until `None` after
    /// every [`Server::handle_client`] on a TCP/TLS connection, every
    /// [`Server::handle_tcp_event`], [`Server::handle_timeout`], [`Server::close_tuple`]
    /// and session ending (admin, shutdown). Items are in the order they arose.
    pub fn poll_output(&mut self, out: &mut [u8]) -> Option<Output> {
        while let Some(q) = self.outputs.pop_front() {
            match q {
                Queued::Splice { tuple, id } => {
                    return Some(Output::Splice {
                        tuple,
                        connection_id: id,
                    });
                }
                Queued::Handoff { tuple, worker } => {
                    return Some(Output::Handoff { tuple, worker });
                }
                Queued::ConnectAnswer { tx, result } => {
                    let Some(len) = self.connect_answer(&tx, result, out) else {
                        self.stats.dropped.inc();
                        continue;
                    };
                    let code = if result.is_ok() { 0 } else { 447 };
                    if code != 0 {
                        self.stats.error_responses.inc();
                    }
                    self.stats.responses[stats::method_index(Method::CONNECT)]
                        [stats::code_index(code)]
                    .inc();
                    return Some(Output::Transmit {
                        tuple: tx.tuple,
                        len,
                    });
                }
                Queued::Attempt { tuple, peer, id } => {
                    let Some(len) = self.connection_attempt(peer, id, out) else {
                        self.stats.dropped.inc();
                        continue;
                    };
                    return Some(Output::Transmit { tuple, len });
                }
            }
        }
        None
    }

    /// The CONNECTION-ID a client data connection is bound to, if it is one (such a
    /// connection carries raw data, not STUN; it stays open while its peer's does).
    pub fn data_connection(&self, tuple: &FiveTuple) -> Option<u32> {
        self.tcp.by_data.get(tuple).copied()
    }

    /// TCP connections with peers held by this worker.
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.by_id.len()
    }

    // ---------------------------------------------------------------------------------
    // Allocate

    /// Picks a random port in the range and asks the I/O layer to listen on it; retries on
    /// ports in use.
    pub(super) fn open_tcp_relay(
        &mut self,
        ip: IpAddr,
        relays: &mut dyn Relays,
    ) -> Option<SocketAddr> {
        let range = self.shared.config.ports;
        let span = u64::from(range.hi - range.lo) + 1;
        for _ in 0..PORT_ATTEMPTS {
            let port = u64::from(range.lo) + self.secret_rng.next() % span;
            let addr = SocketAddr::new(ip, port as u16);
            match relays.listen_tcp(addr) {
                Ok(()) => return Some(addr),
                Err(e) if e.kind() == io::ErrorKind::Unsupported => return None,
                Err(_) => continue,
            }
        }
        None
    }

    // ---------------------------------------------------------------------------------
    // Connect (RFC 6062 §5.2)

    /// Answers a Connect on the control connection of allocation `idx` (authenticated).
    /// `Some(0)` means the answer is deferred to [`Server::poll_output`].
    pub(super) fn connect(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        let (max_conns, max_permissions) = (
            self.shared.tcp.max_connections_per_allocation,
            self.shared.limits().max_permissions,
        );
        let Some(alloc) = self
            .slots
            .get(idx as usize)?
            .as_ref()
            .filter(|a| a.expires > now)
        else {
            return self.error(reply, 437, "Allocation Mismatch", out);
        };
        let relay = alloc.relay;
        let Some(tcp) = alloc.tcp.as_ref() else {
            // A UDP allocation has no TCP connections.
            return self.error(reply, 400, "Bad Request", out);
        };
        let peer = match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(p))) => p,
            _ => return self.error(reply, 400, "Bad Request", out),
        };
        if tcp.connections.iter().any(|c| c.peer == peer) {
            return self.error(reply, 446, "Connection Already Exists", out);
        }
        let count = tcp.connections.len();
        let new_permission = !alloc.permissions.contains_key(&peer.ip());
        let over_permissions = new_permission && alloc.permissions.len() >= max_permissions;
        if let Err((code, reason)) = self.check_peer(alloc, peer, true) {
            return self.error(reply, code, reason, out);
        }
        if count >= max_conns || over_permissions {
            self.stats.capacity_rejections.inc();
            return self.error(reply, 508, "Insufficient Capacity", out);
        }
        let tx = ConnectTx {
            tuple,
            tid: msg.transaction_id(),
            cookie: msg.cookie(),
            key: reply.key?,
            sha256: msg.has_integrity_sha256(),
            fingerprint: msg.has_fingerprint(),
        };
        let Some(id) = self.new_connection_id() else {
            self.stats.capacity_rejections.inc();
            return self.error(reply, 508, "Insufficient Capacity", out);
        };
        // The permission comes with the Connect, whatever the connection's fate.
        if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            a.permit(peer.ip(), now);
        }
        if relays.connect_tcp(relay, peer, id).is_err() {
            self.shared.tcp_unregister(id);
            self.stats.tcp_connect_failures.inc();
            self.reschedule(idx);
            return self.error(reply, 447, "Connection Timeout or Failure", out);
        }
        let a = self.slots.get_mut(idx as usize)?.as_mut()?;
        a.tcp.as_mut()?.connections.push(TcpConnection {
            id,
            peer,
            state: TcpConnState::Connecting,
            deadline: Some(now + TCP_CONNECT_TIMEOUT),
            connect: Some(tx),
        });
        self.tcp.by_id.insert(id, idx);
        self.reschedule(idx);
        tracing::debug!(id, %relay, %peer, "TCP connect to peer");
        Some(0)
    }

    fn connect_answer(
        &self,
        tx: &ConnectTx,
        result: Result<u32, ()>,
        out: &mut [u8],
    ) -> Option<usize> {
        let class = if result.is_ok() {
            Class::Success
        } else {
            Class::Error
        };
        let mut b = MessageBuilder::with_cookie(
            out,
            MessageType::new(Method::CONNECT, class),
            tx.cookie,
            tx.tid,
        )
        .ok()?;
        match result {
            Ok(id) => b.add(&Attribute::ConnectionId(id)).ok()?,
            Err(()) => b
                .add(&Attribute::ErrorCode(ErrorCode::new(
                    447,
                    "Connection Timeout or Failure",
                )))
                .ok()?,
        }
        if let Some(s) = &self.shared.config.software {
            b.add(&Attribute::Software(s)).ok()?;
        }
        if tx.sha256 {
            b.add_message_integrity_sha256(tx.key.as_bytes()).ok()?;
        } else {
            b.add_message_integrity(tx.key.as_bytes()).ok()?;
        }
        if tx.fingerprint {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    // ---------------------------------------------------------------------------------
    // Incoming connections (RFC 6062 §5.3)

    fn tcp_accepted(&mut self, relay: SocketAddr, peer: SocketAddr, now: Instant) -> TcpVerdict {
        let max_conns = self.shared.tcp.max_connections_per_allocation;
        let Some(&idx) = self.by_relay.get(&relay) else {
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        };
        let Some(a) = self
            .slots
            .get(idx as usize)
            .and_then(|s| s.as_ref())
            .filter(|a| a.expires > now)
        else {
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        };
        let Some(tcp) = a.tcp.as_ref() else {
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        };
        // No permission: close at once (§5.3); nor to peers the policy denies, nor over
        // the per-allocation limit.
        let family_ok = AddressFamily::of(peer.ip()) == AddressFamily::of(relay.ip());
        if !family_ok || !a.permitted(peer.ip(), now) {
            self.stats.peer_dropped_no_permission.inc();
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        }
        if tcp.connections.len() >= max_conns {
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        }
        let control = a.tuple;
        if self
            .shared
            .check_peer_policy(peer, true, super::RelayTransport::Tcp)
            .is_err()
        {
            self.stats.policy_denied.inc();
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        }
        let Some(id) = self.new_connection_id() else {
            self.stats.tcp_connections_refused.inc();
            return TcpVerdict::Close;
        };
        let Some(tcp) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.as_mut())
            .and_then(|a| a.tcp.as_mut())
        else {
            self.shared.tcp_unregister(id);
            return TcpVerdict::Close;
        };
        tcp.connections.push(TcpConnection {
            id,
            peer,
            state: TcpConnState::Pending,
            deadline: Some(now + CONNECTION_BIND_TIMEOUT),
            connect: None,
        });
        self.tcp.by_id.insert(id, idx);
        self.outputs.push_back(Queued::Attempt {
            tuple: control,
            peer,
            id,
        });
        self.stats.tcp_connections_accepted.inc();
        self.reschedule(idx);
        tracing::debug!(id, %relay, %peer, "TCP peer connection accepted");
        TcpVerdict::Keep { id }
    }

    fn connection_attempt(&mut self, peer: SocketAddr, id: u32, out: &mut [u8]) -> Option<usize> {
        let mut tid = [0u8; 12];
        tid[..8].copy_from_slice(&self.rng.next().to_le_bytes());
        tid[8..].copy_from_slice(&(self.rng.next() as u32).to_le_bytes());
        let mut b = MessageBuilder::new(
            out,
            MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication),
            TransactionId(tid),
        )
        .ok()?;
        b.add(&Attribute::XorPeerAddress(peer)).ok()?;
        b.add(&Attribute::ConnectionId(id)).ok()?;
        Some(b.finish())
    }

    // ---------------------------------------------------------------------------------
    // ConnectionBind (RFC 6062 §5.4)

    /// Answers a ConnectionBind. `Some(0)`: nothing to answer here (handed off).
    pub(super) fn connection_bind(
        &mut self,
        msg: &Message<'_>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        let bare = Reply { msg, key: None };
        // Only on a fresh TCP/TLS client connection: not over UDP, not on a control
        // connection, not on one already bound.
        if tuple.transport == Transport::Udp
            || self.by_tuple.contains_key(&tuple)
            || self.tcp.by_data.contains_key(&tuple)
        {
            return self.error(&bare, 400, "Bad Request", out);
        }
        let id = match msg.get_decoded(attr_type::CONNECTION_ID) {
            Some(Ok(Attribute::ConnectionId(id))) => Some(id),
            _ => None,
        };
        if let Some(id) = id
            && !self.tcp.by_id.contains_key(&id)
            && let Some(worker) = self.shared.tcp_owner(id)
            && worker != self.worker
        {
            self.outputs.push_back(Queued::Handoff { tuple, worker });
            return Some(0);
        }
        let owner_idx = id.and_then(|id| self.tcp.by_id.get(&id).copied());
        // The credentials of the allocation owning the connection (a USERNAME of another
        // user that verifies gets 441); its control connection's nonce is good too.
        let (_, reply) = match self.authenticate_request(msg, tuple, now, owner_idx, true, out) {
            Ok(ok) => ok,
            Err(answer) => return answer,
        };
        let (Some(id), Some(idx)) = (id, owner_idx) else {
            return self.error(&reply, 400, "Bad Request", out);
        };
        let pos = self
            .slots
            .get(idx as usize)?
            .as_ref()
            .filter(|a| a.expires > now)
            .and_then(|a| a.tcp.as_ref())
            .and_then(|t| {
                t.connections
                    .iter()
                    .position(|c| c.id == id && c.state == TcpConnState::Pending)
            });
        let Some(pos) = pos else {
            return self.error(&reply, 400, "Bad Request", out);
        };
        let len = {
            let b = self.start(msg, msg.message_type().success(), out)?;
            self.finish(&reply, b)?
        };
        let c = self
            .slots
            .get_mut(idx as usize)?
            .as_mut()?
            .tcp
            .as_mut()?
            .connections
            .get_mut(pos)?;
        c.state = TcpConnState::Bound { data: tuple };
        c.deadline = None;
        self.tcp.by_data.insert(tuple, id);
        self.outputs.push_back(Queued::Splice { tuple, id });
        self.stats.tcp_connections_bound.inc();
        tracing::debug!(id, client = %tuple.client, "TCP data connection bound");
        Some(len)
    }

    // ---------------------------------------------------------------------------------
    // Timers and teardown

    /// Times out connections of allocation `idx` whose deadline has passed.
    pub(super) fn tcp_expire(&mut self, idx: u32, now: Instant, relays: &mut dyn Relays) {
        loop {
            let due = self
                .slots
                .get(idx as usize)
                .and_then(|s| s.as_ref())
                .and_then(|a| a.tcp.as_ref())
                .and_then(|t| {
                    t.connections
                        .iter()
                        .position(|c| c.deadline.is_some_and(|d| d <= now))
                });
            let Some(pos) = due else { return };
            self.tcp_forget(idx, pos, Forget::TimedOut, Some(&mut *relays));
        }
    }

    /// Removes connection `pos` of allocation `idx`, for reason `why`; closes it through
    /// `relays` when given (that is, unless the I/O layer reported it closed).
    fn tcp_forget(&mut self, idx: u32, pos: usize, why: Forget, relays: Option<&mut dyn Relays>) {
        let Some(c) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.as_mut())
            .and_then(|a| a.tcp.as_mut())
            .filter(|t| pos < t.connections.len())
            .map(|t| t.connections.swap_remove(pos))
        else {
            return;
        };
        self.tcp_release(c, why, relays);
    }

    /// Forgets a connection taken out of its allocation. A Connect still waiting gets 447,
    /// unless its control connection is gone.
    fn tcp_release(&mut self, c: TcpConnection, why: Forget, relays: Option<&mut dyn Relays>) {
        self.tcp.by_id.remove(&c.id);
        self.shared.tcp_unregister(c.id);
        match c.state {
            TcpConnState::Connecting => {
                self.stats.tcp_connect_failures.inc();
                if why != Forget::ControlGone
                    && let Some(tx) = c.connect
                {
                    self.outputs.push_back(Queued::ConnectAnswer {
                        tx,
                        result: Err(()),
                    });
                }
            }
            TcpConnState::Pending if why == Forget::TimedOut => self.stats.tcp_bind_timeouts.inc(),
            TcpConnState::Pending => {}
            TcpConnState::Bound { data } => {
                self.tcp.by_data.remove(&data);
            }
        }
        if let Some(r) = relays {
            r.close_tcp(c.id);
        }
        tracing::debug!(id = c.id, peer = %c.peer, reason = ?why, "TCP peer connection closed");
    }

    /// Closes every connection of an allocation that ended.
    pub(super) fn tcp_close_all(
        &mut self,
        tcp: TcpAllocation,
        control: FiveTuple,
        why: EndReason,
        relays: &mut dyn Relays,
    ) {
        let forget = if matches!(why, EndReason::ConnectionClosed | EndReason::Shutdown) {
            // Nothing more can reach the client on that connection.
            self.outputs.retain(|q| q.tuple() != control);
            Forget::ControlGone
        } else {
            Forget::AllocationEnded
        };
        for c in tcp.connections {
            self.tcp_release(c, forget, Some(&mut *relays));
        }
    }

    /// Closes the client data connection `tuple` and its peer connection (the I/O layer
    /// saw it close); true if it was one.
    pub(super) fn tcp_close_data(&mut self, tuple: &FiveTuple, relays: &mut dyn Relays) -> bool {
        let Some(&id) = self.tcp.by_data.get(tuple) else {
            return false;
        };
        match self.tcp_find(id) {
            Some((idx, pos)) => self.tcp_forget(idx, pos, Forget::Closed, Some(relays)),
            None => {
                self.tcp.by_data.remove(tuple);
            }
        }
        true
    }

    fn tcp_find(&self, id: u32) -> Option<(u32, usize)> {
        let &idx = self.tcp.by_id.get(&id)?;
        let pos = self
            .slots
            .get(idx as usize)?
            .as_ref()?
            .tcp
            .as_ref()?
            .connections
            .iter()
            .position(|c| c.id == id)?;
        Some((idx, pos))
    }

    /// A fresh CONNECTION-ID, registered for this worker: unpredictable, non-zero, unique
    /// on the server.
    fn new_connection_id(&mut self) -> Option<u32> {
        for _ in 0..ID_ATTEMPTS {
            let id = self.secret_rng.next() as u32;
            if id != 0 && self.shared.tcp_register(id, self.worker) {
                return Some(id);
            }
        }
        None
    }

    /// The error response for a failed credential check.
    pub(super) fn auth_failed(
        &mut self,
        msg: &Message<'_>,
        f: AuthFailure,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.auth_failures.inc();
        match f {
            AuthFailure::Unauthorized => {
                self.stats.auth_unauthorized.inc();
                self.challenge(msg, 401, tuple.client, now, out)
            }
            AuthFailure::StaleNonce => {
                self.stats.auth_stale_nonce.inc();
                self.challenge(msg, 438, tuple.client, now, out)
            }
            AuthFailure::BadRequest => {
                self.stats.auth_bad_request.inc();
                self.error(&Reply { msg, key: None }, 400, "Bad Request", out)
            }
            AuthFailure::WrongCredentials(key) => {
                self.stats.auth_wrong_credentials.inc();
                // Authentic with other credentials: protect the answer with them.
                self.error(
                    &Reply {
                        msg,
                        key: Some(key),
                    },
                    441,
                    "Wrong Credentials",
                    out,
                )
            }
        }
    }
}

//! RFC 6062 TCP relaying: Connect, ConnectionBind, incoming peer connections
//! (ConnectionAttempt), what the I/O layer reports about connections
//! ([`Server::handle_tcp_event`]), the deferred outputs ([`Server::poll_output`]), and the
//! connections' timeouts and teardown. The types and states are in `tcp.rs`.

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::codes::{self, Code};
use super::command::Command;
use super::relays::Relays;
use super::respond::Reply;
use super::stats;
use super::tcp::{
    CONNECTION_BIND_TIMEOUT, ConnectTx, Forget, Output, Queued, TCP_CONNECT_TIMEOUT, TcpAllocation,
    TcpConnState, TcpConnection, TcpEvent, TcpVerdict,
};
use super::types::{EndReason, FiveTuple, RelayTransport, Transport};
use crate::stun::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, attr_type,
};

/// Connection ids drawn before giving up on a free one (508).
const ID_ATTEMPTS: usize = 16;

/// A Connect request, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectRequest {
    /// XOR-PEER-ADDRESS: the peer to connect to.
    peer: SocketAddr,
}

impl ConnectRequest {
    /// 400 without a well-formed XOR-PEER-ADDRESS.
    fn decode(msg: &Message<'_>) -> Result<Self, Code> {
        match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(peer))) => Ok(Self { peer }),
            _ => Err(codes::BAD_REQUEST),
        }
    }
}

/// A ConnectionBind request, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionBindRequest {
    /// CONNECTION-ID (a missing or malformed one is answered 400 after authentication).
    id: Option<u32>,
}

impl ConnectionBindRequest {
    fn decode(msg: &Message<'_>) -> Self {
        let id = match msg.get_decoded(attr_type::CONNECTION_ID) {
            Some(Ok(Attribute::ConnectionId(id))) => Some(id),
            _ => None,
        };
        Self { id }
    }
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
                    self.tcp_forget(idx, pos, Forget::Closed, false);
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
                    let code = if result.is_ok() {
                        0
                    } else {
                        codes::CONNECTION_TIMEOUT_OR_FAILURE.code
                    };
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
        let req = ConnectRequest::decode(msg);
        let (max_conns, max_permissions) = (
            self.shared.tcp.max_connections_per_allocation,
            self.limits().max_permissions,
        );
        let Some(alloc) = self.live_allocation(idx, now) else {
            return self.error(reply, codes::ALLOCATION_MISMATCH, out);
        };
        let relay = alloc.relay;
        let Some(tcp) = alloc.tcp.as_ref() else {
            // A UDP allocation has no TCP connections.
            return self.error(reply, codes::BAD_REQUEST, out);
        };
        let ConnectRequest { peer } = match req {
            Ok(r) => r,
            Err(code) => return self.error(reply, code, out),
        };
        if tcp.connections.iter().any(|c| c.peer == peer) {
            return self.error(reply, codes::CONNECTION_ALREADY_EXISTS, out);
        }
        let count = tcp.connections.len();
        let new_permission = !alloc.permissions.contains_key(&peer.ip());
        let over_permissions = new_permission && alloc.permissions.len() >= max_permissions;
        if let Err(code) = self.check_peer(alloc, peer, true) {
            return self.error(reply, code, out);
        }
        if count >= max_conns || over_permissions {
            self.stats.capacity_rejections.inc();
            return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
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
            return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
        };
        // The permission comes with the Connect, whatever the connection's fate.
        if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            a.permit(peer.ip(), now);
        }
        if relays.connect_tcp(relay, peer, id).is_err() {
            self.shared.tcp_unregister(id);
            self.stats.tcp_connect_failures.inc();
            self.reschedule(idx);
            return self.error(reply, codes::CONNECTION_TIMEOUT_OR_FAILURE, out);
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
                .add(&Attribute::ErrorCode(codes::CONNECTION_TIMEOUT_OR_FAILURE))
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
        let Some(a) = self.live_allocation(idx, now) else {
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
            .check_peer_policy(peer, true, RelayTransport::Tcp)
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
        let tid = self.rng.transaction_id();
        let mut b = MessageBuilder::new(
            out,
            MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication),
            tid,
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
        let bare = Reply::bare(msg);
        // Only on a fresh TCP/TLS client connection: not over UDP, not on a control
        // connection, not on one already bound.
        if tuple.transport == Transport::Udp
            || self.by_tuple.contains_key(&tuple)
            || self.tcp.by_data.contains_key(&tuple)
        {
            return self.error(&bare, codes::BAD_REQUEST, out);
        }
        let ConnectionBindRequest { id } = ConnectionBindRequest::decode(msg);
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
            return self.error(&reply, codes::BAD_REQUEST, out);
        };
        let pos = self
            .live_allocation(idx, now)
            .and_then(|a| a.tcp.as_ref())
            .and_then(|t| {
                t.connections
                    .iter()
                    .position(|c| c.id == id && c.state == TcpConnState::Pending)
            });
        let Some(pos) = pos else {
            return self.error(&reply, codes::BAD_REQUEST, out);
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
    pub(super) fn tcp_expire(&mut self, idx: u32, now: Instant) {
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
            self.tcp_forget(idx, pos, Forget::TimedOut, true);
        }
    }

    /// Removes connection `pos` of allocation `idx`, for reason `why`; with `close`
    /// (unless the I/O layer reported it closed), asks the shell to close it.
    fn tcp_forget(&mut self, idx: u32, pos: usize, why: Forget, close: bool) {
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
        self.tcp_release(c, why, close);
    }

    /// Forgets a connection taken out of its allocation; with `close`, queues
    /// [`Command::CloseTcp`]. A Connect still waiting gets 447, unless its control
    /// connection is gone.
    fn tcp_release(&mut self, c: TcpConnection, why: Forget, close: bool) {
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
        if close {
            self.commands.push_back(Command::CloseTcp {
                connection_id: c.id,
            });
        }
        tracing::debug!(id = c.id, peer = %c.peer, reason = ?why, "TCP peer connection closed");
    }

    /// Closes every connection of an allocation that ended.
    pub(super) fn tcp_close_all(&mut self, tcp: TcpAllocation, control: FiveTuple, why: EndReason) {
        let forget = if matches!(why, EndReason::ConnectionClosed | EndReason::Shutdown) {
            // Nothing more can reach the client on that connection.
            self.outputs.retain(|q| q.tuple() != control);
            Forget::ControlGone
        } else {
            Forget::AllocationEnded
        };
        for c in tcp.connections {
            self.tcp_release(c, forget, true);
        }
    }

    /// Closes the client data connection `tuple` and its peer connection (the I/O layer
    /// saw it close); true if it was one.
    pub(super) fn tcp_close_data(&mut self, tuple: &FiveTuple) -> bool {
        let Some(&id) = self.tcp.by_data.get(tuple) else {
            return false;
        };
        match self.tcp_find(id) {
            Some((idx, pos)) => self.tcp_forget(idx, pos, Forget::Closed, true),
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
}

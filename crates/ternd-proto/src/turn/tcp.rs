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
//! queue up for [`Server::poll_output`]. The handlers are in `connect.rs`; this module
//! holds the types.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::types::FiveTuple;
#[cfg(doc)]
use super::{Relays, Server, Shared};
use crate::auth::store::Key;
use crate::stun::TransactionId;

/// The REQUESTED-TRANSPORT value for TCP (RFC 6062 §6.1).
pub const TRANSPORT_TCP: u8 = 6;
/// How long a Connect waits for the peer before 447 (RFC 6062 §5.2: at least 30 s).
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer data connection waits for its ConnectionBind before it is closed
/// (RFC 6062 §5.2, §5.3: 30 s).
pub const CONNECTION_BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for the most TCP connections (connecting, pending or bound) per allocation.
pub const DEFAULT_MAX_TCP_CONNECTIONS: usize = 64;

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
    /// ConnectionBind success response was the [`Outcome::Reply`](super::Outcome::Reply) just returned):
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
    pub(super) connect: Option<ConnectTx>,
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
    pub(super) tuple: FiveTuple,
    pub(super) tid: TransactionId,
    pub(super) cookie: u32,
    pub(super) key: Key,
    pub(super) sha256: bool,
    pub(super) fingerprint: bool,
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
    pub(super) fn tuple(&self) -> FiveTuple {
        match *self {
            Queued::ConnectAnswer { tx, .. } => tx.tuple,
            Queued::Attempt { tuple, .. }
            | Queued::Splice { tuple, .. }
            | Queued::Handoff { tuple, .. } => tuple,
        }
    }
}

/// Why a connection is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Forget {
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

//! The I/O shell: listeners, relay sockets, worker threads, and the loop that feeds packets
//! to the sans-IO core ([`crate::turn::Server`]).
//!
//! `workers` threads each run a single-threaded tokio runtime and own one `SO_REUSEPORT`
//! UDP socket and one TCP listener per `--listen` address, their own core (allocation
//! table) and the relay sockets of their allocations. The kernel spreads clients across
//! the workers and keeps a client's 5-tuple on one of them; workers share nothing on the
//! per-packet path. All `unsafe` code is in `ternd_io::sys`.
//!
//! # One task per worker
//!
//! A worker is one task, `Worker::run` (in `worker.rs`), that owns its core, its UDP
//! sockets and its connections' registry (`&mut self`, no `RefCell`). It visits only the
//! sockets that became readable (each socket's waker marks it in the worker's `ReadySet`,
//! `ready.rs`), in this order, each turn:
//!
//! 1. relay sockets (peer → client), at most `TURN_BATCHES` (64) `recvmmsg` batches in
//!    all and [`ternd_io::BATCHES_PER_WAKE`] per socket;
//! 2. UDP listeners (requests and client → peer), the same budget;
//! 3. events from the helper tasks (`Event`: TCP/TLS frames ready, room in a full queue,
//!    connections closed; RFC 6062 peers accepted and connected), at most
//!    `TURN_EVENTS` (64);
//! 4. operator commands (admin API);
//! 5. timers: [`crate::turn::Server::handle_timeout`] when the core's `poll_timeout` is due,
//!    and at least every `MAX_SLEEP` (1 s) (port reservations, which the core does not
//!    schedule).
//!
//! A socket left with datagrams after its budget is marked again for the next turn; then the
//! worker yields once to the runtime (so the I/O driver and the connection tasks run) and
//! goes on. With nothing ready it sleeps until a socket, an event, a command or the core's
//! next timer (`min(poll_timeout, now + MAX_SLEEP)`) wakes it.
//!
//! # What stays in other tasks
//!
//! TCP/TLS byte streams need tasks of their own (TLS handshakes, writes that wait): per
//! connection a reader (`stream.rs`) that reads into the connection's buffer and a writer
//! that writes its queue out; the accept loops; and for RFC 6062 a task per relayed TCP
//! listener and per outgoing connect. None of them calls the core: they send an `Event` to
//! the worker. What they share with the worker is one `Conn` (`queue.rs`) per connection
//! (its input buffer, its output queue and a few flags, in `Cell`/`RefCell`, one thread),
//! and the cross-worker `NetShared` (connection counts, the TLS configuration).
//!
//! # Files
//!
//! The `Worker` struct is declared here; each file adds the `impl Worker` methods of its
//! concern, so no sibling module imports another for it: `worker.rs` (thread, loop, timers,
//! the core's queued outputs), `udp.rs` (listener batches), `relay.rs` (relay sockets, the
//! core's `Relays`, RFC 6062 peers), `stream.rs` (TCP/TLS tasks and their frames),
//! `queue.rs` (one connection's buffers), `ready.rs` (socket readiness), `admin.rs` (the
//! HTTP side's view and operator commands), `start.rs` (binding, threads, `Handle`).

mod admin;
mod admit;
mod commands;
mod preflight;
mod queue;
mod ready;
mod relay;
mod start;
mod stream;
mod udp;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::stun::channel::ChannelRange;
use crate::turn::limit::SourceKey;
use crate::turn::{Counter, FiveTuple, Server, Stats};

pub use admin::{MoreMetrics, View};

/// Whether `answer` is an Allocate response (success or error): its latency is observed.
fn is_allocate_answer(answer: &[u8]) -> bool {
    matches!(answer, [0x01, 0x03 | 0x13, ..])
}

/// Observes an Allocate's latency, from `since` (its arrival) to now, when `answer` is
/// the answer to one.
fn observe_allocate(stats: &Stats, answer: &[u8], since: std::time::Instant) {
    if is_allocate_answer(answer) {
        stats.allocate_latency.observe(since.elapsed());
    }
}
pub use admit::{CLUSTER_QUEUE, ClusterEvent};
pub use preflight::{ListenLocks, PreflightError};
pub use start::{Handle, StartError, start, turn_tls_config};
pub use ternd_io::listen::BindError;
use ternd_io::{SendErrors, gso, listen, sys};
pub use ternd_io::{gso_available, raise_fd_limit, register_shared_udp, socket_rx_drops};

/// Largest answer the core writes (an RFC 5780 answer with PADDING is the longest).
const OUT_BUF: usize = 2048;

/// What a worker's helper tasks tell it; the worker makes the core calls.
#[derive(Debug)]
enum Event {
    /// A TCP/TLS connection is ready (PROXY header and TLS handshake done): serve it.
    Opened(Rc<queue::Conn>),
    /// The reader put bytes in the connection's input: take its frames.
    Readable(Rc<queue::Conn>),
    /// An answer left the connection's full queue: take the frames held back.
    Room(Rc<queue::Conn>),
    /// Nothing read for `tcp_idle_timeout`: close it unless it has an allocation.
    Idle(Rc<queue::Conn>),
    /// The connection ended (or its RFC 6062 splice did): end its allocation.
    Closed(Rc<queue::Conn>),
    /// RFC 6062: a peer connected to a TCP allocation's relayed address.
    PeerAccepted {
        relay: SocketAddr,
        peer: SocketAddr,
        stream: tokio::net::TcpStream,
    },
    /// RFC 6062: the outgoing connection `id` (Connect) is established, or failed (`None`).
    PeerConnected {
        id: u32,
        stream: Option<tokio::net::TcpStream>,
    },
}

/// Where helper tasks send their [`Event`]s.
type Events = mpsc::UnboundedSender<Event>;

/// One worker's state, owned by its task ([`Worker::run`]).
struct Worker {
    server: Server,
    /// The client-facing UDP sockets.
    listeners: udp::Listeners,
    /// The relay sockets and RFC 6062 connections: the core's [`crate::turn::Relays`].
    relays: relay::RelaySockets,
    /// TCP/TLS clients by 5-tuple.
    clients: stream::Clients,
    /// RFC 6062: client connections told to become data connections.
    splice_requests: HashMap<FiveTuple, u32>,
    /// The sockets marked readable.
    ready: Arc<ready::ReadySet>,
    events: mpsc::UnboundedReceiver<Event>,
    admin: mpsc::UnboundedReceiver<admin::AdminCmd>,
    shutdown: watch::Receiver<bool>,
    /// Receive buffers for the listeners and what a batch forwards to peers.
    listener_batch: sys::RecvBatch,
    listener_queue: Vec<gso::Queued>,
    /// Receive buffers for relay sockets (at `PEER_HEADROOM`) and what a batch sends on to
    /// UDP clients.
    peer_batch: sys::RecvBatch,
    peer_queue: Vec<gso::Queued>,
    gso: gso::Gso,
    /// The core's answers.
    out: Box<[u8; OUT_BUF]>,
    /// What all workers share.
    net: Arc<NetShared>,
    /// This worker's index.
    index: usize,
}

/// Settings the I/O loops of every worker share (read-only but for one counter).
struct NetShared {
    /// The TLS configuration of the TURN/TLS listeners; replaced on SIGHUP.
    tls: std::sync::RwLock<Option<Arc<rustls::ServerConfig>>>,
    tls_handshake_timeout: Duration,
    max_connections_per_ip: usize,
    /// Bound stream listeners that expect a PROXY protocol header.
    proxy_listeners: Vec<SocketAddr>,
    /// Open TCP/TLS connections per source (an IPv4 address or an IPv6 /64, as for the
    /// allocation and unauthenticated limits).
    per_ip: std::sync::Mutex<HashMap<SourceKey, usize>>,
    channel_range: ChannelRange,
    max_frame_size: usize,
    tcp_idle_timeout: Duration,
    max_tcp_connections: usize,
    tcp_connections: AtomicUsize,
    /// UDP GSO configured and available (each worker starts with it; see `gso::Gso`).
    udp_gso: bool,
    /// Socket buffer sizes for relay sockets (the listeners got theirs at bind).
    udp_buffers: listen::SocketBuffers,
    /// Where admissions and released allocations go, with a cluster.
    cluster: Option<admit::ClusterSink>,
}

impl std::fmt::Debug for NetShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetShared")
            .field("max_tcp_connections", &self.max_tcp_connections)
            .finish_non_exhaustive()
    }
}

impl NetShared {
    fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        let cfg = self.tls.read().ok()?.clone()?;
        Some(tokio_rustls::TlsAcceptor::from(cfg))
    }
}

/// The kind of ternd UDP socket a datagram left from (for the send error counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SockKind {
    /// A listener: answers and relayed data to clients.
    Listener,
    /// A relay socket: relayed data to peers.
    Relay,
}

/// Adds `errors` to `stats` for sockets of `kind`.
pub(super) fn count_send_errors(errors: SendErrors, stats: &Stats, kind: SockKind) {
    let (wb, nb, other) = match kind {
        SockKind::Listener => (
            &stats.listener_send_would_block,
            &stats.listener_send_no_buffers,
            &stats.listener_send_other_errors,
        ),
        SockKind::Relay => (
            &stats.relay_send_would_block,
            &stats.relay_send_no_buffers,
            &stats.relay_send_other_errors,
        ),
    };
    for (counter, n) in [
        (wb, errors.would_block),
        (nb, errors.no_buffers),
        (other, errors.other),
    ] {
        if n > 0 {
            counter.add(n);
        }
    }
}

/// Counts one failed send on a socket of `kind`, and the datagram in `dropped`.
fn count_send_error(
    stats: &Stats,
    dropped: &crate::turn::Counter,
    kind: SockKind,
    e: &std::io::Error,
) {
    dropped.inc();
    let mut errors = SendErrors::default();
    errors.note(e);
    count_send_errors(errors, stats, kind);
}

/// Adds what one [`ternd_io::gso::flush`] did to a worker's counters; `kind` is the kind of
/// socket the datagrams left from.
fn count_flushed(done: gso::Flushed, stats: &Stats, dropped: &Counter, kind: SockKind) {
    if done.dropped > 0 {
        dropped.add(done.dropped);
        count_send_errors(done.errors, stats, kind);
    }
    if done.gso_sends > 0 {
        stats.udp_gso_sends.add(done.gso_sends);
        stats.udp_gso_datagrams.add(done.gso_datagrams);
    }
}

//! The I/O shell: listeners, relay sockets, worker threads, and the loops that feed packets
//! to the sans-IO core ([`crate::turn::Server`]).
//!
//! `workers` threads each run a single-threaded tokio runtime and own one `SO_REUSEPORT`
//! UDP socket and one TCP listener per `--listen` address, their own core (allocation
//! table) and the relay sockets of their allocations. The kernel spreads clients across
//! the workers and keeps a client's 5-tuple on one of them; workers share nothing on the
//! per-packet path. All `unsafe` code is in `net/sys.rs`.

mod admin;
mod queue;
mod relay;
mod start;
mod stream;
mod udp;
mod worker;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::stun::channel::ChannelRange;
use crate::turn::limit::SourceKey;
use crate::turn::{Counter, FiveTuple, Outcome, Server, Stats, Transport};

pub use admin::View;
use queue::SharedQueue;
use relay::{PeerConn, RelaySocket, Reserved};
pub use start::{Handle, StartError, start, turn_tls_config};
pub use ternd_io::listen::BindError;
use ternd_io::{SendErrors, gso, listen, send_now, sys};
pub use ternd_io::{gso_available, raise_fd_limit, register_shared_udp, socket_rx_drops};

/// Largest answer the core writes (an RFC 5780 answer with PADDING is the longest).
const OUT_BUF: usize = 2048;

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

/// One worker's state, owned by its thread.
pub(crate) struct Worker {
    server: RefCell<Server>,
    relays: RefCell<HashMap<SocketAddr, RelaySocket>>,
    reserved: Reserved,
    listeners: RefCell<HashMap<SocketAddr, Rc<UdpSocket>>>,
    tcp_clients: RefCell<HashMap<FiveTuple, SharedQueue>>,
    /// RFC 6062: relay listeners of TCP allocations, by relayed address.
    tcp_listeners: RefCell<HashMap<SocketAddr, tokio::task::AbortHandle>>,
    /// RFC 6062: peer connections not yet spliced, by CONNECTION-ID.
    tcp_peers: RefCell<HashMap<u32, PeerConn>>,
    /// RFC 6062: splices in progress, by CONNECTION-ID.
    splices: RefCell<HashMap<u32, tokio::task::AbortHandle>>,
    /// RFC 6062: client connections told to become data connections.
    splice_requests: RefCell<HashMap<FiveTuple, u32>>,
    peer_batch: RefCell<sys::RecvBatch>,
    /// What a batch of `peer_batch` produced for UDP clients, sent when the batch is done.
    peer_queue: RefCell<Vec<gso::Queued>>,
    gso: gso::Gso,
    net: Arc<NetShared>,
}

impl Worker {
    /// Sends relayed data to a client on its 5-tuple; drops it (never waits) when the
    /// socket or the connection's queue is full.
    fn send_to_client(&self, tuple: FiveTuple, bytes: &[u8]) {
        match tuple.transport {
            Transport::Udp => {
                let listeners = self.listeners.borrow();
                if let Some(l) = listeners.get(&tuple.server)
                    && let Err(e) = send_now(l, bytes, tuple.client)
                {
                    let server = self.server.borrow();
                    let stats = server.stats();
                    count_send_error(stats, &stats.peer_dropped, SockKind::Listener, &e);
                }
            }
            Transport::Tcp | Transport::Tls => {
                let clients = self.tcp_clients.borrow();
                if let Some(q) = clients.get(&tuple)
                    && !q.push_data(bytes.to_vec())
                {
                    self.server.borrow().stats().peer_dropped.inc();
                }
            }
        }
    }

    /// Acts on the core's queued outputs (RFC 6062): deferred answers and indications to
    /// control connections, and splice orders for data connections.
    fn drain_outputs(&self) {
        let mut out = [0u8; OUT_BUF];
        loop {
            let next = self.server.borrow_mut().poll_output(&mut out);
            match next {
                None => return,
                Some(crate::turn::Output::Transmit { tuple, len }) => {
                    if let Some(q) = self.tcp_clients.borrow().get(&tuple) {
                        q.push_answer(out[..len].to_vec());
                    }
                }
                Some(crate::turn::Output::Splice {
                    tuple,
                    connection_id,
                }) => {
                    self.splice_requests
                        .borrow_mut()
                        .insert(tuple, connection_id);
                }
                Some(crate::turn::Output::Handoff { tuple, worker }) => {
                    // TCP clients are all served by worker 0 when TCP relaying is on.
                    tracing::warn!(client = %tuple.client, worker, "ConnectionBind for another worker; dropped");
                }
            }
        }
    }

    fn forward(&self, relay: SocketAddr, peer: SocketAddr, payload: &[u8]) {
        let relays = self.relays.borrow();
        if let Some(r) = relays.get(&relay)
            && let Err(e) = send_now(&r.sock, payload, peer)
        {
            let server = self.server.borrow();
            let stats = server.stats();
            count_send_error(stats, &stats.dropped, SockKind::Relay, &e);
        }
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

/// Acts on what the core decided about a client packet.
fn act(worker: &Worker, outcome: Outcome, packet: &[u8], out: &[u8], reply: impl FnOnce(&[u8])) {
    match outcome {
        Outcome::Reply { len } => reply(&out[..len]),
        Outcome::ReplyVia { len, from, to } => {
            let listeners = worker.listeners.borrow();
            match listeners
                .get(&from)
                .map(|sock| send_now(sock, &out[..len], to))
            {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let server = worker.server.borrow();
                    let stats = server.stats();
                    count_send_error(stats, &stats.dropped, SockKind::Listener, &e);
                }
                None => worker.server.borrow().stats().dropped.inc(),
            }
        }
        Outcome::Forward {
            relay,
            peer,
            start,
            len,
        } => worker.forward(relay, peer, &packet[start..start + len]),
        Outcome::Consumed | Outcome::Dropped(_) => {}
    }
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

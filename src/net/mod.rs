//! The I/O shell: listeners, relay sockets, worker threads, and the loops that feed packets
//! to the sans-IO core ([`crate::turn::Server`]).
//!
//! `workers` threads each run a single-threaded tokio runtime and own one `SO_REUSEPORT`
//! UDP socket and one TCP listener per `--listen` address, their own core (allocation
//! table) and the relay sockets of their allocations. The kernel spreads clients across
//! the workers and keeps a client's 5-tuple on one of them; workers share nothing on the
//! per-packet path. All `unsafe` code is in `net/sys.rs`.

mod commands;
mod relay;
mod udp;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

use crate::auth::nonce::NonceKey;
use crate::config::Config;
use crate::policy::PeerPolicy;
use crate::stun::channel::ChannelRange;
use crate::stun::stream::StreamBuffer;
use crate::turn::limit::SourceKey;
use crate::turn::{
    CoreConfig, FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, RelayAddress, Server,
    SessionInfo, Shared, Stats, StatsSnapshot, Transport,
};

use relay::{NetRelays, PeerConn, RelaySocket, Reserved};
pub use ternd_io::listen::BindError;
use ternd_io::{
    BATCHES_PER_WAKE, LISTENER_BATCH, RECV_BUF, RELAY_BATCH, SendErrors, gso, listen, recv_batch,
    send_now, sys,
};
pub use ternd_io::{gso_available, raise_fd_limit, register_shared_udp, socket_rx_drops};

/// Largest answer the core writes (an RFC 5780 answer with PADDING is the longest).
const OUT_BUF: usize = 2048;
/// Bytes queued for one TCP/TLS client that does not read: past it, the oldest relayed
/// data is dropped (and counted). Answers count too (see [`TCP_ANSWER_BYTES`]).
const TCP_QUEUE_BYTES: usize = 256 * 1024;
/// Answers queued for one TCP/TLS client that does not read: at this many bytes the
/// connection stops reading requests (backpressure through TCP) until the client takes
/// some; a client that takes none for `tcp_idle_timeout` is closed by its writer. Answers
/// are never dropped, so this is what bounds a pipelining client's memory.
const TCP_ANSWER_BYTES: usize = 64 * 1024;

/// The outgoing queue of one stream client: answers and relayed frames in order, bounded
/// in bytes, dropping the oldest relayed frame first when full.
#[derive(Default)]
struct StreamQueue {
    frames: RefCell<std::collections::VecDeque<(Vec<u8>, bool)>>,
    /// Bytes of every queued frame.
    bytes: std::cell::Cell<usize>,
    /// Bytes of the queued answers (a part of `bytes`).
    answer_bytes: std::cell::Cell<usize>,
    closed: std::cell::Cell<bool>,
    /// Set by the writer when it stops (the client stopped reading or the write failed).
    writer_gone: std::cell::Cell<bool>,
    /// Wakes the writer: something was queued.
    wake: tokio::sync::Notify,
    /// Wakes the reader: an answer left the queue, or the writer stopped.
    room: tokio::sync::Notify,
}

impl StreamQueue {
    /// Queues relayed data; false if something had to be dropped to make room (or the
    /// frame alone is too big).
    fn push_data(&self, frame: Vec<u8>) -> bool {
        let mut frames = self.frames.borrow_mut();
        let mut dropped_any = false;
        while self.bytes.get() + frame.len() > TCP_QUEUE_BYTES {
            let Some(pos) = frames.iter().position(|(_, data)| *data) else {
                return false;
            };
            if let Some((f, _)) = frames.remove(pos) {
                self.bytes.set(self.bytes.get() - f.len());
            }
            dropped_any = true;
        }
        self.bytes.set(self.bytes.get() + frame.len());
        frames.push_back((frame, true));
        self.wake.notify_one();
        !dropped_any
    }

    /// Queues an answer. Answers are never dropped; the reader stops taking requests while
    /// [`StreamQueue::answers_full`] (one answer can go past the budget, no more).
    fn push_answer(&self, frame: Vec<u8>) {
        self.bytes.set(self.bytes.get() + frame.len());
        self.answer_bytes.set(self.answer_bytes.get() + frame.len());
        self.frames.borrow_mut().push_back((frame, false));
        self.wake.notify_one();
    }

    /// True while the queued answers fill their budget: read no more requests.
    fn answers_full(&self) -> bool {
        self.answer_bytes.get() >= TCP_ANSWER_BYTES
    }

    /// The next frame to write, `Err(())` once closed and empty.
    fn pop(&self) -> Result<Option<Vec<u8>>, ()> {
        match self.frames.borrow_mut().pop_front() {
            Some((f, data)) => {
                self.bytes.set(self.bytes.get() - f.len());
                if !data {
                    self.answer_bytes.set(self.answer_bytes.get() - f.len());
                    self.room.notify_one();
                }
                Ok(Some(f))
            }
            None if self.closed.get() => Err(()),
            None => Ok(None),
        }
    }

    /// The writer stopped: wake a reader waiting for room.
    fn writer_stopped(&self) {
        self.writer_gone.set(true);
        self.room.notify_one();
    }

    fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }
}

type SharedQueue = Rc<StreamQueue>;

/// A running server: its bound addresses, counters, and the way to stop it.
#[derive(Debug)]
pub struct Handle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    relay_v4: Option<RelayAddress>,
    relay_v6: Option<RelayAddress>,
    view: Arc<View>,
    /// Service addresses and local IPs, for rebuilding the peer policy on reload.
    policy_base: (Vec<SocketAddr>, Vec<IpAddr>),
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// An operator command for one worker.
enum AdminCmd {
    List(oneshot::Sender<Vec<SessionInfo>>),
    End(u64, oneshot::Sender<bool>),
    EndUser(String, oneshot::Sender<usize>),
}

/// What a scrape or an operator sees of the running server: the workers' counters and
/// command channels. Cloned into the HTTP server.
#[derive(Debug)]
pub struct View {
    stats: Vec<Arc<Stats>>,
    admin: Vec<mpsc::UnboundedSender<AdminCmd>>,
    shared: Arc<Shared>,
    net: Arc<NetShared>,
    ready: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AdminCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCmd")
    }
}

impl View {
    /// Counters of every worker.
    pub fn worker_stats(&self) -> Vec<StatsSnapshot> {
        self.stats.iter().map(|s| s.snapshot()).collect()
    }

    /// The Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let workers = self.worker_stats();
        let live: u64 = workers
            .iter()
            .map(|w| w.allocations_created.saturating_sub(w.allocations_ended))
            .sum();
        crate::metrics::render(
            &workers,
            crate::metrics::Gauges {
                tcp_connections: self.net.tcp_connections.load(Ordering::Relaxed) as u64,
                relay_ports_in_use: live + self.shared.reservation_count() as u64,
                draining: !self.ready.load(Ordering::Relaxed),
            },
        )
    }

    /// Every live session, from all workers.
    pub async fn list_sessions(&self) -> Vec<SessionInfo> {
        let mut all = Vec::new();
        for tx in &self.admin {
            let (reply, rx) = oneshot::channel();
            if tx.send(AdminCmd::List(reply)).is_ok()
                && let Ok(list) = rx.await
            {
                all.extend(list);
            }
        }
        all.sort_by_key(|s| s.id);
        all
    }

    /// Ends session `id` at once; false if no worker has it.
    pub async fn end_session(&self, id: u64) -> bool {
        let worker = (id >> 48) as usize;
        let Some(tx) = self.admin.get(worker) else {
            return false;
        };
        let (reply, rx) = oneshot::channel();
        if tx.send(AdminCmd::End(id, reply)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Ends every session of `user` at once; returns how many ended.
    pub async fn end_user_sessions(&self, user: &str) -> usize {
        let mut n = 0;
        for tx in &self.admin {
            let (reply, rx) = oneshot::channel();
            if tx.send(AdminCmd::EndUser(user.to_string(), reply)).is_ok() {
                n += rx.await.unwrap_or(0);
            }
        }
        n
    }

    /// True while the server accepts new allocations.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl crate::http::Backend for View {
    fn metrics(&self) -> String {
        View::metrics(self)
    }

    fn ready(&self) -> bool {
        View::ready(self)
    }

    fn admin(&self) -> Option<&dyn crate::http::Admin> {
        Some(self)
    }
}

impl crate::http::Admin for View {
    fn sessions(&self) -> BoxFuture<'_, serde_json::Value> {
        Box::pin(
            async move { serde_json::to_value(self.list_sessions().await).unwrap_or_default() },
        )
    }

    fn kill_session(&self, id: u64) -> BoxFuture<'_, bool> {
        Box::pin(self.end_session(id))
    }

    fn kill_user(&self, user: String) -> BoxFuture<'_, usize> {
        Box::pin(async move { self.end_user_sessions(&user).await })
    }
}

impl Handle {
    /// The UDP addresses the server listens on (ports resolved when 0 was asked).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The TCP addresses the server listens on.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// The TURN-over-TLS addresses the server listens on.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// Reloads the TLS certificate and key (SIGHUP). Existing connections keep the old
    /// configuration; new handshakes use the new one. On error the old one stays.
    pub fn reload_tls(&self, cert: &std::path::Path, key: &std::path::Path) -> Result<(), String> {
        let cfg = turn_tls_config(cert, key)?;
        let mut slot = self
            .view
            .net
            .tls
            .write()
            .map_err(|_| "TLS configuration lock poisoned".to_string())?;
        *slot = Some(cfg);
        Ok(())
    }

    /// Where IPv4 relay sockets are bound and what is advertised.
    pub fn relay_v4(&self) -> Option<RelayAddress> {
        self.relay_v4
    }

    /// Where IPv6 relay sockets bind and what they advertise (`None`: no IPv6 relaying).
    pub fn relay_v6(&self) -> Option<RelayAddress> {
        self.relay_v6
    }

    /// The counters of all workers, summed.
    pub fn stats(&self) -> StatsSnapshot {
        self.view.worker_stats().into_iter().sum()
    }

    /// The server as metrics and operators see it.
    pub fn view(&self) -> Arc<View> {
        self.view.clone()
    }

    /// Applies a re-read configuration (SIGHUP): credential sources (secrets, secret file,
    /// users), the peer policy and the quotas and limits. Existing allocations keep their
    /// keys. Settings that shape
    /// sockets and workers need a restart. On error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let store = config
            .auth
            .credential_store(&config.realm)
            .map_err(|e| e.to_string())?;
        let policy = build_policy(config, &self.policy_base);
        self.view.shared.replace_credentials(store);
        self.view.shared.replace_policy(policy);
        self.view.shared.replace_limits(config.relay.limits);
        Ok(())
    }

    /// Starts draining (SIGTERM): new Allocates get 300 Try Alternate or 508, `/readyz`
    /// answers 503, existing allocations keep relaying.
    pub fn drain(&self) {
        self.view.ready.store(false, Ordering::Relaxed);
        self.view.shared.set_draining(true);
    }

    /// Allocations alive now, on all workers.
    pub fn active_allocations(&self) -> u64 {
        self.view
            .worker_stats()
            .iter()
            .map(|w| w.allocations_created.saturating_sub(w.allocations_ended))
            .sum()
    }

    /// Stops every worker (ending their allocations) and waits for them.
    pub fn shutdown(self) {
        self.view.ready.store(false, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Listeners could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A credential could not be prepared (SASLprep).
    #[error("credentials: {0}")]
    Credentials(#[from] crate::auth::PrepError),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The OS random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
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

/// The rustls configuration for TURN over TLS: the certificate chain and key, TLS 1.2 and
/// 1.3, ALPN `stun.turn` / `stun.nat-discovery` (RFC 7443) offered, not required.
pub fn turn_tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let base = crate::tls::server_config(cert, key)?;
    let mut c = (*base).clone();
    c.alpn_protocols = vec![b"stun.turn".to_vec(), b"stun.nat-discovery".to_vec()];
    Ok(Arc::new(c))
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
    /// control connections, and splice orders for data connections; then on its commands.
    fn drain_outputs(&self) {
        let mut out = [0u8; OUT_BUF];
        loop {
            let next = self.server.borrow_mut().poll_output(&mut out);
            match next {
                None => break,
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
        self.drain_commands();
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

/// The host's primary IPv4 address: the source address of a route to a documentation
/// address (connecting a UDP socket sends nothing).
fn primary_ipv4() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// The host's primary global IPv6 address, found the same way; `None` on hosts without
/// IPv6 routing.
fn primary_ipv6() -> Option<std::net::Ipv6Addr> {
    let s = std::net::UdpSocket::bind("[::]:0").ok()?;
    s.connect("[2001:db8::1]:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V6(ip) if !ip.is_unspecified() && !ip.is_loopback() => Some(ip),
        _ => None,
    }
}

/// Where relay sockets bind and what they advertise, per family.
fn relay_addresses(config: &Config) -> (Option<RelayAddress>, Option<RelayAddress>) {
    let ext = |v6: bool| {
        config
            .relay
            .external_ips
            .iter()
            .find(|e| e.public.is_ipv6() == v6)
    };
    let configured = |v6: bool| {
        config
            .relay
            .relay_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv6() == v6)
    };
    let v4_bind = ext(false)
        .and_then(|e| e.private)
        .or_else(|| configured(false))
        .or_else(|| {
            config
                .listen
                .iter()
                .map(|a| a.ip())
                .find(|ip| ip.is_ipv4() && !ip.is_unspecified())
        })
        .or_else(|| primary_ipv4().map(IpAddr::V4))
        .unwrap_or_else(|| {
            tracing::warn!("no IPv4 address found for relaying; using 127.0.0.1 (set --relay-ip)");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        });
    let v4 = RelayAddress {
        bind: v4_bind,
        advertise: ext(false).map(|e| e.public).unwrap_or(v4_bind),
    };
    // IPv6 relays: the configured address, else a specific IPv6 listen address, else the
    // host's primary IPv6 address; none on a host without IPv6 (Allocates asking for
    // IPv6 then get 440).
    let v6 = ext(true)
        .and_then(|e| e.private)
        .or_else(|| configured(true))
        .or_else(|| {
            config
                .listen
                .iter()
                .map(|a| a.ip())
                .find(|ip| ip.is_ipv6() && !ip.is_unspecified())
        })
        .or_else(|| primary_ipv6().map(IpAddr::V6))
        .map(|bind| RelayAddress {
            bind,
            advertise: ext(true).map(|e| e.public).unwrap_or(bind),
        });
    (Some(v4), v6)
}

/// The peer policy of `config` for a server whose own service addresses and local IPs are
/// `base` (fixed at start).
fn build_policy(config: &Config, base: &(Vec<SocketAddr>, Vec<IpAddr>)) -> PeerPolicy {
    PeerPolicy::new(
        config.relay.allow_peer.clone(),
        config.relay.deny_peer.clone(),
        base.0.clone(),
    )
    .with_local_ips(base.1.clone())
}

/// Binds every listener and starts the workers. Returns once all sockets are bound, so
/// bind errors come back here rather than from a thread.
///
/// The peer policy protects the server's own service ports as bound: the STUN/TURN, TLS
/// and RFC 5780 listeners bound here, and `config.http.listen`, which the HTTP endpoint's
/// caller binds. That one is taken as given, so a caller that binds it on port 0 passes its
/// address as bound (the `ternd` binary does); port 0 would protect nothing.
pub fn start(config: &Config) -> Result<Handle, StartError> {
    match sys::raise_fd_limit() {
        Ok(n) => tracing::info!(limit = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    let workers = config.workers.max(1);
    let udp_buffers = listen::SocketBuffers {
        recv: config.udp_recv_buffer,
        send: config.udp_send_buffer,
    };
    let mut bound = listen::bind_all(&config.listen, workers, udp_buffers)?;
    if let Some((_, s)) = bound.per_worker.first().and_then(|w| w.udp.first()) {
        udp_buffers.log_granted(s);
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) if !config.tls_listen.is_empty() => {
            Some(turn_tls_config(c, k).map_err(StartError::Tls)?)
        }
        _ => None,
    };
    if tls.is_some() {
        listen::bind_tls(&mut bound, &config.tls_listen)?;
    }
    // RFC 5780: the primary listener (its port as bound) and the alternate IP and port,
    // with UDP listeners on the three other combinations.
    let rfc5780 = match (config.rfc5780_primary(), config.alt_ip) {
        (Some(p), Some(alt_ip)) => {
            let primary = bound
                .stream_origins
                .iter()
                .find(|(configured, _)| *configured == p)
                .map_or(p, |&(_, actual)| actual);
            let alt_port = match config.alt_port {
                Some(port) => port,
                None => primary
                    .port()
                    .checked_add(1)
                    .ok_or(StartError::Bind(BindError::NothingBound))?,
            };
            let r = crate::turn::Rfc5780 {
                primary,
                alternate: SocketAddr::new(alt_ip, alt_port),
            };
            listen::bind_udp(&mut bound, &r.addresses()[1..], udp_buffers)?;
            tracing::info!(primary = %r.primary, alternate = %r.alternate, "RFC 5780 NAT behaviour discovery on");
            Some(r)
        }
        _ => None,
    };
    let (relay_v4, relay_v6) = relay_addresses(config);

    // Every address as bound (port 0 resolved): the UDP/TCP and RFC 5780 listeners, TLS,
    // and the HTTP endpoint (bound by the caller, see above).
    let mut service: Vec<SocketAddr> = bound.udp_addrs.clone();
    service.extend(bound.tls_addrs.iter().copied());
    if let Some(http) = config.http.listen.filter(|a| a.port() == 0) {
        tracing::warn!(%http, "http.listen has port 0: pass the HTTP listener's bound address, or its port is not protected from relaying");
    }
    service.extend(config.http.listen);
    let mut local_ips: Vec<IpAddr> = service.iter().map(|a| a.ip()).collect();
    for r in [relay_v4, relay_v6].into_iter().flatten() {
        local_ips.push(r.bind);
        local_ips.push(r.advertise);
    }
    let policy_base = (service, local_ips);
    let policy = build_policy(config, &policy_base);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let core = CoreConfig {
        software: config.software.clone(),
        stun_backward_compatibility: config.stun_backward_compatibility,
        channel_range: ChannelRange::new(config.relay.rfc5766_channel_numbers),
        relay_v4,
        relay_v6,
        ports: config.relay.ports,
        default_lifetime: config.relay.default_allocation_lifetime,
        max_lifetime: config.relay.max_allocation_lifetime,
        unauth_rate_limit: config.relay.unauth_rate_limit,
        unauth_rate_burst: config.relay.unauth_rate_burst,
        // CoreConfig still spells out the Limits fields; once it holds a `Limits` this is
        // `limits: config.relay.limits`.
        limits: config.relay.limits,
        nonce_lifetime: config.auth.nonce_lifetime,
        clock_anchor: (Instant::now(), unix),
        alternate_server: config.alternate_server,
        rfc5780,
    };
    let store = config.auth.credential_store(&config.realm)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| StartError::Random(e.to_string()))?;
    let nonce_key = NonceKey::from_bytes(key);
    let tcp = crate::turn::TcpRelayConfig {
        enabled: config.tcp_relay,
        ..Default::default()
    };
    let shared = Arc::new(Shared::new(core, store, nonce_key, policy).with_tcp_relay(tcp));
    let udp_gso = config.udp_gso && gso_available();
    tracing::info!(
        gso = udp_gso,
        configured = config.udp_gso,
        "UDP segmentation offload for relayed bursts"
    );
    let net = Arc::new(NetShared {
        udp_gso,
        udp_buffers,
        channel_range: ChannelRange::new(config.relay.rfc5766_channel_numbers),
        max_frame_size: config.max_frame_size,
        tcp_idle_timeout: config.tcp_idle_timeout,
        max_tcp_connections: config.max_tcp_connections,
        tcp_connections: AtomicUsize::new(0),
        tls: std::sync::RwLock::new(tls),
        tls_handshake_timeout: config.tls_handshake_timeout,
        max_connections_per_ip: config.max_connections_per_ip,
        proxy_listeners: bound
            .stream_origins
            .iter()
            .filter(|(configured, _)| config.proxy_protocol.contains(configured))
            .map(|&(_, actual)| actual)
            .collect(),
        per_ip: std::sync::Mutex::new(HashMap::new()),
    });
    let reserved: Reserved = Arc::default();
    let (tx, rx) = watch::channel(false);
    let mut stats = Vec::new();
    let mut admin = Vec::new();
    let mut threads = Vec::new();
    for (i, mut sockets) in bound.per_worker.into_iter().enumerate() {
        if config.tcp_relay && i > 0 {
            // RFC 6062: a data connection's ConnectionBind must reach the worker that owns
            // its allocation, so one worker serves every TCP/TLS client (UDP still spreads).
            sockets.tcp.clear();
            sockets.tls.clear();
        }
        let worker_stats = Arc::new(Stats::default());
        stats.push(worker_stats.clone());
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| StartError::Random(e.to_string()))?;
        let mut server = Server::new(shared.clone(), worker_stats, seed);
        server.set_worker_index(i as u16);
        let (admin_tx, admin_rx) = mpsc::unbounded_channel();
        admin.push(admin_tx);
        let net = net.clone();
        let reserved = reserved.clone();
        let rx = rx.clone();
        let t = std::thread::Builder::new()
            .name(format!("ternd-worker-{i}"))
            .spawn(move || run_worker(i, sockets, server, net, reserved, admin_rx, rx))
            .map_err(|e| StartError::Bind(BindError::Thread(e)))?;
        threads.push(t);
    }
    let view = Arc::new(View {
        stats,
        admin,
        shared,
        net,
        ready: std::sync::atomic::AtomicBool::new(true),
    });
    Ok(Handle {
        udp: bound.udp_addrs,
        tcp: bound.tcp_addrs,
        tls: bound.tls_addrs,
        relay_v4,
        relay_v6,
        view,
        policy_base,
        shutdown: tx,
        threads,
    })
}

fn run_worker(
    index: usize,
    sockets: listen::WorkerSockets,
    server: Server,
    net: Arc<NetShared>,
    reserved: Reserved,
    admin: mpsc::UnboundedReceiver<AdminCmd>,
    shutdown: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = index, error = %e, "cannot start worker runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let worker = Rc::new(Worker {
            server: RefCell::new(server),
            relays: RefCell::new(HashMap::new()),
            reserved,
            listeners: RefCell::new(HashMap::new()),
            tcp_clients: RefCell::new(HashMap::new()),
            tcp_listeners: RefCell::new(HashMap::new()),
            tcp_peers: RefCell::new(HashMap::new()),
            splices: RefCell::new(HashMap::new()),
            splice_requests: RefCell::new(HashMap::new()),
            peer_batch: RefCell::new(sys::RecvBatch::new(
                RELAY_BATCH,
                PEER_HEADROOM,
                RECV_BUF,
                PEER_TAILROOM,
            )),
            peer_queue: RefCell::new(Vec::with_capacity(RELAY_BATCH)),
            gso: gso::Gso::new(net.udp_gso),
            net,
        });
        let mut tasks = Vec::new();
        for (addr, sock) in sockets.udp {
            match UdpSocket::from_std(sock) {
                Ok(sock) => {
                    let sock = Rc::new(sock);
                    worker.listeners.borrow_mut().insert(addr, sock.clone());
                    tasks.push(tokio::task::spawn_local(udp_loop(sock, addr, worker.clone(), shutdown.clone())));
                }
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register UDP socket"),
            }
        }
        for (addr, l) in sockets.tcp {
            match TcpListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_loop(
                    l,
                    addr,
                    StreamKind::Tcp,
                    worker.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register TCP listener"),
            }
        }
        for (addr, l) in sockets.tls {
            match TcpListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_loop(
                    l,
                    addr,
                    StreamKind::Tls,
                    worker.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register TLS listener"),
            }
        }
        tasks.push(tokio::task::spawn_local(admin_loop(worker.clone(), admin, shutdown.clone())));
        tasks.push(tokio::task::spawn_local(timer_loop(worker.clone(), shutdown.clone())));
        for t in tasks {
            let _ = t.await;
        }
        // Shutdown: end every allocation (accounting lines), close relay sockets.
        let mut relays = NetRelays { worker: &worker };
        worker.server.borrow_mut().shutdown(Instant::now(), &mut relays);
        worker.drain_commands();
        worker.relays.borrow_mut().clear();
    });
}

async fn admin_loop(
    worker: Rc<Worker>,
    mut rx: mpsc::UnboundedReceiver<AdminCmd>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let cmd = tokio::select! {
            c = rx.recv() => match c { Some(c) => c, None => return },
            _ = shutdown.changed() => return,
        };
        let now = Instant::now();
        let mut relays = NetRelays { worker: &worker };
        match cmd {
            AdminCmd::List(reply) => {
                let _ = reply.send(worker.server.borrow().sessions(now));
            }
            AdminCmd::End(id, reply) => {
                let _ = reply.send(worker.server.borrow_mut().end_session(id, now, &mut relays));
            }
            AdminCmd::EndUser(user, reply) => {
                let _ = reply.send(worker.server.borrow_mut().end_user_sessions(
                    &user,
                    now,
                    &mut relays,
                ));
            }
        }
        worker.drain_outputs();
    }
}

async fn timer_loop(worker: Rc<Worker>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let mut relays = NetRelays { worker: &worker };
        worker
            .server
            .borrow_mut()
            .handle_timeout(Instant::now(), &mut relays);
        worker.drain_outputs();
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

async fn udp_loop(
    sock: Rc<UdpSocket>,
    local: SocketAddr,
    worker: Rc<Worker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = sys::RecvBatch::new(LISTENER_BATCH, 0, RECV_BUF, 0);
    let mut out = vec![0u8; OUT_BUF];
    // Datagrams for peers, sent when the batch is done (in GSO runs where they can be).
    let mut queue: Vec<gso::Queued> = Vec::with_capacity(LISTENER_BATCH);
    // The kernel's drop count for this listener as last read (SO_RXQ_OVFL).
    let mut rx_drops = sys::RxDrops::default();
    loop {
        tokio::select! {
            r = sock.readable() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
        // Up to a few batches per wake-up, so one busy listener cannot starve the rest.
        let mut drained = false;
        for _ in 0..BATCHES_PER_WAKE {
            let got = match recv_batch(&sock, &mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    tracing::trace!(%local, error = %e, "UDP receive error");
                    continue;
                }
            };
            let dropped = rx_drops.delta(batch.rx_drops());
            if dropped > 0 {
                worker
                    .server
                    .borrow()
                    .stats()
                    .listener_rx_queue_drops
                    .add(dropped);
            }
            let now = Instant::now();
            let flush = |queue: &mut Vec<gso::Queued>, batch: &sys::RecvBatch| {
                let flushed = gso::flush(queue, batch, &worker.gso, |via| {
                    worker.relays.borrow().get(&via).map(|r| r.sock.clone())
                });
                let server = worker.server.borrow();
                udp::count_flushed(
                    flushed,
                    server.stats(),
                    &server.stats().dropped,
                    SockKind::Relay,
                );
            };
            for i in 0..got {
                let (n, from) = batch.meta(i);
                let Some(from) = from else { continue };
                // Data queued before a request leaves before the request can end its
                // allocation, as it would have without the queue.
                if !queue.is_empty() && udp::may_change_state(&batch.slot(i)[..n]) {
                    flush(&mut queue, &batch);
                }
                let packet = &batch.slot_mut(i)[..n];
                let tuple = FiveTuple {
                    client: from,
                    server: local,
                    transport: Transport::Udp,
                };
                let mut relays = NetRelays { worker: &worker };
                let outcome = worker.server.borrow_mut().handle_client(
                    packet,
                    tuple,
                    now,
                    &mut out,
                    &mut relays,
                );
                if let Outcome::Forward {
                    relay,
                    peer,
                    start,
                    len,
                } = outcome
                {
                    queue.push(gso::Queued {
                        via: relay,
                        to: peer,
                        slot: i,
                        start,
                        len,
                    });
                    continue;
                }
                act(&worker, outcome, packet, &out, |bytes| {
                    // Never wait on a full socket buffer: a dropped answer is a lost datagram.
                    if let Err(e) = send_now(&sock, bytes, from) {
                        let server = worker.server.borrow();
                        let stats = server.stats();
                        count_send_error(stats, &stats.dropped, SockKind::Listener, &e);
                    }
                });
            }
            flush(&mut queue, &batch);
            worker.drain_commands();
            if got < batch.slots() {
                drained = true; // and the readiness cleared
                break;
            }
        }
        // Only a socket that still has datagrams queued yields to the others; a drained
        // one waits for readiness straight away (one task poll less per wake-up).
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}

/// Which protocol a stream listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Tcp,
    Tls,
}

/// A slot in the per-source-IP connection count; released on drop.
struct IpSlot {
    net: Arc<NetShared>,
    source: SourceKey,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.net.tcp_connections.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.net.per_ip.lock()
            && let Some(n) = m.get_mut(&self.source)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.source);
            }
        }
    }
}

impl NetShared {
    /// Counts a new connection from `ip` against the total and per-source limits (an IPv6
    /// client's whole /64 shares one count); at accept time only, never per packet.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut m = self.per_ip.lock().ok()?;
        if self.tcp_connections.load(Ordering::Relaxed) >= self.max_tcp_connections {
            return None;
        }
        let source = SourceKey::of(ip);
        let n = m.get(&source).copied().unwrap_or(0);
        if n >= self.max_connections_per_ip {
            return None;
        }
        m.insert(source, n + 1);
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
        Some(IpSlot {
            net: self.clone(),
            source,
        })
    }
}

async fn tcp_accept_loop(
    listener: TcpListener,
    local: SocketAddr,
    kind: StreamKind,
    worker: Rc<Worker>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%local, error = %e, "TCP accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let net = worker.net.clone();
        let proxied = net.proxy_listeners.contains(&local);
        // Behind a load balancer the per-IP cap applies to the real client, known only
        // after the PROXY header; the total cap applies at once either way.
        let slot = if proxied { None } else { net.admit(peer.ip()) };
        if !proxied && slot.is_none() {
            tracing::debug!(%local, "connection refused: connection limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let worker = worker.clone();
        let shutdown = shutdown.clone();
        tokio::task::spawn_local(async move {
            let mut stream = stream;
            let mut local = stream.local_addr().unwrap_or(local);
            let mut peer = peer;
            let mut slot = slot;
            if proxied {
                match read_proxy_header(&mut stream, net.tls_handshake_timeout).await {
                    Some(crate::proxy::Proxied::Addresses {
                        source,
                        destination,
                    }) => {
                        peer = source;
                        local = destination;
                    }
                    Some(crate::proxy::Proxied::Local) => {}
                    None => {
                        worker.server.borrow().stats().malformed.inc();
                        tracing::debug!(%peer, "connection refused: no valid PROXY protocol header");
                        return;
                    }
                }
                slot = net.admit(peer.ip());
                if slot.is_none() {
                    tracing::debug!(%local, "connection refused: connection limit reached");
                    return;
                }
            }
            match kind {
                StreamKind::Tcp => {
                    stream_connection(stream, peer, local, Transport::Tcp, &worker, shutdown).await;
                }
                StreamKind::Tls => {
                    let Some(acceptor) = worker.net.tls_acceptor() else {
                        return;
                    };
                    let handshake =
                        tokio::time::timeout(net.tls_handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            stream_connection(tls, peer, local, Transport::Tls, &worker, shutdown)
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Reads a PROXY protocol v1/v2 header (and nothing after it) within `limit`. `None` when
/// the connection closes, stalls, or sends anything else.
async fn read_proxy_header(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<crate::proxy::Proxied> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; crate::proxy::MAX_HEADER_LEN];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        match crate::proxy::parse(&buf[..n]) {
            Ok(Some((proxied, len))) => {
                tokio::time::timeout_at(deadline, stream.read_exact(&mut buf[..len]))
                    .await
                    .ok()?
                    .ok()?;
                return Some(proxied);
            }
            // An incomplete header: wait for more bytes (peek does not consume them).
            Ok(None) if n < buf.len() => tokio::time::sleep(Duration::from_millis(5)).await,
            _ => return None,
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// One TCP or TLS client connection: frames in, answers and relayed data out.
async fn stream_connection<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    worker: &Rc<Worker>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let tuple = FiveTuple {
        client: peer,
        server: local,
        transport,
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let queue: SharedQueue = Rc::default();
    worker.tcp_clients.borrow_mut().insert(tuple, queue.clone());
    let idle = worker.net.tcp_idle_timeout;
    // The writer: answers and relayed data, in order. It hands the write half back when
    // the queue closes (an RFC 6062 data connection is spliced after its last answer).
    let wq = queue.clone();
    let writer = tokio::task::spawn_local(async move {
        loop {
            match wq.pop() {
                Err(()) => return Some(wr),
                Ok(Some(frame)) => match tokio::time::timeout(idle, wr.write_all(&frame)).await {
                    Ok(Ok(())) => {}
                    _ => {
                        wq.writer_stopped();
                        return None;
                    }
                },
                // notify_one stores a permit, so a push between pop and here is not lost.
                Ok(None) => wq.wake.notified().await,
            }
        }
    });
    let mut splice: Option<u32> = None;
    let mut sb = StreamBuffer::new(worker.net.max_frame_size, worker.net.channel_range);
    let mut out = vec![0u8; OUT_BUF];
    'conn: loop {
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read(sb.space())) => r,
            _ = shutdown.changed() => break 'conn,
        };
        match read {
            Ok(Ok(0)) => break, // closed
            // Idle: a client with a live allocation may be receiving only; keep it.
            Err(_) if worker.server.borrow().allocation(&tuple).is_some() => continue,
            Err(_) => break,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TCP read error");
                break;
            }
            Ok(Ok(n)) => sb.filled(n),
        }
        loop {
            // Backpressure: a client that sends requests but does not read the answers
            // gets no more of its requests read (TCP then stops its sending) until it does.
            while queue.answers_full() && !queue.writer_gone.get() {
                tokio::select! {
                    _ = queue.room.notified() => {}
                    _ = shutdown.changed() => break 'conn,
                }
            }
            if queue.writer_gone.get() {
                break 'conn;
            }
            let (_, frame) = match sb.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    worker.server.borrow().stats().malformed.inc();
                    tracing::debug!(%peer, error = %e, "closing TCP connection: bad framing");
                    break 'conn;
                }
            };
            let mut relays = NetRelays { worker };
            let outcome = worker.server.borrow_mut().handle_client(
                frame,
                tuple,
                Instant::now(),
                &mut out,
                &mut relays,
            );
            match outcome {
                // Answers wait for room behind relayed data (they are few and small);
                // only a closed writer ends the connection.
                Outcome::Reply { len } => {
                    queue.push_answer(out[..len].to_vec());
                }
                other => act(worker, other, frame, &out, |_| {}),
            }
            worker.drain_outputs();
            if let Some(id) = worker.splice_requests.borrow_mut().remove(&tuple) {
                splice = Some(id);
                break 'conn;
            }
        }
        if writer.is_finished() {
            break;
        }
    }
    worker.tcp_clients.borrow_mut().remove(&tuple);
    if let Some(id) = splice {
        // RFC 6062 data connection: flush the ConnectionBind answer, then relay raw bytes
        // both ways, the bytes already read after the ConnectionBind first.
        let leftover = sb.pending_bytes().to_vec();
        queue.close();
        let wr = writer.await.ok().flatten();
        let peer_stream = worker
            .tcp_peers
            .borrow_mut()
            .remove(&id)
            .and_then(|p| p.stream);
        if let (Some(wr), Some(mut peer_stream)) = (wr, peer_stream) {
            let mut client = rd.unsplit(wr);
            let task = tokio::task::spawn_local(async move {
                if !leftover.is_empty() {
                    peer_stream.write_all(&leftover).await?;
                }
                tokio::io::copy_bidirectional(&mut client, &mut peer_stream).await
            });
            worker.splices.borrow_mut().insert(id, task.abort_handle());
            let _ = task.await;
            worker.splices.borrow_mut().remove(&id);
        }
        let mut relays = NetRelays { worker };
        let _ = worker.server.borrow_mut().handle_tcp_event(
            crate::turn::TcpEvent::Closed { id },
            Instant::now(),
            &mut relays,
        );
    } else {
        queue.close();
        writer.abort();
    }
    // Closing the connection deletes its allocation (RFC 8656 §3.1).
    let mut relays = NetRelays { worker };
    worker
        .server
        .borrow_mut()
        .close_tuple(&tuple, Instant::now(), &mut relays);
    worker.drain_outputs();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_queue_drops_the_oldest_data_and_never_answers() {
        let q = StreamQueue::default();
        q.push_answer(vec![0; 10]);
        let chunk = (TCP_QUEUE_BYTES - 10) / 4;
        for i in 0..4u8 {
            assert!(q.push_data(vec![i + 1; chunk]), "fits");
        }
        // Full: the next frame evicts the oldest data frame, not the answer.
        assert!(!q.push_data(vec![9; chunk]));
        assert!(q.bytes.get() <= TCP_QUEUE_BYTES);
        let order: Vec<u8> = std::iter::from_fn(|| q.pop().ok().flatten())
            .map(|f| f[0])
            .collect();
        assert_eq!(order, vec![0, 2, 3, 4, 9]);
        assert_eq!(q.bytes.get(), 0);
        // A frame bigger than the whole queue is refused outright.
        assert!(!q.push_data(vec![0; TCP_QUEUE_BYTES + 1]));
        q.close();
        assert_eq!(q.pop(), Err(()));
    }

    #[test]
    fn stream_queue_answers_fill_their_budget_and_leave_room_when_taken() {
        let q = StreamQueue::default();
        let answer = 100;
        let mut queued = 0;
        while !q.answers_full() {
            q.push_answer(vec![1; answer]);
            queued += 1;
        }
        assert_eq!(queued, TCP_ANSWER_BYTES.div_ceil(answer));
        assert!(q.bytes.get() <= TCP_ANSWER_BYTES + answer);
        // Relayed data still fits beside a full answer budget, and never evicts answers.
        assert!(q.push_data(vec![2; TCP_QUEUE_BYTES - q.bytes.get()]));
        assert!(!q.push_data(vec![3; 10]));
        assert!(q.answers_full());
        // Taking one answer makes room for the reader again.
        assert_eq!(q.pop().unwrap().unwrap()[0], 1);
        assert!(!q.answers_full());
        assert_eq!(q.answer_bytes.get(), (queued - 1) * answer);
    }
}

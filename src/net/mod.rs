//! The I/O shell: listeners, worker threads, and the loops that feed packets to the
//! sans-IO core ([`crate::turn::Server`]).
//!
//! `workers` threads each run a single-threaded tokio runtime and own one `SO_REUSEPORT`
//! UDP socket and one TCP listener per `--listen` address, plus their own core. The kernel
//! spreads clients across the workers and keeps a client's 5-tuple on one of them; workers
//! share nothing on the per-packet path.

mod listen;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::config::Config;
use crate::stun::channel::ChannelRange;
use crate::stun::stream::{FrameKind, StreamBuffer};
use crate::turn::{CoreConfig, FiveTuple, Outcome, Server, Stats, StatsSnapshot, Transport};

pub use listen::BindError;

/// Largest answer the core writes.
const OUT_BUF: usize = 1500;
/// Receive buffer for one datagram: the largest UDP payload.
const RECV_BUF: usize = 65_536;

/// A running server: its bound addresses, counters, and the way to stop it.
#[derive(Debug)]
pub struct Handle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    stats: Vec<Arc<Stats>>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
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

    /// The counters of all workers, summed.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.iter().map(|s| s.snapshot()).sum()
    }

    /// Stops every worker and waits for them.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Settings every worker shares (read-only).
struct Shared {
    core: Arc<CoreConfig>,
    channel_range: ChannelRange,
    max_frame_size: usize,
    tcp_idle_timeout: Duration,
    max_tcp_connections: usize,
    tcp_connections: AtomicUsize,
}

/// Binds every listener and starts the workers. Returns once all sockets are bound, so
/// bind errors come back here rather than from a thread.
pub fn start(config: &Config) -> Result<Handle, BindError> {
    let workers = config.workers.max(1);
    let bound = listen::bind_all(&config.listen, workers)?;
    let shared = Arc::new(Shared {
        core: Arc::new(CoreConfig::from_config(config)),
        channel_range: ChannelRange::new(config.relay.rfc5766_channel_numbers),
        max_frame_size: config.max_frame_size,
        tcp_idle_timeout: config.tcp_idle_timeout,
        max_tcp_connections: config.max_tcp_connections,
        tcp_connections: AtomicUsize::new(0),
    });
    let (tx, rx) = watch::channel(false);
    let mut stats = Vec::new();
    let mut threads = Vec::new();
    for (i, sockets) in bound.per_worker.into_iter().enumerate() {
        let worker_stats = Arc::new(Stats::default());
        stats.push(worker_stats.clone());
        let shared = shared.clone();
        let rx = rx.clone();
        let t = std::thread::Builder::new()
            .name(format!("ternd-worker-{i}"))
            .spawn(move || worker(i, sockets, shared, worker_stats, rx))
            .map_err(BindError::Thread)?;
        threads.push(t);
    }
    Ok(Handle {
        udp: bound.udp_addrs,
        tcp: bound.tcp_addrs,
        stats,
        shutdown: tx,
        threads,
    })
}

fn worker(
    index: usize,
    sockets: listen::WorkerSockets,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
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
        let server = Rc::new(RefCell::new(Server::new(shared.core.clone(), stats)));
        let mut tasks = Vec::new();
        for (addr, sock) in sockets.udp {
            match UdpSocket::from_std(sock) {
                Ok(sock) => tasks.push(tokio::task::spawn_local(udp_loop(
                    sock,
                    addr,
                    server.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register UDP socket"),
            }
        }
        for (addr, l) in sockets.tcp {
            match TcpListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(tcp_accept_loop(
                    l,
                    addr,
                    server.clone(),
                    shared.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!(worker = index, %addr, error = %e, "cannot register TCP listener"),
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

async fn udp_loop(
    sock: UdpSocket,
    local: SocketAddr,
    server: Rc<RefCell<Server>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = vec![0u8; OUT_BUF];
    loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(%local, error = %e, "UDP receive error");
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let tuple = FiveTuple {
            client: from,
            server: local,
            transport: Transport::Udp,
        };
        let outcome = server
            .borrow_mut()
            .handle_client(&buf[..n], tuple, Instant::now(), &mut out);
        if let Outcome::Reply { len } = outcome {
            // Never wait on a full socket buffer: a dropped answer is a lost datagram.
            if let Err(e) = sock.try_send_to(&out[..len], from) {
                server.borrow().stats().dropped.inc();
                tracing::trace!(%local, error = %e, "UDP answer dropped");
            }
        }
    }
}

async fn tcp_accept_loop(
    listener: TcpListener,
    local: SocketAddr,
    server: Rc<RefCell<Server>>,
    shared: Arc<Shared>,
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
            _ = shutdown.changed() => break,
        };
        let open = shared.tcp_connections.fetch_add(1, Ordering::Relaxed);
        if open >= shared.max_tcp_connections {
            shared.tcp_connections.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(%local, "TCP connection refused: max_tcp_connections reached");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let shared2 = shared.clone();
        let shutdown = shutdown.clone();
        tokio::task::spawn_local(async move {
            tcp_connection(stream, peer, local, server, &shared2, shutdown).await;
            shared2.tcp_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    server: Rc<RefCell<Server>>,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = stream.local_addr().unwrap_or(local);
    let tuple = FiveTuple {
        client: peer,
        server: local,
        transport: Transport::Tcp,
    };
    let mut sb = StreamBuffer::new(shared.max_frame_size, shared.channel_range);
    let mut out = vec![0u8; OUT_BUF];
    let idle = shared.tcp_idle_timeout;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read(sb.space())) => r,
            _ = shutdown.changed() => return,
        };
        match read {
            Ok(Ok(0)) | Err(_) => return, // closed, or idle too long
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TCP read error");
                return;
            }
            Ok(Ok(n)) => sb.filled(n),
        }
        loop {
            let frame = match sb.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    server.borrow().stats().malformed.inc();
                    tracing::debug!(%peer, error = %e, "closing TCP connection: bad framing");
                    return;
                }
            };
            let outcome = match frame {
                (FrameKind::Stun | FrameKind::ChannelData, bytes) => server
                    .borrow_mut()
                    .handle_client(bytes, tuple, Instant::now(), &mut out),
            };
            if let Outcome::Reply { len } = outcome {
                match tokio::time::timeout(idle, stream.write_all(&out[..len])).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
        }
    }
}

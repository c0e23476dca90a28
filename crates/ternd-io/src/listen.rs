//! Binding the listeners: one `SO_REUSEPORT` socket per worker and address.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Why the listeners could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// A socket could not be created or bound.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Listen {
        /// "UDP" or "TCP".
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// No listen address could be bound.
    #[error("no listen address could be bound")]
    NothingBound,
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(io::Error),
}

/// The sockets of one worker.
#[derive(Debug, Default)]
pub struct WorkerSockets {
    /// UDP listeners (STUN/TURN over UDP), with their bound addresses.
    pub udp: Vec<(SocketAddr, UdpSocket)>,
    /// TCP listeners (STUN/TURN over TCP), with their bound addresses.
    pub tcp: Vec<(SocketAddr, TcpListener)>,
    /// TURN over TLS listeners.
    pub tls: Vec<(SocketAddr, TcpListener)>,
}

/// Everything bound.
#[derive(Debug)]
pub struct Bound {
    /// Bound UDP listen addresses (concrete ports).
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP listen addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound TLS listen addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// (configured, bound) for every stream listener, to match per-listener settings.
    pub stream_origins: Vec<(SocketAddr, SocketAddr)>,
    /// Each worker's own `SO_REUSEPORT` sockets.
    pub per_worker: Vec<WorkerSockets>,
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // `[::]:3478` next to `0.0.0.0:3478` must not collide.
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// The `SO_RCVBUF` and `SO_SNDBUF` sizes asked for every UDP socket (listeners and relay
/// sockets), in bytes; 0 leaves the kernel's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// `SO_RCVBUF` asked for, bytes (0: the kernel's default).
    pub recv: usize,
    /// `SO_SNDBUF` asked for, bytes (0: the kernel's default).
    pub send: usize,
}

impl SocketBuffers {
    /// Asks for the sizes (the kernel caps them at net.core.rmem_max / wmem_max and
    /// doubles what it grants, for its bookkeeping) and turns on the receive-queue drop
    /// count (`SO_RXQ_OVFL`). Failures are not fatal: the socket works with what it has.
    pub fn apply(self, s: &Socket) {
        if self.recv > 0 {
            let _ = s.set_recv_buffer_size(self.recv);
        }
        if self.send > 0 {
            let _ = s.set_send_buffer_size(self.send);
        }
        let _ = crate::sys::enable_rx_drop_count(s);
    }

    /// Logs what the kernel granted `s` against what was asked, and warns when the
    /// net.core limits cut it.
    pub fn log_granted(self, s: &UdpSocket) {
        let s = socket2::SockRef::from(s);
        let recv = s.recv_buffer_size().unwrap_or(0);
        let send = s.send_buffer_size().unwrap_or(0);
        let limit = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
        };
        let (rmem_max, wmem_max) = (limit("rmem_max"), limit("wmem_max"));
        tracing::info!(
            recv_asked = self.recv,
            recv_granted = recv,
            send_asked = self.send,
            send_granted = send,
            rmem_max,
            wmem_max,
            "UDP socket buffers (0 asked = the kernel default; the kernel reports twice the \
             usable size and caps at net.core.rmem_max / wmem_max)"
        );
        // Linux grants min(asked, max) * 2.
        if self.recv > 0 && recv < self.recv.saturating_mul(2) {
            tracing::warn!(
                asked = self.recv,
                granted = recv / 2,
                "UDP receive buffer cut by net.core.rmem_max; raise it (sysctl -w \
                 net.core.rmem_max={}) or lower udp_recv_buffer",
                self.recv
            );
        }
        if self.send > 0 && send < self.send.saturating_mul(2) {
            tracing::warn!(
                asked = self.send,
                granted = send / 2,
                "UDP send buffer cut by net.core.wmem_max; raise it (sysctl -w \
                 net.core.wmem_max={}) or lower udp_send_buffer",
                self.send
            );
        }
    }
}

fn udp(addr: SocketAddr, buffers: SocketBuffers) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    buffers.apply(&s);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// A port free for both UDP and TCP on `addr`'s IP, found with sockets that have no reuse
/// flags: the kernel's ephemeral search skips ports held by other `SO_REUSEPORT` sockets of
/// the same user only when the probing socket has no such flag itself.
fn probe_free_port(addr: SocketAddr) -> io::Result<u16> {
    let mut last_err = None;
    for _ in 0..16 {
        let u = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            u.set_only_v6(true)?;
        }
        u.bind(&addr.into())?;
        let port = u.local_addr()?.as_socket().map(|a| a.port()).unwrap_or(0);
        let t = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            t.set_only_v6(true)?;
        }
        match t.bind(&SocketAddr::new(addr.ip(), port).into()) {
            Ok(()) => return Ok(port),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// The UDP and TCP sockets of `workers` workers on `addr`. Port 0 picks one port free for
/// both UDP and TCP.
fn bind_addr(
    addr: SocketAddr,
    workers: usize,
    buffers: SocketBuffers,
) -> io::Result<(SocketAddr, Vec<(UdpSocket, TcpListener)>)> {
    let mut last_err = None;
    for _ in 0..16 {
        let actual = if addr.port() == 0 {
            SocketAddr::new(addr.ip(), probe_free_port(addr)?)
        } else {
            addr
        };
        let mut out = Vec::with_capacity(workers);
        let mut failed = None;
        for _ in 0..workers {
            match udp(actual, buffers).and_then(|u| Ok((u, tcp(actual)?))) {
                Ok(pair) => out.push(pair),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => return Ok((actual, out)),
            // Someone took the probed port in between: probe again.
            Some(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_err = Some(e)
            }
            Some(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// True when `e` says this host has no IPv6 (so a default `[::]` listener is skipped).
fn no_ipv6(addr: SocketAddr, e: &io::Error) -> bool {
    addr.is_ipv6()
        && addr.ip().is_unspecified()
        && (e.kind() == io::ErrorKind::AddrNotAvailable
            || matches!(
                e.raw_os_error(),
                Some(97 /* EAFNOSUPPORT */) | Some(99 /* EADDRNOTAVAIL */)
            ))
}

/// Binds UDP and TCP on every address in `addrs`, one `SO_REUSEPORT` socket of each per
/// worker (a port-0 address gets one free port for all). An IPv6 wildcard on a host without
/// IPv6 is skipped with a warning; binding nothing at all is an error.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
    buffers: SocketBuffers,
) -> Result<Bound, BindError> {
    let mut bound = Bound {
        udp_addrs: Vec::new(),
        tcp_addrs: Vec::new(),
        tls_addrs: Vec::new(),
        stream_origins: Vec::new(),
        per_worker: (0..workers).map(|_| WorkerSockets::default()).collect(),
    };
    for &addr in addrs {
        match bind_addr(addr, workers, buffers) {
            Ok((actual, sockets)) => {
                bound.udp_addrs.push(actual);
                bound.tcp_addrs.push(actual);
                bound.stream_origins.push((addr, actual));
                for (w, (u, t)) in bound.per_worker.iter_mut().zip(sockets) {
                    w.udp.push((actual, u));
                    w.tcp.push((actual, t));
                }
            }
            Err(e) if no_ipv6(addr, &e) => {
                tracing::warn!(%addr, error = %e, "IPv6 unavailable on this host; not listening on it");
            }
            Err(source) => {
                return Err(BindError::Listen {
                    proto: "UDP/TCP",
                    addr,
                    source,
                });
            }
        }
    }
    if bound.udp_addrs.is_empty() {
        return Err(BindError::NothingBound);
    }
    Ok(bound)
}

/// UDP sockets only (RFC 5780's other addresses), one `SO_REUSEPORT` socket per worker
/// per address; the addresses have concrete ports.
pub fn bind_udp(
    bound: &mut Bound,
    addrs: &[SocketAddr],
    buffers: SocketBuffers,
) -> Result<(), BindError> {
    let workers = bound.per_worker.len();
    for &addr in addrs {
        let sockets = (0..workers)
            .map(|_| udp(addr, buffers))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|source| BindError::Listen {
                proto: "UDP",
                addr,
                source,
            })?;
        bound.udp_addrs.push(addr);
        for (w, u) in bound.per_worker.iter_mut().zip(sockets) {
            w.udp.push((addr, u));
        }
    }
    Ok(())
}

/// TCP listeners only (TURN over TLS), one `SO_REUSEPORT` socket per worker per address.
pub fn bind_tls(bound: &mut Bound, addrs: &[SocketAddr]) -> Result<(), BindError> {
    let workers = bound.per_worker.len();
    for &addr in addrs {
        let bind = |addr: SocketAddr| -> io::Result<(SocketAddr, Vec<TcpListener>)> {
            let actual = if addr.port() == 0 {
                SocketAddr::new(addr.ip(), probe_free_port(addr)?)
            } else {
                addr
            };
            let listeners = (0..workers)
                .map(|_| tcp(actual))
                .collect::<io::Result<Vec<_>>>()?;
            Ok((actual, listeners))
        };
        match bind(addr) {
            Ok((actual, listeners)) => {
                bound.tls_addrs.push(actual);
                bound.stream_origins.push((addr, actual));
                for (w, l) in bound.per_worker.iter_mut().zip(listeners) {
                    w.tls.push((actual, l));
                }
            }
            Err(e) if no_ipv6(addr, &e) => {
                tracing::warn!(%addr, error = %e, "IPv6 unavailable on this host; not listening on it");
            }
            Err(source) => {
                return Err(BindError::Listen {
                    proto: "TLS",
                    addr,
                    source,
                });
            }
        }
    }
    Ok(())
}

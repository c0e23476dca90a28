//! ternd's UDP floor: batched receive (`recvmmsg`, with the kernel's drop count), UDP GSO
//! sends, socket options, listener binding with `SO_REUSEPORT`, and the process's file
//! descriptor limit. Buffers and addresses in, counts out: nothing here knows STUN or TURN.
//!
//! This is the only crate of the workspace with `unsafe` code and `libc`; every `unsafe`
//! block is in [`sys`], each with a `// SAFETY:` line.

#![deny(missing_docs)]

pub mod gso;
pub mod listen;
#[allow(unsafe_code)]
pub mod sys;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// Receive buffer for one datagram: the largest UDP payload.
pub const RECV_BUF: usize = 65_536;

/// Default socket receive and send buffer: 4 MiB (what stock kernels cap at is far less:
/// net.core.rmem_max / wmem_max, 208 KiB by default).
pub const DEFAULT_UDP_BUFFER: usize = 4 << 20;

/// Failed UDP sends by error, added to a worker's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendErrors {
    /// `EAGAIN`: the socket's send buffer is full.
    pub would_block: u64,
    /// `ENOBUFS`: no kernel memory (or a full device queue).
    pub no_buffers: u64,
    /// Anything else.
    pub other: u64,
}

impl SendErrors {
    /// Counts one failed send.
    pub fn note(&mut self, e: &std::io::Error) {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            self.would_block += 1;
        } else if e.raw_os_error() == Some(libc::ENOBUFS) {
            self.no_buffers += 1;
        } else {
            self.other += 1;
        }
    }
}

/// Sends a datagram now, without waiting: one non-blocking `sendto`. (Tokio's
/// `try_send_to` consults its cached readiness first, and a socket registered a moment ago
/// has none yet, so the first packet on a new relay socket would be dropped.)
pub fn send_now(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
    socket2::SockRef::from(sock).send_to(bytes, &to.into())
}

/// Datagrams one `recvmmsg` takes from a relay socket (usually one is queued).
pub const RELAY_BATCH: usize = 8;
/// Datagrams one `recvmmsg` takes from a listener.
pub const LISTENER_BATCH: usize = 32;
/// Batches taken from one socket before yielding to the other tasks.
pub const BATCHES_PER_WAKE: usize = 4;

/// One `recvmmsg` on `sock`. A short batch means the queue is empty: the socket's readiness
/// is then cleared as if `WouldBlock` had been seen (a datagram arriving meanwhile raises it
/// again), which saves the extra `recvfrom` that would only return `EAGAIN`.
pub fn recv_batch(sock: &UdpSocket, batch: &mut sys::RecvBatch) -> std::io::Result<usize> {
    let mut got = 0;
    let r = sock.try_io(tokio::io::Interest::READABLE, || {
        got = batch.recv(sock)?;
        if got < batch.slots() {
            Err(std::io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match r {
        Ok(()) => Ok(got),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        Err(e) => Err(e),
    }
}

/// Raises RLIMIT_NOFILE to its hard limit (the server does at start; `ternd bench` too, for
/// its thousands of client sockets); returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    sys::raise_fd_limit()
}

/// The PID of the process listening at the other end of a connected Unix stream socket.
#[cfg(target_os = "linux")]
pub fn unix_peer_pid(sock: &std::os::unix::net::UnixStream) -> std::io::Result<u32> {
    sys::peer_pid(sock)
}

/// Whether this kernel has UDP GSO (`UDP_SEGMENT`), asked of a throwaway socket.
pub fn gso_available() -> bool {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .or_else(|_| std::net::UdpSocket::bind((std::net::Ipv6Addr::LOCALHOST, 0)))
        .is_ok_and(|s| sys::gso_supported(&s))
}

/// Datagrams the kernel has dropped at `sock`'s receive queue so far (`SO_MEMINFO`; one
/// system call, for reports, not the packet path).
pub fn socket_rx_drops(sock: &std::net::UdpSocket) -> std::io::Result<u32> {
    sys::socket_rx_drops(sock)
}

/// Registers a UDP socket shared through an `Arc` with the current runtime for readiness.
pub fn register_shared_udp(
    sock: Arc<std::net::UdpSocket>,
) -> std::io::Result<tokio::io::unix::AsyncFd<Arc<std::net::UdpSocket>>> {
    sys::register_shared_udp(sock)
}

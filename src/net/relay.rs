//! Relay sockets: the I/O side of [`crate::turn::Relays`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::Worker;
use super::sys;
use crate::turn::{PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, Relays};

/// Sockets bound for EVEN-PORT reservations, shared by all workers: the Allocate that
/// claims one may arrive on another worker.
pub(super) type Reserved = Arc<Mutex<HashMap<SocketAddr, std::net::UdpSocket>>>;

/// A live relay socket of this worker.
pub(super) struct RelaySocket {
    pub sock: Rc<UdpSocket>,
    task: AbortHandle,
}

impl Drop for RelaySocket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    // No SO_REUSEADDR/SO_REUSEPORT: a port in use must fail, so the core picks another.
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The worker's [`Relays`]: binds sockets and spawns their receive tasks.
pub(super) struct NetRelays<'w> {
    pub worker: &'w Rc<Worker>,
}

impl NetRelays<'_> {
    /// Registers a bound socket with the runtime and starts its receive task.
    fn start(
        &mut self,
        std_sock: std::net::UdpSocket,
        addr: SocketAddr,
        dont_fragment: bool,
    ) -> io::Result<()> {
        if dont_fragment {
            sys::set_dont_fragment(&std_sock, addr.is_ipv6())?;
        }
        let sock = Rc::new(UdpSocket::from_std(std_sock)?);
        let task = tokio::task::spawn_local(relay_loop(sock.clone(), addr, self.worker.clone()))
            .abort_handle();
        self.worker
            .relays
            .borrow_mut()
            .insert(addr, RelaySocket { sock, task });
        Ok(())
    }
}

impl Relays for NetRelays<'_> {
    fn open(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        // A reserved port is held by a socket without reuse flags, so this bind fails.
        let sock = bind(addr)?;
        self.start(sock, addr, dont_fragment)
    }

    fn claim(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        let reserved = self
            .worker
            .reserved
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&addr));
        let sock = reserved.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.start(sock, addr, dont_fragment)
    }

    fn reserve(&mut self, addr: SocketAddr) -> io::Result<()> {
        let s = bind(addr)?;
        if let Ok(mut r) = self.worker.reserved.lock() {
            r.insert(addr, s);
        }
        Ok(())
    }

    fn release(&mut self, addr: SocketAddr) {
        if let Ok(mut r) = self.worker.reserved.lock() {
            r.remove(&addr);
        }
    }

    fn close(&mut self, addr: SocketAddr) {
        self.worker.relays.borrow_mut().remove(&addr);
    }
}

/// Receives peer datagrams on one relay socket into the worker's shared buffer (at
/// [`PEER_HEADROOM`], so the core writes the client-bound header in front) and sends them
/// on to the client.
async fn relay_loop(sock: Rc<UdpSocket>, local: SocketAddr, worker: Rc<Worker>) {
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        // Drain what is queued, a bounded number per wake-up so one busy socket cannot
        // starve the others.
        for _ in 0..64 {
            let mut buf = worker.peer_buf.borrow_mut();
            let cap = buf.len() - PEER_TAILROOM;
            let (n, peer) = match sock.try_recv_from(&mut buf[PEER_HEADROOM..cap]) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::trace!(%local, error = %e, "relay receive error");
                    continue;
                }
            };
            let outcome =
                worker
                    .server
                    .borrow_mut()
                    .handle_peer(local, peer, &mut buf, n, Instant::now());
            if let PeerOutcome::ToClient { tuple, start, len } = outcome {
                worker.send_to_client(tuple, &buf[start..start + len]);
            }
        }
        tokio::task::yield_now().await;
    }
}

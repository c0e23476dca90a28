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
use crate::turn::{PeerOutcome, Relays};
use ternd_io::sys;

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

fn bind(
    addr: SocketAddr,
    buffers: ternd_io::listen::SocketBuffers,
) -> io::Result<std::net::UdpSocket> {
    // No SO_REUSEADDR/SO_REUSEPORT: a port in use must fail, so the core picks another.
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    buffers.apply(&s);
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
        // One relayed address per allocation, whatever the transport.
        if self.worker.tcp_listeners.borrow().contains_key(&addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        // A reserved port is held by a socket without reuse flags, so this bind fails.
        let sock = bind(addr, self.worker.net.udp_buffers)?;
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
        let s = bind(addr, self.worker.net.udp_buffers)?;
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
        if let Some(task) = self.worker.tcp_listeners.borrow_mut().remove(&addr) {
            task.abort();
        }
    }

    fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<()> {
        // Reuse flags let outgoing connections (Connect) bind the same address; so a port
        // another TCP allocation holds must be refused here rather than by the kernel.
        if self.worker.tcp_listeners.borrow().contains_key(&addr)
            || self.worker.relays.borrow().contains_key(&addr)
        {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(128)?;
        let listener = tokio::net::TcpListener::from_std(s.into())?;
        let task = tokio::task::spawn_local(tcp_relay_accept(listener, addr, self.worker.clone()))
            .abort_handle();
        self.worker.tcp_listeners.borrow_mut().insert(addr, task);
        Ok(())
    }

    fn connect_tcp(&mut self, relay: SocketAddr, peer: SocketAddr, id: u32) -> io::Result<()> {
        let socket = if relay.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(relay)?;
        let worker = self.worker.clone();
        let task = tokio::task::spawn_local(async move {
            let connected =
                tokio::time::timeout(crate::turn::TCP_CONNECT_TIMEOUT, socket.connect(peer)).await;
            let event = match connected {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    if let Some(p) = worker.tcp_peers.borrow_mut().get_mut(&id) {
                        p.stream = Some(stream);
                    }
                    crate::turn::TcpEvent::Connected { id }
                }
                _ => {
                    worker.tcp_peers.borrow_mut().remove(&id);
                    crate::turn::TcpEvent::ConnectFailed { id }
                }
            };
            let mut relays = NetRelays { worker: &worker };
            let _ = worker
                .server
                .borrow_mut()
                .handle_tcp_event(event, Instant::now(), &mut relays);
            worker.drain_outputs();
        })
        .abort_handle();
        self.worker.tcp_peers.borrow_mut().insert(
            id,
            PeerConn {
                stream: None,
                connecting: Some(task),
            },
        );
        Ok(())
    }

    fn close_tcp(&mut self, id: u32) {
        // Dropping the entry closes the peer socket (or abandons the attempt); a splice in
        // progress notices through its own end of the pair.
        if let Some(p) = self.worker.tcp_peers.borrow_mut().remove(&id)
            && let Some(t) = p.connecting
        {
            t.abort();
        }
        if let Some(t) = self.worker.splices.borrow_mut().remove(&id) {
            t.abort();
        }
    }
}

/// A TCP connection with a peer of an RFC 6062 allocation, before it is spliced.
pub(super) struct PeerConn {
    /// The connected socket (not read until spliced, so the kernel buffers what the peer
    /// sends and its window applies).
    pub stream: Option<tokio::net::TcpStream>,
    /// The connect attempt in progress.
    pub connecting: Option<AbortHandle>,
}

/// Accepts peers on an RFC 6062 allocation's relayed address.
async fn tcp_relay_accept(
    listener: tokio::net::TcpListener,
    relay: SocketAddr,
    worker: Rc<super::Worker>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let peer = SocketAddr::new(crate::policy::canonical(peer.ip()), peer.port());
        let mut relays = NetRelays { worker: &worker };
        let verdict = worker.server.borrow_mut().handle_tcp_event(
            crate::turn::TcpEvent::Accepted { relay, peer },
            Instant::now(),
            &mut relays,
        );
        if let crate::turn::TcpVerdict::Keep { id } = verdict {
            let _ = stream.set_nodelay(true);
            worker.tcp_peers.borrow_mut().insert(
                id,
                PeerConn {
                    stream: Some(stream),
                    connecting: None,
                },
            );
        }
        worker.drain_outputs();
    }
}

/// Receives peer datagrams on one relay socket into the worker's shared buffer (at
/// [`PEER_HEADROOM`], so the core writes the client-bound header in front) and sends them
/// on to the client.
async fn relay_loop(sock: Rc<UdpSocket>, local: SocketAddr, worker: Rc<Worker>) {
    // The kernel's drop count for this socket as last read (SO_RXQ_OVFL).
    let mut rx_drops = sys::RxDrops::default();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        // Drain what is queued, a bounded number of batches per wake-up so one busy socket
        // cannot starve the others. The batch buffers are the worker's (tasks of one
        // worker never run at once, and none holds them across an await).
        let mut drained = false;
        for _ in 0..ternd_io::BATCHES_PER_WAKE {
            let mut batch = worker.peer_batch.borrow_mut();
            let got = match ternd_io::recv_batch(&sock, &mut batch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    tracing::trace!(%local, error = %e, "relay receive error");
                    continue;
                }
            };
            let dropped = rx_drops.delta(batch.rx_drops());
            if dropped > 0 {
                worker
                    .server
                    .borrow()
                    .stats()
                    .relay_rx_queue_drops
                    .add(dropped);
            }
            let now = Instant::now();
            let mut queue = worker.peer_queue.borrow_mut();
            for i in 0..got {
                let (n, peer) = batch.meta(i);
                let Some(peer) = peer else { continue };
                let buf = batch.slot_mut(i);
                let outcome = worker
                    .server
                    .borrow_mut()
                    .handle_peer(local, peer, buf, n, now);
                if let PeerOutcome::ToClient { tuple, start, len } = outcome {
                    if tuple.transport == crate::turn::Transport::Udp {
                        queue.push(ternd_io::gso::Queued {
                            via: tuple.server,
                            to: tuple.client,
                            slot: i,
                            start,
                            len,
                        });
                    } else {
                        worker.send_to_client(tuple, &buf[start..start + len]);
                    }
                }
            }
            let flushed = ternd_io::gso::flush(&mut queue, &batch, &worker.gso, |via| {
                worker.listeners.borrow().get(&via).cloned()
            });
            drop(queue);
            let server = worker.server.borrow();
            super::count_flushed(
                flushed,
                server.stats(),
                &server.stats().peer_dropped,
                super::SockKind::Listener,
            );
            if got < batch.slots() {
                drained = true;
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

//! Relay sockets: the I/O side of [`crate::turn::Relays`], and how the worker takes the
//! datagrams peers send to them. RFC 6062 relayed TCP too: listeners and outgoing connects
//! run in tasks of their own that report to the worker ([`Event::PeerAccepted`],
//! [`Event::PeerConnected`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::queue::Conn;
use super::ready::{ReadySet, Token};
use super::{Event, Events, NetShared, SockKind, Worker, count_flushed, gso};
use crate::turn::{PeerOutcome, Relays, TcpEvent, TcpVerdict, Transport};
use ternd_io::{recv_batch, sys};

/// Sockets bound for EVEN-PORT reservations, shared by all workers: the Allocate that
/// claims one may arrive on another worker.
pub(super) type Reserved = Arc<Mutex<HashMap<SocketAddr, std::net::UdpSocket>>>;

/// A live relay socket of this worker.
#[derive(Debug)]
struct RelaySocket {
    sock: Rc<UdpSocket>,
    /// Marks it readable in the worker's ready set.
    waker: Waker,
    /// The kernel's drop count for this socket as last read (SO_RXQ_OVFL).
    rx_drops: sys::RxDrops,
}

/// A TCP connection with a peer of an RFC 6062 allocation, before it is spliced.
#[derive(Debug)]
struct PeerConn {
    /// The connected socket (not read until spliced, so the kernel buffers what the peer
    /// sends and its window applies).
    stream: Option<tokio::net::TcpStream>,
    /// The connect attempt in progress.
    connecting: Option<AbortHandle>,
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

/// A worker's relay sockets and RFC 6062 connections: the core's [`Relays`].
#[derive(Debug)]
pub(super) struct RelaySockets {
    socks: HashMap<SocketAddr, RelaySocket>,
    reserved: Reserved,
    /// RFC 6062: relay listeners of TCP allocations, by relayed address.
    tcp_listeners: HashMap<SocketAddr, AbortHandle>,
    /// RFC 6062: peer connections not yet spliced, by CONNECTION-ID.
    tcp_peers: HashMap<u32, PeerConn>,
    /// RFC 6062: client data connections spliced to a peer, by CONNECTION-ID.
    splices: HashMap<u32, Rc<Conn>>,
    net: Arc<NetShared>,
    ready: Arc<ReadySet>,
    events: Events,
}

impl RelaySockets {
    pub(super) fn new(
        reserved: Reserved,
        net: Arc<NetShared>,
        ready: Arc<ReadySet>,
        events: Events,
    ) -> Self {
        Self {
            socks: HashMap::new(),
            reserved,
            tcp_listeners: HashMap::new(),
            tcp_peers: HashMap::new(),
            splices: HashMap::new(),
            net,
            ready,
            events,
        }
    }

    /// The relay socket bound at `addr`.
    pub(super) fn sock(&self, addr: SocketAddr) -> Option<Rc<UdpSocket>> {
        self.socks.get(&addr).map(|r| r.sock.clone())
    }

    /// Closes every socket (shutdown).
    pub(super) fn clear(&mut self) {
        self.socks.clear();
        for (_, t) in self.tcp_listeners.drain() {
            t.abort();
        }
    }

    /// RFC 6062: takes the peer connection `id` for a data connection to splice to
    /// (`None` if it is gone or not connected), and remembers the data connection so that
    /// [`Relays::close_tcp`] can end the splice.
    pub(super) fn splice(&mut self, id: u32, conn: &Rc<Conn>) -> Option<tokio::net::TcpStream> {
        self.splices.insert(id, conn.clone());
        self.tcp_peers.remove(&id).and_then(|p| p.stream)
    }

    /// RFC 6062: the splice of connection `id` ended.
    pub(super) fn splice_ended(&mut self, id: u32, conn: &Rc<Conn>) {
        if self.splices.get(&id).is_some_and(|c| Rc::ptr_eq(c, conn)) {
            self.splices.remove(&id);
        }
    }

    /// Registers a bound socket with the runtime; the worker visits it on its next turn.
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
        let token = Token::Relay(addr);
        let waker = self.ready.waker(token);
        self.socks.insert(
            addr,
            RelaySocket {
                sock,
                waker,
                rx_drops: sys::RxDrops::default(),
            },
        );
        self.ready.push(token);
        Ok(())
    }
}

impl RelaySockets {
    /// Closes the relay socket (or TCP relay listener) at `addr`: what
    /// [`Command::CloseRelay`](crate::turn::Command::CloseRelay) asks.
    pub(super) fn close(&mut self, addr: SocketAddr) {
        self.socks.remove(&addr);
        if let Some(task) = self.tcp_listeners.remove(&addr) {
            task.abort();
        }
    }

    /// Closes the RFC 6062 peer connection `id` (or abandons connecting it) and its splice:
    /// what [`Command::CloseTcp`](crate::turn::Command::CloseTcp) asks.
    pub(super) fn close_tcp(&mut self, id: u32) {
        // Dropping the entry closes the peer socket (or abandons the attempt); a splice in
        // progress is told to stop.
        if let Some(p) = self.tcp_peers.remove(&id)
            && let Some(t) = p.connecting
        {
            t.abort();
        }
        if let Some(c) = self.splices.remove(&id) {
            c.close();
        }
    }
}

impl Relays for RelaySockets {
    fn open(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        // One relayed address per allocation, whatever the transport.
        if self.tcp_listeners.contains_key(&addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        // A reserved port is held by a socket without reuse flags, so this bind fails.
        let sock = bind(addr, self.net.udp_buffers)?;
        self.start(sock, addr, dont_fragment)
    }

    fn claim(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        let reserved = self.reserved.lock().ok().and_then(|mut r| r.remove(&addr));
        let sock = reserved.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.start(sock, addr, dont_fragment)
    }

    fn reserve(&mut self, addr: SocketAddr) -> io::Result<()> {
        let s = bind(addr, self.net.udp_buffers)?;
        if let Ok(mut r) = self.reserved.lock() {
            r.insert(addr, s);
        }
        Ok(())
    }

    fn release(&mut self, addr: SocketAddr) {
        if let Ok(mut r) = self.reserved.lock() {
            r.remove(&addr);
        }
    }

    fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<()> {
        // Reuse flags let outgoing connections (Connect) bind the same address; so a port
        // another TCP allocation holds must be refused here rather than by the kernel.
        if self.tcp_listeners.contains_key(&addr) || self.socks.contains_key(&addr) {
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
        let task = tokio::task::spawn_local(tcp_relay_accept(listener, addr, self.events.clone()))
            .abort_handle();
        self.tcp_listeners.insert(addr, task);
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
        let events = self.events.clone();
        let task = tokio::task::spawn_local(async move {
            let connected =
                tokio::time::timeout(crate::turn::TCP_CONNECT_TIMEOUT, socket.connect(peer)).await;
            let stream = match connected {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    Some(stream)
                }
                _ => None,
            };
            let _ = events.send(Event::PeerConnected { id, stream });
        })
        .abort_handle();
        self.tcp_peers.insert(
            id,
            PeerConn {
                stream: None,
                connecting: Some(task),
            },
        );
        Ok(())
    }
}

/// Accepts peers on an RFC 6062 allocation's relayed address, for the worker to judge.
async fn tcp_relay_accept(listener: tokio::net::TcpListener, relay: SocketAddr, events: Events) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let peer = SocketAddr::new(crate::policy::canonical(peer.ip()), peer.port());
        if events
            .send(Event::PeerAccepted {
                relay,
                peer,
                stream,
            })
            .is_err()
        {
            return;
        }
    }
}

impl Worker {
    /// Takes up to `max` batches from the relay socket at `local` (returns how many it
    /// took) into the worker's peer buffers (at [`crate::turn::PEER_HEADROOM`], so the core
    /// writes the client-bound header in front) and sends each datagram on to its client:
    /// UDP clients at the end of each batch (GSO runs where they can be), TCP/TLS clients
    /// into their queues. Then re-arms the socket or, if it still has datagrams, marks it
    /// again.
    pub(super) fn drain_relay(&mut self, local: SocketAddr, max: usize) -> usize {
        let Some(r) = self.relays.socks.get(&local) else {
            return 0;
        };
        let (sock, mut rx_drops) = (r.sock.clone(), r.rx_drops);
        let mut used = 0;
        let mut drained = false;
        while used < max {
            used += 1;
            let got = match recv_batch(&sock, &mut self.peer_batch) {
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
            let dropped = rx_drops.delta(self.peer_batch.rx_drops());
            if dropped > 0 {
                self.server.stats().relay_rx_queue_drops.add(dropped);
            }
            let now = Instant::now();
            for k in 0..got {
                let (n, peer) = self.peer_batch.meta(k);
                let Some(peer) = peer else { continue };
                let buf = self.peer_batch.slot_mut(k);
                let outcome = self.server.handle_peer(local, peer, buf, n, now);
                if let PeerOutcome::ToClient { tuple, start, len } = outcome {
                    if tuple.transport == Transport::Udp {
                        self.peer_queue.push(gso::Queued {
                            via: tuple.server,
                            to: tuple.client,
                            slot: k,
                            start,
                            len,
                        });
                    } else if !self.clients.send_data(&tuple, &buf[start..start + len]) {
                        self.server.stats().peer_dropped.inc();
                    }
                }
            }
            let listeners = &self.listeners;
            let flushed = gso::flush(&mut self.peer_queue, &self.peer_batch, &self.gso, |via| {
                listeners.sock(via)
            });
            let stats = self.server.stats();
            count_flushed(flushed, stats, &stats.peer_dropped, SockKind::Listener);
            if got < self.peer_batch.slots() {
                drained = true;
                break;
            }
        }
        if let Some(r) = self.relays.socks.get_mut(&local) {
            r.rx_drops = rx_drops;
            self.ready
                .rearm(Token::Relay(local), &r.sock, &r.waker, drained);
        }
        used
    }

    /// RFC 6062: a peer connected to a relayed address; the core keeps it or not.
    pub(super) fn peer_accepted(
        &mut self,
        relay: SocketAddr,
        peer: SocketAddr,
        stream: tokio::net::TcpStream,
    ) {
        let verdict = self.server.handle_tcp_event(
            TcpEvent::Accepted { relay, peer },
            Instant::now(),
            &mut self.relays,
        );
        if let TcpVerdict::Keep { id } = verdict {
            let _ = stream.set_nodelay(true);
            self.relays.tcp_peers.insert(
                id,
                PeerConn {
                    stream: Some(stream),
                    connecting: None,
                },
            );
        }
        self.drain_outputs();
    }

    /// RFC 6062: the outgoing connection `id` is established (`Some`) or failed.
    pub(super) fn peer_connected(&mut self, id: u32, stream: Option<tokio::net::TcpStream>) {
        // Closed by the core meanwhile: it knows, and the stream just drops.
        let Some(p) = self.relays.tcp_peers.get_mut(&id) else {
            return;
        };
        p.connecting = None;
        let event = match stream {
            Some(s) => {
                p.stream = Some(s);
                TcpEvent::Connected { id }
            }
            None => {
                self.relays.tcp_peers.remove(&id);
                TcpEvent::ConnectFailed { id }
            }
        };
        let _ = self
            .server
            .handle_tcp_event(event, Instant::now(), &mut self.relays);
        self.drain_outputs();
    }
}

//! The one synchronous capability the core calls back into: binding relay sockets
//! ([`Relays`]).
//!
//! Binding stays a call rather than a [`Command`]: whether the bind succeeds decides the
//! Allocate's answer within the same [`Server::handle_client`] (try another port, answer
//! 508, or put the relayed address in the success response, which is kept for
//! retransmissions), and only the I/O layer can tell whether a port is free (other
//! processes, other workers, reservations). The same holds for claiming and reserving
//! (EVEN-PORT), listening (RFC 6062), and starting a TCP connect (an error is answered 447
//! at once), and releasing a reservation (the undo of [`Relays::reserve`], which may be
//! retried with the same port in the same call). What needs no answer is a command:
//! closing a relay socket ([`Command::CloseRelay`]) or an RFC 6062 peer connection
//! ([`Command::CloseTcp`]).

use std::io;
use std::net::SocketAddr;

#[cfg(doc)]
use super::{Command, Server, TCP_CONNECT_TIMEOUT, TcpEvent};

/// How the core binds relay sockets: implemented by the I/O layer (and by a fake in tests).
/// Every call happens while the core handles an input.
pub trait Relays {
    /// Binds a fresh relay socket at `addr` and starts receiving on it. `AddrInUse` (also
    /// for an address held by a reservation) makes the core try another port.
    fn open(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()>;
    /// Takes over the socket reserved at `addr` with [`Relays::reserve`] (by any worker)
    /// and starts receiving on it.
    fn claim(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()>;
    /// Binds `addr` and holds it, not receiving, for a later [`Relays::open`] (EVEN-PORT R=1).
    fn reserve(&mut self, addr: SocketAddr) -> io::Result<()>;
    /// Drops a reservation that was never claimed.
    fn release(&mut self, addr: SocketAddr);

    /// Opens a TCP listening socket at `addr`, the relayed transport address of a TCP
    /// allocation (RFC 6062 §5.1), and starts accepting: report each accepted connection
    /// with [`TcpEvent::Accepted`]. Outgoing connections ([`Relays::connect_tcp`]) must
    /// bind the same local address, which on Linux takes `SO_REUSEPORT` on both sockets;
    /// then binding no longer detects a port taken by another TCP allocation, so return
    /// `AddrInUse` for a port this process already listens on. `AddrInUse` makes the core
    /// try another port; `Unsupported` (the default) makes it give up (508).
    fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<()> {
        let _ = addr;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Starts connecting from `relay` (the listener's address, as the local address of
    /// the new socket) to `peer`, asynchronously, for connection `id` (RFC 6062 §5.2).
    /// Report the result with [`TcpEvent::Connected`] or [`TcpEvent::ConnectFailed`]; set
    /// no connect timeout shorter than [`TCP_CONNECT_TIMEOUT`] (the core enforces that
    /// one and queues [`Command::CloseTcp`]). An error here is answered with 447 at once.
    fn connect_tcp(&mut self, relay: SocketAddr, peer: SocketAddr, id: u32) -> io::Result<()> {
        let _ = (relay, peer, id);
        Err(io::ErrorKind::Unsupported.into())
    }
}

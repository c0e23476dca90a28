//! RFC 6062 TCP relaying: [`TcpAllocation`] and its peer connections, [`TcpRelayStream`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use ternd_proto::stun::Method;
use ternd_proto::stun::stream::FramingError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::conn::{Dialer, ServerStream};
use super::shared::Owner;
use crate::{ConnectionBind, Error, Stats};

/// The largest ConnectionBind answer read (they are a few dozen bytes).
const MAX_ANSWER: usize = 1024;

/// A TCP relay on a TURN server (RFC 6062): the relayed address is a TCP port; each peer
/// connection is a [`TcpRelayStream`] of its own.
///
/// Made by [`Client::allocate_tcp`](super::Client::allocate_tcp), over TCP or TLS to the
/// server. The allocation lives as long as this value (and the control connection); the
/// server closes the peer connections when it ends. Dropping it deletes the allocation
/// on a best-effort basis.
#[derive(Debug)]
pub struct TcpAllocation {
    pub(super) owner: Owner,
    pub(super) dialer: Dialer,
    pub(super) relayed: SocketAddr,
    pub(super) mapped: Option<SocketAddr>,
}

impl TcpAllocation {
    /// The relayed TCP address.
    pub fn relayed_addr(&self) -> SocketAddr {
        self.relayed
    }

    /// The client's address as the server saw it (XOR-MAPPED-ADDRESS).
    pub fn mapped_addr(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The allocation's counters.
    pub fn stats(&self) -> Stats {
        self.owner.0.lock().alloc.stats()
    }

    /// Installs a permission for `ip` and waits for it: peers at that address may then
    /// connect to the relayed address ([`TcpAllocation::accept`]). [`TcpAllocation::connect`]
    /// asks for the permission it needs by itself.
    pub async fn permit(&self, ip: IpAddr) -> Result<(), Error> {
        self.owner.0.permit(ip).await
    }

    /// Connects the relay to `peer` (Connect; a permission is asked for first), then binds
    /// the new connection on a data connection of its own (ConnectionBind). Bounded by
    /// twice the transaction timeout.
    pub async fn connect(&self, peer: SocketAddr) -> Result<TcpRelayStream, Error> {
        let shared = &self.owner.0;
        {
            let mut inner = shared.lock();
            inner.usable()?;
            inner.alloc.connect(peer, Instant::now())?;
        }
        shared.wake.notify_one();
        let deadline = Instant::now() + shared.transaction_timeout();
        let answer = shared
            .wait_for(Some(deadline), |inner| {
                if let Some(i) = inner.connects.iter().position(|(p, _)| *p == peer) {
                    return inner.connects.remove(i).map(|(_, r)| r);
                }
                inner
                    .terminal()
                    .then(|| Err(inner.usable().err().unwrap_or(Error::Closed)))
            })
            .await
            .unwrap_or(Err(Error::Timeout {
                method: Method::CONNECT,
            }))?;
        self.bind(answer, peer).await
    }

    /// Waits for a peer to connect to the relayed address (ConnectionAttempt), then binds
    /// its connection (ConnectionBind); returns it and the peer. Waits as long as the
    /// allocation lives.
    pub async fn accept(&self) -> Result<(TcpRelayStream, SocketAddr), Error> {
        let shared = &self.owner.0;
        let (peer, id) = shared
            .wait_for(None, |inner| {
                if let Some(a) = inner.attempts.pop_front() {
                    return Some(Ok(a));
                }
                inner
                    .terminal()
                    .then(|| Err(inner.usable().err().unwrap_or(Error::Closed)))
            })
            .await
            .unwrap_or(Err(Error::Closed))?;
        Ok((self.bind(id, peer).await?, peer))
    }

    /// A data connection for CONNECTION-ID `id`.
    async fn bind(&self, id: u32, peer: SocketAddr) -> Result<TcpRelayStream, Error> {
        let (cb, server) = {
            let mut inner = self.owner.0.lock();
            (inner.alloc.connection_bind(id), inner.alloc.server())
        };
        let timeout = self.owner.0.transaction_timeout();
        let stream = self.dialer.stream(server, false).await?;
        let bound = tokio::time::timeout(timeout, connection_bind(stream, cb)).await;
        let stream = bound.map_err(|_| Error::Timeout {
            method: Method::CONNECTION_BIND,
        })??;
        Ok(TcpRelayStream {
            inner: stream,
            peer,
        })
    }

    /// Deletes the allocation (Refresh with LIFETIME 0) and waits for the answer, at most
    /// 3 s; as [`RelaySocket::close`](super::RelaySocket::close).
    pub async fn close(&self) -> Result<(), Error> {
        super::socket::close(&self.owner).await
    }
}

/// Runs ConnectionBind on a new data connection; afterwards it carries the peer's bytes.
async fn connection_bind(
    mut s: ServerStream,
    mut cb: ConnectionBind,
) -> Result<ServerStream, Error> {
    let mut request = cb.request()?;
    let mut answer = [0u8; MAX_ANSWER];
    // A 438 or the first 401 asks for the request again (a few times at most).
    for _ in 0..4 {
        s.write_all(&request).await?;
        s.flush().await?;
        // Read the answer exactly: the peer's bytes may follow it at once.
        s.read_exact(&mut answer[..20]).await?;
        if answer[0] > 3 {
            return Err(Error::Framing(FramingError::UnknownFrame(answer[0])));
        }
        let len = 20 + usize::from(u16::from_be_bytes([answer[2], answer[3]]));
        if len > MAX_ANSWER {
            return Err(Error::Framing(FramingError::TooLarge {
                len,
                max: MAX_ANSWER,
            }));
        }
        s.read_exact(&mut answer[20..len]).await?;
        match cb.handle_response(&answer[..len])? {
            None => return Ok(s),
            Some(again) => request = again,
        }
    }
    Err(Error::Failure {
        method: Method::CONNECTION_BIND,
        code: 438,
        reason: "too many Stale Nonce answers".into(),
    })
}

/// One peer connection through a [`TcpAllocation`]: a TCP (or TLS) data connection to
/// the server that carries the peer's bytes both ways, with nothing added.
#[derive(Debug)]
pub struct TcpRelayStream {
    inner: ServerStream,
    peer: SocketAddr,
}

impl TcpRelayStream {
    /// The peer at the other end of the relay.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the data connection to the server.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            ServerStream::Tcp(s) => s.local_addr(),
            ServerStream::Tls(s) => s.get_ref().0.local_addr(),
        }
    }
}

impl AsyncRead for TcpRelayStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpRelayStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

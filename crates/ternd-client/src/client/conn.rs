//! Connections to the server: a UDP socket, or a TCP or TLS stream framed as RFC 8656
//! §12.5 says (STUN messages and ChannelData padded to four bytes).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use ternd_proto::stun::channel::ChannelRange;
use ternd_proto::stun::stream::StreamBuffer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Error, Protocol};

/// The largest frame read from a stream: a 64 KiB ChannelData or STUN message plus header.
pub(super) const MAX_FRAME: usize = 65_536 + 20;

/// A TCP or TLS connection to the server.
#[derive(Debug)]
pub(crate) enum ServerStream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerStream::Tcp(s) => s.is_write_vectored(),
            ServerStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// TLS towards the server: the rustls configuration and the name its certificate must
/// carry (the URL's host, also after a 300 Try Alternate).
#[derive(Clone)]
pub(super) struct TlsSetup {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A client configuration trusting the Mozilla roots of `webpki-roots`.
pub(crate) fn default_tls() -> Result<Arc<rustls::ClientConfig>, Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl TlsSetup {
    /// TLS to `host` with `config` (or the webpki roots).
    pub(super) fn new(
        config: Option<Arc<rustls::ClientConfig>>,
        host: &str,
    ) -> Result<TlsSetup, Error> {
        let config = match config {
            Some(c) => c,
            None => default_tls()?,
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Tls(format!("server name {host:?}: {e}")))?;
        Ok(TlsSetup {
            connector: TlsConnector::from(config),
            name,
        })
    }
}

/// How new connections to the server are made (the first one, data connections of RFC
/// 6062, the alternate server after a redirect).
#[derive(Debug, Clone)]
pub(super) struct Dialer {
    pub(super) protocol: Protocol,
    pub(super) tls: Option<TlsSetup>,
    pub(super) local: Option<SocketAddr>,
    /// Bounds the TCP connect and the TLS handshake, each.
    pub(super) timeout: Duration,
}

fn timed_out(what: &str, to: SocketAddr) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} to {to} timed out"),
    ))
}

impl Dialer {
    /// A TCP (and TLS) connection to `to`, from the local address's IP if one is set (its
    /// port only when `keep_port`: data connections need ports of their own).
    pub(super) async fn stream(
        &self,
        to: SocketAddr,
        keep_port: bool,
    ) -> Result<ServerStream, Error> {
        let sock = if to.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(mut local) = self.local {
            if !keep_port {
                local.set_port(0);
            }
            sock.bind(local)?;
        }
        let tcp = tokio::time::timeout(self.timeout, sock.connect(to))
            .await
            .map_err(|_| timed_out("TCP connect", to))??;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(ServerStream::Tcp(tcp));
        };
        let handshake = tls.connector.connect(tls.name.clone(), tcp);
        match tokio::time::timeout(self.timeout, handshake).await {
            Err(_) => Err(Error::Tls(format!("handshake with {to} timed out"))),
            Ok(Err(e)) => Err(Error::Tls(format!("handshake with {to}: {e}"))),
            Ok(Ok(s)) => Ok(ServerStream::Tls(Box::new(s))),
        }
    }

    /// A connection to `to` as the protocol says: a UDP socket bound on the local address
    /// (or the unspecified address of `to`'s family), or a stream.
    pub(super) async fn open(&self, to: SocketAddr) -> Result<Conn, Error> {
        match self.protocol {
            Protocol::Udp => {
                let local = self.local.unwrap_or_else(|| {
                    let ip = if to.is_ipv4() {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    };
                    SocketAddr::new(ip, 0)
                });
                Ok(Conn::Udp(UdpSocket::bind(local).await?))
            }
            Protocol::Tcp | Protocol::Tls => {
                let stream = self.stream(to, true).await?;
                Ok(Conn::Stream(Framed::new(stream, to)))
            }
        }
    }
}

/// A stream to the server and the frames read from it.
#[derive(Debug)]
pub(super) struct Framed {
    pub(super) stream: ServerStream,
    pub(super) framer: StreamBuffer,
    pub(super) peer: SocketAddr,
}

/// A framer for a new stream (frames up to [`MAX_FRAME`]).
pub(super) fn framer_for_stream() -> StreamBuffer {
    StreamBuffer::new(MAX_FRAME, ChannelRange::RFC5766)
}

impl Framed {
    pub(super) fn new(stream: ServerStream, peer: SocketAddr) -> Framed {
        Framed {
            stream,
            framer: framer_for_stream(),
            peer,
        }
    }
}

/// An open connection to the server, not yet given to an allocation.
#[derive(Debug)]
pub(super) enum Conn {
    Udp(UdpSocket),
    Stream(Framed),
}

impl Conn {
    /// Sends one message to `to` (a stream goes to its own peer).
    pub(super) async fn send(&mut self, packet: &[u8], to: SocketAddr) -> Result<(), Error> {
        match self {
            Conn::Udp(s) => s.send_to(packet, to).await.map(drop)?,
            Conn::Stream(f) => {
                f.stream.write_all(packet).await?;
                f.stream.flush().await?;
            }
        }
        Ok(())
    }

    /// The next packet (datagram or frame) into `buf`, cut to its size, and its source.
    /// Cancel-safe: nothing read is lost if the future is dropped.
    pub(super) async fn recv(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        match self {
            Conn::Udp(s) => loop {
                match s.recv_from(buf).await {
                    Ok(got) => return Ok(got),
                    // An ICMP error for an earlier datagram: not this socket's end.
                    Err(e) if transient(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            },
            Conn::Stream(f) => loop {
                if let Some((_, frame)) = f.framer.next_frame().map_err(Error::Framing)? {
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    return Ok((n, f.peer));
                }
                let n = f.stream.read(f.framer.space()).await?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
                f.framer.filled(n);
            },
        }
    }
}

/// UDP errors that report an ICMP message about an earlier datagram.
pub(super) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

//! Blocking adapters: a [`Transport`] for UDP and one for any `Read + Write` stream, and
//! the TURN requests on top of them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ternd_proto::stun::channel::ChannelRange;
use ternd_proto::stun::stream::StreamBuffer;
use ternd_proto::stun::{Attribute, Message, Method, TransactionId, attr_type};

use crate::session::{Response, Session};
use crate::{Error, data};

/// How long to wait for an answer and how often to send a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long each attempt waits for the answer.
    pub wait: Duration,
    /// How many times a request is sent (1 on reliable transports, whatever this says).
    pub attempts: u32,
}

impl Default for Timing {
    /// Three sends, 700 ms apart.
    fn default() -> Timing {
        Timing {
            wait: Duration::from_millis(700),
            attempts: 3,
        }
    }
}

/// A way to reach the server: send one message, receive the next one.
pub trait Transport {
    /// Sends one STUN message or ChannelData frame.
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()>;
    /// The next packet from the server into `buf`, waiting at most `timeout`; `Ok(None)` on
    /// timeout.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Option<usize>>;
    /// How requests are timed on this transport.
    fn timing(&self) -> Timing {
        Timing::default()
    }
    /// True if the transport does not lose messages (streams): requests are sent once.
    fn is_reliable(&self) -> bool {
        false
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        (**self).send(packet)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Option<usize>> {
        (**self).recv(buf, timeout)
    }
    fn timing(&self) -> Timing {
        (**self).timing()
    }
    fn is_reliable(&self) -> bool {
        (**self).is_reliable()
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// UDP to the server: a connected socket, or an unconnected one and the server's address.
#[derive(Debug)]
pub struct Udp<'a> {
    sock: &'a UdpSocket,
    server: Option<SocketAddr>,
    timing: Timing,
}

impl<'a> Udp<'a> {
    /// A socket connected to the server.
    pub fn connected(sock: &'a UdpSocket) -> Udp<'a> {
        Udp {
            sock,
            server: None,
            timing: Timing::default(),
        }
    }

    /// An unconnected socket, sending to `server` (and accepting packets from anywhere).
    pub fn to(sock: &'a UdpSocket, server: SocketAddr) -> Udp<'a> {
        Udp {
            sock,
            server: Some(server),
            timing: Timing::default(),
        }
    }

    /// The same transport with other timing.
    pub fn with_timing(mut self, timing: Timing) -> Udp<'a> {
        self.timing = timing;
        self
    }
}

impl Transport for Udp<'_> {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self.server {
            Some(s) => self.sock.send_to(packet, s),
            None => self.sock.send(packet),
        }
        .map(drop)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Option<usize>> {
        if timeout.is_zero() {
            return Ok(None);
        }
        self.sock.set_read_timeout(Some(timeout))?;
        let got = match self.server {
            Some(_) => self.sock.recv_from(buf).map(|(n, _)| n),
            None => self.sock.recv(buf),
        };
        match got {
            Ok(n) => Ok(Some(n)),
            Err(e) if timed_out(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn timing(&self) -> Timing {
        self.timing
    }
}

/// A TCP or TLS connection to the server (any `Read + Write`), framed as RFC 8656 §12.5
/// says: STUN messages and ChannelData padded to four bytes.
///
/// The wait for an answer is bounded by the stream's own read timeout (set it on the
/// socket), not by [`Transport::recv`]'s `timeout`.
#[derive(Debug)]
pub struct Stream<S> {
    inner: S,
    buf: StreamBuffer,
}

impl<S: Read + Write> Stream<S> {
    /// Frames `inner` (frames up to 64 KiB plus a header).
    pub fn new(inner: S) -> Stream<S> {
        Stream {
            inner,
            buf: StreamBuffer::new(65_536 + 20, ChannelRange::RFC5766),
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream, mutably (bytes written here bypass the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The stream, and the bytes read but not yet returned as frames.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.buf.pending_bytes().to_vec();
        (self.inner, rest)
    }
}

impl<S: Read + Write> Transport for Stream<S> {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(packet)?;
        self.inner.flush()
    }

    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> std::io::Result<Option<usize>> {
        loop {
            let framed = self
                .buf
                .next_frame()
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
            if let Some((_, frame)) = framed {
                let n = frame.len().min(buf.len());
                buf[..n].copy_from_slice(&frame[..n]);
                return Ok(Some(n));
            }
            match self.inner.read(self.buf.space()) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buf.filled(n),
                Err(e) if timed_out(&e) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn is_reliable(&self) -> bool {
        true
    }
}

/// Sends `request` (of `method`, transaction `tid`) and returns the answer with the same
/// transaction id, resending as the transport's [`Timing`] says; other packets are
/// skipped.
pub fn exchange(
    t: &mut impl Transport,
    request: &[u8],
    method: Method,
    tid: TransactionId,
) -> Result<Vec<u8>, Error> {
    let timing = t.timing();
    let attempts = if t.is_reliable() {
        1
    } else {
        timing.attempts.max(1)
    };
    let mut buf = vec![0u8; 65_536];
    for _ in 0..attempts {
        t.send(request)?;
        let deadline = Instant::now() + timing.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A reliable transport's wait is its stream's read timeout.
            if left.is_zero() && !t.is_reliable() {
                break;
            }
            match t.recv(&mut buf, left)? {
                Some(n) if n >= 20 && buf[0] < 4 && buf[8..20] == tid.0 => {
                    return Ok(buf[..n].to_vec());
                }
                Some(_) => continue,
                None => break,
            }
        }
    }
    Err(Error::Timeout { method })
}

/// One request through the session: built, sent, answered, rebuilt after a 401 or 438.
/// Returns the success response.
pub fn transact(
    s: &mut Session,
    t: &mut impl Transport,
    method: Method,
    attrs: &[Attribute<'_>],
) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; 1500];
    loop {
        let req = s.request(method, attrs, &mut buf)?;
        let resp = match exchange(t, &buf[..req.len], method, req.tid) {
            Ok(r) => r,
            Err(e) => {
                s.abandon();
                return Err(e);
            }
        };
        match s.handle_response(&resp, Instant::now())? {
            Response::Success(_) => return Ok(resp),
            Response::Retry => continue,
        }
    }
}

/// Allocates a UDP relay; returns the relayed address.
pub fn allocate(s: &mut Session, t: &mut impl Transport) -> Result<SocketAddr, Error> {
    let resp = transact(s, t, Method::ALLOCATE, &[Attribute::RequestedTransport(17)])?;
    let m = Message::parse(&resp)?;
    match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
        Some(Ok(Attribute::XorRelayedAddress(a))) => Ok(a),
        _ => Err(Error::Missing {
            method: Method::ALLOCATE,
            attribute: "XOR-RELAYED-ADDRESS",
        }),
    }
}

/// Installs (or refreshes) a permission for `peer`'s address.
pub fn create_permission(
    s: &mut Session,
    t: &mut impl Transport,
    peer: SocketAddr,
) -> Result<(), Error> {
    transact(
        s,
        t,
        Method::CREATE_PERMISSION,
        &[Attribute::XorPeerAddress(peer)],
    )
    .map(drop)
}

/// Binds (or re-binds) channel `number` to `peer`.
pub fn channel_bind(
    s: &mut Session,
    t: &mut impl Transport,
    number: u16,
    peer: SocketAddr,
) -> Result<(), Error> {
    transact(
        s,
        t,
        Method::CHANNEL_BIND,
        &[
            Attribute::ChannelNumber(number),
            Attribute::XorPeerAddress(peer),
        ],
    )
    .map(drop)
}

/// Refreshes the allocation for `lifetime` seconds (0 deletes it).
pub fn refresh(s: &mut Session, t: &mut impl Transport, lifetime: u32) -> Result<(), Error> {
    transact(s, t, Method::REFRESH, &[Attribute::Lifetime(lifetime)]).map(drop)
}

/// A Binding request (no session, no credentials); returns the mapped address.
pub fn binding(t: &mut impl Transport, tid: TransactionId) -> Result<SocketAddr, Error> {
    let mut buf = [0u8; 64];
    let n = data::binding_request(tid, &mut buf)?;
    let resp = exchange(t, &buf[..n], Method::BINDING, tid)?;
    data::mapped_address(&Message::parse(&resp)?)
}

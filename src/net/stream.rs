//! TCP and TLS clients: the accept loops, PROXY headers, and per connection a reader and a
//! writer task for the byte stream; and the worker's side, which takes the frames the reader
//! put in the connection's buffer to the core ([`Event::Readable`]) and queues answers and
//! relayed data for the writer.
//!
//! The reader and the worker take turns on the input buffer ([`Conn::reading`]): the reader
//! reads only once the worker has taken every whole frame, so a client whose answers fill
//! their budget ([`super::queue::TCP_ANSWER_BYTES`]) gets nothing more read until the writer
//! reports room ([`Event::Room`]): TCP backpressure, no buffer growth.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::queue::Conn;
use super::{Event, Events, NetShared, Worker};
use crate::stun::stream::StreamBuffer;
use crate::turn::limit::SourceKey;
use crate::turn::{FiveTuple, Outcome, Stats, TcpEvent, Transport};

/// Which protocol a stream listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    Tcp,
    Tls,
}

/// A slot in the per-source-IP connection count; released on drop.
struct IpSlot {
    net: Arc<NetShared>,
    source: SourceKey,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.net.tcp_connections.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.net.per_ip.lock()
            && let Some(n) = m.get_mut(&self.source)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.source);
            }
        }
    }
}

impl NetShared {
    /// Counts a new connection from `ip` against the total and per-source limits (an IPv6
    /// client's whole /64 shares one count); at accept time only, never per packet.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut m = self.per_ip.lock().ok()?;
        if self.tcp_connections.load(Ordering::Relaxed) >= self.max_tcp_connections {
            return None;
        }
        let source = SourceKey::of(ip);
        let n = m.get(&source).copied().unwrap_or(0);
        if n >= self.max_connections_per_ip {
            return None;
        }
        m.insert(source, n + 1);
        self.tcp_connections.fetch_add(1, Ordering::Relaxed);
        Some(IpSlot {
            net: self.clone(),
            source,
        })
    }
}

pub(super) async fn tcp_accept_loop(
    listener: TcpListener,
    local: SocketAddr,
    kind: StreamKind,
    net: Arc<NetShared>,
    stats: Arc<Stats>,
    events: Events,
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
            _ = shutdown.changed() => return,
        };
        let net = net.clone();
        let proxied = net.proxy_listeners.contains(&local);
        // Behind a load balancer the per-IP cap applies to the real client, known only
        // after the PROXY header; the total cap applies at once either way.
        let slot = if proxied { None } else { net.admit(peer.ip()) };
        if !proxied && slot.is_none() {
            tracing::debug!(%local, "connection refused: connection limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (stats, events) = (stats.clone(), events.clone());
        let shutdown = shutdown.clone();
        tokio::task::spawn_local(async move {
            let mut stream = stream;
            let mut local = stream.local_addr().unwrap_or(local);
            let mut peer = peer;
            let mut slot = slot;
            if proxied {
                match read_proxy_header(&mut stream, net.tls_handshake_timeout).await {
                    Some(crate::proxy::Proxied::Addresses {
                        source,
                        destination,
                    }) => {
                        peer = source;
                        local = destination;
                    }
                    Some(crate::proxy::Proxied::Local) => {}
                    None => {
                        stats.malformed.inc();
                        tracing::debug!(%peer, "connection refused: no valid PROXY protocol header");
                        return;
                    }
                }
                slot = net.admit(peer.ip());
                if slot.is_none() {
                    tracing::debug!(%local, "connection refused: connection limit reached");
                    return;
                }
            }
            match kind {
                StreamKind::Tcp => {
                    stream_connection(stream, peer, local, Transport::Tcp, &net, &events, shutdown)
                        .await;
                }
                StreamKind::Tls => {
                    let Some(acceptor) = net.tls_acceptor() else {
                        return;
                    };
                    let handshake =
                        tokio::time::timeout(net.tls_handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            stream_connection(
                                tls,
                                peer,
                                local,
                                Transport::Tls,
                                &net,
                                &events,
                                shutdown,
                            )
                            .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Reads a PROXY protocol v1/v2 header (and nothing after it) within `limit`. `None` when
/// the connection closes, stalls, or sends anything else.
async fn read_proxy_header(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<crate::proxy::Proxied> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; crate::proxy::MAX_HEADER_LEN];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        match crate::proxy::parse(&buf[..n]) {
            Ok(Some((proxied, len))) => {
                tokio::time::timeout_at(deadline, stream.read_exact(&mut buf[..len]))
                    .await
                    .ok()?
                    .ok()?;
                return Some(proxied);
            }
            // An incomplete header: wait for more bytes (peek does not consume them).
            Ok(None) if n < buf.len() => tokio::time::sleep(Duration::from_millis(5)).await,
            _ => return None,
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// One TCP or TLS client connection: the reader. It reads into the connection's buffer on
/// its turn and tells the worker; it ends the connection (or, RFC 6062, splices it to a
/// peer) when the worker says so.
async fn stream_connection<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    net: &NetShared,
    events: &Events,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let tuple = FiveTuple {
        client: peer,
        server: local,
        transport,
    };
    let conn = Rc::new(Conn::new(
        tuple,
        StreamBuffer::new(net.max_frame_size, net.channel_range),
    ));
    let idle = net.tcp_idle_timeout;
    let (mut rd, wr) = tokio::io::split(stream);
    let writer = tokio::task::spawn_local(write_loop(wr, conn.clone(), events.clone(), idle));
    if events.send(Event::Opened(conn.clone())).is_err() {
        writer.abort();
        return;
    }
    let splice = loop {
        if conn.stop.get() {
            break None;
        }
        if let Some(id) = conn.splice.get() {
            break Some(id);
        }
        if !conn.reading.get() {
            // The worker has frames to take, or holds them back: wait for our turn.
            tokio::select! {
                () = conn.reader.notified() => continue,
                _ = shutdown.changed() => {
                    writer.abort();
                    return;
                }
            }
        }
        let read = tokio::select! {
            r = tokio::time::timeout(idle, poll_fn(|cx| poll_read_into(&mut rd, &conn.input, cx))) => r,
            () = conn.reader.notified() => continue,
            _ = shutdown.changed() => {
                writer.abort();
                return;
            }
        };
        match read {
            Ok(Ok(0)) => break None, // closed
            // Idle: a client with a live allocation may be receiving only; the worker knows.
            Err(_) => {
                let _ = events.send(Event::Idle(conn.clone()));
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TCP read error");
                break None;
            }
            Ok(Ok(n)) => {
                conn.input.borrow_mut().filled(n);
                conn.reading.set(false);
                let _ = events.send(Event::Readable(conn.clone()));
            }
        }
    };
    conn.output.borrow_mut().close();
    conn.writer.notify_one();
    if splice.is_some() {
        // RFC 6062 data connection: flush the ConnectionBind answer, then relay raw bytes
        // both ways, the bytes already read after the ConnectionBind first.
        let leftover = conn.input.borrow().pending_bytes().to_vec();
        let wr = writer.await.ok().flatten();
        let peer_stream = conn.peer.borrow_mut().take();
        if let (Some(wr), Some(mut peer_stream)) = (wr, peer_stream) {
            let mut client = rd.unsplit(wr);
            let relay = async {
                if !leftover.is_empty() {
                    peer_stream.write_all(&leftover).await?;
                }
                tokio::io::copy_bidirectional(&mut client, &mut peer_stream).await
            };
            tokio::select! {
                _ = relay => {}
                () = stopped(&conn) => {}
                _ = shutdown.changed() => return,
            }
        }
    } else {
        writer.abort();
    }
    let _ = events.send(Event::Closed(conn));
}

/// Reads into the free space of `input`, borrowed only while polled.
fn poll_read_into<R: AsyncRead + Unpin>(
    rd: &mut R,
    input: &RefCell<StreamBuffer>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    let mut sb = input.borrow_mut();
    let mut buf = ReadBuf::new(sb.space());
    ready!(Pin::new(rd).poll_read(cx, &mut buf))?;
    Poll::Ready(Ok(buf.filled().len()))
}

/// Returns once the worker asked for the connection to end.
async fn stopped(conn: &Conn) {
    while !conn.stop.get() {
        conn.reader.notified().await;
    }
}

/// The writer: answers and relayed data, in order, written from the connection's queue in
/// place. It hands the write half back when the queue closes (an RFC 6062 data connection
/// is spliced after its last answer); a client that takes nothing for `idle` is closed.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    conn: Rc<Conn>,
    events: Events,
    idle: Duration,
) -> Option<W> {
    loop {
        let (empty, done) = {
            let q = conn.output.borrow();
            (q.len() == 0, q.done())
        };
        if empty {
            // What TLS still buffers goes out before the writer waits.
            if !matches!(tokio::time::timeout(idle, wr.flush()).await, Ok(Ok(()))) {
                break;
            }
            if done {
                return Some(wr);
            }
            // notify_one stores a permit, so a push since the check is not lost.
            conn.writer.notified().await;
            continue;
        }
        let written = tokio::time::timeout(
            idle,
            poll_fn(|cx| {
                let q = conn.output.borrow();
                Pin::new(&mut wr).poll_write(cx, q.chunk())
            }),
        )
        .await;
        match written {
            Ok(Ok(n)) if n > 0 => {
                let room = conn.output.borrow_mut().consume(n);
                if room && conn.held.get() {
                    let _ = events.send(Event::Room(conn.clone()));
                }
            }
            _ => break,
        }
    }
    conn.output.borrow_mut().writer_stopped();
    conn.close();
    None
}

/// A worker's TCP/TLS clients, by 5-tuple.
#[derive(Debug, Default)]
pub(super) struct Clients {
    map: HashMap<FiveTuple, Rc<Conn>>,
}

impl Clients {
    /// The connection of `tuple`.
    pub(super) fn get(&self, tuple: &FiveTuple) -> Option<&Rc<Conn>> {
        self.map.get(tuple)
    }

    /// Queues relayed data for the client on `tuple`; false if the queue dropped some
    /// (never waits).
    pub(super) fn send_data(&self, tuple: &FiveTuple, bytes: &[u8]) -> bool {
        self.map.get(tuple).is_none_or(|c| c.push_data(bytes))
    }

    fn remove(&mut self, conn: &Rc<Conn>) {
        if self
            .map
            .get(&conn.tuple)
            .is_some_and(|c| Rc::ptr_eq(c, conn))
        {
            self.map.remove(&conn.tuple);
        }
    }
}

impl Worker {
    /// A connection is ready: relayed data for its 5-tuple goes to it from now on.
    pub(super) fn stream_opened(&mut self, conn: Rc<Conn>) {
        self.clients.map.insert(conn.tuple, conn);
    }

    /// Nothing read from `conn` for a while: closed unless its 5-tuple has an allocation
    /// (a client may be receiving only).
    pub(super) fn stream_idle(&mut self, conn: &Conn) {
        if self.server.allocation(&conn.tuple).is_none() {
            conn.close();
        }
    }

    /// The connection ended: closing it deletes its allocation (RFC 8656 §3.1); for an RFC
    /// 6062 data connection, its peer connection is closed.
    pub(super) fn stream_closed(&mut self, conn: &Rc<Conn>) {
        let now = Instant::now();
        if let Some(id) = conn.splice.get() {
            self.relays.splice_ended(id, conn);
            let _ = self
                .server
                .handle_tcp_event(TcpEvent::Closed { id }, now, &mut self.relays);
        }
        self.clients.remove(conn);
        self.splice_requests.remove(&conn.tuple);
        self.server.close_tuple(&conn.tuple, now, &mut self.relays);
        self.drain_outputs();
    }

    /// Takes the whole frames in `conn`'s input to the core, queueing the answers, until
    /// none is left (the reader's turn), the answers fill their budget (held until the
    /// writer reports room), the framing breaks, or the connection is to be spliced.
    pub(super) fn serve_stream(&mut self, conn: &Rc<Conn>) {
        if conn.reading.get() || conn.stop.get() || conn.splice.get().is_some() {
            return;
        }
        conn.held.set(false);
        loop {
            {
                let q = conn.output.borrow();
                if q.writer_gone() {
                    drop(q);
                    conn.close();
                    return;
                }
                // Backpressure: a client that sends requests but does not read the answers
                // gets no more of its requests read (TCP then stops its sending).
                if q.answers_full() {
                    conn.held.set(true);
                    return;
                }
            }
            let mut input = conn.input.borrow_mut();
            let frame = match input.next_frame() {
                Ok(Some((_, f))) => f,
                Ok(None) => {
                    drop(input);
                    conn.read_more();
                    return;
                }
                Err(e) => {
                    drop(input);
                    self.server.stats().malformed.inc();
                    tracing::debug!(peer = %conn.tuple.client, error = %e, "closing TCP connection: bad framing");
                    conn.close();
                    return;
                }
            };
            let arrived = Instant::now();
            let outcome = self.server.handle_client(
                frame,
                conn.tuple,
                arrived,
                &mut self.out[..],
                &mut self.relays,
            );
            match outcome {
                // Answers wait behind relayed data (they are few and small); only a closed
                // writer ends the connection.
                Outcome::Reply { len } => {
                    super::observe_allocate(self.server.stats(), &self.out[..len], arrived);
                    conn.push_answer(&self.out[..len]);
                }
                Outcome::ReplyVia { len, from, to } => self.reply_via(len, from, to),
                Outcome::Forward {
                    relay,
                    peer,
                    start,
                    len,
                } => self.forward(relay, peer, &frame[start..start + len]),
                Outcome::Consumed | Outcome::Dropped(_) => {}
            }
            drop(input);
            self.drain_outputs();
            if let Some(id) = self.splice_requests.remove(&conn.tuple) {
                // RFC 6062: after its ConnectionBind answer this is a data connection.
                self.clients.remove(conn);
                *conn.peer.borrow_mut() = self.relays.splice(id, conn);
                conn.splice.set(Some(id));
                conn.reader.notify_one();
                return;
            }
        }
    }
}

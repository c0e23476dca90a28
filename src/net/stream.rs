//! TCP and TLS clients: accepting, PROXY headers, and one task per connection.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::queue::SharedQueue;
use super::relay::NetRelays;
use super::{NetShared, OUT_BUF, Worker, act};
use crate::stun::stream::StreamBuffer;
use crate::turn::limit::SourceKey;
use crate::turn::{FiveTuple, Outcome, Transport};

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
    worker: Rc<Worker>,
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
        let net = worker.net.clone();
        let proxied = net.proxy_listeners.contains(&local);
        // Behind a load balancer the per-IP cap applies to the real client, known only
        // after the PROXY header; the total cap applies at once either way.
        let slot = if proxied { None } else { net.admit(peer.ip()) };
        if !proxied && slot.is_none() {
            tracing::debug!(%local, "connection refused: connection limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let worker = worker.clone();
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
                        worker.server.borrow().stats().malformed.inc();
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
                    stream_connection(stream, peer, local, Transport::Tcp, &worker, shutdown).await;
                }
                StreamKind::Tls => {
                    let Some(acceptor) = worker.net.tls_acceptor() else {
                        return;
                    };
                    let handshake =
                        tokio::time::timeout(net.tls_handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            stream_connection(tls, peer, local, Transport::Tls, &worker, shutdown)
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

/// One TCP or TLS client connection: frames in, answers and relayed data out.
async fn stream_connection<S>(
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    worker: &Rc<Worker>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let tuple = FiveTuple {
        client: peer,
        server: local,
        transport,
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let queue: SharedQueue = Rc::default();
    worker.tcp_clients.borrow_mut().insert(tuple, queue.clone());
    let idle = worker.net.tcp_idle_timeout;
    // The writer: answers and relayed data, in order. It hands the write half back when
    // the queue closes (an RFC 6062 data connection is spliced after its last answer).
    let wq = queue.clone();
    let writer = tokio::task::spawn_local(async move {
        loop {
            match wq.pop() {
                Err(()) => return Some(wr),
                Ok(Some(frame)) => match tokio::time::timeout(idle, wr.write_all(&frame)).await {
                    Ok(Ok(())) => {}
                    _ => {
                        wq.writer_stopped();
                        return None;
                    }
                },
                // notify_one stores a permit, so a push between pop and here is not lost.
                Ok(None) => wq.wake.notified().await,
            }
        }
    });
    let mut splice: Option<u32> = None;
    let mut sb = StreamBuffer::new(worker.net.max_frame_size, worker.net.channel_range);
    let mut out = vec![0u8; OUT_BUF];
    'conn: loop {
        let read = tokio::select! {
            r = tokio::time::timeout(idle, rd.read(sb.space())) => r,
            _ = shutdown.changed() => break 'conn,
        };
        match read {
            Ok(Ok(0)) => break, // closed
            // Idle: a client with a live allocation may be receiving only; keep it.
            Err(_) if worker.server.borrow().allocation(&tuple).is_some() => continue,
            Err(_) => break,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TCP read error");
                break;
            }
            Ok(Ok(n)) => sb.filled(n),
        }
        loop {
            // Backpressure: a client that sends requests but does not read the answers
            // gets no more of its requests read (TCP then stops its sending) until it does.
            while queue.answers_full() && !queue.writer_gone.get() {
                tokio::select! {
                    _ = queue.room.notified() => {}
                    _ = shutdown.changed() => break 'conn,
                }
            }
            if queue.writer_gone.get() {
                break 'conn;
            }
            let (_, frame) = match sb.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    worker.server.borrow().stats().malformed.inc();
                    tracing::debug!(%peer, error = %e, "closing TCP connection: bad framing");
                    break 'conn;
                }
            };
            let mut relays = NetRelays { worker };
            let outcome = worker.server.borrow_mut().handle_client(
                frame,
                tuple,
                Instant::now(),
                &mut out,
                &mut relays,
            );
            match outcome {
                // Answers wait for room behind relayed data (they are few and small);
                // only a closed writer ends the connection.
                Outcome::Reply { len } => {
                    queue.push_answer(out[..len].to_vec());
                }
                other => act(worker, other, frame, &out, |_| {}),
            }
            worker.drain_outputs();
            if let Some(id) = worker.splice_requests.borrow_mut().remove(&tuple) {
                splice = Some(id);
                break 'conn;
            }
        }
        if writer.is_finished() {
            break;
        }
    }
    worker.tcp_clients.borrow_mut().remove(&tuple);
    if let Some(id) = splice {
        // RFC 6062 data connection: flush the ConnectionBind answer, then relay raw bytes
        // both ways, the bytes already read after the ConnectionBind first.
        let leftover = sb.pending_bytes().to_vec();
        queue.close();
        let wr = writer.await.ok().flatten();
        let peer_stream = worker
            .tcp_peers
            .borrow_mut()
            .remove(&id)
            .and_then(|p| p.stream);
        if let (Some(wr), Some(mut peer_stream)) = (wr, peer_stream) {
            let mut client = rd.unsplit(wr);
            let task = tokio::task::spawn_local(async move {
                if !leftover.is_empty() {
                    peer_stream.write_all(&leftover).await?;
                }
                tokio::io::copy_bidirectional(&mut client, &mut peer_stream).await
            });
            worker.splices.borrow_mut().insert(id, task.abort_handle());
            let _ = task.await;
            worker.splices.borrow_mut().remove(&id);
        }
        let mut relays = NetRelays { worker };
        let _ = worker.server.borrow_mut().handle_tcp_event(
            crate::turn::TcpEvent::Closed { id },
            Instant::now(),
            &mut relays,
        );
    } else {
        queue.close();
        writer.abort();
    }
    // Closing the connection deletes its allocation (RFC 8656 §3.1).
    let mut relays = NetRelays { worker };
    worker
        .server
        .borrow_mut()
        .close_tuple(&tuple, Instant::now(), &mut relays);
    worker.drain_outputs();
}

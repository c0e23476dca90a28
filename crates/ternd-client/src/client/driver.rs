//! The driver task: one per allocation. It owns the reading side of the connection and
//! the timers; it feeds the sans-IO [`Allocation`](crate::Allocation), writes its
//! transmits, hands events to the waiters and data to the receive ring.
//!
//! One loop: take the events, write the transmits, then `select!` over the next packet,
//! the next timeout of the allocation, and a wake-up from a handle. The data path (a
//! datagram or ChannelData frame in, copied into the ring) allocates nothing: the receive
//! buffer, the stream framer and the ring are allocated once, the sleep is reset rather
//! than made anew.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::net::UdpSocket;

use super::conn::{Conn, Dialer, Framed, ServerStream, framer_for_stream, transient};
use super::shared::{Shared, State, Writer};
use crate::{Error, Input, Transmit};

/// After the handle is dropped, how long the driver waits for the Refresh(0) answer.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A sleep's deadline when nothing is scheduled.
fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// The reading side of the connection.
pub(super) enum Reader {
    Udp {
        sock: Arc<UdpSocket>,
        buf: Box<[u8]>,
    },
    Stream {
        read: ReadHalf<ServerStream>,
        framer: ternd_proto::stun::stream::StreamBuffer,
        /// The server this stream is connected to.
        peer: SocketAddr,
    },
}

/// What one read gave.
pub(super) enum Got {
    Datagram(usize, SocketAddr),
    Bytes(usize),
}

impl Reader {
    /// Cancel-safe: a dropped read loses nothing.
    async fn read(&mut self) -> std::io::Result<Got> {
        match self {
            Reader::Udp { sock, buf } => loop {
                match sock.recv_from(buf).await {
                    Ok((n, from)) => return Ok(Got::Datagram(n, from)),
                    Err(e) if transient(&e) => {}
                    Err(e) => return Err(e),
                }
            },
            Reader::Stream { read, framer, .. } => {
                let n = read.read(framer.space()).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok(Got::Bytes(n))
            }
        }
    }
}

/// Splits a connection into the driver's reader and the shared writer.
pub(super) fn split(conn: Conn) -> (Reader, Writer) {
    match conn {
        Conn::Udp(s) => {
            let sock = Arc::new(s);
            let reader = Reader::Udp {
                sock: sock.clone(),
                buf: vec![0u8; 65_536].into_boxed_slice(),
            };
            (reader, Writer::Udp(sock))
        }
        Conn::Stream(Framed {
            stream,
            framer,
            peer,
        }) => {
            let (read, write) = tokio::io::split(stream);
            let reader = Reader::Stream { read, framer, peer };
            (reader, Writer::Stream(tokio::sync::Mutex::new(write)))
        }
    }
}

/// Runs the allocation until it is closed, fails, or its handle is gone.
pub(super) async fn run(shared: Arc<Shared>, mut reader: Reader, dialer: Dialer) {
    let end = drive(&shared, &mut reader, &dialer).await;
    let mut inner = shared.lock();
    inner.pump();
    if let Err(e) = end
        && !inner.terminal()
    {
        inner.state = State::Failed(e);
    }
    if matches!(inner.state, State::Allocating | State::Ready) {
        inner.state = State::Closed;
    }
    inner.driver_done = true;
    drop(inner);
    shared.changed.notify_waiters();
    shared.readable.notify_waiters();
}

async fn drive(shared: &Shared, reader: &mut Reader, dialer: &Dialer) -> Result<(), Error> {
    let mut sleep = pin!(tokio::time::sleep_until(far()));
    let mut armed: Option<Instant> = None;
    let mut close_by: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let next = {
            let mut inner = shared.lock();
            if inner.stop {
                return Ok(());
            }
            if inner.owner_gone && close_by.is_none() {
                inner.alloc.close(now);
                close_by = Some(now + CLOSE_WAIT);
            }
            if inner.pump() {
                shared.changed.notify_waiters();
            }
            if inner.terminal() {
                drop(inner);
                shared.readable.notify_waiters();
                // Transmits still queued (none after Closed or Failed) need not go out.
                return Ok(());
            }
            inner.alloc.poll_timeout()
        };
        loop {
            let t = shared.lock().alloc.poll_transmit();
            let Some(t) = t else { break };
            transmit(shared, reader, dialer, t).await?;
        }
        if close_by.is_some_and(|d| now >= d) {
            return Ok(());
        }
        let deadline = match (next, close_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if sleep.is_elapsed() || deadline != armed {
            // Just woken by the timer and due again at once: not before the next
            // millisecond (no spinning, whatever the core asks).
            let floor = sleep.is_elapsed().then(|| now + Duration::from_millis(1));
            let at = match (deadline, floor) {
                (Some(d), Some(f)) => Some(d.max(f)),
                (d, _) => d,
            };
            sleep
                .as_mut()
                .reset(at.map_or_else(far, tokio::time::Instant::from_std));
            armed = at;
        }
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            got = reader.read() => {
                let got = got?;
                receive(shared, reader, got)?;
            }
            () = &mut sleep => {
                // The timer does not fire early; `now` at least the deadline keeps a
                // coarse clock from waking it twice.
                let now = armed.map_or_else(Instant::now, |d| Instant::now().max(d));
                shared.lock().alloc.handle_timeout(now);
            }
        }
    }
}

/// Feeds what was read to the allocation; data goes to the ring.
fn receive(shared: &Shared, reader: &mut Reader, got: Got) -> Result<(), Error> {
    let now = Instant::now();
    let mut data = false;
    {
        let mut inner = shared.lock();
        let inner = &mut *inner;
        match (reader, got) {
            (Reader::Udp { buf, .. }, Got::Datagram(n, from)) => {
                if let Input::Data { peer, data: d } =
                    inner.alloc.handle_input(&buf[..n], from, now)
                {
                    data |= inner.ring.push(peer, d);
                }
            }
            (Reader::Stream { framer, peer, .. }, Got::Bytes(n)) => {
                framer.filled(n);
                while let Some((_, frame)) = framer.next_frame().map_err(Error::Framing)? {
                    if let Input::Data { peer, data: d } =
                        inner.alloc.handle_input(frame, *peer, now)
                    {
                        data |= inner.ring.push(peer, d);
                    }
                }
            }
            _ => {}
        }
    }
    if data {
        shared.readable.notify_waiters();
    }
    Ok(())
}

/// Writes one transmit; over a stream, to a new connection first when the allocation
/// moved to another server (300 Try Alternate).
async fn transmit(
    shared: &Shared,
    reader: &mut Reader,
    dialer: &Dialer,
    t: Transmit,
) -> Result<(), Error> {
    match reader {
        Reader::Udp { sock, .. } => {
            // A lost request is retransmitted; a send error is as good as a loss.
            let _ = sock.send_to(&t.payload, t.destination).await;
            return Ok(());
        }
        Reader::Stream { read, framer, peer } => {
            if t.destination != *peer {
                let stream = dialer.stream(t.destination, false).await?;
                let (r, w) = tokio::io::split(stream);
                if let Writer::Stream(m) = &shared.writer {
                    *m.lock().await = w;
                }
                *read = r;
                *framer = framer_for_stream();
                *peer = t.destination;
            }
        }
    }
    // Keep reading while the write waits (for the lock a `send_to` holds, or for room in
    // the send buffer): a server blocked on writing to a client that does not read stops
    // reading too.
    let mut write = pin!(shared.writer.send(&t.payload, t.destination));
    loop {
        tokio::select! {
            biased;
            done = &mut write => return done,
            got = reader.read() => receive(shared, reader, got?)?,
        }
    }
}

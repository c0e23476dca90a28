//! [`RelaySocket`]: a UDP relay used like a UDP socket.

use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::{Duration, Instant};

use ternd_proto::stun::Method;

use super::driver::CLOSE_WAIT;
use super::shared::{Owner, State};
use crate::{Encoded, Error, Stats};

/// The largest frame [`RelaySocket::send_to`] builds: a 64 KiB payload in a Send
/// indication (header, XOR-PEER-ADDRESS, DATA, padding).
pub(super) const SEND_BUFFER: usize = 65_536 + 128;

/// Counters of a [`RelaySocket`]: the allocation's, and its receive queue's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// What the allocation sent and received (ChannelData, indications, requests...).
    pub turn: Stats,
    /// Datagrams queued for [`RelaySocket::recv_from`].
    pub received: u64,
    /// Datagrams dropped because the receive queue was full (the newest is dropped, as a
    /// UDP socket's buffer does).
    pub dropped: u64,
    /// Datagrams dropped because they were larger than a receive slot
    /// ([`ClientOptions::recv_datagram_size`](super::ClientOptions::recv_datagram_size)).
    pub too_large: u64,
}

/// A UDP relay on a TURN server, used like a UDP socket: what is sent goes out from the
/// relayed address to the peer, what peers send to the relayed address is received.
///
/// Made by [`Client::allocate`](super::Client::allocate). A driver task keeps the
/// allocation, its permissions and channels alive. The first datagram to a new peer waits
/// for the permission (and, with channels on, the channel) rather than being lost; after
/// that, sending and receiving allocate no memory.
///
/// Dropping the socket deletes the allocation on a best-effort basis;
/// [`RelaySocket::close`] waits for the server's answer.
#[derive(Debug)]
pub struct RelaySocket {
    pub(super) owner: Owner,
    pub(super) buf: tokio::sync::Mutex<Box<[u8]>>,
    pub(super) relayed: SocketAddr,
    pub(super) relayed_all: Vec<SocketAddr>,
    pub(super) mapped: Option<SocketAddr>,
    pub(super) lifetime: Duration,
}

impl RelaySocket {
    /// Sends `data` to `peer` through the relay; returns `data.len()`.
    ///
    /// ChannelData once a channel to `peer` is bound; until then a Send indication (the
    /// first datagram to a new peer asks for the channel, with channels on). Without a
    /// permission for `peer`'s address yet, the call asks for one and waits for it (at most
    /// one transaction timeout): [`Error::Timeout`] if no answer, the server's error if
    /// refused. [`RelaySocket::bind_channel`] beforehand makes every datagram ChannelData.
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> Result<usize, Error> {
        let shared = &self.owner.0;
        let mut buf = self.buf.lock().await;
        // Set at the first Pending: the deadline, and the event count then (a permission
        // failure after it is the answer).
        let mut waiting: Option<(Instant, u64)> = None;
        loop {
            let (encoded, server, seen) = {
                let mut inner = shared.lock();
                inner.usable()?;
                if let Some((_, since)) = waiting
                    && let Some(e) = inner.permission_failure(peer.ip(), since)
                {
                    return Err(e);
                }
                let encoded = inner
                    .alloc
                    .encode_data(peer, data, Instant::now(), &mut buf)?;
                (encoded, inner.alloc.server(), inner.seq)
            };
            let n = match encoded {
                Encoded::ChannelData(n) | Encoded::Indication(n) => n,
                Encoded::Pending => {
                    // The request is queued: the driver sends it. Wait for news (the
                    // permission, a failure, the channel), then encode again.
                    shared.wake.notify_one();
                    let (deadline, _) = *waiting.get_or_insert_with(|| {
                        (Instant::now() + shared.transaction_timeout(), seen)
                    });
                    let ip = peer.ip();
                    let news = shared
                        .wait_for(Some(deadline), |inner| {
                            let ok = inner.alloc.has_permission(ip, Instant::now());
                            (ok || inner.seq > seen || inner.terminal()).then_some(())
                        })
                        .await;
                    if news.is_none() {
                        return Err(Error::Timeout {
                            method: Method::CREATE_PERMISSION,
                        });
                    }
                    continue;
                }
            };
            let frame = buf.get(..n).ok_or(Error::Closed)?;
            shared.writer.send(frame, server).await?;
            return Ok(data.len());
        }
    }

    /// Waits for the next datagram from a peer; copies it into `buf` (cut to `buf`'s
    /// size, the rest dropped, as UDP does) and returns its length as copied and the
    /// peer. Datagrams queued before the allocation ended are still returned; then the
    /// reason it ended ([`Error::Closed`] after a close).
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        let shared = &self.owner.0;
        loop {
            let mut notified = pin!(shared.readable.notified());
            notified.as_mut().enable();
            {
                let mut inner = shared.lock();
                if let Some(got) = inner.ring.pop(buf) {
                    return Ok(got);
                }
                if inner.terminal() {
                    return Err(match &inner.state {
                        State::Failed(e) => e.duplicate(),
                        _ => Error::Closed,
                    });
                }
            }
            notified.await;
        }
    }

    /// Installs a permission for `ip` and waits for it, so that a peer there can send
    /// first (a permission is otherwise asked for by the first [`RelaySocket::send_to`]
    /// to the peer). Kept alive while the socket lives.
    pub async fn permit(&self, ip: IpAddr) -> Result<(), Error> {
        self.owner.0.permit(ip).await
    }

    /// Binds a channel to `peer` and waits for it (at most one transaction timeout), so
    /// that every datagram to it goes as ChannelData and `peer` may send first; returns
    /// the channel number. Kept alive (re-bound before it expires) while the socket lives;
    /// a no-op if already bound. The server's error if refused.
    pub async fn bind_channel(&self, peer: SocketAddr) -> Result<u16, Error> {
        self.owner.0.bind_channel(peer).await
    }

    /// The relayed address peers send to (the first one of a dual-stack allocation).
    pub fn relayed_addr(&self) -> SocketAddr {
        self.relayed
    }

    /// Every relayed address (two for a dual-stack allocation, see
    /// [`ClientOptions::family`](super::ClientOptions::family)).
    pub fn relayed_addrs(&self) -> &[SocketAddr] {
        &self.relayed_all
    }

    /// The client's address as the server saw it (XOR-MAPPED-ADDRESS).
    pub fn mapped_addr(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The lifetime the server granted first (refreshes keep the allocation alive).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The channel bound to `peer`, if any (data to it goes as ChannelData).
    pub fn channel_for(&self, peer: SocketAddr) -> Option<u16> {
        self.owner.0.lock().alloc.channel_for(peer, Instant::now())
    }

    /// The counters.
    pub fn stats(&self) -> SocketStats {
        let inner = self.owner.0.lock();
        SocketStats {
            turn: inner.alloc.stats(),
            received: inner.ring.received,
            dropped: inner.ring.dropped,
            too_large: inner.ring.too_large,
        }
    }

    /// Deletes the allocation (Refresh with LIFETIME 0) and waits for the server's answer,
    /// at most 3 s; then the driver ends, and the socket's calls return [`Error::Closed`].
    /// `Ok` when the server answered (or the allocation was already gone),
    /// [`Error::Timeout`] if it did not answer in time.
    pub async fn close(&self) -> Result<(), Error> {
        close(&self.owner).await
    }
}

/// Deletes the allocation of `owner` and waits (bounded) for the answer.
pub(super) async fn close(owner: &Owner) -> Result<(), Error> {
    let shared = &owner.0;
    {
        let mut inner = shared.lock();
        if inner.terminal() {
            return Ok(());
        }
        inner.alloc.close(Instant::now());
    }
    shared.wake.notify_one();
    let deadline = Instant::now() + CLOSE_WAIT;
    let done = shared
        .wait_for(Some(deadline), |inner| inner.terminal().then_some(()))
        .await;
    shared.lock().stop = true;
    shared.wake.notify_one();
    done.ok_or(Error::Timeout {
        method: Method::REFRESH,
    })
}

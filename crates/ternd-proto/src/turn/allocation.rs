//! One allocation: its relayed address, permissions and channels (RFC 8656 §2.2, §9, §12).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::command::{Command, PeerAddr, RelayAddr};
use super::stats::Stats;
use super::tcp::TcpAllocation;
use super::types::{FiveTuple, Lease, RelayTransport, Traffic};
use crate::auth::store::{Key, PasswordAlgorithm};
use crate::stun::TransactionId;

/// Permission lifetime (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel expires, its number and peer stay reserved this long (RFC 8656 §12).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);
/// Default for the most permissions one allocation may hold (`max_permissions_per_allocation`).
pub const DEFAULT_MAX_PERMISSIONS: usize = 64;
/// Default for the most channels one allocation may bind (`max_channels_per_allocation`).
pub const DEFAULT_MAX_CHANNELS: usize = 64;

/// A channel binding.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    /// The peer.
    pub peer: SocketAddr,
    /// When the binding expires (it lingers for [`CHANNEL_COOLDOWN`] after).
    pub expires: Instant,
    /// Set when the peer is another allocation's relayed address that only the
    /// same-server exemption allows: the lease the channel lives on.
    pub exempt: Option<Lease>,
    /// True from its [`Command::ChannelBound`] to its [`Command::ChannelUnbound`]: the shell
    /// was told it relays. Cleared when it expires (it lingers for [`CHANNEL_COOLDOWN`]).
    pub bound: bool,
}

/// A token bucket in bytes (for `max_bps`): refilled at `rate` bytes per second up to
/// `burst`; a packet passes if it fits, else it is dropped (never queued).
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, burst: u64) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Takes `bytes` if they fit after refilling at `rate` up to `burst`.
    #[inline]
    pub fn take(&mut self, bytes: u64, rate: u64, burst: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        if !elapsed.is_zero() {
            let add = (elapsed.as_nanos().saturating_mul(u128::from(rate)) / 1_000_000_000) as u64;
            if add > 0 {
                self.tokens = self.tokens.saturating_add(add).min(burst);
                self.last = now;
            }
        }
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

/// An allocation.
#[derive(Debug)]
pub struct Allocation {
    /// Its id for operators (admin API); unique on this server.
    pub id: u64,
    /// The client's 5-tuple.
    pub tuple: FiveTuple,
    /// The local address of the relay socket.
    pub relay: SocketAddr,
    /// The relayed transport address advertised to the client (XOR-RELAYED-ADDRESS).
    pub advertised: SocketAddr,
    /// A dual allocation's second relayed transport address (RFC 8656 §7.2,
    /// ADDITIONAL-ADDRESS-FAMILY): the local address of its relay socket and the form
    /// advertised. Always of the other family than [`Allocation::relay`].
    pub additional: Option<(SocketAddr, SocketAddr)>,
    /// The USERNAME that created it.
    pub username: String,
    /// The quota key (the USER part of a REST username, or the static user).
    pub user: String,
    /// The key it authenticated with (kept: RFC 8656 §6.2).
    pub key: Key,
    /// The password algorithm of that key.
    pub algorithm: PasswordAlgorithm,
    /// When it expires.
    pub expires: Instant,
    /// When its credential expires (REST credentials), UNIX seconds.
    pub credential_expiry_unix: Option<u64>,
    /// When it was created.
    pub started: Instant,
    /// Its creation time, UNIX seconds (for the accounting line).
    pub started_unix: u64,
    /// Permissions by peer IP, with their expiry.
    pub permissions: HashMap<IpAddr, Instant>,
    /// Channels by number.
    pub channels: HashMap<u16, Channel>,
    /// Channel numbers by peer.
    pub channel_by_peer: HashMap<SocketAddr, u16>,
    /// The Allocate transaction and its success response, resent on retransmission.
    pub allocate_response: (TransactionId, Vec<u8>),
    /// Traffic counters.
    pub traffic: Traffic,
    /// Bandwidth buckets (client → peer, peer → client), used when `max_bps` is set.
    pub buckets: [TokenBucket; 2],
    /// The deadline of this allocation's one live timer entry; entries at other times are
    /// stale and skipped.
    pub scheduled: Instant,
    /// The policy generation its permissions and channels were last checked against.
    pub policy_generation: u64,
    /// For a TCP allocation (RFC 6062), its connections with peers; `None` for UDP.
    pub tcp: Option<TcpAllocation>,
    /// The RESERVATION-TOKEN of the port it reserved (EVEN-PORT R=1), released with it if
    /// nobody claimed it.
    pub reservation: Option<[u8; 8]>,
}

impl Allocation {
    /// When its credential expires (REST credentials), UNIX seconds.
    pub fn credential_expires_unix(&self) -> Option<u64> {
        self.credential_expiry_unix
    }

    /// The local address of the relay socket that serves peers of `ip`'s family, if the
    /// allocation has one (else a peer of that family gets 443).
    #[inline]
    pub fn relay_for(&self, ip: IpAddr) -> Option<SocketAddr> {
        if ip.is_ipv4() == self.relay.is_ipv4() {
            Some(self.relay)
        } else {
            self.additional
                .map(|(bind, _)| bind)
                .filter(|b| b.is_ipv4() == ip.is_ipv4())
        }
    }

    /// Every relay socket of the allocation (one, or two for a dual allocation).
    pub fn relay_sockets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        std::iter::once(self.relay).chain(self.additional.map(|(b, _)| b))
    }

    /// Every relayed transport address, bound and advertised forms.
    pub fn relayed_addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        [self.relay, self.advertised]
            .into_iter()
            .chain(self.additional.into_iter().flat_map(|(b, a)| [b, a]))
    }

    /// True if `ip` has an unexpired permission.
    #[inline]
    pub fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&e| e > now)
    }

    /// Installs or refreshes a permission.
    pub fn permit(&mut self, ip: IpAddr, now: Instant) {
        self.permissions.insert(ip, now + PERMISSION_LIFETIME);
    }

    /// The channel bound to `peer`, if live.
    #[inline]
    pub fn channel_for_peer(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let n = *self.channel_by_peer.get(&peer)?;
        (self.channels.get(&n)?.expires > now).then_some(n)
    }

    /// A live channel.
    #[inline]
    pub fn live_channel(&self, number: u16, now: Instant) -> Option<Channel> {
        self.channels
            .get(&number)
            .filter(|c| c.expires > now)
            .copied()
    }

    /// Removes channel `number` at once (no cooldown: its peer may no longer be reached);
    /// returns it.
    pub fn unbind(&mut self, number: u16) -> Option<Channel> {
        let c = self.channels.remove(&number)?;
        self.channel_by_peer.remove(&c.peer);
        Some(c)
    }

    /// [`Command::ChannelUnbound`] for channel `number` (bound to `c`), if the shell was
    /// told it is bound.
    pub(super) fn unbound(&self, number: u16, c: &Channel) -> Option<Command> {
        c.bound.then(|| Command::ChannelUnbound {
            tuple: self.tuple,
            relay: RelayAddr(self.relay_for(c.peer.ip()).unwrap_or(self.relay)),
            peer: PeerAddr(c.peer),
            channel: number,
        })
    }

    /// What the allocation relays to peers: TCP for an RFC 6062 TCP allocation, else UDP.
    #[inline]
    pub fn relay_transport(&self) -> RelayTransport {
        if self.tcp.is_some() {
            RelayTransport::Tcp
        } else {
            RelayTransport::Udp
        }
    }

    /// The peer of a live channel.
    #[inline]
    pub fn peer_for_channel(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .get(&number)
            .filter(|c| c.expires > now)
            .map(|c| c.peer)
    }

    /// Removes expired permissions and channels past their cooldown, and marks channels
    /// that just expired unbound (their [`Command::ChannelUnbound`] go to `unbound`);
    /// returns the earliest time something else will need doing (including the
    /// allocation's own expiry).
    pub fn sweep(&mut self, now: Instant, unbound: &mut impl FnMut(Command)) -> Instant {
        self.permissions.retain(|_, e| *e > now);
        let expired: Vec<u16> = self
            .channels
            .iter()
            .filter(|(_, c)| c.bound && c.expires <= now)
            .map(|(&n, _)| n)
            .collect();
        for n in expired {
            if let Some(c) = self.channels.get(&n).copied()
                && let Some(cmd) = self.unbound(n, &c)
            {
                unbound(cmd);
            }
            if let Some(c) = self.channels.get_mut(&n) {
                c.bound = false;
            }
        }
        let mut gone = Vec::new();
        self.channels.retain(|n, c| {
            let keep = c.expires + CHANNEL_COOLDOWN > now;
            if !keep {
                gone.push((*n, c.peer));
            }
            keep
        });
        for (_, peer) in gone {
            self.channel_by_peer.remove(&peer);
        }
        self.next_deadline()
    }

    /// Applies the client → peer bandwidth limit (`limit` = (max_bps, burst); 0 = none) and
    /// counts the packet; false when the limit drops it.
    #[inline]
    pub(super) fn count_out(
        &mut self,
        stats: &Stats,
        len: usize,
        limit: (u64, u64),
        now: Instant,
    ) -> bool {
        let (max_bps, burst) = limit;
        if max_bps != 0 && !self.buckets[0].take(len as u64, max_bps, burst, now) {
            stats.rate_limited.inc();
            return false;
        }
        self.traffic.packets_out += 1;
        self.traffic.bytes_out += len as u64;
        stats.relayed_out_packets.inc();
        stats.relayed_out_bytes.add(len as u64);
        true
    }

    /// The earliest instant at which this allocation needs attention.
    pub fn next_deadline(&self) -> Instant {
        let mut d = self.expires;
        for &e in self.permissions.values() {
            d = d.min(e);
        }
        for c in self.channels.values() {
            // A bound channel is due when it expires (to announce it unbound), then when
            // its cooldown ends (to forget it).
            d = d.min(if c.bound {
                c.expires
            } else {
                c.expires + CHANNEL_COOLDOWN
            });
        }
        if let Some(t) = self.tcp.as_ref().and_then(|t| t.next_deadline()) {
            d = d.min(t);
        }
        d
    }
}

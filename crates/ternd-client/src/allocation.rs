//! What the server granted a session, and when each grant is due for a refresh.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ternd_proto::stun::{Attribute, Message, attr_type};

/// How long a permission lasts without a refresh (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lasts without a refresh (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// How long before expiry a grant is due for a refresh (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// An installed permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The peer's IP address (permissions ignore the port).
    pub ip: IpAddr,
    /// When it expires unless refreshed.
    pub expires: Instant,
}

/// A bound channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// The channel number.
    pub number: u16,
    /// The peer it is bound to.
    pub peer: SocketAddr,
    /// When it expires unless refreshed.
    pub expires: Instant,
}

/// What is due for a refresh (see [`Grants::due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The allocation: send a Refresh.
    Grants,
    /// A permission: send CreatePermission for this address.
    Permission(IpAddr),
    /// A channel: send ChannelBind again with the same number and peer.
    Channel {
        /// The channel number.
        number: u16,
        /// Its peer.
        peer: SocketAddr,
    },
}

/// The allocation's state as the server's success responses described it.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    relayed: Vec<SocketAddr>,
    mapped: Option<SocketAddr>,
    lifetime: Option<Duration>,
    expires: Option<Instant>,
    permissions: Vec<Permission>,
    channels: Vec<Channel>,
}

fn due_at(expires: Instant, lifetime: Duration) -> Instant {
    expires
        .checked_sub(REFRESH_MARGIN.min(lifetime / 2))
        .unwrap_or(expires)
}

impl Grants {
    /// The relayed address (the first, for a dual-stack allocation).
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed.first().copied()
    }

    /// Every relayed address (two for a dual-stack allocation).
    pub fn relayed_addrs(&self) -> &[SocketAddr] {
        &self.relayed
    }

    /// The client's address as the server saw it (XOR-MAPPED-ADDRESS of the Allocate).
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The lifetime the server granted last.
    pub fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// When the allocation expires unless refreshed.
    pub fn expires(&self) -> Option<Instant> {
        self.expires
    }

    /// True while an allocation exists (granted and not deleted by Refresh(0)).
    pub fn is_allocated(&self) -> bool {
        !self.relayed.is_empty()
    }

    /// The installed permissions.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The bound channels.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// True if a permission for `ip` is installed and not expired at `now`.
    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires > now)
    }

    /// The channel bound to `peer`, if any.
    pub fn channel_for(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer)
            .map(|c| c.number)
    }

    /// The peer of channel `number`, if bound.
    pub fn peer_of(&self, number: u16) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number)
            .map(|c| c.peer)
    }

    /// The earliest time something is due for a refresh.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let alloc = match (self.expires, self.lifetime) {
            (Some(e), Some(l)) if self.is_allocated() => Some(due_at(e, l)),
            _ => None,
        };
        let perms = self
            .permissions
            .iter()
            .map(|p| due_at(p.expires, PERMISSION_LIFETIME));
        let chans = self
            .channels
            .iter()
            .map(|c| due_at(c.expires, CHANNEL_LIFETIME));
        alloc.into_iter().chain(perms).chain(chans).min()
    }

    /// The first grant due for a refresh at `now`: the allocation first, then channels
    /// (which refresh their peer's permission too), then permissions.
    pub fn due(&self, now: Instant) -> Option<Due> {
        if let (Some(e), Some(l)) = (self.expires, self.lifetime)
            && self.is_allocated()
            && now >= due_at(e, l)
        {
            return Some(Due::Grants);
        }
        if let Some(c) = self
            .channels
            .iter()
            .find(|c| now >= due_at(c.expires, CHANNEL_LIFETIME))
        {
            return Some(Due::Channel {
                number: c.number,
                peer: c.peer,
            });
        }
        self.permissions
            .iter()
            .find(|p| now >= due_at(p.expires, PERMISSION_LIFETIME))
            .map(|p| Due::Permission(p.ip))
    }

    /// Records an Allocate success.
    pub(crate) fn allocated(&mut self, m: &Message<'_>, now: Instant) {
        self.relayed.clear();
        self.mapped = None;
        for raw in m.attributes() {
            match Attribute::decode(raw, &m.transaction_id()) {
                Ok(Attribute::XorRelayedAddress(a)) => self.relayed.push(a),
                Ok(Attribute::XorMappedAddress(a)) => self.mapped = Some(a),
                _ => {}
            }
        }
        self.set_lifetime(lifetime_of(m), now);
    }

    /// Records a Refresh success (`requested` is the LIFETIME the request asked for).
    pub(crate) fn refreshed(&mut self, m: &Message<'_>, requested: Option<u32>, now: Instant) {
        let granted = lifetime_of(m).or(requested.map(|s| Duration::from_secs(s.into())));
        if granted == Some(Duration::ZERO) {
            *self = Grants::default();
        } else {
            self.set_lifetime(granted, now);
        }
    }

    fn set_lifetime(&mut self, lifetime: Option<Duration>, now: Instant) {
        self.lifetime = lifetime;
        self.expires = lifetime.map(|l| now + l);
    }

    /// Records a CreatePermission success for `ips`.
    pub(crate) fn permitted(&mut self, ips: impl IntoIterator<Item = IpAddr>, now: Instant) {
        for ip in ips {
            let expires = now + PERMISSION_LIFETIME;
            match self.permissions.iter_mut().find(|p| p.ip == ip) {
                Some(p) => p.expires = expires,
                None => self.permissions.push(Permission { ip, expires }),
            }
        }
    }

    /// Records a ChannelBind success (which installs or refreshes the peer's permission).
    pub(crate) fn bound(&mut self, number: u16, peer: SocketAddr, now: Instant) {
        let expires = now + CHANNEL_LIFETIME;
        match self.channels.iter_mut().find(|c| c.number == number) {
            Some(c) => {
                c.peer = peer;
                c.expires = expires;
            }
            None => self.channels.push(Channel {
                number,
                peer,
                expires,
            }),
        }
        self.permitted([peer.ip()], now);
    }
}

fn lifetime_of(m: &Message<'_>) -> Option<Duration> {
    match m.get_decoded(attr_type::LIFETIME)? {
        Ok(Attribute::Lifetime(s)) => Some(Duration::from_secs(s.into())),
        _ => None,
    }
}

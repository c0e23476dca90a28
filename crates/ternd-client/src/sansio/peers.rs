//! Permissions and channels: what is installed, what is asked for, what is due.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::timer::later;
use crate::Error;
use crate::allocation::{CHANNEL_LIFETIME, PERMISSION_LIFETIME};

/// The first and last channel numbers RFC 8656 §12 allows.
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;
/// At most this many addresses in one CreatePermission (it stays well under 1280 bytes).
const MAX_PER_REQUEST: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Perm {
    /// When the server's permission ends (`None`: never installed yet).
    expires: Option<Instant>,
    /// When to refresh (or try again).
    due: Option<Instant>,
    /// A CreatePermission (or ChannelBind) for it is outstanding.
    asking: bool,
}

#[derive(Debug, Clone, Copy)]
struct Chan {
    number: u16,
    expires: Option<Instant>,
    due: Option<Instant>,
    asking: bool,
}

/// The peers of one allocation.
#[derive(Debug, Default)]
pub(super) struct Peers {
    perms: HashMap<IpAddr, Perm>,
    chans: HashMap<SocketAddr, Chan>,
    by_number: HashMap<u16, SocketAddr>,
    next_number: u16,
}

impl Peers {
    pub(super) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.perms
            .get(&ip)
            .and_then(|p| p.expires)
            .is_some_and(|e| e > now)
    }

    pub(super) fn permission_expires(&self, ip: IpAddr) -> Option<Instant> {
        self.perms.get(&ip)?.expires
    }

    pub(super) fn channel_expires(&self, peer: SocketAddr) -> Option<Instant> {
        self.chans.get(&peer)?.expires
    }

    /// The channel to `peer`, if the server bound it and it has not expired.
    pub(super) fn usable_channel(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let c = self.chans.get(&peer)?;
        c.expires.is_some_and(|e| e > now).then_some(c.number)
    }

    /// The peer of a channel the client asked for (data may arrive as soon as the server
    /// bound it, before the success response).
    pub(super) fn peer_of(&self, number: u16) -> Option<SocketAddr> {
        self.by_number.get(&number).copied()
    }

    /// Marks a permission as wanted; true if a CreatePermission should be sent (not when
    /// one is installed or outstanding, nor while backing off after a refusal).
    pub(super) fn want_permission(&mut self, ip: IpAddr, now: Instant) -> bool {
        let p = self.perms.entry(ip).or_insert(Perm {
            expires: None,
            due: None,
            asking: false,
        });
        if p.asking || p.expires.is_some_and(|e| e > now) || p.due.is_some_and(|d| now < d) {
            return false;
        }
        p.asking = true;
        true
    }

    /// The channel for `peer` (a new number if it has none); true if a ChannelBind should
    /// be sent.
    pub(super) fn want_channel(
        &mut self,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(u16, bool), Error> {
        if let Some(c) = self.chans.get_mut(&peer) {
            let lapsed = c.expires.is_none_or(|e| e <= now);
            let retry = !c.asking && lapsed && c.due.is_none_or(|d| now >= d);
            if retry {
                c.asking = true;
                c.due = None;
            }
            return Ok((c.number, retry));
        }
        let used = self.by_number.len();
        if used > usize::from(LAST_CHANNEL - FIRST_CHANNEL) {
            return Err(Error::ChannelsExhausted);
        }
        let mut n = self.next_number.clamp(FIRST_CHANNEL, LAST_CHANNEL);
        while self.by_number.contains_key(&n) {
            n = if n == LAST_CHANNEL {
                FIRST_CHANNEL
            } else {
                n + 1
            };
        }
        self.next_number = if n == LAST_CHANNEL {
            FIRST_CHANNEL
        } else {
            n + 1
        };
        self.by_number.insert(n, peer);
        self.chans.insert(
            peer,
            Chan {
                number: n,
                expires: None,
                due: None,
                asking: true,
            },
        );
        // A ChannelBind installs the permission too.
        let p = self.perms.entry(peer.ip()).or_insert(Perm {
            expires: None,
            due: None,
            asking: false,
        });
        p.asking = p.asking || p.expires.is_none();
        Ok((n, true))
    }

    /// A permission was installed or refreshed; true the first time.
    pub(super) fn permission_installed(
        &mut self,
        ip: IpAddr,
        now: Instant,
        refresh_after: Duration,
    ) -> bool {
        let p = self.perms.entry(ip).or_insert(Perm {
            expires: None,
            due: None,
            asking: false,
        });
        let first = p.expires.is_none();
        p.expires = Some(later(now, PERMISSION_LIFETIME));
        // Never later than 90% of the lifetime, whatever the setting says.
        p.due = Some(later(now, refresh_after.min(PERMISSION_LIFETIME / 10 * 9)));
        p.asking = false;
        first
    }

    /// A CreatePermission failed; true if the permission is gone (the event is due),
    /// false if it still holds and is tried again later.
    pub(super) fn permission_failed(&mut self, ip: IpAddr, now: Instant, retry: Duration) -> bool {
        let Some(p) = self.perms.get_mut(&ip) else {
            return false;
        };
        p.asking = false;
        p.due = Some(later(now, retry));
        if p.expires.is_some_and(|e| e > p.due.unwrap_or(now)) {
            return false;
        }
        // Gone (or never there): asked for again on the next datagram after the back-off.
        p.expires = None;
        true
    }

    /// A ChannelBind succeeded; true the first time.
    pub(super) fn channel_bound(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
        refresh_after: Duration,
    ) -> bool {
        let Some(c) = self.chans.get_mut(&peer).filter(|c| c.number == number) else {
            return false;
        };
        let first = c.expires.is_none();
        c.expires = Some(later(now, CHANNEL_LIFETIME));
        c.due = Some(later(now, refresh_after.min(CHANNEL_LIFETIME / 10 * 9)));
        c.asking = false;
        first
    }

    /// A ChannelBind failed; true if the event is due (the first bind failed, or the
    /// binding lapsed). The number stays the peer's, tried again later: RFC 8656 §12 does
    /// not let it go to another peer for 5 minutes after a binding, and the peer keeps its
    /// number across re-binds either way.
    pub(super) fn channel_failed(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
        retry: Duration,
    ) -> bool {
        let Some(c) = self.chans.get_mut(&peer).filter(|c| c.number == number) else {
            return false;
        };
        c.asking = false;
        c.due = Some(later(now, retry));
        let holds = c.expires.is_some_and(|e| e > later(now, retry));
        if !holds {
            c.expires = None;
        }
        // The permission the bind would have installed is not there either.
        if let Some(p) = self.perms.get_mut(&peer.ip())
            && p.expires.is_none()
        {
            p.asking = false;
        }
        !holds
    }

    /// The earliest refresh due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let p = self
            .perms
            .values()
            .filter(|p| !p.asking && p.expires.is_some())
            .filter_map(|p| p.due);
        let c = self
            .chans
            .values()
            .filter(|c| !c.asking && c.expires.is_some())
            .filter_map(|c| c.due);
        p.chain(c).min()
    }

    /// Installed permissions due for a refresh at `now` (marked as being asked for).
    pub(super) fn due_permissions(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut due = Vec::new();
        for (ip, p) in &mut self.perms {
            if due.len() == MAX_PER_REQUEST {
                break;
            }
            if !p.asking && p.expires.is_some() && p.due.is_some_and(|d| now >= d) {
                p.asking = true;
                p.due = None;
                due.push(*ip);
            }
        }
        due
    }

    /// A bound channel due for a re-bind at `now` (marked as being asked for).
    pub(super) fn due_channel(&mut self, now: Instant) -> Option<(u16, SocketAddr)> {
        let (peer, c) = self
            .chans
            .iter_mut()
            .find(|(_, c)| !c.asking && c.expires.is_some() && c.due.is_some_and(|d| now >= d))?;
        c.asking = true;
        c.due = None;
        Some((c.number, *peer))
    }
}

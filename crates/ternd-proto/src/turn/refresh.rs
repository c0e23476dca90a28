//! Refresh (RFC 8656 §8): extend an allocation, delete it (LIFETIME 0), or delete one
//! relayed address of a dual allocation (LIFETIME 0 with REQUESTED-ADDRESS-FAMILY).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Server;
use super::codes::{self, Code};
use super::command::{Command, PeerAddr, RelayAddr};
use super::relays::Relays;
use super::respond::Reply;
use super::types::EndReason;
use crate::stun::{AddressFamily, Attribute, Message, attr_type};

/// A Refresh request, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RefreshRequest {
    /// REQUESTED-ADDRESS-FAMILY: the relayed address it is about.
    family: Option<AddressFamily>,
    /// LIFETIME, if asked (0 deletes).
    lifetime: Option<Duration>,
}

impl RefreshRequest {
    /// 400 for a malformed REQUESTED-ADDRESS-FAMILY; a malformed LIFETIME counts as none.
    fn decode(msg: &Message<'_>) -> Result<Self, Code> {
        let family = match msg.get_decoded(attr_type::REQUESTED_ADDRESS_FAMILY) {
            Some(Ok(Attribute::RequestedAddressFamily(f))) => Some(f),
            Some(Err(_)) => return Err(codes::BAD_REQUEST),
            _ => None,
        };
        let lifetime = match msg.get_decoded(attr_type::LIFETIME) {
            Some(Ok(Attribute::Lifetime(s))) => Some(Duration::from_secs(u64::from(s))),
            _ => None,
        };
        Ok(Self { family, lifetime })
    }

    fn deletes(&self) -> bool {
        self.lifetime == Some(Duration::ZERO)
    }
}

/// An address of family `f` (to ask an allocation for its relay of that family).
fn family_ip(f: AddressFamily) -> IpAddr {
    match f {
        AddressFamily::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

impl Server {
    /// Answers an authenticated Refresh for the allocation in slot `idx`.
    pub(super) fn refresh(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        let Some(alloc) = self.live_allocation(idx, now) else {
            // Expired (the timer has not removed it yet): it cannot be revived.
            return self.error(reply, codes::ALLOCATION_MISMATCH, out);
        };
        let req = match RefreshRequest::decode(msg) {
            Ok(r) => r,
            Err(code) => return self.error(reply, code, out),
        };
        // REQUESTED-ADDRESS-FAMILY names one relayed address of the allocation (§8): a
        // family it lacks gets 443.
        if let Some(f) = req.family
            && alloc.relay_for(family_ip(f)).is_none()
        {
            return self.error(reply, codes::PEER_ADDRESS_FAMILY_MISMATCH, out);
        }
        // In a dual allocation, LIFETIME 0 with REQUESTED-ADDRESS-FAMILY deletes that
        // family's relayed address only; the other one lives on.
        if req.deletes()
            && let Some(f) = req.family
            && alloc.additional.is_some()
        {
            let len = {
                let mut b = self.start(msg, msg.message_type().success(), out)?;
                b.add(&Attribute::Lifetime(0)).ok()?;
                self.finish(reply, b)?
            };
            self.drop_family(idx, f);
            return Some(len);
        }
        let lifetime = if req.deletes() {
            Duration::ZERO
        } else {
            self.shared
                .config
                .granted_lifetime(req.lifetime, alloc.credential_expiry_unix, now)
        };
        let len = {
            let mut b = self.start(msg, msg.message_type().success(), out)?;
            b.add(&Attribute::Lifetime(lifetime.as_secs() as u32))
                .ok()?;
            self.finish(reply, b)?
        };
        if lifetime.is_zero() {
            self.remove(idx, now, EndReason::Deleted, relays);
        } else if let Some(Some(a)) = self.slots.get_mut(idx as usize) {
            a.expires = now + lifetime;
        }
        self.reschedule(idx);
        Some(len)
    }

    /// Removes one relayed address of a dual allocation (its relay socket, and the
    /// permissions and channels of that family); the allocation keeps the other.
    fn drop_family(&mut self, idx: u32, f: AddressFamily) {
        let Some(Some(a)) = self.slots.get_mut(idx as usize) else {
            return;
        };
        let Some((extra, extra_adv)) = a.additional.take() else {
            return;
        };
        let gone = if AddressFamily::of(a.relay.ip()) == f {
            let gone = (a.relay, a.advertised);
            (a.relay, a.advertised) = (extra, extra_adv);
            gone
        } else {
            (extra, extra_adv)
        };
        let v4 = f == AddressFamily::V4;
        a.permissions.retain(|ip, _| ip.is_ipv4() != v4);
        let commands = &mut self.commands;
        a.channels.retain(|&channel, c| {
            let keep = c.peer.is_ipv4() != v4;
            if !keep && c.bound {
                commands.push_back(Command::ChannelUnbound {
                    tuple: a.tuple,
                    relay: RelayAddr(gone.0),
                    peer: PeerAddr(c.peer),
                    channel,
                });
            }
            keep
        });
        a.channel_by_peer.retain(|p, _| p.is_ipv4() != v4);
        self.by_relay.remove(&gone.0);
        self.shared
            .remove_live_relays(a.relay_transport(), [gone.0, gone.1]);
        self.commands.push_back(Command::CloseRelay {
            relay: RelayAddr(gone.0),
        });
    }
}

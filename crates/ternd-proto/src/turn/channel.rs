//! Channels (RFC 8656 §11, §12): ChannelBind, and ChannelData from clients, the hot path
//! client → peer (the payload is forwarded as a sub-slice of the receive buffer).

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::allocation::{CHANNEL_LIFETIME, Channel};
use super::codes::{self, Code};
use super::command::{Command, PeerAddr, RelayAddr};
use super::respond::Reply;
use super::types::{DropReason, FiveTuple, Outcome, RelayTransport};
use crate::stun::channel::{self, ChannelData, ChannelRange};
use crate::stun::{Attribute, Message, attr_type};

/// A ChannelBind request, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChannelBindRequest {
    /// CHANNEL-NUMBER, in the configured range.
    number: u16,
    /// XOR-PEER-ADDRESS.
    peer: SocketAddr,
}

impl ChannelBindRequest {
    /// 400 for a missing or malformed attribute, or a number out of `range`.
    fn decode(msg: &Message<'_>, range: ChannelRange) -> Result<Self, Code> {
        let number = match msg.get_decoded(attr_type::CHANNEL_NUMBER) {
            Some(Ok(Attribute::ChannelNumber(n))) if range.contains(n) => n,
            _ => return Err(codes::BAD_REQUEST),
        };
        let peer = match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(p))) => p,
            _ => return Err(codes::BAD_REQUEST),
        };
        Ok(Self { number, peer })
    }
}

impl Server {
    /// Relays a ChannelData message from a client to the channel's peer: checks the
    /// allocation, the channel, its lease and permission and the bandwidth limit, and
    /// answers where to send the payload (no copy).
    #[inline]
    pub(super) fn channel_data(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
    ) -> Outcome {
        let (max_bps, burst) = self.bandwidth();
        let Ok(cd) = ChannelData::parse(packet, self.shared.config.channel_range) else {
            return self.drop(DropReason::Malformed);
        };
        let Some(&idx) = self.by_tuple.get(&tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        self.revalidate(idx);
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return self.drop(DropReason::NoAllocation);
        };
        if alloc.expires <= now {
            return self.drop(DropReason::NoAllocation);
        }
        let Some(channel) = alloc.live_channel(cd.channel, now) else {
            return self.drop(DropReason::NoChannel);
        };
        let peer = channel.peer;
        // A channel to another allocation's relayed address (denied by the policy, allowed
        // as the same-server exception) ends with that allocation: whatever binds the
        // address later is not what the channel was allowed to reach.
        if let Some(lease) = channel.exempt
            && self.shared.live_relay(RelayTransport::Udp, peer) != Some(lease)
        {
            if let Some(c) = alloc.unbind(cd.channel)
                && let Some(cmd) = alloc.unbound(cd.channel, &c)
            {
                self.commands.push_back(cmd);
            }
            self.stats.policy_denied.inc();
            return self.drop(DropReason::PolicyDenied);
        }
        // The channel installed the permission; it may have lapsed if not refreshed.
        if !alloc.permitted(peer.ip(), now) {
            return self.drop(DropReason::NoPermission);
        }
        // The channel's peer was checked against the allocation's families when bound.
        let Some(relay) = alloc.relay_for(peer.ip()) else {
            return self.drop(DropReason::NoPermission);
        };
        if !alloc.count_out(&self.stats, cd.data.len(), (max_bps, burst), now) {
            return Outcome::Dropped(DropReason::RateLimited);
        }
        self.stats.relayed_out_channel_data.inc();
        Outcome::Forward {
            relay,
            peer: self.shared.config.local_form(peer),
            start: channel::HEADER_LEN,
            len: cd.data.len(),
        }
    }

    /// Answers an authenticated ChannelBind for the allocation in slot `idx`.
    pub(super) fn channel_bind(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let ChannelBindRequest { number, peer } =
            match ChannelBindRequest::decode(msg, self.shared.config.channel_range) {
                Ok(r) => r,
                Err(code) => {
                    if let Some(Ok(Attribute::ChannelNumber(n))) =
                        msg.get_decoded(attr_type::CHANNEL_NUMBER)
                        && !self.shared.config.channel_range.contains(n)
                        && (0x4000..=0x7FFF).contains(&n)
                    {
                        self.why.set(Some(super::refusal::Refusal::ChannelRange(n)));
                    }
                    return self.error(reply, code, out);
                }
            };
        // A number bound (or cooling down) for another peer, or a peer with another number
        // (RFC 8656 §11.2 lists these 400s first). A TCP allocation has no channels.
        let alloc = self.slots.get(idx as usize)?.as_ref()?;
        let conflict = alloc.tcp.is_some()
            || alloc.channels.get(&number).is_some_and(|c| c.peer != peer)
            || alloc
                .channel_by_peer
                .get(&peer)
                .is_some_and(|&n| n != number);
        if conflict {
            return self.error(reply, codes::BAD_REQUEST, out);
        }
        let exempt = match self.check_peer(alloc, peer, true) {
            Ok(lease) => lease,
            Err(code) => return self.error(reply, code, out),
        };
        let (max_permissions, max_channels) =
            (self.limits().max_permissions, self.limits().max_channels);
        let alloc = self.slots.get_mut(idx as usize)?.as_mut()?;
        let refresh = alloc.channels.get(&number).is_some_and(|c| c.bound);
        let over_permissions = !alloc.permissions.contains_key(&peer.ip())
            && alloc.permissions.len() >= max_permissions;
        let over_channels =
            !alloc.channels.contains_key(&number) && alloc.channels.len() >= max_channels;
        if over_permissions || over_channels {
            return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
        }
        alloc.channels.insert(
            number,
            Channel {
                peer,
                expires: now + CHANNEL_LIFETIME,
                exempt,
                bound: true,
            },
        );
        alloc.channel_by_peer.insert(peer, number);
        alloc.permit(peer.ip(), now);
        if !refresh {
            let relay = alloc.relay_for(peer.ip()).unwrap_or(alloc.relay);
            self.commands.push_back(Command::ChannelBound {
                tuple: alloc.tuple,
                relay: RelayAddr(relay),
                peer: PeerAddr(peer),
                channel: number,
            });
        }
        self.reschedule(idx);
        let b = self.start(msg, msg.message_type().success(), out)?;
        self.finish(reply, b)
    }
}

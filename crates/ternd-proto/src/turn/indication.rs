//! Send and Data indications (RFC 8656 §11): a Send indication's payload goes to its
//! peer; a peer's datagram goes to the client as ChannelData (when a channel is bound) or
//! as a Data indication, the hot path peer → client (the header is written in front of the
//! payload, in the receive buffer's headroom).

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::types::{
    DropReason, FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, RelayTransport,
    Transport,
};
use crate::stun::channel::{self, ChannelData};
use crate::stun::{Attribute, Class, Message, MessageBuilder, MessageType, Method, attr_type};

/// A Send indication, decoded: the peer and where DATA's value lies in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SendIndication {
    peer: SocketAddr,
    start: usize,
    len: usize,
}

impl SendIndication {
    /// `None` (dropped as malformed) without XOR-PEER-ADDRESS or DATA, or with an unknown
    /// comprehension-required attribute (RFC 8489 §6.3.2: indications are not answered).
    fn decode(msg: &Message<'_>) -> Option<Self> {
        let peer = match msg.get_decoded(attr_type::XOR_PEER_ADDRESS) {
            Some(Ok(Attribute::XorPeerAddress(p))) => p,
            _ => return None,
        };
        let data = msg.get(attr_type::DATA)?;
        if msg.unknown_comprehension_required(attr_type::is_known, &mut [0u16; 1]) > 0 {
            return None;
        }
        Some(Self {
            peer,
            start: data.offset + 4,
            len: data.value.len(),
        })
    }
}

impl Server {
    /// Handles a datagram a relay socket received from `peer`. The payload is
    /// `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, and `buf` has [`PEER_TAILROOM`] bytes to
    /// spare after it.
    pub fn handle_peer(
        &mut self,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> PeerOutcome {
        let (max_bps, burst) = self.bandwidth();
        let Some(&idx) = self.by_relay.get(&relay) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        };
        let peer = self.shared.config.public_form(peer);
        self.revalidate(idx);
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        };
        if alloc.expires <= now {
            // Expired, waiting for the next timer tick to be removed.
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::UnknownRelay);
        }
        if !alloc.permitted(peer.ip(), now) {
            self.stats.peer_dropped_no_permission.inc();
            return PeerOutcome::Dropped(DropReason::NoPermission);
        }
        let Ok(len16) = u16::try_from(len) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::Malformed);
        };
        if buf.len() < PEER_HEADROOM + len + PEER_TAILROOM {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        }
        if max_bps != 0 && !alloc.buckets[1].take(len as u64, max_bps, burst, now) {
            self.stats.rate_limited.inc();
            return PeerOutcome::Dropped(DropReason::RateLimited);
        }
        alloc.traffic.packets_in += 1;
        alloc.traffic.bytes_in += len as u64;
        let tuple = alloc.tuple;
        let stream = tuple.transport != Transport::Udp;
        if let Some(number) = alloc.channel_for_peer(peer, now) {
            let start = PEER_HEADROOM - channel::HEADER_LEN;
            let header: &mut [u8; 4] = (&mut buf[start..PEER_HEADROOM])
                .try_into()
                .unwrap_or_else(|_| unreachable!());
            ChannelData::write_header(header, number, len16);
            let mut total = channel::HEADER_LEN + len;
            if stream {
                let padded = channel::padded_len(len);
                buf[start + total..start + padded].fill(0);
                total = padded;
            }
            self.stats.relayed_in_packets.inc();
            self.stats.relayed_in_bytes.add(len as u64);
            return PeerOutcome::ToClient {
                tuple,
                start,
                len: total,
            };
        }
        // A Data indication: header, XOR-PEER-ADDRESS, then the DATA attribute header.
        let peer_attr = if peer.is_ipv4() { 4 + 8 } else { 4 + 20 };
        let header_len = 20 + peer_attr + 4;
        let start = PEER_HEADROOM - header_len;
        let padded = (len + 3) & !3;
        let total = header_len + padded;
        let tid = self.rng.transaction_id();
        let Ok(mut b) = MessageBuilder::new(
            &mut buf[start..start + 20 + peer_attr],
            MessageType::new(Method::DATA, Class::Indication),
            tid,
        ) else {
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        };
        if b.add(&Attribute::XorPeerAddress(peer)).is_err() {
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        }
        let data_hdr = start + 20 + peer_attr;
        buf[data_hdr..data_hdr + 2].copy_from_slice(&attr_type::DATA.to_be_bytes());
        buf[data_hdr + 2..data_hdr + 4].copy_from_slice(&len16.to_be_bytes());
        buf[PEER_HEADROOM + len..PEER_HEADROOM + padded].fill(0);
        // An IPv6 peer's datagram near 64 KiB no longer fits a STUN message.
        let Ok(body) = u16::try_from(total - 20) else {
            self.stats.peer_dropped.inc();
            return PeerOutcome::Dropped(DropReason::OutputTooSmall);
        };
        buf[start + 2..start + 4].copy_from_slice(&body.to_be_bytes());
        self.stats.relayed_in_packets.inc();
        self.stats.relayed_in_bytes.add(len as u64);
        PeerOutcome::ToClient {
            tuple,
            start,
            len: total,
        }
    }

    /// Relays a Send indication's DATA to its peer (a sub-slice of the packet: no copy).
    /// Nothing is answered: what fails is dropped and counted.
    pub(super) fn send_indication(
        &mut self,
        msg: &Message<'_>,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
    ) -> Outcome {
        let (max_bps, burst) = self.bandwidth();
        let Some(&idx) = self.by_tuple.get(&tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        let Some(SendIndication { peer, start, len }) = SendIndication::decode(msg) else {
            return self.drop(DropReason::Malformed);
        };
        if self
            .shared
            .check_peer_policy(peer, true, RelayTransport::Udp)
            .is_err()
        {
            self.stats.policy_denied.inc();
            return self.drop(DropReason::PolicyDenied);
        }
        let Some(alloc) = self.slots.get_mut(idx as usize).and_then(|s| s.as_mut()) else {
            return self.drop(DropReason::NoAllocation);
        };
        if alloc.expires <= now {
            return self.drop(DropReason::NoAllocation);
        }
        if alloc.tcp.is_some() {
            return self.drop(DropReason::TcpAllocation);
        }
        // A peer of a family the allocation has no relay for matches no permission.
        let Some(relay) = alloc.relay_for(peer.ip()) else {
            return self.drop(DropReason::NoPermission);
        };
        if !alloc.permitted(peer.ip(), now) {
            return self.drop(DropReason::NoPermission);
        }
        if !alloc.count_out(&self.stats, len, (max_bps, burst), now) {
            return Outcome::Dropped(DropReason::RateLimited);
        }
        self.stats.relayed_out_send_indications.inc();
        debug_assert!(packet.len() >= start + len);
        Outcome::Forward {
            relay,
            peer: self.shared.config.local_form(peer),
            start,
            len,
        }
    }
}

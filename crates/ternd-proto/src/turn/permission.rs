//! CreatePermission (RFC 8656 §10), the peer check every request naming a peer goes
//! through (family, then policy), and the re-check of permissions and channels after a
//! policy reload.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::Server;
use super::allocation::Allocation;
use super::codes::{self, Code};
use super::respond::Reply;
use super::types::{Lease, RelayTransport};
use crate::stun::{Attribute, Message, attr_type};

/// A CreatePermission request, decoded: its XOR-PEER-ADDRESSes in order, up to the first
/// malformed one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CreatePermissionRequest {
    peers: Vec<SocketAddr>,
    /// An XOR-PEER-ADDRESS after `peers` did not decode.
    malformed: bool,
}

impl CreatePermissionRequest {
    fn decode(msg: &Message<'_>) -> Self {
        let tid = msg.transaction_id();
        let mut peers = Vec::new();
        for raw in msg
            .attributes()
            .filter(|a| a.typ == attr_type::XOR_PEER_ADDRESS)
        {
            match Attribute::decode(raw, &tid) {
                Ok(Attribute::XorPeerAddress(p)) => peers.push(p),
                _ => {
                    return Self {
                        peers,
                        malformed: true,
                    };
                }
            }
        }
        Self {
            peers,
            malformed: false,
        }
    }
}

impl Server {
    /// Validates one XOR-PEER-ADDRESS for an allocation: family, then policy (on the
    /// allocation's relay transport). `Ok(Some(lease))`: allowed only as a live relay of
    /// this server ([`super::Shared::check_peer_policy`]).
    pub(super) fn check_peer(
        &self,
        alloc: &Allocation,
        peer: SocketAddr,
        with_port: bool,
    ) -> Result<Option<Lease>, Code> {
        if alloc.relay_for(peer.ip()).is_none() {
            return Err(codes::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        self.shared
            .check_peer_policy(peer, with_port, alloc.relay_transport())
            .map_err(|denied| {
                self.stats.policy_denied.inc();
                match denied {
                    crate::policy::Denied::Default(_) => self.stats.peer_denied_default.inc(),
                    crate::policy::Denied::Explicit(_) => self.stats.peer_denied_explicit.inc(),
                    _ => self.stats.peer_denied_service_port.inc(),
                }
                self.why.set(Some(super::refusal::Refusal::Peer(denied)));
                codes::FORBIDDEN
            })
    }

    /// Answers an authenticated CreatePermission for the allocation in slot `idx`.
    pub(super) fn create_permission(
        &mut self,
        reply: &Reply<'_, '_>,
        idx: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let req = CreatePermissionRequest::decode(msg);
        // Each peer in order, as far as they decode; then the malformed one, if any.
        let alloc = self.slots.get(idx as usize)?.as_ref()?;
        for &peer in &req.peers {
            if let Err(code) = self.check_peer(alloc, peer, false) {
                return self.error(reply, code, out);
            }
        }
        if req.malformed || req.peers.is_empty() {
            return self.error(reply, codes::BAD_REQUEST, out);
        }
        let max_permissions = self.limits().max_permissions;
        let alloc = self.slots.get_mut(idx as usize)?.as_mut()?;
        let mut new: Vec<IpAddr> = req
            .peers
            .iter()
            .map(|p| p.ip())
            .filter(|ip| !alloc.permissions.contains_key(ip))
            .collect();
        new.sort_unstable();
        new.dedup();
        if alloc.permissions.len() + new.len() > max_permissions {
            return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
        }
        for p in &req.peers {
            alloc.permit(p.ip(), now);
        }
        self.reschedule(idx);
        let b = self.start(msg, msg.message_type().success(), out)?;
        self.finish(reply, b)
    }

    /// After a policy reload, drops the permissions and channels of allocation `idx` that
    /// the new policy denies ("checked again at send time"). Cheap when nothing changed.
    #[inline]
    pub(super) fn revalidate(&mut self, idx: u32) {
        let generation = self.shared.policy_generation();
        let Some(Some(alloc)) = self.slots.get_mut(idx as usize) else {
            return;
        };
        if alloc.policy_generation == generation {
            return;
        }
        alloc.policy_generation = generation;
        let shared = &self.shared;
        let transport = alloc.relay_transport();
        alloc.permissions.retain(|ip, _| {
            shared
                .check_peer_policy(SocketAddr::new(*ip, 0), false, transport)
                .is_ok()
        });
        let mut gone = Vec::new();
        alloc.channels.retain(|&n, c| {
            match shared.check_peer_policy(c.peer, true, RelayTransport::Udp) {
                Ok(lease) => {
                    c.exempt = lease;
                    true
                }
                Err(_) => {
                    gone.push((n, *c));
                    false
                }
            }
        });
        for (n, c) in gone {
            alloc.channel_by_peer.remove(&c.peer);
            if let Some(cmd) = alloc.unbound(n, &c) {
                self.commands.push_back(cmd);
            }
        }
    }
}

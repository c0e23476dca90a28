//! Allocate (RFC 8656 §7, RFC 6156 / ADDITIONAL-ADDRESS-FAMILY, RFC 6062 §5.1): decode the
//! request ([`AllocateRequest`]), validate it, decide (reservation, families, lifetime,
//! quota), open the relay sockets through [`Relays`], answer, and install the allocation.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Server;
use super::admission::Step;
use super::allocation::{Allocation, TokenBucket};
use super::authn::Authenticated;
use super::codes::{self, Code};
use super::command::{Command, RelayAddr};
use super::refusal::Refusal;
use super::relays::Relays;
use super::respond::Reply;
use super::shared::{QuotaExceeded, RESERVATION_LIFETIME, Reservation};
use super::tcp::{TRANSPORT_TCP, TcpAllocation};
use super::types::{FiveTuple, RelayTransport, TRANSPORT_UDP, Traffic, Transport};
use crate::stun::{AddressFamily, Attribute, AttributeType, Message, attr_type};

/// ADDITIONAL-ADDRESS-FAMILY under the code point of draft-ietf-tram-turn-ipv6 that
/// coturn's clients still send (RFC 8656 assigned 0x8000).
const LEGACY_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8032;
/// ADDRESS-ERROR-CODE under that draft's code point (RFC 8656: 0x8001).
const LEGACY_ADDRESS_ERROR_CODE: u16 = 0x8033;
/// Relay port choices tried before answering 508.
const PORT_ATTEMPTS: usize = 64;

/// An Allocate request, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AllocateRequest {
    /// REQUESTED-TRANSPORT: UDP, or TCP (RFC 6062).
    transport: RelayTransport,
    /// LIFETIME, if asked.
    lifetime: Option<Duration>,
    /// EVEN-PORT and its R bit (reserve the next port too).
    even_port: Option<bool>,
    /// RESERVATION-TOKEN: claim a port reserved by an earlier EVEN-PORT R=1.
    token: Option<[u8; 8]>,
    /// REQUESTED-ADDRESS-FAMILY.
    family: Option<AddressFamily>,
    /// ADDITIONAL-ADDRESS-FAMILY (IPv6) asks for a dual allocation: the attribute type to
    /// answer ADDRESS-ERROR-CODE under (RFC 8656's, or the draft's that coturn sends).
    dual: Option<AttributeType>,
    /// DONT-FRAGMENT.
    dont_fragment: bool,
}

impl AllocateRequest {
    /// Decodes the attributes and checks how they combine (RFC 8656 §7.2, RFC 6062 §5.1):
    /// 442 for a transport not offered, 400 for anything malformed or not allowed together.
    fn decode(msg: &Message<'_>, tcp_enabled: bool, client: Transport) -> Result<Self, Code> {
        let transport = match msg.get_decoded(attr_type::REQUESTED_TRANSPORT) {
            Some(Ok(Attribute::RequestedTransport(TRANSPORT_UDP))) => RelayTransport::Udp,
            Some(Ok(Attribute::RequestedTransport(TRANSPORT_TCP))) if tcp_enabled => {
                RelayTransport::Tcp
            }
            Some(Ok(Attribute::RequestedTransport(_))) => {
                return Err(codes::UNSUPPORTED_TRANSPORT_PROTOCOL);
            }
            _ => return Err(codes::BAD_REQUEST),
        };
        // RFC 6062 §5.1: a TCP allocation needs a TCP or TLS client connection, and takes
        // none of DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN.
        if transport == RelayTransport::Tcp
            && (client == Transport::Udp
                || [
                    attr_type::DONT_FRAGMENT,
                    attr_type::EVEN_PORT,
                    attr_type::RESERVATION_TOKEN,
                ]
                .iter()
                .any(|&t| msg.get(t).is_some()))
        {
            return Err(codes::BAD_REQUEST);
        }
        let even_port = match msg.get_decoded(attr_type::EVEN_PORT) {
            Some(Ok(Attribute::EvenPort(r))) => Some(r),
            Some(Err(_)) => return Err(codes::BAD_REQUEST),
            _ => None,
        };
        let token = match msg.get_decoded(attr_type::RESERVATION_TOKEN) {
            Some(Ok(Attribute::ReservationToken(t))) => Some(t),
            Some(Err(_)) => return Err(codes::BAD_REQUEST),
            _ => None,
        };
        let family = match msg.get_decoded(attr_type::REQUESTED_ADDRESS_FAMILY) {
            Some(Ok(Attribute::RequestedAddressFamily(f))) => Some(f),
            Some(Err(_)) => return Err(codes::BAD_REQUEST),
            _ => None,
        };
        // ADDITIONAL-ADDRESS-FAMILY asks for a dual allocation: only IPv6 is valid there,
        // and it excludes REQUESTED-ADDRESS-FAMILY, RESERVATION-TOKEN and EVEN-PORT with
        // R=1 (RFC 8656 §7.2).
        // coturn's clients (4.6 and older, `turnutils_uclient -Z`) send it under its draft
        // code point, 0x8032, and read ADDRESS-ERROR-CODE under 0x8033: answered in kind.
        let dual = match msg.get_decoded(attr_type::ADDITIONAL_ADDRESS_FAMILY) {
            Some(Ok(Attribute::AdditionalAddressFamily(AddressFamily::V6))) => {
                Some(attr_type::ADDRESS_ERROR_CODE)
            }
            Some(_) => return Err(codes::BAD_REQUEST),
            None => match msg.get(LEGACY_ADDITIONAL_ADDRESS_FAMILY).map(|a| a.value) {
                Some([2, 0, 0, 0]) => Some(LEGACY_ADDRESS_ERROR_CODE),
                Some(_) => return Err(codes::BAD_REQUEST),
                None => None,
            },
        };
        if dual.is_some() && (family.is_some() || token.is_some() || even_port == Some(true)) {
            return Err(codes::BAD_REQUEST);
        }
        if token.is_some() && (even_port.is_some() || family.is_some()) {
            return Err(codes::BAD_REQUEST);
        }
        let lifetime = match msg.get_decoded(attr_type::LIFETIME) {
            Some(Ok(Attribute::Lifetime(s))) => Some(Duration::from_secs(u64::from(s))),
            _ => None,
        };
        Ok(Self {
            transport,
            lifetime,
            even_port,
            token,
            family,
            dual,
            dont_fragment: msg.get(attr_type::DONT_FRAGMENT).is_some(),
        })
    }

    fn tcp(&self) -> bool {
        self.transport == RelayTransport::Tcp
    }
}

/// Who an EVEN-PORT R=1 reservation would be counted against, and its token once made.
struct Reserving<'a> {
    user: &'a str,
    client: IpAddr,
    token: Option<[u8; 8]>,
}

/// What a successful Allocate answers with.
struct Granted<'a> {
    /// (bound, advertised) per relayed address, the first one the primary.
    relayed: &'a [(SocketAddr, SocketAddr)],
    /// A dual allocation's family that could not be served: ADDRESS-ERROR-CODE's
    /// attribute type, the family and the code.
    address_error: Option<(AttributeType, AddressFamily, Code)>,
    lifetime: Duration,
    /// A fresh RESERVATION-TOKEN (EVEN-PORT R=1).
    token: Option<[u8; 8]>,
}

impl Server {
    /// Answers an authenticated Allocate on `tuple` (`existing`: the 5-tuple's allocation).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn allocate(
        &mut self,
        reply: &Reply<'_, '_>,
        auth: Authenticated,
        existing: Option<u32>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        let req = AllocateRequest::decode(msg, self.shared.tcp.enabled, tuple.transport);
        if existing.is_some() {
            return self.error(reply, codes::ALLOCATION_MISMATCH, out);
        }
        if self.shared.is_draining() || self.shared.over_capacity() {
            // Shutting down, or full: no new allocations here (existing ones keep
            // relaying); the client is sent to another node if there is one.
            self.stats.capacity_rejections.inc();
            return match self.shared.alternate_for(&tuple) {
                Some(alt) => {
                    self.stats.redirects.inc();
                    self.try_alternate(reply, alt, out)
                }
                None => {
                    self.why.set(Some(Refusal::Draining));
                    self.error(reply, codes::INSUFFICIENT_CAPACITY, out)
                }
            };
        }
        let req = match req {
            Ok(r) => r,
            Err(code) => return self.error(reply, code, out),
        };
        let now_ms = self.shared.config.unix_ms_at(now);
        if self
            .shared
            .with_cluster(|c| c.is_revoked(&auth.user, auth.expiry_unix, now_ms))
        {
            self.stats.revoked_rejections.inc();
            self.why.set(Some(Refusal::Revoked));
            return self.error(reply, codes::FORBIDDEN, out);
        }
        let lifetime = self
            .shared
            .config
            .granted_lifetime(req.lifetime, auth.expiry_unix, now);
        if lifetime.is_zero() {
            return self.challenge(msg, codes::UNAUTHORIZED, tuple.client, now, out);
        }
        let admitted = match self.admission_step(msg, tuple, &auth.user, now) {
            Step::Local => None,
            Step::Wait => return Some(0),
            Step::Granted(id) => Some(id),
            Step::Refused => {
                self.stats.cluster_quota_rejections.inc();
                self.why.set(Some(Refusal::ClusterQuota));
                return self.error(reply, codes::ALLOCATION_QUOTA_REACHED, out);
            }
            Step::Busy => {
                self.stats.capacity_rejections.inc();
                return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
            }
        };
        let user = admitted.map(|_| auth.user.clone());
        let answer = self.grant(
            reply, auth, req, lifetime, admitted, tuple, now, out, relays,
        );
        if let (Some(id), Some(user)) = (admitted, user)
            && !self.by_tuple.contains_key(&tuple)
        {
            // Admitted by the cluster, refused here after all: give the slot back.
            self.commands.push_back(Command::Withdrawn { id, user });
        }
        answer
    }

    /// Grants a checked (and, on a cluster, admitted: `id`) Allocate if the reservation,
    /// families, local quotas and ports allow.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        reply: &Reply<'_, '_>,
        auth: Authenticated,
        req: AllocateRequest,
        lifetime: Duration,
        id: Option<u64>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let msg = reply.msg;
        let tcp = req.tcp();
        let dual = req.dual.is_some();
        // A RESERVATION-TOKEN names the relayed address, family included (§7.2 step 5
        // comes before the family checks).
        let reserved = match req.token {
            Some(t) => {
                // The claiming Allocate takes a quota slot of its own below.
                match self.shared.take_reservation(&t) {
                    Some(r) if r.expires > now => Some(r.addr),
                    Some(r) => {
                        // Expired but not yet swept: release it here, or nobody will.
                        relays.release(r.addr);
                        return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
                    }
                    None => return self.error(reply, codes::INSUFFICIENT_CAPACITY, out),
                }
            }
            None => None,
        };
        let release_reserved = |relays: &mut dyn Relays| {
            if let Some(a) = reserved {
                relays.release(a);
            }
        };
        // The families to serve, in order (a dual allocation: IPv4, then IPv6), each with
        // where its relay binds (`None`: not configured here).
        let (relay_v4, relay_v6) = (self.shared.config.relay_v4, self.shared.config.relay_v6);
        let config_of = |f: AddressFamily| match f {
            AddressFamily::V4 => relay_v4,
            AddressFamily::V6 => relay_v6,
        };
        let wanted: &[AddressFamily] = if dual {
            &[AddressFamily::V4, AddressFamily::V6]
        } else {
            match reserved.map(|a| AddressFamily::of(a.ip())).or(req.family) {
                Some(AddressFamily::V6) => &[AddressFamily::V6],
                _ => &[AddressFamily::V4],
            }
        };
        // A dual TCP allocation serves IPv4 only (RFC 6062 relays one family).
        let servable =
            |f: AddressFamily| config_of(f).is_some() && !(tcp && dual && f == AddressFamily::V6);
        if !wanted.iter().any(|&f| servable(f)) {
            release_reserved(relays);
            return self.error(reply, codes::ADDRESS_FAMILY_NOT_SUPPORTED, out);
        }
        // EVEN-PORT R=1 holds a second port: it counts as a second allocation.
        let slots = 1 + u32::from(req.even_port == Some(true));
        if let Err(which) = self.shared.quota_take(&auth.user, tuple.client.ip(), slots) {
            release_reserved(relays);
            // A user over its quota gets 486; a server at its total capacity, 508 (§7.2).
            let code = match which {
                QuotaExceeded::User => {
                    self.stats.quota_rejections.inc();
                    self.why.set(Some(Refusal::UserQuota));
                    codes::ALLOCATION_QUOTA_REACHED
                }
                QuotaExceeded::Ip => {
                    self.stats.ip_quota_rejections.inc();
                    self.why.set(Some(Refusal::IpQuota));
                    codes::ALLOCATION_QUOTA_REACHED
                }
                QuotaExceeded::Total => {
                    self.stats.total_quota_rejections.inc();
                    self.why.set(Some(Refusal::TotalQuota));
                    codes::INSUFFICIENT_CAPACITY
                }
            };
            return self.error(reply, code, out);
        }
        // The relay sockets: (bound, advertised) per family served; the families that
        // could not be served, with their ADDRESS-ERROR-CODE.
        let mut reserving = Reserving {
            user: &auth.user,
            client: tuple.client.ip(),
            token: None,
        };
        let mut opened: Vec<(SocketAddr, SocketAddr)> = Vec::with_capacity(2);
        let mut refused: Option<(AddressFamily, Code)> = None;
        for &f in wanted {
            let Some(relay_addr) = config_of(f).filter(|_| servable(f)) else {
                refused = Some((f, codes::ADDRESS_FAMILY_NOT_SUPPORTED));
                continue;
            };
            let bound = match reserved {
                Some(addr) => relays.claim(addr, req.dont_fragment).ok().map(|_| addr),
                None if tcp => self.open_tcp_relay(relay_addr.bind, relays),
                None => self.open_relay(
                    relay_addr.bind,
                    req.even_port,
                    req.dont_fragment,
                    now,
                    relays,
                    &mut reserving,
                ),
            };
            match bound {
                Some(relay) => {
                    let advertise_ip = if relay.ip() == relay_addr.bind {
                        relay_addr.advertise
                    } else {
                        relay.ip()
                    };
                    opened.push((relay, SocketAddr::new(advertise_ip, relay.port())));
                }
                None => refused = Some((f, codes::INSUFFICIENT_CAPACITY)),
            }
        }
        let new_token = reserving.token;
        if slots == 2 && new_token.is_none() {
            // No reservation was made (a TCP allocation reserves nothing).
            self.shared.quota_release(&auth.user, tuple.client.ip());
        }
        let Some(&(relay, advertised)) = opened.first() else {
            self.shared.quota_release(&auth.user, tuple.client.ip());
            self.stats.capacity_rejections.inc();
            self.why.set(Some(Refusal::NoRelayPort));
            return self.error(reply, codes::INSUFFICIENT_CAPACITY, out);
        };
        let granted = Granted {
            relayed: &opened,
            address_error: req
                .dual
                .and_then(|attr| refused.map(|(f, code)| (attr, f, code))),
            lifetime,
            token: new_token,
        };

        // The success response, kept for retransmissions. If it cannot be written, undo.
        let Some(len) = self.allocate_success(reply, &granted, tuple, out) else {
            for &(r, _) in &opened {
                self.commands.push_back(Command::CloseRelay {
                    relay: RelayAddr(r),
                });
            }
            if let Some(t) = new_token
                && let Some(r) = self.shared.take_reservation(&t)
            {
                relays.release(r.addr);
            }
            self.shared.quota_release(&auth.user, tuple.client.ip());
            return None;
        };
        let alloc = Allocation {
            tuple,
            relay,
            advertised,
            additional: opened.get(1).copied(),
            username: auth.username,
            user: auth.user,
            key: auth.key,
            algorithm: auth.algorithm,
            expires: now + lifetime,
            credential_expiry_unix: auth.expiry_unix,
            started: now,
            started_unix: self.shared.config.unix_at(now),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_by_peer: HashMap::new(),
            allocate_response: (msg.transaction_id(), out[..len].to_vec()),
            traffic: Traffic::default(),
            buckets: [TokenBucket::new(now, self.bandwidth().1); 2],
            policy_generation: self.shared.policy_generation(),
            scheduled: now + lifetime,
            tcp: tcp.then(TcpAllocation::default),
            reservation: new_token,
            id: id.unwrap_or_else(|| {
                self.next_id += 1;
                self.id_prefix | self.next_id
            }),
        };
        self.install(alloc, &opened, req.transport, now);
        Some(len)
    }

    /// Puts a new allocation in its slot, its indexes and the timer heap, and marks its
    /// relayed addresses live.
    fn install(
        &mut self,
        alloc: Allocation,
        opened: &[(SocketAddr, SocketAddr)],
        transport: RelayTransport,
        now: Instant,
    ) {
        let (tuple, relay, advertised, additional, expires) = (
            alloc.tuple,
            alloc.relay,
            alloc.advertised,
            alloc.additional,
            alloc.expires,
        );
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(alloc);
                i
            }
            None => {
                self.slots.push(Some(alloc));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_tuple.insert(tuple, idx);
        self.shared
            .add_live_relays(transport, opened.iter().flat_map(|&(r, a)| [r, a]));
        for &(r, _) in opened {
            self.by_relay.insert(r, idx);
        }
        self.timers.push(std::cmp::Reverse((expires, idx)));
        self.stats.allocations_created.inc();
        match tuple.transport {
            Transport::Udp => self.stats.allocations_created_udp.inc(),
            Transport::Tcp => self.stats.allocations_created_tcp.inc(),
            Transport::Tls => self.stats.allocations_created_tls.inc(),
        }
        let lifetime = expires.saturating_duration_since(now);
        tracing::debug!(client = %tuple.client, %relay, %advertised, additional = ?additional.map(|a| a.1), lifetime = lifetime.as_secs(), "allocation created");
    }

    fn allocate_success(
        &self,
        reply: &Reply<'_, '_>,
        g: &Granted<'_>,
        tuple: FiveTuple,
        out: &mut [u8],
    ) -> Option<usize> {
        let msg = reply.msg;
        let mut b = self.start(msg, msg.message_type().success(), out)?;
        for &(_, advertised) in g.relayed {
            b.add(&Attribute::XorRelayedAddress(advertised)).ok()?;
        }
        if let Some((typ, family, code)) = g.address_error {
            let mut value = [0u8; 64];
            let n = Attribute::AddressErrorCode(family, code)
                .encode_value(&msg.transaction_id(), &mut value)
                .ok()?;
            b.add_raw(typ, &value[..n]).ok()?;
        }
        b.add(&Attribute::Lifetime(
            g.lifetime.as_secs().min(u64::from(u32::MAX)) as u32,
        ))
        .ok()?;
        if let Some(t) = g.token {
            b.add(&Attribute::ReservationToken(t)).ok()?;
        }
        b.add(&Attribute::XorMappedAddress(tuple.client)).ok()?;
        self.finish(reply, b)
    }

    /// Picks a port at random in the range (even if asked, with the next one reserved if
    /// R=1) and asks the I/O layer to bind it; retries on ports in use.
    fn open_relay(
        &mut self,
        ip: IpAddr,
        even_port: Option<bool>,
        dont_fragment: bool,
        now: Instant,
        relays: &mut dyn Relays,
        reserving: &mut Reserving<'_>,
    ) -> Option<SocketAddr> {
        let range = self.shared.config.ports;
        let span = u64::from(range.hi - range.lo) + 1;
        for _ in 0..PORT_ATTEMPTS {
            let mut port = range.lo as u64 + self.secret_rng.next() % span;
            if even_port.is_some() {
                port &= !1;
                if port < u64::from(range.lo) {
                    port += 2;
                }
                if port > u64::from(range.hi)
                    || (even_port == Some(true) && port + 1 > u64::from(range.hi))
                {
                    continue;
                }
            }
            let addr = SocketAddr::new(ip, port as u16);
            if even_port == Some(true) {
                let next = SocketAddr::new(ip, port as u16 + 1);
                if relays.reserve(next).is_err() {
                    continue;
                }
                if relays.open(addr, dont_fragment).is_err() {
                    relays.release(next);
                    continue;
                }
                let t = self.secret_rng.next().to_be_bytes();
                if let Ok(mut r) = self.shared.reservations.lock() {
                    r.insert(
                        t,
                        Reservation {
                            addr: next,
                            expires: now + RESERVATION_LIFETIME,
                            user: reserving.user.to_string(),
                            client: reserving.client,
                        },
                    );
                }
                reserving.token = Some(t);
                return Some(addr);
            }
            match relays.open(addr, dont_fragment) {
                Ok(()) => return Some(addr),
                Err(_) => continue,
            }
        }
        None
    }

    /// Picks a random port in the range and asks the I/O layer to listen on it; retries on
    /// ports in use.
    fn open_tcp_relay(&mut self, ip: IpAddr, relays: &mut dyn Relays) -> Option<SocketAddr> {
        let range = self.shared.config.ports;
        let span = u64::from(range.hi - range.lo) + 1;
        for _ in 0..PORT_ATTEMPTS {
            let port = u64::from(range.lo) + self.secret_rng.next() % span;
            let addr = SocketAddr::new(ip, port as u16);
            match relays.listen_tcp(addr) {
                Ok(()) => return Some(addr),
                Err(e) if e.kind() == io::ErrorKind::Unsupported => return None,
                Err(_) => continue,
            }
        }
        None
    }
}

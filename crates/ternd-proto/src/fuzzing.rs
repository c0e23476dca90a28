//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and must never panic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::stun::channel::{ChannelData, ChannelRange};
use crate::stun::stream::{self, StreamBuffer};
use crate::stun::{Attribute, Message, MessageBuilder, ParseOptions};
use crate::turn::{FiveTuple, Server, Stats, Transport, testing};

/// Parses `data` as a STUN message (with and without RFC 3489 leniency), decodes every
/// attribute, runs every verification, re-encodes what decoded, and feeds the core.
pub fn message(data: &[u8]) {
    for allow_rfc3489 in [false, true] {
        let opts = ParseOptions {
            allow_rfc3489,
            ..ParseOptions::default()
        };
        let Ok(msg) = Message::parse_with(data, opts) else {
            continue;
        };
        let tid = msg.transaction_id();
        let mut out = [0u8; 2048];
        if let Ok(mut b) = MessageBuilder::new(&mut out, msg.message_type(), tid) {
            for raw in msg.attributes() {
                if let Ok(attr) = Attribute::decode(raw, &tid) {
                    let _ = b.add(&attr);
                    // Typed attributes re-encode to what was decoded.
                    let mut v = [0u8; 2048];
                    if let Ok(n) = attr.encode_value(&tid, &mut v) {
                        let again = crate::stun::RawAttribute {
                            typ: raw.typ,
                            value: &v[..n],
                            offset: 0,
                        };
                        assert_eq!(Attribute::decode(again, &tid).ok(), Some(attr));
                    }
                }
            }
        }
        let _ = msg.verify_integrity(b"key");
        let _ = msg.verify_integrity_sha256(b"key");
        let _ = msg.verify_fingerprint();
        let mut unknown = [0u16; 8];
        let _ = msg.unknown_comprehension_required(crate::stun::attr_type::is_known, &mut unknown);
    }
    let anchor = Instant::now();
    let allow = vec!["192.0.2.0/24".parse().unwrap_or_else(|_| unreachable!())];
    let shared = testing::shared(anchor, allow, |c| c.stun_backward_compatibility = true);
    let mut core = Server::new(Arc::new(shared), Arc::new(Stats::default()), [1; 32]);
    let mut relays = testing::FakeRelays::default();
    let tuple = FiveTuple {
        client: SocketAddr::from(([192, 0, 2, 1], 4000)),
        server: SocketAddr::from(([192, 0, 2, 2], 3478)),
        transport: Transport::Udp,
    };
    let mut out = [0u8; 1500];
    let _ = core.handle_client(data, tuple, anchor, &mut out, &mut relays);
    relays.drain(&mut core);
}

/// Parses `data` as ChannelData under both channel ranges.
pub fn channel_data(data: &[u8]) {
    for range in [ChannelRange::RFC8656, ChannelRange::RFC5766] {
        if let Ok(cd) = ChannelData::parse(data, range) {
            assert!(range.contains(cd.channel));
            assert!(cd.data.len() + 4 <= data.len());
            let mut out = [0u8; 70_000];
            let n = ChannelData::encode(cd.channel, cd.data, true, &mut out).unwrap_or(0);
            assert_eq!(ChannelData::parse(&out[..n], range).ok(), Some(cd));
        }
    }
}

/// Splits `data` as a TCP stream: the first byte picks a chunk size for the reads, the rest
/// is the stream. Every frame yielded is at most the limit and parses as what it claims.
pub fn stream(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 64) + 1;
    let max = 1024;
    let range = ChannelRange::RFC5766;
    let mut sb = StreamBuffer::new(max, range);
    'outer: for piece in rest.chunks(chunk) {
        let space = sb.space();
        let n = piece.len().min(space.len());
        space[..n].copy_from_slice(&piece[..n]);
        sb.filled(n);
        loop {
            match sb.next_frame() {
                Ok(Some((kind, frame))) => {
                    assert!(frame.len() <= max);
                    match kind {
                        stream::FrameKind::Stun => {
                            let _ = Message::parse(frame);
                        }
                        stream::FrameKind::ChannelData => {
                            assert!(ChannelData::parse(frame, range).is_ok());
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
}

/// Parses `data` as a PROXY protocol header (v1 or v2) and checks that parsing is
/// incremental: every prefix answers "need more" until the first decision, which no longer
/// prefix contradicts; a complete header is within bounds and parses the same alone; and
/// addresses it carries survive a v1 round trip.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy::{self, MAX_HEADER_LEN, Proxied};

    let full = proxy::parse(data);
    let mut decided = None;
    for k in 0..=data.len().min(MAX_HEADER_LEN) {
        let r = proxy::parse(&data[..k]);
        match decided {
            None if r != Ok(None) => decided = Some(r),
            None => {}
            Some(Err(_)) => assert!(r.is_err()),
            Some(d) => assert_eq!(r, d),
        }
    }
    match decided {
        None => assert!(data.len() < MAX_HEADER_LEN && full == Ok(None)),
        Some(Err(_)) => assert!(full.is_err()),
        Some(d) => assert_eq!(full, d),
    }
    let Ok(Some((proxied, n))) = full else {
        return;
    };
    assert!(n <= data.len() && n <= MAX_HEADER_LEN);
    assert_eq!(proxy::parse(&data[..n]), full);
    if let Proxied::Addresses {
        source,
        destination,
    } = proxied
    {
        assert_eq!(source.is_ipv4(), destination.is_ipv4());
        let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
        let line = format!(
            "PROXY {proto} {} {} {} {}\r\n",
            source.ip(),
            destination.ip(),
            source.port(),
            destination.port()
        );
        assert_eq!(
            proxy::parse(line.as_bytes()),
            Ok(Some((proxied, line.len())))
        );
    }
}

/// Parses `data` (lossy UTF-8) as a REST username under a few separators. When it parses,
/// the expiry is the digits before the first separator (leading zeros aside) and the user
/// is everything after it.
pub fn rest_username(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for sep in [':', '-', '.', '|', 'é'] {
        let Some((expiry, user)) = crate::auth::rest::parse_username(&text, sep) else {
            continue;
        };
        let (digits, rest) = match text.split_once(sep) {
            Some((d, r)) => (d, r),
            None => (&*text, ""),
        };
        assert_eq!(user, rest);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= 20);
        // The expiry re-formats to a prefix of the input once leading zeros are dropped.
        let trimmed = digits.trim_start_matches('0');
        let formatted = expiry.to_string();
        if trimmed.is_empty() {
            assert_eq!(expiry, 0);
        } else {
            assert_eq!(formatted, trimmed);
        }
        assert!(text.starts_with(digits));
    }
}

/// Reads the `turn_core` operation stream; past the end every read is `None`.
struct OpReader<'a> {
    data: &'a [u8],
}

impl OpReader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// UNIX time of the `turn_core` clock anchor (as in `turn::testing::shared`).
const CORE_UNIX0: u64 = 1_700_000_000;
/// Clients of the `turn_core` driver: three over UDP (one from another IP), one over TCP.
const CORE_CLIENTS: usize = 4;
/// Most operations one `turn_core` input runs.
const CORE_MAX_OPS: usize = 256;
/// Whether `turn_core` checks that the core's timer heap stays within
/// `2 × allocations + Server::TIMER_SLACK`. The fuzzer found stale entries piling up
/// (`fuzz/regressions/turn_core/timer_heap_stale_entries.bin`); the core now sweeps them.
const CHECK_TIMER_HEAP: bool = true;

/// The peers `turn_core` addresses: allowed ones, an IPv6 one, denied ones (private,
/// loopback, mapped loopback), the relay's own advertised address and a mapped form of an
/// allowed one.
fn core_peers() -> [SocketAddr; 10] {
    [
        SocketAddr::from(([198, 51, 100, 20], 5000)),
        SocketAddr::from(([198, 51, 100, 20], 5001)),
        SocketAddr::from(([198, 51, 100, 21], 6000)),
        "[2001:db8::1]:7000"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        SocketAddr::from(([10, 0, 0, 1], 80)),
        SocketAddr::from(([127, 0, 0, 1], 3478)),
        "[::ffff:127.0.0.1]:3478"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        SocketAddr::from(([198, 51, 100, 10], 50000)),
        SocketAddr::from(([198, 51, 100, 10], 3478)),
        "[::ffff:198.51.100.20]:5000"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
    ]
}

/// The `turn_core` driver: a core, fake relay sockets, a fake clock, per-client login
/// state, and the permissions each client was granted (tracked from the responses).
struct CoreDriver {
    server: Server,
    relays: testing::FakeRelays,
    now: Instant,
    tuples: [FiveTuple; CORE_CLIENTS],
    used: [bool; CORE_CLIENTS],
    /// USERNAME and MD5 long-term key of each client.
    creds: Vec<(String, [u8; 16])>,
    nonces: [Option<String>; CORE_CLIENTS],
    /// Permissions granted to each client's current allocation: peer IP → expiry.
    perms: Vec<std::collections::HashMap<std::net::IpAddr, Instant>>,
    next_tid: u32,
    peers: [SocketAddr; 10],
    /// Channels announced bound and not yet unbound: (5-tuple, number).
    bound: std::collections::HashSet<(FiveTuple, u16)>,
}

impl CoreDriver {
    fn new() -> Self {
        let anchor = Instant::now();
        let allow = vec![
            "198.51.100.0/24".parse().unwrap_or_else(|_| unreachable!()),
            "2001:db8::/32".parse().unwrap_or_else(|_| unreachable!()),
        ];
        // Both families (dual allocations) and RFC 5780 on the clients' server address.
        let shared = testing::shared(anchor, allow, |c| {
            c.relay_v6 = Some(crate::turn::RelayAddress {
                bind: "2001:db8::10".parse().unwrap_or_else(|_| unreachable!()),
                advertise: "2001:db8::10".parse().unwrap_or_else(|_| unreachable!()),
            });
            c.rfc5780 = Some(crate::turn::Rfc5780 {
                primary: SocketAddr::from(([192, 0, 2, 10], 3478)),
                alternate: SocketAddr::from(([192, 0, 2, 11], 3479)),
            });
        });
        let server = Server::new(Arc::new(shared), Arc::new(Stats::default()), [9; 32]);
        let udp = |ip: [u8; 4], port| FiveTuple {
            client: SocketAddr::from((ip, port)),
            server: SocketAddr::from(([192, 0, 2, 10], 3478)),
            transport: Transport::Udp,
        };
        let mut tcp = udp([203, 0, 113, 5], 4003);
        tcp.transport = Transport::Tcp;
        let tuples = [
            udp([203, 0, 113, 5], 4000),
            udp([203, 0, 113, 5], 4001),
            udp([203, 0, 113, 6], 4000),
            tcp,
        ];
        let creds = (0..CORE_CLIENTS)
            .map(|k| {
                let (user, password) = if k == 2 {
                    ("alice".to_owned(), "wonderland".to_owned())
                } else {
                    crate::auth::rest::credentials(
                        "s3cret",
                        &format!("fuzz{k}"),
                        CORE_UNIX0 + 30 * 86_400,
                        ':',
                    )
                };
                let key = crate::auth::long_term_key_md5(&user, "example.org", &password)
                    .unwrap_or_else(|_| unreachable!());
                (user, key)
            })
            .collect();
        Self {
            server,
            relays: testing::FakeRelays::default(),
            now: anchor,
            tuples,
            used: [false; CORE_CLIENTS],
            creds,
            nonces: Default::default(),
            perms: vec![Default::default(); CORE_CLIENTS],
            next_tid: 0,
            peers: core_peers(),
            bound: Default::default(),
        }
    }

    fn tid(&mut self) -> crate::stun::TransactionId {
        self.next_tid += 1;
        let mut t = [0xA5; 12];
        t[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        crate::stun::TransactionId(t)
    }

    /// Builds a request or indication; `auth` adds USERNAME, REALM, NONCE and
    /// MESSAGE-INTEGRITY for client `k`.
    fn build(
        &mut self,
        k: usize,
        method: crate::stun::Method,
        class: crate::stun::Class,
        auth: bool,
        attrs: &[Attribute<'_>],
    ) -> Vec<u8> {
        let tid = self.tid();
        let mut buf = [0u8; 1500];
        let Ok(mut b) =
            MessageBuilder::new(&mut buf, crate::stun::MessageType::new(method, class), tid)
        else {
            unreachable!("1500 bytes hold a header")
        };
        for a in attrs {
            let _ = b.add(a);
        }
        if auth {
            let (user, key) = &self.creds[k];
            let _ = b.add(&Attribute::Username(user));
            let _ = b.add(&Attribute::Realm("example.org"));
            if let Some(nonce) = &self.nonces[k] {
                let _ = b.add(&Attribute::Nonce(nonce));
            }
            let _ = b.add_message_integrity(key);
        }
        let n = b.finish();
        buf[..n].to_vec()
    }

    /// Sends `packet` from client `k`, checks the outcome, and returns the response
    /// (class, error code) if there was one. Learns the NONCE of every response.
    fn send(&mut self, k: usize, packet: &[u8]) -> Option<(crate::stun::Class, u16)> {
        let tuple = self.tuples[k];
        self.used[k] = true;
        let mut out = [0u8; 1500];
        let outcome =
            self.server
                .handle_client(packet, tuple, self.now, &mut out, &mut self.relays);
        match outcome {
            crate::turn::Outcome::Reply { len } | crate::turn::Outcome::ReplyVia { len, .. } => {
                assert!(len <= out.len());
                let Ok(m) = Message::parse(&out[..len]) else {
                    panic!("the core answered with a malformed message");
                };
                if let Some(Ok(Attribute::Nonce(n))) = m.get_decoded(crate::stun::attr_type::NONCE)
                {
                    self.nonces[k] = Some(n.to_owned());
                }
                let code = match m.get_decoded(crate::stun::attr_type::ERROR_CODE) {
                    Some(Ok(Attribute::ErrorCode(e))) => e.code,
                    _ => 0,
                };
                Some((m.message_type().class, code))
            }
            crate::turn::Outcome::Forward {
                relay,
                peer,
                start,
                len,
            } => {
                assert!(start + len <= packet.len());
                let Some(alloc) = self.server.allocation(&tuple) else {
                    panic!("forward from {tuple:?} without an allocation");
                };
                // Another allocation's advertised address goes out as its bound one
                // (same-server relaying behind a 1:1 NAT); permissions are by the former.
                let peer = self.server.shared().config.public_form(peer);
                assert_eq!(
                    alloc.relay_for(peer.ip()),
                    Some(relay),
                    "relay of the peer's family"
                );
                let granted = self.perms[k].get(&peer.ip());
                assert!(
                    granted.is_some_and(|&e| e > self.now),
                    "forward to {peer} without a permission"
                );
                assert!(alloc.permitted(peer.ip(), self.now));
                None
            }
            crate::turn::Outcome::Consumed | crate::turn::Outcome::Dropped(_) => None,
        }
    }

    /// Sends an authenticated request, logging in first (the 401 dance) without a nonce,
    /// and once more after a 401/438 that brought a fresh nonce.
    fn request(
        &mut self,
        k: usize,
        method: crate::stun::Method,
        attrs: &[Attribute<'_>],
    ) -> Option<(crate::stun::Class, u16)> {
        use crate::stun::{Class, Method};
        if self.nonces[k].is_none() {
            let login = self.build(
                k,
                Method::ALLOCATE,
                Class::Request,
                false,
                &[Attribute::RequestedTransport(17)],
            );
            let _ = self.send(k, &login);
        }
        let mut result = None;
        for _ in 0..2 {
            let pkt = self.build(k, method, Class::Request, true, attrs);
            result = self.send(k, &pkt);
            if !matches!(result, Some((Class::Error, 401 | 438))) {
                break;
            }
        }
        result
    }

    /// Runs one operation; `None` when the input ran out.
    fn op(&mut self, r: &mut OpReader<'_>) -> Option<()> {
        use crate::stun::{Class, Method};
        let op = r.byte()?;
        let arg = r.byte()?;
        let k = usize::from(arg) % CORE_CLIENTS;
        let flags = arg >> 2;
        match op % 11 {
            // Allocate.
            0 => {
                let transport = if flags & 1 != 0 { 6 } else { 17 };
                let mut attrs = vec![Attribute::RequestedTransport(transport)];
                if flags & 2 != 0 {
                    attrs.push(Attribute::Lifetime(u32::from(r.u16()?)));
                }
                if flags & 4 != 0 {
                    attrs.push(Attribute::DontFragment);
                }
                if flags & 8 != 0 {
                    attrs.push(Attribute::EvenPort(flags & 16 != 0));
                }
                if flags & 32 != 0 {
                    use crate::stun::AddressFamily::{V4, V6};
                    // Families: IPv6 only, dual (RFC 8656 or coturn's draft code point),
                    // and the combinations that must be 400.
                    match r.byte()? % 5 {
                        0 => attrs.push(Attribute::RequestedAddressFamily(V6)),
                        1 => attrs.push(Attribute::AdditionalAddressFamily(V6)),
                        2 => attrs.push(Attribute::AdditionalAddressFamily(V4)),
                        3 => {
                            attrs.push(Attribute::RequestedAddressFamily(V4));
                            attrs.push(Attribute::AdditionalAddressFamily(V6));
                        }
                        _ => attrs.push(Attribute::Unknown {
                            typ: 0x8032,
                            value: &[2, 0, 0, 0],
                        }),
                    }
                }
                if let Some((Class::Success, _)) = self.request(k, Method::ALLOCATE, &attrs) {
                    self.perms[k].clear();
                }
            }
            // CreatePermission for one to three peers.
            1 => {
                let n = 1 + usize::from(flags % 3);
                let mut peers = Vec::new();
                for _ in 0..n {
                    peers.push(self.peers[usize::from(r.byte()?) % self.peers.len()]);
                }
                let attrs: Vec<_> = peers
                    .iter()
                    .map(|&p| Attribute::XorPeerAddress(p))
                    .collect();
                if let Some((Class::Success, _)) =
                    self.request(k, Method::CREATE_PERMISSION, &attrs)
                {
                    for p in peers {
                        self.perms[k].insert(p.ip(), self.now + crate::turn::PERMISSION_LIFETIME);
                    }
                }
            }
            // ChannelBind number → peer (numbers just outside the range too).
            2 => {
                let number = 0x3FFE + u16::from(r.byte()?);
                let peer = self.peers[usize::from(r.byte()?) % self.peers.len()];
                let attrs = [
                    Attribute::ChannelNumber(number),
                    Attribute::XorPeerAddress(peer),
                ];
                if let Some((Class::Success, _)) = self.request(k, Method::CHANNEL_BIND, &attrs) {
                    self.perms[k].insert(peer.ip(), self.now + crate::turn::PERMISSION_LIFETIME);
                }
            }
            // ChannelData on a number with a payload length (padded or not).
            3 => {
                let number = 0x3FFE + u16::from(r.byte()?);
                let len = usize::from(r.byte()?) * 4 + usize::from(flags & 3);
                let mut pkt = vec![0x5A; 4 + len + usize::from(flags & 4)];
                pkt[..2].copy_from_slice(&number.to_be_bytes());
                pkt[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                let _ = self.send(k, &pkt);
            }
            // Send indication.
            4 => {
                let peer = self.peers[usize::from(r.byte()?) % self.peers.len()];
                let len = usize::from(r.byte()?) * 3;
                let payload = vec![0xC3; len];
                let mut attrs = vec![Attribute::XorPeerAddress(peer), Attribute::Data(&payload)];
                if flags & 1 != 0 {
                    attrs.push(Attribute::DontFragment);
                }
                if flags & 2 != 0 {
                    attrs.remove(0);
                }
                let pkt = self.build(k, Method::SEND, Class::Indication, false, &attrs);
                let _ = self.send(k, &pkt);
            }
            // A datagram from a peer to a relay address: client k's, or any port.
            5 => {
                let peer = self.peers[usize::from(r.byte()?) % self.peers.len()];
                let len = usize::from(r.byte()?) * 5;
                // The relay socket of the peer's family (a dual allocation has two).
                let relay = match (flags & 1, self.server.allocation(&self.tuples[k])) {
                    (0, Some(a)) => a.relay_for(peer.ip()).unwrap_or(a.relay),
                    _ => SocketAddr::from(([192, 0, 2, 10], 50000 + u16::from(flags) % 100)),
                };
                self.peer_datagram(relay, peer, len);
            }
            // Refresh (0 deletes).
            6 => {
                let lifetime = u32::from(r.u16()?) % 4000;
                let lifetime = if flags & 1 != 0 { 0 } else { lifetime };
                let attrs = [Attribute::Lifetime(lifetime)];
                if let Some((Class::Success, _)) = self.request(k, Method::REFRESH, &attrs)
                    && lifetime == 0
                {
                    self.perms[k].clear();
                }
            }
            // Time passes.
            7 => {
                let secs = u64::from(r.byte()?) << (flags % 10);
                self.now += std::time::Duration::from_secs(secs);
                self.server.handle_timeout(self.now, &mut self.relays);
            }
            // Raw bytes from a client.
            8 => {
                let n = usize::from(r.byte()?);
                let pkt = r.bytes(n).to_vec();
                let _ = self.send(k, &pkt);
            }
            // Binding, authenticated or not, with RFC 5780 attributes.
            9 => {
                let mut attrs = Vec::new();
                if flags & 2 != 0 {
                    attrs.push(Attribute::ChangeRequest {
                        ip: flags & 4 != 0,
                        port: flags & 8 != 0,
                    });
                }
                if flags & 16 != 0 {
                    attrs.push(Attribute::ResponsePort(r.u16()?));
                }
                if flags & 32 != 0 {
                    attrs.push(Attribute::Padding(
                        &[0u8; 64][..usize::from(r.byte()? % 64)],
                    ));
                }
                if flags & 1 != 0 {
                    let _ = self.request(k, Method::BINDING, &attrs);
                } else {
                    let pkt = self.build(k, Method::BINDING, Class::Request, false, &attrs);
                    let _ = self.send(k, &pkt);
                }
            }
            // A request with a wrong key or a stale nonce.
            _ => {
                if flags & 1 != 0 {
                    self.nonces[k] = Some("obsolete-nonce".to_owned());
                } else {
                    self.creds[k].1[0] ^= 1;
                    let _ = self.request(k, Method::REFRESH, &[Attribute::Lifetime(600)]);
                    self.creds[k].1[0] ^= 1;
                }
            }
        }
        Some(())
    }

    fn peer_datagram(&mut self, relay: SocketAddr, peer: SocketAddr, len: usize) {
        let mut buf = vec![0x3C; crate::turn::PEER_HEADROOM + len + crate::turn::PEER_TAILROOM];
        let outcome = self
            .server
            .handle_peer(relay, peer, &mut buf, len, self.now);
        if let crate::turn::PeerOutcome::ToClient { tuple, start, len } = outcome {
            assert!(start + len <= buf.len());
            let Some(k) = self.tuples.iter().position(|t| *t == tuple) else {
                panic!("data for a client that never spoke: {tuple:?}");
            };
            let Some(alloc) = self.server.allocation(&tuple) else {
                panic!("data for {tuple:?} without an allocation");
            };
            assert!(
                alloc.relay_sockets().any(|r| r == relay),
                "data through a relay socket of another allocation"
            );
            assert!(
                self.perms[k].get(&peer.ip()).is_some_and(|&e| e > self.now),
                "data from {peer} without a permission"
            );
            let frame = &buf[start..start + len];
            match crate::stun::channel::classify(frame, self.server.shared().config.channel_range) {
                crate::stun::channel::PacketKind::ChannelData => {
                    assert!(ChannelData::parse(frame, ChannelRange::RFC8656).is_ok());
                }
                _ => assert!(Message::parse(frame).is_ok(), "malformed Data indication"),
            }
        }
    }

    /// Carries out the core's commands (closing relay sockets) and checks their order:
    /// a channel is announced bound once, unbound once after that, and an allocation ends
    /// with none of its channels still bound.
    fn drain_commands(&mut self) {
        while let Some(cmd) = self.server.poll_command() {
            self.relays.apply(&cmd);
            match cmd {
                crate::turn::Command::ChannelBound { tuple, channel, .. } => {
                    assert!(self.bound.insert((tuple, channel)), "bound twice: {cmd:?}");
                }
                crate::turn::Command::ChannelUnbound { tuple, channel, .. } => {
                    assert!(
                        self.bound.remove(&(tuple, channel)),
                        "unbound unbound: {cmd:?}"
                    );
                }
                crate::turn::Command::AllocationEnded { ref record } => {
                    assert!(
                        !self.bound.iter().any(|(t, _)| t.client == record.client.0),
                        "ended with channels bound: {cmd:?}"
                    );
                }
                _ => {}
            }
        }
    }

    /// The invariants that hold after every operation.
    fn check(&self) {
        let (by_tuple, by_relay, timers) = self.server.table_sizes();
        let used = self.used.iter().filter(|&&u| u).count();
        let sockets: usize = self
            .tuples
            .iter()
            .filter_map(|t| self.server.allocation(t))
            .map(|a| a.relay_sockets().count())
            .sum();
        assert_eq!(by_relay, sockets, "one by_relay entry per relay socket");
        assert!(
            by_tuple <= used,
            "{by_tuple} allocations for {used} clients"
        );
        assert!(
            !CHECK_TIMER_HEAP || timers <= 2 * by_tuple + crate::turn::Server::TIMER_SLACK + 1,
            "{timers} timer entries for {by_tuple} allocations"
        );
        let live: std::collections::HashSet<SocketAddr> = self
            .tuples
            .iter()
            .filter_map(|t| self.server.allocation(t))
            .flat_map(|a| a.relay_sockets().collect::<Vec<_>>())
            .collect();
        assert_eq!(
            live.len(),
            sockets,
            "no relay socket shared by two allocations"
        );
        let open: std::collections::HashSet<SocketAddr> = self
            .relays
            .open
            .union(&self.relays.listening)
            .copied()
            .collect();
        assert_eq!(live, open, "relay sockets differ from live allocations");
    }
}

/// Drives the sans-IO TURN core with a sequence of operations decoded from `data` (two
/// bytes each, op and client/flags, then op-specific bytes): authenticated Allocate,
/// CreatePermission, ChannelBind, ChannelData, Send, peer datagrams, Refresh, time steps,
/// raw client bytes, Binding, bad credentials. After every operation: the tables are
/// bounded, every relay socket open belongs to a live allocation and back, and nothing is
/// forwarded (either way) without a permission granted by a successful response.
pub fn turn_core(data: &[u8]) {
    let mut driver = CoreDriver::new();
    let mut r = OpReader { data };
    for _ in 0..CORE_MAX_OPS {
        if driver.op(&mut r).is_none() {
            break;
        }
        driver.drain_commands();
        driver.check();
    }
}

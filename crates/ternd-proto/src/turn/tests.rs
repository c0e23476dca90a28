//! Byte-level tests of the core with a fake clock and fake relay sockets.

use std::time::{Duration, Instant};

use super::testing::{FakeRelays, shared};
use super::*;
use crate::auth::{long_term_key_md5, long_term_key_sha256, rest};
use crate::stun::{MAGIC_COOKIE, UnknownAttributes};

const UNIX0: u64 = 1_700_000_000;

struct T {
    s: Server,
    r: FakeRelays,
    t0: Instant,
    now: Instant,
    next_tid: u8,
}

fn client(port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::from(([203, 0, 113, 5], port)),
        server: "192.0.2.10:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

struct Creds {
    username: String,
    key: Key,
    realm: String,
    nonce: String,
}

fn rest_creds(valid_for: u64, user: &str) -> (String, [u8; 16], [u8; 32]) {
    let (u, p) = rest::credentials("s3cret", user, UNIX0 + valid_for, ':');
    let k = long_term_key_md5(&u, "example.org", &p).unwrap();
    let k2 = long_term_key_sha256(&u, "example.org", &p).unwrap();
    (u, k, k2)
}

impl T {
    fn new() -> T {
        Self::with(
            vec![
                "198.51.100.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            |_| {},
        )
    }

    fn with(allow: Vec<ipnet::IpNet>, tweak: impl FnOnce(&mut CoreConfig)) -> T {
        let t0 = Instant::now();
        let sh = Arc::new(shared(t0, allow, tweak));
        T {
            s: Server::new(sh, Arc::new(Stats::default()), [42; 32]),
            r: FakeRelays::default(),
            t0,
            now: t0,
            next_tid: 1,
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now, &mut self.r);
    }

    fn tid(&mut self) -> TransactionId {
        self.next_tid = self.next_tid.wrapping_add(1);
        TransactionId([self.next_tid; 12])
    }

    /// Sends a packet; returns the outcome and the reply bytes.
    fn send(&mut self, pkt: &[u8], tuple: FiveTuple) -> (Outcome, Vec<u8>) {
        let mut out = [0u8; 1500];
        let o = self
            .s
            .handle_client(pkt, tuple, self.now, &mut out, &mut self.r);
        let bytes = match o {
            Outcome::Reply { len } => out[..len].to_vec(),
            _ => Vec::new(),
        };
        (o, bytes)
    }

    fn request(
        &mut self,
        method: Method,
        tuple: FiveTuple,
        creds: Option<&Creds>,
        build: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let tid = self.tid();
        let pkt = build_request(method, tid, creds, build);
        self.send(&pkt, tuple).1
    }

    /// The 401 dance: returns credentials with a fresh nonce.
    fn login(&mut self, username: &str, key: Key, tuple: FiveTuple) -> Creds {
        let resp = self.request(Method::ALLOCATE, tuple, None, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(error_code(&m), Some(401));
        let text = |t| match m.get_decoded(t).unwrap().unwrap() {
            Attribute::Realm(s) | Attribute::Nonce(s) => s.to_string(),
            other => panic!("{other:?}"),
        };
        Creds {
            username: username.into(),
            key,
            realm: text(attr_type::REALM),
            nonce: text(attr_type::NONCE),
        }
    }

    fn allocate(&mut self, tuple: FiveTuple, creds: &Creds) -> SocketAddr {
        let resp = self.request(Method::ALLOCATE, tuple, Some(creds), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "{:?}",
            error_code(&m)
        );
        match m
            .get_decoded(attr_type::XOR_RELAYED_ADDRESS)
            .unwrap()
            .unwrap()
        {
            Attribute::XorRelayedAddress(a) => a,
            _ => unreachable!(),
        }
    }
}

fn build_request(
    method: Method,
    tid: TransactionId,
    creds: Option<&Creds>,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
    build(&mut b);
    if let Some(c) = creds {
        b.add(&Attribute::Username(&c.username)).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        match c.key {
            Key::Md5(k) => b.add_message_integrity(&k).unwrap(),
            Key::Sha256(k) => {
                b.add_raw(attr_type::PASSWORD_ALGORITHMS, &[0, 2, 0, 0, 0, 1, 0, 0])
                    .unwrap();
                b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
                    .unwrap();
                b.add_message_integrity_sha256(&k).unwrap()
            }
        }
    }
    let n = b.finish();
    buf[..n].to_vec()
}

fn error_code(m: &Message<'_>) -> Option<u16> {
    match m.get_decoded(attr_type::ERROR_CODE)? {
        Ok(Attribute::ErrorCode(e)) => Some(e.code),
        _ => None,
    }
}

fn code_of(resp: &[u8]) -> Option<u16> {
    error_code(&Message::parse(resp).unwrap())
}

fn lifetime_of(resp: &[u8]) -> u32 {
    match Message::parse(resp)
        .unwrap()
        .get_decoded(attr_type::LIFETIME)
        .unwrap()
        .unwrap()
    {
        Attribute::Lifetime(l) => l,
        _ => unreachable!(),
    }
}

fn logged_in(t: &mut T, port: u16) -> (FiveTuple, Creds, SocketAddr) {
    let tuple = client(port);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let relay = t.allocate(tuple, &c);
    (tuple, c, relay)
}

fn peer(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

// ---------------------------------------------------------------------------------------
// Binding

#[test]
fn binding_v4_and_v6_without_fingerprint_or_software() {
    let mut t = T::new();
    for from in ["192.0.2.1:32853", "[2001:db8::1]:40000"] {
        let mut tuple = client(1);
        tuple.client = from.parse().unwrap();
        let resp = t.request(Method::BINDING, tuple, None, |_| {});
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type(),
            MessageType::new(Method::BINDING, Class::Success)
        );
        assert_eq!(
            m.get_decoded(attr_type::XOR_MAPPED_ADDRESS)
                .unwrap()
                .unwrap(),
            Attribute::XorMappedAddress(from.parse().unwrap())
        );
        assert!(m.get(attr_type::SOFTWARE).is_none());
        assert!(!m.has_fingerprint());
        assert!(!m.has_integrity());
    }
    assert_eq!(t.s.stats().snapshot().binding_responses, 2);
}

#[test]
fn binding_fingerprint_echoed_and_software_when_configured() {
    let mut t = T::with(vec![], |c| c.software = Some("ternd test".into()));
    let resp = t.request(Method::BINDING, client(1), None, |b| {
        b.add_fingerprint().unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.get_decoded(attr_type::SOFTWARE).unwrap().unwrap(),
        Attribute::Software("ternd test")
    );
}

#[test]
fn bad_fingerprint_dropped_and_counted() {
    let mut t = T::new();
    let mut req = build_request(Method::BINDING, TransactionId([1; 12]), None, |b| {
        b.add_fingerprint().unwrap()
    });
    let last = req.len() - 1;
    req[last] ^= 1;
    assert_eq!(
        t.send(&req, client(1)).0,
        Outcome::Dropped(DropReason::BadFingerprint)
    );
    assert_eq!(t.s.stats().snapshot().malformed, 1);
}

#[test]
fn binding_unknown_comprehension_required_gets_420() {
    let mut t = T::new();
    let resp = t.request(Method::BINDING, client(1), None, |b| {
        b.add_raw(0x7F01, b"x").unwrap();
        b.add_raw(0xC001, b"optional is fine").unwrap();
        b.add_raw(0x0003, &[0, 0, 0, 6]).unwrap(); // CHANGE-REQUEST: RFC 5780 is off
        b.add_raw(0x7F01, b"dup").unwrap();
        b.add_fingerprint().unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(420));
    let Attribute::UnknownAttributes(u) = m
        .get_decoded(attr_type::UNKNOWN_ATTRIBUTES)
        .unwrap()
        .unwrap()
    else {
        panic!("no UNKNOWN-ATTRIBUTES");
    };
    assert_eq!(u.iter().collect::<Vec<_>>(), vec![0x7F01, 0x0003]);
    assert_eq!(UnknownAttributes::from_raw(u.as_bytes()), Some(u));
    m.verify_fingerprint().unwrap();
}

#[test]
fn malformed_and_responses_dropped_and_counted() {
    let mut t = T::new();
    let good = build_request(Method::BINDING, TransactionId([1; 12]), None, |_| {});
    let mut bad_top = good.clone();
    bad_top[0] |= 0x80;
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 4]);
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 19],
        good[..good.len() - 1].to_vec(),
        longer,
        bad_top,
        vec![0x99; 100],
    ];
    for c in &cases {
        assert_eq!(
            t.send(c, client(1)).0,
            Outcome::Dropped(DropReason::Malformed),
            "{c:?}"
        );
    }
    assert_eq!(t.s.stats().snapshot().malformed, cases.len() as u64);
    let mut resp = [0u8; 64];
    let b = MessageBuilder::new(
        &mut resp,
        MessageType::new(Method::BINDING, Class::Success),
        TransactionId([1; 12]),
    )
    .unwrap();
    let n = b.finish();
    assert_eq!(
        t.send(&resp[..n], client(1)).0,
        Outcome::Dropped(DropReason::UnexpectedResponse)
    );
    assert_eq!(
        t.send(&[0x40, 0, 0, 0], client(1)).0,
        Outcome::Dropped(DropReason::NoAllocation)
    );
    assert!(matches!(t.send(&good, client(1)).0, Outcome::Reply { .. }));
}

#[test]
fn binding_indication_consumed_silently() {
    let mut t = T::new();
    let mut buf = [0u8; 64];
    let b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Indication),
        TransactionId([1; 12]),
    )
    .unwrap();
    let n = b.finish();
    assert_eq!(t.send(&buf[..n], client(1)).0, Outcome::Consumed);
}

#[test]
fn rfc3489_only_when_enabled() {
    let mut req = build_request(Method::BINDING, TransactionId([1; 12]), None, |_| {});
    req[4..8].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let mut t = T::new();
    assert_eq!(
        t.send(&req, client(1)).0,
        Outcome::Dropped(DropReason::Rfc3489Disabled)
    );
    let mut t = T::with(vec![], |c| c.stun_backward_compatibility = true);
    let (_, resp) = t.send(&req, client(4242));
    assert_eq!(
        &resp[4..20],
        &req[4..20],
        "the 128-bit transaction id is echoed"
    );
    let m = Message::parse_with(
        &resp,
        ParseOptions {
            allow_rfc3489: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        m.get_decoded(attr_type::MAPPED_ADDRESS).unwrap().unwrap(),
        Attribute::MappedAddress(client(4242).client)
    );
    assert!(m.get(attr_type::XOR_MAPPED_ADDRESS).is_none());
    assert_ne!(m.cookie(), MAGIC_COOKIE);
}

#[test]
fn small_output_buffer_is_a_drop_not_a_panic() {
    let mut t = T::new();
    let req = build_request(Method::BINDING, TransactionId([1; 12]), None, |_| {});
    let mut out = [0u8; 24];
    let o =
        t.s.handle_client(&req, client(1), t.now, &mut out, &mut t.r);
    assert_eq!(o, Outcome::Dropped(DropReason::OutputTooSmall));
}

// ---------------------------------------------------------------------------------------
// Authentication

#[test]
fn unauthenticated_allocate_gets_401_with_realm_nonce_algorithms_and_no_state() {
    let mut t = T::new();
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    assert_eq!(
        m.get_decoded(attr_type::REALM).unwrap().unwrap(),
        Attribute::Realm("example.org")
    );
    let Some(Ok(Attribute::Nonce(n))) = m.get_decoded(attr_type::NONCE) else {
        panic!()
    };
    assert!(n.starts_with("obMatJos2"));
    let Some(Ok(Attribute::PasswordAlgorithms(p))) = m.get_decoded(attr_type::PASSWORD_ALGORITHMS)
    else {
        panic!()
    };
    let algs: Vec<u16> = p.iter().map(|a| a.algorithm).collect();
    assert_eq!(algs, vec![2, 1], "SHA-256 then MD5");
    assert!(!m.has_integrity());
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
    assert!(t.r.open.is_empty());
}

#[test]
fn no_state_after_many_unauthenticated_allocates() {
    let mut t = T::new();
    for i in 0..10_000u32 {
        let tuple = client(1000 + (i % 1000) as u16);
        let mut b = [0u8; 128];
        let mut m = MessageBuilder::new(
            &mut b,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([i as u8; 12]),
        )
        .unwrap();
        m.add(&Attribute::RequestedTransport(17)).unwrap();
        m.add(&Attribute::Username("1:nobody")).unwrap();
        let n = m.finish();
        let _ = t.send(&b[..n], tuple);
    }
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
    assert_eq!(t.s.shared().user_allocations("nobody"), 0);
    assert!(t.r.open.is_empty() && t.r.reserved.is_empty());
}

#[test]
fn rest_allocate_success() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 7000);
    assert_eq!(
        relay.ip(),
        IpAddr::from([198, 51, 100, 10]),
        "advertised external address"
    );
    assert!((50000..=50099).contains(&relay.port()));
    assert!(
        t.r.open
            .contains(&SocketAddr::new([192, 0, 2, 10].into(), relay.port())),
        "bound on the relay IP"
    );
    let a = t.s.allocation(&tuple).unwrap();
    assert_eq!(a.user, "bob");
    assert_eq!(a.username, c.username);
    assert_eq!(t.s.shared().user_allocations("bob"), 1);
    assert_eq!(t.s.stats().snapshot().allocations_created, 1);
}

#[test]
fn allocate_response_carries_mapped_lifetime_and_integrity() {
    let mut t = T::new();
    let tuple = client(7001);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add(&Attribute::RequestedTransport(17)).unwrap();
    b.add(&Attribute::Username(&c.username)).unwrap();
    b.add(&Attribute::Realm(&c.realm)).unwrap();
    b.add(&Attribute::Nonce(&c.nonce)).unwrap();
    b.add_message_integrity(&k).unwrap();
    b.add_fingerprint().unwrap();
    let n = b.finish();
    let resp = t.send(&buf[..n], tuple).1;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::Success);
    assert_eq!(
        m.get_decoded(attr_type::XOR_MAPPED_ADDRESS)
            .unwrap()
            .unwrap(),
        Attribute::XorMappedAddress(tuple.client)
    );
    assert_eq!(lifetime_of(&resp), 600);
    m.verify_integrity(&k).unwrap();
    m.verify_fingerprint().unwrap();
}

#[test]
fn static_user_md5_and_sha256() {
    let mut t = T::new();
    let k = long_term_key_md5("alice", "example.org", "wonderland").unwrap();
    let c = t.login("alice", Key::Md5(k), client(1));
    t.allocate(client(1), &c);
    let k2 = long_term_key_sha256("alice", "example.org", "wonderland").unwrap();
    let c2 = t.login("alice", Key::Sha256(k2), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::Success);
    assert!(
        m.has_integrity_sha256() && !m.has_integrity(),
        "answer protected like the request"
    );
    m.verify_integrity_sha256(&k2).unwrap();
}

#[test]
fn auth_failures() {
    let mut t = T::new();
    let tuple = client(9);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    // Wrong key: 401 with a fresh nonce.
    let bad = Creds {
        key: Key::Md5([0; 16]),
        ..Creds {
            username: c.username.clone(),
            key: c.key,
            realm: c.realm.clone(),
            nonce: c.nonce.clone(),
        }
    };
    let resp = t.request(Method::ALLOCATE, tuple, Some(&bad), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(401));
    // Unknown user (not REST-shaped): 401.
    let other = Creds {
        username: "mallory".into(),
        key: c.key,
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
    };
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&other), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        })),
        Some(401)
    );
    // MESSAGE-INTEGRITY without NONCE: 400.
    let tid = t.tid();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        tid,
    )
    .unwrap();
    b.add(&Attribute::RequestedTransport(17)).unwrap();
    b.add(&Attribute::Username(&c.username)).unwrap();
    b.add(&Attribute::Realm(&c.realm)).unwrap();
    b.add_message_integrity(&k).unwrap();
    let n = b.finish();
    assert_eq!(code_of(&t.send(&buf[..n], tuple).1), Some(400));
    // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS: 400.
    let resp = t.request(Method::ALLOCATE, tuple, None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username(&c.username)).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&k).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
    // A nonce made for another client: 438.
    let c_other = t.login(&u, Key::Md5(k), client(10));
    let stolen = Creds {
        nonce: c_other.nonce.clone(),
        username: c.username.clone(),
        key: c.key,
        realm: c.realm.clone(),
    };
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&stolen), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        })),
        Some(438)
    );
    // Stale: past the nonce lifetime.
    t.advance(Duration::from_secs(601));
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(438));
    assert!(m.get(attr_type::NONCE).is_some() && m.get(attr_type::REALM).is_some());
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
}

#[test]
fn expired_rest_credential_is_401_and_lifetime_is_clamped_to_it() {
    let mut t = T::new();
    let (u, k, _) = rest_creds(200, "carol");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(
        lifetime_of(&resp),
        200,
        "clamped to the credential's expiry"
    );
    t.advance(Duration::from_secs(150));
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::REFRESH, client(1), Some(&c), |b| {
        b.add(&Attribute::Lifetime(3600)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 50);
    t.advance(Duration::from_secs(49));
    let c = t.login(&u, Key::Md5(k), client(2));
    t.advance(Duration::from_secs(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(401), "expired username");
    assert_eq!(
        t.s.allocation_count(),
        0,
        "the first allocation expired with its credential"
    );
}

// ---------------------------------------------------------------------------------------
// Allocate details

#[test]
fn allocate_errors_and_retransmission() {
    let mut t = T::new();
    let tuple = client(11);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&c), |_| {})),
        Some(400),
        "no REQUESTED-TRANSPORT"
    );
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(6)).unwrap()
        })),
        Some(442)
    );
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
            b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
                .unwrap();
        })),
        Some(440),
        "no IPv6 relay configured"
    );
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
            b.add(&Attribute::EvenPort(false)).unwrap();
            b.add(&Attribute::ReservationToken([1; 8])).unwrap();
        })),
        Some(400)
    );
    let tid = t.tid();
    let pkt = build_request(Method::ALLOCATE, tid, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let first = t.send(&pkt, tuple).1;
    assert_eq!(
        Message::parse(&first).unwrap().message_type().class,
        Class::Success
    );
    assert_eq!(
        t.send(&pkt, tuple).1,
        first,
        "a retransmission gets the same answer"
    );
    assert_eq!(t.r.open.len(), 1);
    let again = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&again).unwrap();
    assert_eq!(error_code(&m), Some(437));
    m.verify_integrity(&k)
        .expect("errors after authentication carry MESSAGE-INTEGRITY");
}

#[test]
fn lifetimes_follow_rfc8656_7_2() {
    let mut t = T::new();
    let (u, k, _) = rest_creds(86_400, "bob");
    for (i, (asked, granted)) in [
        (None, 600),
        (Some(100), 600),
        (Some(1800), 1800),
        (Some(99_999), 3600),
    ]
    .into_iter()
    .enumerate()
    {
        let tuple = client(100 + i as u16);
        let c = t.login(&u, Key::Md5(k), tuple);
        let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
            if let Some(l) = asked {
                b.add(&Attribute::Lifetime(l)).unwrap();
            }
        });
        assert_eq!(lifetime_of(&resp), granted, "asked {asked:?}");
    }
}

#[test]
fn unknown_attribute_on_authenticated_request_gets_protected_420() {
    let mut t = T::new();
    let tuple = client(12);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(0x7EEE, &[0; 4]).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(420));
    m.verify_integrity(&k).unwrap();
    assert_eq!(t.s.allocation_count(), 0);
}

#[test]
fn quota_486_and_release() {
    let mut t = T::with(vec![], |c| c.user_quota = 1);
    let (u, k, _) = rest_creds(86_400, "dave");
    let c = t.login(&u, Key::Md5(k), client(1));
    t.allocate(client(1), &c);
    let c2 = t.login(&u, Key::Md5(k), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(486));
    // Another REST username for the same USER counts against the same quota.
    let (u2, k2, _) = rest_creds(3_600, "dave");
    let c3 = t.login(&u2, Key::Md5(k2), client(3));
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, client(3), Some(&c3), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        })),
        Some(486)
    );
    // Deleting the first frees the quota.
    let resp = t.request(Method::REFRESH, client(1), Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 0);
    assert_eq!(t.s.shared().user_allocations("dave"), 0);
    t.allocate(client(2), &c2);
}

#[test]
fn replaced_limits_apply_to_new_allocations_and_permissions_and_keep_existing_ones() {
    let mut t = T::new();
    let (u, k, _) = rest_creds(86_400, "erin");
    let c1 = t.login(&u, Key::Md5(k), client(1));
    t.allocate(client(1), &c1);
    let c2 = t.login(&u, Key::Md5(k), client(2));
    t.allocate(client(2), &c2);
    let before = t.s.shared().limits();
    assert_eq!(before, Limits::of(&t.s.shared().config));
    t.s.shared().replace_limits(Limits {
        user_quota: 2,
        max_permissions: 1,
        ..before
    });
    // Two allocations exist: a third is over the new quota; the two live on.
    let c3 = t.login(&u, Key::Md5(k), client(3));
    let resp = t.request(Method::ALLOCATE, client(3), Some(&c3), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(486));
    let resp = t.request(Method::REFRESH, client(1), Some(&c1), |_| {});
    assert_eq!(code_of(&resp), None, "an existing allocation refreshes");
    // One permission allowed now.
    let p = |n: u8| {
        move |b: &mut MessageBuilder<'_>| {
            b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, n], 1)))
                .unwrap()
        }
    };
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, client(1), Some(&c1), p(1))),
        None
    );
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, client(1), Some(&c1), p(2))),
        Some(508)
    );
    // Back to the old limits: allowed again.
    t.s.shared().replace_limits(before);
    t.allocate(client(3), &c3);
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, client(1), Some(&c1), p(2))),
        None
    );
    // max_bps takes effect on the next packet: 3000 bytes of burst, then drops.
    t.s.shared().replace_limits(Limits {
        max_bps: 1000,
        ..before
    });
    let bind = t.request(Method::CHANNEL_BIND, client(2), Some(&c2), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, 9], 9)))
            .unwrap();
    });
    assert_eq!(code_of(&bind), None);
    let mut frame = vec![0x40, 0x00, 0x04, 0x00];
    frame.extend_from_slice(&[0u8; 1024]);
    let outcomes: Vec<Outcome> = (0..5).map(|_| t.send(&frame, client(2)).0).collect();
    assert!(
        outcomes.contains(&Outcome::Dropped(DropReason::RateLimited)),
        "{outcomes:?}"
    );
}

#[test]
fn no_free_port_is_508() {
    let mut t = T::new();
    for p in 50000..=50099u16 {
        t.r.in_use
            .insert(SocketAddr::new([192, 0, 2, 10].into(), p));
    }
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(508));
    assert_eq!(t.s.shared().user_allocations("bob"), 0, "quota returned");
}

#[test]
fn even_port_reservation_and_dont_fragment() {
    let mut t = T::new();
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
        b.add(&Attribute::DontFragment).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    let Some(Ok(Attribute::XorRelayedAddress(relay))) =
        m.get_decoded(attr_type::XOR_RELAYED_ADDRESS)
    else {
        panic!()
    };
    assert_eq!(relay.port() % 2, 0);
    let Some(Ok(Attribute::ReservationToken(token))) = m.get_decoded(attr_type::RESERVATION_TOKEN)
    else {
        panic!()
    };
    let bound = SocketAddr::new([192, 0, 2, 10].into(), relay.port());
    assert!(t.r.dont_fragment.contains(&bound));
    let next = SocketAddr::new([192, 0, 2, 10].into(), relay.port() + 1);
    assert!(t.r.reserved.contains(&next));
    let c2 = t.login(&u, Key::Md5(k), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::ReservationToken(token)).unwrap();
    });
    let Some(Ok(Attribute::XorRelayedAddress(r2))) = Message::parse(&resp)
        .unwrap()
        .get_decoded(attr_type::XOR_RELAYED_ADDRESS)
    else {
        panic!("{:?}", code_of(&resp))
    };
    assert_eq!(r2.port(), relay.port() + 1);
    // The token is used up, and an unclaimed one lapses after 30 s.
    let c3 = t.login(&u, Key::Md5(k), client(3));
    let resp = t.request(Method::ALLOCATE, client(3), Some(&c3), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::ReservationToken(token)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(508));
    let resp = t.request(Method::ALLOCATE, client(3), Some(&c3), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success
    );
    assert_eq!(t.r.reserved.len(), 1);
    t.advance(Duration::from_secs(31));
    assert!(t.r.reserved.is_empty(), "reservation released after 30 s");
}

/// An EVEN-PORT R=1 reservation holds a port and counts as an allocation against the quota
/// until it is claimed (the claimer's own allocation counts instead), lapses, or the
/// allocation that made it ends; Allocate + Refresh(0) rounds hold nothing.
#[test]
fn even_port_reservations_count_against_the_quota_and_end_with_their_allocation() {
    let mut t = T::with(vec![], |c| c.user_quota = 3);
    let (u, k, _) = rest_creds(86_400, "bob");
    let even = |b: &mut MessageBuilder<'_>| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
    };
    let c1 = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c1), even);
    let Some(Ok(Attribute::ReservationToken(token))) = Message::parse(&resp)
        .unwrap()
        .get_decoded(attr_type::RESERVATION_TOKEN)
    else {
        panic!("{:?}", code_of(&resp))
    };
    assert_eq!(
        t.s.shared().user_allocations("bob"),
        2,
        "allocation + reservation"
    );
    // Two more slots are needed for another R=1: 486 with one left, and nothing held.
    let c2 = t.login(&u, Key::Md5(k), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), even);
    assert_eq!(code_of(&resp), Some(486));
    assert_eq!(t.s.shared().user_allocations("bob"), 2);
    assert_eq!(t.r.reserved.len(), 1);
    // Claiming hands the reservation's slot to the claimer's allocation.
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::ReservationToken(token)).unwrap();
    });
    assert!(
        Message::parse(&resp).unwrap().message_type().class == Class::Success,
        "{:?}",
        code_of(&resp)
    );
    assert_eq!(t.s.shared().user_allocations("bob"), 2);
    assert_eq!(t.s.shared().reservation_count(), 0);
    // A deleted allocation takes its unclaimed reservation with it.
    let c3 = t.login(&u, Key::Md5(k), client(3));
    t.request(Method::REFRESH, client(1), Some(&c1), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(t.s.shared().user_allocations("bob"), 1);
    for _ in 0..50 {
        let resp = t.request(Method::ALLOCATE, client(3), Some(&c3), even);
        assert!(
            Message::parse(&resp).unwrap().message_type().class == Class::Success,
            "{:?}",
            code_of(&resp)
        );
        assert_eq!(t.s.shared().user_allocations("bob"), 3);
        assert_eq!(t.r.reserved.len(), 1);
        t.request(Method::REFRESH, client(3), Some(&c3), |b| {
            b.add(&Attribute::Lifetime(0)).unwrap()
        });
        assert_eq!(t.s.shared().user_allocations("bob"), 1);
        assert!(
            t.r.reserved.is_empty(),
            "reservation released with its allocation"
        );
        assert_eq!(t.s.shared().reservation_count(), 0);
    }
    // One that lapses gives its slot back.
    let resp = t.request(Method::ALLOCATE, client(3), Some(&c3), even);
    assert_eq!(code_of(&resp), None);
    assert_eq!(t.s.shared().user_allocations("bob"), 3);
    t.advance(Duration::from_secs(31));
    assert_eq!(t.s.shared().user_allocations("bob"), 2);
    assert!(t.r.reserved.is_empty());
}

// ---------------------------------------------------------------------------------------
// Refresh

#[test]
fn refresh_rules() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 20);
    let resp = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(1200)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 1200);
    // No allocation on this 5-tuple: 437.
    let (u, k, _) = rest_creds(86_400, "bob");
    let c2 = t.login(&u, Key::Md5(k), client(21));
    assert_eq!(
        code_of(&t.request(Method::REFRESH, client(21), Some(&c2), |_| {})),
        Some(437)
    );
    // Same 5-tuple, other (valid) credentials: 441.
    let (u3, k3, _) = rest_creds(86_400, "eve");
    let c3 = t.login(&u3, Key::Md5(k3), tuple);
    assert_eq!(
        code_of(&t.request(Method::REFRESH, tuple, Some(&c3), |_| {})),
        Some(441)
    );
    // REQUESTED-ADDRESS-FAMILY the allocation lacks: 443.
    assert_eq!(
        code_of(&t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
                .unwrap()
        })),
        Some(443)
    );
    // LIFETIME 0 deletes at once and frees the port.
    let resp = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 0);
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(
        t.r.closed,
        vec![SocketAddr::new([192, 0, 2, 10].into(), relay.port())]
    );
}

#[test]
fn allocation_expires_and_its_port_is_freed_and_reusable() {
    let mut t = T::with(vec![], |c| {
        c.default_lifetime = Duration::from_secs(5);
        c.ports = crate::turn::PortRange {
            lo: 50000,
            hi: 50000,
        };
    });
    let (tuple, _c, relay) = logged_in(&mut t, 30);
    t.advance(Duration::from_secs(4));
    assert_eq!(t.s.allocation_count(), 1);
    t.advance(Duration::from_secs(1));
    assert_eq!(t.s.allocation_count(), 0);
    assert!(t.s.allocation(&tuple).is_none());
    assert!(t.r.open.is_empty());
    assert_eq!(t.s.stats().snapshot().allocations_ended, 1);
    // The single port in the range is free again.
    let (_, _, relay2) = logged_in(&mut t, 31);
    assert_eq!(relay2.port(), relay.port());
}

// ---------------------------------------------------------------------------------------
// Permissions, channels, data

fn peer_data(t: &mut T, relay_port: u16, from: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
    buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
    let relay = SocketAddr::new([192, 0, 2, 10].into(), relay_port);
    match t.s.handle_peer(relay, from, &mut buf, payload.len(), t.now) {
        PeerOutcome::ToClient { start, len, .. } => Some(buf[start..start + len].to_vec()),
        PeerOutcome::Dropped(_) => None,
    }
}

#[test]
fn permissions_are_per_ip_and_expire() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 40);
    let p1 = peer([198, 51, 100, 1], 5000);
    assert_eq!(
        peer_data(&mut t, relay.port(), p1, b"hi"),
        None,
        "no permission yet"
    );
    assert_eq!(t.s.stats().snapshot().peer_dropped_no_permission, 1);
    let resp = t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(p1)).unwrap();
        b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, 2], 1)))
            .unwrap();
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success
    );
    // Any port of a permitted IP gets through, as a Data indication.
    let di = peer_data(
        &mut t,
        relay.port(),
        peer([198, 51, 100, 1], 6000),
        b"hello",
    )
    .expect("relayed");
    let m = Message::parse(&di).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::DATA, Class::Indication)
    );
    assert_eq!(
        m.get_decoded(attr_type::XOR_PEER_ADDRESS).unwrap().unwrap(),
        Attribute::XorPeerAddress(peer([198, 51, 100, 1], 6000))
    );
    assert_eq!(
        m.get_decoded(attr_type::DATA).unwrap().unwrap(),
        Attribute::Data(b"hello")
    );
    assert_eq!(
        peer_data(&mut t, relay.port(), peer([198, 51, 100, 3], 5000), b"x"),
        None,
        "other IP"
    );
    t.advance(Duration::from_secs(299));
    assert!(peer_data(&mut t, relay.port(), p1, b"x").is_some());
    t.advance(Duration::from_secs(2));
    assert_eq!(
        peer_data(&mut t, relay.port(), p1, b"x"),
        None,
        "permission lapsed after 300 s"
    );
    assert!(
        t.s.allocation(&tuple).unwrap().permissions.is_empty(),
        "swept"
    );
}

#[test]
fn create_permission_errors() {
    let mut t = T::new();
    let (tuple, c, _) = logged_in(&mut t, 41);
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |_| {})),
        Some(400)
    );
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(peer([10, 0, 0, 1], 1)))
                .unwrap()
        })),
        Some(403),
        "private address denied by default"
    );
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, 9], 1)))
                .unwrap();
            b.add(&Attribute::XorPeerAddress(peer([127, 0, 0, 1], 1)))
                .unwrap();
        })),
        Some(403)
    );
    assert!(
        t.s.allocation(&tuple).unwrap().permissions.is_empty(),
        "all or nothing"
    );
    assert_eq!(
        code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(
                "[2001:db8::1]:5".parse().unwrap(),
            ))
            .unwrap()
        })),
        Some(443)
    );
    let (u, k, _) = rest_creds(86_400, "bob");
    let c2 = t.login(&u, Key::Md5(k), client(42));
    assert_eq!(
        code_of(
            &t.request(Method::CREATE_PERMISSION, client(42), Some(&c2), |b| b
                .add(&Attribute::XorPeerAddress(peer([198, 51, 100, 9], 1)))
                .unwrap())
        ),
        Some(437)
    );
}

#[test]
fn send_indication_forwards_a_subslice_and_needs_a_permission() {
    let mut t = T::new();
    let (tuple, c, _) = logged_in(&mut t, 50);
    let p = peer([198, 51, 100, 7], 9000);
    let send = |t: &mut T, p: SocketAddr| {
        let mut buf = [0u8; 256];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId([3; 12]),
        )
        .unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
        b.add(&Attribute::Data(b"payload!")).unwrap();
        let n = b.finish();
        let pkt = buf[..n].to_vec();
        (t.send(&pkt, tuple).0, pkt)
    };
    assert_eq!(
        send(&mut t, p).0,
        Outcome::Dropped(DropReason::NoPermission)
    );
    t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(p)).unwrap()
    });
    let (o, pkt) = send(&mut t, p);
    let Outcome::Forward {
        relay,
        peer: to,
        start,
        len,
    } = o
    else {
        panic!("{o:?}")
    };
    assert_eq!(to, p);
    assert_eq!(relay.ip(), IpAddr::from([192, 0, 2, 10]));
    assert_eq!(&pkt[start..start + len], b"payload!");
    // Policy applies to Send too (a service port of the server itself).
    assert_eq!(
        send(&mut t, peer([192, 0, 2, 10], 3478)).0,
        Outcome::Dropped(DropReason::PolicyDenied)
    );
}

#[test]
fn channels_both_ways() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 60);
    let p = peer([198, 51, 100, 8], 7000);
    let resp = t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4001)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "{:?}",
        error_code(&m)
    );
    m.verify_integrity(match c.key {
        Key::Md5(ref k) => k,
        _ => unreachable!(),
    })
    .unwrap();
    // Client → peer: the payload is a sub-slice after the 4-byte header.
    let (o, _) = t.send(b"\x40\x01\x00\x03abc\x00", tuple);
    assert_eq!(
        o,
        Outcome::Forward {
            relay: SocketAddr::new([192, 0, 2, 10].into(), relay.port()),
            peer: p,
            start: 4,
            len: 3
        }
    );
    // Peer → client: a ChannelData header written in front.
    assert_eq!(
        peer_data(&mut t, relay.port(), p, b"xyz").unwrap(),
        b"\x40\x01\x00\x03xyz"
    );
    // The channel installed a permission for the IP: other ports arrive as Data indications.
    let di = peer_data(&mut t, relay.port(), peer([198, 51, 100, 8], 7001), b"q").unwrap();
    assert_eq!(
        Message::parse(&di).unwrap().message_type().method,
        Method::DATA
    );
    // Unbound channel number: dropped.
    assert_eq!(
        t.send(b"\x40\x02\x00\x00", tuple).0,
        Outcome::Dropped(DropReason::NoChannel)
    );
    // Rebinding the same pair refreshes; conflicting pairs are 400.
    let bind = |t: &mut T, c: &Creds, n: u16, p: SocketAddr| {
        code_of(&t.request(Method::CHANNEL_BIND, tuple, Some(c), |b| {
            b.add(&Attribute::ChannelNumber(n)).unwrap();
            b.add(&Attribute::XorPeerAddress(p)).unwrap();
        }))
    };
    assert_eq!(bind(&mut t, &c, 0x4001, p), None);
    assert_eq!(
        bind(&mut t, &c, 0x4001, peer([198, 51, 100, 9], 7000)),
        Some(400),
        "number bound to another peer"
    );
    assert_eq!(
        bind(&mut t, &c, 0x4002, p),
        Some(400),
        "peer bound to another number"
    );
    assert_eq!(
        bind(&mut t, &c, 0x5000, peer([198, 51, 100, 10], 1)),
        Some(400),
        "outside RFC 8656 range"
    );
    assert_eq!(
        bind(&mut t, &c, 0x3FFF, peer([198, 51, 100, 10], 1)),
        Some(400)
    );
    assert_eq!(bind(&mut t, &c, 0x4003, peer([10, 1, 1, 1], 1)), Some(403));
    assert_eq!(
        bind(&mut t, &c, 0x4003, peer([192, 0, 2, 10], 3478)),
        Some(403),
        "service port never reachable"
    );
    // Expiry: after 600 s without a rebind the channel stops; the number stays reserved 300 s more.
    let resp = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(3600)).unwrap()
    });
    assert_eq!(lifetime_of(&resp), 3600);
    t.advance(Duration::from_secs(601));
    let c = t.login(&c.username, c.key, tuple);
    assert_eq!(
        t.send(b"\x40\x01\x00\x00", tuple).0,
        Outcome::Dropped(DropReason::NoChannel)
    );
    assert_eq!(
        bind(&mut t, &c, 0x4001, peer([198, 51, 100, 9], 7000)),
        Some(400),
        "cooling down"
    );
    t.advance(Duration::from_secs(300));
    let c = t.login(&c.username, c.key, tuple);
    assert_eq!(
        bind(&mut t, &c, 0x4001, peer([198, 51, 100, 9], 7000)),
        None,
        "free again"
    );
}

#[test]
fn legacy_channel_numbers_when_enabled() {
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.channel_range = ChannelRange::RFC5766
    });
    let (tuple, c, relay) = logged_in(&mut t, 61);
    let p = peer([198, 51, 100, 8], 7000);
    let resp = t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x7FFF)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    assert_eq!(code_of(&resp), None);
    assert!(matches!(
        t.send(b"\x7F\xFF\x00\x00", tuple).0,
        Outcome::Forward { .. }
    ));
    assert_eq!(
        peer_data(&mut t, relay.port(), p, b"").unwrap(),
        b"\x7F\xFF\x00\x00"
    );
}

#[test]
fn stream_clients_get_padded_channel_data() {
    let mut t = T::new();
    let mut tuple = client(62);
    tuple.transport = Transport::Tcp;
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let relay = t.allocate(tuple, &c);
    let p = peer([198, 51, 100, 8], 7000);
    t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    assert_eq!(
        peer_data(&mut t, relay.port(), p, b"abcde").unwrap(),
        b"\x40\x00\x00\x05abcde\x00\x00\x00"
    );
    t.s.close_tuple(&tuple, t.now, &mut t.r);
    assert_eq!(
        t.s.allocation_count(),
        0,
        "closing the connection deletes the allocation"
    );
}

#[test]
fn ipv6_peer_data_indication_fits_the_headroom() {
    let mut t = T::with(vec!["2001:db8::/32".parse().unwrap()], |c| {
        c.relay_v4 = None;
        c.relay_v6 = Some(RelayAddress {
            bind: "2001:db8::10".parse().unwrap(),
            advertise: "2001:db8::10".parse().unwrap(),
        });
    });
    let tuple = client(63);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    let Some(Ok(Attribute::XorRelayedAddress(relay))) = Message::parse(&resp)
        .unwrap()
        .get_decoded(attr_type::XOR_RELAYED_ADDRESS)
    else {
        panic!("{:?}", code_of(&resp))
    };
    let p: SocketAddr = "[2001:db8::99]:4000".parse().unwrap();
    t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(p)).unwrap()
    });
    let mut buf = vec![0u8; PEER_HEADROOM + 5 + PEER_TAILROOM];
    buf[PEER_HEADROOM..PEER_HEADROOM + 5].copy_from_slice(b"hello");
    let PeerOutcome::ToClient { start, len, .. } = t.s.handle_peer(relay, p, &mut buf, 5, t.now)
    else {
        panic!()
    };
    assert_eq!(start, 0);
    let m = Message::parse(&buf[start..start + len]).unwrap();
    assert_eq!(
        m.get_decoded(attr_type::DATA).unwrap().unwrap(),
        Attribute::Data(b"hello")
    );
    assert_eq!(
        m.get_decoded(attr_type::XOR_PEER_ADDRESS).unwrap().unwrap(),
        Attribute::XorPeerAddress(p)
    );
}

#[test]
fn clock_anchor_maps_both_ways() {
    let t0 = Instant::now();
    let c = CoreConfig::minimal((t0, UNIX0));
    assert_eq!(c.unix_at(t0 + Duration::from_secs(90)), UNIX0 + 90);
    assert_eq!(c.instant_at(UNIX0 + 90), t0 + Duration::from_secs(90));
    let _ = T::new().t0;
}

// ---------------------------------------------------------------------------------------
// Regressions from review

#[test]
fn refreshes_and_permissions_do_not_grow_the_timer_heap() {
    let mut t = T::new();
    let (tuple, c, _) = logged_in(&mut t, 70);
    for i in 0..500u32 {
        t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::Lifetime(600 + i % 3)).unwrap()
        });
        t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(peer(
                [198, 51, 100, (i % 200) as u8],
                1,
            )))
            .unwrap()
        });
    }
    let (_, _, timers) = t.s.table_sizes();
    assert!(timers <= 3, "timer heap holds {timers} entries");
}

#[test]
fn plain_allocations_never_take_a_reserved_port_and_lapsed_tokens_are_released() {
    let mut t = T::with(vec![], |c| {
        c.ports = crate::turn::PortRange {
            lo: 50000,
            hi: 50003,
        }
    });
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
    });
    let Some(Ok(Attribute::ReservationToken(token))) = Message::parse(&resp)
        .unwrap()
        .get_decoded(attr_type::RESERVATION_TOKEN)
    else {
        panic!("{:?}", code_of(&resp))
    };
    // Two ports are left; plain allocations take them and never the reserved one.
    for port in [2u16, 3] {
        let c = t.login(&u, Key::Md5(k), client(port));
        t.allocate(client(port), &c);
    }
    let c4 = t.login(&u, Key::Md5(k), client(4));
    let resp = t.request(Method::ALLOCATE, client(4), Some(&c4), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(508));
    assert_eq!(t.r.reserved.len(), 1);
    // A token presented after its 30 s but before the sweep: 508, and the port is released.
    t.now += Duration::from_secs(31);
    let c5 = t.login(&u, Key::Md5(k), client(5));
    let resp = t.request(Method::ALLOCATE, client(5), Some(&c5), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::ReservationToken(token)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(508));
    assert!(t.r.reserved.is_empty(), "released, not leaked");
}

#[test]
fn wrong_credentials_441_is_protected_with_the_key_that_verified() {
    let mut t = T::new();
    let (tuple, _c, _) = logged_in(&mut t, 80);
    let (u, k, _) = rest_creds(86_400, "eve");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::REFRESH, tuple, Some(&c), |_| {});
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(441));
    m.verify_integrity(&k).unwrap();
}

/// A T whose credentials are the REST secret (if `rest`) and a user "carl" stored as an MD5
/// key of password "pw".
fn with_md5_key_user(rest: bool) -> (T, [u8; 16]) {
    use crate::auth::store::{CredentialStore, StaticUser, UserCredential};
    let t0 = Instant::now();
    let sh = shared(t0, vec![], |_| {});
    let key = long_term_key_md5("carl", "example.org", "pw").unwrap();
    let secrets: Vec<String> = if rest { vec!["s3cret".into()] } else { vec![] };
    let users = [StaticUser {
        name: "carl".into(),
        credential: UserCredential::Md5Key(key),
    }];
    sh.replace_credentials(CredentialStore::new("example.org", &secrets, &users, ':').unwrap());
    let t = T {
        s: Server::new(Arc::new(sh), Arc::new(Stats::default()), [1; 32]),
        r: FakeRelays::default(),
        t0,
        now: t0,
        next_tid: 1,
    };
    (t, key)
}

/// The raw PASSWORD-ALGORITHMS of the 401 to an Allocate naming `user` (if any).
fn offered(t: &mut T, user: Option<&str>) -> Vec<u8> {
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        if let Some(u) = user {
            b.add(&Attribute::Username(u)).unwrap();
        }
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    m.get(attr_type::PASSWORD_ALGORITHMS)
        .unwrap()
        .value
        .to_vec()
}

#[test]
fn md5_key_users_are_offered_what_everyone_is_and_fail_sha256_like_a_wrong_password() {
    let (mut t, key) = with_md5_key_user(true);
    let both = [0, 2, 0, 0, 0, 1, 0, 0];
    for user in [None, Some("carl"), Some("nobody")] {
        assert_eq!(offered(&mut t, user), both, "{user:?}");
    }
    // carl picks SHA-256 (with the key his password would give): 401 with a new challenge,
    // as a wrong password and an unknown user get.
    let sha = long_term_key_sha256("carl", "example.org", "pw").unwrap();
    let c = t.login("carl", Key::Sha256(sha), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    assert_eq!(m.get(attr_type::PASSWORD_ALGORITHMS).unwrap().value, both);
    let (u, _, k2) = rest_creds(86_400, "bob");
    let wrong = [
        ("carl", Key::Md5([7; 16])),
        (u.as_str(), Key::Sha256([7; 32])),
        ("nobody", Key::Sha256(k2)),
    ];
    for (name, k) in wrong {
        let c = t.login(name, k, client(1));
        let resp = t.request(Method::ALLOCATE, client(1), Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        assert_eq!(code_of(&resp), Some(401), "{name} {k:?}");
    }
    // carl authenticates with MD5 after such a challenge, echoing the list he was offered.
    let c = t.login("carl", Key::Md5(key), client(1));
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHMS, &both).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username("carl")).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&key).unwrap();
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success,
        "{:?}",
        code_of(&resp)
    );
    // The MD5-only list carl was once offered is no longer what the server offers: 400.
    let c = t.login("carl", Key::Md5(key), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHMS, &[0, 1, 0, 0])
            .unwrap();
        b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 1, 0, 0])
            .unwrap();
        b.add(&Attribute::Username("carl")).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        b.add_message_integrity(&key).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
}

#[test]
fn only_md5_keys_configured_offers_md5_to_everyone() {
    let (mut t, key) = with_md5_key_user(false);
    for user in [None, Some("carl"), Some("nobody")] {
        assert_eq!(offered(&mut t, user), [0, 1, 0, 0], "{user:?}");
    }
    let c = t.login("carl", Key::Md5(key), client(1));
    t.allocate(client(1), &c);
}

#[test]
fn an_expired_allocation_cannot_be_revived_or_used_before_the_sweep() {
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.default_lifetime = Duration::from_secs(10)
    });
    let (tuple, c, relay) = logged_in(&mut t, 90);
    let p = peer([198, 51, 100, 8], 7000);
    t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    t.now += Duration::from_secs(10); // no handle_timeout: the sweep has not run
    assert_eq!(
        t.send(b"\x40\x00\x00\x00", tuple).0,
        Outcome::Dropped(DropReason::NoAllocation)
    );
    assert_eq!(peer_data(&mut t, relay.port(), p, b"x"), None);
    assert_eq!(
        code_of(&t.request(Method::REFRESH, tuple, Some(&c), |_| {})),
        Some(437)
    );
}

// ---------------------------------------------------------------------------------------
// Same-server relaying, admin, quotas and limits

#[test]
fn two_clients_of_this_server_reach_each_other_through_denied_relay_addresses() {
    // The relay address 192.0.2.10 (bound and advertised as 198.51.100.10) is in denied
    // documentation ranges, and nothing is allowed explicitly.
    let mut t = T::with(vec![], |_| {});
    let (ta, ca, relay_a) = logged_in(&mut t, 100);
    let (tb, cb, relay_b) = logged_in(&mut t, 101);
    for (tuple, c, other) in [(ta, &ca, relay_b), (tb, &cb, relay_a)] {
        let resp = t.request(Method::CREATE_PERMISSION, tuple, Some(c), |b| {
            b.add(&Attribute::XorPeerAddress(other)).unwrap()
        });
        assert_eq!(code_of(&resp), None, "permission for the other relay");
        let resp = t.request(Method::CHANNEL_BIND, tuple, Some(c), |b| {
            b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
            b.add(&Attribute::XorPeerAddress(other)).unwrap();
        });
        assert_eq!(code_of(&resp), None, "channel to the other relay");
    }
    // Data between them stays on the host: sent to the other relay's bound (private)
    // address, and seen by the receiver as coming from the advertised one it permitted.
    let (o, _) = t.send(&[0x40, 0x00, 0, 3, 1, 2, 3], ta);
    let Outcome::Forward { relay, peer, .. } = o else {
        panic!("{o:?}")
    };
    assert_eq!(relay.port(), relay_a.port());
    assert_eq!(
        peer,
        SocketAddr::new([192, 0, 2, 10].into(), relay_b.port())
    );
    let mut buf = vec![0u8; PEER_HEADROOM + 3 + PEER_TAILROOM];
    buf[PEER_HEADROOM..PEER_HEADROOM + 3].copy_from_slice(&[1, 2, 3]);
    let bound_b = SocketAddr::new([192, 0, 2, 10].into(), relay_b.port());
    let PeerOutcome::ToClient { tuple, start, len } =
        t.s.handle_peer(bound_b, relay, &mut buf, 3, t.now)
    else {
        panic!("B did not get A's datagram")
    };
    assert_eq!(tuple, tb);
    assert_eq!(
        &buf[start..start + 4],
        &[0x40, 0x00, 0, 3],
        "on B's channel to A"
    );
    let _ = len;
    // Other ports on the relay IP stay closed: not a live relayed address.
    let resp = t.request(Method::CHANNEL_BIND, ta, Some(&ca), |b| {
        b.add(&Attribute::ChannelNumber(0x4001)).unwrap();
        b.add(&Attribute::XorPeerAddress(SocketAddr::new(
            relay_b.ip(),
            22,
        )))
        .unwrap();
    });
    assert_eq!(code_of(&resp), Some(403));
    // Once B is gone, its address is an ordinary denied peer again.
    t.request(Method::REFRESH, tb, Some(&cb), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    let resp = t.request(Method::CHANNEL_BIND, ta, Some(&ca), |b| {
        b.add(&Attribute::ChannelNumber(0x4002)).unwrap();
        b.add(&Attribute::XorPeerAddress(SocketAddr::new(
            relay_b.ip(),
            relay_b.port() ^ 1,
        )))
        .unwrap();
    });
    assert_eq!(code_of(&resp), Some(403));
    // An explicit deny still wins.
    let mut t = T::with(vec![], |_| {});
    let sh = t.s.shared().clone();
    drop(sh);
    let (_, _, relay) = logged_in(&mut t, 102);
    assert!(
        t.s.shared()
            .check_peer_policy(relay, true, RelayTransport::Udp)
            .is_ok()
    );
}

#[test]
fn admin_lists_and_ends_sessions() {
    let mut t = T::new();
    t.s.set_worker_index(3);
    let (ta, _, _) = logged_in(&mut t, 110);
    let (_tb, _, _) = logged_in(&mut t, 111);
    let (u, k, _) = rest_creds(86_400, "zoe");
    let c = t.login(&u, Key::Md5(k), client(112));
    t.allocate(client(112), &c);
    let list = t.s.sessions(t.now);
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().all(|s| s.id >> 48 == 3),
        "ids carry the worker index"
    );
    let a = list.iter().find(|s| s.client == ta.client).unwrap();
    assert_eq!(
        (a.user.as_str(), a.transport, a.created_unix),
        ("bob", "udp", UNIX0)
    );
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_value(a).unwrap();
        assert!(json["bytes_in"].is_u64() && json["relay"].is_string());
    }
    assert!(t.s.end_session(a.id, t.now, &mut t.r));
    assert!(!t.s.end_session(a.id, t.now, &mut t.r));
    assert_eq!(t.s.end_user_sessions("bob", t.now, &mut t.r), 1);
    assert_eq!(t.s.allocation_count(), 1);
    assert_eq!(t.s.stats().snapshot().ended_admin, 2);
    assert_eq!(t.s.shared().user_allocations("bob"), 0);
}

#[test]
fn total_quota_is_508_and_per_allocation_limits_hold() {
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.total_quota = 1;
        c.max_permissions = 2;
        c.max_channels = 1;
    });
    let (tuple, c, _) = logged_in(&mut t, 120);
    let (u, k, _) = rest_creds(86_400, "other");
    let c2 = t.login(&u, Key::Md5(k), client(121));
    let resp = t.request(Method::ALLOCATE, client(121), Some(&c2), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(code_of(&resp), Some(508), "server full");
    assert_eq!(t.s.stats().snapshot().total_quota_rejections, 1);
    let perm = |t: &mut T, ips: &[u8]| {
        code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            for &i in ips {
                b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, i], 1)))
                    .unwrap();
            }
        }))
    };
    assert_eq!(perm(&mut t, &[1, 1, 2]), None, "a repeated IP counts once");
    assert_eq!(perm(&mut t, &[3]), Some(508));
    assert_eq!(
        perm(&mut t, &[1]),
        None,
        "refreshing an existing one is fine"
    );
    let bind = |t: &mut T, n: u16, ip: u8| {
        code_of(&t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
            b.add(&Attribute::ChannelNumber(n)).unwrap();
            b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, ip], 9)))
                .unwrap();
        }))
    };
    assert_eq!(bind(&mut t, 0x4000, 1), None);
    assert_eq!(bind(&mut t, 0x4001, 2), Some(508), "max one channel");
    assert_eq!(bind(&mut t, 0x4000, 1), None, "rebinding is fine");
}

#[test]
fn max_bps_limits_each_direction() {
    let rate = 10_000u64;
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.max_bps = rate
    });
    let (tuple, c, relay) = logged_in(&mut t, 130);
    let p = peer([198, 51, 100, 8], 7000);
    t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    let mut frame = vec![0x40, 0x00, 0x01, 0xF4];
    frame.extend_from_slice(&[7u8; 500]);
    let (mut out_bytes, mut in_bytes) = (0u64, 0u64);
    // 5 s of overload in 10 ms steps: 100 packets of 500 bytes per step each way.
    for _ in 0..500 {
        t.now += Duration::from_millis(10);
        for _ in 0..10 {
            if matches!(t.send(&frame, tuple).0, Outcome::Forward { .. }) {
                out_bytes += 500;
            }
            if peer_data(&mut t, relay.port(), p, &[9u8; 500]).is_some() {
                in_bytes += 500;
            }
        }
    }
    let limit = rate * 5;
    for got in [out_bytes, in_bytes] {
        assert!(
            got >= limit / 2 && got <= limit * 5 / 4,
            "delivered {got} bytes for a limit of {limit}"
        );
    }
    assert!(t.s.stats().snapshot().rate_limited > 0);
}

#[test]
fn responses_are_counted_by_method_and_code() {
    let mut t = T::new();
    let (tuple, c, _) = logged_in(&mut t, 140);
    t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(peer([10, 0, 0, 1], 1)))
            .unwrap()
    });
    t.request(Method::BINDING, tuple, None, |_| {});
    let s = t.s.stats().snapshot();
    let at = |m: Method, code: u16| s.responses[stats::method_index(m)][stats::code_index(code)];
    assert_eq!(at(Method::ALLOCATE, 401), 1);
    assert_eq!(at(Method::ALLOCATE, 0), 1);
    assert_eq!(at(Method::CREATE_PERMISSION, 403), 1);
    assert_eq!(at(Method::BINDING, 0), 1);
    assert_eq!(s.auth_ok, 2);
    assert_eq!(s.auth_unauthorized, 1);
}

// ---------------------------------------------------------------------------------------
// Unauthenticated rate limit and the per-IP allocation cap

fn from_ip(ip: IpAddr, port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new(ip, port),
        ..client(port)
    }
}

/// Sends an Allocate without credentials; true if it was answered (401).
fn unauth_allocate(t: &mut T, tuple: FiveTuple) -> bool {
    let resp = t.request(Method::ALLOCATE, tuple, None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    if resp.is_empty() {
        return false;
    }
    assert_eq!(code_of(&resp), Some(401));
    true
}

fn limited(rate: u32, burst: u32) -> T {
    T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.unauth_rate_limit = rate;
        c.unauth_rate_burst = burst;
    })
}

#[test]
fn unauth_limiter_defaults_are_on() {
    let c = CoreConfig::minimal((Instant::now(), UNIX0));
    assert_eq!(
        (
            c.unauth_rate_limit,
            c.unauth_rate_burst,
            c.max_allocations_per_ip
        ),
        (200, 1000, 1000)
    );
    let t = T::new();
    assert_eq!(t.s.unauth_table_len(), UNAUTH_TABLE_SLOTS);
}

#[test]
fn unauth_limiter_drops_after_the_burst_and_recovers_with_time() {
    let mut t = limited(200, 1000);
    let tuple = client(5000);
    let answered = (0..1500).filter(|_| unauth_allocate(&mut t, tuple)).count();
    assert_eq!(answered, 1000, "exactly the burst is answered");
    let s = t.s.stats().snapshot();
    assert_eq!(s.unauth_rate_limited, 500);
    assert_eq!(s.auth_challenges, 1000);
    // Dropped silently: no answer, no state.
    let (o, bytes) = {
        let tid = t.tid();
        let pkt = build_request(Method::ALLOCATE, tid, None, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        t.send(&pkt, tuple)
    };
    assert_eq!(o, Outcome::Dropped(DropReason::UnauthRateLimited));
    assert!(bytes.is_empty());
    assert_eq!(t.s.table_sizes(), (0, 0, 0));

    // 100 ms at 200/s refills 20 requests.
    t.advance(Duration::from_millis(100));
    let answered = (0..100).filter(|_| unauth_allocate(&mut t, tuple)).count();
    assert_eq!(answered, 20);
    // A long pause refills the bucket to the burst, no more.
    t.advance(Duration::from_secs(60));
    let answered = (0..2000).filter(|_| unauth_allocate(&mut t, tuple)).count();
    assert_eq!(answered, 1000);
    // Another port of the same address shares the budget.
    assert!(!unauth_allocate(&mut t, client(5001)));
}

#[test]
fn unauth_limiter_off_answers_everything() {
    let mut t = limited(0, 1);
    assert_eq!(t.s.unauth_table_len(), 0);
    let tuple = client(5000);
    assert!((0..3000).all(|_| unauth_allocate(&mut t, tuple)));
    assert_eq!(t.s.stats().snapshot().unauth_rate_limited, 0);
}

#[test]
fn unauth_limiter_table_does_not_grow() {
    let mut t = limited(200, 1000);
    let before = t.s.unauth_table_len();
    assert_eq!(before, UNAUTH_TABLE_SLOTS);
    let tid = t.tid();
    let pkt = build_request(Method::ALLOCATE, tid, None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    let mut answered = 0;
    for i in 0..100_000u32 {
        let ip = if i % 2 == 0 {
            IpAddr::from((0x0b00_0000u32 + i).to_be_bytes())
        } else {
            // Distinct /64s.
            IpAddr::from(std::net::Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0001u128 | (u128::from(i) << 64),
            ))
        };
        if matches!(t.send(&pkt, from_ip(ip, 1000)).0, Outcome::Reply { .. }) {
            answered += 1;
        }
    }
    assert_eq!(t.s.unauth_table_len(), before);
    assert_eq!(t.s.table_sizes(), (0, 0, 0));
    // 100,000 sources over 4096 shared buckets of 1000: everyone is answered here.
    assert_eq!(answered, 100_000);
}

#[test]
fn unauth_limiter_budgets_are_per_source() {
    let mut t = limited(1, 10);
    let a = client(5000);
    assert_eq!((0..20).filter(|_| unauth_allocate(&mut t, a)).count(), 10);
    // Other addresses have budgets of their own (but for the odd hash collision).
    let others = (0..400u32)
        .filter(|i| {
            let ip = IpAddr::from((0xc633_6400u32 + i * 7 + 1000).to_be_bytes());
            unauth_allocate(&mut t, from_ip(ip, 1))
        })
        .count();
    assert!(others >= 395, "only {others} of 400 other sources answered");
    // IPv6: one budget per /64.
    let v6 = |s: &str| from_ip(s.parse().unwrap(), 7);
    assert_eq!(
        (0..10)
            .filter(|_| unauth_allocate(&mut t, v6("2001:db8:1:2::1")))
            .count(),
        10
    );
    assert!(!unauth_allocate(&mut t, v6("2001:db8:1:2:ffff::9")));
    // IPv4-mapped IPv6 counts as the IPv4 address.
    assert!(!unauth_allocate(&mut t, v6("::ffff:203.0.113.5")));
    let fresh = ["2001:db8:1:3::1", "2001:db8:9::1", "2001:db8:1:4::1"]
        .iter()
        .filter(|s| unauth_allocate(&mut t, v6(s)))
        .count();
    assert!(fresh >= 2, "other /64s have budgets of their own");
}

#[test]
fn unauth_limiter_spares_authenticated_traffic_and_binding() {
    let mut t = limited(1, 5);
    let (tuple, c, _) = logged_in(&mut t, 6000);
    // Use up the rest of the budget.
    while unauth_allocate(&mut t, tuple) {}
    for i in 0..200u32 {
        let resp = t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::Lifetime(600)).unwrap()
        });
        assert_eq!(code_of(&resp), None, "refresh {i}");
        let resp = t.request(Method::CREATE_PERMISSION, tuple, Some(&c), |b| {
            b.add(&Attribute::XorPeerAddress(peer([198, 51, 100, 1], 1)))
                .unwrap()
        });
        assert_eq!(code_of(&resp), None, "permission {i}");
        let resp = t.request(Method::BINDING, tuple, None, |_| {});
        assert_eq!(code_of(&resp), None, "binding {i}");
    }
    // A request with integrity that still ends in 401 (a wrong key) is charged.
    let bad = Creds {
        key: Key::Md5([0; 16]),
        username: c.username.clone(),
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
    };
    let other = client(6001);
    let resp = t.request(Method::ALLOCATE, other, Some(&bad), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert!(resp.is_empty(), "401 suppressed over the limit");
    let s = t.s.stats().snapshot();
    assert!(s.unauth_rate_limited >= 2, "{s:?}");
    // ... and answered again once the budget refills.
    t.advance(Duration::from_secs(2));
    let resp = t.request(Method::ALLOCATE, other, Some(&bad), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(401));
}

#[test]
fn allocations_per_ip_are_capped_and_released_on_delete() {
    let mut t = T::with(vec![], |c| {
        c.max_allocations_per_ip = 2;
        c.user_quota = 0;
    });
    let (u, k, _) = rest_creds(86_400, "bob");
    let mut tuples = Vec::new();
    for port in [8000, 8001] {
        let tuple = client(port);
        let c = t.login(&u, Key::Md5(k), tuple);
        t.allocate(tuple, &c);
        tuples.push((tuple, c));
    }
    let ip = client(0).client.ip();
    assert_eq!(t.s.shared().ip_allocations(ip), 2);
    let third = client(8002);
    let c3 = t.login(&u, Key::Md5(k), third);
    let resp = t.request(Method::ALLOCATE, third, Some(&c3), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(486));
    assert_eq!(t.s.stats().snapshot().ip_quota_rejections, 1);
    assert!(t.s.allocation(&third).is_none());
    // Another source is not affected.
    let elsewhere = from_ip("198.51.100.9".parse().unwrap(), 8000);
    let ce = t.login(&u, Key::Md5(k), elsewhere);
    t.allocate(elsewhere, &ce);
    // Deleting one frees a place.
    let (tuple, c) = &tuples[0];
    let resp = t.request(Method::REFRESH, *tuple, Some(c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(code_of(&resp), None);
    assert_eq!(t.s.shared().ip_allocations(ip), 1);
    t.allocate(third, &c3);
    assert_eq!(t.s.shared().ip_allocations(ip), 2);
    // Expiry releases them too.
    t.advance(Duration::from_secs(3600));
    assert_eq!(t.s.shared().ip_allocations(ip), 0);
    assert_eq!(t.s.shared().total_allocations(), 0);
}

#[test]
fn allocations_per_ip_group_ipv6_by_64_and_zero_is_unlimited() {
    let mut t = T::with(vec![], |c| {
        c.max_allocations_per_ip = 1;
        c.relay_v6 = Some(RelayAddress {
            bind: "2001:db8::10".parse().unwrap(),
            advertise: "2001:db8::10".parse().unwrap(),
        });
    });
    let (u, k, _) = rest_creds(86_400, "bob");
    let a = from_ip("2001:db8:5:6::1".parse().unwrap(), 1);
    let b = from_ip("2001:db8:5:6::2".parse().unwrap(), 1);
    let ca = t.login(&u, Key::Md5(k), a);
    t.allocate(a, &ca);
    let cb = t.login(&u, Key::Md5(k), b);
    let resp = t.request(Method::ALLOCATE, b, Some(&cb), |m| {
        m.add(&Attribute::RequestedTransport(17)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(486), "same /64");

    let mut t = T::with(vec![], |c| c.max_allocations_per_ip = 0);
    for port in 0..50 {
        let tuple = client(9000 + port);
        let c = t.login(&u, Key::Md5(k), tuple);
        t.allocate(tuple, &c);
    }
}

mod family;
mod rfc5780;
mod tcp;

#[test]
fn challenges_carry_no_software() {
    let mut t = T::with(vec![], |c| c.software = Some("ternd test".into()));
    let resp = t.request(Method::ALLOCATE, client(1), None, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    assert!(m.get(attr_type::SOFTWARE).is_none(), "401 stays minimal");
    // Authenticated answers may carry it.
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), client(2));
    let resp = t.request(Method::ALLOCATE, client(2), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert!(
        Message::parse(&resp)
            .unwrap()
            .get(attr_type::SOFTWARE)
            .is_some()
    );
}

#[test]
fn a_reloaded_policy_applies_to_existing_permissions_and_channels() {
    let mut t = T::new();
    let (tuple, c, relay) = logged_in(&mut t, 150);
    let p = peer([198, 51, 100, 8], 7000);
    t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    assert!(matches!(
        t.send(b"\x40\x00\x00\x01x", tuple).0,
        Outcome::Forward { .. }
    ));
    assert!(peer_data(&mut t, relay.port(), p, b"y").is_some());
    // The operator denies that peer and reloads.
    let service = vec![SocketAddr::from(([192, 0, 2, 10], 3478))];
    let policy = PeerPolicy::new(
        vec!["198.51.100.0/24".parse().unwrap()],
        vec!["198.51.100.8/32".parse().unwrap()],
        service,
    );
    t.s.shared().replace_policy(policy);
    assert_eq!(
        t.send(b"\x40\x00\x00\x01x", tuple).0,
        Outcome::Dropped(DropReason::NoChannel)
    );
    assert!(
        peer_data(&mut t, relay.port(), p, b"y").is_none(),
        "no permission any more"
    );
    let a = t.s.allocation(&tuple).unwrap();
    assert!(a.channels.is_empty() && a.permissions.is_empty());
}

#[test]
fn churn_does_not_grow_the_timer_heap() {
    let mut t = T::with(vec![], |c| {
        c.ports = crate::turn::PortRange {
            lo: 50000,
            hi: 50099,
        };
        c.unauth_rate_limit = 0;
        c.max_allocations_per_ip = 0;
        c.user_quota = 0;
    });
    let (u, k, _) = rest_creds(86_400, "churner");
    let mut live = Vec::new();
    for i in 0..5000u16 {
        let tuple = client(1000 + i);
        let c = t.login(&u, Key::Md5(k), tuple);
        t.allocate(tuple, &c);
        live.push((tuple, c));
        if live.len() > 10 {
            let (old, c) = live.remove(0);
            t.request(Method::REFRESH, old, Some(&c), |b| {
                b.add(&Attribute::Lifetime(0)).unwrap()
            });
        }
    }
    let (allocs, _, timers) = t.s.table_sizes();
    assert_eq!(allocs, 10);
    assert!(
        timers <= 2 * allocs + 1024 + 1,
        "timer heap holds {timers} entries"
    );
}

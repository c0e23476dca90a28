use super::*;
use crate::stun::{MAGIC_COOKIE, UnknownAttributes};

fn tuple(client: &str) -> FiveTuple {
    FiveTuple {
        client: client.parse().unwrap(),
        server: "127.0.0.1:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

fn server(cfg: CoreConfig) -> Server {
    Server::new(Arc::new(cfg), Arc::new(Stats::default()))
}

fn request(method: Method, build: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(method, Class::Request),
        TransactionId([7; 12]),
    )
    .unwrap();
    build(&mut b);
    let n = b.finish();
    buf[..n].to_vec()
}

fn run(s: &mut Server, pkt: &[u8], from: &str) -> (Outcome, Vec<u8>) {
    let mut out = [0u8; 1500];
    let o = s.handle_client(pkt, tuple(from), Instant::now(), &mut out);
    let bytes = match o {
        Outcome::Reply { len } => out[..len].to_vec(),
        _ => Vec::new(),
    };
    (o, bytes)
}

#[test]
fn binding_v4_and_v6() {
    let mut s = server(CoreConfig::default());
    for from in ["192.0.2.1:32853", "[2001:db8::1]:40000"] {
        let req = request(Method::BINDING, |_| {});
        let (o, resp) = run(&mut s, &req, from);
        assert!(matches!(o, Outcome::Reply { .. }));
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type(),
            MessageType::new(Method::BINDING, Class::Success)
        );
        assert_eq!(m.transaction_id(), TransactionId([7; 12]));
        assert_eq!(
            m.get_decoded(attr_type::XOR_MAPPED_ADDRESS)
                .unwrap()
                .unwrap(),
            Attribute::XorMappedAddress(from.parse().unwrap())
        );
        assert!(
            m.get(attr_type::SOFTWARE).is_none(),
            "SOFTWARE is off by default"
        );
        assert!(
            !m.has_fingerprint(),
            "no FINGERPRINT unless the request had one"
        );
    }
    assert_eq!(s.stats().snapshot().binding_responses, 2);
}

#[test]
fn fingerprint_echoed_and_software_when_configured() {
    let mut s = server(CoreConfig {
        software: Some("ternd test".into()),
        ..CoreConfig::default()
    });
    let req = request(Method::BINDING, |b| b.add_fingerprint().unwrap());
    let (_, resp) = run(&mut s, &req, "192.0.2.1:1");
    let m = Message::parse(&resp).unwrap();
    assert!(m.has_fingerprint());
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.get_decoded(attr_type::SOFTWARE).unwrap().unwrap(),
        Attribute::Software("ternd test")
    );
}

#[test]
fn bad_fingerprint_dropped() {
    let mut s = server(CoreConfig::default());
    let mut req = request(Method::BINDING, |b| b.add_fingerprint().unwrap());
    let last = req.len() - 1;
    req[last] ^= 1;
    let (o, _) = run(&mut s, &req, "192.0.2.1:1");
    assert_eq!(o, Outcome::Dropped(DropReason::BadFingerprint));
    assert_eq!(s.stats().snapshot().malformed, 1);
}

#[test]
fn unknown_comprehension_required_gets_420() {
    let mut s = server(CoreConfig::default());
    let req = request(Method::BINDING, |b| {
        b.add_raw(0x7F01, b"x").unwrap();
        b.add_raw(0xC001, b"optional is fine").unwrap();
        b.add_raw(0x0003, &[0, 0, 0, 6]).unwrap(); // CHANGE-REQUEST: RFC 5780 is off
        b.add_raw(0x7F01, b"dup").unwrap();
        b.add_fingerprint().unwrap();
    });
    let (_, resp) = run(&mut s, &req, "192.0.2.1:1");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Error)
    );
    assert_eq!(
        m.get_decoded(attr_type::ERROR_CODE).unwrap().unwrap(),
        Attribute::ErrorCode(ErrorCode::new(420, "Unknown Attribute"))
    );
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
    assert_eq!(s.stats().snapshot().unknown_attribute_errors, 1);
}

#[test]
fn malformed_and_responses_dropped_and_counted() {
    let mut s = server(CoreConfig::default());
    let good = request(Method::BINDING, |_| {});
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 19],
        good[..good.len() - 1].to_vec(),
        {
            let mut v = good.clone();
            v.extend_from_slice(&[0; 4]);
            v
        },
        {
            let mut v = good.clone();
            v[0] |= 0x80;
            v
        },
        vec![0x99; 100],
    ];
    for c in &cases {
        let (o, _) = run(&mut s, c, "192.0.2.1:1");
        assert!(
            matches!(o, Outcome::Dropped(DropReason::Malformed)),
            "{c:?} -> {o:?}"
        );
    }
    assert_eq!(s.stats().snapshot().malformed, cases.len() as u64);
    let mut resp = [0u8; 64];
    let b = MessageBuilder::new(
        &mut resp,
        MessageType::new(Method::BINDING, Class::Success),
        TransactionId([1; 12]),
    )
    .unwrap();
    let n = b.finish();
    let (o, _) = run(&mut s, &resp[..n], "192.0.2.1:1");
    assert_eq!(o, Outcome::Dropped(DropReason::UnexpectedResponse));
    // ChannelData with no channel.
    let (o, _) = run(&mut s, &[0x40, 0, 0, 0], "192.0.2.1:1");
    assert_eq!(o, Outcome::Dropped(DropReason::NoChannel));
    // And the server still answers.
    assert!(matches!(
        run(&mut s, &good, "192.0.2.1:1").0,
        Outcome::Reply { .. }
    ));
}

#[test]
fn indication_consumed_silently() {
    let mut s = server(CoreConfig::default());
    let mut buf = [0u8; 64];
    let b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Indication),
        TransactionId([1; 12]),
    )
    .unwrap();
    let n = b.finish();
    assert_eq!(run(&mut s, &buf[..n], "192.0.2.1:1").0, Outcome::Consumed);
    assert_eq!(s.stats().snapshot().indications, 1);
}

#[test]
fn rfc3489_only_when_enabled() {
    let mut req = request(Method::BINDING, |_| {});
    req[4..8].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let mut s = server(CoreConfig::default());
    assert_eq!(
        run(&mut s, &req, "192.0.2.1:1").0,
        Outcome::Dropped(DropReason::Rfc3489Disabled)
    );

    let mut s = server(CoreConfig {
        stun_backward_compatibility: true,
        ..CoreConfig::default()
    });
    let (_, resp) = run(&mut s, &req, "192.0.2.1:4242");
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
    assert!(m.is_rfc3489());
    assert_eq!(
        m.get_decoded(attr_type::MAPPED_ADDRESS).unwrap().unwrap(),
        Attribute::MappedAddress("192.0.2.1:4242".parse().unwrap())
    );
    assert!(m.get(attr_type::XOR_MAPPED_ADDRESS).is_none());
    assert_ne!(m.cookie(), MAGIC_COOKIE);
}

#[test]
fn other_methods_get_400() {
    let mut s = server(CoreConfig::default());
    let req = request(Method::ALLOCATE, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let (_, resp) = run(&mut s, &req, "192.0.2.1:1");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::ALLOCATE, Class::Error)
    );
    let Some(Ok(Attribute::ErrorCode(e))) = m.get_decoded(attr_type::ERROR_CODE) else {
        panic!()
    };
    assert_eq!(e.code, 400);
}

#[test]
fn small_output_buffer_is_a_drop_not_a_panic() {
    let mut s = server(CoreConfig::default());
    let req = request(Method::BINDING, |_| {});
    let mut out = [0u8; 24];
    let o = s.handle_client(&req, tuple("192.0.2.1:1"), Instant::now(), &mut out);
    assert_eq!(o, Outcome::Dropped(DropReason::OutputTooSmall));
}

//! Binding (RFC 8489) and RFC 3489 compatibility.

use super::*;

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

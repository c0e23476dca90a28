//! Permissions, channels, Send/Data indications and ChannelData.

use super::*;

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
    t.pump();
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

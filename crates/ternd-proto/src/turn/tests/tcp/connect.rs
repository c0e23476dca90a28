//! RFC 6062 Allocate (§5.1), Connect (§5.2) and incoming connections (§5.3).

use super::*;

// ---------------------------------------------------------------------------------------
// Allocate (RFC 6062 §5.1)

#[test]
fn tcp_allocation_needs_tcp_relay_on_and_a_stream_transport() {
    // Off (the default): 442 even over TCP.
    let mut t = T::new();
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tcp(1));
    assert_eq!(code_of(&allocate_tcp(&mut t, tcp(1), &c)), Some(442));
    assert!(t.r.listening.is_empty());

    let mut t = tcp_t(64);
    // On, over UDP: 400 (§5.1: the client connection must be TCP or TLS).
    let c = t.login(&u, Key::Md5(k), client(2));
    assert_eq!(code_of(&allocate_tcp(&mut t, client(2), &c)), Some(400));
    assert_eq!(t.s.allocation_count(), 0);
    // Other transports stay 442.
    let c = t.login(&u, Key::Md5(k), tcp(3));
    assert_eq!(
        code_of(&t.request(Method::ALLOCATE, tcp(3), Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(132)).unwrap();
        })),
        Some(442)
    );
    // Over TCP and TLS: a listening socket, no UDP socket, no token.
    for (port, tuple) in [(4, tcp(4)), (5, stream(5, Transport::Tls))] {
        let c = t.login(&u, Key::Md5(k), tuple);
        let resp = allocate_tcp(&mut t, tuple, &c);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.message_type().class, Class::Success, "{port}");
        assert!(m.get(attr_type::RESERVATION_TOKEN).is_none());
        m.verify_integrity(c.key.as_bytes()).unwrap();
        let Some(Ok(Attribute::XorRelayedAddress(adv))) =
            m.get_decoded(attr_type::XOR_RELAYED_ADDRESS)
        else {
            panic!()
        };
        let a = t.s.allocation(&tuple).unwrap();
        assert!(a.tcp.is_some());
        assert_eq!(adv, a.advertised);
        assert!(t.r.listening.contains(&a.relay));
    }
    assert!(t.r.open.is_empty(), "no UDP relay socket");
    assert_eq!(t.r.listening.len(), 2);
}

#[test]
fn tcp_allocate_refuses_even_port_dont_fragment_and_reservation_token() {
    let mut t = tcp_t(64);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tcp(1));
    let extras: [&dyn Fn(&mut MessageBuilder<'_>); 3] = [
        &|b| b.add(&Attribute::EvenPort(false)).unwrap(),
        &|b| b.add_raw(attr_type::DONT_FRAGMENT, &[]).unwrap(),
        &|b| b.add(&Attribute::ReservationToken([1; 8])).unwrap(),
    ];
    for extra in extras {
        let resp = t.request(Method::ALLOCATE, tcp(1), Some(&c), |b| {
            b.add(&Attribute::RequestedTransport(TRANSPORT_TCP))
                .unwrap();
            extra(b);
        });
        assert_eq!(code_of(&resp), Some(400));
    }
    assert_eq!(t.s.allocation_count(), 0);
    assert!(t.r.listening.is_empty());
}

#[test]
fn tcp_allocation_takes_another_port_when_one_is_in_use_and_508_when_unsupported() {
    let mut t = tcp_t(64);
    for p in 50000..=50098 {
        t.r.in_use.insert(SocketAddr::from(([192, 0, 2, 10], p)));
    }
    let (_, relay) = tcp_allocation(&mut t, tcp(1));
    assert_eq!(relay, SocketAddr::from(([192, 0, 2, 10], 50099)));

    // An I/O layer without TCP relaying (the trait's defaults): 508.
    struct NoTcp;
    impl Relays for NoTcp {
        fn open(&mut self, _: SocketAddr, _: bool) -> std::io::Result<()> {
            Ok(())
        }
        fn claim(&mut self, _: SocketAddr, _: bool) -> std::io::Result<()> {
            Ok(())
        }
        fn reserve(&mut self, _: SocketAddr) -> std::io::Result<()> {
            Ok(())
        }
        fn release(&mut self, _: SocketAddr) {}
    }
    let mut t = tcp_t(64);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tcp(2));
    let pkt = build_request(Method::ALLOCATE, t.tid(), Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(TRANSPORT_TCP))
            .unwrap();
    });
    let mut out = [0u8; 1500];
    let Outcome::Reply { len } = t.s.handle_client(&pkt, tcp(2), t.now, &mut out, &mut NoTcp)
    else {
        panic!()
    };
    assert_eq!(code_of(&out[..len]), Some(508));
    assert_eq!(t.s.shared().user_allocations("bob"), 0, "quota given back");
}

// ---------------------------------------------------------------------------------------
// Connect (RFC 6062 §5.2)

#[test]
fn connect_answers_with_connection_id_once_connected() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let p = peer(PEER, 8000);
    let (id, tid) = connect_started(&mut t, ctl, &c, p);
    assert!(
        drain(&mut t).is_empty(),
        "nothing before the connection is up"
    );
    assert!(
        t.s.allocation(&ctl).unwrap().permitted(p.ip(), t.now),
        "Connect installs a permission"
    );
    assert_eq!(
        t.s.allocation(&ctl)
            .unwrap()
            .tcp
            .as_ref()
            .unwrap()
            .connections[0]
            .state,
        TcpConnState::Connecting
    );
    assert_eq!(t.s.shared().tcp_owner(id), Some(0));

    t.now += Duration::from_secs(3);
    assert_eq!(
        event(&mut t, TcpEvent::Connected { id }),
        TcpVerdict::Keep { id }
    );
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    let (to, bytes) = msg_to(&out[0]);
    assert_eq!(to, ctl);
    let m = Message::parse(bytes).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECT, Class::Success)
    );
    assert_eq!(m.transaction_id(), tid);
    assert_eq!(connection_id_of(&m), id);
    m.verify_integrity(&key_bytes(&c)).unwrap();
    assert_eq!(
        t.s.allocation(&ctl)
            .unwrap()
            .tcp
            .as_ref()
            .unwrap()
            .connections[0]
            .state,
        TcpConnState::Pending
    );
    let s = t.s.stats().snapshot();
    assert_eq!(s.tcp_connections_opened, 1);
    assert_eq!(
        s.responses[stats::method_index(Method::CONNECT)][stats::code_index(0)],
        1
    );
    // A duplicate report changes nothing.
    assert_eq!(
        event(&mut t, TcpEvent::Connected { id }),
        TcpVerdict::Keep { id }
    );
    assert!(drain(&mut t).is_empty());
}

#[test]
fn connect_response_is_protected_with_sha256_like_the_request() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (u, _, k2) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Sha256(k2), ctl);
    let resp = allocate_tcp(&mut t, ctl, &c);
    assert_eq!(code_of(&resp), None);
    let (o, _, _) = send_req(&mut t, Method::CONNECT, ctl, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(peer(PEER, 1))).unwrap();
    });
    assert_eq!(o, Outcome::Consumed);
    let id = t.r.connects[0].2;
    assert_eq!(
        event(&mut t, TcpEvent::ConnectFailed { id }),
        TcpVerdict::Close
    );
    let out = drain(&mut t);
    let m = Message::parse(msg_to(&out[0]).1).unwrap();
    assert_eq!(error_code(&m), Some(447));
    assert!(m.has_integrity_sha256());
    m.verify_integrity_sha256(&k2).unwrap();
}

#[test]
fn connect_fails_with_447_when_refused_failed_or_timed_out() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);

    // The I/O layer cannot even start: 447 at once.
    t.r.refuse_connect = true;
    let (o, resp, _) = connect(&mut t, ctl, &c, peer(PEER, 1));
    assert!(matches!(o, Outcome::Reply { .. }));
    assert_eq!(code_of(&resp), Some(447));
    t.r.refuse_connect = false;

    // Reported failure: 447, and the core does not close what the I/O layer reported.
    let (id, tid) = connect_started(&mut t, ctl, &c, peer(PEER, 2));
    assert_eq!(
        event(&mut t, TcpEvent::ConnectFailed { id }),
        TcpVerdict::Close
    );
    let out = drain(&mut t);
    let m = Message::parse(msg_to(&out[0]).1).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECT, Class::Error)
    );
    assert_eq!(m.transaction_id(), tid);
    assert_eq!(error_code(&m), Some(447));
    m.verify_integrity(&key_bytes(&c)).unwrap();
    assert!(t.r.closed_tcp.is_empty());
    assert_eq!(t.s.shared().tcp_owner(id), None);

    // No answer from the peer: 447 after 30 s, and the attempt is abandoned.
    let (id, tid) = connect_started(&mut t, ctl, &c, peer(PEER, 3));
    t.advance(TCP_CONNECT_TIMEOUT - Duration::from_secs(1));
    assert!(drain(&mut t).is_empty());
    assert!(t.r.closed_tcp.is_empty());
    t.advance(Duration::from_secs(1));
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    let m = Message::parse(msg_to(&out[0]).1).unwrap();
    assert_eq!((m.transaction_id(), error_code(&m)), (tid, Some(447)));
    assert_eq!(t.r.closed_tcp, vec![id]);
    // Too late now.
    assert_eq!(event(&mut t, TcpEvent::Connected { id }), TcpVerdict::Close);
    assert!(drain(&mut t).is_empty());

    // The peer can be tried again.
    connect_started(&mut t, ctl, &c, peer(PEER, 3));
    let s = t.s.stats().snapshot();
    assert_eq!(s.tcp_connect_failures, 3);
    assert_eq!(
        s.responses[stats::method_index(Method::CONNECT)][stats::code_index(447)],
        3
    );
    assert_eq!(t.s.tcp_connection_count(), 1);
}

#[test]
fn connect_446_while_a_connection_to_the_peer_is_attempted_pending_or_bound() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let p = peer(PEER, 9);
    let (id, _) = connect_started(&mut t, ctl, &c, p);
    let (_, resp, _) = connect(&mut t, ctl, &c, p);
    assert_eq!(code_of(&resp), Some(446));
    Message::parse(&resp)
        .unwrap()
        .verify_integrity(&key_bytes(&c))
        .unwrap();
    let _ = event(&mut t, TcpEvent::Connected { id });
    drain(&mut t);
    assert_eq!(code_of(&connect(&mut t, ctl, &c, p).1), Some(446));
    let (o, _) = bind(&mut t, tcp(2), Some(&c), Some(id));
    assert!(matches!(o, Outcome::Reply { .. }));
    assert_eq!(code_of(&connect(&mut t, ctl, &c, p).1), Some(446));
    // Another port of the same peer is another connection.
    connect_started(&mut t, ctl, &c, peer(PEER, 10));
    assert_eq!(t.r.connects.len(), 2);
    let s = t.s.stats().snapshot();
    assert_eq!(
        s.responses[stats::method_index(Method::CONNECT)][stats::code_index(446)],
        3
    );
}

#[test]
fn connect_errors() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    // No or a bad XOR-PEER-ADDRESS.
    let (_, resp, _) = send_req(&mut t, Method::CONNECT, ctl, Some(&c), |_| {});
    assert_eq!(code_of(&resp), Some(400));
    let (_, resp, _) = send_req(&mut t, Method::CONNECT, ctl, Some(&c), |b| {
        b.add_raw(attr_type::XOR_PEER_ADDRESS, &[0, 9, 0, 0])
            .unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
    // Peer policy: 403; wrong family: 443.
    assert_eq!(
        code_of(&connect(&mut t, ctl, &c, peer([10, 0, 0, 1], 80)).1),
        Some(403)
    );
    assert_eq!(
        code_of(&connect(&mut t, ctl, &c, peer([127, 0, 0, 1], 80)).1),
        Some(403)
    );
    assert_eq!(
        code_of(&connect(&mut t, ctl, &c, "[2001:db8::1]:80".parse().unwrap()).1),
        Some(443)
    );
    assert!(t.r.connects.is_empty());
    assert!(
        t.s.allocation(&ctl).unwrap().permissions.is_empty(),
        "no permission for refused peers"
    );
    // Unauthenticated: 401; without an allocation: 437.
    let (_, resp, _) = send_req(&mut t, Method::CONNECT, ctl, None, |b| {
        b.add(&Attribute::XorPeerAddress(peer(PEER, 1))).unwrap();
    });
    assert_eq!(code_of(&resp), Some(401));
    let (u, k, _) = rest_creds(86_400, "bob");
    let c2 = t.login(&u, Key::Md5(k), tcp(2));
    assert_eq!(
        code_of(&connect(&mut t, tcp(2), &c2, peer(PEER, 1)).1),
        Some(437)
    );
    // On a UDP allocation: 400.
    let (udp, cu, _) = logged_in(&mut t, 3);
    assert_eq!(
        code_of(&connect(&mut t, udp, &cu, peer(PEER, 1)).1),
        Some(400)
    );
    assert!(t.r.connects.is_empty());
}

#[test]
fn tcp_allocations_take_no_channels_or_send_indications() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let p = peer(PEER, 5);
    let resp = t.request(Method::CREATE_PERMISSION, ctl, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    assert_eq!(
        code_of(&resp),
        None,
        "permissions are for incoming connections"
    );
    let resp = t.request(Method::CHANNEL_BIND, ctl, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        b.add(&Attribute::XorPeerAddress(p)).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
    let mut buf = [0u8; 100];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::SEND, Class::Indication),
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add(&Attribute::XorPeerAddress(p)).unwrap();
    b.add(&Attribute::Data(b"hi")).unwrap();
    let n = b.finish();
    assert_eq!(
        t.send(&buf[..n], ctl).0,
        Outcome::Dropped(DropReason::TcpAllocation)
    );
}

// ---------------------------------------------------------------------------------------
// Incoming connections (RFC 6062 §5.3)

#[test]
fn accepted_peer_gets_a_connection_attempt_only_with_a_permission() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, relay) = tcp_allocation(&mut t, ctl);
    let p = peer(PEER, 40000);
    assert_eq!(
        event(&mut t, TcpEvent::Accepted { relay, peer: p }),
        TcpVerdict::Close,
        "no permission: closed at once"
    );
    assert!(drain(&mut t).is_empty());
    // Unknown relay address.
    assert_eq!(
        event(
            &mut t,
            TcpEvent::Accepted {
                relay: SocketAddr::from(([192, 0, 2, 10], 1)),
                peer: p
            }
        ),
        TcpVerdict::Close
    );
    let resp = t.request(Method::CREATE_PERMISSION, ctl, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(peer(PEER, 1))).unwrap();
    });
    assert_eq!(code_of(&resp), None);
    let TcpVerdict::Keep { id } = event(&mut t, TcpEvent::Accepted { relay, peer: p }) else {
        panic!("kept with a permission (for the IP, any port)")
    };
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    let (to, bytes) = msg_to(&out[0]);
    assert_eq!(to, ctl);
    let m = Message::parse(bytes).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(
        m.get_decoded(attr_type::XOR_PEER_ADDRESS).unwrap().unwrap(),
        Attribute::XorPeerAddress(p)
    );
    assert_eq!(connection_id_of(&m), id);
    let s = t.s.stats().snapshot();
    assert_eq!(
        (s.tcp_connections_accepted, s.tcp_connections_refused),
        (1, 2)
    );

    // The permission lapses: new connections are closed again.
    t.advance(PERMISSION_LIFETIME);
    assert_eq!(
        event(
            &mut t,
            TcpEvent::Accepted {
                relay,
                peer: peer(PEER, 40001)
            }
        ),
        TcpVerdict::Close
    );
}

#[test]
fn accepted_connection_binds_and_an_unbound_one_closes_after_30_s() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, relay) = tcp_allocation(&mut t, ctl);
    t.request(Method::CREATE_PERMISSION, ctl, Some(&c), |b| {
        b.add(&Attribute::XorPeerAddress(peer(PEER, 1))).unwrap();
    });
    let TcpVerdict::Keep { id: a } = event(
        &mut t,
        TcpEvent::Accepted {
            relay,
            peer: peer(PEER, 1),
        },
    ) else {
        panic!()
    };
    let TcpVerdict::Keep { id: b } = event(
        &mut t,
        TcpEvent::Accepted {
            relay,
            peer: peer(PEER, 2),
        },
    ) else {
        panic!()
    };
    assert_ne!(a, b);
    drain(&mut t);
    t.advance(Duration::from_secs(10));
    let (o, resp) = bind(&mut t, tcp(2), Some(&c), Some(a));
    assert!(matches!(o, Outcome::Reply { .. }), "{:?}", code_of(&resp));
    assert_eq!(drain(&mut t), vec![Got::Splice(tcp(2), a)]);
    t.advance(Duration::from_secs(19));
    assert!(t.r.closed_tcp.is_empty());
    t.advance(Duration::from_secs(1));
    assert_eq!(t.r.closed_tcp, vec![b], "30 s after it was accepted");
    assert_eq!(t.s.stats().snapshot().tcp_bind_timeouts, 1);
    let c3 = t.login(&c.username, c.key, tcp(3));
    assert_eq!(
        code_of(&bind(&mut t, tcp(3), Some(&c3), Some(b)).1),
        Some(400)
    );
    // The bound one has no timer (it lasts as long as the allocation).
    t.advance(Duration::from_secs(500));
    assert_eq!(t.r.closed_tcp, vec![b]);
    assert_eq!(t.s.data_connection(&tcp(2)), Some(a));
}

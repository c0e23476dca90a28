//! RFC 6062 TCP allocations, with the fake clock and fake relays of the parent module.

use super::*;
use crate::turn::testing::shared;

/// A core with `tcp_relay` on (at most `max` connections per allocation).
fn tcp_t(max: usize) -> T {
    let t0 = Instant::now();
    let sh = shared(
        t0,
        vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        |_| {},
    )
    .with_tcp_relay(TcpRelayConfig {
        enabled: true,
        max_connections_per_allocation: max,
    });
    T {
        s: Server::new(Arc::new(sh), Arc::new(Stats::default()), [42; 32]),
        r: FakeRelays::default(),
        t0,
        now: t0,
        next_tid: 1,
    }
}

fn stream(port: u16, transport: Transport) -> FiveTuple {
    FiveTuple {
        transport,
        ..client(port)
    }
}

fn tcp(port: u16) -> FiveTuple {
    stream(port, Transport::Tcp)
}

const PEER: [u8; 4] = [198, 51, 100, 7];

fn allocate_tcp(t: &mut T, tuple: FiveTuple, c: &Creds) -> Vec<u8> {
    t.request(Method::ALLOCATE, tuple, Some(c), |b| {
        b.add(&Attribute::RequestedTransport(TRANSPORT_TCP))
            .unwrap();
    })
}

/// A TCP allocation on `tuple` for bob; returns his credentials and the relay listener's
/// local address.
fn tcp_allocation(t: &mut T, tuple: FiveTuple) -> (Creds, SocketAddr) {
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = allocate_tcp(t, tuple, &c);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "{:?}",
        error_code(&m)
    );
    let relay = t.s.allocation(&tuple).unwrap().relay;
    (c, relay)
}

/// Sends a request built by `build` with `creds`; returns the outcome, the reply bytes and
/// the transaction id.
fn send_req(
    t: &mut T,
    method: Method,
    tuple: FiveTuple,
    creds: Option<&Creds>,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> (Outcome, Vec<u8>, TransactionId) {
    let tid = t.tid();
    let pkt = build_request(method, tid, creds, build);
    let (o, bytes) = t.send(&pkt, tuple);
    (o, bytes, tid)
}

fn connect(
    t: &mut T,
    tuple: FiveTuple,
    c: &Creds,
    peer: SocketAddr,
) -> (Outcome, Vec<u8>, TransactionId) {
    send_req(t, Method::CONNECT, tuple, Some(c), |b| {
        b.add(&Attribute::XorPeerAddress(peer)).unwrap();
    })
}

/// A Connect that the I/O layer starts; returns its connection id and transaction id.
fn connect_started(
    t: &mut T,
    tuple: FiveTuple,
    c: &Creds,
    peer: SocketAddr,
) -> (u32, TransactionId) {
    let n = t.r.connects.len();
    let (o, _, tid) = connect(t, tuple, c, peer);
    assert_eq!(o, Outcome::Consumed, "the answer waits for the connection");
    assert_eq!(t.r.connects.len(), n + 1);
    let (relay, p, id) = *t.r.connects.last().unwrap();
    assert_eq!(relay, t.s.allocation(&tuple).unwrap().relay);
    assert_eq!(p, peer);
    assert_ne!(id, 0);
    (id, tid)
}

/// A peer connection up and waiting for its ConnectionBind; the Connect response drained.
fn connected(t: &mut T, tuple: FiveTuple, c: &Creds, peer: SocketAddr) -> u32 {
    let (id, _) = connect_started(t, tuple, c, peer);
    assert_eq!(
        event(t, TcpEvent::Connected { id }),
        TcpVerdict::Keep { id }
    );
    let out = drain(t);
    assert_eq!(out.len(), 1);
    id
}

fn event(t: &mut T, e: TcpEvent) -> TcpVerdict {
    t.s.handle_tcp_event(e, t.now, &mut t.r)
}

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Msg(FiveTuple, Vec<u8>),
    Splice(FiveTuple, u32),
    Handoff(FiveTuple, u16),
}

fn drain(t: &mut T) -> Vec<Got> {
    let mut out = [0u8; 1500];
    let mut v = Vec::new();
    while let Some(o) = t.s.poll_output(&mut out) {
        v.push(match o {
            Output::Transmit { tuple, len } => Got::Msg(tuple, out[..len].to_vec()),
            Output::Splice {
                tuple,
                connection_id,
            } => Got::Splice(tuple, connection_id),
            Output::Handoff { tuple, worker } => Got::Handoff(tuple, worker),
        });
    }
    v
}

fn msg_to(got: &Got) -> (FiveTuple, &[u8]) {
    match got {
        Got::Msg(t, b) => (*t, b),
        other => panic!("not a message: {other:?}"),
    }
}

fn connection_id_of(m: &Message<'_>) -> u32 {
    match m.get_decoded(attr_type::CONNECTION_ID) {
        Some(Ok(Attribute::ConnectionId(id))) => id,
        other => panic!("no CONNECTION-ID: {other:?}"),
    }
}

fn bind(t: &mut T, data: FiveTuple, c: Option<&Creds>, id: Option<u32>) -> (Outcome, Vec<u8>) {
    let (o, bytes, _) = send_req(t, Method::CONNECTION_BIND, data, c, |b| {
        if let Some(id) = id {
            b.add(&Attribute::ConnectionId(id)).unwrap();
        }
    });
    (o, bytes)
}

fn key_bytes(c: &Creds) -> Vec<u8> {
    c.key.as_bytes().to_vec()
}

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
        fn close(&mut self, _: SocketAddr) {}
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

// ---------------------------------------------------------------------------------------
// ConnectionBind (RFC 6062 §5.4)

#[test]
fn connection_bind_succeeds_and_splices_the_new_connection() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let id = connected(&mut t, ctl, &c, peer(PEER, 80));
    let data = stream(2, Transport::Tls);
    // The control connection's credentials and nonce, on the new connection.
    let (o, resp) = bind(&mut t, data, Some(&c), Some(id));
    let Outcome::Reply { .. } = o else {
        panic!("{o:?}")
    };
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECTION_BIND, Class::Success)
    );
    m.verify_integrity(&key_bytes(&c)).unwrap();
    assert_eq!(drain(&mut t), vec![Got::Splice(data, id)]);
    assert_eq!(t.s.data_connection(&data), Some(id));
    assert_eq!(
        t.s.allocation(&ctl)
            .unwrap()
            .tcp
            .as_ref()
            .unwrap()
            .connections[0]
            .state,
        TcpConnState::Bound { data }
    );
    assert_eq!(
        t.s.allocation_count(),
        1,
        "a data connection is no allocation"
    );
    assert_eq!(t.s.stats().snapshot().tcp_connections_bound, 1);
    // Bound once only; the data connection takes no more STUN.
    assert_eq!(
        code_of(&bind(&mut t, tcp(3), Some(&c), Some(id)).1),
        Some(400)
    );
    assert_eq!(
        code_of(&bind(&mut t, data, Some(&c), Some(id)).1),
        Some(400)
    );
    assert_eq!(code_of(&allocate_tcp(&mut t, data, &c)), Some(400));
    assert!(drain(&mut t).is_empty());
    // Past the bind timeout, nothing closes.
    t.advance(Duration::from_secs(60));
    assert!(t.r.closed_tcp.is_empty());
}

#[test]
fn connection_bind_with_a_fresh_nonce_for_the_data_connection() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let id = connected(&mut t, ctl, &c, peer(PEER, 80));
    let data = tcp(2);
    let (o, resp) = bind(&mut t, data, None, Some(id));
    assert!(matches!(o, Outcome::Reply { .. }));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401));
    let Some(Ok(Attribute::Nonce(n))) = m.get_decoded(attr_type::NONCE) else {
        panic!()
    };
    let c2 = Creds {
        username: c.username.clone(),
        key: c.key,
        realm: c.realm.clone(),
        nonce: n.to_string(),
    };
    let (_, resp) = bind(&mut t, data, Some(&c2), Some(id));
    assert_eq!(code_of(&resp), None);
    assert_eq!(drain(&mut t), vec![Got::Splice(data, id)]);
    // A nonce of some third connection is stale here.
    let mut c3 = c2;
    c3.nonce = t.login(&c.username, c.key, tcp(9)).nonce;
    let id2 = connected(&mut t, ctl, &c, peer(PEER, 81));
    assert_eq!(
        code_of(&bind(&mut t, tcp(4), Some(&c3), Some(id2)).1),
        Some(438)
    );
}

#[test]
fn connection_bind_errors() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let id = connected(&mut t, ctl, &c, peer(PEER, 80));
    let data = tcp(2);
    // Another user's valid credentials: 441, protected with that user's key.
    let alice_key = long_term_key_md5("alice", "example.org", "wonderland").unwrap();
    let alice = Creds {
        username: "alice".into(),
        key: Key::Md5(alice_key),
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
    };
    let resp = bind(&mut t, data, Some(&alice), Some(id)).1;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(441));
    m.verify_integrity(&alice_key).unwrap();
    // Bob's name with a wrong key: 401.
    let wrong = Creds {
        key: Key::Md5([0; 16]),
        ..alice
    };
    let wrong = Creds {
        username: c.username.clone(),
        ..wrong
    };
    assert_eq!(
        code_of(&bind(&mut t, data, Some(&wrong), Some(id)).1),
        Some(401)
    );
    // Unknown or missing CONNECTION-ID, with good credentials: 400 (the control
    // connection's nonce counts only for its own connections).
    assert_eq!(
        code_of(&bind(&mut t, data, Some(&c), Some(id ^ 1)).1),
        Some(438)
    );
    let cd = t.login(&c.username, c.key, data);
    assert_eq!(
        code_of(&bind(&mut t, data, Some(&cd), Some(id ^ 1)).1),
        Some(400)
    );
    assert_eq!(code_of(&bind(&mut t, data, Some(&cd), None).1), Some(400));
    // On the control connection, or over UDP: 400.
    assert_eq!(code_of(&bind(&mut t, ctl, Some(&c), Some(id)).1), Some(400));
    assert_eq!(
        code_of(&bind(&mut t, client(2), Some(&c), Some(id)).1),
        Some(400)
    );
    // A connection still being established is not pending yet: 400.
    let (id2, _) = connect_started(&mut t, ctl, &c, peer(PEER, 81));
    assert_eq!(
        code_of(&bind(&mut t, data, Some(&c), Some(id2)).1),
        Some(400)
    );
    // None of that bound anything; the right request still does.
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.s.data_connection(&data), None);
    assert_eq!(code_of(&bind(&mut t, data, Some(&c), Some(id)).1), None);
    let s = t.s.stats().snapshot();
    let at =
        |code| s.responses[stats::method_index(Method::CONNECTION_BIND)][stats::code_index(code)];
    assert_eq!((at(0), at(400), at(401), at(438), at(441)), (1, 5, 1, 1, 1));
}

#[test]
fn connected_but_unbound_peer_connection_closes_after_30_s() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let (id, _) = connect_started(&mut t, ctl, &c, peer(PEER, 80));
    t.advance(Duration::from_secs(20));
    let _ = event(&mut t, TcpEvent::Connected { id });
    drain(&mut t);
    // The 30 s run from the Connect success, not from the request.
    t.advance(Duration::from_secs(29));
    assert!(t.r.closed_tcp.is_empty());
    t.advance(Duration::from_secs(1));
    assert_eq!(t.r.closed_tcp, vec![id]);
    assert!(drain(&mut t).is_empty(), "the Connect was answered already");
    // Gone: the control connection's nonce no longer counts, a fresh one gets 400.
    assert_eq!(
        code_of(&bind(&mut t, tcp(2), Some(&c), Some(id)).1),
        Some(438)
    );
    let c2 = t.login(&c.username, c.key, tcp(2));
    assert_eq!(
        code_of(&bind(&mut t, tcp(2), Some(&c2), Some(id)).1),
        Some(400)
    );
    assert_eq!(t.s.tcp_connection_count(), 0);
    assert_eq!(t.s.shared().tcp_connection_total(), 0);
    // The allocation lives on, and can connect to the peer again.
    connect_started(&mut t, ctl, &c, peer(PEER, 80));
}

#[test]
fn connection_bind_on_another_worker_is_handed_to_the_owner() {
    let mut t = tcp_t(64);
    t.s.set_worker_index(1);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let id = connected(&mut t, ctl, &c, peer(PEER, 80));
    assert_eq!(t.s.shared().tcp_owner(id), Some(1));
    let mut other = Server::new(t.s.shared().clone(), Arc::new(Stats::default()), [7; 32]);
    other.set_worker_index(0);
    let data = tcp(2);
    let pkt = build_request(
        Method::CONNECTION_BIND,
        TransactionId([3; 12]),
        Some(&c),
        |b| {
            b.add(&Attribute::ConnectionId(id)).unwrap();
        },
    );
    let mut out = [0u8; 1500];
    let mut relays = FakeRelays::default();
    let o = other.handle_client(&pkt, data, t.now, &mut out, &mut relays);
    assert_eq!(o, Outcome::Consumed);
    assert_eq!(
        other.poll_output(&mut out),
        Some(Output::Handoff {
            tuple: data,
            worker: 1
        })
    );
    assert_eq!(other.poll_output(&mut out), None);
    // The owner takes the same frame.
    let (o, resp) = t.send(&pkt, data);
    assert!(matches!(o, Outcome::Reply { .. }));
    assert_eq!(code_of(&resp), None);
    assert_eq!(drain(&mut t), vec![Got::Splice(data, id)]);
    // Unknown ids are answered where they land (after authentication).
    let c5 = t.login(&c.username, c.key, tcp(5));
    let pkt = build_request(
        Method::CONNECTION_BIND,
        TransactionId([4; 12]),
        Some(&c5),
        |b| {
            b.add(&Attribute::ConnectionId(id ^ 1)).unwrap();
        },
    );
    let Outcome::Reply { len } = other.handle_client(&pkt, tcp(5), t.now, &mut out, &mut relays)
    else {
        panic!()
    };
    assert_eq!(code_of(&out[..len]), Some(400));
}

// ---------------------------------------------------------------------------------------
// Teardown and limits

#[test]
fn closing_the_control_connection_closes_every_connection() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, relay) = tcp_allocation(&mut t, ctl);
    let (connecting, _) = connect_started(&mut t, ctl, &c, peer(PEER, 1));
    let pending = connected(&mut t, ctl, &c, peer(PEER, 2));
    let bound = connected(&mut t, ctl, &c, peer(PEER, 3));
    let data = tcp(2);
    assert_eq!(code_of(&bind(&mut t, data, Some(&c), Some(bound)).1), None);
    // An indication queued but not yet drained when the connection closes.
    let TcpVerdict::Keep { id: accepted } = event(
        &mut t,
        TcpEvent::Accepted {
            relay,
            peer: peer(PEER, 4),
        },
    ) else {
        panic!()
    };
    assert_eq!(t.s.tcp_connection_count(), 4);

    t.s.close_tuple(&ctl, t.now, &mut t.r);
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(t.r.closed, vec![relay], "the listener");
    assert!(t.r.listening.is_empty());
    let mut closed = t.r.closed_tcp.clone();
    closed.sort_unstable();
    let mut all = vec![connecting, pending, bound, accepted];
    all.sort_unstable();
    assert_eq!(closed, all);
    assert_eq!(t.s.data_connection(&data), None);
    assert_eq!(t.s.tcp_connection_count(), 0);
    assert_eq!(t.s.shared().tcp_connection_total(), 0);
    assert!(
        drain(&mut t).iter().all(|g| !matches!(g, Got::Msg(..))),
        "nothing for a closed control connection"
    );
    assert_eq!(t.s.shared().user_allocations("bob"), 0);
    // Late reports are answered with Close and change nothing.
    assert_eq!(
        event(&mut t, TcpEvent::Connected { id: connecting }),
        TcpVerdict::Close
    );
    assert_eq!(
        event(&mut t, TcpEvent::Closed { id: bound }),
        TcpVerdict::Close
    );
    t.s.close_tuple(&data, t.now, &mut t.r);
    assert_eq!(t.r.closed_tcp.len(), 4);
    t.advance(Duration::from_secs(3600));
    assert_eq!(t.r.closed_tcp.len(), 4);
}

#[test]
fn data_connection_close_closes_its_peer_only() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let a = connected(&mut t, ctl, &c, peer(PEER, 1));
    let b = connected(&mut t, ctl, &c, peer(PEER, 2));
    assert_eq!(code_of(&bind(&mut t, tcp(2), Some(&c), Some(a)).1), None);
    assert_eq!(code_of(&bind(&mut t, tcp(3), Some(&c), Some(b)).1), None);
    drain(&mut t);
    // The client data connection closed (the I/O layer calls close_tuple as for any
    // stream): its peer connection is closed.
    t.s.close_tuple(&tcp(2), t.now, &mut t.r);
    assert_eq!(t.r.closed_tcp, vec![a]);
    assert_eq!(t.s.data_connection(&tcp(2)), None);
    // The peer side closed (reported): forgotten, not closed again by the core.
    assert_eq!(event(&mut t, TcpEvent::Closed { id: b }), TcpVerdict::Close);
    assert_eq!(t.r.closed_tcp, vec![a]);
    assert_eq!(t.s.data_connection(&tcp(3)), None);
    assert_eq!(t.s.allocation_count(), 1);
    assert_eq!(t.s.tcp_connection_count(), 0);
    // The peers can be reached again.
    connect_started(&mut t, ctl, &c, peer(PEER, 1));
}

#[test]
fn deleting_or_expiring_the_allocation_answers_waiting_connects() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, relay) = tcp_allocation(&mut t, ctl);
    let (connecting, tid) = connect_started(&mut t, ctl, &c, peer(PEER, 1));
    let resp = t.request(Method::REFRESH, ctl, Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap();
    });
    assert_eq!(code_of(&resp), None);
    assert_eq!(t.r.closed, vec![relay]);
    assert_eq!(t.r.closed_tcp, vec![connecting]);
    let out = drain(&mut t);
    assert_eq!(out.len(), 1);
    let m = Message::parse(msg_to(&out[0]).1).unwrap();
    assert_eq!((m.transaction_id(), error_code(&m)), (tid, Some(447)));

    // Expiry (a short REST credential) closes the rest the same way.
    let (u, k, _) = rest_creds(100, "bob");
    let c = t.login(&u, Key::Md5(k), tcp(5));
    assert_eq!(code_of(&allocate_tcp(&mut t, tcp(5), &c)), None);
    let id = connected(&mut t, tcp(5), &c, peer(PEER, 1));
    // Keep it bound so no bind timer fires first.
    assert_eq!(code_of(&bind(&mut t, tcp(6), Some(&c), Some(id)).1), None);
    t.advance(Duration::from_secs(100));
    assert_eq!(t.s.allocation_count(), 0);
    assert_eq!(t.r.closed_tcp, vec![connecting, id]);
    assert_eq!(t.s.data_connection(&tcp(6)), None);
}

#[test]
fn per_allocation_connection_limit() {
    let mut t = tcp_t(2);
    let ctl = tcp(1);
    let (c, relay) = tcp_allocation(&mut t, ctl);
    connect_started(&mut t, ctl, &c, peer(PEER, 1));
    connected(&mut t, ctl, &c, peer(PEER, 2));
    let (_, resp, _) = connect(&mut t, ctl, &c, peer(PEER, 3));
    assert_eq!(code_of(&resp), Some(508));
    assert_eq!(
        event(
            &mut t,
            TcpEvent::Accepted {
                relay,
                peer: peer(PEER, 4)
            }
        ),
        TcpVerdict::Close,
        "over the limit (the permission is there)"
    );
    assert!(drain(&mut t).is_empty());
    // A slot frees up when a connection ends.
    t.advance(TCP_CONNECT_TIMEOUT);
    drain(&mut t);
    connect_started(&mut t, ctl, &c, peer(PEER, 3));
}

#[test]
fn connection_ids_are_unique_and_timers_stay_bounded() {
    let mut t = tcp_t(64);
    let ctl = tcp(1);
    let (c, _) = tcp_allocation(&mut t, ctl);
    let mut ids = std::collections::HashSet::new();
    for round in 0..5u16 {
        for p in 0..10u16 {
            let (id, _) = connect_started(&mut t, ctl, &c, peer(PEER, round * 100 + p));
            assert!(ids.insert(id));
        }
        t.advance(TCP_CONNECT_TIMEOUT);
        assert_eq!(drain(&mut t).len(), 10);
    }
    assert_eq!(t.s.tcp_connection_count(), 0);
    // One live entry, plus one stale entry per busy period (the timer heap's rule).
    let (_, _, timers) = t.s.table_sizes();
    assert!(timers <= 5 + 1, "{timers}");
}

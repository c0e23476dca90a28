//! RFC 6062 ConnectionBind (§5.4), teardown and limits.

use super::*;

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

    t.pump();
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
    t.pump();
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
    t.pump();
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

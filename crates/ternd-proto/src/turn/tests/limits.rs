//! Same-server relaying, the admin API, quotas and limits.

use super::*;

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
    t.pump();
    assert_eq!(t.s.allocation_count(), 1);
    assert_eq!(t.s.stats().snapshot().ended_admin, 2);
    assert_eq!(t.s.shared().user_allocations("bob"), 0);
}

#[test]
fn total_quota_is_508_and_per_allocation_limits_hold() {
    let mut t = T::with(vec!["198.51.100.0/24".parse().unwrap()], |c| {
        c.limits.total_quota = 1;
        c.limits.max_permissions = 2;
        c.limits.max_channels = 1;
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
        c.limits.max_bps = rate
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

//! The unauthenticated rate limit and the per-IP allocation cap.

use super::*;

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
            c.limits.max_allocations_per_ip
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
        c.limits.max_allocations_per_ip = 2;
        c.limits.user_quota = 0;
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
        c.limits.max_allocations_per_ip = 1;
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

    let mut t = T::with(vec![], |c| c.limits.max_allocations_per_ip = 0);
    for port in 0..50 {
        let tuple = client(9000 + port);
        let c = t.login(&u, Key::Md5(k), tuple);
        t.allocate(tuple, &c);
    }
}

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
        c.limits.max_allocations_per_ip = 0;
        c.limits.user_quota = 0;
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

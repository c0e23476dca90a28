//! Allocate (RFC 8656 §7) and Refresh (§8).

use super::*;

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
    let mut t = T::with(vec![], |c| c.limits.user_quota = 1);
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
    assert_eq!(before, t.s.shared().config.limits);
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
    let mut t = T::with(vec![], |c| c.limits.user_quota = 3);
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

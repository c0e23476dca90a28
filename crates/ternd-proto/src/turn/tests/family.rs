//! Address families (RFC 8656 §7.2, §8, §9, §10, §11): REQUESTED-ADDRESS-FAMILY,
//! ADDITIONAL-ADDRESS-FAMILY dual allocations, ADDRESS-ERROR-CODE and 443.

use super::*;

const V6_RELAY: &str = "2001:db8::10";

fn v6_relay() -> Option<RelayAddress> {
    Some(RelayAddress {
        bind: V6_RELAY.parse().unwrap(),
        advertise: V6_RELAY.parse().unwrap(),
    })
}

/// A core with both an IPv4 relay (192.0.2.10, advertised 198.51.100.10) and an IPv6 one.
fn dual_t() -> T {
    T::with(
        vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        |c| c.relay_v6 = v6_relay(),
    )
}

fn v6_peer(port: u16) -> SocketAddr {
    SocketAddr::new("2001:db8::99".parse().unwrap(), port)
}

/// Logs bob in on `tuple` and sends an Allocate built by `build` (REQUESTED-TRANSPORT UDP
/// is added first); returns the response and the credentials.
fn allocate_with(
    t: &mut T,
    tuple: FiveTuple,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> (Vec<u8>, Creds) {
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = t.request(Method::ALLOCATE, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        build(b);
    });
    (resp, c)
}

fn relayed(resp: &[u8]) -> Vec<SocketAddr> {
    Message::parse(resp)
        .unwrap()
        .attributes()
        .filter(|a| a.typ == attr_type::XOR_RELAYED_ADDRESS)
        .map(
            |raw| match Attribute::decode(raw, &Message::parse(resp).unwrap().transaction_id()) {
                Ok(Attribute::XorRelayedAddress(a)) => a,
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

fn address_error(resp: &[u8]) -> Option<(AddressFamily, u16)> {
    match Message::parse(resp)
        .unwrap()
        .get_decoded(attr_type::ADDRESS_ERROR_CODE)?
    {
        Ok(Attribute::AddressErrorCode(f, e)) => Some((f, e.code)),
        other => panic!("{other:?}"),
    }
}

fn permit(t: &mut T, tuple: FiveTuple, c: &Creds, p: SocketAddr) -> Option<u16> {
    code_of(&t.request(Method::CREATE_PERMISSION, tuple, Some(c), |b| {
        b.add(&Attribute::XorPeerAddress(p)).unwrap()
    }))
}

fn send_to(t: &mut T, tuple: FiveTuple, p: SocketAddr) -> Outcome {
    let tid = t.tid();
    let mut buf = [0u8; 200];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::SEND, Class::Indication),
        tid,
    )
    .unwrap();
    b.add(&Attribute::XorPeerAddress(p)).unwrap();
    b.add(&Attribute::Data(b"ping")).unwrap();
    let n = b.finish();
    t.send(&buf[..n], tuple).0
}

fn forward_relay(o: Outcome) -> Option<SocketAddr> {
    match o {
        Outcome::Forward { relay, .. } => Some(relay),
        _ => None,
    }
}

#[test]
fn requested_family_picks_the_relay_and_unsupported_is_440() {
    let mut t = dual_t();
    let (resp, _) = allocate_with(&mut t, client(1), |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    let r = relayed(&resp);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].ip(), V6_RELAY.parse::<IpAddr>().unwrap());
    let (resp, _) = allocate_with(&mut t, client(2), |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V4))
            .unwrap();
    });
    assert_eq!(relayed(&resp)[0].ip(), IpAddr::from([198, 51, 100, 10]));
    let (resp, _) = allocate_with(&mut t, client(3), |_| {});
    assert_eq!(
        relayed(&resp)[0].ip(),
        IpAddr::from([198, 51, 100, 10]),
        "IPv4 when no family is asked for"
    );

    // Only IPv6 configured: a plain Allocate (IPv4 by default) is 440.
    let mut t = T::with(vec![], |c| {
        c.relay_v4 = None;
        c.relay_v6 = v6_relay();
    });
    let (resp, _) = allocate_with(&mut t, client(4), |_| {});
    assert_eq!(code_of(&resp), Some(440));
    assert!(t.r.open.is_empty());
}

#[test]
fn bad_family_values_and_combinations_are_400() {
    let mut t = dual_t();
    type Build = Box<dyn Fn(&mut MessageBuilder<'_>)>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "REQUESTED-ADDRESS-FAMILY 0x03",
            Box::new(|b| {
                b.add_raw(attr_type::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0])
                    .unwrap()
            }),
        ),
        (
            "REQUESTED-ADDRESS-FAMILY 0x00",
            Box::new(|b| {
                b.add_raw(attr_type::REQUESTED_ADDRESS_FAMILY, &[0, 0, 0, 0])
                    .unwrap()
            }),
        ),
        (
            "ADDITIONAL-ADDRESS-FAMILY IPv4",
            Box::new(|b| {
                b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V4))
                    .unwrap()
            }),
        ),
        (
            "ADDITIONAL-ADDRESS-FAMILY 0x07",
            Box::new(|b| {
                b.add_raw(attr_type::ADDITIONAL_ADDRESS_FAMILY, &[7, 0, 0, 0])
                    .unwrap()
            }),
        ),
        (
            "ADDITIONAL with REQUESTED",
            Box::new(|b| {
                b.add(&Attribute::RequestedAddressFamily(AddressFamily::V4))
                    .unwrap();
                b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
                    .unwrap();
            }),
        ),
        (
            "ADDITIONAL with RESERVATION-TOKEN",
            Box::new(|b| {
                b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
                    .unwrap();
                b.add(&Attribute::ReservationToken([9; 8])).unwrap();
            }),
        ),
        (
            "ADDITIONAL with EVEN-PORT R=1",
            Box::new(|b| {
                b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
                    .unwrap();
                b.add(&Attribute::EvenPort(true)).unwrap();
            }),
        ),
    ];
    for (i, (what, build)) in cases.iter().enumerate() {
        let (resp, _) = allocate_with(&mut t, client(100 + i as u16), |b| build(b));
        assert_eq!(code_of(&resp), Some(400), "{what}");
    }
    assert!(t.r.open.is_empty() && t.r.reserved.is_empty());
    assert_eq!(t.s.allocation_count(), 0);
}

#[test]
fn dual_allocation_relays_each_family_through_its_own_socket() {
    let mut t = dual_t();
    let tuple = client(10);
    let (resp, c) = allocate_with(&mut t, tuple, |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    let r = relayed(&resp);
    assert_eq!(r.len(), 2, "two XOR-RELAYED-ADDRESS: {:?}", code_of(&resp));
    assert!(r[0].is_ipv4() && r[1].is_ipv6(), "{r:?}");
    assert_eq!(address_error(&resp), None);
    assert_eq!(t.r.open.len(), 2);
    let relay6 = SocketAddr::new(V6_RELAY.parse().unwrap(), r[1].port());
    let relay4 = SocketAddr::new([192, 0, 2, 10].into(), r[0].port());
    assert!(t.r.open.contains(&relay4) && t.r.open.contains(&relay6));

    let p4 = peer([198, 51, 100, 7], 4000);
    let p6 = v6_peer(4000);
    assert_eq!(permit(&mut t, tuple, &c, p4), None);
    assert_eq!(permit(&mut t, tuple, &c, p6), None);
    assert_eq!(forward_relay(send_to(&mut t, tuple, p4)), Some(relay4));
    assert_eq!(forward_relay(send_to(&mut t, tuple, p6)), Some(relay6));

    // A channel to the IPv6 peer goes out of the IPv6 socket.
    let bind = t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4001)).unwrap();
        b.add(&Attribute::XorPeerAddress(p6)).unwrap();
    });
    assert_eq!(code_of(&bind), None);
    let (o, _) = t.send(&[0x40, 0x01, 0, 2, 7, 7], tuple);
    assert_eq!(forward_relay(o), Some(relay6));

    // Peers reach the client through either socket.
    let mut buf = vec![0u8; PEER_HEADROOM + 2 + PEER_TAILROOM];
    assert!(matches!(
        t.s.handle_peer(relay6, p6, &mut buf, 2, t.now),
        PeerOutcome::ToClient { tuple: to, .. } if to == tuple
    ));
    let mut buf = vec![0u8; PEER_HEADROOM + 2 + PEER_TAILROOM];
    assert!(matches!(
        t.s.handle_peer(relay4, p4, &mut buf, 2, t.now),
        PeerOutcome::ToClient { tuple: to, .. } if to == tuple
    ));
    // Both relayed addresses count as this server's for the same-server exception.
    assert!(t.s.shared().is_live_relay(RelayTransport::Udp, r[1]));
    assert!(t.s.shared().is_live_relay(RelayTransport::Udp, r[0]));
    let sessions = t.s.sessions(t.now);
    assert_eq!(sessions[0].additional_relay, Some(r[1]));

    // Deleting the allocation closes both sockets.
    let del = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(code_of(&del), None);
    assert!(t.r.open.is_empty());
    assert_eq!(t.s.table_sizes().1, 0, "no relay left in by_relay");
    assert!(!t.s.shared().is_live_relay(RelayTransport::Udp, r[1]));
}

#[test]
fn dual_allocation_with_one_family_unavailable_gets_address_error_code() {
    // IPv6 not configured: IPv4 relay plus ADDRESS-ERROR-CODE 440 for IPv6.
    let mut t = T::new();
    let (resp, _) = allocate_with(&mut t, client(20), |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert_eq!(code_of(&resp), None);
    assert_eq!(relayed(&resp).len(), 1);
    assert!(relayed(&resp)[0].is_ipv4());
    assert_eq!(address_error(&resp), Some((AddressFamily::V6, 440)));

    // IPv4 not configured: the IPv6 relay alone, 440 for IPv4.
    let mut t = T::with(vec![], |c| {
        c.relay_v4 = None;
        c.relay_v6 = v6_relay();
    });
    let (resp, _) = allocate_with(&mut t, client(21), |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert_eq!(code_of(&resp), None);
    assert!(relayed(&resp)[0].is_ipv6());
    assert_eq!(address_error(&resp), Some((AddressFamily::V4, 440)));

    // No IPv6 port free: IPv4 relay plus 508 for IPv6.
    let mut t = dual_t();
    for port in 50000..=50099 {
        t.r.in_use
            .insert(SocketAddr::new(V6_RELAY.parse().unwrap(), port));
    }
    let (resp, _) = allocate_with(&mut t, client(22), |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert_eq!(code_of(&resp), None);
    assert_eq!(relayed(&resp).len(), 1);
    assert_eq!(address_error(&resp), Some((AddressFamily::V6, 508)));
    assert_eq!(t.r.open.len(), 1);

    // Neither family available: 440, nothing open.
    let mut t = T::with(vec![], |c| c.relay_v4 = None);
    let (resp, _) = allocate_with(&mut t, client(23), |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert_eq!(code_of(&resp), Some(440));
    assert_eq!(t.s.allocation_count(), 0);
}

#[test]
fn peers_of_a_family_the_allocation_lacks_get_443() {
    let mut t = dual_t();
    let tuple = client(30);
    let (resp, c) = allocate_with(&mut t, tuple, |_| {});
    assert_eq!(relayed(&resp).len(), 1);
    let p6 = v6_peer(5000);
    assert_eq!(permit(&mut t, tuple, &c, p6), Some(443));
    let bind = t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
        b.add(&Attribute::ChannelNumber(0x4002)).unwrap();
        b.add(&Attribute::XorPeerAddress(p6)).unwrap();
    });
    assert_eq!(code_of(&bind), Some(443));
    assert_eq!(
        send_to(&mut t, tuple, p6),
        Outcome::Dropped(DropReason::NoPermission)
    );
    // An IPv4-mapped IPv6 peer is an IPv6 address on the wire: 443 too.
    let mapped = SocketAddr::new("::ffff:198.51.100.7".parse().unwrap(), 5000);
    assert_eq!(permit(&mut t, tuple, &c, mapped), Some(443));

    // Refresh naming a family the allocation lacks: 443; its own family: fine.
    let r6 = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap()
    });
    assert_eq!(code_of(&r6), Some(443));
    let r4 = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V4))
            .unwrap()
    });
    assert_eq!(code_of(&r4), None);

    // The mirror image: an IPv6 allocation and an IPv4 peer.
    let tuple = client(31);
    let (resp, c) = allocate_with(&mut t, tuple, |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert!(relayed(&resp)[0].is_ipv6());
    assert_eq!(
        permit(&mut t, tuple, &c, peer([198, 51, 100, 7], 1)),
        Some(443)
    );
    assert_eq!(permit(&mut t, tuple, &c, p6), None);
}

#[test]
fn deleting_one_family_of_a_dual_allocation_keeps_the_other() {
    for gone in [AddressFamily::V6, AddressFamily::V4] {
        let mut t = dual_t();
        let tuple = client(40);
        let (resp, c) = allocate_with(&mut t, tuple, |b| {
            b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
                .unwrap();
        });
        let r = relayed(&resp);
        let (p4, p6) = (peer([198, 51, 100, 7], 4000), v6_peer(4000));
        assert_eq!(permit(&mut t, tuple, &c, p4), None);
        assert_eq!(permit(&mut t, tuple, &c, p6), None);
        let del = t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::Lifetime(0)).unwrap();
            b.add(&Attribute::RequestedAddressFamily(gone)).unwrap();
        });
        assert_eq!(code_of(&del), None, "{gone:?}");
        assert_eq!(lifetime_of(&del), 0);
        assert_eq!(t.s.allocation_count(), 1, "the allocation lives on");
        assert_eq!(t.r.open.len(), 1);
        let (kept_peer, lost_peer, kept, lost) = match gone {
            AddressFamily::V6 => (p4, p6, r[0], r[1]),
            AddressFamily::V4 => (p6, p4, r[1], r[0]),
        };
        assert!(t.s.shared().is_live_relay(RelayTransport::Udp, kept));
        assert!(!t.s.shared().is_live_relay(RelayTransport::Udp, lost));
        assert!(forward_relay(send_to(&mut t, tuple, kept_peer)).is_some());
        assert_eq!(permit(&mut t, tuple, &c, lost_peer), Some(443));
        let again = t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::RequestedAddressFamily(gone)).unwrap();
        });
        assert_eq!(code_of(&again), Some(443));
        // A plain delete ends what is left.
        let del = t.request(Method::REFRESH, tuple, Some(&c), |b| {
            b.add(&Attribute::Lifetime(0)).unwrap();
        });
        assert_eq!(code_of(&del), None);
        assert!(t.r.open.is_empty());
        assert_eq!(t.s.allocation_count(), 0);
    }
}

#[test]
fn internal_ipv6_peers_are_403_through_an_ipv6_allocation() {
    // No allow list: the default policy.
    let mut t = T::with(vec![], |c| {
        c.relay_v4 = None;
        c.relay_v6 = v6_relay();
    });
    let tuple = client(50);
    let (resp, c) = allocate_with(&mut t, tuple, |b| {
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert!(relayed(&resp)[0].is_ipv6());
    for ip in [
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:0.0.0.0",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",
        "64:ff9b:1:7f00:0:100:808:808",
        "::ffff:0:127.0.0.1",
        "::ffff:1:7f00:1",
        "::fffe:7f00:1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "100::1",
        "2001:db8::1",
    ] {
        let p = SocketAddr::new(ip.parse().unwrap(), 3478);
        assert_eq!(permit(&mut t, tuple, &c, p), Some(403), "{ip}");
    }
    // A global IPv6 address is fine.
    let ok = SocketAddr::new("2606:4700::1111".parse().unwrap(), 3478);
    assert_eq!(permit(&mut t, tuple, &c, ok), None);
}

#[test]
fn coturn_draft_code_points_for_dual_allocation_are_understood() {
    // turnutils_uclient -Z (coturn 4.6) sends ADDITIONAL-ADDRESS-FAMILY as 0x8032 and
    // reads ADDRESS-ERROR-CODE as 0x8033.
    let mut t = dual_t();
    let (resp, _) = allocate_with(&mut t, client(60), |b| {
        b.add_raw(0x8032, &[2, 0, 0, 0]).unwrap();
    });
    assert_eq!(relayed(&resp).len(), 2, "{:?}", code_of(&resp));
    let (resp, _) = allocate_with(&mut t, client(61), |b| {
        b.add_raw(0x8032, &[1, 0, 0, 0]).unwrap();
    });
    assert_eq!(code_of(&resp), Some(400));
    let mut t = T::new();
    let (resp, _) = allocate_with(&mut t, client(62), |b| {
        b.add_raw(0x8032, &[2, 0, 0, 0]).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert!(m.get(attr_type::ADDRESS_ERROR_CODE).is_none());
    let legacy = m.get(0x8033).expect("ADDRESS-ERROR-CODE under 0x8033");
    assert_eq!(legacy.value[0], 2, "IPv6");
    assert_eq!(
        (legacy.value[2] & 7, legacy.value[3]),
        (4, 40),
        "440 for the family not served"
    );
}

#[test]
fn deleting_one_family_unbinds_its_channels_and_closes_its_socket_only() {
    let mut t = dual_t();
    let tuple = client(41);
    let (resp, c) = allocate_with(&mut t, tuple, |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    let r = relayed(&resp);
    let (v4, v6) = (SocketAddr::new([192, 0, 2, 10].into(), r[0].port()), r[1]);
    let (p4, p6) = (peer([198, 51, 100, 7], 4000), v6_peer(4000));
    for (n, p) in [(0x4000, p4), (0x4001, p6)] {
        let resp = t.request(Method::CHANNEL_BIND, tuple, Some(&c), |b| {
            b.add(&Attribute::ChannelNumber(n)).unwrap();
            b.add(&Attribute::XorPeerAddress(p)).unwrap();
        });
        assert_eq!(code_of(&resp), None);
    }
    let relay_of = |cmd: &Command| match cmd {
        Command::ChannelBound { relay, .. } => relay.0,
        other => panic!("{other:?}"),
    };
    let bound: Vec<SocketAddr> = t.take_commands().iter().map(relay_of).collect();
    assert_eq!(bound, [v4, v6], "each channel on its family's socket");
    let del = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap();
        b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
            .unwrap();
    });
    assert_eq!(code_of(&del), None);
    assert_eq!(
        t.take_commands(),
        [
            Command::ChannelUnbound {
                tuple,
                relay: RelayAddr(v6),
                peer: PeerAddr(p6),
                channel: 0x4001,
            },
            Command::CloseRelay {
                relay: RelayAddr(v6)
            },
        ]
    );
    let del = t.request(Method::REFRESH, tuple, Some(&c), |b| {
        b.add(&Attribute::Lifetime(0)).unwrap();
    });
    assert_eq!(code_of(&del), None);
    let cmds = t.take_commands();
    assert_eq!(
        cmds[..2],
        [
            Command::ChannelUnbound {
                tuple,
                relay: RelayAddr(v4),
                peer: PeerAddr(p4),
                channel: 0x4000,
            },
            Command::CloseRelay {
                relay: RelayAddr(v4)
            },
        ]
    );
    match &cmds[2..] {
        [Command::AllocationEnded { record }] => {
            assert_eq!(record.relay, RelayAddr(r[0]));
            assert_eq!(
                record.additional_relay, None,
                "that family was gone already"
            );
        }
        other => panic!("{other:?}"),
    }
}

//! Allow/deny precedence, the service-port rule, Display and the property tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proptest::prelude::*;

use super::*;
// ---- Precedence ---------------------------------------------------------------------------

#[test]
fn allow_matches_canonical_address() {
    let p = policy(&["127.0.0.1/32"], &[]);
    assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
    assert_eq!(p.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
    assert_eq!(p.check_ip(ip("64:ff9b::7f00:1")), Ok(()));
    assert_eq!(
        p.check_ip(ip("127.0.0.2")),
        Err(Denied::Default("loopback"))
    );
    assert_eq!(
        p.check_ip(ip("::ffff:127.0.0.2")),
        Err(Denied::Default("loopback"))
    );
    assert_eq!(p.check_ip(ip("::1")), Err(Denied::Default("loopback")));
}

#[test]
fn allow_of_an_embedding_prefix_does_not_bypass_its_ipv4() {
    let p = policy(&["2002::/16", "64:ff9b::/96", "2001::/32", "::/0"], &[]);
    for e in embeddings(Ipv4Addr::new(127, 0, 0, 1), 0) {
        assert_eq!(p.check_ip(e), Err(Denied::Default("loopback")), "{e}");
    }
    // But ::/0 does allow canonical IPv6 addresses.
    assert_eq!(p.check_ip(ip("::1")), Ok(()));
    assert_eq!(p.check_ip(ip("fc00::1")), Ok(()));
}

#[test]
fn deny_beats_allow() {
    let p = policy(&["8.8.0.0/16"], &["8.8.8.0/24"]);
    assert_eq!(
        p.check_ip(ip("8.8.8.8")),
        Err(Denied::Explicit(net("8.8.8.0/24")))
    );
    assert_eq!(p.check_ip(ip("8.8.4.4")), Ok(()));
    // Deny also beats an allow of a default-denied range.
    let p = policy(&["10.0.0.0/8"], &["10.1.0.0/16"]);
    assert_eq!(p.check_ip(ip("10.0.0.1")), Ok(()));
    assert_eq!(
        p.check_ip(ip("10.1.0.1")),
        Err(Denied::Explicit(net("10.1.0.0/16")))
    );
}

#[test]
fn explicit_deny_of_public_range_blocks_embeddings() {
    let p = policy(&[], &["8.8.8.0/24"]);
    let a = Ipv4Addr::new(8, 8, 8, 8);
    let want = Err(Denied::Explicit(net("8.8.8.0/24")));
    assert_eq!(p.check_ip(a.into()), want);
    for e in embeddings(a, 0xffff_ffff_ffff_ffff_ffff) {
        assert_eq!(p.check_ip(e), want, "{e}");
    }
    assert_eq!(p.check_ip(teredo(a, Ipv4Addr::new(1, 1, 1, 1), 0)), want);
    assert_eq!(p.check_ip(ip("8.8.4.4")), Ok(()));
}

#[test]
fn explicit_deny_matches_the_address_as_given() {
    // An operator can block whole embedding prefixes.
    let p = policy(&[], &["2002::/16", "2001::/32"]);
    assert_eq!(
        p.check_ip(six_to_four(Ipv4Addr::new(8, 8, 8, 8), 1)),
        Err(Denied::Explicit(net("2002::/16")))
    );
    assert_eq!(
        p.check_ip(teredo(
            Ipv4Addr::new(8, 8, 8, 8),
            Ipv4Addr::new(1, 1, 1, 1),
            0
        )),
        Err(Denied::Explicit(net("2001::/32")))
    );
    assert_eq!(p.check_ip(ip("::ffff:8.8.8.8")), Ok(()));
}

#[test]
fn explicit_deny_reported_before_default() {
    let p = policy(&[], &["127.0.0.0/8"]);
    assert_eq!(
        p.check_ip(ip("127.0.0.1")),
        Err(Denied::Explicit(net("127.0.0.0/8")))
    );
    // Teredo: server default-denied, client explicitly denied: explicit wins.
    assert_eq!(
        p.check_ip(teredo(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(127, 0, 0, 1),
            0
        )),
        Err(Denied::Explicit(net("127.0.0.0/8")))
    );
}

#[test]
fn mapped_entries_are_converted_to_ipv4() {
    let written = net("::ffff:10.0.0.0/104");
    let p = policy(&[], &["::ffff:10.0.0.0/104"]);
    assert_eq!(p.check_ip(ip("10.0.0.1")), Err(Denied::Explicit(written)));
    assert_eq!(
        p.check_ip(ip("::ffff:10.0.0.1")),
        Err(Denied::Explicit(written))
    );
    assert_eq!(
        p.check_ip(ip("64:ff9b::a00:1")),
        Err(Denied::Explicit(written))
    );
    assert_eq!(p.check_ip(ip("11.0.0.1")), Ok(()));

    let p = policy(&["::ffff:127.0.0.1/128"], &[]);
    assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
    assert_eq!(p.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
    assert_eq!(
        p.check_ip(ip("127.0.0.2")),
        Err(Denied::Default("loopback"))
    );

    // IPv4-translated entries, too.
    let written = net("::ffff:0:10.0.0.0/104");
    let p = policy(&[], &["::ffff:0:10.0.0.0/104"]);
    assert_eq!(p.check_ip(ip("10.0.0.1")), Err(Denied::Explicit(written)));
    assert_eq!(
        p.check_ip(ip("::ffff:10.0.0.1")),
        Err(Denied::Explicit(written))
    );
    let p = policy(&["::ffff:0:127.0.0.1/128"], &[]);
    assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
    assert_eq!(p.check_ip(ip("::ffff:0:127.0.0.1")), Ok(()));

    // A v6 entry shorter than /96 is not converted.
    let p = policy(&["::/64"], &[]);
    assert_eq!(
        p.check_ip(ip("::ffff:127.0.0.1")),
        Err(Denied::Default("loopback"))
    );
}

// ---- Service-port rule --------------------------------------------------------------------

fn with_service(allow: &[&str], service: &[&str]) -> PeerPolicy {
    PeerPolicy::new(nets(allow), vec![], service.iter().map(|s| sa(s)).collect())
}

#[test]
fn service_port_on_unspecified_v4() {
    let p = with_service(&["127.0.0.0/8"], &["0.0.0.0:3478"]);
    assert_eq!(p.check(sa("127.0.0.1:3478")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("127.9.9.9:3478")), Err(Denied::ServicePort));
    assert_eq!(
        p.check(sa("[::ffff:127.0.0.1]:3478")),
        Err(Denied::ServicePort)
    );
    assert_eq!(
        p.check(sa("[64:ff9b::7f00:1]:3478")),
        Err(Denied::ServicePort)
    );
    assert_eq!(p.check(sa("127.0.0.1:3479")), Ok(()));
    assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
    // A public address that is not this host is fine on that port.
    assert_eq!(p.check(sa("8.8.8.8:3478")), Ok(()));
    // 0.0.0.0 itself, when explicitly allowed.
    let p = with_service(&["0.0.0.0/32"], &["0.0.0.0:3478"]);
    assert_eq!(p.check(sa("0.0.0.0:3478")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("0.0.0.0:3479")), Ok(()));
}

#[test]
fn service_port_on_specific_ip() {
    let p = with_service(&[], &["127.0.0.1:9641"]);
    assert_eq!(
        p.check(sa("127.0.0.1:9641")),
        Err(Denied::Default("loopback"))
    );
    assert_eq!(
        p.check(sa("[::ffff:127.0.0.1]:9641")),
        Err(Denied::Default("loopback"))
    );

    let p = with_service(&["127.0.0.0/8"], &["127.0.0.1:9641"]);
    assert_eq!(p.check(sa("127.0.0.1:9641")), Err(Denied::ServicePort));
    assert_eq!(
        p.check(sa("[::ffff:127.0.0.1]:9641")),
        Err(Denied::ServicePort)
    );
    assert_eq!(p.check(sa("127.0.0.1:9642")), Ok(()));
    // A listener on 127.0.0.1 does not receive on 127.0.0.2.
    assert_eq!(p.check(sa("127.0.0.2:9641")), Ok(()));

    // A public listener address.
    let p = with_service(&[], &["8.8.4.4:3478", "0.0.0.0:9641"]);
    assert_eq!(p.check(sa("8.8.4.4:3478")), Err(Denied::ServicePort));
    assert_eq!(
        p.check(sa("[::ffff:8.8.4.4]:3478")),
        Err(Denied::ServicePort)
    );
    assert_eq!(p.check(sa("8.8.4.4:3479")), Ok(()));
    assert_eq!(p.check(sa("8.8.4.5:3478")), Ok(()));
    // A specified service IP counts as this host for the wildcard HTTP listener.
    assert_eq!(p.check(sa("8.8.4.4:9641")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("8.8.4.5:9641")), Ok(()));
}

#[test]
fn service_port_unspecified_v6_covers_only_v6() {
    // ternd sets IPV6_V6ONLY, so [::]:3478 does not receive IPv4: it protects IPv6 addresses
    // of this host only.
    let p = with_service(
        &["203.0.113.0/24", "127.0.0.0/8", "2001:db8::/32", "::1/128"],
        &["[::]:3478"],
    )
    .with_local_ips(vec![ip("203.0.113.5"), ip("2001:db8::5")]);
    assert_eq!(p.check(sa("203.0.113.5:3478")), Ok(()));
    assert_eq!(p.check(sa("[::ffff:203.0.113.5]:3478")), Ok(()));
    assert_eq!(p.check(sa("127.0.0.1:3478")), Ok(()));
    assert_eq!(p.check(sa("[::1]:3478")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("[2001:db8::5]:3478")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("[2001:db8::6]:3478")), Ok(()));

    // The IPv4 wildcard covers the IPv4 local address (also in mapped form) but not IPv6.
    let p = with_service(&["203.0.113.0/24", "::1/128"], &["0.0.0.0:3478"])
        .with_local_ips(vec![ip("203.0.113.5")]);
    assert_eq!(p.check(sa("203.0.113.5:3478")), Err(Denied::ServicePort));
    assert_eq!(
        p.check(sa("[::ffff:203.0.113.5]:3478")),
        Err(Denied::ServicePort)
    );
    assert_eq!(p.check(sa("203.0.113.6:3478")), Ok(()));
    assert_eq!(p.check(sa("[::1]:3478")), Ok(()));
    assert_eq!(p.check(sa("203.0.113.5:3479")), Ok(()));
}

#[test]
fn service_port_local_ips_public_and_mapped() {
    // A public relay IP, given in mapped form, counts as this host.
    let p = with_service(&[], &["0.0.0.0:443", "[::]:443"])
        .with_local_ips(vec![ip("::ffff:8.8.4.4")])
        .with_local_ips(vec![ip("2606:4700::1")]);
    assert_eq!(p.check(sa("8.8.4.4:443")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("[2606:4700::1]:443")), Err(Denied::ServicePort));
    assert_eq!(p.check(sa("8.8.8.8:443")), Ok(()));
    assert_eq!(p.check(sa("8.8.4.4:444")), Ok(()));
}

#[test]
fn service_port_beats_allow_everything() {
    let p = with_service(&["0.0.0.0/0", "::/0"], &["0.0.0.0:3478", "[::]:3478"]);
    for s in [
        "127.0.0.1:3478",
        "0.0.0.0:3478",
        "[::]:3478",
        "[::1]:3478",
        "[::ffff:127.0.0.1]:3478",
    ] {
        assert_eq!(p.check(sa(s)), Err(Denied::ServicePort), "{s}");
    }
    assert_eq!(p.check(sa("127.0.0.1:22")), Ok(()));
    assert_eq!(p.check(sa("10.0.0.1:3478")), Ok(()));
}

// ---- Display ------------------------------------------------------------------------------

#[test]
fn display() {
    assert_eq!(
        Denied::Default("loopback").to_string(),
        "peer address is in a default-denied range (loopback)"
    );
    assert_eq!(
        Denied::Explicit(net("10.0.0.0/8")).to_string(),
        "peer address matches --deny-peer 10.0.0.0/8"
    );
    assert_eq!(
        Denied::ServicePort.to_string(),
        "peer is one of the server's own service ports"
    );
}

// ---- Property tests -----------------------------------------------------------------------

fn arb_v4net() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
        IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc())
    })
}

/// An address biased towards the special-purpose ranges, half of the time.
fn arb_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        (0..DEFAULT_DENY.len(), any::<u32>()).prop_filter_map("v4 entry", |(i, r)| {
            match DEFAULT_DENY[i].0 {
                IpNet::V4(n) => {
                    let host = r & !u32::from(n.netmask());
                    Some(Ipv4Addr::from(u32::from(n.network()) | host))
                }
                IpNet::V6(_) => None,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn every_embedding_gets_the_verdict_of_its_ipv4(
        a in arb_v4(),
        extra in any::<u128>(),
        allow in proptest::option::of(arb_v4net()),
        deny in proptest::option::of(arb_v4net()),
        port in any::<u16>(),
    ) {
        let p = PeerPolicy::new(allow.into_iter().collect(), deny.into_iter().collect(), vec![]);
        let d = defaults();
        let want = p.check_ip(a.into());
        let want_default = d.check_ip(a.into());
        for e in embeddings(a, extra) {
            prop_assert_eq!(canonical(e), IpAddr::V4(a));
            prop_assert_eq!(p.check_ip(e), want, "{} carrying {}", e, a);
            prop_assert_eq!(d.check_ip(e), want_default, "{} carrying {}", e, a);
            prop_assert_eq!(p.check(SocketAddr::new(e, port)), want);
        }
    }

    #[test]
    fn nat64_local_use_needs_the_prefix_allowed_and_then_gets_the_verdict_of_its_ipv4(
        a in arb_v4(),
        middle in any::<u64>(),
        allow in proptest::option::of(arb_v4net()),
        deny in proptest::option::of(arb_v4net()),
    ) {
        let e = nat64_local(a, middle);
        let closed = PeerPolicy::new(
            allow.into_iter().collect(), deny.into_iter().collect(), vec![],
        );
        prop_assert!(closed.check_ip(e).is_err(), "{}", e);
        let open = PeerPolicy::new(
            allow.into_iter().chain([net("64:ff9b:1::/48")]).collect(),
            deny.into_iter().collect(),
            vec![],
        );
        prop_assert_eq!(open.check_ip(e), open.check_ip(a.into()), "{} carrying {}", e, a);
    }

    #[test]
    fn teredo_denied_iff_client_or_server_denied(
        server in arb_v4(),
        client in arb_v4(),
        flags_port in any::<u32>(),
        allow in proptest::option::of(arb_v4net()),
        deny in proptest::option::of(arb_v4net()),
    ) {
        let p = PeerPolicy::new(allow.into_iter().collect(), deny.into_iter().collect(), vec![]);
        let t = teredo(server, client, flags_port);
        prop_assert_eq!(canonical(t), IpAddr::V4(client));
        let ok = p.check_ip(client.into()).is_ok() && p.check_ip(server.into()).is_ok();
        prop_assert_eq!(p.check_ip(t).is_ok(), ok);
    }

    #[test]
    fn check_never_looser_than_check_ip(
        bits in any::<u128>(),
        v4 in any::<bool>(),
        port in any::<u16>(),
    ) {
        let peer = if v4 { IpAddr::V4(Ipv4Addr::from(bits as u32)) } else { v6(bits) };
        let p = with_service(&["0.0.0.0/0"], &["0.0.0.0:3478", "[::]:9641"]);
        if p.check_ip(peer).is_err() {
            prop_assert_eq!(p.check(SocketAddr::new(peer, port)), p.check_ip(peer));
        }
        // canonical is idempotent.
        prop_assert_eq!(canonical(canonical(peer)), canonical(peer));
    }
}

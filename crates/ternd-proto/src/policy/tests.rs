use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| net(s)).collect()
}

fn defaults() -> PeerPolicy {
    PeerPolicy::new(vec![], vec![], vec![])
}

fn policy(allow: &[&str], deny: &[&str]) -> PeerPolicy {
    PeerPolicy::new(nets(allow), nets(deny), vec![])
}

// ---- Embedding constructors -------------------------------------------------------------

fn v6(bits: u128) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(bits))
}

fn mapped(a: Ipv4Addr) -> IpAddr {
    v6(0xffff_0000_0000 | u128::from(u32::from(a)))
}

/// SIIT IPv4-translated `::ffff:0:a.b.c.d` (RFC 6145).
fn translated(a: Ipv4Addr) -> IpAddr {
    v6(0xffff_0000_0000_0000 | u128::from(u32::from(a)))
}

fn compatible(a: Ipv4Addr) -> IpAddr {
    v6(u128::from(u32::from(a)))
}

fn nat64_wkp(a: Ipv4Addr) -> IpAddr {
    v6((0x0064_ff9b_u128 << 96) | u128::from(u32::from(a)))
}

/// `64:ff9b:1::/48` with arbitrary bits 48..96.
fn nat64_local(a: Ipv4Addr, middle: u64) -> IpAddr {
    let middle = u128::from(middle & 0xffff_ffff_ffff);
    v6((0x0064_ff9b_0001_u128 << 80) | (middle << 32) | u128::from(u32::from(a)))
}

/// `2002:AABB:CCDD::/48` with arbitrary subnet and interface identifier.
fn six_to_four(a: Ipv4Addr, rest: u128) -> IpAddr {
    let rest = rest & ((1 << 80) - 1);
    v6((0x2002_u128 << 112) | (u128::from(u32::from(a)) << 80) | rest)
}

/// Teredo `2001:0:SSSS:SSSS:flags:port:CCCC:CCCC` with server `server` and client `client`.
fn teredo(server: Ipv4Addr, client: Ipv4Addr, flags_port: u32) -> IpAddr {
    v6((0x2001_0000_u128 << 96)
        | (u128::from(u32::from(server)) << 64)
        | (u128::from(flags_port) << 32)
        | u128::from(u32::from(client) ^ 0xffff_ffff))
}

/// Every embedding form of `a` judged by `a` alone; Teredo with `a` as both client and server.
/// (Not the NAT64 local-use prefix: its IPv6 form is judged too, see `nat64_local_use_*`.)
fn embeddings(a: Ipv4Addr, extra: u128) -> Vec<IpAddr> {
    let mut out = vec![
        mapped(a),
        translated(a),
        nat64_wkp(a),
        six_to_four(a, extra),
        teredo(a, a, (extra >> 64) as u32),
    ];
    // ::0.0.0.0 and ::0.0.0.1 are `::` and `::1`, not IPv4-compatible addresses.
    if u32::from(a) > 1 {
        out.push(compatible(a));
    }
    out
}

// ---- canonical / embedded -----------------------------------------------------------------

#[test]
fn canonical_forms() {
    let cases = [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:0.0.0.0", "0.0.0.0"),
        ("::ffff:0:127.0.0.1", "127.0.0.1"),
        ("::ffff:0:7f00:1", "127.0.0.1"),
        ("::ffff:0:8.8.8.8", "8.8.8.8"),
        ("::127.0.0.1", "127.0.0.1"),
        ("::0.0.0.2", "0.0.0.2"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b:1::a00:1", "10.0.0.1"),
        ("64:ff9b:1:abcd:ef01:2345:808:808", "8.8.8.8"),
        ("2002:c000:204::1", "192.0.2.4"),
        ("2002:7f00:1:1234:5678:9abc:def0:1", "127.0.0.1"),
        // RFC 4380 example: server 65.54.227.120, client 192.0.2.45 port 40000.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
        // Unchanged.
        ("::", "::"),
        ("::1", "::1"),
        ("8.8.8.8", "8.8.8.8"),
        ("127.0.0.1", "127.0.0.1"),
        ("2606:4700::1111", "2606:4700::1111"),
        ("64:ff9b::1:0:0", "64:ff9b::1:0:0"),
        ("64:ff9b:2::1", "64:ff9b:2::1"),
        ("2001:1::1", "2001:1::1"),
        ("2003::1", "2003::1"),
        ("::1:0:0:1", "::1:0:0:1"),
        ("::ffff:1:7f00:1", "::ffff:1:7f00:1"),
        ("::fffe:7f00:1", "::fffe:7f00:1"),
        ("::1:ffff:0:7f00:1", "::1:ffff:0:7f00:1"),
        ("64:ff9b::1:7f00:1", "64:ff9b::1:7f00:1"),
    ];
    for (input, want) in cases {
        assert_eq!(canonical(ip(input)), ip(want), "canonical({input})");
    }
}

#[test]
fn canonical_is_idempotent_on_examples() {
    for s in [
        "::ffff:10.0.0.1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "fe80::1",
        "1.2.3.4",
    ] {
        let c = canonical(ip(s));
        assert_eq!(canonical(c), c, "{s}");
    }
}

#[test]
fn embedded_lists_addresses() {
    let plain: Vec<IpAddr> = embedded(ip("8.8.8.8")).collect();
    assert_eq!(plain, [ip("8.8.8.8")]);
    let plain6: Vec<IpAddr> = embedded(ip("2606:4700::1111")).collect();
    assert_eq!(plain6, [ip("2606:4700::1111")]);
    let m: Vec<IpAddr> = embedded(ip("::ffff:127.0.0.1")).collect();
    assert_eq!(m, [ip("::ffff:127.0.0.1"), ip("127.0.0.1")]);
    let t = ip("2001:0:4136:e378:8000:63bf:3fff:fdd2");
    let e = embedded(t);
    assert_eq!(e.len(), 3);
    assert_eq!(e.as_slice(), [t, ip("192.0.2.45"), ip("65.54.227.120")]);
    // Teredo with server == client: no duplicate.
    let a = Ipv4Addr::new(8, 8, 8, 8);
    let same: Vec<IpAddr> = embedded(teredo(a, a, 0)).collect();
    assert_eq!(same, [teredo(a, a, 0), IpAddr::V4(a)]);
    // Fused and exact-size.
    let mut it = embedded(ip("::ffff:1.2.3.4"));
    assert_eq!(it.size_hint(), (2, Some(2)));
    it.next();
    it.next();
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
    assert_eq!(it.len(), 0);
}

// ---- The default table --------------------------------------------------------------------

/// Name of the most specific default entry containing `ip` (independent of table order).
fn most_specific(ip: IpAddr) -> Option<&'static str> {
    DEFAULT_DENY
        .iter()
        .filter(|(n, _)| n.contains(&ip))
        .max_by_key(|(n, _)| n.prefix_len())
        .map(|&(_, name)| name)
}

fn first_mid_last(n: IpNet) -> [IpAddr; 3] {
    match n {
        IpNet::V4(n) => {
            let first = u32::from(n.network());
            let last = u32::from(n.broadcast());
            let mid = first + (last - first) / 2 + u32::from(last != first);
            [first, mid, last].map(|x| IpAddr::V4(x.into()))
        }
        IpNet::V6(n) => {
            let first = u128::from(n.network());
            let last = u128::from(n.broadcast());
            let mid = first + (last - first) / 2 + u128::from(last != first);
            [first, mid, last].map(|x| IpAddr::V6(x.into()))
        }
    }
}

/// Checks one default entry: it is in the table under `name`, and its first, middle and last
/// addresses are denied (by the most specific entry that contains them).
fn check_entry(cidr: &str, name: &str) {
    let n = net(cidr);
    assert!(
        DEFAULT_DENY.contains(&(n, name)),
        "{cidr} {name:?} missing from DEFAULT_DENY"
    );
    let p = defaults();
    for a in first_mid_last(n) {
        let verdict = p.check_ip(a);
        if canonical(a) != a && !net("64:ff9b:1::/48").contains(&a) {
            // An embedding inside the range (Teredo in 2001::/23) is judged by its IPv4.
            assert!(verdict.is_err(), "{a} in {cidr}");
            assert_eq!(verdict, p.check_ip(canonical(a)), "{a} in {cidr}");
            continue;
        }
        assert_eq!(
            verdict,
            Err(Denied::Default(most_specific(a).unwrap())),
            "{a} in {cidr}"
        );
        assert_eq!(
            p.check(SocketAddr::new(a, 443)),
            verdict,
            "{a} in {cidr} (check)"
        );
    }
}

macro_rules! entry_tests {
    ($($test:ident: $cidr:literal => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_entry($cidr, $name);
            }
        )*

        /// Every table entry has a test above, and vice versa.
        #[test]
        fn every_default_entry_has_a_test() {
            let tested: Vec<(IpNet, &str)> = vec![$((net($cidr), $name)),*];
            assert_eq!(tested.len(), DEFAULT_DENY.len());
            for entry in DEFAULT_DENY {
                assert!(tested.contains(entry), "untested entry {entry:?}");
            }
        }
    };
}

entry_tests! {
    v4_this_network: "0.0.0.0/8" => "this network",
    v4_private_10: "10.0.0.0/8" => "private (RFC 1918)",
    v4_alibaba_metadata: "100.100.100.200/32" => "cloud metadata (Alibaba Cloud)",
    v4_cgnat: "100.64.0.0/10" => "shared address space (CGNAT, RFC 6598)",
    v4_loopback: "127.0.0.0/8" => "loopback",
    v4_cloud_metadata: "169.254.169.254/32" => "cloud metadata",
    v4_link_local: "169.254.0.0/16" => "link-local",
    v4_private_172: "172.16.0.0/12" => "private (RFC 1918)",
    v4_ietf: "192.0.0.0/24" => "IETF protocol assignments",
    v4_test_net_1: "192.0.2.0/24" => "documentation (TEST-NET-1)",
    v4_6to4_relay: "192.88.99.0/24" => "6to4 relay anycast (deprecated)",
    v4_private_192: "192.168.0.0/16" => "private (RFC 1918)",
    v4_benchmarking: "198.18.0.0/15" => "benchmarking",
    v4_test_net_2: "198.51.100.0/24" => "documentation (TEST-NET-2)",
    v4_test_net_3: "203.0.113.0/24" => "documentation (TEST-NET-3)",
    v4_multicast: "224.0.0.0/4" => "multicast",
    v4_limited_broadcast: "255.255.255.255/32" => "limited broadcast",
    v4_reserved: "240.0.0.0/4" => "reserved",
    v6_unspecified: "::/128" => "unspecified",
    v6_loopback: "::1/128" => "loopback",
    v6_nat64_local_use: "64:ff9b:1::/48" => "NAT64 local-use prefix (RFC 8215)",
    v6_reserved: "::/8" => "reserved (IETF)",
    v6_discard: "100::/64" => "discard-only",
    v6_dummy: "100:0:0:1::/64" => "dummy IPv6 prefix",
    v6_ietf: "2001::/23" => "IETF protocol assignments",
    v6_documentation: "2001:db8::/32" => "documentation",
    v6_documentation_3fff: "3fff::/20" => "documentation (RFC 9637)",
    v6_srv6: "5f00::/16" => "segment routing SIDs (RFC 9602)",
    v6_aws_metadata: "fd00:ec2::254/128" => "cloud metadata (AWS IPv6)",
    v6_unique_local: "fc00::/7" => "unique local",
    v6_link_local: "fe80::/10" => "link-local",
    v6_site_local: "fec0::/10" => "site-local (deprecated)",
    v6_multicast: "ff00::/8" => "multicast",
}

#[test]
fn table_order_puts_specific_names_first() {
    // First match wins in the implementation; it must agree with the most specific entry.
    let p = defaults();
    for (n, _) in DEFAULT_DENY {
        for a in first_mid_last(*n) {
            if canonical(a) == a {
                assert_eq!(
                    p.check_ip(a),
                    Err(Denied::Default(most_specific(a).unwrap()))
                );
            }
        }
    }
    assert_eq!(
        p.check_ip(ip("169.254.169.254")),
        Err(Denied::Default("cloud metadata"))
    );
    assert_eq!(
        p.check_ip(ip("fd00:ec2::254")),
        Err(Denied::Default("cloud metadata (AWS IPv6)"))
    );
    assert_eq!(
        p.check_ip(ip("255.255.255.255")),
        Err(Denied::Default("limited broadcast"))
    );
}

#[test]
fn neighbours_of_ranges_allowed() {
    let p = defaults();
    for s in [
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "203.0.112.255",
        "223.255.255.255",
        "2001:200::1",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2002::",
        "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe00::",
        "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2000::1",
        "100:0:0:2::",
        "1ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        // 2002:: is 6to4 of 0.0.0.0 and must be denied; everything else is public.
        let want = if s == "2002::" {
            Err(Denied::Default("this network"))
        } else {
            Ok(())
        };
        assert_eq!(p.check_ip(ip(s)), want, "{s}");
    }
}

#[test]
fn public_addresses_allowed() {
    let p = defaults();
    for s in [
        "8.8.8.8",
        "1.1.1.1",
        "9.9.9.9",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001::200e",
    ] {
        assert_eq!(p.check_ip(ip(s)), Ok(()), "{s}");
        assert_eq!(p.check(SocketAddr::new(ip(s), 3478)), Ok(()), "{s}");
    }
}

#[test]
fn unspecified_denied_unless_explicitly_allowed() {
    let p = defaults();
    assert_eq!(
        p.check_ip(ip("0.0.0.0")),
        Err(Denied::Default("this network"))
    );
    assert_eq!(p.check_ip(ip("::")), Err(Denied::Default("unspecified")));
    assert_eq!(
        p.check_ip(ip("::ffff:0.0.0.0")),
        Err(Denied::Default("this network"))
    );
    assert_eq!(
        p.check(sa("0.0.0.0:80")),
        Err(Denied::Default("this network"))
    );
    assert_eq!(p.check(sa("[::]:80")), Err(Denied::Default("unspecified")));

    let p = policy(&["0.0.0.0/32", "::/128"], &[]);
    assert_eq!(p.check_ip(ip("0.0.0.0")), Ok(()));
    assert_eq!(p.check_ip(ip("::ffff:0.0.0.0")), Ok(()));
    assert_eq!(p.check_ip(ip("::")), Ok(()));
    assert_eq!(
        p.check_ip(ip("0.0.0.1")),
        Err(Denied::Default("this network"))
    );
    assert_eq!(p.check_ip(ip("::1")), Err(Denied::Default("loopback")));
}

// ---- Embeddings ---------------------------------------------------------------------------

#[test]
fn embeddings_of_private_addresses_denied() {
    let p = defaults();
    for (a, name) in [
        (Ipv4Addr::new(127, 0, 0, 1), "loopback"),
        (Ipv4Addr::new(10, 0, 0, 1), "private (RFC 1918)"),
        (Ipv4Addr::new(169, 254, 169, 254), "cloud metadata"),
    ] {
        assert_eq!(p.check_ip(a.into()), Err(Denied::Default(name)));
        let all = [
            mapped(a),
            compatible(a),
            translated(a),
            nat64_wkp(a),
            six_to_four(a, 0),
            six_to_four(a, 0x1234_5678_9abc_def0_1234),
            teredo(Ipv4Addr::new(65, 54, 227, 120), a, 0x8000_63bf),
            teredo(a, Ipv4Addr::new(8, 8, 8, 8), 0),
        ];
        for e in all {
            assert_eq!(
                p.check_ip(e),
                Err(Denied::Default(name)),
                "{e} carrying {a}"
            );
            assert_eq!(
                p.check(SocketAddr::new(e, 80)),
                Err(Denied::Default(name)),
                "{e} carrying {a}"
            );
        }
    }
}

#[test]
fn coturn_cve_forms_denied() {
    let p = defaults();
    // CVE-2020-26262: 0.0.0.0 and :: reach loopback on Linux.
    assert!(p.check(sa("0.0.0.0:22")).is_err());
    assert!(p.check(sa("[::]:22")).is_err());
    // CVE-2026-27624: IPv4-mapped loopback.
    assert_eq!(
        p.check(sa("[::ffff:127.0.0.1]:22")),
        Err(Denied::Default("loopback"))
    );
    assert_eq!(
        p.check(sa("[::ffff:7f00:1]:22")),
        Err(Denied::Default("loopback"))
    );
}

#[test]
fn embeddings_of_public_addresses_allowed() {
    let p = defaults();
    for a in [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(1, 1, 1, 1)] {
        for e in embeddings(a, 0x0123_4567_89ab_cdef_0011_2233_4455_6677) {
            assert_eq!(p.check_ip(e), Ok(()), "{e} carrying {a}");
        }
        assert_eq!(
            p.check_ip(teredo(Ipv4Addr::new(65, 54, 227, 120), a, 0x8000_63bf)),
            Ok(())
        );
    }
}

#[test]
fn teredo_server_is_checked_too() {
    let p = defaults();
    let public = Ipv4Addr::new(8, 8, 8, 8);
    for (server, name) in [
        (Ipv4Addr::new(127, 0, 0, 1), "loopback"),
        (Ipv4Addr::new(192, 168, 1, 1), "private (RFC 1918)"),
        (Ipv4Addr::new(169, 254, 169, 254), "cloud metadata"),
    ] {
        assert_eq!(
            p.check_ip(teredo(server, public, 0)),
            Err(Denied::Default(name))
        );
    }
    // Explicit deny of the server's network, too.
    let p = policy(&[], &["65.54.227.0/24"]);
    assert_eq!(
        p.check_ip(teredo(Ipv4Addr::new(65, 54, 227, 120), public, 0)),
        Err(Denied::Explicit(net("65.54.227.0/24")))
    );
    // Allowing the client does not exempt the server.
    let p = policy(&["10.0.0.0/8"], &[]);
    assert_eq!(
        p.check_ip(teredo(
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 1),
            0
        )),
        Err(Denied::Default("loopback"))
    );
    let p = policy(&["10.0.0.0/8", "127.0.0.0/8"], &[]);
    assert_eq!(
        p.check_ip(teredo(
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 1),
            0
        )),
        Ok(())
    );
}

#[test]
fn non_embedding_v6_neighbours_of_embedding_prefixes() {
    let p = defaults();
    // The rest of the IETF-reserved ::/8 carries no IPv4 ternd could judge, and nothing
    // routable lives there: denied as such, whatever the low 32 bits say.
    for s in [
        "::ffff:1:7f00:1",
        "::ffff:1:808:808",
        "::fffe:7f00:1",
        "::fffe:808:808",
        "::1:0:0:0:7f00:1",
        "::1:ffff:0:808:808",
        "64:ff9b::1:7f00:1",
        "64:ff9b:0:0:0:1:808:808",
        "64:ff9b:2::808:808",
        "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert_eq!(canonical(ip(s)), ip(s), "{s}");
        assert_eq!(
            p.check_ip(ip(s)),
            Err(Denied::Default("reserved (IETF)")),
            "{s}"
        );
    }
    // ... unless explicitly allowed (as a range of IPv6 addresses: there is no IPv4 in them).
    let open = policy(&["::ffff:1:0:0/96", "::fffe:0:0/96"], &[]);
    assert_eq!(open.check_ip(ip("::ffff:1:7f00:1")), Ok(()));
    assert_eq!(open.check_ip(ip("::fffe:7f00:1")), Ok(()));
    assert_eq!(
        open.check_ip(ip("::fffd:7f00:1")),
        Err(Denied::Default("reserved (IETF)"))
    );
    assert_eq!(
        policy(&["127.0.0.1/32"], &[]).check_ip(ip("::ffff:1:7f00:1")),
        Err(Denied::Default("reserved (IETF)"))
    );
    // 2001:1::/32 and other non-Teredo parts of 2001::/23 are default-denied.
    assert_eq!(
        p.check_ip(ip("2001:1::1")),
        Err(Denied::Default("IETF protocol assignments"))
    );
    assert_eq!(
        p.check_ip(ip("2001:2::1")),
        Err(Denied::Default("IETF protocol assignments"))
    );
}

#[test]
fn nat64_local_use_prefix_is_denied_as_a_prefix_and_by_its_ipv4() {
    let p = defaults();
    let local = "NAT64 local-use prefix (RFC 8215)";
    let public = Ipv4Addr::new(8, 8, 8, 8);
    let loopback = Ipv4Addr::new(127, 0, 0, 1);
    // Whatever the last 32 bits carry: with a /48 translator, 64:ff9b:1:7f00:0:100:808:808 is
    // 127.0.0.1, though its last 32 bits read 8.8.8.8.
    for e in [
        nat64_local(public, 0),
        nat64_local(public, 0xdead_beef_cafe),
        nat64_local(loopback, 0),
        ip("64:ff9b:1:7f00:0:100:808:808"),
    ] {
        assert_eq!(p.check_ip(e), Err(Denied::Default(local)), "{e}");
        assert_eq!(p.check(SocketAddr::new(e, 80)), Err(Denied::Default(local)));
    }
    // Still canonicalised by its last 32 bits (the /96 reading), as the service-port rule
    // and IPv4 allow and deny entries see it.
    assert_eq!(canonical(nat64_local(loopback, 7)), IpAddr::V4(loopback));
    // Allowing the IPv4 does not open the prefix ...
    let p = policy(&["127.0.0.1/32", "8.8.8.8/32"], &[]);
    assert_eq!(
        p.check_ip(nat64_local(public, 0)),
        Err(Denied::Default(local))
    );
    // ... allowing the prefix does, for IPv4s that pass on their own ...
    let p = policy(&["64:ff9b:1::/48"], &[]);
    assert_eq!(p.check_ip(nat64_local(public, 0x1234)), Ok(()));
    assert_eq!(
        p.check_ip(nat64_local(loopback, 0)),
        Err(Denied::Default("loopback"))
    );
    let p = policy(&["64:ff9b:1::/48", "127.0.0.1/32"], &[]);
    assert_eq!(p.check_ip(nat64_local(loopback, 0)), Ok(()));
    // ... and an explicit deny of the IPv4 still applies.
    let p = policy(&["64:ff9b:1::/48"], &["8.8.8.0/24"]);
    assert_eq!(
        p.check_ip(nat64_local(public, 0)),
        Err(Denied::Explicit(net("8.8.8.0/24")))
    );
    // The well-known prefix beside it is judged by its IPv4 alone, as before.
    assert_eq!(defaults().check_ip(nat64_wkp(public)), Ok(()));
}

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

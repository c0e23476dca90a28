use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use ipnet::IpNet;

mod embeddings;
mod precedence;

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

//! IPv4 addresses embedded in IPv6 forms (mapped, NAT64, 6to4, Teredo...).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;
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

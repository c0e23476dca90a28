//! Peer lists accept coturn's `FIRST-LAST` ranges, as the fewest CIDRs that cover them.

use super::*;

fn nets(v: &[&str]) -> Vec<ipnet::IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn ranges_in_the_file_become_cidrs() {
    let c = parse(
        "[relay]\nallow_peer = [\"10.0.1.5-10.0.1.6\", \"192.168.0.0/16\"]\n\
         deny_peer = [\"10.0.0.0-10.255.255.255\", \"fd00::-fd00::ff\"]",
    )
    .unwrap();
    assert_eq!(
        c.relay.allow_peer,
        nets(&["10.0.1.5/32", "10.0.1.6/32", "192.168.0.0/16"])
    );
    assert_eq!(c.relay.deny_peer, nets(&["10.0.0.0/8", "fd00::/120"]));
}

#[test]
fn ranges_on_the_command_line_become_cidrs() {
    let c = Config::load(&cli(&["--deny-peer", "10.0.0.0-10.0.0.2,1.2.3.4"])).unwrap();
    assert_eq!(
        c.relay.deny_peer,
        nets(&["10.0.0.0/31", "10.0.0.2/32", "1.2.3.4/32"])
    );
}

#[test]
fn bad_ranges_are_errors() {
    let m = err("[relay]\ndeny_peer = [\"10.0.0.9-10.0.0.1\"]");
    names(&m, "relay.deny_peer", FILE);
    assert!(m.contains("starts after it ends"), "{m}");
    let m = err("[relay]\nallow_peer = [\"10.0.0.1-::1\"]");
    assert!(m.contains("mixes IPv4 and IPv6"), "{m}");
    let m = cli_err(&["--allow-peer", "10.0.0.1-10.0.0.x"]);
    names(&m, "--allow-peer", "command line");
    assert!(m.contains("invalid address range"), "{m}");
}

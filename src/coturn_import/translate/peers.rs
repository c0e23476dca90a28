//! coturn's peer lists said in ternd's terms.
//!
//! coturn refuses a peer first when it is loopback (without allow-loopback-peers),
//! `0.0.0.0/8` or `::`, link-local, unique-local or site-local (4.17), or multicast
//! with no-multicast-peers; then allows it when an allowed-peer-ip range holds it; then
//! refuses it when a denied-peer-ip range does; else allows it. ternd refuses a peer in
//! deny_peer, then allows one in allow_peer, else its built-in list decides (which
//! refuses everything coturn refuses first, and private ranges besides).
//!
//! So that an allowed address inside a denied range stays reachable:
//! allow_peer = the allowed ranges without coturn's first refusals (plus loopback,
//! outside the denied ranges, with allow-loopback-peers), and deny_peer = the denied
//! ranges without allow_peer, as CIDRs.

use ipnet::IpNet;
use toml::Value;

use super::{Line, Translation, shown};
use crate::config::ip_range;

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().filter_map(|s| s.parse().ok()).collect()
}

/// The peer lists ternd needs for coturn's `allowed` and `denied` ranges: (allow_peer,
/// deny_peer, whether some allowed addresses were dropped because coturn refuses them
/// before it reads allowed-peer-ip).
pub fn lists(
    allowed: &[IpNet],
    denied: &[IpNet],
    allow_loopback: bool,
    no_multicast: bool,
) -> (Vec<IpNet>, Vec<IpNet>, bool) {
    let loopback = nets(&["127.0.0.0/8", "::1/128"]);
    let mut first = nets(&[
        "0.0.0.0/8",
        "::/128",
        "169.254.0.0/16",
        "fe80::/10",
        "fc00::/7",
        "fec0::/10",
    ]);
    if !allow_loopback {
        first.extend(loopback.iter().copied());
    }
    if no_multicast {
        first.extend(nets(&["224.0.0.0/4", "ff00::/8"]));
    }
    let kept = ip_range::subtract(allowed, &first);
    let dropped = !ip_range::subtract(allowed, &kept).is_empty();
    let mut allow = kept;
    if allow_loopback {
        allow.extend(ip_range::subtract(&loopback, denied));
    }
    let allow = ip_range::subtract(&allow, &[]);
    let deny = ip_range::subtract(denied, &allow);
    (allow, deny, dropped)
}

/// One allowed-peer-ip / denied-peer-ip value: an IP, a `FIRST-LAST` range, or a CIDR.
fn entry(t: &mut Translation, l: &Line) -> Option<Vec<IpNet>> {
    let v = l.value.as_deref().unwrap_or("").trim();
    if let Some(range) = ip_range::parse_range(v) {
        return match range {
            Ok((lo, hi)) => Some(ip_range::range_to_cidrs(lo, hi)),
            Err(e) => {
                t.skip(l.no, &l.name, e.to_string());
                None
            }
        };
    }
    if let Ok(ip) = v.parse::<std::net::IpAddr>() {
        return Some(vec![IpNet::from(ip)]);
    }
    if let Ok(net) = v.parse::<IpNet>() {
        t.note(
            l.no,
            &l.name,
            "coturn takes IP or FIRST-LAST here, not CIDRs; taken as the CIDR",
        );
        return Some(vec![net.trunc()]);
    }
    t.skip(
        l.no,
        &l.name,
        format!("`{}` is not an IP address or a FIRST-LAST range", shown(v)),
    );
    None
}

/// Merges `nets` once it grows long (a file repeating one range thousands of times
/// stays small).
fn compact(nets: &mut Vec<IpNet>) {
    if nets.len() > 4096 {
        *nets = ip_range::subtract(nets, &[]);
    }
}

fn strings(v: &[IpNet]) -> Value {
    Value::Array(v.iter().map(|n| Value::String(n.to_string())).collect())
}

/// Translates the allowed-peer-ip and denied-peer-ip lines and allow-loopback-peers /
/// no-multicast-peers into relay.allow_peer and relay.deny_peer.
pub(super) fn translate(
    t: &mut Translation,
    allowed_lines: Vec<&Line>,
    denied_lines: Vec<&Line>,
    (allow_loopback, no_multicast): (bool, bool),
) {
    let mut allowed = Vec::new();
    let mut allowed_from = Vec::new();
    for l in allowed_lines {
        if let Some(n) = entry(t, l) {
            allowed.extend(n);
            allowed_from.push(l);
            compact(&mut allowed);
        }
    }
    let mut denied = Vec::new();
    let mut denied_from = Vec::new();
    for l in denied_lines {
        if let Some(n) = entry(t, l) {
            denied.extend(n);
            denied_from.push(l);
            compact(&mut denied);
        }
    }
    let (allow, deny, dropped) = lists(&allowed, &denied, allow_loopback, no_multicast);
    if dropped && let Some(l) = allowed_from.first() {
        t.note(
            l.no,
            &l.name,
            "some allowed addresses are ones coturn refuses before it reads allowed-peer-ip \
             (loopback without allow-loopback-peers, 0.0.0.0/8, ::, link-local, unique-local): \
             left out of allow_peer",
        );
    }
    let punched = ip_range::subtract(&denied, &[]) != deny;
    if !allow.is_empty() {
        t.set(
            "relay.allow_peer",
            strings(&allow),
            &allowed_from,
            &["Peers allowed even inside deny_peer's ranges or ternd's built-in refusals."],
        );
    }
    if !deny.is_empty() {
        let comment: &[&str] = if punched {
            &[
                "coturn's denied ranges without the allowed addresses: in coturn",
                "allowed-peer-ip beats denied-peer-ip, in ternd deny_peer beats allow_peer.",
            ]
        } else {
            &[]
        };
        t.set("relay.deny_peer", strings(&deny), &denied_from, comment);
    }
    if punched && let Some(l) = denied_from.first() {
        t.note(
            l.no,
            &l.name,
            "deny_peer holds the denied ranges without the allowed addresses (coturn's \
             allowed-peer-ip beats denied-peer-ip; ternd's deny_peer beats allow_peer)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PeerPolicy;

    #[test]
    fn allowed_beats_denied_as_in_coturn() {
        let (allow, deny, dropped) = lists(
            &nets(&["10.0.1.5/32"]),
            &nets(&["10.0.0.0/8"]),
            false,
            false,
        );
        assert!(!dropped);
        let policy = PeerPolicy::new(allow, deny, Vec::new());
        assert!(policy.check_ip("10.0.1.5".parse().unwrap()).is_ok());
        assert!(policy.check_ip("10.0.1.6".parse().unwrap()).is_err());
        assert!(policy.check_ip("10.200.0.1".parse().unwrap()).is_err());
        assert!(policy.check_ip("8.8.8.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn coturn_first_refusals_stay_refused() {
        let (allow, _, dropped) = lists(
            &nets(&["127.0.0.1/32", "169.254.0.0/16", "1.2.3.4/32"]),
            &[],
            false,
            false,
        );
        assert!(dropped);
        assert_eq!(allow, nets(&["1.2.3.4/32"]));
        let (allow, deny, _) = lists(&[], &nets(&["127.0.0.5/32"]), true, false);
        let policy = PeerPolicy::new(allow, deny, Vec::new());
        assert!(policy.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check_ip("127.0.0.5".parse().unwrap()).is_err());
        assert!(policy.check_ip("::1".parse().unwrap()).is_ok());
    }
}

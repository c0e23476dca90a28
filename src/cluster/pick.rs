//! Choosing nodes from the registry: the ones `/v1/ice-servers` names (healthy, least
//! loaded, the caller's region first), where a full or draining node redirects each
//! transport and family to, and the ICE URLs of a node.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::types::{Listener, NodeInfo};
use crate::ice::url_host;
use crate::turn::Transport;

/// A node that takes new allocations: it relays, is not draining, and is under its
/// capacity.
pub fn takes_allocations(n: &NodeInfo) -> bool {
    n.relay && !n.draining && (n.capacity == 0 || n.load.allocations < n.capacity)
}

/// The nodes to name, best first: those that take allocations, the ones in `region`
/// first, then by load (allocations over capacity), then by id; at most `count`.
pub fn ice_nodes<'a>(
    nodes: &'a [NodeInfo],
    region: Option<&str>,
    count: usize,
) -> Vec<&'a NodeInfo> {
    let mut ok: Vec<&NodeInfo> = nodes.iter().filter(|n| takes_allocations(n)).collect();
    ok.sort_by(|a, b| {
        let away = |n: &NodeInfo| region.is_some() && n.region.as_deref() != region;
        away(a)
            .cmp(&away(b))
            .then(a.load_ratio().total_cmp(&b.load_ratio()))
            .then(a.id.cmp(&b.id))
    });
    ok.truncate(count);
    ok
}

/// The transport of a listener entry.
fn transport_of(l: &Listener) -> Option<Transport> {
    match l.transport.as_str() {
        "udp" => Some(Transport::Udp),
        "tcp" => Some(Transport::Tcp),
        "tls" => Some(Transport::Tls),
        _ => None,
    }
}

/// Where node `me` sends the Allocates it does not take, per (client transport, IPv6):
/// the least-loaded other node that takes allocations and has a listener of that
/// transport and family (its advertised address).
pub fn alternates(nodes: &[NodeInfo], me: &str) -> HashMap<(Transport, bool), SocketAddr> {
    let mut best: HashMap<(Transport, bool), (f64, &str, SocketAddr)> = HashMap::new();
    for n in nodes.iter().filter(|n| n.id != me && takes_allocations(n)) {
        let load = n.load_ratio();
        for l in &n.listeners {
            let Some(t) = transport_of(l) else { continue };
            if l.addr.ip().is_unspecified() || l.addr.port() == 0 {
                continue;
            }
            let key = (t, l.addr.is_ipv6());
            let better = best
                .get(&key)
                .is_none_or(|&(bl, bid, _)| (load, n.id.as_str()) < (bl, bid));
            if better {
                best.insert(key, (load, n.id.as_str(), l.addr));
            }
        }
    }
    best.into_iter().map(|(k, (_, _, a))| (k, a)).collect()
}

/// A node's ICE URLs: (`stun:` ones, `turn:`/`turns:` ones), for each of its host names
/// (or, without any, the IPs of its listeners), with its UDP/TCP and TLS ports.
pub fn node_urls(n: &NodeInfo) -> (Vec<String>, Vec<String>) {
    let port = |t: &str| {
        n.listeners
            .iter()
            .find(|l| l.transport == t)
            .map(|l| l.addr.port())
    };
    let mut hosts: Vec<String> = n.ice_hosts.iter().map(|h| url_host(h)).collect();
    if hosts.is_empty() {
        for l in &n.listeners {
            let h = url_host(&l.addr.ip().to_string());
            if !l.addr.ip().is_unspecified() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    let (mut stun, mut turn) = (Vec::new(), Vec::new());
    for h in &hosts {
        if let Some(p) = port("udp") {
            stun.push(format!("stun:{h}:{p}"));
            turn.push(format!("turn:{h}:{p}?transport=udp"));
        }
        if let Some(p) = port("tcp") {
            turn.push(format!("turn:{h}:{p}?transport=tcp"));
        }
    }
    if let Some(p) = port("tls") {
        for h in &hosts {
            turn.push(format!("turns:{h}:{p}?transport=tcp"));
        }
    }
    (stun, turn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::Load;

    fn node(id: &str, region: Option<&str>, allocations: u64, capacity: u64) -> NodeInfo {
        let n: u8 = id.bytes().last().unwrap_or(b'0');
        NodeInfo {
            id: id.into(),
            region: region.map(Into::into),
            zone: None,
            listeners: vec![
                Listener {
                    transport: "udp".into(),
                    addr: SocketAddr::from(([192, 0, 2, n], 3478)),
                },
                Listener {
                    transport: "tcp".into(),
                    addr: SocketAddr::from(([192, 0, 2, n], 3478)),
                },
                Listener {
                    transport: "tls".into(),
                    addr: SocketAddr::from(([192, 0, 2, n], 5349)),
                },
            ],
            relay_addrs: vec![],
            ice_hosts: vec![],
            http: None,
            capacity,
            load: Load {
                allocations,
                packets_per_sec: 0,
                bits_per_sec: 0,
            },
            draining: false,
            relay: true,
            started_ms: 0,
            updated_ms: 0,
        }
    }

    fn ids(v: &[&NodeInfo]) -> Vec<String> {
        v.iter().map(|n| n.id.clone()).collect()
    }

    #[test]
    fn least_loaded_healthy_nodes_region_first() {
        let mut draining = node("n4", None, 0, 0);
        draining.draining = true;
        let mut api_only = node("n5", None, 0, 0);
        api_only.relay = false;
        let nodes = vec![
            node("n1", Some("eu"), 5, 100),
            node("n2", Some("us"), 1, 100),
            node("n3", Some("eu"), 50, 100),
            draining,
            api_only,
            node("n6", Some("eu"), 100, 100), // full
        ];
        assert_eq!(ids(&ice_nodes(&nodes, None, 2)), ["n2", "n1"]);
        assert_eq!(ids(&ice_nodes(&nodes, Some("eu"), 2)), ["n1", "n3"]);
        assert_eq!(ids(&ice_nodes(&nodes, Some("eu"), 5)), ["n1", "n3", "n2"]);
        assert_eq!(ids(&ice_nodes(&nodes, Some("ap"), 1)), ["n2"]);
        assert!(ice_nodes(&nodes[3..5], None, 2).is_empty());
    }

    #[test]
    fn alternates_pick_the_least_loaded_other_node_per_transport_and_family() {
        let mut v6 = node("n3", None, 9, 0);
        v6.listeners = vec![Listener {
            transport: "udp".into(),
            addr: "[2001:db8::3]:3478".parse().unwrap(),
        }];
        let nodes = vec![node("n1", None, 0, 0), node("n2", None, 5, 0), v6];
        let alt = alternates(&nodes, "n1");
        assert_eq!(
            alt[&(Transport::Udp, false)],
            "192.0.2.50:3478".parse().unwrap()
        );
        assert_eq!(
            alt[&(Transport::Tls, false)],
            "192.0.2.50:5349".parse().unwrap()
        );
        assert_eq!(
            alt[&(Transport::Udp, true)],
            "[2001:db8::3]:3478".parse().unwrap()
        );
        assert!(!alt.contains_key(&(Transport::Tcp, true)));
        // n2 is itself: then n1 (less loaded) is its pick.
        let alt = alternates(&nodes, "n2");
        assert_eq!(
            alt[&(Transport::Udp, false)],
            "192.0.2.49:3478".parse().unwrap()
        );
        // Nobody else: nothing.
        assert!(alternates(&nodes[..1], "n1").is_empty());
    }

    #[test]
    fn urls_per_host_and_transport() {
        let mut n = node("n1", None, 0, 0);
        let (stun, turn) = node_urls(&n);
        assert_eq!(stun, ["stun:192.0.2.49:3478"]);
        assert_eq!(
            turn,
            [
                "turn:192.0.2.49:3478?transport=udp",
                "turn:192.0.2.49:3478?transport=tcp",
                "turns:192.0.2.49:5349?transport=tcp"
            ]
        );
        n.ice_hosts = vec!["turn1.example.org".into(), "2001:db8::1".into()];
        let (stun, turn) = node_urls(&n);
        assert_eq!(
            stun,
            ["stun:turn1.example.org:3478", "stun:[2001:db8::1]:3478"]
        );
        assert_eq!(turn.len(), 6);
        assert_eq!(turn[5], "turns:[2001:db8::1]:5349?transport=tcp");
    }
}

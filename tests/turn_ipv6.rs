//! IPv6 relaying and RFC 8656 dual allocations through the real server, on loopback only
//! (127.0.0.1 and ::1).
//!
//! coturn's `turnutils_uclient` (with `turnutils_peer` echoing on both families) where
//! installed: IPv6 clients, IPv6 relays, dual allocations and the IPv4/IPv6 mixes. Those
//! print `SKIPPED …` and pass when coturn's tools are missing, unless
//! `TERND_REQUIRE_INTEROP=1` (CI), where they fail instead.
//!
//! Always (with ternd's own codec): Binding over [::1], the peer policy for IPv6 address
//! forms on an IPv6 allocation, and a dual allocation relaying to echo peers of both
//! families. These print `SKIPPED …` only where the host has no IPv6 loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ternd::config::{Config, PortRange};
use ternd::stun::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

mod common;
use common::{Client, error_code};

const SECRET: &str = "northwind";
/// Clients per uclient run (`-m`).
const CLIENTS: u32 = 5;
/// Messages per client (`-n`).
const MESSAGES: u32 = 100;
/// Payload length (`-l`).
const LENGTH: u32 = 200;

const V4_LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6_LOOPBACK: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[path = "common/coturn.rs"]
mod coturn;
use coturn::{Peer, Run, interop_required};

/// Whether this host has an IPv6 loopback to bind.
fn ipv6_loopback() -> bool {
    UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// True when [::1] is usable; otherwise says SKIPPED (or fails when interop is required).
fn ipv6_available(test: &str) -> bool {
    if ipv6_loopback() {
        return true;
    }
    assert!(
        !interop_required(),
        "{test}: IPv6 loopback (::1) required (TERND_REQUIRE_INTEROP=1) but not bindable"
    );
    eprintln!("SKIPPED {test}: ::1 is not bindable on this host (no IPv6)");
    false
}

/// True when coturn's test tools (and IPv6 loopback) are there; otherwise says SKIPPED (or
/// fails when interop is required).
fn coturn_available(test: &str) -> bool {
    coturn::tools_available(test) && ipv6_available(test)
}

/// A ternd listening on `listen` (port 0: each address gets its own port), relaying on
/// `relay_ips` with ports 10000-30000 (below Linux's ephemeral range, so client and peer
/// sockets never hold relay ports), allowing `allow_peer` (empty: the default policy).
fn start_server(
    listen: &[IpAddr],
    relay_ips: &[IpAddr],
    allow_peer: &[&str],
    rfc5766_channel_numbers: bool,
) -> ternd::net::Handle {
    let mut c = Config {
        listen: listen.iter().map(|&ip| SocketAddr::new(ip, 0)).collect(),
        workers: 2,
        ..Config::default()
    };
    c.http.listen = None;
    c.relay.relay_ips = relay_ips.to_vec();
    c.relay.ports = PortRange {
        lo: 10000,
        hi: 30000,
    };
    c.relay.allow_peer = allow_peer.iter().map(|n| n.parse().unwrap()).collect();
    c.relay.rfc5766_channel_numbers = rfc5766_channel_numbers;
    c.auth.secrets = vec![SECRET.to_owned()];
    let h = ternd::net::start(&c).expect("start server");
    for &ip in listen {
        udp_addr(&h, ip); // every listener came up (IPv6 ones are skipped if unavailable)
    }
    h
}

/// The server's UDP listener on `ip`.
fn udp_addr(h: &ternd::net::Handle, ip: IpAddr) -> SocketAddr {
    *h.udp_addrs()
        .iter()
        .find(|a| a.ip() == ip)
        .unwrap_or_else(|| panic!("no UDP listener on {ip}: {:?}", h.udp_addrs()))
}

/// Runs `turnutils_uclient` against `server` with `-m 5 -n 100 -l 200` and `extra`.
fn uclient(server: SocketAddr, extra: &[&str]) -> Run {
    coturn::uclient(server, (CLIENTS, MESSAGES, LENGTH), extra)
}

/// One uclient scenario: its own server (listening on 127.0.0.1 and ::1, relaying on both)
/// and its own peer (echoing on both).
struct Case {
    name: &'static str,
    /// The address uclient talks to the server on.
    server_ip: IpAddr,
    /// The address uclient asks the relay to reach the peer on.
    peer_ip: IpAddr,
    /// Family flags (`-x` IPv6 relay, `-Z` dual allocation, none: IPv4 relay). The
    /// others add `-c` (no RTCP allocations; `-Z` implies it) so that every run sends
    /// exactly 5 x 100 messages (with RTCP, uclient reports 600).
    args: &'static [&'static str],
}

/// Runs one case; `Err` describes what went wrong, with uclient's last lines.
fn run_case(case: &Case) -> Result<String, String> {
    let name = case.name;
    let h = start_server(
        &[V4_LOOPBACK, V6_LOOPBACK],
        &[V4_LOOPBACK, V6_LOOPBACK],
        &["127.0.0.1/32", "::1/128"],
        // Debian's 4.6.1 uclient picks channel numbers above 0x4FFF.
        true,
    );
    let mut peer = Peer::start(&[V6_LOOPBACK, V4_LOOPBACK]);
    let peer_port = peer.port.to_string();
    let peer_ip = case.peer_ip.to_string();
    let mut args: Vec<&str> = case.args.to_vec();
    args.extend_from_slice(&["-W", SECRET, "-u", "bob"]);
    args.extend_from_slice(&["-e", &peer_ip, "-r", &peer_port]);
    let server = udp_addr(&h, case.server_ip);
    let run = uclient(server, &args);
    let peer_exit = peer.exited();
    drop(peer);
    let st = h.stats();
    h.shutdown();
    let summary = format!(
        "{name}: uclient {args:?} {server} took {:.1} s, sent {} received {}",
        run.elapsed.as_secs_f64(),
        run.sent,
        run.received
    );
    run.judge(
        &summary,
        peer_exit,
        &st,
        CLIENTS,
        u64::from(CLIENTS * MESSAGES),
        true,
    )?;
    Ok(format!(
        "{summary}\n  server: allocations_created {}, relayed_out_packets {}, relayed_in_packets {}, error_responses {}",
        st.allocations_created, st.relayed_out_packets, st.relayed_in_packets, st.error_responses
    ))
}

/// coturn's `turnutils_uclient` (5 clients x 100 messages of 200 bytes each, ChannelData)
/// over IPv6 and with dual allocations, in five scenarios run concurrently (each with its
/// own server and peer) to keep the wall time near one run's (~9 s): every message echoed,
/// none lost.
#[test]
fn coturn_uclient_relays_over_ipv6_and_dual_allocations() {
    if !coturn_available("coturn_uclient_relays_over_ipv6_and_dual_allocations") {
        return;
    }
    let cases = [
        Case {
            name: "v6_client_v6_relay_v6_peer",
            server_ip: V6_LOOPBACK,
            peer_ip: V6_LOOPBACK,
            args: &["-x", "-c"],
        },
        Case {
            name: "dual_allocation_v6_peer",
            server_ip: V6_LOOPBACK,
            peer_ip: V6_LOOPBACK,
            args: &["-Z"],
        },
        Case {
            name: "dual_allocation_v4_peer",
            server_ip: V6_LOOPBACK,
            peer_ip: V4_LOOPBACK,
            args: &["-Z"],
        },
        Case {
            name: "v4_client_v6_relay_v6_peer",
            server_ip: V4_LOOPBACK,
            peer_ip: V6_LOOPBACK,
            args: &["-x", "-c"],
        },
        Case {
            name: "v6_client_v4_relay_v4_peer",
            server_ip: V6_LOOPBACK,
            peer_ip: V4_LOOPBACK,
            args: &["-c"],
        },
    ];
    let started = Instant::now();
    let results: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = cases.iter().map(|c| s.spawn(move || run_case(c))).collect();
        handles
            .into_iter()
            .zip(&cases)
            .map(|(h, c)| {
                h.join()
                    .unwrap_or_else(|_| Err(format!("{}: panicked (see above)", c.name)))
            })
            .collect()
    });
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(report) => eprintln!("{report}"),
            Err(e) => {
                eprintln!("{e}");
                failures.push(e);
            }
        }
    }
    eprintln!(
        "{} uclient cases in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} uclient cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A client of ternd's codec on [::1] with REST credentials for `user` under [`SECRET`].
fn v6_client(server: SocketAddr, user: &str) -> Client {
    let sock = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut c = Client::with_secret(server, user, SECRET);
    c.sock = sock;
    c
}

/// An Allocate (with the 401 round trip) with `build`'s attributes after
/// REQUESTED-TRANSPORT UDP; returns every XOR-RELAYED-ADDRESS of the success response.
fn allocate_with(c: &mut Client, build: impl Fn(&mut MessageBuilder<'_>)) -> Vec<SocketAddr> {
    let request = |b: &mut MessageBuilder<'_>| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        build(b);
    };
    let first = c.transact(Method::ALLOCATE, false, request);
    let m = Message::parse(&first).unwrap();
    assert_eq!(error_code(&m), Some(401));
    c.learn(&m);
    let resp = c.transact(Method::ALLOCATE, true, request);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "Allocate: error {:?}",
        error_code(&m)
    );
    m.verify_integrity(&c.key()).unwrap();
    if let Some(e) = m.get_decoded(attr_type::ADDRESS_ERROR_CODE) {
        panic!("unexpected ADDRESS-ERROR-CODE: {e:?}");
    }
    let tid = m.transaction_id();
    m.attributes()
        .filter(|a| a.typ == attr_type::XOR_RELAYED_ADDRESS)
        .map(|raw| match Attribute::decode(raw, &tid) {
            Ok(Attribute::XorRelayedAddress(a)) => a,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The response code of a request for `peer` (0 = success).
fn peer_request(c: &mut Client, method: Method, peer: SocketAddr) -> u16 {
    let resp = c.transact(method, true, |b| {
        if method == Method::CHANNEL_BIND {
            b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
        }
        b.add(&Attribute::XorPeerAddress(peer)).unwrap()
    });
    error_code(&Message::parse(&resp).unwrap()).unwrap_or(0)
}

/// Binding over UDP on [::1]: XOR-MAPPED-ADDRESS is the client's [::1]:port.
#[test]
fn binding_over_ipv6_reports_the_client_address() {
    if !ipv6_available("binding_over_ipv6_reports_the_client_address") {
        return;
    }
    let h = start_server(&[V6_LOOPBACK], &[V4_LOOPBACK], &[], false);
    let server = udp_addr(&h, V6_LOOPBACK);
    let sock = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId([6; 12]),
    )
    .unwrap();
    b.add_fingerprint().unwrap();
    let n = b.finish();
    let req = buf[..n].to_vec();
    // UDP on loopback: one retransmission at most is plenty.
    let mut resp = None;
    for _ in 0..3 {
        sock.send_to(&req, server).unwrap();
        let mut r = [0u8; 1500];
        if let Ok((n, from)) = sock.recv_from(&mut r) {
            assert_eq!(from, server, "answered from the listener");
            resp = Some(r[..n].to_vec());
            break;
        }
    }
    let resp = resp.expect("no Binding response over [::1]");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Success)
    );
    assert_eq!(m.transaction_id(), TransactionId([6; 12]));
    m.verify_fingerprint().expect("FINGERPRINT echoed");
    let mapped = match m.get_decoded(attr_type::XOR_MAPPED_ADDRESS) {
        Some(Ok(Attribute::XorMappedAddress(a))) => a,
        other => panic!("no XOR-MAPPED-ADDRESS: {other:?}"),
    };
    let local = sock.local_addr().unwrap();
    assert!(mapped.is_ipv6(), "{mapped}");
    assert_eq!(mapped, local);
    assert!(h.stats().binding_responses >= 1);
    h.shutdown();
}

/// One row of the IPv6 peer-policy table.
struct PolicyRow {
    peer: &'static str,
    what: &'static str,
    /// The IPv4 address the IPv6 address carries (mapped, compatible, NAT64, 6to4,
    /// Teredo client), which the policy judges it by.
    carries: Option<Ipv4Addr>,
}

/// The peer policy for IPv6 address forms, through the real server with the default policy
/// (no allow list), on an IPv6-only allocation of a client on [::1] (relay IPs 127.0.0.1
/// and ::1): every special form is refused with 403; an IPv4 peer gets 443 (Peer Address
/// Family Mismatch); a global IPv6 address is permitted. CreatePermission sends nothing.
///
/// The same-server exception (src/turn/mod.rs, `check_peer_policy`) lets an IP-only check
/// (CreatePermission) through for this server's own relay IPs in their exact form (so that
/// two clients of the server can reach each other; an IPv6 form carrying the IPv4 relay IP
/// is not exempt), and every check with a port (ChannelBind, Send) only lets live relayed
/// addresses through. So every row gets 403 at ChannelBind (port 9 is no relayed address)
/// and at CreatePermission, except [::1] itself (the IPv6 relay IP) there. The run is
/// repeated with relay IPs 127.0.0.1 and 127.0.0.2 for IPv4, so that rows carrying
/// 127.0.0.1 are checked against a relay IP of that value.
#[test]
fn ipv6_peer_policy_refuses_special_forms_on_an_ipv6_allocation() {
    if !ipv6_available("ipv6_peer_policy_refuses_special_forms_on_an_ipv6_allocation") {
        return;
    }
    let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
    let rows = [
        PolicyRow {
            peer: "[::]:9",
            what: "unspecified",
            carries: None,
        },
        PolicyRow {
            peer: "[::1]:9",
            what: "loopback",
            carries: None,
        },
        PolicyRow {
            peer: "[::ffff:127.0.0.1]:9",
            what: "IPv4-mapped loopback",
            carries: v4("127.0.0.1"),
        },
        PolicyRow {
            peer: "[::ffff:0.0.0.0]:9",
            what: "IPv4-mapped unspecified",
            carries: v4("0.0.0.0"),
        },
        PolicyRow {
            peer: "[::127.0.0.1]:9",
            what: "IPv4-compatible loopback",
            carries: v4("127.0.0.1"),
        },
        PolicyRow {
            peer: "[64:ff9b::a9fe:a9fe]:9",
            what: "NAT64 (RFC 6052) of 169.254.169.254",
            carries: v4("169.254.169.254"),
        },
        PolicyRow {
            peer: "[64:ff9b:1::a00:1]:9",
            what: "NAT64 local-use (RFC 8215) of 10.0.0.1",
            carries: v4("10.0.0.1"),
        },
        PolicyRow {
            peer: "[2002:7f00:1::]:9",
            what: "6to4 of 127.0.0.1",
            carries: v4("127.0.0.1"),
        },
        PolicyRow {
            peer: "[2001:0:4136:e378:8000:63bf:80ff:fffe]:9",
            what: "Teredo, client 127.0.0.1",
            carries: v4("127.0.0.1"),
        },
        PolicyRow {
            peer: "[fc00::1]:9",
            what: "unique local",
            carries: None,
        },
        PolicyRow {
            peer: "[fe80::1]:9",
            what: "link-local",
            carries: None,
        },
        PolicyRow {
            peer: "[ff02::1]:9",
            what: "multicast",
            carries: None,
        },
        PolicyRow {
            peer: "[100::1]:9",
            what: "discard-only (RFC 6666)",
            carries: None,
        },
        PolicyRow {
            peer: "[2001:db8::1]:9",
            what: "documentation",
            carries: None,
        },
    ];
    let mut failures = Vec::new();
    for relay_v4 in ["127.0.0.1", "127.0.0.2"] {
        let relay_v4: IpAddr = relay_v4.parse().unwrap();
        let h = start_server(&[V6_LOOPBACK], &[relay_v4, V6_LOOPBACK], &[], false);
        let server = udp_addr(&h, V6_LOOPBACK);
        let mut c = v6_client(server, "policy-v6");
        let relays = allocate_with(&mut c, |b| {
            b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))
                .unwrap()
        });
        assert_eq!(
            relays.iter().map(SocketAddr::ip).collect::<Vec<_>>(),
            vec![V6_LOOPBACK],
            "one IPv6 relayed address"
        );
        let denied_before = h.stats().policy_denied;
        let mut refused_at_create_permission = 0u64;
        for row in &rows {
            let peer: SocketAddr = row.peer.parse().unwrap();
            // Only the exact relay IP: an IPv6 form carrying the IPv4 relay IP is not it.
            let names_relay = peer.ip() == V6_LOOPBACK;
            let create = peer_request(&mut c, Method::CREATE_PERMISSION, peer);
            let bind = peer_request(&mut c, Method::CHANNEL_BIND, peer);
            let verdict = match (create, bind) {
                (403, 403) => {
                    refused_at_create_permission += 1;
                    "ok"
                }
                (0, 403) if names_relay => "ok (same-server exception at CreatePermission)",
                _ => {
                    failures.push(format!(
                        "relay v4 {relay_v4}: {} ({}): CreatePermission {create}, \
                         ChannelBind {bind}; expected 403 and 403",
                        row.peer, row.what
                    ));
                    "FAILED"
                }
            };
            eprintln!(
                "relay v4 {relay_v4}: {:<44} {:<40} (carries {:?}) CreatePermission {create:>3}, ChannelBind {bind:>3}: {verdict}",
                row.peer, row.what, row.carries
            );
        }
        // An IPv4 peer on this IPv6-only allocation: 443, whatever the policy says of it.
        for v4_peer in ["192.0.2.1:9", "127.0.0.1:9"] {
            let code = peer_request(&mut c, Method::CREATE_PERMISSION, v4_peer.parse().unwrap());
            if code != 443 {
                failures.push(format!(
                    "relay v4 {relay_v4}: CreatePermission {v4_peer} on an IPv6-only \
                     allocation: {code}, expected 443"
                ));
            }
        }
        // Positive control: a global IPv6 address is permitted (nothing is sent to it).
        let code = peer_request(
            &mut c,
            Method::CREATE_PERMISSION,
            "[2606:4700::1111]:3478".parse().unwrap(),
        );
        if code != 0 {
            failures.push(format!(
                "relay v4 {relay_v4}: CreatePermission [2606:4700::1111]:3478: {code}, expected success"
            ));
        }
        let st = h.stats();
        // Every 403 counted: all ChannelBinds plus the CreatePermissions refused.
        let expected_denied = rows.len() as u64 + refused_at_create_permission;
        if st.policy_denied - denied_before != expected_denied {
            failures.push(format!(
                "relay v4 {relay_v4}: policy_denied grew by {}, expected {expected_denied}",
                st.policy_denied - denied_before
            ));
        }
        if relay_v4 != V4_LOOPBACK && refused_at_create_permission != rows.len() as u64 - 1 {
            failures.push(format!(
                "relay v4 {relay_v4}: {refused_at_create_permission} rows refused at \
                 CreatePermission, expected all but [::1]"
            ));
        }
        h.shutdown();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A Send indication to `peer` (indications carry no credentials).
fn send_indication(c: &Client, peer: SocketAddr, payload: &[u8], tid: u8) {
    let mut buf = [0u8; 1500];
    let n = ternd_client::data::send_indication(TransactionId([tid; 12]), peer, payload, &mut buf)
        .unwrap();
    c.sock.send_to(&buf[..n], c.server).unwrap();
}

/// Reads one datagram at `peer` (bounded by its read timeout), checks it came from
/// `relay` with `payload`, and echoes it back.
fn echo_once(peer: &UdpSocket, relay: SocketAddr, payload: &[u8]) {
    let mut buf = [0u8; 1500];
    let (n, from) = peer
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("peer {:?}: nothing relayed: {e}", peer.local_addr()));
    assert_eq!(
        from, relay,
        "relayed from the relay address of the peer's family"
    );
    assert_eq!(&buf[..n], payload);
    peer.send_to(&buf[..n], from).unwrap();
}

/// An Allocate with ADDITIONAL-ADDRESS-FAMILY=IPv6 from a client on 127.0.0.1 returns two
/// XOR-RELAYED-ADDRESSes, one per family, and relaying works through both: Send/Data
/// indications and then ChannelData to echo peers on 127.0.0.1 and [::1], each reached
/// from (and answering to) the relayed address of its family.
#[test]
fn dual_allocation_relays_to_both_families() {
    if !ipv6_available("dual_allocation_relays_to_both_families") {
        return;
    }
    let h = start_server(
        &[V4_LOOPBACK],
        &[V4_LOOPBACK, V6_LOOPBACK],
        &["127.0.0.1/32", "::1/128"],
        false,
    );
    let server = udp_addr(&h, V4_LOOPBACK);
    let mut c = Client::with_secret(server, "dual", SECRET);
    let relays = allocate_with(&mut c, |b| {
        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))
            .unwrap()
    });
    assert_eq!(relays.len(), 2, "two XOR-RELAYED-ADDRESSes: {relays:?}");
    let relay_v4 = *relays
        .iter()
        .find(|a| a.is_ipv4())
        .unwrap_or_else(|| panic!("no IPv4 relayed address: {relays:?}"));
    let relay_v6 = *relays
        .iter()
        .find(|a| a.is_ipv6())
        .unwrap_or_else(|| panic!("no IPv6 relayed address: {relays:?}"));
    assert_eq!(relay_v4.ip(), V4_LOOPBACK);
    assert_eq!(relay_v6.ip(), V6_LOOPBACK);

    let peers: Vec<(UdpSocket, SocketAddr)> = [(V4_LOOPBACK, relay_v4), (V6_LOOPBACK, relay_v6)]
        .into_iter()
        .map(|(ip, relay)| {
            let s = UdpSocket::bind((ip, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            (s, relay)
        })
        .collect();
    for (p, _) in &peers {
        c.permit(p.local_addr().unwrap());
    }
    let before = h.stats();

    // Send indications out, Data indications back.
    for (i, (p, relay)) in peers.iter().enumerate() {
        let addr = p.local_addr().unwrap();
        let payload = format!("send indication to {addr}");
        send_indication(&c, addr, payload.as_bytes(), 0x80 + i as u8);
        echo_once(p, *relay, payload.as_bytes());
        assert_eq!(
            c.data(Duration::from_secs(2)),
            Some((addr, payload.into_bytes())),
            "Data indication from {addr}"
        );
    }

    // Channels out, ChannelData back.
    for (i, (p, relay)) in peers.iter().enumerate() {
        let addr = p.local_addr().unwrap();
        let number = 0x4000 + i as u16;
        c.bind_channel(number, addr);
        let payload = format!("channel data to {addr}");
        c.send_channel(number, payload.as_bytes());
        echo_once(p, *relay, payload.as_bytes());
        assert_eq!(
            c.channel_data(Duration::from_secs(2)),
            Some((number, payload.into_bytes())),
            "ChannelData from {addr} on channel {number:#x}"
        );
    }

    let st = h.stats();
    eprintln!(
        "dual allocation {relay_v4} + {relay_v6}: relayed_out {} relayed_in {}",
        st.relayed_out_packets - before.relayed_out_packets,
        st.relayed_in_packets - before.relayed_in_packets
    );
    assert_eq!(st.allocations_created, 1, "{st:?}");
    assert_eq!(
        st.relayed_out_packets - before.relayed_out_packets,
        4,
        "{st:?}"
    );
    assert_eq!(
        st.relayed_in_packets - before.relayed_in_packets,
        4,
        "{st:?}"
    );
    h.shutdown();
}

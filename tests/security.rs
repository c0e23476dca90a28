//! Security properties of the real server: the default peer policy refuses every special
//! address form (403 at CreatePermission), secrets never reach the logs, and the
//! unauthenticated rate limit caps 401s under a flood; the HTTP port bound on port 0 is
//! not relayable; the 401 challenge does not tell which static users are stored as an MD5
//! key.

use std::io::Read as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ternd::config::{Config, PortRange, RelayConfig, StaticUser, UserCredential};
use ternd::stun::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

mod common;
use common::{Client, SECRET, error_code, parse_text};

/// A global-scope IPv6 address of this host other than ::1 (from /proc/net/if_inet6), if
/// one is bindable.
fn global_v6() -> Option<Ipv6Addr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // address, ifindex, prefix length, scope, flags, name; scope 00 = global; flag
        // 0x40 = tentative (not usable yet).
        let (hex, scope, flags) = (f.first()?, f.get(3)?, f.get(4)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *scope != "00" || flags & 0x40 != 0 || hex.len() != 32 {
            return None;
        }
        let ip = Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
        (!ip.is_loopback() && UdpSocket::bind((ip, 0)).is_ok()).then_some(ip)
    })
}

/// An Allocate (with the 401 round trip) asking for `family`; returns the relayed address.
fn allocate_family(c: &mut Client, family: AddressFamily) -> SocketAddr {
    let build = |b: &mut MessageBuilder<'_>| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::RequestedAddressFamily(family)).unwrap();
    };
    let first = c.transact(Method::ALLOCATE, false, build);
    let m = Message::parse(&first).unwrap();
    assert_eq!(error_code(&m), Some(401));
    c.learn(&m);
    let resp = c.transact(Method::ALLOCATE, true, build);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "Allocate {family:?}: error {:?}",
        error_code(&m)
    );
    match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
        Some(Ok(Attribute::XorRelayedAddress(a))) => a,
        other => panic!("{other:?}"),
    }
}

/// The response code of a CreatePermission for `peer` (0 = success).
fn create_permission(c: &mut Client, peer: SocketAddr) -> u16 {
    let resp = c.transact(Method::CREATE_PERMISSION, true, |b| {
        b.add(&Attribute::XorPeerAddress(peer)).unwrap()
    });
    error_code(&Message::parse(&resp).unwrap()).unwrap_or(0)
}

/// Every address form of the issue, through the real server with the default policy (no
/// allow list): CreatePermission gets 403. IPv4 peers on an IPv4 allocation (relay
/// 127.0.0.2, so that 127.0.0.1 is not the relay address, which the same-server exception
/// would let through); IPv6 forms (the IPv4-mapped, -translated, -compatible, NAT64 and
/// 6to4 ones, and the reserved rest of ::/8, included) on an IPv6 allocation, relayed from a global IPv6 address of this host if it
/// has one, else from ::1.
#[test]
fn every_special_address_form_is_refused_at_create_permission() {
    let v6_relay: Option<IpAddr> = match global_v6() {
        Some(ip) => Some(ip.into()),
        None if UdpSocket::bind("[::1]:0").is_ok() => Some(Ipv6Addr::LOCALHOST.into()),
        None => None,
    };
    let mut relay_ips = vec!["127.0.0.2".parse().unwrap()];
    relay_ips.extend(v6_relay);
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 1,
        relay: RelayConfig {
            relay_ips,
            ports: PortRange {
                lo: 26000,
                hi: 26499,
            },
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.http.listen = None;
    c.auth.secrets = vec![SECRET.into()];
    let h = ternd::net::start(&c).expect("start");
    let server = h.udp_addrs()[0];

    let v4_rows = [
        "0.0.0.0",
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.1",
        "100.64.0.1",
    ];
    let v6_rows = [
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:0.0.0.0",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "fe80::1",
        "fc00::1",
        // SIIT IPv4-translated ::ffff:0:0:0/96 (RFC 6145): judged as the IPv4 it carries.
        "::ffff:0:127.0.0.1",
        "::ffff:0:10.0.0.1",
        // The rest of the IETF-reserved ::/8.
        "::ffff:1:7f00:1",
        "::fffe:7f00:1",
        "64:ff9b:0:0:0:1:7f00:1",
        // NAT64 local-use 64:ff9b:1::/48 (RFC 8215): where the IPv4 sits depends on the
        // translator's prefix length; the second is 127.0.0.1 for a /48 translator and
        // 8.8.8.8 by its last 32 bits.
        "64:ff9b:1::7f00:1",
        "64:ff9b:1:7f00:0:100:808:808",
        // Dummy IPv6 prefix 100:0:0:1::/64.
        "100:0:0:1::1",
    ];

    let mut v4 = Client::new(server, "policy-v4");
    let relay = allocate_family(&mut v4, AddressFamily::V4);
    assert_eq!(relay.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    let mut failures = Vec::new();
    for row in v4_rows {
        let peer = SocketAddr::new(row.parse().unwrap(), 9);
        let code = create_permission(&mut v4, peer);
        if code != 403 {
            failures.push(format!("{row}: {code}"));
        }
    }
    // Positive control: a public address is permitted.
    assert_eq!(create_permission(&mut v4, "8.8.8.8:9".parse().unwrap()), 0);

    match v6_relay {
        Some(relay_ip) => {
            let mut v6 = Client::new(server, "policy-v6");
            let relay = allocate_family(&mut v6, AddressFamily::V6);
            assert_eq!(relay.ip(), relay_ip);
            for row in v6_rows {
                let ip: IpAddr = row.parse().unwrap();
                let peer = SocketAddr::new(ip, 9);
                let code = if ip == relay_ip {
                    // Only without a global IPv6 address: ::1 is then this server's relay
                    // address, which CreatePermission (IP only) lets through so that two
                    // clients of this server can reach each other; every port of it that
                    // is not a live relayed address is refused at ChannelBind (exact).
                    eprintln!("{row} is the IPv6 relay address: checked with ChannelBind");
                    let resp = v6.transact(Method::CHANNEL_BIND, true, |b| {
                        b.add(&Attribute::ChannelNumber(0x4000)).unwrap();
                        b.add(&Attribute::XorPeerAddress(peer)).unwrap();
                    });
                    error_code(&Message::parse(&resp).unwrap()).unwrap_or(0)
                } else {
                    create_permission(&mut v6, peer)
                };
                if code != 403 {
                    failures.push(format!("{row}: {code}"));
                }
            }
            assert_eq!(
                create_permission(&mut v6, "[2606:4700::1111]:9".parse().unwrap()),
                0,
                "a public IPv6 address is permitted"
            );
            assert_eq!(
                create_permission(&mut v6, "[::ffff:0:8.8.8.8]:9".parse().unwrap()),
                0,
                "an IPv4-translated public address is permitted, like ::ffff:8.8.8.8"
            );
        }
        None => eprintln!(
            "SKIPPED: no IPv6 on this host (::1 not bindable); the IPv6 rows {v6_rows:?} \
             were not checked"
        ),
    }
    assert!(failures.is_empty(), "not refused with 403: {failures:?}");
    assert!(h.stats().policy_denied >= v4_rows.len() as u64);
    h.shutdown();
}

/// Kills the child on drop (also when an assert fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A full run of the real binary at trace level, JSON logs: Binding, REST and static-user
/// Allocates, a refused peer, a wrong password, a delete; then SIGTERM. Neither the REST
/// secret, nor the static password, nor the REST password derived for the session (nor
/// either long-term key) appears anywhere in its output.
#[test]
fn secrets_never_reach_the_logs() {
    const LOG_SECRET: &str = "rest-secret-Zq7vX2pL9kT4";
    const PASSWORD: &str = "static-pw-Hn3Wd8Rb5Jc1";
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ternd-seclog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--http-listen",
            "",
            "--relay-ip",
            "127.0.0.1",
            // Stop at once on SIGTERM even with an allocation alive (no drain).
            "--drain-timeout",
            "0s",
            "--log-level",
            "trace",
            "--log-format",
            "json",
            "--secret",
            LOG_SECRET,
            "--user",
            &format!("alice:{PASSWORD}"),
        ])
        .env_clear()
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Binding (and wait for the server to come up).
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let n = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId([7; 12]),
    )
    .unwrap()
    .finish();
    let req = buf[..n].to_vec();
    let mut up = false;
    for _ in 0..50 {
        probe.send_to(&req, server).unwrap();
        if probe.recv_from(&mut buf).is_ok() {
            up = true;
            break;
        }
    }
    if !up {
        let _ = child.0.kill();
        let _ = child.0.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("the binary did not answer Binding; its output:\n{log}");
    }

    // REST credentials under the secret.
    let mut rest = Client::with_secret(server, "bob", LOG_SECRET);
    rest.allocate();
    // The REST password the client derived (base64 HMAC-SHA1 of the username).
    let rest_password = ternd::auth::rest::password(LOG_SECRET, rest.username());
    assert!(!rest_password.is_empty());
    // An error case: a denied peer.
    assert_eq!(
        create_permission(&mut rest, "10.0.0.1:9".parse().unwrap()),
        403
    );
    // The static user.
    let mut alice = Client::with_credentials(server, "alice", PASSWORD);
    alice.allocate();
    let resp = alice.transact(Method::REFRESH, true, |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(error_code(&Message::parse(&resp).unwrap()), None);
    // A wrong password: 401 again.
    let mut wrong = Client::with_credentials(server, "alice", "not-the-password");
    let first = wrong.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&first).unwrap();
    wrong.learn(&m);
    let resp = wrong.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(error_code(&Message::parse(&resp).unwrap()), Some(401));

    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the binary stops on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let mut text = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    if std::env::var_os("TERND_KEEP_LOG").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    // The run was logged, at trace level, in JSON.
    assert!(text.contains("allocation created"), "{text}");
    assert!(text.contains("\"level\":\"TRACE\"") || text.contains("\"level\":\"DEBUG\""));
    assert!(
        text.lines()
            .all(|l| l.trim().is_empty() || l.starts_with('{'))
    );
    let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for (what, needle) in [
        ("the REST secret", LOG_SECRET.to_string()),
        ("the static password", PASSWORD.to_string()),
        ("the derived REST password", rest_password.clone()),
        ("the REST long-term key", hex(&rest.key())),
        ("the static user's key", hex(&alice.key())),
    ] {
        assert!(
            !text.contains(&needle),
            "{what} ({needle}) appears in the logs"
        );
    }
    eprintln!("{} log lines checked", text.lines().count());
}

/// 20,000 unauthenticated Allocates from one source, as fast as possible, with the default
/// limit (200/s, burst 1,000): the 401s received stay within burst + rate x elapsed, and
/// the counter shows the rest of what reached the server.
#[test]
fn unauthenticated_flood_is_rate_limited() {
    const RATE: f64 = 200.0;
    const BURST: f64 = 1000.0;
    let mut c = loopback_config((26500, 26599));
    c.workers = 2;
    assert_eq!(
        (c.relay.unauth_rate_limit, c.relay.unauth_rate_burst),
        (200, 1000),
        "the defaults"
    );
    let h = ternd::net::start(&c).expect("start");
    let server = h.udp_addrs()[0];
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Room for every answer of the burst while this process floods on the same 2 cores
    // (the default 208 KiB holds about 300 datagrams; the kernel caps at rmem_max).
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
    let rx = sock.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    // Count the answers concurrently; stop after 500 ms of silence.
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let (mut n401, mut last) = (0u64, Instant::now());
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            if let Ok(m) = Message::parse(&buf[..n])
                && error_code(&m) == Some(401)
            {
                n401 += 1;
                last = Instant::now();
            }
        }
        (n401, last)
    });
    let mut pkt = [0u8; 64];
    let n = {
        let mut b = MessageBuilder::new(
            &mut pkt,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([1; 12]),
        )
        .unwrap();
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.finish()
    };
    for i in 0..20_000u32 {
        pkt[8..12].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&pkt[..n], server).unwrap();
    }
    let sent_in = started.elapsed();
    assert!(sent_in < Duration::from_secs(2), "flood took {sent_in:?}");
    let (n401, last) = receiver.join().unwrap();
    let elapsed = last.duration_since(started).as_secs_f64();
    let bound = BURST + RATE * elapsed + 10.0;
    let st = h.stats();
    eprintln!(
        "sent 20000 in {sent_in:?}; server saw {} requests, answered {} (401s received {n401} \
         within {elapsed:.3} s, bound {bound:.0}), dropped {}",
        st.requests, st.auth_challenges, st.unauth_rate_limited
    );
    assert!(n401 as f64 <= bound, "{n401} 401s > {bound:.0}");
    assert!(st.auth_challenges as f64 <= bound, "{st:?}");
    assert!(
        st.auth_challenges >= 900,
        "the burst is answered: {} sent",
        st.auth_challenges
    );
    // What the client received: most of the burst (its receive buffer may still overflow
    // on a loaded machine), never more than was sent.
    assert!(
        n401 >= 500 && n401 <= st.auth_challenges,
        "401s received: {n401} of {} sent",
        st.auth_challenges
    );
    assert_eq!(
        st.auth_challenges + st.unauth_rate_limited,
        st.requests,
        "every request reaching the server was answered or counted as dropped"
    );
    assert!(
        st.requests >= 10_000,
        "most requests reached the server: {st:?}"
    );
    assert_eq!(st.allocations_created, 0);
    let text = ternd::metrics::render(&[st], ternd::metrics::Gauges::default());
    assert!(
        text.contains(&format!(
            "ternd_dropped_total{{reason=\"unauth_rate_limit\"}} {}\n",
            st.unauth_rate_limited
        )),
        "{text}"
    );
    h.shutdown();
}

/// Two clients of a server behind a 1:1 NAT (relay sockets on 127.0.0.1, advertised as
/// 127.0.0.5) reach each other through their advertised relayed addresses without the
/// datagrams going to the advertised address (no hairpin NAT needed): ternd sends to the
/// other relay's bound address and shows the receiver the advertised one it permitted.
/// The "public" address is on loopback, so a datagram that went there by mistake is caught.
#[test]
fn same_server_relaying_behind_one_to_one_nat_stays_on_the_host() {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 2,
        relay: RelayConfig {
            relay_ips: vec!["127.0.0.1".parse().unwrap()],
            external_ips: vec![ternd::config::ExternalIp {
                public: "127.0.0.5".parse().unwrap(),
                private: Some("127.0.0.1".parse().unwrap()),
            }],
            ports: PortRange {
                lo: 26500,
                hi: 26999,
            },
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.http.listen = None;
    c.auth.secrets = vec![SECRET.into()];
    let h = ternd::net::start(&c).expect("start");
    let server = h.udp_addrs()[0];
    let mut a = Client::new(server, "nat-a");
    let mut b = Client::new(server, "nat-b");
    let ra = a.allocate();
    let rb = b.allocate();
    let public: IpAddr = "127.0.0.5".parse().unwrap();
    assert_eq!((ra.ip(), rb.ip()), (public, public), "advertised addresses");
    // Anything sent to the advertised address itself lands here.
    let trap = UdpSocket::bind(rb).expect("bind the advertised address of B");
    trap.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    a.permit(rb);
    b.permit(ra);
    for round in 0..3u8 {
        a.send(rb, &[round, 1, 2, 3]);
        let (from, data) = b.data(Duration::from_secs(2)).expect("B gets A's datagram");
        assert_eq!(from, ra, "B sees A's advertised relayed address");
        assert_eq!(data, [round, 1, 2, 3]);
        b.send(ra, &[round, 9]);
        let (from, data) = a.data(Duration::from_secs(2)).expect("A gets B's answer");
        assert_eq!((from, data), (rb, vec![round, 9]));
    }
    let mut buf = [0u8; 64];
    assert!(
        trap.recv_from(&mut buf).is_err(),
        "a datagram went to the advertised address instead of staying on the host"
    );
    h.shutdown();
}

/// A one-worker server on 127.0.0.1 (UDP and TCP) relaying from 127.0.0.1 on `ports`, with
/// the REST secret [`SECRET`], the default peer policy and no HTTP endpoint.
fn loopback_config(ports: (u16, u16)) -> Config {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 1,
        relay: RelayConfig {
            relay_ips: vec!["127.0.0.1".parse().unwrap()],
            ports: PortRange {
                lo: ports.0,
                hi: ports.1,
            },
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.http.listen = None;
    c.auth.secrets = vec![SECRET.into()];
    c
}

/// A server relaying from 127.0.0.1 with the default policy (loopback denied, so only the
/// same-server exemption lets one allocation reach another), RFC 6062 TCP relaying on.
fn same_server(ports: (u16, u16)) -> ternd::net::Handle {
    let mut c = loopback_config(ports);
    c.tcp_relay = true;
    ternd::net::start(&c).expect("start")
}

/// A TCP control connection with an RFC 6062 TCP allocation; returns it and its relayed
/// address.
fn tcp_allocation(c: &mut Client, server: SocketAddr) -> (std::net::TcpStream, SocketAddr) {
    let mut s = std::net::TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let build = |b: &mut MessageBuilder<'_>| b.add(&Attribute::RequestedTransport(6)).unwrap();
    let first = c.transact_stream(&mut s, Method::ALLOCATE, false, build);
    let m = Message::parse(&first).unwrap();
    assert_eq!(error_code(&m), Some(401));
    c.learn(&m);
    let resp = c.transact_stream(&mut s, Method::ALLOCATE, true, build);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "TCP Allocate: {:?}",
        error_code(&m)
    );
    let relay = match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
        Some(Ok(Attribute::XorRelayedAddress(a))) => a,
        other => panic!("{other:?}"),
    };
    (s, relay)
}

/// The same-server exemption is for the transport the relayed address relays: a UDP
/// allocation at 127.0.0.1:P does not make a foreign TCP service on 127.0.0.1:P reachable
/// by RFC 6062 Connect.
#[test]
fn same_server_exemption_for_a_udp_relay_is_not_for_tcp() {
    let h = same_server((31100, 31149));
    let server = h.udp_addrs()[0];
    let mut udp_owner = Client::new(server, "owner");
    let udp_relay = udp_owner.allocate();
    let foreign_tcp = std::net::TcpListener::bind(udp_relay).expect("TCP port beside the relay");
    foreign_tcp.set_nonblocking(true).unwrap();
    let mut attacker = Client::new(server, "attacker");
    let (mut ctl, _) = tcp_allocation(&mut attacker, h.tcp_addrs()[0]);
    let resp = attacker.transact_stream(&mut ctl, Method::CONNECT, true, |b| {
        b.add(&Attribute::XorPeerAddress(udp_relay)).unwrap()
    });
    let code = error_code(&Message::parse(&resp).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let reached = foreign_tcp.accept().is_ok();
    assert!(
        code == Some(403) && !reached,
        "Connect to a UDP relay's address: answer {code:?}, foreign TCP service reached: {reached}"
    );
    h.shutdown();
}

/// ... and a TCP allocation at 127.0.0.1:Q does not make a foreign UDP service on
/// 127.0.0.1:Q reachable by Send indications or a channel.
#[test]
fn same_server_exemption_for_a_tcp_relay_is_not_for_udp() {
    let h = same_server((31150, 31199));
    let server = h.udp_addrs()[0];
    let mut tcp_owner = Client::new(server, "tcp-owner");
    let (_ctl2, tcp_relay) = tcp_allocation(&mut tcp_owner, h.tcp_addrs()[0]);
    let foreign_udp = UdpSocket::bind(tcp_relay).expect("UDP port beside the TCP relay");
    foreign_udp
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sender = Client::new(server, "sender");
    sender.allocate();
    sender.permit(tcp_relay); // IP-only: the relay IP itself is this server's
    sender.send(tcp_relay, b"secret probe");
    let bind = sender.channel_bind_code(0x4001, tcp_relay);
    sender.send_channel(0x4001, b"secret probe");
    let mut buf = [0u8; 64];
    let got = foreign_udp.recv_from(&mut buf).ok().map(|(n, _)| n);
    assert!(
        bind == Some(403) && got.is_none(),
        "to a TCP relay's address over UDP: ChannelBind {bind:?}, foreign UDP service got {got:?}"
    );
    h.shutdown();
}

/// A channel bound to another allocation's relayed address (allowed only by the same-server
/// exemption) stops when that allocation ends: a foreign service that binds the port next
/// gets nothing from it.
#[test]
fn exempted_channel_ends_with_the_relay_it_was_exempted_for() {
    let h = same_server((31200, 31299));
    let server = h.udp_addrs()[0];
    let mut a = Client::new(server, "a");
    let mut b = Client::new(server, "b");
    let relay_a = a.allocate();
    let relay_b = b.allocate();
    a.permit(relay_b);
    b.bind_channel(0x4002, relay_a);
    b.send_channel(0x4002, b"hello a");
    let (from, data) = a.data(Duration::from_secs(2)).expect("relayed to a");
    assert_eq!((from, data.as_slice()), (relay_b, &b"hello a"[..]));

    // a's allocation ends; a foreign service takes its port.
    let resp = a.transact(Method::REFRESH, true, |m| {
        m.add(&Attribute::Lifetime(0)).unwrap()
    });
    assert_eq!(
        Message::parse(&resp).unwrap().message_type().class,
        Class::Success
    );
    // The relay socket closes once its receive task is dropped, just after the answer.
    let deadline = Instant::now() + Duration::from_secs(2);
    let foreign = loop {
        match UdpSocket::bind(relay_a) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the freed relay port {relay_a}: {e}"),
        }
    };
    foreign
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for _ in 0..3 {
        b.send_channel(0x4002, b"for whoever has the port now");
    }
    let mut buf = [0u8; 64];
    let got = foreign.recv_from(&mut buf).ok().map(|(n, _)| n);
    assert!(got.is_none(), "the foreign service got {got:?} bytes");
    h.shutdown();
}

/// `--http-listen 127.0.0.1:0` on the real binary: the port the HTTP endpoint got is one of
/// the server's own service ports, so a TURN client (with loopback peers otherwise allowed
/// by `--allow-peer 127.0.0.1/32`) can neither bind a channel to it (403) nor send to it
/// (the Send indication is dropped) nor, with an RFC 6062 TCP allocation, Connect to it
/// (403), while an ordinary peer port on the same IP works for each. CreatePermission is
/// IP-only (RFC 8656 §9), so the permission for 127.0.0.1 is granted either way; the port
/// is judged when a transport address is used.
#[test]
fn http_port_bound_on_port_zero_is_not_relayable() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ternd-httpport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--http-listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--allow-peer",
            "127.0.0.1/32",
            "--tcp-relay",
            "--drain-timeout",
            "0s",
            "--log-format",
            "json",
            "--secret",
            SECRET,
        ])
        .env_clear()
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let _child = Child(child);
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The HTTP endpoint's bound address, from its start-up line (at most 10 s).
    let mut http_addr: Option<SocketAddr> = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        http_addr = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("HTTP endpoint"))
            })
            .find_map(|v| v["fields"]["addr"].as_str()?.parse().ok());
        if http_addr.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let http_addr = http_addr.unwrap_or_else(|| panic!("no HTTP endpoint line in:\n{text}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(http_addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_ne!(http_addr.port(), 0);
    assert_eq!(common::http(http_addr, "GET", "/healthz", &[]).status, 200);

    let mut c = Client::new(server, "mallory");
    c.allocate();
    // An ordinary peer, and a UDP socket on the HTTP port that catches anything relayed
    // there (UDP and TCP ports are separate, and ternd's HTTP endpoint is TCP only).
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let trap = UdpSocket::bind(http_addr).expect("a UDP socket on the HTTP port");
    trap.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();

    assert_eq!(
        create_permission(&mut c, peer_addr),
        0,
        "loopback is allowed"
    );
    assert_eq!(create_permission(&mut c, http_addr), 0, "IP-only check");
    let channel_bind =
        |c: &mut Client, number: u16, to: SocketAddr| c.channel_bind_code(number, to).unwrap_or(0);
    assert_eq!(
        channel_bind(&mut c, 0x4000, http_addr),
        403,
        "ChannelBind to the HTTP port {http_addr}"
    );
    assert_eq!(
        channel_bind(&mut c, 0x4001, peer_addr),
        0,
        "ChannelBind to a peer"
    );

    c.send(http_addr, b"to-http");
    c.send(peer_addr, b"to-peer");
    let mut buf = [0u8; 64];
    let (n, _) = peer
        .recv_from(&mut buf)
        .expect("the peer gets its datagram");
    assert_eq!(&buf[..n], b"to-peer");
    assert!(
        trap.recv_from(&mut buf).is_err(),
        "a Send indication reached the HTTP port {http_addr}"
    );

    // RFC 6062: a TCP allocation, then Connect (which would open a TCP connection from the
    // relay to the peer): refused for the HTTP endpoint, done for an ordinary TCP peer.
    let mut t = Client::new(server, "mallory-tcp");
    let (mut tcp, _) = tcp_allocation(&mut t, server);
    let tcp_peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_peer_addr = tcp_peer.local_addr().unwrap();
    let mut connect = |to: SocketAddr| {
        let resp = t.transact_stream(&mut tcp, Method::CONNECT, true, |b| {
            b.add(&Attribute::XorPeerAddress(to)).unwrap()
        });
        error_code(&Message::parse(&resp).unwrap()).unwrap_or(0)
    };
    assert_eq!(
        connect(http_addr),
        403,
        "Connect to the HTTP port {http_addr}"
    );
    assert_eq!(connect(tcp_peer_addr), 0, "Connect to a TCP peer");
}

/// EVEN-PORT R=1 reservations count against the quota and end with the allocation that
/// made them: Allocate(EVEN-PORT R=1) + Refresh(0) rounds from one 5-tuple hold no port
/// afterwards, and allocations with reservations from fresh 5-tuples stop at the user's
/// quota (each holds two of its slots).
#[test]
fn even_port_reservations_stop_at_the_user_quota() {
    let mut c = loopback_config((31300, 31799));
    c.relay.limits.user_quota = 10;
    let h = ternd::net::start(&c).expect("start");
    let server = h.udp_addrs()[0];
    let ports_in_use =
        || common::metric(&h.view().metrics(), "ternd_relay_ports_in_use", &[]) as u64;
    let even = |b: &mut MessageBuilder<'_>| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        b.add(&Attribute::EvenPort(true)).unwrap();
    };
    let mut round = Client::new(server, "mallory");
    round.allocate(); // the 401 round trip, then an allocation to delete
    let delete = |c: &mut Client| {
        let resp = c.transact(Method::REFRESH, true, |b| {
            b.add(&Attribute::Lifetime(0)).unwrap()
        });
        assert_eq!(error_code(&Message::parse(&resp).unwrap()), None);
    };
    delete(&mut round);
    for i in 0..100 {
        let resp = round.transact(Method::ALLOCATE, true, even);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(error_code(&m), None, "round {i}");
        assert!(m.get(attr_type::RESERVATION_TOKEN).is_some());
        delete(&mut round);
    }
    assert_eq!(ports_in_use(), 0, "100 rounds left ports held");

    let (mut granted, mut held) = (0, Vec::new());
    for _ in 0..20 {
        let mut fresh = Client::new(server, "mallory");
        let first = fresh.transact(Method::ALLOCATE, false, even);
        let m = Message::parse(&first).unwrap();
        fresh.learn(&m);
        let resp = fresh.transact(Method::ALLOCATE, true, even);
        match error_code(&Message::parse(&resp).unwrap()) {
            None => granted += 1,
            Some(486) => break,
            other => panic!("Allocate: {other:?}"),
        }
        held.push(fresh);
    }
    assert_eq!(
        granted, 5,
        "user_quota 10 = 5 allocations with a reservation each"
    );
    assert_eq!(ports_in_use(), 10);
    h.shutdown();
}

/// The 401 of an Allocate naming `username` (if any): REALM, NONCE and the raw
/// PASSWORD-ALGORITHMS value.
fn challenge_for(c: &mut Client, username: Option<&str>) -> (String, String, Vec<u8>) {
    let resp = c.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap();
        if let Some(u) = username {
            b.add(&Attribute::Username(u)).unwrap();
        }
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(401), "challenge for {username:?}");
    let algorithms = m
        .get(attr_type::PASSWORD_ALGORITHMS)
        .expect("PASSWORD-ALGORITHMS in the 401")
        .value
        .to_vec();
    (
        parse_text(&m, attr_type::REALM),
        parse_text(&m, attr_type::NONCE),
        algorithms,
    )
}

/// A static user stored as an MD5 `key` cannot be told from an unknown user (issue 19 item
/// 6): every username gets byte-identical PASSWORD-ALGORITHMS in its 401, and such a user
/// choosing SHA-256 (echoing the offered list, as RFC 8489 §9.2.4 asks) gets what a wrong
/// password and an unknown user get: 401 with a new challenge. MD5 with the right key (with
/// and without PASSWORD-ALGORITHM) still authenticates.
#[test]
fn md5_key_user_is_not_told_apart_from_an_unknown_user() {
    let mut c = loopback_config((31800, 31849));
    c.auth.users = vec![
        StaticUser {
            name: "carl".into(),
            credential: UserCredential::Md5Key(
                ternd::auth::long_term_key_md5("carl", "ternd", "carl-pw").unwrap(),
            ),
        },
        StaticUser {
            name: "alice".into(),
            credential: UserCredential::Password("alice-pw".into()),
        },
    ];
    let h = ternd::net::start(&c).expect("start");
    let server = h.udp_addrs()[0];

    // The same PASSWORD-ALGORITHMS, byte for byte, whoever is named.
    let mut probe = Client::new(server, "probe");
    let (_, _, anonymous) = challenge_for(&mut probe, None);
    assert_eq!(anonymous, [0, 2, 0, 0, 0, 1, 0, 0], "SHA-256 then MD5");
    for name in ["carl", "alice", "nobody", "1700000000:ghost"] {
        let (_, _, offered) = challenge_for(&mut probe, Some(name));
        assert_eq!(offered, anonymous, "PASSWORD-ALGORITHMS for {name}");
    }

    // An authenticated Allocate choosing `algorithm` (wire value) after a challenge that
    // named `username`, echoing the offered list; MESSAGE-INTEGRITY(-SHA256) under the key
    // derived from `password`. Returns the error code (0 = success).
    let attempt = |username: &str, password: &str, algorithm: Option<u16>| -> u16 {
        let mut cl = Client::with_credentials(server, username, password);
        let (realm, nonce, offered) = challenge_for(&mut cl, Some(username));
        let resp = cl.transact(Method::ALLOCATE, false, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
            if let Some(a) = algorithm {
                b.add_raw(attr_type::PASSWORD_ALGORITHMS, &offered).unwrap();
                let [hi, lo] = a.to_be_bytes();
                b.add_raw(attr_type::PASSWORD_ALGORITHM, &[hi, lo, 0, 0])
                    .unwrap();
            }
            b.add(&Attribute::Username(username)).unwrap();
            b.add(&Attribute::Realm(&realm)).unwrap();
            b.add(&Attribute::Nonce(&nonce)).unwrap();
            if algorithm == Some(2) {
                let key = ternd::auth::long_term_key_sha256(username, &realm, password).unwrap();
                b.add_message_integrity_sha256(&key).unwrap();
            } else {
                let key = ternd::auth::long_term_key_md5(username, &realm, password).unwrap();
                b.add_message_integrity(&key).unwrap();
            }
        });
        let m = Message::parse(&resp).unwrap();
        if error_code(&m) == Some(401) {
            // A new challenge, like the first one.
            assert_eq!(parse_text(&m, attr_type::REALM), realm);
            let again = m.get(attr_type::PASSWORD_ALGORITHMS).map(|a| a.value);
            assert_eq!(again, Some(&anonymous[..]), "{username}: a new challenge");
        }
        error_code(&m).unwrap_or(0)
    };

    let md5_user_sha256 = attempt("carl", "carl-pw", Some(2));
    let wrong_password_sha256 = attempt("alice", "not-alice-pw", Some(2));
    let wrong_password_md5 = attempt("carl", "not-carl-pw", Some(1));
    let unknown_sha256 = attempt("nobody", "whatever", Some(2));
    assert_eq!(
        (
            md5_user_sha256,
            wrong_password_sha256,
            wrong_password_md5,
            unknown_sha256
        ),
        (401, 401, 401, 401),
        "MD5-key user choosing SHA-256, wrong password (SHA-256, MD5), unknown user"
    );
    // The MD5-key user still gets in with MD5, chosen or implied; the password user with
    // SHA-256.
    assert_eq!(attempt("carl", "carl-pw", Some(1)), 0, "carl, MD5");
    assert_eq!(attempt("alice", "alice-pw", Some(2)), 0, "alice, SHA-256");
    let mut legacy = Client::with_credentials(server, "carl", "carl-pw");
    legacy.allocate();
    h.shutdown();
}

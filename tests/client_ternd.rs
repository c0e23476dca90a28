//! ternd-client's tokio adapter (`Client`, `RelaySocket`, `TcpAllocation`) against ternd
//! run as a child process on loopback: UDP, TCP and TLS to the server, channels and
//! indications, RFC 6062, Binding, close, and the errors a caller sees; nonce expiry while
//! relaying and 300 Try Alternate from a draining ternd, both counted by the servers'
//! metrics.

mod common;
#[path = "common/peers.rs"]
mod peers;
#[path = "common/process.rs"]
mod process;
#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{SECRET, metric, rest_credentials};
use peers::{UdpEcho, datagram, tcp_echo, url};
use process::{Setup, Ternd};
use ternd::stun::Method;
use ternd_client::{Client, ClientOptions, Credentials, Error, RelaySocket, Timing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test is bounded by this, whatever goes wrong.
const BOUND: Duration = Duration::from_secs(10);
/// Waiting for one echo.
const ECHO_WAIT: Duration = Duration::from_secs(2);

/// Runs `f` on a current-thread runtime, bounded by [`BOUND`].
fn run<F: std::future::Future<Output = ()>>(f: F) {
    peers::run_bounded(BOUND, f);
}

fn creds(user: &str) -> Credentials {
    rest_credentials(SECRET, user)
}

/// `n` round trips through the relay to the echo peer; every payload comes back intact.
async fn echo_lockstep(sock: &RelaySocket, peer: SocketAddr, n: u32) {
    let mut buf = vec![0u8; 2048];
    for i in 0..n {
        let d = datagram(i);
        assert_eq!(sock.send_to(&d, peer).await.unwrap(), d.len());
        let (len, from) = tokio::time::timeout(ECHO_WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("echo {i} lost; {:?}", sock.stats()))
            .unwrap();
        assert_eq!(from, peer);
        assert_eq!(&buf[..len], &d[..], "echo {i}");
    }
}

/// A burst of `n` datagrams sent before any is read: all come back (the ring holds them).
async fn echo_burst(sock: &RelaySocket, peer: SocketAddr, n: u32) {
    for i in 0..n {
        sock.send_to(&datagram(1000 + i), peer).await.unwrap();
    }
    let mut seen = vec![false; n as usize];
    let mut buf = vec![0u8; 2048];
    for _ in 0..n {
        let (len, _) = tokio::time::timeout(ECHO_WAIT, sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("burst echo lost; {:?}", sock.stats()))
            .unwrap();
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap()) - 1000;
        assert_eq!(&buf[..len], &datagram(1000 + i)[..]);
        seen[i as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    assert_eq!(sock.stats().dropped, 0);
}

/// 200 datagrams over a channel, all ChannelData both ways, then a burst.
async fn channels_round_trip(client: &Client) {
    let echo = UdpEcho::start();
    let sock = client.allocate().await.unwrap();
    assert_eq!(sock.relayed_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    echo_lockstep(&sock, echo.addr, 200).await;
    let st = sock.stats();
    assert!(sock.channel_for(echo.addr).is_some());
    // The first datagram waited for the ChannelBind (which installs the permission),
    // so every one went as ChannelData.
    assert_eq!(st.turn.channel_data_sent, 200, "{st:?}");
    assert_eq!(st.turn.indications_sent, 0, "{st:?}");
    assert_eq!(st.turn.channel_data_received, 200, "{st:?}");
    assert_eq!((st.received, st.dropped, st.too_large), (200, 0, 0));
    echo_burst(&sock, echo.addr, 64).await;
    sock.close().await.unwrap();
}

#[test]
fn udp_channels_echo_200_datagrams_without_loss() {
    let server = Ternd::start(Setup {
        relay_ports: "12000-12049",
        ..Setup::default()
    });
    run(async {
        let client = Client::connect(&url("turn", server.addr, "udp"), creds("udp"))
            .await
            .unwrap();
        channels_round_trip(&client).await;
    });
}

#[test]
fn udp_indications_only_when_channels_are_off() {
    let server = Ternd::start(Setup {
        relay_ports: "12050-12099",
        ..Setup::default()
    });
    run(async {
        let options = ClientOptions::default().channels(false);
        let client = Client::connect_with(&url("turn", server.addr, "udp"), creds("ind"), options)
            .await
            .unwrap();
        let echo = UdpEcho::start();
        let sock = client.allocate().await.unwrap();
        echo_lockstep(&sock, echo.addr, 200).await;
        let st = sock.stats();
        assert_eq!(sock.channel_for(echo.addr), None);
        assert_eq!(st.turn.channel_data_sent, 0, "{st:?}");
        assert_eq!(st.turn.indications_sent, 200, "{st:?}");
        assert_eq!(st.turn.data_indications_received, 200, "{st:?}");
        sock.close().await.unwrap();
    });
}

#[test]
fn tcp_to_the_server_relays_udp_with_padded_channel_data() {
    let server = Ternd::start(Setup {
        relay_ports: "12100-12149",
        ..Setup::default()
    });
    run(async {
        let client = Client::connect(&url("turn", server.addr, "tcp"), creds("tcp"))
            .await
            .unwrap();
        assert_eq!(client.protocol(), ternd_client::Protocol::Tcp);
        channels_round_trip(&client).await;
    });
}

#[test]
fn tls_to_the_server_verifies_its_name_and_relays() {
    let dir = tls::TempDir::new("client-tls");
    let (key, cert) = tls::self_signed(&dir.0, "server", "localhost");
    let server = Ternd::start(Setup {
        relay_ports: "12150-12199",
        tls: Some((&cert, &key)),
        ..Setup::default()
    });
    let tls_addr = server.tls.unwrap();
    run(async {
        // By name: "localhost" may resolve to ::1 first, where nothing listens; the next
        // address is tried.
        let url = format!("turns:localhost:{}", tls_addr.port());
        let options = ClientOptions::default().tls_config(tls::tls_client(&cert));
        let client = Client::connect_with(&url, creds("tls"), options)
            .await
            .unwrap();
        assert_eq!(client.server_addr(), tls_addr);
        channels_round_trip(&client).await;
        // The webpki roots do not trust a self-signed certificate.
        let err = Client::connect(&url, creds("tls")).await.unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
    });
}

#[test]
fn rfc_6062_connect_and_accept_over_tcp() {
    let server = Ternd::start(Setup {
        relay_ports: "12200-12249",
        tcp_relay: true,
        ..Setup::default()
    });
    run(async {
        let client = Client::connect(&url("turn", server.addr, "tcp"), creds("tcprelay"))
            .await
            .unwrap();
        let alloc = client.allocate_tcp().await.unwrap();
        // Connect: the relay dials the echo peer.
        let peer = tcp_echo();
        let mut s = alloc.connect(peer).await.unwrap();
        assert_eq!(s.peer_addr(), peer);
        let sent: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&sent).await.unwrap();
        let mut got = vec![0u8; sent.len()];
        tokio::time::timeout(ECHO_WAIT, s.read_exact(&mut got))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(got, sent);
        // Accept: a peer connects to the relayed address (with a permission for it).
        alloc.permit(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
        let relayed = alloc.relayed_addr();
        let dialer = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(relayed).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            c.write_all(b"from the peer").unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).unwrap();
            b
        });
        let (mut a, from) = alloc.accept().await.unwrap();
        assert_eq!(from.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut b = [0u8; 13];
        a.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"from the peer");
        a.write_all(b"reply").await.unwrap();
        let back = tokio::task::spawn_blocking(move || dialer.join().unwrap())
            .await
            .unwrap();
        assert_eq!(&back, b"reply");
        alloc.close().await.unwrap();
    });
}

#[test]
fn binding_over_udp_gives_the_address_the_allocation_sees() {
    let server = Ternd::start(Setup {
        relay_ports: "12250-12299",
        ..Setup::default()
    });
    run(async {
        let options = ClientOptions::default().local_addr("127.0.0.1:0".parse().unwrap());
        let client = Client::connect_with(&url("turn", server.addr, "udp"), creds("b"), options)
            .await
            .unwrap();
        let mapped = client.binding().await.unwrap();
        assert_eq!(mapped.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(mapped.port(), 0);
        // The allocation uses the same socket.
        let sock = client.allocate().await.unwrap();
        assert_eq!(sock.mapped_addr(), Some(mapped));
        assert!(matches!(client.allocate_tcp().await, Err(Error::Url(_))));
        sock.close().await.unwrap();
    });
}

#[test]
fn close_and_drop_free_the_allocation_on_the_server() {
    let server = Ternd::start(Setup {
        relay_ports: "12300-12349",
        ..Setup::default()
    });
    run(async {
        let client = Client::connect(&url("turn", server.addr, "udp"), creds("closer"))
            .await
            .unwrap();
        let a = client.allocate().await.unwrap();
        let b = client.allocate().await.unwrap();
        assert_ne!(a.relayed_addr(), b.relayed_addr());
        assert_eq!(server.metric("ternd_allocations_active"), 2.0);
        a.close().await.unwrap();
        assert_eq!(server.wait_allocations(1.0, Duration::from_secs(2)), 1.0);
        // Dropped without close: the driver deletes it on its own.
        drop(b);
        let deadline = Instant::now() + Duration::from_secs(2);
        while server.metric("ternd_allocations_active") != 0.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.metric("ternd_allocations_active"), 0.0);
    });
}

#[test]
fn a_wrong_password_is_a_401_failure() {
    let server = Ternd::start(Setup {
        relay_ports: "12350-12399",
        ..Setup::default()
    });
    run(async {
        let bad = Credentials::new(creds("who").username, "not the password");
        let client = Client::connect(&url("turn", server.addr, "udp"), bad)
            .await
            .unwrap();
        let err = peers::assert_allocate_401(&client, "a wrong password").await;
        assert_eq!(err.code(), Some(401));
    });
}

#[test]
fn an_unreachable_server_times_out_as_the_timing_says() {
    // A bound socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let timing = Timing {
        rto: Duration::from_millis(50),
        max_sends: 3,
        last_wait: 4,
        ..Timing::default()
    };
    assert_eq!(
        timing.transaction_timeout(false),
        Duration::from_millis(350)
    );
    run(async {
        let options = ClientOptions::default().timing(timing);
        let client = Client::connect_with(&url("turn", addr, "udp"), creds("nobody"), options)
            .await
            .unwrap();
        let t0 = Instant::now();
        let err = client.allocate().await.unwrap_err();
        let took = t0.elapsed();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    method: Method::ALLOCATE
                }
            ),
            "{err:?}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        let err = client.binding().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    method: Method::BINDING
                }
            ),
            "{err:?}"
        );
    });
    drop(silent);
}

#[test]
fn bad_urls_are_url_errors() {
    run(async {
        for u in [
            "http://127.0.0.1:3478",
            "turn:",
            "turn:127.0.0.1:0",
            "turn:127.0.0.1?transport=sctp",
            "turns:127.0.0.1?transport=udp",
            "turn:host.invalid:3478",
        ] {
            // No DNS here may mean a slow failure: bounded.
            let options = ClientOptions::default().connect_timeout(Duration::from_secs(1));
            let err = Client::connect_with(u, creds("u"), options)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Url(_)), "{u}: {err:?}");
        }
    });
}

/// Refresh intervals short enough to meet every nonce change (as client_coturn.rs does).
const PERMISSION_EVERY: Duration = Duration::from_millis(400);
const CHANNEL_EVERY: Duration = Duration::from_millis(700);
/// `--nonce-lifetime 1s` (the least the flag takes): ternd counts nonce age in whole
/// seconds of its own clock, so a nonce is valid only until that clock next ticks, at most
/// a second. The retry after a 438 comes within a millisecond, so its new nonce is valid
/// (were it not, the client rebuilds a request twice before giving up).
const NONCE_LIFETIME: &str = "1s";
/// Nonce changes to see.
const NONCE_CHANGES: u64 = 3;
/// The relaying loop's bounds.
const RELAY_MAX: u32 = 5_000;
const RELAY_FOR_AT_MOST: Duration = Duration::from_secs(7);

/// A metric of `text` (one scrape), summed over the samples with `labels`, as an integer.
fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    metric(text, name, labels) as u64
}

/// ternd with `--nonce-lifetime 1s` while the client relays without pause (a lockstep round
/// trip every 2 ms, permissions refreshed every 400 ms, the channel every 700 ms): its
/// requests meet at least three nonce changes, each answered 438 and taken; all client data
/// reaches ternd as ChannelData (its Send indication count stays 0), no echo is lost, and
/// the client's counters equal the server's.
#[test]
fn nonce_expiry_while_relaying_loses_nothing_and_counts_agree() {
    let t0 = Instant::now();
    let server = Ternd::start(Setup {
        relay_ports: "12400-12449",
        extra: &["--nonce-lifetime", NONCE_LIFETIME],
        ..Setup::default()
    });
    let echo = UdpEcho::start();
    run(async {
        // A long RTO: a retransmission (only a stalled runtime would make one on loopback)
        // would be counted twice by the server, and perhaps answered 438 where the client
        // took the first answer.
        let timing = Timing {
            rto: Duration::from_secs(2),
            ..Timing::default()
        };
        let options = ClientOptions::default()
            .refresh_intervals(PERMISSION_EVERY, CHANNEL_EVERY)
            .timing(timing);
        let client =
            Client::connect_with(&url("turn", server.addr, "udp"), creds("nonce"), options)
                .await
                .unwrap();
        let sock = client.allocate().await.unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 2048];
        let mut trips = 0u32;
        while trips < RELAY_MAX && started.elapsed() < RELAY_FOR_AT_MOST {
            let d = datagram(trips);
            assert_eq!(sock.send_to(&d, echo.addr).await.unwrap(), d.len());
            let (len, from) = tokio::time::timeout(ECHO_WAIT, sock.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("echo {trips} lost; {:?}", sock.stats()))
                .unwrap();
            assert_eq!((from, &buf[..len]), (echo.addr, &d[..]), "echo {trips}");
            trips += 1;
            if sock.stats().turn.stale_nonces >= NONCE_CHANGES {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let relayed_for = started.elapsed();
        let trips = u64::from(trips);

        // The client's counters against the server's, read when no request is under way:
        // the client's unchanged across the scrape (which blocks this runtime, the driver's
        // too) and every request it built received; else again, a few times.
        let mut agreed = None;
        for _ in 0..20 {
            let before = sock.stats().turn;
            let text = server.metrics();
            let requests = count(&text, "ternd_requests_total", &[])
                - count(&text, "ternd_responses_total", &[("method", "binding")]);
            if before == sock.stats().turn && requests == before.requests + before.retransmissions {
                agreed = Some((before, text));
                break;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        let (st, text) = agreed.unwrap_or_else(|| {
            panic!(
                "client and server never agreed: {:?}\n{}",
                sock.stats(),
                server.metrics()
            )
        });
        let stale = count(&text, "ternd_auth_total", &[("result", "stale_nonce")]);
        let by_method: Vec<(&str, u64)> =
            ["allocate", "refresh", "create_permission", "channel_bind"]
                .into_iter()
                .map(|m| {
                    (
                        m,
                        count(
                            &text,
                            "ternd_responses_total",
                            &[("method", m), ("code", "438")],
                        ),
                    )
                })
                .collect();
        eprintln!(
            "nonce expiry: {trips} round trips in {relayed_for:?}; server: 438 x{stale} {by_method:?}, \
             ChannelData {} / Send indications {} from the client, {} to it; client {st:?}",
            count(
                &text,
                "ternd_client_data_total",
                &[("framing", "channel_data")]
            ),
            count(
                &text,
                "ternd_client_data_total",
                &[("framing", "send_indication")]
            ),
            count(
                &text,
                "ternd_relayed_packets_total",
                &[("direction", "to_client")]
            ),
        );

        // At least three nonce changes met by requests, each a 438 the client took.
        assert!(stale >= NONCE_CHANGES, "{text}");
        assert_eq!(st.stale_nonces, stale, "the client took every 438");
        assert_eq!(
            count(&text, "ternd_responses_total", &[("code", "438")]),
            stale
        );
        // Apart from the first Allocate's 401 (the challenge), every other request
        // succeeded.
        assert_eq!(
            count(&text, "ternd_auth_total", &[("result", "challenge")]),
            1
        );
        for failure in ["unknown_user", "expired", "wrong_password"] {
            assert_eq!(count(&text, "ternd_auth_total", &[("result", failure)]), 0);
        }
        assert_eq!(
            count(&text, "ternd_auth_total", &[("result", "ok")]),
            st.requests - 1 - stale
        );
        let errors = count(&text, "ternd_responses_total", &[])
            - count(&text, "ternd_responses_total", &[("code", "success")]);
        assert_eq!(errors, 1 + stale, "{text}");
        for method in ["create_permission", "channel_bind"] {
            assert!(
                count(
                    &text,
                    "ternd_responses_total",
                    &[("method", method), ("code", "success")]
                ) >= 2,
                "{method}: {text}"
            );
        }
        assert_eq!(st.retransmissions, 0, "loopback: {st:?}");
        // Keepalives are the only indications (no Send indication at all).
        assert_eq!(count(&text, "ternd_indications_total", &[]), st.keepalives);

        // Data: every datagram as ChannelData both ways (the first waited for the
        // ChannelBind), none as a Send indication, none lost.
        assert_eq!(
            count(
                &text,
                "ternd_client_data_total",
                &[("framing", "channel_data")]
            ),
            trips
        );
        assert_eq!(
            count(
                &text,
                "ternd_client_data_total",
                &[("framing", "send_indication")]
            ),
            0
        );
        assert_eq!(
            count(
                &text,
                "ternd_relayed_packets_total",
                &[("direction", "to_peer")]
            ),
            trips
        );
        assert_eq!(
            count(
                &text,
                "ternd_relayed_packets_total",
                &[("direction", "to_client")]
            ),
            trips
        );
        assert_eq!((st.channel_data_sent, st.indications_sent), (trips, 0));
        assert_eq!(
            (st.channel_data_received, st.data_indications_received),
            (trips, 0)
        );
        let ss = sock.stats();
        assert_eq!((ss.received, ss.dropped, ss.too_large), (trips, 0, 0));
        assert_eq!(echo.echoed(), trips);
        assert_eq!(count(&text, "ternd_dropped_total", &[]), 0, "{text}");
        // Refresh(0), after a 438 of its own perhaps, deletes the allocation.
        sock.close().await.unwrap();
        assert_eq!(server.wait_allocations(0.0, Duration::from_secs(2)), 0.0);
    });
    eprintln!("nonce expiry: {:?}", t0.elapsed());
}

/// 300 Try Alternate: ternd A (`--alternate-server` B, `--drain-timeout 60s`) drains after
/// SIGTERM, kept draining by one allocation of its own, and answers every new Allocate with
/// 300 naming B. With `allow_private_alternates(true)` the client lands on B (relayed
/// address in B's relay range, data flows, B holds the allocation, A no new one); by
/// default it gets `Error::RefusedAlternate(B)`. Over UDP and TCP.
#[test]
fn try_alternate_from_a_draining_ternd_lands_on_the_second_or_is_refused() {
    let t0 = Instant::now();
    let b = Ternd::start(Setup {
        relay_ports: "12500-12549",
        ..Setup::default()
    });
    let b_addr = b.addr.to_string();
    let a = Ternd::start(Setup {
        relay_ports: "12450-12499",
        drain_timeout: Some("60s"),
        extra: &["--alternate-server", &b_addr],
        ..Setup::default()
    });
    let b_ports = 12500..=12549;
    run(async {
        // ternd drains only while it has allocations (with none, SIGTERM stops it): one
        // holds A in draining for the test.
        let holder = Client::connect(&url("turn", a.addr, "udp"), creds("holder"))
            .await
            .unwrap();
        let held = holder.allocate().await.unwrap();
        a.terminate();
        let deadline = Instant::now() + Duration::from_secs(2);
        while a.metric("ternd_draining") != 1.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.metric("ternd_draining"), 1.0, "A drains");

        let echo = UdpEcho::start();
        let (mut redirects, mut followed) = (0, 0);
        for transport in ["udp", "tcp"] {
            let u = url("turn", a.addr, transport);
            // Followed: the allocation is B's.
            let options = ClientOptions::default().allow_private_alternates(true);
            let client = Client::connect_with(&u, creds(transport), options)
                .await
                .unwrap();
            let sock = client
                .allocate()
                .await
                .unwrap_or_else(|e| panic!("{transport}: {e:?}"));
            redirects += 1;
            followed += 1;
            let relayed = sock.relayed_addr();
            assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert!(
                b_ports.contains(&relayed.port()),
                "{transport}: relayed {relayed}"
            );
            echo_lockstep(&sock, echo.addr, 20).await;
            assert_eq!(sock.stats().turn.channel_data_sent, 20, "{transport}");
            assert_eq!(
                b.metric("ternd_allocations_active"),
                1.0,
                "{transport}: on B"
            );
            assert_eq!(
                count(
                    &b.metrics(),
                    "ternd_client_data_total",
                    &[("framing", "channel_data")]
                ),
                20 * followed
            );
            // A holds only the holder's allocation.
            assert_eq!(a.metric("ternd_allocations_active"), 1.0, "{transport}: A");
            assert_eq!(a.metric("ternd_allocations_created_total"), 1.0);
            sock.close().await.unwrap();
            assert_eq!(b.wait_allocations(0.0, Duration::from_secs(2)), 0.0);

            // Refused by default: 127.0.0.1 is not a public address.
            let client = Client::connect(&u, creds(transport)).await.unwrap();
            match client.allocate().await {
                Err(Error::RefusedAlternate(named)) => assert_eq!(named, b.addr, "{transport}"),
                Err(e) => panic!("{transport}: {e:?}"),
                Ok(s) => panic!(
                    "{transport}: allocated {} despite the 300",
                    s.relayed_addr()
                ),
            }
            redirects += 1;
            assert_eq!(a.metric("ternd_allocations_created_total"), 1.0);
            assert_eq!(b.metric("ternd_allocations_created_total"), followed as f64);
        }
        let text = a.metrics();
        assert_eq!(
            count(
                &text,
                "ternd_responses_total",
                &[("method", "allocate"), ("code", "300")]
            ),
            redirects,
            "{text}"
        );
        // The holder's allocation kept relaying on A throughout.
        echo_lockstep(&held, echo.addr, 5).await;
        held.close().await.unwrap();
    });
    eprintln!("try alternate: {:?}", t0.elapsed());
}

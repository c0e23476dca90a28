//! TURN over UDP against third-party clients, on loopback only: coturn's
//! `turnutils_uclient` (with `turnutils_peer` as the echoing peer) where installed, and
//! the webrtc-rs `turn` crate's client always.
//!
//! The coturn tests print `SKIPPED …` and pass when coturn's tools are missing, unless
//! `TERND_REQUIRE_INTEROP=1` (CI), where they fail instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ternd::config::{Config, PortRange, StaticUser, UserCredential};

const SECRET: &str = "northwind";
/// Clients per uclient run (`-m`).
const CLIENTS: u32 = 10;
/// Messages per client (`-n`).
const MESSAGES: u32 = 100;
/// Payload length (`-l`).
const LENGTH: u32 = 200;

#[path = "common/coturn.rs"]
mod coturn;
use coturn::{Peer, Run};

/// coturn's tools, or SKIPPED.
fn coturn_available(test: &str) -> bool {
    coturn::tools_available(test)
}

/// A ternd on an ephemeral loopback port, relaying on 127.0.0.1:10000-30000 (below
/// Linux's ephemeral range, so client and peer sockets never hold relay ports) and
/// allowing loopback peers.
fn start_server(rfc5766_channel_numbers: bool, users: Vec<StaticUser>) -> ternd::net::Handle {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 2,
        ..Config::default()
    };
    c.relay.ports = PortRange {
        lo: 10000,
        hi: 30000,
    };
    c.relay.allow_peer = vec!["127.0.0.1/32".parse().unwrap()];
    c.relay.rfc5766_channel_numbers = rfc5766_channel_numbers;
    c.auth.secrets = vec![SECRET.to_owned()];
    c.auth.users = users;
    ternd::net::start(&c).expect("start server")
}

/// Runs `turnutils_uclient` against `server` with `-m 10 -n 100 -l 200` and `extra`.
fn uclient(server: SocketAddr, extra: &[&str]) -> Run {
    coturn::uclient(server, (CLIENTS, MESSAGES, LENGTH), extra)
}

/// One uclient scenario: its own server, its own peer (unless `-y`).
struct Case {
    name: &'static str,
    rfc5766_channel_numbers: bool,
    users: Vec<StaticUser>,
    peer: bool,
    args: &'static [&'static str],
}

/// Runs one case; `Err` describes what went wrong, with uclient's last lines.
fn run_case(case: &Case) -> Result<String, String> {
    let name = case.name;
    let h = start_server(case.rfc5766_channel_numbers, case.users.clone());
    let mut peer = case
        .peer
        .then(|| Peer::start(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]));
    let peer_port = peer.as_ref().map(|p| p.port.to_string());
    let mut args: Vec<&str> = case.args.to_vec();
    if let Some(p) = &peer_port {
        args.extend_from_slice(&["-e", "127.0.0.1", "-r", p]);
    }
    let server = h.udp_addrs()[0];
    let run = uclient(server, &args);
    let peer_exit = peer.as_mut().and_then(Peer::exited);
    drop(peer);
    let st = h.stats();
    h.shutdown();
    let summary = format!(
        "{name}: uclient {args:?} -> {server} took {:.1} s, sent {} received {}",
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
        false,
    )?;
    Ok(format!("{summary}\n  server {st:?}"))
}

/// coturn's `turnutils_uclient` (10 clients x 100 messages of 200 bytes each) in five
/// scenarios, run concurrently (each with its own server and peer) to keep the wall time
/// near one run's (~10 s).
#[test]
fn coturn_uclient_relays_without_loss() {
    if !coturn_available("coturn_uclient_relays_without_loss") {
        return;
    }
    let alice = StaticUser {
        name: "alice".to_owned(),
        credential: UserCredential::Password("wonderland".to_owned()),
    };
    let cases = [
        // (a) REST credentials, default mode: ChannelBind + ChannelData. Debian's 4.6.1
        // uclient picks channel numbers above 0x4FFF, hence the RFC 5766 range.
        Case {
            name: "rest_channels",
            rfc5766_channel_numbers: true,
            users: Vec::new(),
            peer: true,
            args: &["-W", SECRET, "-u", "bob"],
        },
        // (b) Send and Data indications.
        Case {
            name: "rest_send_indications",
            rfc5766_channel_numbers: true,
            users: Vec::new(),
            peer: true,
            args: &["-s", "-W", SECRET, "-u", "bob"],
        },
        // (c) Client to client: relay to relay, no peer.
        Case {
            name: "rest_client_to_client",
            rfc5766_channel_numbers: true,
            users: Vec::new(),
            peer: false,
            args: &["-y", "-W", SECRET, "-u", "bob"],
        },
        // (d) A static long-term-credential user.
        Case {
            name: "static_user_channels",
            rfc5766_channel_numbers: true,
            users: vec![alice],
            peer: true,
            args: &["-u", "alice", "-w", "wonderland"],
        },
        // (e) ternd's default RFC 8656 channel range with Send indications only, which
        // need no channel: the default configuration works with this client.
        Case {
            name: "default_channel_range_send_indications",
            rfc5766_channel_numbers: false,
            users: Vec::new(),
            peer: true,
            args: &["-s", "-W", SECRET, "-u", "bob"],
        },
    ];
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
    assert!(
        failures.is_empty(),
        "{} of {} uclient cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The webrtc-rs `turn` crate's client: allocates, sends to an echo peer (first with Send
/// indications while its ChannelBind is in flight, then ChannelData) and reads the echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_turn_client_relays_to_an_echo_peer() {
    use tokio::time::timeout;
    use turn::client::{Client, ClientConfig};

    let h = start_server(false, Vec::new());
    let server = h.udp_addrs()[0];
    assert_eq!(Config::default().realm, "ternd");

    // Echo peer: returns every datagram to its sender, until the test ends.
    let echo = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let peer_addr = echo.local_addr().unwrap();
    let echo_task = {
        let echo = echo.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        })
    };

    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let (username, password) = ternd::auth::rest::credentials(SECRET, "webrtc", expiry, ':');
    let conn = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username,
        password,
        realm: "ternd".to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("listen");
    let relay_conn = timeout(Duration::from_secs(10), client.allocate())
        .await
        .expect("Allocate timed out")
        .expect("Allocate");

    // `allocate` returns an opaque `impl util::Conn`, and webrtc-util is not a dependency
    // of ternd. Coercing it to `dyn Conn` through ClientConfig's field makes its methods
    // callable without naming the trait (a trait object's methods are inherent).
    let relay = ClientConfig {
        stun_serv_addr: String::new(),
        turn_serv_addr: String::new(),
        username: String::new(),
        password: String::new(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(relay_conn),
        vnet: None,
    }
    .conn;
    let relayed_addr = relay.local_addr().expect("relayed address");
    assert_eq!(relayed_addr.ip(), server.ip(), "relayed on loopback");

    // Send until at least 10 echoes came back and the server has seen both Send
    // indications and ChannelData (relayed_out_packets > indications); at most 40.
    let mut echoed = 0u64;
    let mut sent = 0u64;
    for i in 0..40u32 {
        let msg = format!("ternd interop message {i:02}");
        sent += 1;
        timeout(
            Duration::from_secs(5),
            relay.send_to(msg.as_bytes(), peer_addr),
        )
        .await
        .expect("send_to timed out")
        .expect("send_to");
        let mut buf = [0u8; 1500];
        let (n, from) = timeout(Duration::from_secs(5), relay.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no echo for message {i}: {:?}", h.stats()))
            .expect("recv_from");
        assert_eq!(from, peer_addr, "echo comes from the peer");
        assert_eq!(&buf[..n], msg.as_bytes(), "payload intact");
        echoed += 1;
        let st = h.stats();
        if echoed >= 10 && st.indications >= 1 && st.relayed_out_packets > st.indications {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let st = h.stats();
    eprintln!("webrtc turn client: sent {sent}, echoed {echoed}; server {st:?}");
    assert!(echoed >= 10, "{st:?}");
    assert!(st.allocations_created >= 1, "{st:?}");
    assert!(st.relayed_out_packets >= echoed, "{st:?}");
    assert!(st.relayed_in_packets >= echoed, "{st:?}");
    assert!(st.indications >= 1, "Send indications used first: {st:?}");
    assert!(
        st.relayed_out_packets > st.indications,
        "ChannelData used once the channel was bound: {st:?}"
    );

    let _ = relay.close().await;
    timeout(Duration::from_secs(10), client.close())
        .await
        .expect("close timed out")
        .expect("close");
    echo_task.abort();
    h.shutdown();
}

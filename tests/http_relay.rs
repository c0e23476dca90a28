//! The HTTP endpoint in front of a real relay: access token → iceServers → allocation,
//! metrics after a known workload, and the admin API ending a session at once.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Client, SECRET, http, metric};
use ternd::config::{Config, HttpConfig, PortRange, RelayConfig};

const TOKEN_KEY: &str = "token-signing-key-for-tests";
const ADMIN: &str = "admin-token-0123456789";

struct Server {
    relay: ternd::net::Handle,
    http: Option<ternd::http::HttpHandle>,
    stop: tokio::sync::watch::Sender<bool>,
    http_addr: SocketAddr,
}

impl Server {
    fn start(ports: (u16, u16)) -> Server {
        Self::start_with(ports, Vec::new())
    }

    fn start_with(ports: (u16, u16), public_keys: Vec<std::path::PathBuf>) -> Server {
        let mut c = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 2,
            relay: RelayConfig {
                relay_ips: vec!["127.0.0.1".parse().unwrap()],
                ports: PortRange {
                    lo: ports.0,
                    hi: ports.1,
                },
                allow_peer: vec!["127.0.0.0/8".parse().unwrap()],
                // Debian's coturn 4.6.1 uclient picks channel numbers above 0x4FFF.
                rfc5766_channel_numbers: true,
                ..RelayConfig::default()
            },
            http: HttpConfig {
                listen: None,
                token_hs256_secrets: vec![TOKEN_KEY.into()],
                token_public_keys: public_keys,
                admin_token: Some(ADMIN.into()),
                rate_limit: 0,
                ..HttpConfig::default()
            },
            ..Config::default()
        };
        c.auth.secrets = vec![SECRET.into()];
        let relay = ternd::net::start(&c).expect("relay");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ice = ternd::http::IceSettings {
            hosts: vec!["127.0.0.1".into()],
            udp_tcp_port: relay.udp_addrs()[0].port(),
            tls_port: None,
            secret: SECRET.into(),
            separator: ':',
            ttl: Duration::from_secs(3600),
            cluster: None,
        };
        let (stop, rx) = tokio::sync::watch::channel(false);
        let h = ternd::http::start(listener, &c.http, ice, relay.view(), rx).expect("http");
        let http_addr = h.local_addr();
        Server {
            relay,
            http: Some(h),
            stop,
            http_addr,
        }
    }

    fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.http.take() {
            h.join();
        }
        self.relay.shutdown();
    }
}

fn token(sub: &str) -> String {
    common::hs256_token(sub, TOKEN_KEY)
}

fn ice_credentials(s: &Server, sub: &str) -> (String, String, serde_json::Value) {
    ice_credentials_with(s, &token(sub))
}

fn ice_credentials_with(s: &Server, token: &str) -> (String, String, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let r = http(
        s.http_addr,
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let turn = v["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["username"].is_string())
        .unwrap()
        .clone();
    (
        turn["username"].as_str().unwrap().to_string(),
        turn["credential"].as_str().unwrap().to_string(),
        v,
    )
}

#[test]
fn access_token_to_iceservers_to_allocation() {
    let s = Server::start((24000, 24499));
    let (username, credential, v) = ice_credentials(&s, "alice");
    assert!(username.ends_with(":alice"), "{username}");
    let port = s.relay.udp_addrs()[0].port();
    let urls = v["iceServers"].to_string();
    assert!(
        urls.contains(&format!("turn:127.0.0.1:{port}?transport=udp")),
        "{urls}"
    );
    assert!(
        v["ttl"].as_u64().unwrap() <= 600,
        "ttl bounded by the token's exp"
    );
    // The credentials work on the relay itself.
    let mut c = Client::with_credentials(s.relay.udp_addrs()[0], &username, &credential);
    let relayed = c.allocate();
    assert_eq!(relayed.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
    // And with coturn's client, where installed.
    let have_uclient = Command::new("turnutils_uclient")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if have_uclient {
        let out = Command::new("timeout")
            .args([
                "60",
                "turnutils_uclient",
                "-u",
                &username,
                "-w",
                &credential,
                "-y",
                "-m",
                "2",
                "-n",
                "50",
            ])
            .args(["-p", &port.to_string(), "127.0.0.1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("Total lost packets 0"), "{text}");
    } else {
        assert_ne!(
            std::env::var("TERND_REQUIRE_INTEROP").as_deref(),
            Ok("1"),
            "turnutils_uclient is required"
        );
        eprintln!(
            "SKIPPED uclient part of access_token_to_iceservers_to_allocation: coturn not installed"
        );
    }
    s.stop();
}

/// After a known relay workload, the counters equal what was sent.
#[test]
fn metrics_count_a_known_workload() {
    let s = Server::start((24500, 24999));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut c = Client::new(s.relay.udp_addrs()[0], "metered");
    let relay = c.allocate();
    c.bind_channel(0x4000, peer.local_addr().unwrap());
    for i in 0..100u8 {
        c.send_channel(0x4000, &[i; 100]);
        let mut b = [0u8; 200];
        let (n, from) = peer.recv_from(&mut b).unwrap_or_else(|e| {
            panic!(
                "peer receives packet {i}: {e}; server: {:?}",
                s.relay.stats()
            )
        });
        assert_eq!((n, from), (100, relay));
    }
    // And 5 as Send indications, counted apart from the ChannelData.
    for i in 0..5u8 {
        c.send(peer.local_addr().unwrap(), &[i; 100]);
        let mut b = [0u8; 200];
        assert_eq!(peer.recv_from(&mut b).unwrap(), (100, relay));
    }
    for i in 0..50u8 {
        peer.send_to(&[i; 60], relay).unwrap();
        let (ch, data) = c
            .channel_data(Duration::from_secs(2))
            .expect("client receives");
        assert_eq!((ch, data.len()), (0x4000, 60));
    }
    let text = http(s.http_addr, "GET", "/metrics", &[]).body;
    assert_eq!(
        metric(
            &text,
            "ternd_relayed_packets_total",
            &[("direction", "to_peer")]
        ),
        105.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "ternd_client_data_total",
            &[("framing", "channel_data")]
        ),
        100.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_client_data_total",
            &[("framing", "send_indication")]
        ),
        5.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_relayed_packets_total",
            &[("direction", "to_client")]
        ),
        50.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_relayed_bytes_total",
            &[("direction", "to_peer")]
        ),
        10_500.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_relayed_bytes_total",
            &[("direction", "to_client")]
        ),
        3_000.0
    );
    assert_eq!(metric(&text, "ternd_allocations_active", &[]), 1.0);
    assert_eq!(metric(&text, "ternd_allocations_created_total", &[]), 1.0);
    assert_eq!(
        metric(
            &text,
            "ternd_responses_total",
            &[("method", "allocate"), ("code", "401")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_responses_total",
            &[("method", "allocate"), ("code", "success")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "ternd_responses_total",
            &[("method", "channel_bind"), ("code", "success")]
        ),
        1.0
    );
    assert_eq!(metric(&text, "ternd_auth_total", &[("result", "ok")]), 2.0);
    assert_eq!(metric(&text, "ternd_relay_ports_in_use", &[]), 1.0);
    s.stop();
}

/// A killed session stops relaying at once; without the admin token → 401.
#[test]
fn admin_kills_a_session_at_once() {
    let s = Server::start((25000, 25499));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut c = Client::new(s.relay.udp_addrs()[0], "victim");
    c.allocate();
    c.bind_channel(0x4001, peer.local_addr().unwrap());
    c.send_channel(0x4001, b"before");
    let mut b = [0u8; 64];
    assert_eq!(
        peer.recv_from(&mut b).map(|(n, _)| b[..n].to_vec()).ok(),
        Some(b"before".to_vec()),
        "server: {:?}",
        s.relay.stats()
    );

    assert_eq!(http(s.http_addr, "GET", "/admin/sessions", &[]).status, 401);
    assert_eq!(
        http(
            s.http_addr,
            "GET",
            "/admin/sessions",
            &[("Authorization", "Bearer wrong-token-000000")]
        )
        .status,
        401
    );
    let bearer = format!("Bearer {ADMIN}");
    let list = http(
        s.http_addr,
        "GET",
        "/admin/sessions",
        &[("Authorization", &bearer)],
    );
    assert_eq!(list.status, 200, "{list:?}");
    let sessions: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let mine = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["user"] == "victim")
        .expect("listed")
        .clone();
    assert_eq!(mine["transport"], "udp");
    assert_eq!(mine["channels"], 1);
    let id = mine["id"].as_u64().unwrap();
    let del = http(
        s.http_addr,
        "DELETE",
        &format!("/admin/sessions/{id}"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(del.status, 200, "{del:?}");
    // At once: the next ChannelData goes nowhere.
    c.send_channel(0x4001, b"after");
    assert!(peer.recv_from(&mut b).is_err(), "relaying stopped");
    let again = http(
        s.http_addr,
        "DELETE",
        &format!("/admin/sessions/{id}"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(again.status, 404);
    let text = http(s.http_addr, "GET", "/metrics", &[]).body;
    assert_eq!(
        metric(
            &text,
            "ternd_allocations_ended_total",
            &[("reason", "admin")]
        ),
        1.0
    );
    assert_eq!(metric(&text, "ternd_allocations_active", &[]), 0.0);
    s.stop();
}

/// An EdDSA (Ed25519) access token, verified with a PEM public key, gives credentials that
/// allocate on the relay.
#[test]
fn eddsa_token_to_allocation() {
    let dir = std::env::temp_dir().join(format!("ternd-eddsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, public) = (dir.join("ed.key"), dir.join("ed.pub"));
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            key.to_str().unwrap(),
        ],
        vec![
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let ok = Command::new("openssl")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "openssl {args:?}");
    }
    let s = Server::start_with((25500, 25999), vec![public.clone()]);
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
        aud: &'a str,
    }
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let pem = std::fs::read(&key).unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &Claims {
            sub: "erin",
            exp,
            aud: "ternd",
        },
        &jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap(),
    )
    .unwrap();
    let (username, credential, _) = ice_credentials_with(&s, &token);
    assert!(username.ends_with(":erin"));
    let mut c = Client::with_credentials(s.relay.udp_addrs()[0], &username, &credential);
    c.allocate();
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

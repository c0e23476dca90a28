//! A ternd cluster on a real `redis-server`: several ternd processes on loopback share one
//! Redis the test starts itself (both stopped by PID). Cluster-wide user quota, the
//! fleet-wide admin API (list, end, revoke), the load-aware credentials endpoint, redirects
//! past capacity, and Redis going away and coming back empty. Skipped loudly without
//! redis-server (required with `TERND_REQUIRE_INTEROP=1`, as in `.ci/run`).

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/coturn.rs"]
mod coturn;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/peers.rs"]
mod peers;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, http, metric};
use process::{Setup, Ternd};
use redis_server::RedisServer;
use ternd_client::stun::{Attribute, Message, Method, attr_type};

const ADMIN: &str = "cluster-admin-token-0123456789";
const TOKEN_KEY: &str = "cluster-token-key-0123456789abcdef";
/// The nodes' heartbeat: entries live three of these.
const BEAT: Duration = Duration::from_millis(300);

/// Node `n` of a cluster on `redis` (relay ports of its own), with more flags.
fn node(redis: &RedisServer, n: u16, extra: &[&str]) -> Ternd {
    let ports = format!("{}-{}", 20000 + n * 200, 20000 + n * 200 + 199);
    let id = format!("n{n}");
    let url = redis.url();
    let mut args: Vec<&str> = vec![
        "--cluster-redis-url",
        &url,
        "--cluster-node-id",
        &id,
        "--cluster-heartbeat",
        "300ms",
        "--admin-token",
        ADMIN,
        "--token-hs256-secret",
        TOKEN_KEY,
        "--http-rate-limit",
        "0",
    ];
    args.extend_from_slice(extra);
    let drain = args
        .iter()
        .position(|a| *a == "--drain-timeout")
        .map(|i| args[i + 1]);
    args.retain(|a| *a != "--drain-timeout" && Some(*a) != drain);
    Ternd::start(Setup {
        relay_ports: Box::leak(ports.into_boxed_str()),
        drain_timeout: drain,
        extra: Box::leak(args.into_boxed_slice()),
        ..Setup::default()
    })
}

fn admin(t: &Ternd, method: &str, path: &str) -> common::HttpResponse {
    let bearer = format!("Bearer {ADMIN}");
    http(t.http, method, path, &[("Authorization", &bearer)])
}

/// Polls `f` every 20 ms until it holds or `within` passes; returns whether it held and
/// when.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The registry as node `t` last read it: ids.
fn node_ids(t: &Ternd) -> Vec<String> {
    let r = admin(t, "GET", "/admin/nodes");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until every node lists all of `ids`.
fn converge(nodes: &[&Ternd], ids: &[&str]) {
    for t in nodes {
        let ok = eventually(BEAT * 10, || node_ids(t) == ids);
        assert!(ok.is_some(), "registry on {} is {:?}", t.addr, node_ids(t));
    }
}

fn code(r: Result<SocketAddr, ternd_client::Error>) -> Option<u16> {
    r.err().map(|e| e.code().unwrap_or(0))
}

#[test]
fn user_quota_counts_allocations_on_every_node() {
    if !redis_server::available("user_quota_counts_allocations_on_every_node") {
        return;
    }
    let redis = RedisServer::start();
    let nodes: Vec<Ternd> = (1..=3)
        .map(|n| node(&redis, n, &["--user-quota", "3"]))
        .collect();
    converge(&nodes.iter().collect::<Vec<_>>(), &["n1", "n2", "n3"]);
    // One allocation of alice on each node: the quota is full on the cluster.
    let mut held: Vec<Client> = nodes.iter().map(|t| Client::new(t.addr, "alice")).collect();
    for c in &mut held {
        c.allocate();
    }
    for t in &nodes {
        let mut c = Client::new(t.addr, "alice");
        assert_eq!(code(c.try_allocate()), Some(486), "a 4th on {}", t.addr);
    }
    // Another user is not touched.
    Client::new(nodes[0].addr, "bob").allocate();
    // Ending the one on n2 frees a slot everywhere: the next goes through on n3.
    assert_eq!(held[1].refresh_code(0), None);
    let freed = eventually(Duration::from_secs(2), || {
        Client::new(nodes[2].addr, "alice").try_allocate().is_ok()
    });
    assert!(freed.is_some(), "no slot after ending one");
    // And the cluster is full again.
    assert_eq!(
        code(Client::new(nodes[0].addr, "alice").try_allocate()),
        Some(486)
    );
    let refused: f64 = nodes
        .iter()
        .map(|t| {
            metric(
                &t.metrics(),
                "ternd_cluster_admissions_decided_total",
                &[("verdict", "refused")],
            )
        })
        .sum();
    assert!(refused >= 4.0, "refusals counted: {refused}");
    let fallback: f64 = nodes
        .iter()
        .map(|t| t.metric("ternd_cluster_quota_fallback_total"))
        .sum();
    assert_eq!(fallback, 0.0, "no fallback while Redis is up");
}

/// The sessions node `t` lists for the cluster (with a query).
fn sessions(t: &Ternd, query: &str) -> Vec<serde_json::Value> {
    let r = admin(t, "GET", &format!("/admin/sessions{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str::<serde_json::Value>(&r.body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn admin_on_any_node_lists_ends_and_revokes_across_the_cluster() {
    if !redis_server::available("admin_on_any_node_lists_ends_and_revokes_across_the_cluster") {
        return;
    }
    let redis = RedisServer::start();
    let nodes: Vec<Ternd> = (1..=3).map(|n| node(&redis, n, &[])).collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    converge(&[a, b, c], &["n1", "n2", "n3"]);
    let mut carol = Client::new(c.addr, "carol");
    carol.allocate();
    // Node A lists the session node C holds.
    let mut listed = Vec::new();
    let seen = eventually(BEAT * 10, || {
        listed = sessions(a, "?user=carol");
        listed.len() == 1
    });
    assert!(seen.is_some(), "{listed:?}");
    assert_eq!(listed[0]["node"], "n3");
    assert_eq!(listed[0]["user"], "carol");
    assert_eq!(listed[0]["transport"], "udp");
    let id = listed[0]["id"].as_u64().unwrap();
    assert_eq!(sessions(a, "?node=n3").len(), 1);
    assert!(sessions(a, "?node=n2").is_empty());
    // A ends it; C's client finds its allocation gone.
    let r = admin(a, "DELETE", &format!("/admin/sessions/{id}?node=n3"));
    assert_eq!(r.status, 202, "{}", r.body);
    let gone = eventually(Duration::from_secs(1), || {
        carol.refresh_code(600) == Some(437)
    });
    assert!(gone.is_some(), "carol's allocation still refreshes");
    assert_eq!(c.wait_allocations(0.0, Duration::from_secs(1)), 0.0);

    // Dave holds allocations on A and B; revoking him on C ends both within a second.
    let mut on_a = Client::new(a.addr, "dave");
    on_a.allocate();
    let mut on_b = Client::new(b.addr, "dave");
    on_b.allocate();
    let user = on_a.username().to_owned();
    let started = Instant::now();
    let r = admin(c, "POST", "/admin/users/dave/revoke");
    assert_eq!(r.status, 200, "{}", r.body);
    let ended = eventually(Duration::from_secs(1), || {
        a.metric("ternd_allocations_active") == 0.0 && b.metric("ternd_allocations_active") == 0.0
    });
    assert!(ended.is_some(), "dave's allocations still live after 1 s");
    eprintln!(
        "revocation: both allocations ended {:?} after the call",
        started.elapsed()
    );
    assert_eq!(on_a.refresh_code(600), Some(437));
    assert_eq!(on_b.refresh_code(600), Some(437));
    // The old credentials get 403 on every node.
    let password = ternd::auth::rest::password(common::SECRET, &user);
    for t in [a, b, c] {
        let mut again = Client::with_credentials(t.addr, &user, &password);
        assert_eq!(
            code(again.try_allocate()),
            Some(403),
            "old credentials on {}",
            t.addr
        );
    }
    // Credentials issued a second later, with the full lifetime, work.
    std::thread::sleep(Duration::from_millis(1100));
    Client::new(a.addr, "dave").allocate();
    // The revocation is in Redis for the others to read.
    assert!(
        redis
            .cli(&["ZRANGE", "ternd:{revoked}", "0", "-1"])
            .contains("dave")
    );
}

/// The ports of the `turn:` URLs `/v1/ice-servers` on `t` returns (with a query).
fn ice_ports(t: &Ternd, query: &str) -> Vec<u16> {
    ice_ports_with(t, query, &[])
}

/// [`ice_ports`] with more request headers.
fn ice_ports_with(t: &Ternd, query: &str, headers: &[(&str, &str)]) -> Vec<u16> {
    let bearer = format!("Bearer {}", common::hs256_token("erin", TOKEN_KEY));
    let mut all = vec![("Authorization", bearer.as_str())];
    all.extend_from_slice(headers);
    let r = http(t.http, "GET", &format!("/v1/ice-servers{query}"), &all);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let mut ports: Vec<u16> = v["iceServers"][1]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str()?.strip_prefix("turn:")?.split_once('?'))
        .filter_map(|(hp, _)| hp.rsplit_once(':')?.1.parse().ok())
        .collect();
    ports.dedup();
    ports
}

#[test]
fn credentials_endpoint_names_the_least_loaded_nodes_and_never_a_draining_one() {
    if !redis_server::available("credentials_endpoint_names_the_least_loaded_nodes") {
        return;
    }
    let redis = RedisServer::start();
    let n1 = node(&redis, 1, &["--cluster-region-header", "X-Region"]);
    let n2 = node(
        &redis,
        2,
        &["--drain-timeout", "30s", "--cluster-region", "eu"],
    );
    let n3 = node(&redis, 3, &[]);
    converge(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    let port = |t: &Ternd| t.addr.port();
    // All idle: the first two by id, the same answer from every node.
    for t in [&n1, &n2, &n3] {
        assert_eq!(ice_ports(t, ""), [port(&n1), port(&n2)]);
    }
    // The caller's region first: named in the query, or in n1's configured header.
    assert_eq!(ice_ports(&n1, "?region=eu")[0], port(&n2));
    assert_eq!(ice_ports_with(&n1, "", &[("X-Region", "eu")])[0], port(&n2));
    assert_eq!(
        ice_ports_with(&n3, "", &[("X-Region", "eu")])[0],
        port(&n1),
        "n3 reads no header"
    );
    // n1 loaded: it drops out of the two.
    let mut load: Vec<Client> = (0..3).map(|_| Client::new(n1.addr, "loader")).collect();
    for c in &mut load {
        c.allocate();
    }
    let moved = eventually(BEAT * 10, || ice_ports(&n3, "") == [port(&n2), port(&n3)]);
    assert!(moved.is_some(), "{:?}", ice_ports(&n3, ""));
    // n2 drains (it holds an allocation, so it stays up): never named again.
    Client::new(n2.addr, "held").allocate();
    let r = admin(&n1, "POST", "/admin/nodes/n2/drain");
    assert_eq!(r.status, 202, "{}", r.body);
    let drained = eventually(BEAT * 10, || !ice_ports(&n1, "").contains(&port(&n2)));
    assert!(drained.is_some());
    assert_eq!(http(n2.http, "GET", "/readyz", &[]).status, 503);
    for _ in 0..5 {
        for t in [&n1, &n3] {
            assert!(!ice_ports(t, "?region=eu").contains(&port(&n2)));
        }
    }
    assert_eq!(ice_ports(&n1, ""), [port(&n3), port(&n1)]);

    // An API-only node: no STUN/TURN listener, in the registry as no relay, and its
    // credentials endpoint names the relays.
    let url = redis.url();
    let api = Ternd::start(Setup {
        relay_ports: "20800-20899",
        http_only: true,
        extra: &[
            "--cluster-redis-url",
            &url,
            "--cluster-node-id",
            "api",
            "--cluster-api-only",
            "true",
            "--cluster-heartbeat",
            "300ms",
            "--admin-token",
            ADMIN,
            "--token-hs256-secret",
            TOKEN_KEY,
            "--http-rate-limit",
            "0",
        ],
        ..Setup::default()
    });
    converge(&[&api, &n1], &["api", "n1", "n2", "n3"]);
    assert_eq!(ice_ports(&api, ""), [port(&n3), port(&n1)]);
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let binding = [
        0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
    ];
    probe.send_to(&binding, api.addr).unwrap();
    assert!(
        probe.recv_from(&mut [0u8; 64]).is_err(),
        "an API-only node answers no STUN"
    );
    let r = admin(&n1, "GET", "/admin/nodes");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let entry = v
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "api")
        .unwrap();
    assert_eq!(entry["relay"], false);
    assert!(entry["listeners"].as_array().unwrap().is_empty());
}

/// The ALTERNATE-SERVER of a 300 answer to an Allocate on `server`.
fn try_alternate(server: SocketAddr, user: &str) -> (Option<u16>, Option<SocketAddr>) {
    let mut c = Client::new(server, user);
    let first = c.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    c.learn(&Message::parse(&first).unwrap());
    let resp = c.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    let alt = match m.get_decoded(attr_type::ALTERNATE_SERVER) {
        Some(Ok(Attribute::AlternateServer(a))) => Some(a),
        _ => None,
    };
    (common::error_code(&m), alt)
}

#[test]
fn a_full_node_redirects_to_the_least_loaded_one_and_clients_follow() {
    if !redis_server::available("a_full_node_redirects_to_the_least_loaded_one") {
        return;
    }
    let redis = RedisServer::start();
    let full = node(&redis, 1, &["--cluster-capacity", "1"]);
    let busy = node(&redis, 2, &[]);
    let idle = node(&redis, 3, &[]);
    converge(&[&full, &busy, &idle], &["n1", "n2", "n3"]);
    Client::new(full.addr, "first").allocate();
    let mut on_busy = Client::new(busy.addr, "b");
    on_busy.allocate();
    // Past its capacity: 300 naming the least-loaded node with a UDP listener.
    let mut answer = (None, None);
    let redirected = eventually(BEAT * 10, || {
        answer = try_alternate(full.addr, "second");
        answer == (Some(300), Some(idle.addr))
    });
    assert!(redirected.is_some(), "{answer:?}");
    // A client that follows it keeps the nonce the full node gave it, as libwebrtc does
    // (it takes REALM and NONCE from the 300, and an Allocate answered 438 is not retried):
    // the nodes share their nonce key, so the alternate accepts it.
    let mut keeper = Client::new(full.addr, "keeper");
    let first = keeper.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    keeper.learn(&Message::parse(&first).unwrap());
    assert_eq!(code(keeper.try_allocate()), Some(300));
    keeper.redirect(idle.addr);
    let resp = keeper.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        common::error_code(&m),
        None,
        "the alternate takes the redirecting node's nonce (no 438)"
    );
    // ternd-client follows it and relays through the alternate with 0 loss.
    let echo = peers::UdpEcho::start();
    let url = format!("turn:{}?transport=udp", full.addr);
    let creds = common::rest_credentials(common::SECRET, "follower");
    peers::run_bounded(Duration::from_secs(20), async move {
        // Loopback alternates are refused by default (a server must not send a client
        // into the client's own network); these are the test's own.
        let options = ternd_client::ClientOptions::default().allow_private_alternates(true);
        let client = ternd_client::Client::connect_with(&url, creds, options)
            .await
            .unwrap();
        let relay = client.allocate().await.unwrap();
        let port = relay.relayed_addr().port();
        assert!(
            (20600..20800).contains(&port),
            "relayed on n3's range: {port}"
        );
        let mut buf = [0u8; 64];
        for i in 0..100u32 {
            relay.send_to(&i.to_be_bytes(), echo.addr).await.unwrap();
            let (n, from) = tokio::time::timeout(Duration::from_secs(2), relay.recv_from(&mut buf))
                .await
                .expect("echo within 2 s")
                .unwrap();
            assert_eq!((from, &buf[..n]), (echo.addr, &i.to_be_bytes()[..]));
        }
    });
    assert!(full.metric("ternd_redirects_total") >= 2.0);
}

#[test]
fn relaying_survives_redis_and_the_cluster_heals_when_it_returns_empty() {
    if !redis_server::available("relaying_survives_redis") {
        return;
    }
    let mut redis = RedisServer::start();
    let open = node(
        &redis,
        1,
        &["--user-quota", "5", "--cluster-timeout", "200ms"],
    );
    let closed = node(
        &redis,
        2,
        &[
            "--user-quota",
            "5",
            "--cluster-timeout",
            "200ms",
            "--cluster-on-unavailable",
            "closed",
        ],
    );
    converge(&[&open, &closed], &["n1", "n2"]);
    let echo = peers::UdpEcho::start();
    let mut c = Client::new(open.addr, "frank");
    c.allocate();
    c.permit(echo.addr);
    c.bind_channel(0x4000, echo.addr);
    let mut lost = 0;
    let mut exchange = |c: &Client, i: u32| {
        c.send_channel(0x4000, &i.to_be_bytes());
        match c.channel_data(Duration::from_secs(1)) {
            Some((0x4000, d)) if d == i.to_be_bytes() => {}
            _ => lost += 1,
        }
    };
    for i in 0..100 {
        exchange(&c, i);
    }
    redis.stop();
    for i in 100..300 {
        exchange(&c, i);
    }
    // While Redis is gone: the open node counts alone, the closed one refuses.
    let counted = eventually(Duration::from_secs(3), || {
        Client::new(open.addr, "frank").try_allocate().is_ok()
    });
    assert!(counted.is_some());
    assert!(open.metric("ternd_cluster_quota_fallback_total") >= 1.0);
    assert_eq!(open.metric("ternd_cluster_redis_up"), 0.0);
    assert_eq!(
        code(Client::new(closed.addr, "frank").try_allocate()),
        Some(486)
    );
    for i in 300..400 {
        exchange(&c, i);
    }
    // Redis back, empty: within two heartbeats everything is there again.
    redis.restart_empty();
    let back = eventually(BEAT * 2 + Duration::from_millis(400), || {
        let keys = redis.cli(&["KEYS", "*"]);
        keys.contains("ternd:{nodes}:node:n1")
            && keys.contains("ternd:{nodes}:node:n2")
            && keys.contains("ternd:sessions:{n1}")
            && keys.contains("ternd:quota:{frank}")
    });
    assert!(back.is_some(), "{}", redis.cli(&["KEYS", "*"]));
    eprintln!("republished {:?} after Redis came back", back.unwrap());
    for i in 400..500 {
        exchange(&c, i);
    }
    assert_eq!(lost, 0, "datagrams lost across the outage");
    assert_eq!(
        redis.cli(&["ZCARD", "ternd:quota:{frank}"]).trim(),
        "2",
        "both of frank's allocations count again"
    );
    // A node killed without leaving: its entry, sessions and quota entries are gone from
    // the cluster within their TTL (3 heartbeats; the quota lease adds the timeout).
    Client::new(closed.addr, "grace").allocate();
    let counted = eventually(BEAT * 3, || {
        redis.cli(&["EXISTS", "ternd:quota:{grace}"]).trim() == "1"
            && redis.cli(&["EXISTS", "ternd:sessions:{n2}"]).trim() == "1"
    });
    assert!(counted.is_some());
    drop(closed);
    let killed = Instant::now();
    // The quota lease is 3 heartbeats + the 200 ms timeout; 1 s more for a loaded machine.
    let gone = eventually(BEAT * 3 + Duration::from_millis(1200), || {
        node_ids(&open) == ["n1"]
            && redis.cli(&["EXISTS", "ternd:sessions:{n2}"]).trim() == "0"
            && redis.cli(&["EXISTS", "ternd:quota:{grace}"]).trim() == "0"
    });
    assert!(gone.is_some(), "{:?}", node_ids(&open));
    eprintln!(
        "SIGKILLed node gone from the cluster after {:?}",
        killed.elapsed()
    );
}

/// `turnutils_uclient` against `server` (REST user `user`, one client, `messages` of 120
/// bytes) to a `turnutils_peer`; the run and the peer's exit status.
fn uclient_run(server: SocketAddr, user: &str, messages: u32) -> coturn::Run {
    let peer = coturn::Peer::start(&[std::net::IpAddr::from([127, 0, 0, 1])]);
    let port = peer.port.to_string();
    coturn::uclient(
        server,
        (1, messages, 120),
        &[
            "-W",
            common::SECRET,
            "-u",
            user,
            "-e",
            "127.0.0.1",
            "-r",
            &port,
        ],
    )
}

fn lossless(run: &coturn::Run, messages: u64) {
    assert!(
        run.success && run.text.contains("Total lost packets 0 "),
        "uclient:\n{}",
        run.tail()
    );
    // uclient counts the RTP and RTCP allocations of a client: twice the messages.
    assert!(
        run.sent >= messages && run.received == run.sent,
        "sent {}, received {}:\n{}",
        run.sent,
        run.received,
        run.tail()
    );
}

#[test]
fn coturn_uclient_follows_a_full_nodes_redirect_and_relays_with_no_loss() {
    if !redis_server::available("coturn_uclient_follows_a_full_nodes_redirect")
        || !coturn::tools_available("coturn_uclient_follows_a_full_nodes_redirect")
    {
        return;
    }
    let redis = RedisServer::start();
    // coturn 4.6.1's uclient picks channel numbers above 0x4FFF (RFC 5766's range).
    let legacy = ["--rfc5766-channel-numbers", "true"];
    let full = node(
        &redis,
        1,
        &["--cluster-capacity", "1", legacy[0], legacy[1]],
    );
    let other = node(&redis, 2, &legacy);
    converge(&[&full, &other], &["n1", "n2"]);
    Client::new(full.addr, "first").allocate();
    let ok = eventually(BEAT * 10, || {
        try_alternate(full.addr, "probe").0 == Some(300)
    });
    assert!(ok.is_some());
    let run = uclient_run(full.addr, "uclient", 100);
    lossless(&run, 100);
    assert!(full.metric("ternd_redirects_total") >= 2.0);
    assert!(
        other.metric("ternd_allocations_created_total") >= 1.0,
        "the alternate served the allocation"
    );
    assert!(other.metric("ternd_relayed_packets_total") >= 200.0);
}

#[test]
fn sigterm_during_a_uclient_run_drains_it_with_no_loss_and_redirects_new_allocations() {
    if !redis_server::available("sigterm_during_a_uclient_run_drains_it")
        || !coturn::tools_available("sigterm_during_a_uclient_run_drains_it")
    {
        return;
    }
    let redis = RedisServer::start();
    let legacy = ["--rfc5766-channel-numbers", "true"];
    // uclient does not delete its allocations when it ends: the node exits at the
    // drain timeout, which the run (a few seconds: its setup and 60 messages at 20 ms) ends well before.
    let mut draining = node(&redis, 1, &["--drain-timeout", "12s", legacy[0], legacy[1]]);
    let other = node(&redis, 2, &legacy);
    converge(&[&draining, &other], &["n1", "n2"]);
    let addr = draining.addr;
    let run = std::thread::spawn(move || uclient_run(addr, "caller", 60));
    // Once the run's allocation is up, SIGTERM.
    let up = eventually(Duration::from_secs(10), || {
        draining.metric("ternd_relayed_packets_total") >= 20.0
    });
    assert!(up.is_some(), "uclient did not start relaying");
    draining.terminate();
    let signalled = Instant::now();
    let not_ready = eventually(Duration::from_secs(1), || {
        http(draining.http, "GET", "/readyz", &[]).status == 503
    });
    assert!(
        not_ready.is_some(),
        "/readyz still 200 a second after SIGTERM"
    );
    // The registry says so, and a new Allocate goes to the other node.
    let marked = eventually(BEAT * 10, || {
        let r = admin(&other, "GET", "/admin/nodes");
        r.body.contains("\"draining\":true")
    });
    assert!(marked.is_some());
    assert_eq!(try_alternate(addr, "late"), (Some(300), Some(other.addr)));
    let run = run.join().unwrap();
    eprintln!("uclient ran {:?}; SIGTERM came mid-run", run.elapsed);
    lossless(&run, 60);
    assert!(
        draining.wait_exit(Duration::ZERO).is_none(),
        "still up while its allocations live"
    );
    // It exits 0 at the drain timeout (its allocations outlive uclient).
    let st = draining
        .wait_exit(Duration::from_secs(14))
        .expect("exited by the drain timeout");
    assert!(st.success(), "{st:?}");
    let took = signalled.elapsed();
    assert!(
        (Duration::from_secs(11)..Duration::from_secs(15)).contains(&took),
        "exited {took:?} after SIGTERM"
    );
    // And it left the cluster.
    let left = eventually(BEAT * 10, || node_ids(&other) == ["n2"]);
    assert!(left.is_some(), "{:?}", node_ids(&other));
}

/// Chromium's TURN client refuses a redirect to a loopback address (libwebrtc's
/// `TurnPort::SetAlternateServer`, chromium bug 649118), so this runs in network
/// namespaces of its own: Redis and two nodes on 10.99.0.1 and 10.99.0.2 on one side,
/// Chromium on a host of one address, 10.99.0.3, on the other. libwebrtc keeps the
/// redirecting node's REALM and NONCE and never retries an Allocate answered 438, so the
/// alternate must take that nonce: the nodes share their nonce key.
#[test]
fn chromium_follows_a_full_nodes_redirect_for_a_relay_only_data_channel() {
    let name = "chromium_follows_a_full_nodes_redirect";
    if !redis_server::available(name) || !browser::available(name) || !netns::available(name) {
        return;
    }
    let mut ns = netns::Netns::new("chromium");
    let dir = std::env::temp_dir().join(format!("ternd-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    ns.spawn(
        "redis-server",
        &[
            "--port",
            "6390",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        &dir.join("redis.log"),
    );
    let ns_name = ns.name.clone();
    let redis_cli = move |args: &[&str]| -> String {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &ns_name, "redis-cli", "-p", "6390"])
            .args(args)
            .output()
            .expect("redis-cli in the namespace");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ready = eventually(Duration::from_secs(10), || {
        redis_cli(&["PING"]).contains("PONG")
    });
    assert!(ready.is_some(), "redis-server in the namespace");
    let ternd = env!("CARGO_BIN_EXE_ternd");
    for (n, ip, extra) in [(1, netns::A, "1"), (2, netns::B, "0")] {
        let (listen, http, ports, id) = (
            format!("{ip}:3478"),
            format!("{ip}:9641"),
            format!("4{n}000-4{n}199"),
            format!("n{n}"),
        );
        let args = [
            "--listen",
            &listen,
            "--http-listen",
            &http,
            "--secret",
            common::SECRET,
            "--relay-ip",
            ip,
            "--relay-ports",
            &ports,
            "--allow-peer",
            "10.99.0.0/24",
            "--workers",
            "1",
            "--drain-timeout",
            "0s",
            "--log-level",
            "warn",
            "--cluster-redis-url",
            "redis://127.0.0.1:6390",
            "--cluster-node-id",
            &id,
            "--cluster-heartbeat",
            "300ms",
            "--cluster-capacity",
            extra,
        ];
        ns.spawn(ternd, &args, &dir.join(format!("n{n}.log")));
    }
    let up = eventually(Duration::from_secs(10), || {
        let ids = redis_cli(&["SMEMBERS", "ternd:{nodes}:ids"]);
        ids.contains("n1") && ids.contains("n2")
    });
    assert!(up.is_some(), "both nodes in the registry");
    // n1 (capacity 1) is full once a bench allocation lives there (for at most 60 s).
    let bind = netns::A;
    let server = format!("{}:3478", netns::A);
    let peer = format!("{}:9", netns::A);
    ns.spawn(
        ternd,
        &[
            "bench",
            "--server",
            &server,
            "--secret",
            common::SECRET,
            "--allocations",
            "1",
            "--rate",
            "10",
            "--duration",
            "60s",
            "--bind",
            bind,
            "--peer",
            &peer,
            "--quiet",
        ],
        &dir.join("bench.log"),
    );
    let full = eventually(Duration::from_secs(10), || {
        redis_cli(&["HLEN", "ternd:sessions:{n1}"]).trim() == "1"
    });
    assert!(full.is_some(), "n1 holds the bench allocation");
    let creds = common::rest_credentials(common::SECRET, "browser");
    let arg = serde_json::json!({
        "urls": [format!("turn:{}:3478?transport=udp", netns::A)],
        "username": creds.username,
        "credential": creds.password,
        "messages": 50,
    });
    let (result, log) = browser::run_in(
        Some(ns.of(netns::Side::Client)),
        "relay_datachannel.mjs",
        &arg,
    );
    eprintln!("chromium: {result}");

    assert_eq!(result["ok"], true, "{result}\n{log}");
    assert_eq!(result["echoed"], 50);
    // Both relayed candidates are the alternate's (n2 on 10.99.0.2), none the full node's.
    for side in ["local", "remote"] {
        let c = result[side].as_str().unwrap_or("");
        assert!(
            c.starts_with(&format!("relay {}:4", netns::B)),
            "{side}: {result}"
        );
    }
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}

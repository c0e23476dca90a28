//! The cluster's Redis store (`ternd::cluster::store`) against a real `redis-server` the
//! test starts: the registry and its pruning, the quota script, sessions, revocations,
//! the command channel, and what calls do while Redis is gone. Skipped loudly without
//! redis-server (required with `TERND_REQUIRE_INTEROP=1`).

#[path = "common/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::RedisServer;
use ternd::cluster::store::{Store, StoreConfig};
use ternd::cluster::types::{ClusterCommand, Listener, Load, NodeInfo, SessionRecord};

const TIMEOUT: Duration = Duration::from_millis(300);

fn config(url: &str, node: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_owned(),
        prefix: "t".to_owned(),
        node_id: node.to_owned(),
        timeout: TIMEOUT,
    }
}

async fn store(redis: &RedisServer, node: &str) -> Store {
    Store::connect(config(&redis.url(), node))
        .await
        .expect("connect")
}

fn entry(id: &str, allocations: u64) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        region: Some("eu".into()),
        zone: None,
        listeners: vec![Listener {
            transport: "udp".into(),
            addr: "127.0.0.1:3478".parse().unwrap(),
        }],
        relay_addrs: vec![],
        ice_hosts: vec![],
        http: None,
        capacity: 10,
        load: Load {
            allocations,
            ..Load::default()
        },
        draining: false,
        relay: true,
        started_ms: 1,
        updated_ms: 2,
    }
}

fn session(node: &str, id: u64, user: &str) -> SessionRecord {
    SessionRecord {
        node: node.into(),
        id,
        user: user.into(),
        username: format!("9999999999:{user}"),
        client: "127.0.0.1:5000".parse().unwrap(),
        relay: "127.0.0.1:40000".parse().unwrap(),
        additional_relay: None,
        transport: "udp".into(),
        relay_transport: "udp".into(),
        created_unix: 1,
        expires_unix: 2,
        packets_out: 3,
        bytes_out: 4,
        packets_in: 5,
        bytes_in: 6,
        updated_ms: 7,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

macro_rules! need_redis {
    ($name:literal) => {
        if !redis_server::available($name) {
            return;
        }
    };
}

#[tokio::test]
async fn registry_lists_live_nodes_and_prunes_only_expired_ones() {
    need_redis!("registry_lists_live_nodes_and_prunes_only_expired_ones");
    let redis = RedisServer::start();
    let (a, b) = (store(&redis, "a").await, store(&redis, "b").await);
    a.heartbeat(&entry("a", 1), Duration::from_secs(30))
        .await
        .unwrap();
    b.heartbeat(&entry("b", 2), Duration::from_millis(300))
        .await
        .unwrap();
    let mut ids: Vec<String> = a.nodes().await.unwrap().into_iter().map(|n| n.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(
        a.nodes()
            .await
            .unwrap()
            .iter()
            .find(|n| n.id == "b")
            .unwrap()
            .load
            .allocations,
        2
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ids: Vec<String> = a.nodes().await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(ids, ["a"], "b's entry expired");
    assert_eq!(
        redis.cli(&["SMEMBERS", "t:{nodes}:ids"]).trim(),
        "a",
        "b's id pruned"
    );
    // An unreadable entry is skipped, not fatal.
    redis.cli(&["SET", "t:{nodes}:node:junk", "{not json"]);
    redis.cli(&["SADD", "t:{nodes}:ids", "junk"]);
    assert_eq!(a.nodes().await.unwrap().len(), 1);
    // Leaving removes this node's entry and sessions only.
    b.heartbeat(&entry("b", 0), Duration::from_secs(30))
        .await
        .unwrap();
    b.put_sessions(&[session("b", 1, "u")], Duration::from_secs(30))
        .await
        .unwrap();
    b.leave().await.unwrap();
    let ids: Vec<String> = a.nodes().await.unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(ids, ["a"]);
    assert!(a.sessions(&["b".into()]).await.unwrap().is_empty());
}

#[tokio::test]
async fn quota_counts_across_nodes_and_lapses_by_lease() {
    need_redis!("quota_counts_across_nodes_and_lapses_by_lease");
    let mut redis = RedisServer::start();
    let (a, b) = (store(&redis, "a").await, store(&redis, "b").await);
    let lease = Duration::from_secs(30);
    let now = now_ms();
    assert!(a.quota_take("u", 1, 3, lease, now).await.unwrap());
    assert!(
        b.quota_take("u", 1, 3, lease, now).await.unwrap(),
        "same id, other node"
    );
    assert!(a.quota_take("u", 2, 3, lease, now).await.unwrap());
    assert!(
        !b.quota_take("u", 2, 3, lease, now).await.unwrap(),
        "4th refused"
    );
    assert!(
        a.quota_take("u", 2, 3, lease, now).await.unwrap(),
        "a renewal fits"
    );
    assert_eq!(a.quota_count("u", now).await.unwrap(), 3);
    assert!(a.quota_take("other", 9, 3, lease, now).await.unwrap());
    a.quota_release("u", 2).await.unwrap();
    assert!(
        b.quota_take("u", 2, 3, lease, now).await.unwrap(),
        "a slot freed"
    );
    // Limit 0: no limit.
    for id in 10..20 {
        assert!(a.quota_take("free", id, 0, lease, now).await.unwrap());
    }
    // Entries past their lease stop counting.
    let short = Duration::from_millis(200);
    assert!(a.quota_take("brief", 1, 1, short, now).await.unwrap());
    assert!(!a.quota_take("brief", 2, 1, short, now).await.unwrap());
    assert!(a.quota_take("brief", 2, 1, short, now + 300).await.unwrap());
    // After Redis lost everything, renewal puts the entries back.
    redis.restart_empty();
    let back = Instant::now() + Duration::from_secs(5);
    while a.ping().await.is_err() && Instant::now() < back {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.quota_count("u", now).await.unwrap(), 0);
    a.quota_renew(&[("u".into(), 1), ("u".into(), 2)], lease, now)
        .await
        .unwrap();
    a.quota_renew(&[], lease, now).await.unwrap();
    assert_eq!(a.quota_count("u", now).await.unwrap(), 2);
    assert!(
        redis
            .cli(&["PTTL", "t:quota:{u}"])
            .trim()
            .parse::<i64>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn the_first_node_sets_the_shared_nonce_key_and_the_others_take_it() {
    need_redis!("the_first_node_sets_the_shared_nonce_key");
    let redis = RedisServer::start();
    let (a, b) = (store(&redis, "a").await, store(&redis, "b").await);
    assert_eq!(a.shared_nonce_key([1; 32]).await.unwrap(), [1; 32]);
    assert_eq!(b.shared_nonce_key([2; 32]).await.unwrap(), [1; 32]);
    assert_eq!(a.shared_nonce_key([1; 32]).await.unwrap(), [1; 32]);
    // A value that is not a key (written by something else) is not taken.
    redis.cli(&["SET", "t:{nodes}:nonce_key", "short"]);
    assert_eq!(b.shared_nonce_key([2; 32]).await.unwrap(), [2; 32]);
}

#[tokio::test]
async fn sessions_are_replaced_whole_and_expire() {
    need_redis!("sessions_are_replaced_whole_and_expire");
    let redis = RedisServer::start();
    let (a, b) = (store(&redis, "a").await, store(&redis, "b").await);
    let ttl = Duration::from_secs(30);
    a.put_sessions(&[session("a", 1, "u"), session("a", 2, "v")], ttl)
        .await
        .unwrap();
    b.put_sessions(&[session("b", 7, "u")], Duration::from_millis(300))
        .await
        .unwrap();
    let nodes = ["a".to_string(), "b".to_string()];
    let mut all = a.sessions(&nodes).await.unwrap();
    all.sort_by_key(|s| (s.node.clone(), s.id));
    assert_eq!(
        all,
        [
            session("a", 1, "u"),
            session("a", 2, "v"),
            session("b", 7, "u")
        ]
    );
    // A second put without session 2 removes it; remove_session removes one.
    a.put_sessions(&[session("a", 1, "u"), session("a", 3, "w")], ttl)
        .await
        .unwrap();
    a.remove_session(1).await.unwrap();
    let ids: Vec<u64> = a
        .sessions(&nodes[..1])
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [3]);
    a.put_sessions(&[], ttl).await.unwrap();
    assert!(a.sessions(&nodes[..1]).await.unwrap().is_empty());
    // b's hash lapses with its TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(a.sessions(&nodes).await.unwrap().is_empty());
    assert!(a.sessions(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn revocations_stand_for_their_horizon_and_are_announced() {
    need_redis!("revocations_stand_for_their_horizon_and_are_announced");
    let redis = RedisServer::start();
    let a = store(&redis, "a").await;
    let mut commands = a.subscribe().await.unwrap();
    let horizon = Duration::from_secs(3600);
    let now = now_ms();
    a.revoke("mallory", now, horizon).await.unwrap();
    a.revoke("mallory", now - 5000, horizon).await.unwrap(); // an older one does not win
    let got = tokio::time::timeout(Duration::from_secs(2), commands.next())
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(ClusterCommand::Revoke {
            user: "mallory".into(),
            at_ms: now
        })
    );
    assert_eq!(
        a.revocations(now, horizon).await.unwrap(),
        [("mallory".to_string(), now)]
    );
    // Past the horizon: no longer listed.
    assert!(
        a.revocations(now + 3_600_001, horizon)
            .await
            .unwrap()
            .is_empty()
    );
    // Restoring puts it back silently (the next message is the one published after).
    a.restore_revocations(&[("trudy".into(), now)], horizon)
        .await
        .unwrap();
    a.publish(&ClusterCommand::Drain { node: "x".into() })
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), commands.next())
        .await
        .unwrap();
    assert_eq!(got, Some(ClusterCommand::Drain { node: "x".into() }));
    assert_eq!(a.revocations(now, horizon).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_command_channel_carries_every_command_and_skips_junk() {
    need_redis!("the_command_channel_carries_every_command_and_skips_junk");
    let redis = RedisServer::start();
    let (a, b) = (store(&redis, "a").await, store(&redis, "b").await);
    let mut commands = b.subscribe().await.unwrap();
    redis.cli(&["PUBLISH", "t:commands", "{\"op\":\"explode\"}"]);
    redis.cli(&["PUBLISH", "t:commands", "not json at all"]);
    let sent = [
        ClusterCommand::EndSession {
            node: "b".into(),
            id: 42,
        },
        ClusterCommand::Revoke {
            user: "u".into(),
            at_ms: 5,
        },
        ClusterCommand::Drain { node: "b".into() },
    ];
    for c in &sent {
        a.publish(c).await.unwrap();
    }
    for c in &sent {
        let got = tokio::time::timeout(Duration::from_secs(2), commands.next())
            .await
            .unwrap();
        assert_eq!(got.as_ref(), Some(c));
    }
    // The connection lost: the stream ends, so the caller subscribes again.
    drop(redis);
    let end = tokio::time::timeout(Duration::from_secs(5), commands.next())
        .await
        .unwrap();
    assert_eq!(end, None);
}

#[tokio::test]
async fn calls_fail_within_the_timeout_while_redis_is_gone_and_work_again_after() {
    need_redis!("calls_fail_within_the_timeout_while_redis_is_gone");
    // Nothing listening: connect fails fast.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let r = Store::connect(config(&format!("redis://127.0.0.1:{port}"), "a")).await;
    assert!(r.is_err());
    assert!(
        t.elapsed() < TIMEOUT + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    let mut redis = RedisServer::start();
    let a = store(&redis, "a").await;
    redis.stop();
    for _ in 0..3 {
        let t = Instant::now();
        assert!(
            a.quota_take("u", 1, 1, Duration::from_secs(5), now_ms())
                .await
                .is_err()
        );
        assert!(
            t.elapsed() < TIMEOUT + Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    redis.restart_empty();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ok = false;
    while Instant::now() < deadline {
        if a.heartbeat(&entry("a", 0), Duration::from_secs(5))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the connection came back");
    assert_eq!(a.nodes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_password_protected_redis_needs_the_password() {
    need_redis!("a_password_protected_redis_needs_the_password");
    let redis = RedisServer::start_with(Some("s3cret-pw"));
    let a = Store::connect(config(&redis.url(), "a"))
        .await
        .expect("with the password");
    a.ping().await.unwrap();
    let wrong = format!("redis://:wrong@127.0.0.1:{}/0", redis.port);
    assert!(Store::connect(config(&wrong, "a")).await.is_err());
    let none = format!("redis://127.0.0.1:{}/0", redis.port);
    let no_auth = Store::connect(config(&none, "a")).await;
    assert!(no_auth.is_err() || no_auth.unwrap().ping().await.is_err());
}

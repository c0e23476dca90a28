//! The `[cluster]` section: values, flags, errors, the revocation check, redaction.

use super::*;

#[test]
fn cluster_section_from_file_and_flags() {
    let c = parse(
        "[cluster]\nredis_url = \"rediss://ternd:pw@redis.example:6380/2\"\nnode_id = \"relay-1.eu\"\n\
         region = \"eu-west\"\nzone = \"eu-west-1a\"\nkey_prefix = \"fleet\"\nheartbeat = \"1s\"\n\
         timeout = \"200ms\"\non_unavailable = \"closed\"\ncapacity = 5000\nice_nodes = 3\n\
         region_header = \"X-Region\"\nregion_prefixes = [\"10.1.0.0/16=eu-west\", \"10.2.3.4/8=us\"]\n\
         revocation_ttl = \"24h\"",
    )
    .expect("file");
    let k = &c.cluster;
    assert_eq!(
        k.redis_url.as_deref(),
        Some("rediss://ternd:pw@redis.example:6380/2")
    );
    assert_eq!(k.node_id.as_deref(), Some("relay-1.eu"));
    assert_eq!(k.region.as_deref(), Some("eu-west"));
    assert_eq!(k.zone.as_deref(), Some("eu-west-1a"));
    assert_eq!(k.key_prefix, "fleet");
    assert_eq!(k.heartbeat, Duration::from_secs(1));
    assert_eq!(k.timeout, Duration::from_millis(200));
    assert_eq!(k.on_unavailable, OnUnavailable::Closed);
    assert_eq!(k.capacity, 5000);
    assert_eq!(k.ice_nodes, 3);
    assert_eq!(k.region_header.as_deref(), Some("x-region"));
    assert_eq!(
        k.region_prefixes,
        vec![
            ("10.1.0.0/16".parse().unwrap(), "eu-west".to_string()),
            ("10.0.0.0/8".parse().unwrap(), "us".to_string()),
        ]
    );
    assert_eq!(k.revocation_ttl, Duration::from_secs(86_400));
    // The password is not in the Debug output.
    assert!(!format!("{c:?}").contains("pw@"), "{c:?}");

    let c = Config::default()
        .apply_cli(&cli(&[
            "--cluster-redis-url",
            "redis://127.0.0.1:6379",
            "--cluster-node-id",
            "n2",
            "--cluster-on-unavailable",
            "open",
            "--cluster-ice-nodes",
            "1",
            "--cluster-region-prefix",
            "2001:db8::/32=ap",
        ]))
        .expect("cli");
    assert_eq!(
        c.cluster.redis_url.as_deref(),
        Some("redis://127.0.0.1:6379")
    );
    assert_eq!(c.cluster.node_id.as_deref(), Some("n2"));
    assert_eq!(c.cluster.ice_nodes, 1);
    assert_eq!(c.cluster.region_prefixes.len(), 1);
    // Empty = none.
    let c = parse("[cluster]\nredis_url = \"\"\nnode_id = \"\"").expect("empty");
    assert_eq!(c.cluster, ClusterConfig::default());
}

#[test]
fn cluster_values_are_checked() {
    for (text, key) in [
        ("redis_url = \"http://x\"", "cluster.redis_url"),
        ("redis_url = \"redis://\"", "cluster.redis_url"),
        ("redis_url = \"redis://a b\"", "cluster.redis_url"),
        ("redis_url = \"redis://:pw@\"", "cluster.redis_url"),
        ("node_id = \"a/b\"", "cluster.node_id"),
        ("region = \"ü\"", "cluster.region"),
        ("zone = \"x y\"", "cluster.zone"),
        ("key_prefix = \"\"", "cluster.key_prefix"),
        ("heartbeat = \"0s\"", "cluster.heartbeat"),
        ("timeout = 0", "cluster.timeout"),
        ("on_unavailable = \"maybe\"", "cluster.on_unavailable"),
        ("capacity = -1", "cluster.capacity"),
        ("ice_nodes = 0", "cluster.ice_nodes"),
        ("ice_nodes = 17", "cluster.ice_nodes"),
        ("region_header = \"X Region\"", "cluster.region_header"),
        (
            "region_prefixes = [\"10.0.0.0/8\"]",
            "cluster.region_prefixes",
        ),
        (
            "region_prefixes = [\"10.0.0.0/33=eu\"]",
            "cluster.region_prefixes",
        ),
        (
            "region_prefixes = [\"10.0.0.0/8=\"]",
            "cluster.region_prefixes",
        ),
    ] {
        let m = err(&format!("[cluster]\n{text}"));
        assert!(m.contains(&format!("`{key}")), "{text}: {m}");
    }
    let long = format!("[cluster]\nnode_id = \"{}\"", "n".repeat(65));
    assert!(err(&long).contains("cluster.node_id"));
    // A Redis password never appears in an error.
    let m = err("[cluster]\nredis_url = \"http://u:hunter2@x\"");
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn a_revocation_must_outlive_the_credentials_the_endpoint_mints() {
    let m = err(
        "[http]\ncredential_ttl = \"2h\"\n[cluster]\nredis_url = \"redis://127.0.0.1\"\n\
         revocation_ttl = \"1h\"",
    );
    assert!(m.contains("cluster.revocation_ttl"), "{m}");
    assert!(m.contains("outlive"), "{m}");
    // Equal is enough; and without a cluster nothing is checked.
    parse(
        "[http]\ncredential_ttl = \"1h\"\n[cluster]\nredis_url = \"redis://127.0.0.1\"\n\
         revocation_ttl = \"1h\"",
    )
    .expect("equal");
    parse("[http]\ncredential_ttl = \"2h\"\n[cluster]\nrevocation_ttl = \"1h\"").expect("off");
}

#[test]
fn an_api_only_node_needs_a_cluster() {
    let m = err("[cluster]\napi_only = true");
    assert!(m.contains("cluster.api_only"), "{m}");
    let c = parse("[cluster]\nredis_url = \"redis://127.0.0.1\"\napi_only = true").expect("ok");
    assert!(c.cluster.api_only);
}

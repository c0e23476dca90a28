//! The declaration table, continued: the `[cluster]` section (see
//! [`schema`](super::schema)). Without `cluster.redis_url` ternd is a single node and
//! every other key here is ignored.

use std::time::Duration;

use ipnet::IpNet;

use super::declare::section;
use super::kind::{Bool, Dur, Int, List, Text};
use super::{OnUnavailable, values};

section! {
    /// Cluster settings (`[cluster]`): several ternd nodes sharing one Redis for
    /// cluster-wide quotas, sessions, revocation, load-aware credentials and redirects.
    #[derive(Clone, PartialEq)]
    pub struct ClusterConfig at [.cluster] prefix "cluster." {
        /// The Redis the nodes share: `redis://[user:password@]host[:port][/db]`, or
        /// `rediss://` for TLS. Default `None`: no cluster (a single node).
        redis_url (secret): Option<String> {
            default: None,
            key: "redis_url",
            kind: Text(values::redis_url),
            flag: "cluster-redis-url", "URL", "TERND_CLUSTER_REDIS_URL",
            help: "Redis the cluster's nodes share, redis://[user:pass@]host[:port][/db] or \
                   rediss:// (TLS); empty = single node [default: none]",
        }
        /// This node's id in the cluster. Default `None`: the host name.
        node_id: Option<String> {
            default: None,
            key: "node_id",
            kind: Text(values::label),
            flag: "cluster-node-id", "ID", "TERND_CLUSTER_NODE_ID",
            help: "This node's id in the cluster, 1-64 of A-Z a-z 0-9 . _ - \
                   [default: the host name]",
        }
        /// This node's region label (the credentials endpoint prefers nodes of the
        /// caller's region). Default none.
        region: Option<String> {
            default: None,
            key: "region",
            kind: Text(values::label),
            flag: "cluster-region", "REGION", "TERND_CLUSTER_REGION",
            help: "This node's region label [default: none]",
        }
        /// This node's zone label (informational). Default none.
        zone: Option<String> {
            default: None,
            key: "zone",
            kind: Text(values::label),
            flag: "cluster-zone", "ZONE", "TERND_CLUSTER_ZONE",
            help: "This node's zone label [default: none]",
        }
        /// Prefix of every Redis key (several clusters may share one Redis). Default
        /// `"ternd"`.
        key_prefix: String {
            default: "ternd".to_owned(),
            key: "key_prefix",
            kind: Text(values::key_prefix),
            flag: "cluster-key-prefix", "PREFIX", "TERND_CLUSTER_KEY_PREFIX",
            help: "Prefix of the cluster's Redis keys [default: ternd]",
        }
        /// How often the node publishes its registry entry, load and sessions, and
        /// renews its quota entries. A node that stops is gone from the cluster after
        /// three of these. Default 2 s.
        heartbeat: Duration {
            default: Duration::from_secs(2),
            key: "heartbeat",
            kind: Dur::NONZERO,
            flag: "cluster-heartbeat", "DUR", "TERND_CLUSTER_HEARTBEAT",
            help: "How often the node publishes its entry, load and sessions; a silent node \
                   is gone after 3 of these [default: 2s]",
        }
        /// How long a Redis command may take before Redis counts as unavailable.
        /// Default 500 ms.
        timeout: Duration {
            default: Duration::from_millis(500),
            key: "timeout",
            kind: Dur::NONZERO,
            flag: "cluster-timeout", "DUR", "TERND_CLUSTER_TIMEOUT",
            help: "How long a Redis command may take before Redis counts as unavailable \
                   [default: 500ms]",
        }
        /// What the cluster-wide user quota does while Redis is unavailable: `open`
        /// counts on this node alone (and says so in a metric and a warning),
        /// `closed` refuses (486) the Allocates it cannot count. Default `open`.
        on_unavailable: OnUnavailable {
            default: OnUnavailable::Open,
            key: "on_unavailable",
            kind: Text(values::on_unavailable),
            flag: "cluster-on-unavailable", "open|closed", "TERND_CLUSTER_ON_UNAVAILABLE",
            help: "While Redis is unavailable, count user quotas on this node alone (open) \
                   or refuse what cannot be counted (closed) [default: open]",
        }
        /// Allocations past which this node redirects new ones (300 Try Alternate) to
        /// the least-loaded node; 0 = no limit. Default 0.
        capacity: u32 {
            default: 0,
            key: "capacity",
            kind: Int::new(values::any::<u32>),
            flag: "cluster-capacity", "N", "TERND_CLUSTER_CAPACITY",
            help: "Allocations past which new ones are redirected to the least-loaded node, \
                   0 = no limit [default: 0]",
        }
        /// How many nodes `/v1/ice-servers` names, least loaded first. Default 2;
        /// `1..=16`.
        ice_nodes: usize {
            default: 2,
            key: "ice_nodes",
            kind: Int::new(values::ice_nodes),
            flag: "cluster-ice-nodes", "N", "TERND_CLUSTER_ICE_NODES",
            help: "How many nodes the credentials endpoint names, least loaded first, \
                   1..=16 [default: 2]",
        }
        /// HTTP request header naming the caller's region for `/v1/ice-servers`
        /// (after the `region` query parameter). Default none.
        region_header: Option<String> {
            default: None,
            key: "region_header",
            kind: Text(values::header_name),
            flag: "cluster-region-header", "HEADER", "TERND_CLUSTER_REGION_HEADER",
            help: "HTTP header naming the caller's region for the credentials endpoint \
                   [default: none]",
        }
        /// `CIDR=REGION` entries: the caller's region by its address, when neither
        /// the query nor the header names one. Default none.
        region_prefixes: Vec<(IpNet, String)> {
            default: Vec::new(),
            key: "region_prefixes",
            kind: List(values::region_prefixes),
            flag: "cluster-region-prefix", "CIDR=REGION", "TERND_CLUSTER_REGION_PREFIX",
            help: "CIDR=REGION: callers from CIDR are in REGION, for the credentials \
                   endpoint; repeatable [default: none]",
        }
        /// An API-only node: no STUN/TURN listener and no relay (`listen`, `tls_listen`
        /// and the relay settings are ignored); it serves the credentials endpoint, which
        /// names the cluster's relays, and the fleet-wide admin API. Default `false`.
        api_only: bool {
            default: false,
            key: "api_only",
            kind: Bool,
            flag: "cluster-api-only", "BOOL", "TERND_CLUSTER_API_ONLY",
            help: "API-only node: no STUN/TURN listeners, only the credentials endpoint naming \
                   the cluster's relays and the admin API [default: false]",
        }
        /// How long a revocation stands: at least the longest lifetime credentials
        /// are issued with (`http.credential_ttl`, and whatever your backend mints
        /// with the REST secret). Credentials of a revoked user that may have been
        /// issued before the revocation are refused (403). Default 1 h.
        revocation_ttl: Duration {
            default: Duration::from_secs(3600),
            key: "revocation_ttl",
            kind: Dur::NONZERO,
            flag: "cluster-revocation-ttl", "DUR", "TERND_CLUSTER_REVOCATION_TTL",
            help: "How long a user revocation stands: at least the longest credential \
                   lifetime issued [default: 1h]",
        }
    }
}

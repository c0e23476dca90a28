//! What the nodes of a cluster publish in Redis (JSON): the registry entry of a node
//! ([`NodeInfo`]), a session ([`SessionRecord`]), and the commands on the channel
//! ([`ClusterCommand`]).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A STUN/TURN listener of a node, as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The advertised address.
    pub addr: SocketAddr,
}

/// A node's load at its last heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Live allocations.
    pub allocations: u64,
    /// Relayed packets per second, both ways.
    pub packets_per_sec: u64,
    /// Relayed payload bits per second, both ways.
    pub bits_per_sec: u64,
}

/// A node's registry entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its id (`cluster.node_id`).
    pub id: String,
    /// Its region label.
    pub region: Option<String>,
    /// Its zone label.
    pub zone: Option<String>,
    /// Its STUN/TURN listeners, advertised addresses.
    pub listeners: Vec<Listener>,
    /// Its advertised relay addresses (port 0).
    pub relay_addrs: Vec<SocketAddr>,
    /// Host names for its ICE URLs (`http.public_hosts`; empty: the listener IPs).
    pub ice_hosts: Vec<String>,
    /// Its HTTP endpoint (informational).
    pub http: Option<String>,
    /// Allocations past which it redirects (0: no limit).
    pub capacity: u64,
    /// Its load.
    pub load: Load,
    /// True while it drains.
    pub draining: bool,
    /// False for a node without relay listeners (credentials endpoint only).
    pub relay: bool,
    /// When it started, UNIX ms.
    pub started_ms: u64,
    /// When it last published this, UNIX ms.
    pub updated_ms: u64,
}

impl NodeInfo {
    /// How loaded it is: allocations over capacity, or allocations when it has none.
    pub fn load_ratio(&self) -> f64 {
        if self.capacity == 0 {
            self.load.allocations as f64
        } else {
            self.load.allocations as f64 / self.capacity as f64
        }
    }
}

/// A session (allocation) as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The node holding it.
    pub node: String,
    /// Its id on that node (the admin API's).
    pub id: u64,
    /// The quota key.
    pub user: String,
    /// The full USERNAME.
    pub username: String,
    /// The client's transport address.
    pub client: SocketAddr,
    /// The relayed transport address, advertised.
    pub relay: SocketAddr,
    /// A dual allocation's second relayed address.
    pub additional_relay: Option<SocketAddr>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// `udp`, or `tcp` (RFC 6062).
    pub relay_transport: String,
    /// Created, UNIX seconds.
    pub created_unix: u64,
    /// Expires, UNIX seconds.
    pub expires_unix: u64,
    /// Packets client → peer.
    pub packets_out: u64,
    /// Bytes client → peer.
    pub bytes_out: u64,
    /// Packets peer → client.
    pub packets_in: u64,
    /// Bytes peer → client.
    pub bytes_in: u64,
    /// When its node published this, UNIX ms.
    pub updated_ms: u64,
}

/// A command on the cluster's channel; each node acts only on its own allocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClusterCommand {
    /// End session `id` on `node`.
    EndSession {
        /// The node holding it.
        node: String,
        /// Its id there.
        id: u64,
    },
    /// `user` was revoked at `at_ms` (UNIX ms).
    Revoke {
        /// The quota key.
        user: String,
        /// When.
        at_ms: u64,
    },
    /// `node` is to drain.
    Drain {
        /// The node.
        node: String,
    },
}

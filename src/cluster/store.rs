//! The cluster's data in Redis: a typed [`Store`] over the `redis` crate (one multiplexed
//! connection that reconnects by itself, and one more for the command channel).
//!
//! # Key schema
//!
//! `P` is `cluster.key_prefix` (default `ternd`). The part in braces is the Redis Cluster
//! hash tag: the keys a script touches together share one slot.
//!
//! | key | type | holds | lifetime |
//! |---|---|---|---|
//! | `P:{nodes}:ids` | set | ids of the nodes that published an entry | pruned by the listing script when an entry is gone |
//! | `P:{nodes}:node:<id>` | string | the node's [`NodeInfo`] (JSON) | `PX` 3 heartbeats, set again every heartbeat |
//! | `P:quota:{<user>}` | sorted set | one member `<node>/<allocation id>` per live allocation of the user, scored by its lease's end (UNIX ms) | members past their score are removed before each count; the key expires with its last lease |
//! | `P:sessions:{<node>}` | hash | allocation id → [`SessionRecord`] (JSON), the node's sessions | replaced whole every heartbeat, `PX` 3 heartbeats |
//! | `P:{revoked}` | sorted set | member user, score when it was revoked (UNIX ms) | members older than `revocation_ttl` are removed at each revocation; the key expires `revocation_ttl` after the last |
//! | `P:commands` | pub/sub channel | [`ClusterCommand`]s (JSON) | — |
//!
//! Every write of a node is to its own entries (its registry key, its sessions hash, its
//! quota members), except the listing script's removal of ids whose entry has expired —
//! which it does atomically with reading that the entry is gone, so a live node's entries
//! are never removed by another. Everything a node writes it writes again every heartbeat,
//! so a Redis that restarted empty is whole again after one heartbeat of each node.

use std::time::Duration;

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::types::{ClusterCommand, NodeInfo, SessionRecord};

/// Most nodes the registry lists.
pub const MAX_NODES: usize = 10_000;
/// Largest value read back from Redis (an entry, a session, a command); bigger ones are
/// skipped.
pub const MAX_VALUE: usize = 64 * 1024;

/// Where and how to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `redis://` or `rediss://` URL (user, password and database in it).
    pub url: String,
    /// The key prefix.
    pub prefix: String,
    /// This node's id.
    pub node_id: String,
    /// Longest wait for a connection or an answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("node_id", &self.node_id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the timeout.
    #[error("redis: no answer within the timeout")]
    Timeout,
    /// Not connected (yet).
    #[error("redis: not connected")]
    NotConnected,
}

/// The key names.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
    ids: String,
    node_prefix: String,
    revoked: String,
    channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            ids: format!("{prefix}:{{nodes}}:ids"),
            node_prefix: format!("{prefix}:{{nodes}}:node:"),
            revoked: format!("{prefix}:{{revoked}}"),
            channel: format!("{prefix}:commands"),
        }
    }

    fn node(&self, id: &str) -> String {
        format!("{}{id}", self.node_prefix)
    }

    fn quota(&self, user: &str) -> String {
        format!("{}:quota:{{{user}}}", self.prefix)
    }

    fn sessions(&self, node: &str) -> String {
        format!("{}:sessions:{{{node}}}", self.prefix)
    }
}

/// Sets a node's entry and lists its id, atomically.
const HEARTBEAT: &str = r"
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
return 1
";

/// The entries of the listed ids; ids whose entry expired are removed (atomically with
/// finding it gone, so never a live node's).
const NODES: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
local max = tonumber(ARGV[2])
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then
    if #out < max then table.insert(out, v) end
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
";

/// Check-and-add of one allocation to a user's quota set: lapsed members go first; a
/// member already there is renewed whatever the count.
const QUOTA_TAKE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[3])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
";

/// Records a revocation (the later time wins), drops lapsed ones, and announces it on the
/// channel if it is news (not older than the one recorded) unless ARGV[6] is 0.
const REVOKE: &str = r"
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
local news = (not cur) or tonumber(cur) < tonumber(ARGV[2])
if news then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if news and ARGV[6] == '1' then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
";

/// Sets the cluster's nonce key unless one is set, and returns the one set.
const NONCE_KEY: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

/// Whole milliseconds of `d`, at least 1 (Redis refuses `PX 0`).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The cluster's data in Redis.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    client: redis::Client,
    keys: Keys,
    node_id: String,
    timeout: Duration,
    heartbeat: std::sync::Arc<redis::Script>,
    nodes: std::sync::Arc<redis::Script>,
    quota_take: std::sync::Arc<redis::Script>,
    revoke: std::sync::Arc<redis::Script>,
    nonce_key: std::sync::Arc<redis::Script>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("node_id", &self.node_id)
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

/// A command channel subscription.
pub struct Commands {
    stream: redis::aio::PubSubStream,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Commands")
    }
}

impl Commands {
    /// The next command; `None` when the connection is lost (subscribe again). Messages
    /// that are too big or not a command are skipped (and logged).
    pub async fn next(&mut self) -> Option<ClusterCommand> {
        loop {
            let msg = self.stream.next().await?;
            let payload = msg.get_payload_bytes();
            if payload.len() > MAX_VALUE {
                tracing::warn!(
                    len = payload.len(),
                    "cluster: oversized command on the channel skipped"
                );
                continue;
            }
            match serde_json::from_slice(payload) {
                Ok(cmd) => return Some(cmd),
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: unreadable command on the channel skipped")
                }
            }
        }
    }
}

/// Parses JSON values read back, skipping the oversized and the unreadable.
fn parse_all<T: serde::de::DeserializeOwned>(values: Vec<Vec<u8>>, what: &str) -> Vec<T> {
    values
        .into_iter()
        .filter(|v| v.len() <= MAX_VALUE)
        .filter_map(|v| match serde_json::from_slice(&v) {
            Ok(x) => Some(x),
            Err(e) => {
                tracing::debug!(error = %e, "cluster: unreadable {what} skipped");
                None
            }
        })
        .collect()
}

impl Store {
    /// Connects (within `cfg.timeout`). The connection then reconnects by itself; each
    /// call fails after `cfg.timeout` without an answer.
    pub async fn connect(cfg: StoreConfig) -> Result<Store, StoreError> {
        let client = redis::Client::open(cfg.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout))
            .set_response_timeout(Some(cfg.timeout))
            .set_number_of_retries(1)
            .set_max_delay(cfg.timeout);
        let conn = tokio::time::timeout(
            cfg.timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Timeout)??;
        Ok(Store {
            conn,
            client,
            keys: Keys::new(&cfg.prefix),
            node_id: cfg.node_id,
            timeout: cfg.timeout,
            heartbeat: std::sync::Arc::new(redis::Script::new(HEARTBEAT)),
            nodes: std::sync::Arc::new(redis::Script::new(NODES)),
            quota_take: std::sync::Arc::new(redis::Script::new(QUOTA_TAKE)),
            revoke: std::sync::Arc::new(redis::Script::new(REVOKE)),
            nonce_key: std::sync::Arc::new(redis::Script::new(NONCE_KEY)),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Runs `f` on the connection within the timeout.
    async fn call<T, F>(&self, f: impl FnOnce(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        tokio::time::timeout(self.timeout, f(self.conn.clone()))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(StoreError::from)
    }

    /// PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// Publishes this node's entry for `ttl`.
    pub async fn heartbeat(&self, node: &NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        let json = serde_json::to_string(node).unwrap_or_default();
        let (ids, key) = (self.keys.ids.clone(), self.keys.node(&self.node_id));
        let script = self.heartbeat.clone();
        self.call(|mut c| async move {
            script
                .key(ids)
                .key(key)
                .arg(&node.id)
                .arg(json)
                .arg(ms(ttl))
                .invoke_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// The nonce key the cluster's nodes share: `mine` if none is set yet (the first node
    /// to ask sets it), else the one set. Shared, a nonce one node hands out is good on
    /// every node (a client redirected by 300 keeps its nonce: browsers do).
    pub async fn shared_nonce_key(&self, mine: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let key = format!("{}:{{nodes}}:nonce_key", self.keys.prefix);
        let script = self.nonce_key.clone();
        let got: Vec<u8> = self
            .call(|mut c| async move { script.key(key).arg(&mine[..]).invoke_async(&mut c).await })
            .await?;
        // Anything but 32 bytes (written by something else): keep ours.
        Ok(<[u8; 32]>::try_from(got.as_slice()).unwrap_or(mine))
    }

    /// The live nodes' entries.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let (ids, prefix) = (self.keys.ids.clone(), self.keys.node_prefix.clone());
        let script = self.nodes.clone();
        let raw: Vec<Vec<u8>> = self
            .call(|mut c| async move {
                script
                    .key(ids)
                    .arg(prefix)
                    .arg(MAX_NODES)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(parse_all(raw, "node entry"))
    }

    /// Removes this node's entry and sessions (a clean exit).
    pub async fn leave(&self) -> Result<(), StoreError> {
        let (key, ids, sessions) = (
            self.keys.node(&self.node_id),
            self.keys.ids.clone(),
            self.keys.sessions(&self.node_id),
        );
        let id = self.node_id.clone();
        self.call(|mut c| async move {
            redis::pipe()
                .del(key)
                .ignore()
                .srem(ids, id)
                .ignore()
                .del(sessions)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    fn member(&self, id: u64) -> String {
        format!("{}/{id}", self.node_id)
    }

    /// Counts allocation `id` against `user`'s quota on the cluster if it fits under
    /// `limit` (0: no limit); true if it was counted. The entry lapses `lease` after
    /// `now_ms` unless renewed.
    pub async fn quota_take(
        &self,
        user: &str,
        id: u64,
        limit: u32,
        lease: Duration,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let key = self.keys.quota(user);
        let member = self.member(id);
        let script = self.quota_take.clone();
        let lease = ms(lease);
        let got: i64 = self
            .call(|mut c| async move {
                script
                    .key(key)
                    .arg(now_ms)
                    .arg(now_ms.saturating_add(lease))
                    .arg(limit)
                    .arg(member)
                    .arg(lease)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(got == 1)
    }

    /// Removes allocation `id` from `user`'s quota.
    pub async fn quota_release(&self, user: &str, id: u64) -> Result<(), StoreError> {
        let (key, member) = (self.keys.quota(user), self.member(id));
        self.call(|mut c| async move { c.zrem::<_, _, ()>(key, member).await })
            .await
    }

    /// Renews (or puts back) this node's quota entries: (user, allocation id) pairs.
    pub async fn quota_renew(
        &self,
        entries: &[(String, u64)],
        lease: Duration,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let lease = ms(lease);
        let score = now_ms.saturating_add(lease);
        let mut pipe = redis::pipe();
        let mut users: Vec<&str> = Vec::new();
        for (user, id) in entries {
            pipe.zadd(self.keys.quota(user), self.member(*id), score)
                .ignore();
            users.push(user);
        }
        users.sort_unstable();
        users.dedup();
        for user in users {
            pipe.pexpire(self.keys.quota(user), lease as i64).ignore();
        }
        self.call(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// How many live allocations `user` has on the cluster at `now_ms`.
    pub async fn quota_count(&self, user: &str, now_ms: u64) -> Result<u32, StoreError> {
        let key = self.keys.quota(user);
        let min = format!("({now_ms}");
        self.call(|mut c| async move { c.zcount(key, min, "+inf").await })
            .await
    }

    /// Replaces this node's sessions with `sessions`, for `ttl`.
    pub async fn put_sessions(
        &self,
        sessions: &[SessionRecord],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.keys.sessions(&self.node_id);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !sessions.is_empty() {
            let fields: Vec<(String, String)> = sessions
                .iter()
                .map(|s| {
                    (
                        s.id.to_string(),
                        serde_json::to_string(s).unwrap_or_default(),
                    )
                })
                .collect();
            pipe.hset_multiple(&key, &fields)
                .ignore()
                .pexpire(&key, ms(ttl) as i64)
                .ignore();
        }
        self.call(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    /// Removes session `id` of this node.
    pub async fn remove_session(&self, id: u64) -> Result<(), StoreError> {
        let key = self.keys.sessions(&self.node_id);
        self.call(|mut c| async move { c.hdel::<_, _, ()>(key, id.to_string()).await })
            .await
    }

    /// The sessions of `nodes`.
    pub async fn sessions(&self, nodes: &[String]) -> Result<Vec<SessionRecord>, StoreError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for n in nodes.iter().take(MAX_NODES) {
            pipe.hvals(self.keys.sessions(n));
        }
        let raw: Vec<Vec<Vec<u8>>> = self
            .call(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        Ok(raw
            .into_iter()
            .flat_map(|v| parse_all::<SessionRecord>(v, "session"))
            .collect())
    }

    async fn record_revocation(
        &self,
        user: &str,
        at_ms: u64,
        horizon: Duration,
        announce: bool,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&ClusterCommand::Revoke {
            user: user.to_owned(),
            at_ms,
        })
        .unwrap_or_default();
        let (key, channel) = (self.keys.revoked.clone(), self.keys.channel.clone());
        let script = self.revoke.clone();
        self.call(|mut c| async move {
            script
                .key(key)
                .arg(user)
                .arg(at_ms)
                .arg(ms(horizon))
                .arg(channel)
                .arg(json)
                .arg(if announce { "1" } else { "0" })
                .invoke_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Records that `user` was revoked at `at_ms` (standing `horizon`) and announces it
    /// on the channel.
    pub async fn revoke(
        &self,
        user: &str,
        at_ms: u64,
        horizon: Duration,
    ) -> Result<(), StoreError> {
        self.record_revocation(user, at_ms, horizon, true).await
    }

    /// Puts back revocations Redis lost (a restart without its data), without
    /// announcing them again.
    pub async fn restore_revocations(
        &self,
        list: &[(String, u64)],
        horizon: Duration,
    ) -> Result<(), StoreError> {
        for (user, at) in list {
            self.record_revocation(user, *at, horizon, false).await?;
        }
        Ok(())
    }

    /// The revocations standing at `now_ms`: (user, revoked at, UNIX ms).
    pub async fn revocations(
        &self,
        now_ms: u64,
        horizon: Duration,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let key = self.keys.revoked.clone();
        let min = format!("({}", now_ms.saturating_sub(ms(horizon)));
        let raw: Vec<(String, f64)> = self
            .call(|mut c| async move { c.zrangebyscore_withscores(key, min, "+inf").await })
            .await?;
        Ok(raw
            .into_iter()
            .take(crate::turn::MAX_REVOCATIONS)
            .map(|(u, at)| (u, at as u64))
            .collect())
    }

    /// Publishes a command.
    pub async fn publish(&self, cmd: &ClusterCommand) -> Result<(), StoreError> {
        let json = serde_json::to_string(cmd).unwrap_or_default();
        let channel = self.keys.channel.clone();
        self.call(|mut c| async move { c.publish::<_, _, ()>(channel, json).await })
            .await
    }

    /// Subscribes to the command channel on a connection of its own.
    pub async fn subscribe(&self) -> Result<Commands, StoreError> {
        let channel = self.keys.channel.clone();
        let client = self.client.clone();
        let pubsub = tokio::time::timeout(self.timeout, async move {
            let mut p = client.get_async_pubsub().await?;
            p.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(p)
        })
        .await
        .map_err(|_| StoreError::Timeout)??;
        Ok(Commands {
            stream: pubsub.into_on_message(),
        })
    }
}

//! One node's cluster task: on a thread of its own, it answers the workers' admissions
//! against the cluster-wide user quota, publishes the node's registry entry, load and
//! sessions and renews its quota entries every heartbeat, reads the registry (for the
//! redirect targets and the credentials endpoint) and the revocations, and acts on the
//! commands other nodes publish (end a session, revoke a user, drain). Nothing here is
//! on the relaying path: while Redis is unavailable the node relays as before, and
//! admissions follow `cluster.on_unavailable`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore, mpsc, watch};

use super::metrics::Counters;
use super::pick;
use super::store::{Store, StoreConfig};
use super::types::{ClusterCommand, Listener, Load, NodeInfo, SessionRecord};
use crate::config::{ClusterConfig, Config, OnUnavailable};
use crate::http::BoxFuture;
use crate::net::{ClusterEvent, Handle, View};
use crate::turn::{Admission, SessionInfo};

/// Admissions asked of Redis at once; past it, the fallback rule decides.
const MAX_IN_FLIGHT: usize = 1024;
/// How often a warning about Redis being unavailable may repeat.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// UNIX time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A node's view of the cluster, shared by its cluster task and its HTTP endpoint.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.inner.me.id)
            .finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) me: NodeInfo,
    pub(super) cfg: ClusterConfig,
    pub(super) view: Arc<View>,
    store: RwLock<Option<Store>>,
    pub(super) up: AtomicBool,
    nodes: RwLock<Vec<NodeInfo>>,
    pub(super) counters: Counters,
    drain: Arc<Notify>,
    last_warning: Mutex<Option<Instant>>,
    /// Relayed totals at the last heartbeat (packets, bytes) and when.
    last_totals: Mutex<Option<(Instant, u64, u64)>>,
    /// The node's last load, as published.
    load: Mutex<Load>,
}

/// The running cluster task.
#[derive(Debug)]
pub struct ClusterHandle {
    cluster: Cluster,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClusterHandle {
    /// The cluster, for the HTTP endpoint.
    pub fn cluster(&self) -> Cluster {
        self.cluster.clone()
    }

    /// Leaves the cluster (removes this node's entry and sessions) and stops the task.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// This node's id: `cluster.node_id`, else the host name.
fn node_id(cfg: &ClusterConfig) -> String {
    if let Some(id) = &cfg.node_id {
        return id.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "ternd".to_owned())
}

/// The static part of this node's registry entry: where clients reach it.
fn me(config: &Config, handle: &Handle) -> NodeInfo {
    let cfg = &config.cluster;
    let advertised = |a: SocketAddr| -> Option<SocketAddr> {
        if !a.ip().is_unspecified() {
            return Some(a);
        }
        let relay = if a.is_ipv4() {
            handle.relay_v4()
        } else {
            handle.relay_v6()
        }?;
        (!relay.advertise.is_unspecified()).then(|| SocketAddr::new(relay.advertise, a.port()))
    };
    let mut listeners = Vec::new();
    for (t, addrs) in [
        ("udp", handle.udp_addrs()),
        ("tcp", handle.tcp_addrs()),
        ("tls", handle.tls_addrs()),
    ] {
        for &a in addrs {
            if let Some(addr) = advertised(a) {
                listeners.push(Listener {
                    transport: t.to_owned(),
                    addr,
                });
            }
        }
    }
    NodeInfo {
        id: node_id(cfg),
        region: cfg.region.clone(),
        zone: cfg.zone.clone(),
        listeners,
        relay_addrs: [handle.relay_v4(), handle.relay_v6()]
            .into_iter()
            .flatten()
            .filter(|_| !cfg.api_only)
            .map(|r| SocketAddr::new(r.advertise, 0))
            .collect(),
        ice_hosts: config.http.public_hosts.clone(),
        http: config.http.listen.map(|a| a.to_string()),
        capacity: u64::from(cfg.capacity),
        load: Load::default(),
        draining: false,
        relay: !cfg.api_only,
        started_ms: now_ms(),
        updated_ms: 0,
    }
}

/// Starts the cluster task for the running server `handle` (which must have been started
/// with `config`, whose `cluster.redis_url` is set). Redis need not be up: the task
/// connects, and reconnects, by itself.
pub fn start(config: &Config, handle: &Handle) -> std::io::Result<ClusterHandle> {
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_owned());
    let events = handle
        .take_cluster_events()
        .ok_or_else(|| invalid("the server was not started with a cluster"))?;
    let cfg = config.cluster.clone();
    let url = cfg
        .redis_url
        .clone()
        .ok_or_else(|| invalid("cluster.redis_url is not set"))?;
    let me = me(config, handle);
    let listeners: Vec<String> = me
        .listeners
        .iter()
        .map(|l| format!("{}:{}", l.transport, l.addr))
        .collect();
    tracing::info!(node = %me.id, listeners = ?crate::log_json::list(&listeners), "cluster: this node");
    let inner = Arc::new(Inner {
        me,
        cfg,
        view: handle.view(),
        store: RwLock::new(None),
        up: AtomicBool::new(false),
        nodes: RwLock::new(Vec::new()),
        counters: Counters::default(),
        drain: Arc::new(Notify::new()),
        last_warning: Mutex::new(None),
        last_totals: Mutex::new(None),
        load: Mutex::new(Load::default()),
    });
    let horizon = inner.cfg.revocation_ttl;
    inner
        .view
        .core()
        .update_cluster(|v| v.set_revocations([], horizon));
    let cluster = Cluster {
        inner: inner.clone(),
    };
    let metrics_of = cluster.clone();
    inner
        .view
        .add_metrics(crate::net::MoreMetrics(Arc::new(move || {
            metrics_of.inner.render_metrics()
        })));
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("ternd-cluster".to_owned())
        .spawn(move || runtime.block_on(run(inner, url, events, stop_rx)))?;
    Ok(ClusterHandle {
        cluster,
        stop,
        thread: Some(thread),
    })
}

/// The task: admissions as they come, the heartbeat, the command subscriber; at the end,
/// leaving.
async fn run(
    inner: Arc<Inner>,
    url: String,
    mut events: mpsc::Receiver<ClusterEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let store_cfg = StoreConfig {
        url,
        prefix: inner.cfg.key_prefix.clone(),
        node_id: inner.me.id.clone(),
        timeout: inner.cfg.timeout,
    };
    let heartbeat = tokio::spawn(heartbeat_loop(inner.clone(), store_cfg));
    let subscriber = tokio::spawn(subscribe_loop(inner.clone()));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            ev = events.recv() => match ev {
                Some(ev) => inner.clone().on_event(ev, &permits),
                None => break,
            },
        }
    }
    heartbeat.abort();
    subscriber.abort();
    if let Some(store) = inner.store() {
        // The allocations the workers ended at shutdown give their quota slots back
        // (best effort, bounded: what is left lapses with its lease).
        let release = async {
            while let Ok(ev) = events.try_recv() {
                if let ClusterEvent::Released { id, user } = ev {
                    let _ = store.quota_release(&user, id).await;
                }
            }
        };
        let _ = tokio::time::timeout(inner.cfg.timeout * 4, release).await;
        match tokio::time::timeout(inner.cfg.timeout * 2, store.leave()).await {
            Ok(Ok(())) => tracing::info!(node = %inner.me.id, "cluster: left"),
            _ => {
                tracing::warn!(node = %inner.me.id, "cluster: could not remove this node's entries; they lapse by themselves")
            }
        }
    }
}

/// Registry entries live this many heartbeats.
fn entry_ttl(cfg: &ClusterConfig) -> Duration {
    cfg.heartbeat * 3
}

/// A quota entry's lease: renewed every heartbeat, it lapses three heartbeats (and a
/// command timeout) after its node stops.
fn lease(cfg: &ClusterConfig) -> Duration {
    cfg.heartbeat * 3 + cfg.timeout
}

impl Inner {
    fn store(&self) -> Option<Store> {
        self.store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The cluster's part of `/metrics`.
    fn render_metrics(&self) -> String {
        let queue_full: u64 = self
            .view
            .worker_stats()
            .iter()
            .map(|s| s.cluster_fallbacks)
            .sum();
        super::metrics::render(&self.counters, self.up.load(Ordering::Relaxed), queue_full)
    }

    fn fallback_grant(&self) -> bool {
        self.cfg.on_unavailable == OnUnavailable::Open
    }

    /// Logs that Redis is unavailable, at most every [`WARN_EVERY`].
    fn warn_unavailable(&self, what: &str, error: &dyn std::fmt::Display) {
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            let mode = match self.cfg.on_unavailable {
                OnUnavailable::Open => "user quotas are counted on this node alone",
                OnUnavailable::Closed => "Allocates of users with a quota are refused (486)",
            };
            tracing::warn!(node = %self.me.id, %error, "cluster: Redis unavailable ({what}); {mode} until it is back");
        }
    }

    /// One worker event.
    fn on_event(self: Arc<Self>, ev: ClusterEvent, permits: &Arc<Semaphore>) {
        match ev {
            ClusterEvent::Admit { worker, admission } => {
                let store = self.store().filter(|_| self.up.load(Ordering::Relaxed));
                let (Some(store), Ok(permit)) = (store, permits.clone().try_acquire_owned()) else {
                    self.fallback(worker, admission, &"not connected");
                    return;
                };
                tokio::spawn(async move {
                    let _permit = permit;
                    self.admit(&store, worker, admission).await;
                });
            }
            ClusterEvent::Released { id, user } => {
                let Some(store) = self.store() else { return };
                let inner = self.clone();
                tokio::spawn(async move {
                    // Best effort: an entry not removed lapses at the end of its lease.
                    if let Err(e) = store.quota_release(&user, id).await {
                        inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "cluster: quota entry not released");
                    }
                    let _ = store.remove_session(id).await;
                });
            }
        }
    }

    /// Decides an admission without Redis.
    fn fallback(&self, worker: usize, admission: Admission, why: &dyn std::fmt::Display) {
        self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.warn_unavailable("admission", why);
        self.view.admit(worker, admission, self.fallback_grant());
    }

    /// Asks Redis whether `admission` fits its user's quota.
    async fn admit(&self, store: &Store, worker: usize, admission: Admission) {
        let limit = self.view.core().limits().user_quota;
        let asked = store.quota_take(
            &admission.user,
            admission.id,
            limit,
            lease(&self.cfg),
            now_ms(),
        );
        match tokio::time::timeout(self.cfg.timeout, asked).await {
            Ok(Ok(granted)) => {
                let c = if granted {
                    &self.counters.granted
                } else {
                    &self.counters.refused
                };
                c.fetch_add(1, Ordering::Relaxed);
                self.view.admit(worker, admission, granted);
            }
            Ok(Err(e)) => {
                self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                self.up.store(false, Ordering::Relaxed);
                self.fallback(worker, admission, &e);
            }
            Err(_) => {
                self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                self.up.store(false, Ordering::Relaxed);
                self.fallback(worker, admission, &"timed out");
            }
        }
    }

    /// This node's entry as of now.
    fn entry(&self, allocations: u64) -> NodeInfo {
        let stats = self.view.worker_stats();
        let (packets, bytes) = stats.iter().fold((0u64, 0u64), |(p, b), s| {
            (
                p + s.relayed_out_packets + s.relayed_in_packets,
                b + s.relayed_out_bytes + s.relayed_in_bytes,
            )
        });
        let now = Instant::now();
        let mut last = self
            .last_totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (pps, bps) = match *last {
            Some((t, p, b)) if now > t => {
                let secs = now.duration_since(t).as_secs_f64();
                (
                    (packets.saturating_sub(p) as f64 / secs) as u64,
                    (bytes.saturating_sub(b) as f64 * 8.0 / secs) as u64,
                )
            }
            _ => (0, 0),
        };
        *last = Some((now, packets, bytes));
        let load = Load {
            allocations,
            packets_per_sec: pps,
            bits_per_sec: bps,
        };
        *self.load.lock().unwrap_or_else(PoisonError::into_inner) = load.clone();
        NodeInfo {
            load,
            draining: !self.view.ready(),
            updated_ms: now_ms(),
            ..self.me.clone()
        }
    }

    /// One heartbeat: publish, renew, read back.
    async fn beat(&self, store: &Store) -> Result<(), super::store::StoreError> {
        let core = self.view.core();
        let mine = core.nonce_key().to_bytes();
        let shared = store.shared_nonce_key(mine).await?;
        if shared != mine {
            core.replace_nonce_key(crate::auth::nonce::NonceKey::from_bytes(shared));
            tracing::info!(node = %self.me.id, "cluster: using the cluster's nonce key (nonces handed out before are stale now)");
        }
        let sessions = self.view.list_sessions().await;
        let entry = self.entry(sessions.len() as u64);
        let now = now_ms();
        let ttl = entry_ttl(&self.cfg);
        store.heartbeat(&entry, ttl).await?;
        let records: Vec<SessionRecord> = sessions
            .iter()
            .map(|s| record(&self.me.id, s, now))
            .collect();
        store.put_sessions(&records, ttl).await?;
        let quota: Vec<(String, u64)> = sessions.iter().map(|s| (s.user.clone(), s.id)).collect();
        store.quota_renew(&quota, lease(&self.cfg), now).await?;
        let horizon = self.cfg.revocation_ttl;
        let remote = store.revocations(now, horizon).await?;
        // Revocations this node knows that Redis lost (a restart without its data): put
        // back, without announcing them again.
        let known: Vec<(String, u64)> = self.view.core().with_cluster(|v| {
            v.revocations()
                .filter(|&(_, at)| at.saturating_add(horizon.as_millis() as u64) > now)
                .map(|(u, at)| (u.to_owned(), at))
                .collect()
        });
        let remote_users: HashSet<&str> = remote.iter().map(|(u, _)| u.as_str()).collect();
        let lost: Vec<(String, u64)> = known
            .iter()
            .filter(|(u, _)| !remote_users.contains(u.as_str()))
            .cloned()
            .collect();
        if !lost.is_empty() {
            store.restore_revocations(&lost, horizon).await?;
        }
        for (user, at) in remote {
            self.apply_revocation(user, at).await;
        }
        self.view.core().update_cluster(|v| v.prune(now));
        let nodes = store.nodes().await?;
        self.view
            .core()
            .update_cluster(|v| v.set_alternates(pick::alternates(&nodes, &self.me.id)));
        self.counters
            .nodes
            .store(nodes.len() as u64, Ordering::Relaxed);
        *self.nodes.write().unwrap_or_else(PoisonError::into_inner) = nodes;
        Ok(())
    }

    /// Applies a revocation (new or already known): refuses the user's credentials that
    /// may predate it, and ends the user's sessions created before it.
    pub(super) async fn apply_revocation(&self, user: String, at_ms: u64) {
        let new = self.view.core().update_cluster(|v| {
            let had = v.revocations().any(|(u, a)| u == user && a >= at_ms);
            if !had {
                v.revoke(user.clone(), at_ms);
            }
            !had
        });
        if new {
            let ended = self
                .view
                .end_user_sessions_started_by(&user, at_ms / 1000)
                .await;
            self.counters.revocations.fetch_add(1, Ordering::Relaxed);
            tracing::info!(node = %self.me.id, %user, ended, "cluster: user revoked");
        }
    }

    /// Acts on a command from the channel.
    async fn on_command(&self, cmd: ClusterCommand) {
        self.counters.commands.fetch_add(1, Ordering::Relaxed);
        match cmd {
            ClusterCommand::EndSession { node, id } if node == self.me.id => {
                let ended = self.view.end_session(id).await;
                tracing::info!(node = %self.me.id, id, ended, "cluster: end session");
            }
            ClusterCommand::Revoke { user, at_ms } => self.apply_revocation(user, at_ms).await,
            ClusterCommand::Drain { node } if node == self.me.id => {
                tracing::info!(node = %self.me.id, "cluster: drain requested");
                self.drain.notify_one();
            }
            _ => {}
        }
    }
}

/// A session as the registry lists it.
fn record(node: &str, s: &SessionInfo, now: u64) -> SessionRecord {
    SessionRecord {
        node: node.to_owned(),
        id: s.id,
        user: s.user.clone(),
        username: s.username.clone(),
        client: s.client,
        relay: s.relay,
        additional_relay: s.additional_relay,
        transport: s.transport.to_owned(),
        relay_transport: s.relay_transport.to_owned(),
        created_unix: s.created_unix,
        expires_unix: s.expires_unix,
        packets_out: s.traffic.packets_out,
        bytes_out: s.traffic.bytes_out,
        packets_in: s.traffic.packets_in,
        bytes_in: s.traffic.bytes_in,
        updated_ms: now,
    }
}

/// Connects (and reconnects) and beats every `cluster.heartbeat`.
async fn heartbeat_loop(inner: Arc<Inner>, cfg: StoreConfig) {
    let mut tick = tokio::time::interval(inner.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = match inner.store() {
            Some(s) => s,
            None => match tokio::time::timeout(inner.cfg.timeout * 2, Store::connect(cfg.clone()))
                .await
            {
                Ok(Ok(s)) => {
                    *inner.store.write().unwrap_or_else(PoisonError::into_inner) = Some(s.clone());
                    s
                }
                Ok(Err(e)) => {
                    inner.up.store(false, Ordering::Relaxed);
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    inner.warn_unavailable("connect", &e);
                    continue;
                }
                Err(_) => {
                    inner.up.store(false, Ordering::Relaxed);
                    inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    inner.warn_unavailable("connect", &"timed out");
                    continue;
                }
            },
        };
        match tokio::time::timeout(
            inner.cfg.heartbeat.max(inner.cfg.timeout),
            inner.beat(&store),
        )
        .await
        {
            Ok(Ok(())) => {
                inner.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                if !inner.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(node = %inner.me.id, "cluster: Redis reachable; entry, sessions and quota entries published");
                }
            }
            Ok(Err(e)) => {
                inner.up.store(false, Ordering::Relaxed);
                inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                inner.warn_unavailable("heartbeat", &e);
            }
            Err(_) => {
                inner.up.store(false, Ordering::Relaxed);
                inner.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                inner.warn_unavailable("heartbeat", &"timed out");
            }
        }
    }
}

/// Listens for commands, resubscribing after a lost connection.
async fn subscribe_loop(inner: Arc<Inner>) {
    loop {
        let Some(store) = inner.store() else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match store.subscribe().await {
            Ok(mut commands) => {
                while let Some(cmd) = commands.next().await {
                    inner.on_command(cmd).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cluster: subscribe failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Cluster {
    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.me.id
    }

    /// Notified when the cluster asks this node to drain.
    pub fn drain_requested(&self) -> Arc<Notify> {
        self.inner.drain.clone()
    }

    /// The registry as last read (live nodes only, this one included once it beat).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.inner
            .nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The nodes `/v1/ice-servers` names for a caller in `region`.
    pub fn ice_nodes(&self, region: Option<&str>) -> Vec<NodeInfo> {
        let nodes = self.nodes();
        pick::ice_nodes(&nodes, region, self.inner.cfg.ice_nodes)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The caller's region: the one named by the `region` query parameter (given here as
    /// `named`), else by the configured header, else by the prefix table.
    pub fn region_of(
        &self,
        named: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
        caller: std::net::IpAddr,
    ) -> Option<String> {
        if let Some(r) = named.filter(|r| !r.is_empty()) {
            return Some(r.to_owned());
        }
        if let Some(h) = &self.inner.cfg.region_header
            && let Some(r) = header(h).filter(|r| !r.is_empty())
        {
            return Some(r);
        }
        self.inner
            .cfg
            .region_prefixes
            .iter()
            .find(|(net, _)| net.contains(&caller))
            .map(|(_, r)| r.clone())
    }

    fn store(&self) -> Result<Store, super::store::StoreError> {
        self.inner
            .store()
            .ok_or(super::store::StoreError::NotConnected)
    }

    /// Every session in the cluster (of the live nodes), optionally of one `user` or
    /// one `node`.
    pub async fn sessions(
        &self,
        user: Option<&str>,
        node: Option<&str>,
    ) -> Result<Vec<SessionRecord>, super::store::StoreError> {
        let store = self.store()?;
        let nodes = store.nodes().await?;
        let ids: Vec<String> = nodes
            .into_iter()
            .map(|n| n.id)
            .filter(|id| node.is_none_or(|n| n == id))
            .collect();
        let mut all = store.sessions(&ids).await?;
        all.retain(|s| user.is_none_or(|u| u == s.user));
        all.sort_by(|a, b| (&a.node, a.id).cmp(&(&b.node, b.id)));
        Ok(all)
    }

    /// Ends session `id` on `node` (this one: at once, true if it existed; another:
    /// through the command channel, true once published).
    pub async fn end_session(&self, node: &str, id: u64) -> Result<bool, super::store::StoreError> {
        if node == self.inner.me.id {
            return Ok(self.inner.view.end_session(id).await);
        }
        self.store()?
            .publish(&ClusterCommand::EndSession {
                node: node.to_owned(),
                id,
            })
            .await?;
        Ok(true)
    }

    /// Revokes `user` on every node: their credentials that may predate now are refused
    /// for `cluster.revocation_ttl`, their sessions end. Returns the revocation time.
    pub async fn revoke(&self, user: &str) -> Result<u64, super::store::StoreError> {
        let at = now_ms();
        self.store()?
            .revoke(user, at, self.inner.cfg.revocation_ttl)
            .await?;
        // This node acts at once, whatever the channel does.
        self.inner.apply_revocation(user.to_owned(), at).await;
        Ok(at)
    }

    /// Asks `node` to drain (this one: at once).
    pub async fn drain(&self, node: &str) -> Result<(), super::store::StoreError> {
        if node == self.inner.me.id {
            self.inner.drain.notify_one();
            return Ok(());
        }
        self.store()?
            .publish(&ClusterCommand::Drain {
                node: node.to_owned(),
            })
            .await
    }

    /// True while Redis answers.
    pub fn redis_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }
}

impl crate::http::Fleet for Cluster {
    fn node_id(&self) -> &str {
        Cluster::node_id(self)
    }

    fn region_of(
        &self,
        named: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
        caller: std::net::IpAddr,
    ) -> Option<String> {
        Cluster::region_of(self, named, header, caller)
    }

    fn ice_urls(&self, region: Option<&str>) -> (Vec<String>, Vec<String>) {
        let (mut stun, mut turn) = (Vec::new(), Vec::new());
        for n in self.ice_nodes(region) {
            let (s, t) = pick::node_urls(&n);
            stun.extend(s);
            turn.extend(t);
        }
        (stun, turn)
    }

    fn nodes(&self) -> serde_json::Value {
        serde_json::to_value(Cluster::nodes(self)).unwrap_or_default()
    }

    fn sessions<'a>(
        &'a self,
        user: Option<&'a str>,
        node: Option<&'a str>,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move {
            Cluster::sessions(self, user, node)
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default())
                .map_err(|e| e.to_string())
        })
    }

    fn end_session<'a>(&'a self, node: &'a str, id: u64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            Cluster::end_session(self, node, id)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn revoke<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move { Cluster::revoke(self, user).await.map_err(|e| e.to_string()) })
    }

    fn drain<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Cluster::drain(self, node).await.map_err(|e| e.to_string()) })
    }
}

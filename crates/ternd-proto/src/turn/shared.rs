//! State all workers share ([`Shared`]): settings, credentials, the peer policy, the
//! quotas and EVEN-PORT reservations, the live relayed addresses (the same-server
//! exemption), the RFC 6062 connection ids, and the run-time [`Limits`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::cluster::ClusterView;
use super::config::{CoreConfig, Limits};
use super::limit;
use super::tcp::TcpRelayConfig;
use super::types::{FiveTuple, Lease, RelayTransport};
use crate::auth::nonce::NonceKey;
use crate::auth::store::CredentialStore;
use crate::policy::{Denied, PeerPolicy};

/// How long an EVEN-PORT R=1 reservation is held (RFC 8656 §7.2: about 30 s).
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// An EVEN-PORT R=1 reservation: a held port, counted against the quotas of the user and
/// source that made it (one allocation's worth) until it is claimed, expires, or the
/// allocation that made it ends.
#[derive(Debug, Clone)]
pub(super) struct Reservation {
    /// The held port.
    pub(super) addr: SocketAddr,
    /// When it lapses.
    pub(super) expires: Instant,
    /// The quota key it is counted against.
    pub(super) user: String,
    /// The source it is counted against.
    pub(super) client: IpAddr,
}

/// Allocation counts for the quotas.
#[derive(Debug, Default)]
struct Quotas {
    per_user: HashMap<String, u32>,
    /// Allocations per source ([`limit::SourceKey`]), for `max_allocations_per_ip`.
    per_ip: HashMap<limit::SourceKey, u32>,
    total: u32,
}

/// Which quota refused an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuotaExceeded {
    User,
    Ip,
    Total,
}

/// The [`Limits`] in force: replaced whole on reload, read whole. A generation counter
/// says when they changed, so each worker keeps a copy and checks one relaxed-cost load per
/// packet ([`Server`](super::Server) does) instead of taking the lock.
#[derive(Debug)]
struct LiveLimits {
    generation: AtomicU64,
    now: Mutex<Limits>,
}

impl LiveLimits {
    fn new(l: Limits) -> Self {
        Self {
            generation: AtomicU64::new(0),
            now: Mutex::new(l),
        }
    }

    fn get(&self) -> Limits {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, l: Limits) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = l;
        // Bumped under the lock: whoever sees the new generation reads the new limits.
        self.generation.fetch_add(1, Release);
    }
}

/// State all workers share. Touched on Allocate and teardown only, never per packet.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: CoreConfig,
    /// Credential sources; replaced on SIGHUP ([`Shared::replace_credentials`]).
    store: RwLock<Arc<CredentialStore>>,
    /// The nonce key: drawn per process, or shared by a cluster's nodes (so that a
    /// client redirected to another node keeps a nonce that node accepts).
    nonce_key: RwLock<NonceKey>,
    /// Which peers may be reached; replaced on SIGHUP ([`Shared::replace_policy`]).
    policy: RwLock<Arc<PeerPolicy>>,
    quotas: Mutex<Quotas>,
    /// Relayed transport addresses (bound and advertised) of live allocations on this
    /// server, all workers, with what they relay: peers the policy lets through even in
    /// denied ranges, on that transport only; each with its [`Lease`].
    live_relays: RwLock<HashMap<(RelayTransport, SocketAddr), Lease>>,
    /// The last [`Lease`] handed out.
    last_lease: AtomicU64,
    /// Set on SIGTERM: new Allocates are refused while existing allocations drain.
    draining: AtomicBool,
    policy_generation: AtomicU64,
    pub(super) reservations: Mutex<HashMap<[u8; 8], Reservation>>,
    /// RFC 6062 TCP allocations (off unless set with [`Shared::with_tcp_relay`]).
    pub tcp: TcpRelayConfig,
    /// Live CONNECTION-IDs and the worker owning each.
    tcp_ids: Mutex<HashMap<u32, u16>>,
    /// Quotas and limits now (initially those of `config`; replaced on SIGHUP).
    limits: LiveLimits,
    /// What the cluster says (revocations, redirect targets, capacity); empty alone.
    cluster: RwLock<ClusterView>,
}

impl Shared {
    /// Shared state from its parts.
    pub fn new(
        config: CoreConfig,
        store: CredentialStore,
        nonce_key: NonceKey,
        policy: PeerPolicy,
    ) -> Self {
        Self {
            store: RwLock::new(Arc::new(store)),
            nonce_key: RwLock::new(nonce_key),
            policy: RwLock::new(Arc::new(policy)),
            quotas: Mutex::new(Quotas::default()),
            live_relays: RwLock::new(HashMap::new()),
            last_lease: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            policy_generation: AtomicU64::new(0),
            reservations: Mutex::new(HashMap::new()),
            tcp: TcpRelayConfig::default(),
            tcp_ids: Mutex::new(HashMap::new()),
            limits: LiveLimits::new(config.limits),
            cluster: RwLock::new(ClusterView::default()),
            config,
        }
    }

    /// The quotas and limits in force.
    pub fn limits(&self) -> Limits {
        self.limits.get()
    }

    /// Replaces the quotas and limits (SIGHUP): new allocations, permissions and channels
    /// are checked against them; existing ones are kept (an allocation over a lowered
    /// quota lives on until it ends); `max_bps` applies to every packet from now on.
    pub fn replace_limits(&self, limits: Limits) {
        self.limits.set(limits);
    }

    /// Counts [`Shared::replace_limits`] calls: a worker whose copy of the limits is of an
    /// older generation reads them again (per packet: one load).
    #[inline]
    pub(super) fn limits_generation(&self) -> u64 {
        self.limits.generation.load(Acquire)
    }

    /// The same, with RFC 6062 TCP allocations configured (`tcp_relay`).
    pub fn with_tcp_relay(mut self, tcp: TcpRelayConfig) -> Self {
        self.tcp = tcp;
        self
    }

    /// Allocations currently counted against `user`.
    pub fn user_allocations(&self, user: &str) -> u32 {
        self.quotas
            .lock()
            .map(|q| q.per_user.get(user).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// EVEN-PORT reservations held now.
    pub fn reservation_count(&self) -> usize {
        self.reservations.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Allocations currently counted on the whole server.
    pub fn total_allocations(&self) -> u32 {
        self.quotas.lock().map(|q| q.total).unwrap_or(0)
    }

    /// The current credential sources (requests in flight keep the set they started with).
    pub fn store(&self) -> Arc<CredentialStore> {
        match self.store.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The current peer policy.
    pub fn policy(&self) -> Arc<PeerPolicy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the credential sources (SIGHUP). New authentications use the new set;
    /// existing allocations keep the key they authenticated with (RFC 8656 §6.2), so
    /// removing a secret stops new allocations without breaking live ones.
    pub fn replace_credentials(&self, store: CredentialStore) {
        if let Ok(mut s) = self.store.write() {
            *s = Arc::new(store);
        }
    }

    /// Replaces the peer policy (SIGHUP); applies to every later check.
    pub fn replace_policy(&self, policy: PeerPolicy) {
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
        self.policy_generation.fetch_add(1, Ordering::Release);
    }

    /// Bumped by every [`Shared::replace_policy`]: allocations re-check their permissions
    /// and channels when it moves (one relaxed load per relayed packet).
    #[inline]
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation.load(Relaxed)
    }

    /// Starts (or stops) draining: new Allocates get 300 or 508, existing ones go on.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Relaxed);
    }

    /// True while draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// The nonce key in force.
    pub fn nonce_key(&self) -> NonceKey {
        self.nonce_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the nonce key (a cluster's shared one): nonces made with the old key are
    /// stale from now on (438 and a fresh nonce).
    pub fn replace_nonce_key(&self, key: NonceKey) {
        *self
            .nonce_key
            .write()
            .unwrap_or_else(PoisonError::into_inner) = key;
    }

    /// Changes the cluster's view (revocations, redirect targets, capacity).
    pub fn update_cluster<T>(&self, f: impl FnOnce(&mut ClusterView) -> T) -> T {
        let mut v = self.cluster.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut v)
    }

    /// Reads the cluster's view.
    pub fn with_cluster<T>(&self, f: impl FnOnce(&ClusterView) -> T) -> T {
        let v = self.cluster.read().unwrap_or_else(PoisonError::into_inner);
        f(&v)
    }

    /// Where a new allocation this node does not take (draining, over capacity) is sent:
    /// the cluster's pick for the client's transport and the listener's family, else the
    /// configured `alternate_server`.
    pub fn alternate_for(&self, tuple: &FiveTuple) -> Option<SocketAddr> {
        self.with_cluster(|v| v.alternate(tuple.transport, tuple.server.is_ipv6()))
            .or(self.config.alternate_server)
    }

    /// True when the cluster's capacity is set and this node holds that many allocations.
    pub fn over_capacity(&self) -> bool {
        let cap = self.with_cluster(ClusterView::capacity);
        cap != 0 && self.total_allocations() >= cap
    }

    /// The lease of `addr` if it is the relayed transport address of a live allocation here
    /// that relays over `transport`.
    pub fn live_relay(&self, transport: RelayTransport, addr: SocketAddr) -> Option<Lease> {
        self.live_relays
            .read()
            .ok()
            .and_then(|r| r.get(&(transport, addr)).copied())
    }

    /// True if `addr` is the relayed transport address of a live allocation here that
    /// relays over `transport`.
    pub fn is_live_relay(&self, transport: RelayTransport, addr: SocketAddr) -> bool {
        self.live_relay(transport, addr).is_some()
    }

    /// Marks relayed addresses live (an allocation, or its second family, was opened).
    pub(super) fn add_live_relays(
        &self,
        transport: RelayTransport,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) {
        if let Ok(mut live) = self.live_relays.write() {
            let lease = self.last_lease.fetch_add(1, Relaxed) + 1;
            for a in addrs {
                live.insert((transport, a), lease);
            }
        }
    }

    /// Ends relayed addresses' exemption (their allocation, or its family, went away).
    pub(super) fn remove_live_relays(
        &self,
        transport: RelayTransport,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) {
        if let Ok(mut live) = self.live_relays.write() {
            for a in addrs {
                live.remove(&(transport, a));
            }
        }
    }

    /// True if `ip` is one of this server's relay addresses (bound or advertised).
    fn is_relay_ip(&self, ip: IpAddr) -> bool {
        [self.config.relay_v4, self.config.relay_v6]
            .into_iter()
            .flatten()
            .any(|r| r.bind == ip || r.advertise == ip)
    }

    /// The peer policy with the same-server exception: two clients of this server that
    /// both need a relay reach each other through it (client → ternd → ternd → client),
    /// even where the relay address is in a denied range. An explicit `--deny-peer` still
    /// wins, and only live relayed addresses are let through (for an IP-only check, the
    /// relay IP; every later check with a port is exact), in their exact form only, and
    /// only for the transport they relay (`transport`: a UDP relay at IP:P does not make a
    /// foreign TCP service on IP:P reachable, nor the other way round).
    ///
    /// `Ok(None)`: the policy allows `peer`. `Ok(Some(lease))`: only the exemption does,
    /// for as long as that live relay's [`Lease`] lasts; whatever relies on it (a channel)
    /// must stop when [`Shared::live_relay`] no longer gives the same lease.
    pub fn check_peer_policy(
        &self,
        peer: SocketAddr,
        with_port: bool,
        transport: RelayTransport,
    ) -> Result<Option<Lease>, Denied> {
        let verdict = if with_port {
            self.policy().check(peer)
        } else {
            self.policy().check_ip(peer.ip())
        };
        match verdict {
            Err(Denied::Explicit(n)) => Err(Denied::Explicit(n)),
            // The exception is for the exact address the relay sockets use: an
            // IPv4-embedding IPv6 form of a relay address (::ffff:, 6to4, Teredo, NAT64)
            // would be sent out of the IPv6 socket to somewhere else entirely.
            Err(e) if with_port => self.live_relay(transport, peer).map(Some).ok_or(e),
            Err(e) => {
                if self.is_relay_ip(peer.ip()) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Ok(()) => Ok(None),
        }
    }

    /// Allocations currently counted against the source of `ip` (its IPv4 address or
    /// IPv6 /64), all workers.
    pub fn ip_allocations(&self, ip: IpAddr) -> u32 {
        self.quotas
            .lock()
            .map(|q| {
                q.per_ip
                    .get(&limit::SourceKey::of(ip))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Takes `slots` allocations' worth of the quotas (2 for an Allocate that also
    /// reserves the next port), all or nothing.
    pub(super) fn quota_take(
        &self,
        user: &str,
        client: IpAddr,
        slots: u32,
    ) -> Result<(), QuotaExceeded> {
        let Ok(mut q) = self.quotas.lock() else {
            return Err(QuotaExceeded::Total);
        };
        let limits = self.limits();
        let over = |held: u32, limit: u32| limit != 0 && held.saturating_add(slots) > limit;
        if over(q.total, limits.total_quota) {
            return Err(QuotaExceeded::Total);
        }
        let source = limit::SourceKey::of(client);
        let per_ip = q.per_ip.get(&source).copied().unwrap_or(0);
        if over(per_ip, limits.max_allocations_per_ip) {
            return Err(QuotaExceeded::Ip);
        }
        let n = q.per_user.get(user).copied().unwrap_or(0);
        if over(n, limits.user_quota) {
            return Err(QuotaExceeded::User);
        }
        q.per_user.insert(user.to_string(), n + slots);
        q.per_ip.insert(source, per_ip + slots);
        q.total += slots;
        Ok(())
    }

    /// Removes reservation `token` if it is still held; the caller releases its port.
    /// Its quota slot is given back here.
    pub(super) fn take_reservation(&self, token: &[u8; 8]) -> Option<Reservation> {
        let r = self.reservations.lock().ok()?.remove(token)?;
        self.quota_release(&r.user, r.client);
        Some(r)
    }

    pub(super) fn quota_release(&self, user: &str, client: IpAddr) {
        if let Ok(mut q) = self.quotas.lock() {
            if let Some(n) = q.per_user.get_mut(user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    q.per_user.remove(user);
                }
            }
            let source = limit::SourceKey::of(client);
            if let Some(n) = q.per_ip.get_mut(&source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    q.per_ip.remove(&source);
                }
            }
            q.total = q.total.saturating_sub(1);
        }
    }

    // RFC 6062 CONNECTION-IDs, unique on the whole server.

    /// Registers a fresh connection id for `worker`; false if it is taken.
    pub(super) fn tcp_register(&self, id: u32, worker: u16) -> bool {
        let Ok(mut ids) = self.tcp_ids.lock() else {
            return false;
        };
        if ids.contains_key(&id) {
            return false;
        }
        ids.insert(id, worker);
        true
    }

    pub(super) fn tcp_unregister(&self, id: u32) {
        if let Ok(mut ids) = self.tcp_ids.lock() {
            ids.remove(&id);
        }
    }

    /// The worker owning connection `id`, if it is live.
    pub fn tcp_owner(&self, id: u32) -> Option<u16> {
        self.tcp_ids.lock().ok()?.get(&id).copied()
    }

    /// TCP connections with peers live on the whole server.
    pub fn tcp_connection_total(&self) -> usize {
        self.tcp_ids.lock().map(|i| i.len()).unwrap_or(0)
    }
}

//! State all workers share ([`Shared`]): settings, credentials, the peer policy, the
//! quotas and EVEN-PORT reservations, the live relayed addresses (the same-server
//! exemption), the RFC 6062 connection ids, and the run-time [`Limits`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::config::CoreConfig;
use super::limit;
use super::tcp::TcpRelayConfig;
use super::types::{Lease, RelayTransport};
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

/// Quotas and per-allocation limits, replaceable at run time (SIGHUP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent allocations per user; 0 = unlimited.
    pub user_quota: u32,
    /// Concurrent allocations on the whole server; 0 = unlimited.
    pub total_quota: u32,
    /// Concurrent allocations per source IP (IPv6: per /64); 0 = unlimited.
    pub max_allocations_per_ip: u32,
    /// Most permissions one allocation may hold.
    pub max_permissions: usize,
    /// Most channels one allocation may bind.
    pub max_channels: usize,
    /// Bandwidth limit per allocation and direction, bytes per second; 0 = unlimited.
    pub max_bps: u64,
}

impl Limits {
    /// The limits of a core configuration.
    pub fn of(c: &CoreConfig) -> Self {
        Self {
            user_quota: c.user_quota,
            total_quota: c.total_quota,
            max_allocations_per_ip: c.max_allocations_per_ip,
            max_permissions: c.max_permissions,
            max_channels: c.max_channels,
            max_bps: c.max_bps,
        }
    }
}

/// [`Limits`] as atomics: read with relaxed loads (no lock, no read-modify-write, so the
/// per-packet `max_bps` read stays cheap), written on reload.
#[derive(Debug)]
struct LiveLimits {
    user_quota: AtomicU32,
    total_quota: AtomicU32,
    max_allocations_per_ip: AtomicU32,
    max_permissions: AtomicUsize,
    max_channels: AtomicUsize,
    max_bps: AtomicU64,
}

impl LiveLimits {
    fn new(l: Limits) -> Self {
        Self {
            user_quota: AtomicU32::new(l.user_quota),
            total_quota: AtomicU32::new(l.total_quota),
            max_allocations_per_ip: AtomicU32::new(l.max_allocations_per_ip),
            max_permissions: AtomicUsize::new(l.max_permissions),
            max_channels: AtomicUsize::new(l.max_channels),
            max_bps: AtomicU64::new(l.max_bps),
        }
    }

    fn get(&self) -> Limits {
        Limits {
            user_quota: self.user_quota.load(Relaxed),
            total_quota: self.total_quota.load(Relaxed),
            max_allocations_per_ip: self.max_allocations_per_ip.load(Relaxed),
            max_permissions: self.max_permissions.load(Relaxed),
            max_channels: self.max_channels.load(Relaxed),
            max_bps: self.max_bps.load(Relaxed),
        }
    }

    fn set(&self, l: Limits) {
        self.user_quota.store(l.user_quota, Relaxed);
        self.total_quota.store(l.total_quota, Relaxed);
        self.max_allocations_per_ip
            .store(l.max_allocations_per_ip, Relaxed);
        self.max_permissions.store(l.max_permissions, Relaxed);
        self.max_channels.store(l.max_channels, Relaxed);
        self.max_bps.store(l.max_bps, Relaxed);
    }
}

/// State all workers share. Touched on Allocate and teardown only, never per packet.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: CoreConfig,
    /// Credential sources; replaced on SIGHUP ([`Shared::replace_credentials`]).
    store: RwLock<Arc<CredentialStore>>,
    /// The per-process nonce key.
    pub nonce_key: NonceKey,
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
            nonce_key,
            policy: RwLock::new(Arc::new(policy)),
            quotas: Mutex::new(Quotas::default()),
            live_relays: RwLock::new(HashMap::new()),
            last_lease: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            policy_generation: AtomicU64::new(0),
            reservations: Mutex::new(HashMap::new()),
            tcp: TcpRelayConfig::default(),
            tcp_ids: Mutex::new(HashMap::new()),
            limits: LiveLimits::new(Limits::of(&config)),
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

    /// The bandwidth limit in force (per packet: one relaxed load).
    #[inline]
    pub(super) fn max_bps(&self) -> u64 {
        self.limits.max_bps.load(Relaxed)
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

//! Startup: binding every listener, the core's shared state, the worker threads, and the
//! [`Handle`] that reloads, drains and stops them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use super::admin::View;
use super::relay::Reserved;
use super::worker::run_worker;
use super::{BindError, NetShared, gso_available, listen, sys};
use crate::auth::nonce::NonceKey;
use crate::config::Config;
use crate::policy::PeerPolicy;
use crate::stun::channel::ChannelRange;
use crate::turn::{CoreConfig, RelayAddress, Server, Shared, Stats, StatsSnapshot};

/// A running server: its bound addresses, counters, and the way to stop it.
#[derive(Debug)]
pub struct Handle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    relay_v4: Option<RelayAddress>,
    relay_v6: Option<RelayAddress>,
    view: Arc<View>,
    /// Service addresses and local IPs, for rebuilding the peer policy on reload.
    policy_base: (Vec<SocketAddr>, Vec<IpAddr>),
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// With a cluster: what the workers tell the cluster task, until it takes it.
    cluster_events: std::sync::Mutex<Option<mpsc::Receiver<super::ClusterEvent>>>,
    /// Held while the listeners are: a second ternd on one of them is refused.
    _locks: super::ListenLocks,
}

impl Handle {
    /// With a cluster, the workers' events for the cluster task (once; `None` after, and
    /// without a cluster).
    pub fn take_cluster_events(&self) -> Option<mpsc::Receiver<super::ClusterEvent>> {
        self.cluster_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The UDP addresses the server listens on (ports resolved when 0 was asked).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The TCP addresses the server listens on.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// The TURN-over-TLS addresses the server listens on.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// Reloads the TLS certificate and key (SIGHUP). Existing connections keep the old
    /// configuration; new handshakes use the new one. On error the old one stays.
    pub fn reload_tls(&self, cert: &std::path::Path, key: &std::path::Path) -> Result<(), String> {
        let cfg = turn_tls_config(cert, key)?;
        let mut slot = self
            .view
            .net
            .tls
            .write()
            .map_err(|_| "TLS configuration lock poisoned".to_string())?;
        *slot = Some(cfg);
        Ok(())
    }

    /// Where IPv4 relay sockets are bound and what is advertised.
    pub fn relay_v4(&self) -> Option<RelayAddress> {
        self.relay_v4
    }

    /// Where IPv6 relay sockets bind and what they advertise (`None`: no IPv6 relaying).
    pub fn relay_v6(&self) -> Option<RelayAddress> {
        self.relay_v6
    }

    /// The counters of all workers, summed.
    pub fn stats(&self) -> StatsSnapshot {
        self.view.worker_stats().into_iter().sum()
    }

    /// The server as metrics and operators see it.
    pub fn view(&self) -> Arc<View> {
        self.view.clone()
    }

    /// Applies a re-read configuration (SIGHUP): credential sources (secrets, secret file,
    /// users), the peer policy and the quotas and limits. Existing allocations keep their
    /// keys. Settings that shape
    /// sockets and workers need a restart. On error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let store = config
            .auth
            .credential_store(&config.realm)
            .map_err(|e| e.to_string())?;
        let policy = build_policy(config, &self.policy_base);
        self.view.shared.replace_credentials(store);
        self.view.shared.replace_policy(policy);
        self.view.shared.replace_limits(config.relay.limits);
        Ok(())
    }

    /// Starts draining (SIGTERM): new Allocates get 300 Try Alternate or 508, `/readyz`
    /// answers 503, existing allocations keep relaying.
    pub fn drain(&self) {
        self.view.ready.store(false, Ordering::Relaxed);
        self.view.shared.set_draining(true);
    }

    /// Allocations alive now, on all workers.
    pub fn active_allocations(&self) -> u64 {
        self.view
            .worker_stats()
            .iter()
            .map(|w| w.allocations_created.saturating_sub(w.allocations_ended))
            .sum()
    }

    /// Stops every worker (ending their allocations) and waits for them.
    pub fn shutdown(self) {
        self.view.ready.store(false, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Listeners could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A credential could not be prepared (SASLprep).
    #[error("credentials: {0}")]
    Credentials(#[from] crate::auth::PrepError),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The OS random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
    /// A check at start refused what could not work.
    #[error(transparent)]
    Preflight(#[from] super::PreflightError),
}

/// The rustls configuration for TURN over TLS: the certificate chain and key, TLS 1.2 and
/// 1.3, ALPN `stun.turn` / `stun.nat-discovery` (RFC 7443) offered, not required.
pub fn turn_tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let base = crate::tls::server_config(cert, key)?;
    let mut c = (*base).clone();
    c.alpn_protocols = vec![b"stun.turn".to_vec(), b"stun.nat-discovery".to_vec()];
    Ok(Arc::new(c))
}

/// The host's primary IPv4 address: the source address of a route to a documentation
/// address (connecting a UDP socket sends nothing).
fn primary_ipv4() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// The host's primary global IPv6 address, found the same way; `None` on hosts without
/// IPv6 routing.
fn primary_ipv6() -> Option<std::net::Ipv6Addr> {
    let s = std::net::UdpSocket::bind("[::]:0").ok()?;
    s.connect("[2001:db8::1]:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V6(ip) if !ip.is_unspecified() && !ip.is_loopback() => Some(ip),
        _ => None,
    }
}

/// Where relay sockets bind and what they advertise, per family.
fn relay_addresses(config: &Config) -> (Option<RelayAddress>, Option<RelayAddress>) {
    let ext = |v6: bool| {
        config
            .relay
            .external_ips
            .iter()
            .find(|e| e.public.is_ipv6() == v6)
    };
    let configured = |v6: bool| {
        config
            .relay
            .relay_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv6() == v6)
    };
    let v4_bind = ext(false)
        .and_then(|e| e.private)
        .or_else(|| configured(false))
        .or_else(|| {
            config
                .listen
                .iter()
                .map(|a| a.ip())
                .find(|ip| ip.is_ipv4() && !ip.is_unspecified())
        })
        .or_else(|| primary_ipv4().map(IpAddr::V4))
        .unwrap_or_else(|| {
            tracing::warn!("no IPv4 address found for relaying; using 127.0.0.1 (set --relay-ip)");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        });
    let v4 = RelayAddress {
        bind: v4_bind,
        advertise: ext(false).map(|e| e.public).unwrap_or(v4_bind),
    };
    // IPv6 relays: the configured address, else a specific IPv6 listen address, else the
    // host's primary IPv6 address; none on a host without IPv6 (Allocates asking for
    // IPv6 then get 440).
    let v6 = ext(true)
        .and_then(|e| e.private)
        .or_else(|| configured(true))
        .or_else(|| {
            config
                .listen
                .iter()
                .map(|a| a.ip())
                .find(|ip| ip.is_ipv6() && !ip.is_unspecified())
        })
        .or_else(|| primary_ipv6().map(IpAddr::V6))
        .map(|bind| RelayAddress {
            bind,
            advertise: ext(true).map(|e| e.public).unwrap_or(bind),
        });
    (Some(v4), v6)
}

/// The peer policy of `config` for a server whose own service addresses and local IPs are
/// `base` (fixed at start).
fn build_policy(config: &Config, base: &(Vec<SocketAddr>, Vec<IpAddr>)) -> PeerPolicy {
    PeerPolicy::new(
        config.relay.allow_peer.clone(),
        config.relay.deny_peer.clone(),
        base.0.clone(),
    )
    .with_local_ips(base.1.clone())
}

/// Binds every listener and starts the workers. Returns once all sockets are bound, so
/// bind errors come back here rather than from a thread.
///
/// The peer policy protects the server's own service ports as bound: the STUN/TURN, TLS
/// and RFC 5780 listeners bound here, and `config.http.listen`, which the HTTP endpoint's
/// caller binds. That one is taken as given, so a caller that binds it on port 0 passes its
/// address as bound (the `ternd` binary does); port 0 would protect nothing.
pub fn start(config: &Config) -> Result<Handle, StartError> {
    match sys::raise_fd_limit() {
        Ok(n) => tracing::info!(limit = n, "file descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the file descriptor limit"),
    }
    let workers = config.workers.max(1);
    let udp_buffers = listen::SocketBuffers {
        recv: config.udp_recv_buffer,
        send: config.udp_send_buffer,
    };
    // An API-only cluster node binds no STUN/TURN listener: its one worker idles.
    let api_only = config.cluster.api_only && config.cluster.redis_url.is_some();
    let workers = if api_only { 1 } else { workers };
    let mut bound = if api_only {
        listen::Bound {
            udp_addrs: Vec::new(),
            tcp_addrs: Vec::new(),
            tls_addrs: Vec::new(),
            stream_origins: Vec::new(),
            per_worker: vec![listen::WorkerSockets::default()],
        }
    } else {
        listen::bind_all(&config.listen, workers, udp_buffers)?
    };
    if let Some((_, s)) = bound.per_worker.first().and_then(|w| w.udp.first()) {
        udp_buffers.log_granted(s);
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) if !config.tls_listen.is_empty() && !api_only => {
            Some(turn_tls_config(c, k).map_err(StartError::Tls)?)
        }
        _ => None,
    };
    if tls.is_some() {
        listen::bind_tls(&mut bound, &config.tls_listen)?;
    }
    // RFC 5780: the primary listener (its port as bound) and the alternate IP and port,
    // with UDP listeners on the three other combinations.
    let rfc5780 = match (config.rfc5780_primary(), config.alt_ip) {
        (Some(p), Some(alt_ip)) if !api_only => {
            let primary = bound
                .stream_origins
                .iter()
                .find(|(configured, _)| *configured == p)
                .map_or(p, |&(_, actual)| actual);
            let alt_port = match config.alt_port {
                Some(port) => port,
                None => primary
                    .port()
                    .checked_add(1)
                    .ok_or(StartError::Bind(BindError::NothingBound))?,
            };
            let r = crate::turn::Rfc5780 {
                primary,
                alternate: SocketAddr::new(alt_ip, alt_port),
            };
            listen::bind_udp(&mut bound, &r.addresses()[1..], udp_buffers)?;
            tracing::info!(primary = %r.primary, alternate = %r.alternate, "RFC 5780 NAT behaviour discovery on");
            Some(r)
        }
        _ => None,
    };
    let (relay_v4, relay_v6) = relay_addresses(config);
    let locks = super::ListenLocks::take(
        &[
            ("udp", &bound.udp_addrs),
            ("tcp", &bound.tcp_addrs),
            ("tls", &bound.tls_addrs),
        ]
        .into_iter()
        .flat_map(|(t, addrs)| addrs.iter().map(move |&a| (t, a)))
        .collect::<Vec<_>>(),
    )?;
    if !api_only {
        let from_external = |r: &RelayAddress| {
            config
                .relay
                .external_ips
                .iter()
                .any(|e| e.private == Some(r.bind))
        };
        let relays: Vec<(RelayAddress, bool)> = [relay_v4, relay_v6]
            .into_iter()
            .flatten()
            .map(|r| (r, from_external(&r)))
            .collect();
        super::preflight::check_relays(&relays, config.tcp_relay)?;
    }

    // Every address as bound (port 0 resolved): the UDP/TCP and RFC 5780 listeners, TLS,
    // and the HTTP endpoint (bound by the caller, see above).
    let mut service: Vec<SocketAddr> = bound.udp_addrs.clone();
    service.extend(bound.tls_addrs.iter().copied());
    if let Some(http) = config.http.listen.filter(|a| a.port() == 0) {
        tracing::warn!(%http, "http.listen has port 0: pass the HTTP listener's bound address, or its port is not protected from relaying");
    }
    service.extend(config.http.listen);
    let mut local_ips: Vec<IpAddr> = service.iter().map(|a| a.ip()).collect();
    for r in [relay_v4, relay_v6].into_iter().flatten() {
        local_ips.push(r.bind);
        local_ips.push(r.advertise);
    }
    let policy_base = (service, local_ips);
    let policy = build_policy(config, &policy_base);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let core = CoreConfig {
        software: config.software.clone(),
        stun_backward_compatibility: config.stun_backward_compatibility,
        channel_range: ChannelRange::new(config.relay.rfc5766_channel_numbers),
        relay_v4,
        relay_v6,
        ports: config.relay.ports,
        default_lifetime: config.relay.default_allocation_lifetime,
        max_lifetime: config.relay.max_allocation_lifetime,
        limits: config.relay.limits,
        unauth_rate_limit: config.relay.unauth_rate_limit,
        unauth_rate_burst: config.relay.unauth_rate_burst,
        nonce_lifetime: config.auth.nonce_lifetime,
        clock_anchor: (Instant::now(), unix),
        alternate_server: config.alternate_server,
        rfc5780,
        cluster_admission: config.cluster.redis_url.is_some(),
    };
    let store = config.auth.credential_store(&config.realm)?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| StartError::Random(e.to_string()))?;
    let nonce_key = NonceKey::from_bytes(key);
    let tcp = crate::turn::TcpRelayConfig {
        enabled: config.tcp_relay,
        ..Default::default()
    };
    let shared = Arc::new(Shared::new(core, store, nonce_key, policy).with_tcp_relay(tcp));
    // With a cluster: the queue to the cluster task, and the capacity past which new
    // allocations are redirected.
    let (cluster_sink, cluster_events) = match config.cluster.redis_url {
        Some(_) => {
            let (tx, rx) = mpsc::channel(super::CLUSTER_QUEUE);
            shared.update_cluster(|v| v.set_capacity(config.cluster.capacity));
            let sink = super::admit::ClusterSink {
                tx,
                fallback_grant: config.cluster.on_unavailable == crate::config::OnUnavailable::Open,
            };
            (Some(sink), Some(rx))
        }
        None => (None, None),
    };
    let udp_gso = config.udp_gso && gso_available();
    tracing::info!(
        gso = udp_gso,
        configured = config.udp_gso,
        "UDP segmentation offload for relayed bursts"
    );
    let net = Arc::new(NetShared {
        udp_gso,
        udp_buffers,
        channel_range: ChannelRange::new(config.relay.rfc5766_channel_numbers),
        max_frame_size: config.max_frame_size,
        tcp_idle_timeout: config.tcp_idle_timeout,
        max_tcp_connections: config.max_tcp_connections,
        tcp_connections: AtomicUsize::new(0),
        tls: std::sync::RwLock::new(tls),
        tls_handshake_timeout: config.tls_handshake_timeout,
        max_connections_per_ip: config.max_connections_per_ip,
        proxy_listeners: bound
            .stream_origins
            .iter()
            .filter(|(configured, _)| config.proxy_protocol.contains(configured))
            .map(|&(_, actual)| actual)
            .collect(),
        per_ip: std::sync::Mutex::new(HashMap::new()),
        cluster: cluster_sink,
    });
    let reserved: Reserved = Arc::default();
    let (tx, rx) = watch::channel(false);
    let mut stats = Vec::new();
    let mut admin = Vec::new();
    let mut threads = Vec::new();
    for (i, mut sockets) in bound.per_worker.into_iter().enumerate() {
        if config.tcp_relay && i > 0 {
            // RFC 6062: a data connection's ConnectionBind must reach the worker that owns
            // its allocation, so one worker serves every TCP/TLS client (UDP still spreads).
            sockets.tcp.clear();
            sockets.tls.clear();
        }
        let worker_stats = Arc::new(Stats::default());
        stats.push(worker_stats.clone());
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| StartError::Random(e.to_string()))?;
        let mut server = Server::new(shared.clone(), worker_stats, seed);
        server.set_worker_index(i as u16);
        let (admin_tx, admin_rx) = mpsc::unbounded_channel();
        admin.push(admin_tx);
        let net = net.clone();
        let reserved = reserved.clone();
        let rx = rx.clone();
        let t = std::thread::Builder::new()
            .name(format!("ternd-worker-{i}"))
            .spawn(move || run_worker(i, sockets, server, net, reserved, admin_rx, rx))
            .map_err(|e| StartError::Bind(BindError::Thread(e)))?;
        threads.push(t);
    }
    let view = Arc::new(View {
        stats,
        admin,
        shared,
        net,
        ready: std::sync::atomic::AtomicBool::new(true),
        more_metrics: std::sync::RwLock::new(None),
    });
    Ok(Handle {
        udp: bound.udp_addrs,
        tcp: bound.tcp_addrs,
        tls: bound.tls_addrs,
        relay_v4,
        relay_v6,
        view,
        policy_base,
        shutdown: tx,
        threads,
        cluster_events: std::sync::Mutex::new(cluster_events),
        _locks: locks,
    })
}

//! The HTTP endpoint: `POST|GET /v1/ice-servers` (access token → TURN
//! credentials), `/healthz`, `/readyz`, `/metrics` and the admin API.
//!
//! [`start`] serves on an already-bound listener from a dedicated thread
//! (`ternd-http`) that runs its own single-threaded tokio runtime; the relay's
//! workers are never touched. The server stops when the `shutdown` watch
//! flips to `true` (or its sender is dropped): it stops accepting, lets
//! in-flight requests finish (at most [`DRAIN_TIMEOUT`]) and the thread ends;
//! [`HttpHandle::join`] waits for that.
//!
//! Limits (all per connection unless said otherwise): request head at most
//! [`MAX_HEAD_BYTES`] (hyper answers 431 above), at most 64 headers, a bearer
//! token at most [`MAX_TOKEN_BYTES`] (401 above), a request body at most
//! [`MAX_BODY_BYTES`] (413); the head must arrive within
//! [`HEADER_TIMEOUT`] (slowloris; also between keep-alive requests) and a
//! connection lives at most [`MAX_CONNECTION_AGE`]. At most
//! [`MAX_CONNECTIONS`] connections at once, at most `max_connections_per_ip`
//! per source IP (IPv6: per /64); when every slot is taken, a new connection
//! takes the slot of the one idle longest (no request in flight), so idle
//! connections are shed first ([`conns`]). Each request first takes a token
//! from the per-source-IP bucket (`rate_limit`/`rate_burst`) → 429. Behind a
//! reverse proxy all requests and connections share the proxy's address.

mod admin;
mod conns;
mod ice_servers;
pub mod ratelimit;
mod respond;
pub mod token;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use admin::admin;
use ice_servers::ice_servers;
use ratelimit::RateLimiter;
use respond::{Resp, cors_headers, error, method_not_allowed, not_found, response};
use token::Verifier;

/// What the HTTP server needs from the running relay.
pub trait Backend: Send + Sync + 'static {
    /// Prometheus text exposition for GET /metrics (I implement it).
    fn metrics(&self) -> String;
    /// True once listeners are bound and the server is not draining (GET /readyz).
    fn ready(&self) -> bool;
    /// Admin: list sessions (JSON array body), kill one, kill a user's; None = admin API not available.
    fn admin(&self) -> Option<&dyn Admin>;
}

/// The admin operations behind `/admin/...`.
pub trait Admin: Send + Sync {
    /// All sessions, as a JSON array (`GET /admin/sessions`).
    fn sessions(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = serde_json::Value> + Send + '_>>;
    /// Ends session `id`; false = no such session (`DELETE /admin/sessions/{id}`).
    fn kill_session(
        &self,
        id: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;
    /// Ends every session of `user`; returns how many
    /// (`DELETE /admin/users/{user}/sessions`).
    fn kill_user(
        &self,
        user: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send + '_>>;
}

/// A future the traits here return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What the endpoint needs of a cluster (`crate::cluster::Cluster` implements it): the
/// nodes to name in `/v1/ice-servers`, and the fleet-wide admin operations. Errors are
/// the cluster being unavailable, said in words.
pub trait Fleet: Send + Sync {
    /// This node's id.
    fn node_id(&self) -> &str;
    /// The caller's region: `named` (the `region` query parameter), else the configured
    /// header (`header` reads one), else the prefix table's entry for `caller`.
    fn region_of(
        &self,
        named: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
        caller: IpAddr,
    ) -> Option<String>;
    /// The `stun:` and the `turn:`/`turns:` URLs of the nodes to name for a caller in
    /// `region`, best first; both empty when no node takes allocations.
    fn ice_urls(&self, region: Option<&str>) -> (Vec<String>, Vec<String>);
    /// The registry (JSON array of node entries).
    fn nodes(&self) -> serde_json::Value;
    /// The cluster's sessions, optionally of one user or one node (JSON array).
    fn sessions<'a>(
        &'a self,
        user: Option<&'a str>,
        node: Option<&'a str>,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>>;
    /// Ends session `id` on `node` (true: ended here, or asked of that node).
    fn end_session<'a>(&'a self, node: &'a str, id: u64) -> BoxFuture<'a, Result<bool, String>>;
    /// Revokes `user` on every node; the revocation's time, UNIX ms.
    fn revoke<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<u64, String>>;
    /// Asks `node` to drain.
    fn drain<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// Everything the endpoint needs to mint credentials, built from Config + the bound listeners.
#[derive(Clone)]
pub struct IceSettings {
    /// Public host names or IPs for URLs (IPv6 literals with or without
    /// brackets); empty = `127.0.0.1`.
    pub hosts: Vec<String>,
    /// Port of the UDP/TCP listeners (`stun:`, `turn:` URLs).
    pub udp_tcp_port: u16,
    /// Port of the TURN/TLS listener; `turns:` URLs only when `Some`.
    pub tls_port: Option<u16>,
    /// Current REST secret; empty = the endpoint answers 503.
    pub secret: String,
    /// REST username separator (`auth.rest_separator`).
    pub separator: char,
    /// Configured credential lifetime (`http.credential_ttl`).
    pub ttl: std::time::Duration,
    /// With a cluster: the registry the endpoint names nodes from (the least-loaded
    /// healthy ones instead of this node), and the fleet-wide admin API.
    pub cluster: Option<Arc<dyn Fleet>>,
}

impl std::fmt::Debug for IceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceSettings")
            .field("hosts", &self.hosts)
            .field("udp_tcp_port", &self.udp_tcp_port)
            .field("tls_port", &self.tls_port)
            .field("secret", &"<redacted>")
            .field("separator", &self.separator)
            .field("ttl", &self.ttl)
            .field(
                "cluster",
                &self.cluster.as_ref().map(|c| c.node_id().to_owned()),
            )
            .finish()
    }
}

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Largest bearer token accepted (longer → 401 `invalid_token`).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Time allowed for a request head to arrive, on a new connection and between keep-alive
/// requests. Short, so that silent connections give their slot back soon.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a TLS handshake or a request body.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one (keep-alive) connection.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// Concurrent connections served (in all; per source IP see `http.max_connections_per_ip`).
/// Declared with the configuration, which bounds `http.max_connections_per_ip` by it.
pub use crate::config::MAX_HTTP_CONNECTIONS as MAX_CONNECTIONS;
/// How long in-flight requests may take after shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running HTTP server.
#[derive(Debug)]
pub struct HttpHandle {
    addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl HttpHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server has stopped (after `shutdown` flipped to true).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Starts the HTTP server on an already-bound std listener (so bind errors
/// surface in the caller); runs until `shutdown` flips to true (or its
/// sender is dropped), on its own thread with a current-thread tokio
/// runtime. Fails (`InvalidInput`) if a key or certificate file of `config`
/// cannot be loaded — [`Config::load_files`](crate::config::Config::load_files) has
/// already checked them, so this only happens if they changed since.
pub fn start(
    listener: std::net::TcpListener,
    config: &crate::config::HttpConfig,
    ice: IceSettings,
    backend: Arc<dyn Backend>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<HttpHandle> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let verifier = Verifier::from_config(config).map_err(invalid)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key).map_err(|e| invalid(e.to_string()))?,
        )),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "http.tls_cert and http.tls_key must be set together".to_owned(),
            ));
        }
    };
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = Arc::new(State {
        verifier,
        ice,
        backend,
        limiter: RateLimiter::new(config.rate_limit, config.rate_burst),
        cors: config.cors_origins.clone(),
        admin_hash: config.admin_token.as_deref().map(sha256),
        conns: conns::Conns::new(MAX_CONNECTIONS, config.max_connections_per_ip),
    });
    let thread = std::thread::Builder::new()
        .name("ternd-http".to_owned())
        .spawn(move || runtime.block_on(serve(listener, tls, state, shutdown)))?;
    Ok(HttpHandle { addr, thread })
}

struct State {
    verifier: Verifier,
    ice: IceSettings,
    backend: Arc<dyn Backend>,
    limiter: RateLimiter,
    cors: Vec<String>,
    admin_hash: Option<[u8; 32]>,
    conns: Arc<conns::Conns>,
}

fn sha256(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// Resolves when shutdown is requested (true, or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "HTTP listener unusable");
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    'accept: loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // A slot: a free one, else the one idle longest; wait only while every
        // connection has a request in flight.
        let slot = loop {
            match state.conns.admit(peer.ip()) {
                conns::Admit::Slot(s) => break s,
                conns::Admit::Refused => {
                    tracing::debug!(%peer, "HTTP connection refused: too many from this source");
                    continue 'accept;
                }
                conns::Admit::Full => tokio::select! {
                    () = state.conns.freed() => {}
                    () = stopped(&mut shutdown) => break 'accept,
                },
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let rx = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let conn = slot.state().clone();
            match tls {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(stream));
                    tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(s)) => serve_connection(s, peer, state, conn, rx).await,
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        },
                        () = conn.shed() => tracing::debug!(%peer, "idle HTTP connection shed"),
                    }
                }
                None => serve_connection(stream, peer, state, conn, rx).await,
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    state: Arc<State>,
    conn_state: Arc<conns::ConnState>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = conn_state.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        // Busy (not to be shed) from the complete head until the response is ready.
        let busy = in_flight.request();
        async move {
            let r = handle(&state, peer.ip(), req).await;
            drop(busy);
            Ok::<_, Infallible>(r)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(2 * MAX_HEAD_BYTES)
        .max_headers(64)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let age = tokio::time::sleep(MAX_CONNECTION_AGE);
    tokio::pin!(age);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            return;
        }
        () = stopped(&mut shutdown) => {}
        () = &mut age => {}
        () = conn_state.shed() => {
            // Its slot went to a new connection. Idle (the usual case: only idle ones are
            // chosen): close now; a request that began since finishes first.
            if !conn_state.busy() {
                tracing::debug!(%peer, "idle HTTP connection shed");
                return;
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
}

// ---------------------------------------------------------------------------
// Responses

async fn handle(state: &State, ip: IpAddr, req: Request<Incoming>) -> Resp {
    if !state.limiter.allow(ip) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let path = req.uri().path().to_owned();
    let get_like = req.method() == Method::GET || req.method() == Method::HEAD;
    match path.as_str() {
        "/healthz" if get_like => response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" if get_like => {
            if state.backend.ready() {
                response(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
            } else {
                response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "not ready\n",
                )
            }
        }
        "/metrics" if get_like => response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.backend.metrics(),
        ),
        "/healthz" | "/readyz" | "/metrics" => method_not_allowed("GET, HEAD"),
        "/v1/ice-servers" => {
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .filter(|o| state.cors.iter().any(|c| c == o))
                .map(str::to_owned);
            let mut r = ice_servers(state, ip, req).await;
            cors_headers(r.headers_mut(), origin.as_deref());
            r
        }
        p if p == "/admin" || p.starts_with("/admin/") => admin(state, req).await,
        _ => not_found(),
    }
}

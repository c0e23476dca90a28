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

mod conns;
pub mod ratelimit;
pub mod tls;
pub mod token;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::ice::{IceServer, url_host};
use ratelimit::RateLimiter;
use token::{TokenError, Verifier};

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
pub const MAX_CONNECTIONS: usize = 1024;
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
            tls::server_config(cert, key).map_err(|e| invalid(e.to_string()))?,
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

type Resp = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    response(status, "application/json", body)
}

fn error(status: StatusCode, code: &str, description: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": code, "error_description": description}),
    )
}

fn not_found() -> Resp {
    error(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// RFC 6750 §3.1 error: 401 `invalid_token` or 403 `insufficient_scope`.
fn bearer_error(err: &TokenError, scope: Option<&str>) -> Resp {
    let (status, code, description) = match err {
        TokenError::Invalid(d) => (StatusCode::UNAUTHORIZED, "invalid_token", *d),
        TokenError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the required scope",
        ),
    };
    let mut r = error(status, code, description);
    let mut challenge =
        format!("Bearer realm=\"ternd\", error=\"{code}\", error_description=\"{description}\"");
    if let (TokenError::InsufficientScope, Some(scope)) = (err, scope) {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

// ---------------------------------------------------------------------------
// Routing

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
            let mut r = ice_servers(state, req).await;
            cors_headers(r.headers_mut(), origin.as_deref());
            r
        }
        p if p == "/admin" || p.starts_with("/admin/") => admin(state, req).await,
        _ => not_found(),
    }
}

fn cors_headers(h: &mut HeaderMap, allowed_origin: Option<&str>) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(v) = allowed_origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
}

/// The response shape of `/v1/ice-servers`.
#[derive(Serialize)]
struct IceResponse {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<IceServer>,
    #[serde(rename = "expiresOn")]
    expires_on: String,
    ttl: u64,
}

async fn ice_servers(state: &State, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        // CORS preflight; the allow headers are added only for listed origins.
        let listed = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| state.cors.iter().any(|c| c == o));
        let mut r = response(StatusCode::NO_CONTENT, "text/plain", Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        if listed {
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return r;
    }
    if method != Method::GET && method != Method::POST {
        return method_not_allowed("GET, POST, OPTIONS");
    }
    if state.verifier.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the credentials endpoint is not configured (no token keys)",
        );
    }
    let token = match bearer_token(req.headers()) {
        Ok(t) => t.to_owned(),
        Err(e) => return bearer_error(&e, None),
    };
    if method == Method::POST
        && let Err(r) = drain_body(req).await
    {
        return r;
    }
    let verified = match state.verifier.verify(&token) {
        Ok(v) => v,
        Err(e) => return bearer_error(&e, state.verifier.scope()),
    };
    if state.ice.secret.is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "no REST secret configured",
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = verified.exp.saturating_sub(now);
    if left == 0 {
        return bearer_error(&TokenError::Invalid("token expired"), None);
    }
    let ttl = state.ice.ttl.as_secs().max(1).min(left);
    let expiry = now + ttl;
    let (username, credential) = crate::auth::rest::credentials(
        &state.ice.secret,
        &verified.sub,
        expiry,
        state.ice.separator,
    );
    let body = IceResponse {
        ice_servers: ice_server_list(&state.ice, username, credential),
        expires_on: humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(expiry))
            .to_string(),
        ttl,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = response(StatusCode::OK, "application/json", bytes);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// `stun:` URLs, then `turn:` (UDP, TCP) and `turns:` URLs with credentials.
fn ice_server_list(ice: &IceSettings, username: String, credential: String) -> Vec<IceServer> {
    let hosts: Vec<String> = if ice.hosts.is_empty() {
        vec!["127.0.0.1".to_owned()]
    } else {
        ice.hosts.iter().map(|h| url_host(h)).collect()
    };
    let port = ice.udp_tcp_port;
    let stun = hosts.iter().map(|h| format!("stun:{h}:{port}")).collect();
    let mut turn = Vec::new();
    for h in &hosts {
        turn.push(format!("turn:{h}:{port}?transport=udp"));
        turn.push(format!("turn:{h}:{port}?transport=tcp"));
    }
    if let Some(tls_port) = ice.tls_port {
        for h in &hosts {
            turn.push(format!("turns:{h}:{tls_port}?transport=tcp"));
        }
    }
    vec![
        IceServer {
            urls: stun,
            username: None,
            credential: None,
        },
        IceServer {
            urls: turn,
            username: Some(username),
            credential: Some(credential),
        },
    ]
}

/// The bearer token of the `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values
        .next()
        .ok_or(TokenError::Invalid("missing bearer token"))?;
    if values.next().is_some() {
        return Err(TokenError::Invalid("more than one Authorization header"));
    }
    if value.len() > MAX_TOKEN_BYTES + 16 {
        return Err(TokenError::Invalid("token too large"));
    }
    let value = value
        .to_str()
        .map_err(|_| TokenError::Invalid("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(TokenError::Invalid(
        "expected Authorization: Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Invalid(
            "expected Authorization: Bearer <token>",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Invalid("missing bearer token"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid("token too large"));
    }
    Ok(token)
}

/// Reads (and discards) a request body of at most [`MAX_BODY_BYTES`].
async fn drain_body(req: Request<Incoming>) -> Result<(), Resp> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    match tokio::time::timeout(IO_TIMEOUT, body.collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "request body timed out",
        )),
    }
}

// ---------------------------------------------------------------------------
// Admin API

async fn admin(state: &State, req: Request<Incoming>) -> Resp {
    let Some(expected) = &state.admin_hash else {
        return not_found();
    };
    let authorized = bearer_token(req.headers())
        .is_ok_and(|t| bool::from(sha256(t).as_slice().ct_eq(expected.as_slice())));
    if !authorized {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin API: missing or wrong bearer token",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ternd-admin\""),
        );
        return r;
    }
    let backend = state.backend.clone();
    let Some(admin) = backend.admin() else {
        return not_found();
    };
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    match segments.as_slice() {
        ["admin", "sessions"] => {
            if method != Method::GET {
                return method_not_allowed("GET");
            }
            json(StatusCode::OK, &admin.sessions().await)
        }
        ["admin", "sessions", id] => {
            if method != Method::DELETE {
                return method_not_allowed("DELETE");
            }
            let Ok(id) = id.parse::<u64>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "session id must be a number",
                );
            };
            if admin.kill_session(id).await {
                json(StatusCode::OK, &serde_json::json!({"killed": 1}))
            } else {
                error(StatusCode::NOT_FOUND, "not_found", "no such session")
            }
        }
        ["admin", "users", user, "sessions"] => {
            if method != Method::DELETE {
                return method_not_allowed("DELETE");
            }
            let Some(user) = percent_decode(user) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "user must be percent-encoded UTF-8",
                );
            };
            let n = admin.kill_user(user).await;
            json(StatusCode::OK, &serde_json::json!({"killed": n}))
        }
        _ => not_found(),
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("alice").as_deref(), Some("alice"));
        assert_eq!(percent_decode("a%20b%3A1").as_deref(), Some("a b:1"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer_token(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), Ok("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&h), Ok("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer_token(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert!(bearer_token(&h).is_err());
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(bearer_token(&h).is_err());
    }

    #[test]
    fn urls() {
        let ice = IceSettings {
            hosts: vec!["turn.example.org".into(), "2001:db8::1".into()],
            udp_tcp_port: 3478,
            tls_port: Some(5349),
            secret: "s".into(),
            separator: ':',
            ttl: Duration::from_secs(60),
        };
        let list = ice_server_list(&ice, "u".into(), "p".into());
        assert_eq!(
            list[0].urls,
            vec!["stun:turn.example.org:3478", "stun:[2001:db8::1]:3478"]
        );
        assert_eq!(list[1].urls.len(), 6);
        assert_eq!(list[1].urls[4], "turns:turn.example.org:5349?transport=tcp");
        let ice = IceSettings {
            tls_port: None,
            ..ice
        };
        let list = ice_server_list(&ice, "u".into(), "p".into());
        assert!(list[1].urls.iter().all(|u| u.starts_with("turn:")));
    }
}

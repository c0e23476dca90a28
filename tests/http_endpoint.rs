//! The HTTP endpoint (`ternd::http::start`) over loopback: `/v1/ice-servers`
//! with HS256, EdDSA, ES256 and RS256 access tokens and every kind of bad
//! token, CORS, the rate limit, health, the admin API, request limits, TLS
//! and `ternd token issue`. Keys are made with `openssl` in a temp directory.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use ternd::config::HttpConfig;
use ternd::http::{Admin, Backend, HttpHandle, IceSettings};

const SECRET: &str = "rest-secret";
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Stub relay

#[derive(Default)]
struct StubAdmin {
    killed_users: Mutex<Vec<String>>,
}

impl Admin for StubAdmin {
    fn sessions(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send + '_>> {
        Box::pin(async { json!([{"id": 7, "user": "alice"}]) })
    }
    fn kill_session(
        &self,
        id: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(async move { id == 7 })
    }
    fn kill_user(
        &self,
        user: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send + '_>> {
        Box::pin(async move {
            self.killed_users.lock().expect("lock").push(user);
            2
        })
    }
}

struct Stub {
    ready: AtomicBool,
    admin: Option<StubAdmin>,
}

impl Backend for Stub {
    fn metrics(&self) -> String {
        "# TYPE ternd_up gauge\nternd_up 1\n".to_owned()
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn admin(&self) -> Option<&dyn Admin> {
        self.admin.as_ref().map(|a| a as &dyn Admin)
    }
}

struct Server {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    handle: Option<HttpHandle>,
    backend: Arc<Stub>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            h.join();
        }
    }
}

fn ice(tls_port: Option<u16>) -> IceSettings {
    IceSettings {
        hosts: vec!["127.0.0.1".to_owned()],
        udp_tcp_port: 3478,
        tls_port,
        secret: SECRET.to_owned(),
        separator: ':',
        ttl: Duration::from_secs(600),
        cluster: None,
    }
}

fn hs_config(secret: &str) -> HttpConfig {
    HttpConfig {
        token_hs256_secrets: vec![secret.to_owned()],
        rate_limit: 0,
        ..HttpConfig::default()
    }
}

fn start_with(config: HttpConfig, ice: IceSettings, admin: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let backend = Arc::new(Stub {
        ready: AtomicBool::new(false),
        admin: admin.then(StubAdmin::default),
    });
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = ternd::http::start(listener, &config, ice, backend.clone(), rx).expect("start");
    Server {
        addr: handle.local_addr(),
        stop,
        handle: Some(handle),
        backend,
    }
}

fn start(config: HttpConfig) -> Server {
    start_with(config, ice(None), false)
}

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 client

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn exchange<S: std::io::Read + std::io::Write>(stream: &mut S, request: &[u8]) -> Resp {
    stream.write_all(request).expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    s
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    exchange(&mut connect(addr), req.as_bytes())
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], "")
}

fn ice_request(addr: SocketAddr, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &auth)],
        "",
    )
}

// ---------------------------------------------------------------------------
// Tokens and keys

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(sub: &str, exp: u64) -> Value {
    json!({"sub": sub, "exp": exp, "iat": now(), "aud": "ternd"})
}

fn hs256(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("key");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("encode")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ternd-http-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn openssl(&self, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&self.0)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes `NAME.key` (PKCS#8 private) and `NAME.pub` (SPKI public).
fn keypair(dir: &TempDir, name: &str, genpkey: &[&str]) {
    let key = format!("{name}.key");
    let public = format!("{name}.pub");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", &key]);
    dir.openssl(&args);
    dir.openssl(&["pkey", "-in", &key, "-pubout", "-out", &public]);
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------
// Checks

/// Asserts a 200 answer with credentials for `sub` and returns (body, ttl).
#[track_caller]
fn assert_credentials(r: &Resp, sub: &str, max_ttl: u64) -> Value {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let servers = v["iceServers"].as_array().expect("iceServers");
    assert_eq!(servers.len(), 2, "{v}");
    assert_eq!(servers[0], json!({"urls": ["stun:127.0.0.1:3478"]}));
    let turn = &servers[1];
    let username = turn["username"].as_str().expect("username");
    let credential = turn["credential"].as_str().expect("credential");
    assert_eq!(ternd::auth::rest::password(SECRET, username), credential);
    let (expiry, user) = ternd::auth::rest::parse_username(username, ':').expect("REST username");
    assert_eq!(user, sub);
    let ttl = v["ttl"].as_u64().expect("ttl");
    assert!(ttl >= 1 && ttl <= max_ttl, "ttl {ttl} > {max_ttl}");
    let t = now();
    assert!(
        expiry >= t + ttl - 2 && expiry <= t + ttl + 2,
        "{expiry} vs {t}+{ttl}"
    );
    let expires_on =
        humantime::parse_rfc3339(v["expiresOn"].as_str().expect("expiresOn")).expect("RFC 3339");
    assert_eq!(
        expires_on
            .duration_since(UNIX_EPOCH)
            .expect("epoch")
            .as_secs(),
        expiry
    );
    v
}

#[track_caller]
fn assert_invalid_token(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {r:?}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    let v = r.json();
    assert_eq!(v["error"], "invalid_token", "{what}");
    assert!(v["error_description"].is_string(), "{what}");
    assert!(!r.body.contains("credential"), "{what}");
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn hs256_token_gets_credentials() {
    let s = start(hs_config("k1"));
    // Token shorter-lived than credential_ttl (600 s): ttl follows the token.
    let token = hs256("k1", &claims("alice", now() + 300));
    let v = assert_credentials(&ice_request(s.addr, &token), "alice", 300);
    assert!(v["ttl"].as_u64().expect("ttl") >= 298);
    let urls = &v["iceServers"][1]["urls"];
    assert_eq!(
        urls,
        &json!([
            "turn:127.0.0.1:3478?transport=udp",
            "turn:127.0.0.1:3478?transport=tcp"
        ])
    );
    // Long-lived token: ttl is the configured one. GET works too.
    let token = hs256("k1", &claims("bob", now() + 86_400));
    let auth = format!("Bearer {token}");
    let r = request(
        s.addr,
        "GET",
        "/v1/ice-servers",
        &[("Authorization", &auth)],
        "",
    );
    let v = assert_credentials(&r, "bob", 600);
    assert_eq!(v["ttl"], 600);
}

#[test]
fn turns_urls_only_with_a_tls_listener() {
    let s = start_with(hs_config("k1"), ice(Some(5349)), false);
    let token = hs256("k1", &claims("alice", now() + 300));
    let v = assert_credentials(&ice_request(s.addr, &token), "alice", 300);
    assert_eq!(
        v["iceServers"][1]["urls"][2],
        "turns:127.0.0.1:5349?transport=tcp"
    );
}

#[test]
fn public_key_tokens() {
    let dir = TempDir::new("pubkeys");
    keypair(&dir, "ed", &["-algorithm", "ed25519"]);
    keypair(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    keypair(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    keypair(&dir, "ed2", &["-algorithm", "ed25519"]);
    let config = HttpConfig {
        token_public_keys: vec![dir.path("ed.pub"), dir.path("ec.pub"), dir.path("rsa.pub")],
        rate_limit: 0,
        ..HttpConfig::default()
    };
    let s = start(config);
    let c = claims("carol", now() + 300);
    for (alg, key) in [
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&dir.read("ed.key")),
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&dir.read("ec.key")),
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&dir.read("rsa.key")),
        ),
    ] {
        let token = jsonwebtoken::encode(&Header::new(alg), &c, &key.expect("key")).expect("sign");
        assert_credentials(&ice_request(s.addr, &token), "carol", 300);
    }
    // A key ternd does not know.
    let other = EncodingKey::from_ed_pem(&dir.read("ed2.key")).expect("key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &c, &other).expect("sign");
    assert_invalid_token(&ice_request(s.addr, &token), "unknown Ed25519 key");
    // Algorithm confusion: HS256 "signed" with the public key file's bytes.
    for public in ["ed.pub", "rsa.pub"] {
        let pem = String::from_utf8(dir.read(public)).expect("pem");
        let token = hs256(&pem, &c);
        assert_invalid_token(&ice_request(s.addr, &token), "HS256 with a public key");
    }
}

#[test]
fn jwks_file_keys() {
    let dir = TempDir::new("jwks");
    keypair(&dir, "ed", &["-algorithm", "ed25519"]);
    // The raw Ed25519 public key is the last 32 bytes of the SPKI DER.
    dir.openssl(&[
        "pkey", "-in", "ed.key", "-pubout", "-outform", "DER", "-out", "ed.der",
    ]);
    let der = dir.read("ed.der");
    let x = b64(&der[der.len() - 32..]);
    let jwks = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k-1", "use": "sig", "alg": "EdDSA"}
    ]});
    std::fs::write(dir.path("jwks.json"), jwks.to_string()).expect("write");
    let config = HttpConfig {
        token_jwks_file: Some(dir.path("jwks.json")),
        rate_limit: 0,
        ..HttpConfig::default()
    };
    let s = start(config);
    let key = EncodingKey::from_ed_pem(&dir.read("ed.key")).expect("key");
    let c = claims("dave", now() + 300);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k-1".to_owned());
    let token = jsonwebtoken::encode(&header, &c, &key).expect("sign");
    assert_credentials(&ice_request(s.addr, &token), "dave", 300);
    header.kid = Some("k-2".to_owned());
    let token = jsonwebtoken::encode(&header, &c, &key).expect("sign");
    assert_invalid_token(&ice_request(s.addr, &token), "unknown kid");
}

#[test]
fn bad_tokens_are_401() {
    let config = HttpConfig {
        token_issuer: Some("https://id.example".to_owned()),
        ..hs_config("k1")
    };
    let s = start(config);
    let t = now();
    let good = json!({"sub": "alice", "exp": t + 300, "aud": "ternd", "iss": "https://id.example"});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let valid = hs256("k1", &good);
    assert_credentials(&ice_request(s.addr, &valid), "alice", 300);

    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(good.to_string().as_bytes())
    );
    let cases = [
        ("expired", hs256("k1", &with("exp", json!(t - 120)))),
        (
            "nbf in the future",
            hs256("k1", &with("nbf", json!(t + 3600))),
        ),
        ("wrong aud", hs256("k1", &with("aud", json!("other")))),
        (
            "wrong iss",
            hs256("k1", &with("iss", json!("https://evil.example"))),
        ),
        ("no iss", {
            let mut c = good.clone();
            c.as_object_mut().expect("object").remove("iss");
            hs256("k1", &c)
        }),
        ("no sub", {
            let mut c = good.clone();
            c.as_object_mut().expect("object").remove("sub");
            hs256("k1", &c)
        }),
        ("empty sub", hs256("k1", &with("sub", json!("")))),
        ("wrong key", hs256("k2", &good)),
        ("alg none", alg_none),
        ("truncated", valid[..valid.len() - 10].to_owned()),
        ("garbage", "garbage".to_owned()),
        ("three garbage parts", "a.b.c".to_owned()),
        ("oversized", format!("{valid}{}", "A".repeat(20 * 1024))),
    ];
    for (what, token) in &cases {
        let r = ice_request(s.addr, token);
        assert_invalid_token(&r, what);
        let expected = match *what {
            "expired" => "token expired",
            "nbf in the future" => "token not yet valid",
            "wrong aud" => "wrong audience",
            "wrong iss" => "wrong issuer",
            "wrong key" => "invalid signature",
            "oversized" => "token too large",
            _ => continue,
        };
        assert_eq!(r.json()["error_description"], expected, "{what}");
    }
    for (what, headers) in [
        ("missing header", vec![]),
        ("basic auth", vec![("Authorization", "Basic YTpi")]),
        ("empty bearer", vec![("Authorization", "Bearer ")]),
    ] {
        let r = request(s.addr, "POST", "/v1/ice-servers", &headers, "");
        assert_invalid_token(&r, what);
    }
    // Still serving after all that.
    assert_credentials(&ice_request(s.addr, &valid), "alice", 300);
}

#[test]
fn required_scope() {
    let config = HttpConfig {
        token_scope: Some("turn".to_owned()),
        ..hs_config("k1")
    };
    let s = start(config);
    let mut c = claims("erin", now() + 300);
    let r = ice_request(s.addr, &hs256("k1", &c));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["error"], "insufficient_scope");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    c["scope"] = json!("profile turn");
    assert_credentials(&ice_request(s.addr, &hs256("k1", &c)), "erin", 300);
}

#[test]
fn cors() {
    let config = HttpConfig {
        cors_origins: vec!["https://app.example".to_owned()],
        ..hs_config("k1")
    };
    let s = start(config);
    let preflight = |origin: &str| {
        request(
            s.addr,
            "OPTIONS",
            "/v1/ice-servers",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization"),
            ],
            "",
        )
    };
    let r = preflight("https://app.example");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap_or_default()
            .contains("POST")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap_or_default()
            .contains("Authorization")
    );
    assert_eq!(r.header("vary"), Some("Origin"));

    let r = preflight("https://evil.example");
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-methods"), None);

    // The actual request carries the allow header too, errors included.
    let token = hs256("k1", &claims("frank", now() + 300));
    let auth = format!("Bearer {token}");
    let r = request(
        s.addr,
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &auth), ("Origin", "https://app.example")],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = request(
        s.addr,
        "POST",
        "/v1/ice-servers",
        &[("Origin", "https://app.example")],
        "",
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[test]
fn rate_limit() {
    let config = HttpConfig {
        rate_limit: 1,
        rate_burst: 5,
        ..hs_config("k1")
    };
    let s = start(config);
    for i in 0..5 {
        assert_eq!(get(s.addr, "/healthz").status, 200, "request {i}");
    }
    let r = get(s.addr, "/healthz");
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "rate_limited");
}

#[test]
fn health_metrics_and_routing() {
    let s = start(hs_config("k1"));
    let r = get(s.addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(get(s.addr, "/readyz").status, 503);
    s.backend.ready.store(true, Ordering::SeqCst);
    assert_eq!(get(s.addr, "/readyz").status, 200);
    let r = get(s.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(r.body.contains("ternd_up 1"));
    assert_eq!(get(s.addr, "/nope").status, 404);
    assert_eq!(get(s.addr, "/").status, 404);
    assert_eq!(request(s.addr, "DELETE", "/healthz", &[], "").status, 405);
    assert_eq!(
        request(s.addr, "PUT", "/v1/ice-servers", &[], "").status,
        405
    );
}

#[test]
fn endpoint_without_token_keys_is_404() {
    let s = start(HttpConfig::default());
    let token = hs256("k1", &claims("alice", now() + 300));
    assert_eq!(ice_request(s.addr, &token).status, 404);
    assert_eq!(get(s.addr, "/healthz").status, 200);
}

#[test]
fn admin_api() {
    // No admin token configured: the admin API does not exist.
    let s = start_with(hs_config("k1"), ice(None), true);
    assert_eq!(get(s.addr, "/admin/sessions").status, 404);
    drop(s);

    let token = "0123456789abcdef-admin";
    let config = HttpConfig {
        admin_token: Some(token.to_owned()),
        ..hs_config("k1")
    };
    let s = start_with(config, ice(None), true);
    let auth = format!("Bearer {token}");
    let admin = [("Authorization", auth.as_str())];
    assert_eq!(get(s.addr, "/admin/sessions").status, 401);
    let r = request(
        s.addr,
        "GET",
        "/admin/sessions",
        &[("Authorization", "Bearer 0123456789abcdef-admiN")],
        "",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = request(s.addr, "GET", "/admin/sessions", &admin, "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!([{"id": 7, "user": "alice"}]));
    let r = request(s.addr, "DELETE", "/admin/sessions/7", &admin, "");
    assert_eq!((r.status, r.json()), (200, json!({"killed": 1})));
    assert_eq!(
        request(s.addr, "DELETE", "/admin/sessions/8", &admin, "").status,
        404
    );
    assert_eq!(
        request(s.addr, "DELETE", "/admin/sessions/x", &admin, "").status,
        400
    );
    assert_eq!(
        request(s.addr, "GET", "/admin/sessions/7", &admin, "").status,
        405
    );
    let r = request(
        s.addr,
        "DELETE",
        "/admin/users/al%20ice/sessions",
        &admin,
        "",
    );
    assert_eq!((r.status, r.json()), (200, json!({"killed": 2})));
    let killed = s
        .backend
        .admin
        .as_ref()
        .expect("admin")
        .killed_users
        .lock()
        .expect("lock")
        .clone();
    assert_eq!(killed, vec!["al ice"]);
    assert_eq!(
        request(s.addr, "DELETE", "/admin/users/x%zz/sessions", &admin, "").status,
        400
    );
    assert_eq!(
        request(s.addr, "GET", "/admin/other", &admin, "").status,
        404
    );
    drop(s);

    // Admin token configured but the relay offers no admin API.
    let config = HttpConfig {
        admin_token: Some(token.to_owned()),
        ..hs_config("k1")
    };
    let s = start_with(config, ice(None), false);
    assert_eq!(
        request(s.addr, "GET", "/admin/sessions", &admin, "").status,
        404
    );
    assert_eq!(get(s.addr, "/admin/sessions").status, 401);
}

#[test]
fn request_limits() {
    let s = start(hs_config("k1"));
    // A huge request head is refused, not buffered.
    let big = "x".repeat(40 * 1024);
    let r = request(s.addr, "GET", "/healthz", &[("X-Big", &big)], "");
    assert!(r.status == 431 || r.status == 0, "{r:?}");
    // A large body is refused with 413.
    let token = hs256("k1", &claims("alice", now() + 300));
    let auth = format!("Bearer {token}");
    let body = "{}".repeat(10 * 1024);
    let r = request(
        s.addr,
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &auth)],
        &body,
    );
    assert_eq!(r.status, 413, "{r:?}");
    // A small body is fine.
    let r = request(
        s.addr,
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &auth)],
        "{}",
    );
    assert_eq!(r.status, 200, "{r:?}");
    // A client that never finishes its head does not block others.
    let mut slow = connect(s.addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    assert_eq!(get(s.addr, "/healthz").status, 200);
    // Keep-alive: two requests on one connection.
    let mut c = connect(s.addr);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 512];
    let n = c.read(&mut buf).expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let r = exchange(
        &mut c,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn shutdown_stops_the_server() {
    let mut s = start(hs_config("k1"));
    assert_eq!(get(s.addr, "/healthz").status, 200);
    let began = Instant::now();
    s.stop.send(true).expect("send");
    s.handle.take().expect("handle").join();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(TcpStream::connect_timeout(&s.addr, Duration::from_secs(1)).is_err());
}

#[test]
fn https() {
    let dir = TempDir::new("tls");
    dir.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    let config = HttpConfig {
        tls_cert: Some(dir.path("cert.pem")),
        tls_key: Some(dir.path("key.pem")),
        ..hs_config("k1")
    };
    let s = start(config);

    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(dir.path("cert.pem")).expect("pem")
    {
        roots.add(cert.expect("cert")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, connect(s.addr));
    let token = hs256("k1", &claims("grace", now() + 300));
    let req = format!(
        "POST /v1/ice-servers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = exchange(&mut tls, req.as_bytes());
    assert_credentials(&r, "grace", 300);
    // Plain HTTP on the TLS port gets nowhere.
    assert_eq!(get(s.addr, "/healthz").status, 0);
}

fn ternd_token_issue(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ternd"))
        .arg("token")
        .arg("issue")
        .args(args)
        .env_remove("TERND_TOKEN_HS256_SECRET")
        .output()
        .expect("run ternd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn ternd_token_issue_verifies() {
    let config = HttpConfig {
        token_scope: Some("turn".to_owned()),
        token_issuer: Some("dev".to_owned()),
        ..hs_config("dev-secret")
    };
    let s = start(config);
    let token = ternd_token_issue(&[
        "--token-hs256-secret",
        "dev-secret",
        "--sub",
        "heidi",
        "--ttl",
        "5m",
        "--iss",
        "dev",
        "--scope",
        "turn",
    ]);
    assert_credentials(&ice_request(s.addr, &token), "heidi", 300);
    let token = ternd_token_issue(&["--token-hs256-secret", "dev-secret", "--sub", "heidi"]);
    let r = ice_request(s.addr, &token);
    assert_invalid_token(&r, "no iss");
}

/// A connection that sends nothing is closed after [`HEADER_TIMEOUT`], which is short (at
/// most 5 s): silent connections give their slot back soon.
///
/// [`HEADER_TIMEOUT`]: ternd::http::HEADER_TIMEOUT
#[test]
fn silent_connection_is_closed_after_the_header_timeout() {
    let timeout = ternd::http::HEADER_TIMEOUT;
    assert!(timeout <= Duration::from_secs(5), "{timeout:?}");
    let s = start(hs_config("k1"));
    let mut c = connect(s.addr);
    c.set_read_timeout(Some(timeout + Duration::from_secs(3)))
        .expect("timeout");
    let began = Instant::now();
    let mut buf = [0u8; 512];
    // Until the server closes (perhaps after a 408), at most 16 reads.
    let mut closed = false;
    for _ in 0..16 {
        match c.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(_) => continue,
            Err(e) => closed = e.kind() == std::io::ErrorKind::ConnectionReset,
        }
        break;
    }
    let took = began.elapsed();
    assert!(closed, "not closed after {took:?}");
    assert!(
        took >= timeout - Duration::from_millis(500) && took <= timeout + Duration::from_secs(2),
        "closed after {took:?}, header timeout {timeout:?}"
    );
}

// ---------------------------------------------------------------------------
// Connection slots: many silent connections from one source, or from anywhere

/// Held by each test that floods a server with connections: two floods at once (tests run
/// in parallel) share the 2 cores and the fd limit, and the second server's accept loop
/// would still be working through its backlog when the 1 s probe starts.
static FLOOD: Mutex<()> = Mutex::new(());

/// Up to `n` connections from 127.0.0.1 that send nothing. Each connect is bounded by
/// 100 ms and the whole loop by 10 s; it stops after 20 failed connects in a row (the
/// server's accept queue is full). The fd limit is raised first.
fn silent_connections(to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let _ = ternd::net::raise_fd_limit();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held = Vec::with_capacity(n);
    let mut failed_in_a_row = 0;
    for _ in 0..n {
        if Instant::now() >= deadline || failed_in_a_row >= 20 {
            break;
        }
        match TcpStream::connect_timeout(&to, Duration::from_millis(100)) {
            Ok(s) => {
                held.push(s);
                failed_in_a_row = 0;
            }
            Err(_) => failed_in_a_row += 1,
        }
    }
    held
}

/// `GET /healthz` from the loopback address `from` (the client socket is bound to it before
/// connecting), all within `limit`: the status (None: no answer in time) and the time taken.
fn probe_from(from: &str, to: SocketAddr, limit: Duration) -> (Option<u16>, Duration) {
    use socket2::{Domain, Protocol, Socket, Type};
    let started = Instant::now();
    let from: SocketAddr = format!("{from}:0").parse().expect("from");
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    sock.bind(&from.into())
        .expect("bind the probe's source address");
    if sock.connect_timeout(&to.into(), limit).is_err() {
        return (None, started.elapsed());
    }
    let mut s: TcpStream = sock.into();
    let left = |started: Instant| {
        limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left(started))).expect("timeout");
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return (None, started.elapsed());
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while raw.len() < 64 * 1024 && started.elapsed() < limit {
        s.set_read_timeout(Some(left(started))).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let status = parse_response(&raw).status;
    (
        (status != 0 && started.elapsed() < limit).then_some(status),
        started.elapsed(),
    )
}

/// 1,100 silent connections from 127.0.0.1 (more than the server's 1,024 slots), then
/// `GET /healthz` from 127.0.0.2, which must be answered within 3 s: well before the
/// 5 s header timeout would free a slot, so only shedding an idle connection answers it
/// in time (3 s, not less, for a machine running the whole suite on 2 cores). Returns
/// the flood.
fn flood_then_probe(to: SocketAddr, case: &str) -> Vec<TcpStream> {
    let held = silent_connections(to, 1100);
    let (status, took) = probe_from("127.0.0.2", to, Duration::from_secs(3));
    eprintln!(
        "{case}: {} silent connections from 127.0.0.1; probe from 127.0.0.2: {status:?} in {took:?}",
        held.len()
    );
    assert!(
        held.len() > ternd::http::MAX_CONNECTIONS,
        "only {} connections opened",
        held.len()
    );
    assert_eq!(
        status,
        Some(200),
        "{case}: probe from 127.0.0.2 after {took:?}"
    );
    held
}

/// One source (127.0.0.1) opens 1,100 silent connections: more than its per-IP cap and
/// more than the 1,024 slots of the whole server. A client from another address
/// (127.0.0.2) still gets `/healthz` answered within 3 s, and the server keeps at most
/// the cap of that source's connections open.
#[test]
fn one_source_cannot_stall_the_endpoint() {
    let _flood = FLOOD.lock().unwrap_or_else(|p| p.into_inner());
    let s = start(hs_config("k1"));
    let cap = HttpConfig::default().max_connections_per_ip;
    assert_eq!(cap, 32);
    let held = flood_then_probe(s.addr, "per-IP cap on");
    // The server closed all but `cap` of them (checked for at most 2 s).
    let still_open = |c: &TcpStream| {
        let mut c = c;
        c.set_nonblocking(true).expect("nonblocking");
        matches!(c.read(&mut [0u8; 16]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    let open = |held: &[TcpStream]| held.iter().filter(|c| still_open(c)).count();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut n = open(&held);
    while n > cap && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        n = open(&held);
    }
    assert!(
        n <= cap,
        "{n} connections from 127.0.0.1 still open, cap {cap}"
    );
    drop(held);
}

/// With no per-IP cap, 1,100 silent connections fill every slot; a new connection takes
/// the slot of the one idle longest, so a client from 127.0.0.2 is answered within 3 s.
/// A connection with a request in flight (a POST whose body is half sent), the oldest of
/// all, is not shed: it gets its answer once the body is complete.
#[test]
fn idle_connections_are_shed_first_when_every_slot_is_taken() {
    let _flood = FLOOD.lock().unwrap_or_else(|p| p.into_inner());
    let s = start(HttpConfig {
        max_connections_per_ip: 0,
        ..hs_config("k1")
    });
    let token = hs256("k1", &claims("busy", now() + 300));
    let mut busy = connect(s.addr);
    busy.write_all(
        format!(
            "POST /v1/ice-servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Length: 4\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .expect("write");
    // Let the server read the head and start on the body.
    std::thread::sleep(Duration::from_millis(300));
    let held = flood_then_probe(s.addr, "no per-IP cap");
    let r = exchange(&mut busy, b"  }");
    assert_credentials(&r, "busy", 600);
    drop(held);
}

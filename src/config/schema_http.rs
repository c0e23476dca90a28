//! The declaration table, continued: the `[auth]`, `[http]` and `[log]`
//! sections (see [`schema`](super::schema)).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::declare::section;
use super::kind::{Dur, Int, List, PATH, Text, Users};
use super::{LogColor, LogFormat, LogOutput, StaticUser, values};

section! {
    /// Authentication settings (`[auth]`).
    #[derive(Clone, PartialEq)]
    pub struct AuthConfig at [.auth] prefix "auth." {
        /// Shared secrets for REST (time-limited) credentials. The first is the
        /// current one; the others still verify (rotation). Secrets read from
        /// [`secret_file`](Self::secret_file) by
        /// [`Config::load_files`](super::Config::load_files) are appended after
        /// inline ones.
        secrets (secret): Vec<String> {
            default: Vec::new(),
            key: "secrets",
            kind: List(values::secrets),
            flag: "secret", "SECRET", "TERND_SECRET",
            help: "Shared secret for REST (time-limited) credentials; repeatable, the first is \
                   current, the others still verify [default: none]",
        }
        /// File with one secret per line (`#` comments and blank lines
        /// ignored), read by [`Config::load_files`](super::Config::load_files).
        secret_file: Option<PathBuf> {
            default: None,
            key: "secret_file",
            kind: PATH,
            flag: "secret-file", "FILE", "TERND_SECRET_FILE",
            help: "File with one REST secret per line, appended after --secret ones \
                   [default: none]",
        }
        /// Static long-term-credential users.
        users (secret): Vec<StaticUser> {
            default: Vec::new(),
            key: "users",
            kind: Users,
            flag: "user", "NAME:PASSWORD", "TERND_USER",
            help: "Static long-term-credential user; repeatable [default: none]",
        }
        /// Separator between expiry and user in REST usernames. Default `':'`.
        rest_separator: char {
            default: ':',
            key: "rest_separator",
            kind: Text(values::rest_separator),
        }
        /// How long a NONCE stays valid: whole seconds, at least 1 s. A nonce's age is
        /// counted in whole seconds of the server's clock, so one issued during second
        /// N is stale from second N + lifetime: it lives between lifetime − 1 s and
        /// lifetime. Default 10 minutes.
        nonce_lifetime: Duration {
            default: Duration::from_secs(600),
            key: "nonce_lifetime",
            kind: Dur::WHOLE_SECONDS,
            flag: "nonce-lifetime", "DUR", "TERND_NONCE_LIFETIME",
            help: "How long a NONCE stays valid, whole seconds, at least 1s (age is counted in \
                   whole seconds: a nonce lives between this minus 1s and this) [default: 10m]",
        }
    }
}

section! {
    /// HTTP endpoint settings (`[http]`): the credentials endpoint
    /// (`/v1/ice-servers`), health, metrics and the admin API.
    #[derive(Clone, PartialEq)]
    pub struct HttpConfig at [.http] prefix "http." {
        /// Address of the HTTP endpoint. Default `127.0.0.1:9641`; `None` = off.
        listen: Option<SocketAddr> {
            default: Some(SocketAddr::from(([127, 0, 0, 1], 9641))),
            key: "listen",
            kind: Text(values::http_listen),
            flag: "http-listen", "ADDR", "TERND_HTTP_LISTEN",
            help: "Address of the HTTP endpoint (credentials, health, metrics, admin); empty = off \
                   [default: 127.0.0.1:9641]",
        }
        /// PEM certificate chain for HTTPS. Default `None` (plain HTTP). Set
        /// together with [`tls_key`](Self::tls_key); checked by
        /// [`Config::load_files`](super::Config::load_files).
        tls_cert: Option<PathBuf> {
            default: None,
            key: "tls_cert",
            kind: PATH,
            flag: "http-tls-cert", "FILE", "TERND_HTTP_TLS_CERT",
            help: "PEM certificate chain: serve the HTTP endpoint over TLS (with --http-tls-key) \
                   [default: none, plain HTTP]",
        }
        /// PEM private key for HTTPS (PKCS#8, PKCS#1 or SEC1). Default `None`.
        tls_key: Option<PathBuf> {
            default: None,
            key: "tls_key",
            kind: PATH,
            flag: "http-tls-key", "FILE", "TERND_HTTP_TLS_KEY",
            help: "PEM private key for --http-tls-cert [default: none]",
        }
        /// Public host names or IP addresses put in the returned ICE URLs.
        /// Default empty: the server uses the external IP, else the first
        /// specific listen IP, else the relay's address.
        public_hosts: Vec<String> {
            default: Vec::new(),
            key: "public_hosts",
            kind: List(values::public_hosts),
            flag: "http-public-host", "HOST", "TERND_HTTP_PUBLIC_HOST",
            help: "Public host name or IP put in the ICE URLs the endpoint returns; repeatable \
                   [default: the external IP, else the listen IP, else the relay address]",
        }
        /// Lifetime of credentials minted by the endpoint (cut down to the access
        /// token's `exp`). Default 1 hour.
        credential_ttl: Duration {
            default: Duration::from_secs(3600),
            key: "credential_ttl",
            kind: Dur::CREDENTIAL_TTL,
            flag: "http-credential-ttl", "DUR", "TERND_HTTP_CREDENTIAL_TTL",
            help: "Lifetime of credentials minted by the endpoint, cut down to the access token's \
                   expiry [default: 1h]",
        }
        /// HS256 shared secrets access tokens may be signed with (rotation list).
        /// Default none.
        token_hs256_secrets (secret): Vec<String> {
            default: Vec::new(),
            key: "token_hs256_secrets",
            kind: List(values::secrets),
            flag: "token-hs256-secret", "SECRET", "TERND_TOKEN_HS256_SECRET",
            help: "HS256 secret access tokens may be signed with; repeatable, for rotation \
                   [default: none]",
        }
        /// PEM public key files (Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384,
        /// RSA → RS256); checked by [`Config::load_files`](super::Config::load_files).
        /// Default none.
        token_public_keys: Vec<PathBuf> {
            default: Vec::new(),
            key: "token_public_keys",
            kind: List(values::paths),
            flag: "token-public-key", "FILE", "TERND_TOKEN_PUBLIC_KEY",
            help: "PEM public key file (Ed25519, P-256 or RSA) access tokens may be signed with; \
                   repeatable [default: none]",
        }
        /// JWKS file with public keys (OKP/Ed25519, EC P-256/P-384, RSA); checked
        /// by [`Config::load_files`](super::Config::load_files). Default none.
        token_jwks_file: Option<PathBuf> {
            default: None,
            key: "token_jwks_file",
            kind: PATH,
            flag: "token-jwks-file", "FILE", "TERND_TOKEN_JWKS_FILE",
            help: "JWKS file with the public keys access tokens may be signed with \
                   [default: none]",
        }
        /// Required `aud` of access tokens. Default `"ternd"`; empty = no `aud`
        /// check (and `aud` not required).
        token_audience: String {
            default: "ternd".to_owned(),
            key: "token_audience",
            kind: Text(values::audience),
            flag: "token-audience", "AUD", "TERND_TOKEN_AUDIENCE",
            help: "Required `aud` of access tokens; empty = not checked [default: ternd]",
        }
        /// Required `iss` of access tokens. Default `None` (not checked).
        token_issuer: Option<String> {
            default: None,
            key: "token_issuer",
            kind: Text(values::optional_text),
            flag: "token-issuer", "ISS", "TERND_TOKEN_ISSUER",
            help: "Required `iss` of access tokens [default: not checked]",
        }
        /// Scope or role access tokens must carry (in a space-separated `scope`
        /// string, or a `scp` / `roles` array). Default `None`.
        token_scope: Option<String> {
            default: None,
            key: "token_scope",
            kind: Text(values::scope),
            flag: "token-scope", "SCOPE", "TERND_TOKEN_SCOPE",
            help: "Scope or role access tokens must carry (`scope`, `scp` or `roles` claim) \
                   [default: none]",
        }
        /// Clock skew allowed when checking `exp` and `nbf`. Default 30 s; may be 0.
        token_leeway: Duration {
            default: Duration::from_secs(30),
            key: "token_leeway",
            kind: Dur::LEEWAY,
            flag: "token-leeway", "DUR", "TERND_TOKEN_LEEWAY",
            help: "Clock skew allowed for the `exp` and `nbf` of access tokens [default: 30s]",
        }
        /// Origins allowed by CORS (exact match, e.g. `https://app.example.com`).
        /// Default none.
        cors_origins: Vec<String> {
            default: Vec::new(),
            key: "cors_origins",
            kind: List(values::cors_origins),
            flag: "http-cors-origin", "ORIGIN", "TERND_HTTP_CORS_ORIGIN",
            help: "Browser origin allowed to call the endpoint (CORS, exact match); repeatable \
                   [default: none]",
        }
        /// Requests per second allowed per source IP (IPv6: per /64); 0 = no
        /// limit. Default 20.
        rate_limit: u32 {
            default: 20,
            key: "rate_limit",
            kind: Int::new(values::any::<u32>),
            flag: "http-rate-limit", "N", "TERND_HTTP_RATE_LIMIT",
            help: "HTTP requests per second per client IP, 0 = no limit [default: 20]",
        }
        /// Burst size of the per-IP rate limit. Default 40; at least 1.
        rate_burst: u32 {
            default: 40,
            key: "rate_burst",
            kind: Int::new(values::rate_burst),
            flag: "http-rate-burst", "N", "TERND_HTTP_RATE_BURST",
            help: "Burst of the per-IP HTTP rate limit [default: 40]",
        }
        /// Concurrent connections allowed per source IP (IPv6: per /64), out of
        /// [`MAX_HTTP_CONNECTIONS`](crate::config::MAX_HTTP_CONNECTIONS); 0 = no per-IP cap. At the cap, a
        /// source's new connection replaces its own longest-idle one, or is closed when none
        /// is idle. Default 32.
        max_connections_per_ip: usize {
            default: 32,
            key: "max_connections_per_ip",
            kind: Int::new(values::http_max_connections_per_ip),
            flag: "http-max-connections-per-ip", "N", "TERND_HTTP_MAX_CONNECTIONS_PER_IP",
            help: "Concurrent HTTP connections per client IP (IPv6: per /64), 0..=1024, 0 = no \
                   per-IP cap (behind a reverse proxy) [default: 32]",
        }
        /// Bearer token of the admin API. Default `None` (admin API off).
        admin_token (secret): Option<String> {
            default: None,
            key: "admin_token",
            kind: Text(values::admin_token),
            flag: "admin-token", "TOKEN", "TERND_ADMIN_TOKEN",
            help: "Bearer token for the admin API on the HTTP endpoint; empty = admin API off \
                   [default: off]",
        }
    }
}

section! {
    /// Logging settings (`[log]`).
    #[derive(Clone, PartialEq)]
    pub struct LogConfig at [.log] prefix "log." {
        /// A level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or an
        /// `EnvFilter` directive string containing `=`. Default `"info"`.
        level: String {
            default: "info".to_owned(),
            key: "level",
            kind: Text(values::log_level),
            flag: "log-level", "LEVEL", "TERND_LOG_LEVEL",
            help: "Log level (trace, debug, info, warn, error) or a directive such as \
                   \"info,ternd=debug\" [default: info]",
        }
        /// Output format. Default [`LogFormat::Text`].
        format: LogFormat {
            default: LogFormat::Text,
            key: "format",
            kind: Text(values::log_format),
            flag: "log-format", "FORMAT", "TERND_LOG_FORMAT",
            help: "Log format: text or json [default: text]",
        }
        /// ANSI colours in text logs. Default [`LogColor::Auto`]: only on a terminal.
        color: LogColor {
            default: LogColor::Auto,
            key: "color",
            kind: Text(values::log_color),
            flag: "log-color", "auto|always|never", "TERND_LOG_COLOR",
            help: "ANSI colours in text logs: auto (only when stderr is a terminal), always or \
                   never [default: auto]",
        }
        /// Where logs go. Default [`LogOutput::Stderr`].
        output: LogOutput {
            default: LogOutput::Stderr,
            key: "output",
            kind: Text(values::log_output),
            flag: "log-output", "stderr|file|syslog|journald", "TERND_LOG_OUTPUT",
            help: "Where logs go: stderr, file (--log-file), syslog (--log-syslog-socket) or \
                   journald (stderr with syslog priorities, no time stamps) [default: stderr]",
        }
        /// The file `output = "file"` appends to.
        file: Option<PathBuf> {
            default: None,
            key: "file",
            kind: Text(values::optional_path),
            flag: "log-file", "FILE", "TERND_LOG_FILE",
            help: "The file logs are appended to with --log-output file [default: none]",
        }
        /// The syslog daemon's datagram socket. Default `/dev/log`.
        syslog_socket: PathBuf {
            default: PathBuf::from("/dev/log"),
            key: "syslog_socket",
            kind: Text(values::path),
            flag: "log-syslog-socket", "PATH", "TERND_LOG_SYSLOG_SOCKET",
            help: "The syslog daemon's socket for --log-output syslog [default: /dev/log]",
        }
    }
}

/// Every setting, in `--help` order.
pub(crate) fn all() -> impl Iterator<Item = &'static super::declare::Setting> {
    [
        super::Config::SETTINGS,
        super::RelayConfig::SETTINGS,
        AuthConfig::SETTINGS,
        HttpConfig::SETTINGS,
        LogConfig::SETTINGS,
        super::ClusterConfig::SETTINGS,
    ]
    .into_iter()
    .flatten()
}

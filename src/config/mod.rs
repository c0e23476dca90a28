//! Server configuration: one validated [`Config`] merged from a TOML file,
//! `TERND_*` environment variables and command-line flags.
//!
//! Precedence, highest first: command line, environment, file, built-in
//! defaults. clap resolves command line over environment (every flag has an
//! `env = "TERND_..."` attribute and no clap default), then
//! [`Config::load`] lays the result over the file. A list given on the
//! command line or in the environment *replaces* the file's list.
//!
//! ```no_run
//! use clap::Parser;
//! use ternd::config::{Cli, Config};
//!
//! let cli = Cli::parse();
//! let config = Config::load(&cli)?;
//! # Ok::<(), ternd::config::ConfigError>(())
//! ```
//!
//! The documented default file is `config/ternd.toml`; it loads to exactly
//! [`Config::default()`].
#![warn(missing_docs)]

pub mod cli;
mod error;
mod layer;
mod toml_file;
mod values;
pub use values::DEFAULT_UDP_BUFFER;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::auth::store::{StaticUser, UserCredential};
pub use crate::turn::{ParsePortRangeError, PortRange};
pub use cli::{Cli, Command, CredentialsArgs, TokenArgs, TokenCommand, TokenIssueArgs};
pub use error::{ConfigError, Origin};

/// The complete, validated server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Addresses the STUN/TURN listeners bind to (UDP and TCP).
    /// Default `["0.0.0.0:3478", "[::]:3478"]`; never empty.
    pub listen: Vec<SocketAddr>,
    /// REALM for long-term credentials. Default `"ternd"`; non-empty, fewer
    /// than 128 characters and at most 763 bytes (RFC 8489).
    pub realm: String,
    /// Number of worker threads, already resolved: 0 in the file / on the
    /// command line means `std::thread::available_parallelism()`. Always in
    /// `1..=1024`.
    pub workers: usize,
    /// Send runs of same-size UDP datagrams for one destination as one GSO send
    /// (`UDP_SEGMENT`, Linux 4.18+; off by itself where the kernel lacks it).
    /// Default `true`.
    pub udp_gso: bool,
    /// `SO_RCVBUF` asked for every UDP socket (listeners and relay sockets), in bytes;
    /// 0 = the kernel's default (net.core.rmem_default). The kernel caps it at
    /// net.core.rmem_max. Default 4 MiB.
    pub udp_recv_buffer: usize,
    /// `SO_SNDBUF` asked for every UDP socket, in bytes; 0 = the kernel's default
    /// (net.core.wmem_default). The kernel caps it at net.core.wmem_max. Default 4 MiB.
    pub udp_send_buffer: usize,
    /// SOFTWARE attribute text. Default `None` (off: it leaks versions).
    pub software: Option<String>,
    /// Answer RFC 3489 clients that send no magic cookie. Default `false`.
    pub stun_backward_compatibility: bool,
    /// Largest STUN message or ChannelData frame accepted on a TCP or TLS
    /// stream, in bytes. Default 65 540; range `548..=65_540`.
    pub max_frame_size: usize,
    /// TCP and TLS connections idle for this long are closed, except those
    /// holding an allocation (the allocation's lifetime governs them).
    /// Default 5 minutes.
    pub tcp_idle_timeout: Duration,
    /// Maximum number of concurrent TCP connections. Default 10 000; at least 1.
    pub max_tcp_connections: usize,
    /// Addresses of the TURN-over-TLS listeners (`turns:`), TCP only.
    /// Default empty (off). `:PORT` in the file or on the command line stands
    /// for `0.0.0.0:PORT` and `[::]:PORT`. No address may also be in
    /// [`listen`](Self::listen) (nor overlap one through an unspecified IP).
    /// Needs [`tls_cert`](Self::tls_cert) and [`tls_key`](Self::tls_key).
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain of the TLS listeners. Default `None`; required
    /// (with [`tls_key`](Self::tls_key)) when
    /// [`tls_listen`](Self::tls_listen) is not empty; checked at load with
    /// `crate::http::tls::server_config`. Reloaded on SIGHUP without dropping
    /// connections. TLS 1.2 and 1.3; ALPN `stun.turn` / `stun.nat-discovery`
    /// (RFC 7443) accepted, not required.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the TLS listeners.
    /// Default `None`; see [`tls_cert`](Self::tls_cert).
    pub tls_key: Option<PathBuf>,
    /// Time a client has to complete the TLS handshake. Default 10 s; nonzero.
    pub tls_handshake_timeout: Duration,
    /// Allow RFC 6062 TCP allocations (REQUESTED-TRANSPORT=TCP over a TCP or
    /// TLS control connection). Default `false`, as hardening guides advise.
    pub tcp_relay: bool,
    /// TCP/TLS listener addresses (each one of [`listen`](Self::listen) or
    /// [`tls_listen`](Self::tls_listen)) that expect a PROXY protocol v1/v2
    /// header on every connection (behind an L4 load balancer); connections
    /// without a valid header there are refused. Default empty. The header
    /// is trusted: enable it only on listeners reachable solely through the
    /// load balancer.
    pub proxy_protocol: Vec<SocketAddr>,
    /// Maximum concurrent TCP/TLS client connections per source IP address.
    /// Default 100; range `1..=1_000_000`.
    pub max_connections_per_ip: usize,
    /// Graceful-shutdown (drain) limit. On SIGTERM (or Ctrl-C) ternd stops
    /// accepting new allocations — a new Allocate gets 300 (Try Alternate)
    /// with ALTERNATE-SERVER when [`alternate_server`](Self::alternate_server)
    /// is set, else 508 (Insufficient Capacity) — and `/readyz` turns 503;
    /// it keeps relaying for the existing allocations until they have all
    /// ended or this much time has passed, then exits with status 0. A second
    /// signal stops it at once. Default 30 s; 0 = stop at once (no drain).
    pub drain_timeout: Duration,
    /// Address sent in ALTERNATE-SERVER with 300 (Try Alternate) to new
    /// Allocate requests while draining (RFC 8489 §10, RFC 8656); used only
    /// while draining. A concrete `IP:PORT` (no unspecified or multicast IP,
    /// no port 0). Default `None`: new Allocates get 508 while draining.
    pub alternate_server: Option<SocketAddr>,
    /// Serve RFC 5780 NAT behaviour discovery (STUN Binding over UDP).
    ///
    /// Default `false`, for two reasons: it needs a second IP address on the
    /// host ([`alt_ip`](Self::alt_ip)), and it lets an unauthenticated
    /// packet make the server answer from another address and/or port
    /// (CHANGE-REQUEST) — the response is never larger than needed and goes
    /// only to the requester's IP address.
    ///
    /// With it on, Binding responses carry OTHER-ADDRESS and
    /// RESPONSE-ORIGIN, a CHANGE-REQUEST is answered from the alternate IP
    /// and/or the alternate port, and RESPONSE-PORT and PADDING are
    /// honoured. It is served over UDP on four sockets: primary IP / primary
    /// port, primary IP / alternate port, alternate IP / primary port and
    /// alternate IP / alternate port. The primary address is the first
    /// [`listen`](Self::listen) entry whose IP has `alt_ip`'s family and is
    /// not unspecified (see [`rfc5780_primary`](Self::rfc5780_primary));
    /// there must be one, and its IP must differ from `alt_ip`. Requires
    /// [`alt_ip`](Self::alt_ip).
    pub rfc5780: bool,
    /// The alternate IP address of RFC 5780 (the one a change-IP
    /// CHANGE-REQUEST is answered from, and OTHER-ADDRESS names): a concrete
    /// unicast address (no unspecified or multicast IP), different from the
    /// primary IP and of its family. Default `None`. Required by, and only
    /// allowed with, [`rfc5780`](Self::rfc5780)` = true`.
    pub alt_ip: Option<IpAddr>,
    /// The alternate port of RFC 5780 (the one a change-port CHANGE-REQUEST
    /// is answered from). Default `None`: the primary listen port + 1 (0 in
    /// the file or on the command line also means that). When set it must
    /// differ from the primary port; only allowed with
    /// [`rfc5780`](Self::rfc5780)` = true`.
    pub alt_port: Option<u16>,
    /// TURN relay settings.
    pub relay: RelayConfig,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// HTTP endpoint settings.
    pub http: HttpConfig,
    /// Logging settings.
    pub log: LogConfig,
    /// Keys that were explicitly set (file, env or CLI) for features this
    /// build does not implement yet (dotted TOML names, e.g. `http.listen`).
    pub not_yet_supported: Vec<&'static str>,
}

/// TURN relay settings (`[relay]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// Local addresses relayed transport addresses are allocated on; at most
    /// one per address family. Default: none (per family: the specific listen
    /// address, else the host's primary address; no IPv6 relay without one).
    pub relay_ips: Vec<IpAddr>,
    /// Public addresses advertised instead of the relay addresses (behind
    /// NAT); at most one per address family.
    pub external_ips: Vec<ExternalIp>,
    /// Relay port range. Default `49152-65535`.
    pub ports: PortRange,
    /// Peer networks explicitly allowed (overrides the built-in deny list).
    pub allow_peer: Vec<ipnet::IpNet>,
    /// Peer networks explicitly denied (overrides everything).
    pub deny_peer: Vec<ipnet::IpNet>,
    /// Use the RFC 5766 channel number range (0x4000-0x7FFF) instead of
    /// RFC 8656's (0x4000-0x4FFF). Default `false`.
    pub rfc5766_channel_numbers: bool,
    /// Allocation lifetime when the client asks for none. Default 600 s.
    pub default_allocation_lifetime: Duration,
    /// Longest allocation lifetime granted. Default 3600 s; never shorter than
    /// [`default_allocation_lifetime`](Self::default_allocation_lifetime).
    pub max_allocation_lifetime: Duration,
    /// Maximum concurrent allocations per user; 0 means unlimited. Default 100.
    /// Over it, Allocate gets 486 (Allocation Quota Reached).
    pub user_quota: u32,
    /// Maximum concurrent allocations on the whole server; 0 means unlimited.
    /// Default 0. Over it, Allocate gets 508 (Insufficient Capacity).
    pub total_quota: u32,
    /// Maximum concurrent allocations per client source address (an IPv4
    /// address, or an IPv6 /64), all users and workers together; 0 means
    /// unlimited. Default 1000. Over it, Allocate gets 486.
    pub max_allocations_per_ip: u32,
    /// Unauthenticated requests per second allowed per client source address
    /// (IPv4 address or IPv6 /64) and worker; 0 turns the limit off. Default
    /// 200. Counted: every request other than Binding that carries no
    /// MESSAGE-INTEGRITY(-SHA256), and every request answered 401 or 438.
    /// Over the limit they are dropped unanswered (no amplification).
    pub unauth_rate_limit: u32,
    /// Burst of [`unauth_rate_limit`](Self::unauth_rate_limit), in requests;
    /// at least 1. Default 1000.
    pub unauth_rate_burst: u32,
    /// Most permissions one allocation may hold; CreatePermission and
    /// ChannelBind beyond it get 508. Default 64; range `1..=65_535`.
    pub max_permissions_per_allocation: usize,
    /// Most channels one allocation may bind; ChannelBind beyond it gets 508.
    /// Default 64; range `1..=16_384`.
    pub max_channels_per_allocation: usize,
    /// Bandwidth limit per allocation and direction, in bytes per second
    /// (coturn's unit); 0 means unlimited. Default 0. Excess packets are
    /// dropped (and counted), never queued; bursts of a quarter second of
    /// traffic (at least 3000 bytes) pass.
    pub max_bps: u64,
}

/// A public address advertised for a relay address family.
///
/// Written `IP` or, coturn-style, `PUBLIC/PRIVATE` (both of the same family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalIp {
    /// The address clients and peers see.
    pub public: IpAddr,
    /// The local address it maps to, if given.
    pub private: Option<IpAddr>,
}

/// Authentication settings (`[auth]`).
#[derive(Clone, PartialEq)]
pub struct AuthConfig {
    /// Shared secrets for REST (time-limited) credentials. The first is the
    /// current one; the others still verify (rotation). Secrets read from
    /// [`secret_file`](Self::secret_file) are appended after inline ones.
    pub secrets: Vec<String>,
    /// File with one secret per line (`#` comments and blank lines
    /// ignored), read at load time.
    pub secret_file: Option<PathBuf>,
    /// Static long-term-credential users.
    pub users: Vec<StaticUser>,
    /// Separator between expiry and user in REST usernames. Default `':'`.
    pub rest_separator: char,
    /// How long a NONCE stays valid. Default 10 minutes.
    pub nonce_lifetime: Duration,
}

/// HTTP endpoint settings (`[http]`): the credentials endpoint
/// (`/v1/ice-servers`), health, metrics and the admin API.
#[derive(Clone, PartialEq)]
pub struct HttpConfig {
    /// Address of the HTTP endpoint. Default `127.0.0.1:9641`; `None` = off.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS. Default `None` (plain HTTP). Set
    /// together with [`tls_key`](Self::tls_key); checked at load.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (PKCS#8, PKCS#1 or SEC1). Default `None`.
    pub tls_key: Option<PathBuf>,
    /// Public host names or IP addresses put in the returned ICE URLs.
    /// Default empty: the server uses the external IP, else the first
    /// specific listen IP, else `127.0.0.1`.
    pub public_hosts: Vec<String>,
    /// Lifetime of credentials minted by the endpoint (cut down to the access
    /// token's `exp`). Default 1 hour.
    pub credential_ttl: Duration,
    /// HS256 shared secrets access tokens may be signed with (rotation list).
    /// Default none.
    pub token_hs256_secrets: Vec<String>,
    /// PEM public key files (Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384,
    /// RSA → RS256); checked at load. Default none.
    pub token_public_keys: Vec<PathBuf>,
    /// JWKS file with public keys (OKP/Ed25519, EC P-256/P-384, RSA); checked
    /// at load. Default none.
    pub token_jwks_file: Option<PathBuf>,
    /// Required `aud` of access tokens. Default `"ternd"`; empty = no `aud`
    /// check (and `aud` not required).
    pub token_audience: String,
    /// Required `iss` of access tokens. Default `None` (not checked).
    pub token_issuer: Option<String>,
    /// Scope or role access tokens must carry (in a space-separated `scope`
    /// string, or a `scp` / `roles` array). Default `None`.
    pub token_scope: Option<String>,
    /// Clock skew allowed when checking `exp` and `nbf`. Default 30 s; may be 0.
    pub token_leeway: Duration,
    /// Origins allowed by CORS (exact match, e.g. `https://app.example.com`).
    /// Default none.
    pub cors_origins: Vec<String>,
    /// Requests per second allowed per source IP (IPv6: per /64); 0 = no
    /// limit. Default 20.
    pub rate_limit: u32,
    /// Burst size of the per-IP rate limit. Default 40; at least 1.
    pub rate_burst: u32,
    /// Concurrent connections allowed per source IP (IPv6: per /64), out of
    /// [`MAX_CONNECTIONS`](crate::http::MAX_CONNECTIONS); 0 = no per-IP cap. At the cap, a
    /// source's new connection replaces its own longest-idle one, or is closed when none
    /// is idle. Default 32.
    pub max_connections_per_ip: usize,
    /// Bearer token of the admin API. Default `None` (admin API off).
    pub admin_token: Option<String>,
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// A level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or an
    /// `EnvFilter` directive string containing `=`. Default `"info"`.
    pub level: String,
    /// Output format. Default [`LogFormat::Text`].
    pub format: LogFormat,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

// ---------------------------------------------------------------------------
// Defaults

/// The number of workers used when the configuration says 0 (or nothing):
/// `available_parallelism()`, at least 1 and at most 1024.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, values::MAX_WORKERS)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 3478)),
                SocketAddr::from(([0u16; 8], 3478)),
            ],
            realm: "ternd".to_owned(),
            workers: default_workers(),
            udp_gso: true,
            udp_recv_buffer: values::DEFAULT_UDP_BUFFER,
            udp_send_buffer: values::DEFAULT_UDP_BUFFER,
            software: None,
            stun_backward_compatibility: false,
            max_frame_size: values::MAX_FRAME_SIZE,
            tcp_idle_timeout: Duration::from_secs(5 * 60),
            max_tcp_connections: 10_000,
            tls_listen: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_handshake_timeout: Duration::from_secs(10),
            tcp_relay: false,
            proxy_protocol: Vec::new(),
            max_connections_per_ip: 100,
            drain_timeout: Duration::from_secs(30),
            alternate_server: None,
            rfc5780: false,
            alt_ip: None,
            alt_port: None,
            relay: RelayConfig::default(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            not_yet_supported: Vec::new(),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            relay_ips: Vec::new(),
            external_ips: Vec::new(),
            ports: PortRange::default(),
            allow_peer: Vec::new(),
            deny_peer: Vec::new(),
            rfc5766_channel_numbers: false,
            default_allocation_lifetime: Duration::from_secs(600),
            max_allocation_lifetime: Duration::from_secs(3600),
            user_quota: 100,
            total_quota: 0,
            max_allocations_per_ip: crate::turn::DEFAULT_MAX_ALLOCATIONS_PER_IP,
            unauth_rate_limit: crate::turn::DEFAULT_UNAUTH_RATE_LIMIT,
            unauth_rate_burst: crate::turn::DEFAULT_UNAUTH_RATE_BURST,
            max_permissions_per_allocation: crate::turn::DEFAULT_MAX_PERMISSIONS,
            max_channels_per_allocation: crate::turn::DEFAULT_MAX_CHANNELS,
            max_bps: 0,
        }
    }
}

impl AuthConfig {
    /// The core's credential store for `realm`: the secrets, the static users and the
    /// REST separator of this section.
    pub fn credential_store(
        &self,
        realm: &str,
    ) -> Result<crate::auth::store::CredentialStore, crate::auth::PrepError> {
        crate::auth::store::CredentialStore::new(
            realm,
            &self.secrets,
            &self.users,
            self.rest_separator,
        )
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secrets: Vec::new(),
            secret_file: None,
            users: Vec::new(),
            rest_separator: ':',
            nonce_lifetime: Duration::from_secs(600),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9641))),
            tls_cert: None,
            tls_key: None,
            public_hosts: Vec::new(),
            credential_ttl: Duration::from_secs(3600),
            token_hs256_secrets: Vec::new(),
            token_public_keys: Vec::new(),
            token_jwks_file: None,
            token_audience: "ternd".to_owned(),
            token_issuer: None,
            token_scope: None,
            token_leeway: Duration::from_secs(30),
            cors_origins: Vec::new(),
            rate_limit: 20,
            rate_burst: 40,
            max_connections_per_ip: 32,
            admin_token: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

// ---------------------------------------------------------------------------
// Loading

impl Config {
    /// Loads the file named by `cli.config` (if any), lays the command-line /
    /// environment values of the already-parsed `cli` over it, reads the
    /// secret file and validates the result.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let mut base = layer::Layer::default();
        if let Some(path) = &cli.config {
            let origin = cli::origin_os("TERND_CONFIG", path.as_os_str());
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                origin,
                key: "--config".to_owned(),
                path: path.clone(),
                source,
            })?;
            base = toml_file::parse(&text, &path.display().to_string())?;
        }
        let over = layer::Layer::from_cli(cli)?;
        base.merge(over).build()
    }

    /// Parses and validates TOML text; `origin` is the file name used in
    /// error messages. A `secret_file` it names is read (relative paths are
    /// relative to the current directory).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml_file::parse(text, origin)?.build()
    }

    /// Lays the command-line / environment values of an already-parsed `cli`
    /// over `self` and re-validates. `cli.config` is ignored here (use
    /// [`Config::load`] to read a file).
    ///
    /// If `--secret` or `--secret-file` is given, secrets that came from
    /// `self.auth.secret_file` are re-derived: the old file's secrets are
    /// dropped and the (new) secret file is read again.
    pub fn apply_cli(self, cli: &Cli) -> Result<Config, ConfigError> {
        let base = layer::Layer::from_config(self, cli);
        let over = layer::Layer::from_cli(cli)?;
        base.merge(over).build()
    }

    /// The RFC 5780 primary address when [`rfc5780`](Self::rfc5780) is on:
    /// the first [`listen`](Self::listen) address whose IP has the family of
    /// [`alt_ip`](Self::alt_ip) and is not unspecified. `None` when RFC 5780
    /// is off (or, in a `Config` built by hand rather than loaded, when
    /// `alt_ip` is unset or no listen address qualifies).
    pub fn rfc5780_primary(&self) -> Option<SocketAddr> {
        if !self.rfc5780 {
            return None;
        }
        values::rfc5780_primary(&self.listen, self.alt_ip?)
    }
}

// ---------------------------------------------------------------------------
// Small value types

impl FromStr for ExternalIp {
    type Err = String;

    /// Parses `IP` or `PUBLIC/PRIVATE`; the error is a human-readable message.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        values::external_ip(s)
    }
}

impl fmt::Display for ExternalIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.private {
            Some(private) => write!(f, "{}/{private}", self.public),
            None => write!(f, "{}", self.public),
        }
    }
}

/// Error returned when parsing a [`LogFormat`] fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log format `{0}` (expected text or json)")]
pub struct ParseLogFormatError(pub String);

impl FromStr for LogFormat {
    type Err = ParseLogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ParseLogFormatError(s.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

// Secrets never appear in Debug output (logs, panics, test failures).

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("secrets", &Redacted(self.secrets.len()))
            .field("secret_file", &self.secret_file)
            .field("users", &self.users)
            .field("rest_separator", &self.rest_separator)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish()
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("public_hosts", &self.public_hosts)
            .field("credential_ttl", &self.credential_ttl)
            .field(
                "token_hs256_secrets",
                &Redacted(self.token_hs256_secrets.len()),
            )
            .field("token_public_keys", &self.token_public_keys)
            .field("token_jwks_file", &self.token_jwks_file)
            .field("token_audience", &self.token_audience)
            .field("token_issuer", &self.token_issuer)
            .field("token_scope", &self.token_scope)
            .field("token_leeway", &self.token_leeway)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .field("rate_burst", &self.rate_burst)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field(
                "admin_token",
                &Redacted(usize::from(self.admin_token.is_some())),
            )
            .finish()
    }
}

/// Debug stand-in for a list of `n` secret values.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} redacted>", self.0)
    }
}

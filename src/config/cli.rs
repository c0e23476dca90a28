//! Command-line interface (`clap` derive).
//!
//! Every option also reads a `TERND_*` environment variable; clap resolves
//! command line over environment. No option has a clap default, so an
//! option that was not given stays `None` / empty and the configuration
//! file's value or the built-in default applies. Values are kept as raw
//! strings and validated by [`Config::load`](super::Config::load) /
//! [`Config::apply_cli`](super::Config::apply_cli), whose errors name the
//! flag and whether the value came from the command line or the
//! environment.
//!
//! Repeatable options also accept a comma-separated list, which is how they
//! are given in the environment (e.g. `TERND_LISTEN=0.0.0.0:3478,[::]:3478`).
//! A list given on the command line or in the environment replaces the
//! file's list; an empty environment variable (e.g. `TERND_DENY_PEER=`)
//! replaces it with an empty list.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

use super::{Origin, Redacted, values};

const LONG_ABOUT: &str = "\
ternd — a STUN/TURN relay server.

Settings come from, highest precedence first: command-line flags, TERND_* \
environment variables, the TOML file given with -c/--config, and built-in \
defaults. Every flag below names its environment variable; repeatable flags \
take a comma-separated list there (TERND_LISTEN=0.0.0.0:3478,[::]:3478). A list \
given on the command line or in the environment replaces the file's list.

Durations are written like 30s, 10m, 1h30m, or as a number of seconds.

The documented default configuration file is config/ternd.toml.";

/// Command-line options of `ternd`. See the module documentation.
#[derive(Parser, Clone, Default, PartialEq, Eq)]
#[command(
    name = "ternd",
    version,
    about = "ternd — a STUN/TURN relay server",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// TOML configuration file [default: none, built-in defaults]
    #[arg(short = 'c', long, value_name = "FILE", env = "TERND_CONFIG")]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print any error and exit
    #[arg(
        long,
        env = "TERND_CHECK_CONFIG",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub check_config: bool,

    /// Address to listen on for STUN/TURN over UDP and TCP; repeatable
    /// (default: `0.0.0.0:3478` and `[::]:3478`).
    #[arg(
        long,
        value_name = "ADDR",
        env = "TERND_LISTEN",
        value_delimiter = ',',
        help = "Address to listen on for STUN/TURN over UDP and TCP; repeatable \
                [default: 0.0.0.0:3478 and [::]:3478]"
    )]
    pub listen: Vec<String>,

    /// Authentication realm [default: ternd]
    #[arg(long, value_name = "REALM", env = "TERND_REALM")]
    pub realm: Option<String>,

    /// Local address to allocate relayed addresses on; repeatable, at most
    /// one per address family [default: the specific listen address of each
    /// family, else the host's primary IPv4/IPv6 address]
    #[arg(long, value_name = "IP", env = "TERND_RELAY_IP", value_delimiter = ',')]
    pub relay_ip: Vec<String>,

    /// Public address to advertise for relayed addresses (behind NAT):
    /// IP or PUBLIC/PRIVATE; repeatable, one per family [default: none]
    #[arg(
        long,
        value_name = "IP|PUBLIC/PRIVATE",
        env = "TERND_EXTERNAL_IP",
        value_delimiter = ','
    )]
    pub external_ip: Vec<String>,

    /// Relay port range [default: 49152-65535]
    #[arg(long, value_name = "LO-HI", env = "TERND_RELAY_PORTS")]
    pub relay_ports: Option<String>,

    /// Shared secret for REST (time-limited) credentials; repeatable, the
    /// first is current, the others still verify [default: none]
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub secret: Vec<String>,

    /// File with one REST secret per line, appended after --secret ones
    /// [default: none]
    #[arg(long, value_name = "FILE", env = "TERND_SECRET_FILE")]
    pub secret_file: Option<String>,

    /// Static long-term-credential user; repeatable [default: none]
    #[arg(
        long,
        value_name = "NAME:PASSWORD",
        env = "TERND_USER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub user: Vec<String>,

    /// Peer network to allow even if denied by default; repeatable
    /// [default: none]
    #[arg(
        long,
        value_name = "CIDR",
        env = "TERND_ALLOW_PEER",
        value_delimiter = ','
    )]
    pub allow_peer: Vec<String>,

    /// Peer network to deny; beats --allow-peer; repeatable [default: none]
    #[arg(
        long,
        value_name = "CIDR",
        env = "TERND_DENY_PEER",
        value_delimiter = ','
    )]
    pub deny_peer: Vec<String>,

    /// Use the RFC 5766 channel number range 0x4000-0x7FFF [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        env = "TERND_RFC5766_CHANNEL_NUMBERS",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub rfc5766_channel_numbers: Option<bool>,

    /// Allocation lifetime when the client requests none [default: 10m]
    #[arg(long, value_name = "DUR", env = "TERND_DEFAULT_ALLOCATION_LIFETIME")]
    pub default_allocation_lifetime: Option<String>,

    /// Longest allocation lifetime granted [default: 1h]
    #[arg(long, value_name = "DUR", env = "TERND_MAX_ALLOCATION_LIFETIME")]
    pub max_allocation_lifetime: Option<String>,

    /// Maximum concurrent allocations per user, 0 = unlimited [default: 100]
    #[arg(long, value_name = "N", env = "TERND_USER_QUOTA")]
    pub user_quota: Option<String>,

    /// Maximum concurrent allocations on the whole server, 0 = unlimited;
    /// over it Allocate gets 508 [default: 0]
    #[arg(long, value_name = "N", env = "TERND_TOTAL_QUOTA")]
    pub total_quota: Option<String>,

    /// Maximum concurrent allocations per client IP (IPv6: per /64), 0 =
    /// unlimited; over it Allocate gets 486 [default: 1000]
    #[arg(long, value_name = "N", env = "TERND_MAX_ALLOCATIONS_PER_IP")]
    pub max_allocations_per_ip: Option<String>,

    /// Unauthenticated requests (and 401/438 answers) per second per client
    /// IP (IPv6: per /64) and worker, 0 = no limit; over it they are dropped
    /// unanswered [default: 200]
    #[arg(long, value_name = "N", env = "TERND_UNAUTH_RATE_LIMIT")]
    pub unauth_rate_limit: Option<String>,

    /// Burst of --unauth-rate-limit, in requests, at least 1 [default: 1000]
    #[arg(long, value_name = "N", env = "TERND_UNAUTH_RATE_BURST")]
    pub unauth_rate_burst: Option<String>,

    /// Most permissions per allocation, 1..=65535; CreatePermission and
    /// ChannelBind beyond it get 508 [default: 64]
    #[arg(long, value_name = "N", env = "TERND_MAX_PERMISSIONS_PER_ALLOCATION")]
    pub max_permissions_per_allocation: Option<String>,

    /// Most channels per allocation, 1..=16384; ChannelBind beyond it gets
    /// 508 [default: 64]
    #[arg(long, value_name = "N", env = "TERND_MAX_CHANNELS_PER_ALLOCATION")]
    pub max_channels_per_allocation: Option<String>,

    /// Bandwidth limit per allocation and direction in BYTES per second,
    /// 0 = unlimited; excess packets are dropped [default: 0]
    #[arg(long, value_name = "BYTES", env = "TERND_MAX_BPS")]
    pub max_bps: Option<String>,

    /// How long a NONCE stays valid [default: 10m]
    #[arg(long, value_name = "DUR", env = "TERND_NONCE_LIFETIME")]
    pub nonce_lifetime: Option<String>,

    /// Address of the HTTP endpoint (credentials, health, metrics, admin);
    /// empty = off [default: 127.0.0.1:9641]
    #[arg(long, value_name = "ADDR", env = "TERND_HTTP_LISTEN")]
    pub http_listen: Option<String>,

    /// PEM certificate chain: serve the HTTP endpoint over TLS (with
    /// --http-tls-key) [default: none, plain HTTP]
    #[arg(long, value_name = "FILE", env = "TERND_HTTP_TLS_CERT")]
    pub http_tls_cert: Option<String>,

    /// PEM private key for --http-tls-cert [default: none]
    #[arg(long, value_name = "FILE", env = "TERND_HTTP_TLS_KEY")]
    pub http_tls_key: Option<String>,

    /// Public host name or IP put in the ICE URLs the endpoint returns;
    /// repeatable [default: the external IP, else the listen IP, else 127.0.0.1]
    #[arg(
        long,
        value_name = "HOST",
        env = "TERND_HTTP_PUBLIC_HOST",
        value_delimiter = ','
    )]
    pub http_public_host: Vec<String>,

    /// Lifetime of credentials minted by the endpoint, cut down to the
    /// access token's expiry [default: 1h]
    #[arg(long, value_name = "DUR", env = "TERND_HTTP_CREDENTIAL_TTL")]
    pub http_credential_ttl: Option<String>,

    /// HS256 secret access tokens may be signed with; repeatable, for
    /// rotation [default: none]
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_TOKEN_HS256_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub token_hs256_secret: Vec<String>,

    /// PEM public key file (Ed25519, P-256 or RSA) access tokens may be
    /// signed with; repeatable [default: none]
    #[arg(
        long,
        value_name = "FILE",
        env = "TERND_TOKEN_PUBLIC_KEY",
        value_delimiter = ','
    )]
    pub token_public_key: Vec<String>,

    /// JWKS file with the public keys access tokens may be signed with
    /// [default: none]
    #[arg(long, value_name = "FILE", env = "TERND_TOKEN_JWKS_FILE")]
    pub token_jwks_file: Option<String>,

    /// Required `aud` of access tokens; empty = not checked [default: ternd]
    #[arg(long, value_name = "AUD", env = "TERND_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,

    /// Required `iss` of access tokens [default: not checked]
    #[arg(long, value_name = "ISS", env = "TERND_TOKEN_ISSUER")]
    pub token_issuer: Option<String>,

    /// Scope or role access tokens must carry (`scope`, `scp` or `roles`
    /// claim) [default: none]
    #[arg(long, value_name = "SCOPE", env = "TERND_TOKEN_SCOPE")]
    pub token_scope: Option<String>,

    /// Clock skew allowed for the `exp` and `nbf` of access tokens
    /// [default: 30s]
    #[arg(long, value_name = "DUR", env = "TERND_TOKEN_LEEWAY")]
    pub token_leeway: Option<String>,

    /// Browser origin allowed to call the endpoint (CORS, exact match);
    /// repeatable [default: none]
    #[arg(
        long,
        value_name = "ORIGIN",
        env = "TERND_HTTP_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub http_cors_origin: Vec<String>,

    /// HTTP requests per second per client IP, 0 = no limit [default: 20]
    #[arg(long, value_name = "N", env = "TERND_HTTP_RATE_LIMIT")]
    pub http_rate_limit: Option<String>,

    /// Burst of the per-IP HTTP rate limit [default: 40]
    #[arg(long, value_name = "N", env = "TERND_HTTP_RATE_BURST")]
    pub http_rate_burst: Option<String>,

    /// Concurrent HTTP connections per client IP (IPv6: per /64),
    /// 0..=1024, 0 = no per-IP cap (behind a reverse proxy) [default: 32]
    #[arg(long, value_name = "N", env = "TERND_HTTP_MAX_CONNECTIONS_PER_IP")]
    pub http_max_connections_per_ip: Option<String>,

    /// Bearer token for the admin API on the HTTP endpoint; empty = admin
    /// API off [default: off]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TERND_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Worker threads, 0 = one per CPU [default: 0]
    #[arg(long, value_name = "N", env = "TERND_WORKERS")]
    pub workers: Option<String>,

    /// Send bursts of same-size UDP datagrams for one destination as one GSO send
    /// (UDP_SEGMENT, Linux 4.18+); false sends every datagram with its own sendto
    /// [default: true]
    #[arg(
        long,
        value_name = "BOOL",
        env = "TERND_UDP_GSO",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub udp_gso: Option<bool>,

    /// SO_RCVBUF for every UDP socket (listeners and relay sockets), in bytes; 0 = the
    /// kernel default. The kernel caps it at net.core.rmem_max (the granted size is
    /// logged at start) [default: 4194304]
    #[arg(long, value_name = "BYTES", env = "TERND_UDP_RECV_BUFFER")]
    pub udp_recv_buffer: Option<String>,

    /// SO_SNDBUF for every UDP socket, in bytes; 0 = the kernel default. The kernel
    /// caps it at net.core.wmem_max [default: 4194304]
    #[arg(long, value_name = "BYTES", env = "TERND_UDP_SEND_BUFFER")]
    pub udp_send_buffer: Option<String>,

    /// Log level (trace, debug, info, warn, error) or a directive such as
    /// "info,ternd=debug" [default: info]
    #[arg(long, value_name = "LEVEL", env = "TERND_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// Log format: text or json [default: text]
    #[arg(long, value_name = "FORMAT", env = "TERND_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// SOFTWARE attribute text; empty = off. Leaks versions [default: off]
    #[arg(long, value_name = "TEXT", env = "TERND_SOFTWARE")]
    pub software: Option<String>,

    /// Answer RFC 3489 clients that send no magic cookie (amplification
    /// risk) [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        env = "TERND_STUN_BACKWARD_COMPATIBILITY",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub stun_backward_compatibility: Option<bool>,

    /// Largest STUN/ChannelData frame accepted on TCP and TLS, 548..=65540
    /// [default: 65540]
    #[arg(long, value_name = "BYTES", env = "TERND_MAX_FRAME_SIZE")]
    pub max_frame_size: Option<String>,

    /// Close TCP and TLS connections idle for this long; those holding an
    /// allocation are kept [default: 5m]
    #[arg(long, value_name = "DUR", env = "TERND_TCP_IDLE_TIMEOUT")]
    pub tcp_idle_timeout: Option<String>,

    /// Maximum concurrent TCP connections [default: 10000]
    #[arg(long, value_name = "N", env = "TERND_MAX_TCP_CONNECTIONS")]
    pub max_tcp_connections: Option<String>,

    /// Address to listen on for TURN over TLS (turns:), e.g. 0.0.0.0:5349 or
    /// :443 (all interfaces); repeatable; needs --cert and --key
    /// [default: none, TLS off]
    #[arg(
        long,
        value_name = "ADDR",
        env = "TERND_TLS_LISTEN",
        value_delimiter = ','
    )]
    pub tls_listen: Vec<String>,

    /// PEM certificate chain for the TLS listeners; reloaded on SIGHUP
    /// [default: none]
    #[arg(long, value_name = "FILE", env = "TERND_CERT")]
    pub cert: Option<String>,

    /// PEM private key for --cert; reloaded on SIGHUP [default: none]
    #[arg(long, value_name = "FILE", env = "TERND_KEY")]
    pub key: Option<String>,

    /// Time a client has to complete the TLS handshake [default: 10s]
    #[arg(long, value_name = "DUR", env = "TERND_TLS_HANDSHAKE_TIMEOUT")]
    pub tls_handshake_timeout: Option<String>,

    /// Allow RFC 6062 TCP allocations (REQUESTED-TRANSPORT=TCP)
    /// [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        env = "TERND_TCP_RELAY",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub tcp_relay: Option<bool>,

    /// TCP or TLS listener address (from --listen or --tls-listen) that
    /// expects a PROXY protocol v1/v2 header on every connection; only for
    /// listeners reachable solely through the load balancer; repeatable
    /// [default: none]
    #[arg(
        long,
        value_name = "ADDR",
        env = "TERND_PROXY_PROTOCOL",
        value_delimiter = ','
    )]
    pub proxy_protocol: Vec<String>,

    /// Maximum concurrent TCP/TLS connections per client IP (IPv6: per /64),
    /// 1..=1000000 [default: 100]
    #[arg(long, value_name = "N", env = "TERND_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<String>,

    /// On SIGTERM / Ctrl-C, keep relaying for existing allocations (new
    /// ones refused, /readyz 503) until they end or this much time passes,
    /// then exit 0; a second signal stops at once; 0 = stop at once
    /// [default: 30s]
    #[arg(long, value_name = "DUR", env = "TERND_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<String>,

    /// IP:PORT sent in ALTERNATE-SERVER with 300 (Try Alternate) to new
    /// Allocates while draining; empty = none, they get 508 [default: none]
    #[arg(long, value_name = "ADDR", env = "TERND_ALTERNATE_SERVER")]
    pub alternate_server: Option<String>,

    /// Serve RFC 5780 NAT behaviour discovery over UDP (OTHER-ADDRESS,
    /// RESPONSE-ORIGIN, CHANGE-REQUEST, RESPONSE-PORT, PADDING); needs
    /// --alt-ip and a specific --listen address of its family [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        env = "TERND_RFC5780",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub rfc5780: Option<bool>,

    /// Second IP address for --rfc5780 (change-IP answers come from it);
    /// only with --rfc5780; empty = none [default: none]
    #[arg(long, value_name = "IP", env = "TERND_ALT_IP")]
    pub alt_ip: Option<String>,

    /// Alternate port for --rfc5780 (change-port answers come from it);
    /// only with --rfc5780; 0 = the primary listen port + 1
    /// [default: port + 1]
    #[arg(long, value_name = "PORT", env = "TERND_ALT_PORT")]
    pub alt_port: Option<String>,

    /// A subcommand; without one, `ternd` runs the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `ternd` (without one, it runs the server).
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print TURN REST credentials (a time-limited username and password) for a shared secret
    #[command(long_about = CREDENTIALS_ABOUT)]
    Credentials(CredentialsArgs),
    /// Access tokens for the credentials endpoint (development helper)
    Token(TokenArgs),
    /// Load generator for any RFC 8656 TURN server over UDP (ternd, coturn, ...)
    #[command(long_about = crate::bench::LONG_ABOUT)]
    Bench(crate::bench::BenchArgs),
    /// Minimal UDP forwarder with ternd's I/O and no TURN logic: the floor
    /// `ternd bench --mode raw` measures (benches/compare.sh)
    Forwarder(crate::bench::ForwarderArgs),
}

/// Options of `ternd token`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Subcommands of `ternd token`.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum TokenCommand {
    /// Print an HS256 access token (JWT) for development
    #[command(long_about = TOKEN_ISSUE_ABOUT)]
    Issue(TokenIssueArgs),
}

const TOKEN_ISSUE_ABOUT: &str = "\
Print a compact HS256 access token (JWT) for development and testing.

A ternd started with the same --token-hs256-secret accepts it at POST /v1/ice-servers and \
answers with TURN credentials for the token's subject. In production, access tokens come from \
your application's identity service (signed with a key ternd knows by --token-hs256-secret, \
--token-public-key or --token-jwks-file), not from this command.";

/// Options of `ternd token issue`.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct TokenIssueArgs {
    /// HS256 secret, as given to the server; of a comma-separated list the first is used
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_TOKEN_HS256_SECRET",
        value_delimiter = ',',
        hide_env_values = true,
        required = true
    )]
    pub token_hs256_secret: Vec<String>,

    /// Subject (`sub`): the user id the TURN credentials are minted for
    #[arg(long, value_name = "USER")]
    pub sub: String,

    /// How long the token stays valid (`exp` = now + TTL)
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Audience (`aud`); empty = no `aud` claim
    #[arg(long, value_name = "AUD", default_value = "ternd")]
    pub aud: String,

    /// Issuer (`iss`) [default: none]
    #[arg(long, value_name = "ISS")]
    pub iss: Option<String>,

    /// Scope (`scope`, space-separated) [default: none]
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenIssueArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssueArgs")
            .field(
                "token_hs256_secret",
                &Redacted(self.token_hs256_secret.len()),
            )
            .field("sub", &self.sub)
            .field("ttl", &self.ttl)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("scope", &self.scope)
            .finish()
    }
}

const CREDENTIALS_ABOUT: &str = "\
Print TURN REST credentials (a time-limited username and password) for a shared secret.

The username is EXPIRY:USER (EXPIRY = now + --ttl, in UNIX seconds) and the password is \
base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret and the TURN REST API \
draft define them; a ternd started with the same --secret accepts them until EXPIRY.";

/// Options of `ternd credentials`.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct CredentialsArgs {
    /// Shared secret, as given to the server; of a comma-separated list (the server's
    /// rotation list) the first, current one is used
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERND_SECRET",
        value_delimiter = ',',
        hide_env_values = true,
        required = true
    )]
    pub secret: Vec<String>,

    /// User id: the USER part of the username EXPIRY:USER (the server's quota key)
    #[arg(long, value_name = "USER")]
    pub user_id: String,

    /// How long the credentials stay valid (e.g. 30m, 1h, 86400)
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Print a JSON object {"username", "password", "ttl", "uris"}
    #[arg(long)]
    pub json: bool,

    /// TURN URI listed in the JSON output; repeatable
    /// [default: turn:127.0.0.1:3478?transport=udp and ?transport=tcp]
    #[arg(long, value_name = "URI")]
    pub uri: Vec<String>,

    /// Separator between expiry and user, as the server's auth.rest_separator
    #[arg(long, value_name = "CHAR", default_value = ":", value_parser = parse_rest_separator)]
    pub rest_separator: char,
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = values::duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("the TTL must be at least one second".to_owned());
    }
    Ok(d)
}

fn parse_rest_separator(s: &str) -> Result<char, String> {
    values::rest_separator(s)
}

impl fmt::Debug for CredentialsArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsArgs")
            .field("secret", &Redacted(self.secret.len()))
            .field("user_id", &self.user_id)
            .field("ttl", &self.ttl)
            .field("json", &self.json)
            .field("uri", &self.uri)
            .field("rest_separator", &self.rest_separator)
            .finish()
    }
}

impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field("config", &self.config)
            .field("check_config", &self.check_config)
            .field("listen", &self.listen)
            .field("realm", &self.realm)
            .field("relay_ip", &self.relay_ip)
            .field("external_ip", &self.external_ip)
            .field("relay_ports", &self.relay_ports)
            .field("secret", &Redacted(self.secret.len()))
            .field("secret_file", &self.secret_file)
            .field("user", &Redacted(self.user.len()))
            .field("allow_peer", &self.allow_peer)
            .field("deny_peer", &self.deny_peer)
            .field("rfc5766_channel_numbers", &self.rfc5766_channel_numbers)
            .field(
                "default_allocation_lifetime",
                &self.default_allocation_lifetime,
            )
            .field("max_allocation_lifetime", &self.max_allocation_lifetime)
            .field("user_quota", &self.user_quota)
            .field("total_quota", &self.total_quota)
            .field("max_allocations_per_ip", &self.max_allocations_per_ip)
            .field("unauth_rate_limit", &self.unauth_rate_limit)
            .field("unauth_rate_burst", &self.unauth_rate_burst)
            .field(
                "max_permissions_per_allocation",
                &self.max_permissions_per_allocation,
            )
            .field(
                "max_channels_per_allocation",
                &self.max_channels_per_allocation,
            )
            .field("max_bps", &self.max_bps)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("http_listen", &self.http_listen)
            .field("http_tls_cert", &self.http_tls_cert)
            .field("http_tls_key", &self.http_tls_key)
            .field("http_public_host", &self.http_public_host)
            .field("http_credential_ttl", &self.http_credential_ttl)
            .field(
                "token_hs256_secret",
                &Redacted(self.token_hs256_secret.len()),
            )
            .field("token_public_key", &self.token_public_key)
            .field("token_jwks_file", &self.token_jwks_file)
            .field("token_audience", &self.token_audience)
            .field("token_issuer", &self.token_issuer)
            .field("token_scope", &self.token_scope)
            .field("token_leeway", &self.token_leeway)
            .field("http_cors_origin", &self.http_cors_origin)
            .field("http_rate_limit", &self.http_rate_limit)
            .field("http_rate_burst", &self.http_rate_burst)
            .field(
                "http_max_connections_per_ip",
                &self.http_max_connections_per_ip,
            )
            .field(
                "admin_token",
                &Redacted(usize::from(self.admin_token.is_some())),
            )
            .field("workers", &self.workers)
            .field("udp_gso", &self.udp_gso)
            .field("udp_recv_buffer", &self.udp_recv_buffer)
            .field("udp_send_buffer", &self.udp_send_buffer)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("software", &self.software)
            .field(
                "stun_backward_compatibility",
                &self.stun_backward_compatibility,
            )
            .field("max_frame_size", &self.max_frame_size)
            .field("tcp_idle_timeout", &self.tcp_idle_timeout)
            .field("max_tcp_connections", &self.max_tcp_connections)
            .field("tls_listen", &self.tls_listen)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("tcp_relay", &self.tcp_relay)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("drain_timeout", &self.drain_timeout)
            .field("alternate_server", &self.alternate_server)
            .field("rfc5780", &self.rfc5780)
            .field("alt_ip", &self.alt_ip)
            .field("alt_port", &self.alt_port)
            .field("command", &self.command)
            .finish()
    }
}

// The parsed `Cli` does not record whether clap took a value from the
// command line or from the environment. Since the command line wins, a
// value equal to the environment variable's came from the environment
// (or was given identically in both places, where either answer is right).

/// Origin of a single-valued option.
pub(crate) fn origin_one(env: &str, value: &str) -> Origin {
    origin_os(env, OsStr::new(value))
}

/// Origin of a single-valued option whose value is a path.
pub(crate) fn origin_os(env: &str, value: &OsStr) -> Origin {
    match std::env::var_os(env) {
        Some(v) if v == value => Origin::Env(env.to_owned()),
        _ => Origin::CommandLine,
    }
}

/// Origin of a repeatable (comma-delimited) option.
pub(crate) fn origin_list(env: &str, values: &[String]) -> Origin {
    match std::env::var(env) {
        Ok(v) if v.split(',').eq(values.iter().map(String::as_str)) => Origin::Env(env.to_owned()),
        _ => Origin::CommandLine,
    }
}

/// Origin of a boolean option (its value never appears in an error).
pub(crate) fn origin_flag(env: &str) -> Origin {
    if std::env::var_os(env).is_some_and(|v| !v.is_empty()) {
        Origin::Env(env.to_owned())
    } else {
        Origin::CommandLine
    }
}

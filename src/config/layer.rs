//! One layer of partially specified configuration (file, environment /
//! command line, or an existing [`Config`]), each value tagged with its
//! origin and key so that errors can name both.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::cli::{self, Cli};
use super::values;
use super::{
    AuthConfig, Config, ConfigError, ExternalIp, HttpConfig, LogConfig, LogFormat, Origin,
    PortRange, RelayConfig, StaticUser,
};

/// A value plus where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Val<T> {
    pub(crate) value: T,
    pub(crate) origin: Origin,
    /// Dotted TOML key or flag.
    pub(crate) key: String,
}

pub(crate) type Slot<T> = Option<Val<T>>;

/// Every field is optional; `None` means "not given in this layer".
#[derive(Debug, Default)]
pub(crate) struct Layer {
    pub(crate) listen: Slot<Vec<SocketAddr>>,
    pub(crate) realm: Slot<String>,
    /// 0 = one per CPU.
    pub(crate) workers: Slot<usize>,
    pub(crate) udp_gso: Slot<bool>,
    pub(crate) udp_recv_buffer: Slot<usize>,
    pub(crate) udp_send_buffer: Slot<usize>,
    pub(crate) software: Slot<Option<String>>,
    pub(crate) stun_backward_compatibility: Slot<bool>,
    pub(crate) max_frame_size: Slot<usize>,
    pub(crate) tcp_idle_timeout: Slot<Duration>,
    pub(crate) max_tcp_connections: Slot<usize>,
    pub(crate) tls_listen: Slot<Vec<SocketAddr>>,
    pub(crate) tls_cert: Slot<Option<PathBuf>>,
    pub(crate) tls_key: Slot<Option<PathBuf>>,
    pub(crate) tls_handshake_timeout: Slot<Duration>,
    pub(crate) tcp_relay: Slot<bool>,
    pub(crate) proxy_protocol: Slot<Vec<SocketAddr>>,
    pub(crate) max_connections_per_ip: Slot<usize>,
    /// Zero allowed (stop at once).
    pub(crate) drain_timeout: Slot<Duration>,
    pub(crate) alternate_server: Slot<Option<SocketAddr>>,
    pub(crate) rfc5780: Slot<bool>,
    /// `None` inside = explicitly none (empty string).
    pub(crate) alt_ip: Slot<Option<IpAddr>>,
    /// `None` inside = the primary port + 1 (0 / empty).
    pub(crate) alt_port: Slot<Option<u16>>,

    pub(crate) relay_ips: Slot<Vec<IpAddr>>,
    pub(crate) external_ips: Slot<Vec<ExternalIp>>,
    pub(crate) ports: Slot<PortRange>,
    pub(crate) allow_peer: Slot<Vec<IpNet>>,
    pub(crate) deny_peer: Slot<Vec<IpNet>>,
    pub(crate) rfc5766_channel_numbers: Slot<bool>,
    pub(crate) default_allocation_lifetime: Slot<Duration>,
    pub(crate) max_allocation_lifetime: Slot<Duration>,
    pub(crate) user_quota: Slot<u32>,
    pub(crate) total_quota: Slot<u32>,
    pub(crate) max_allocations_per_ip: Slot<u32>,
    pub(crate) unauth_rate_limit: Slot<u32>,
    pub(crate) unauth_rate_burst: Slot<u32>,
    pub(crate) max_permissions_per_allocation: Slot<usize>,
    pub(crate) max_channels_per_allocation: Slot<usize>,
    pub(crate) max_bps: Slot<u64>,

    /// Inline secrets only (unless `secrets_resolved`).
    pub(crate) secrets: Slot<Vec<String>>,
    pub(crate) secret_file: Slot<Option<PathBuf>>,
    /// `secrets` already contains the secret file's secrets (layer built
    /// from an existing [`Config`] whose secrets are not being changed).
    pub(crate) secrets_resolved: bool,
    pub(crate) users: Slot<Vec<StaticUser>>,
    pub(crate) rest_separator: Slot<char>,
    pub(crate) nonce_lifetime: Slot<Duration>,

    pub(crate) http_listen: Slot<Option<SocketAddr>>,
    pub(crate) http_tls_cert: Slot<Option<PathBuf>>,
    pub(crate) http_tls_key: Slot<Option<PathBuf>>,
    pub(crate) http_public_hosts: Slot<Vec<String>>,
    pub(crate) http_credential_ttl: Slot<Duration>,
    pub(crate) token_hs256_secrets: Slot<Vec<String>>,
    pub(crate) token_public_keys: Slot<Vec<PathBuf>>,
    pub(crate) token_jwks_file: Slot<Option<PathBuf>>,
    pub(crate) token_audience: Slot<String>,
    pub(crate) token_issuer: Slot<Option<String>>,
    pub(crate) token_scope: Slot<Option<String>>,
    pub(crate) token_leeway: Slot<Duration>,
    pub(crate) cors_origins: Slot<Vec<String>>,
    pub(crate) rate_limit: Slot<u32>,
    pub(crate) rate_burst: Slot<u32>,
    pub(crate) http_max_connections_per_ip: Slot<usize>,
    pub(crate) admin_token: Slot<Option<String>>,

    pub(crate) log_level: Slot<String>,
    pub(crate) log_format: Slot<LogFormat>,
}

fn rank(origin: &Origin) -> u8 {
    match origin {
        Origin::CommandLine => 4,
        Origin::Env(_) => 3,
        Origin::File(_) => 2,
        Origin::Merged => 1,
    }
}

fn value_or<T: Clone>(slot: &Slot<T>, default: T) -> T {
    slot.as_ref().map_or(default, |v| v.value.clone())
}

impl Layer {
    /// `over` wins field by field.
    pub(crate) fn merge(self, over: Layer) -> Layer {
        let secrets_resolved = if over.secrets.is_some() || over.secret_file.is_some() {
            false
        } else {
            self.secrets_resolved
        };
        Layer {
            listen: over.listen.or(self.listen),
            realm: over.realm.or(self.realm),
            workers: over.workers.or(self.workers),
            udp_gso: over.udp_gso.or(self.udp_gso),
            udp_recv_buffer: over.udp_recv_buffer.or(self.udp_recv_buffer),
            udp_send_buffer: over.udp_send_buffer.or(self.udp_send_buffer),
            software: over.software.or(self.software),
            stun_backward_compatibility: over
                .stun_backward_compatibility
                .or(self.stun_backward_compatibility),
            max_frame_size: over.max_frame_size.or(self.max_frame_size),
            tcp_idle_timeout: over.tcp_idle_timeout.or(self.tcp_idle_timeout),
            max_tcp_connections: over.max_tcp_connections.or(self.max_tcp_connections),
            tls_listen: over.tls_listen.or(self.tls_listen),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_handshake_timeout: over.tls_handshake_timeout.or(self.tls_handshake_timeout),
            tcp_relay: over.tcp_relay.or(self.tcp_relay),
            proxy_protocol: over.proxy_protocol.or(self.proxy_protocol),
            max_connections_per_ip: over.max_connections_per_ip.or(self.max_connections_per_ip),
            drain_timeout: over.drain_timeout.or(self.drain_timeout),
            alternate_server: over.alternate_server.or(self.alternate_server),
            rfc5780: over.rfc5780.or(self.rfc5780),
            alt_ip: over.alt_ip.or(self.alt_ip),
            alt_port: over.alt_port.or(self.alt_port),
            relay_ips: over.relay_ips.or(self.relay_ips),
            external_ips: over.external_ips.or(self.external_ips),
            ports: over.ports.or(self.ports),
            allow_peer: over.allow_peer.or(self.allow_peer),
            deny_peer: over.deny_peer.or(self.deny_peer),
            rfc5766_channel_numbers: over
                .rfc5766_channel_numbers
                .or(self.rfc5766_channel_numbers),
            default_allocation_lifetime: over
                .default_allocation_lifetime
                .or(self.default_allocation_lifetime),
            max_allocation_lifetime: over
                .max_allocation_lifetime
                .or(self.max_allocation_lifetime),
            user_quota: over.user_quota.or(self.user_quota),
            total_quota: over.total_quota.or(self.total_quota),
            max_allocations_per_ip: over.max_allocations_per_ip.or(self.max_allocations_per_ip),
            unauth_rate_limit: over.unauth_rate_limit.or(self.unauth_rate_limit),
            unauth_rate_burst: over.unauth_rate_burst.or(self.unauth_rate_burst),
            max_permissions_per_allocation: over
                .max_permissions_per_allocation
                .or(self.max_permissions_per_allocation),
            max_channels_per_allocation: over
                .max_channels_per_allocation
                .or(self.max_channels_per_allocation),
            max_bps: over.max_bps.or(self.max_bps),
            secrets: over.secrets.or(self.secrets),
            secret_file: over.secret_file.or(self.secret_file),
            secrets_resolved,
            users: over.users.or(self.users),
            rest_separator: over.rest_separator.or(self.rest_separator),
            nonce_lifetime: over.nonce_lifetime.or(self.nonce_lifetime),
            http_listen: over.http_listen.or(self.http_listen),
            http_tls_cert: over.http_tls_cert.or(self.http_tls_cert),
            http_tls_key: over.http_tls_key.or(self.http_tls_key),
            http_public_hosts: over.http_public_hosts.or(self.http_public_hosts),
            http_credential_ttl: over.http_credential_ttl.or(self.http_credential_ttl),
            token_hs256_secrets: over.token_hs256_secrets.or(self.token_hs256_secrets),
            token_public_keys: over.token_public_keys.or(self.token_public_keys),
            token_jwks_file: over.token_jwks_file.or(self.token_jwks_file),
            token_audience: over.token_audience.or(self.token_audience),
            token_issuer: over.token_issuer.or(self.token_issuer),
            token_scope: over.token_scope.or(self.token_scope),
            token_leeway: over.token_leeway.or(self.token_leeway),
            cors_origins: over.cors_origins.or(self.cors_origins),
            rate_limit: over.rate_limit.or(self.rate_limit),
            rate_burst: over.rate_burst.or(self.rate_burst),
            http_max_connections_per_ip: over
                .http_max_connections_per_ip
                .or(self.http_max_connections_per_ip),
            admin_token: over.admin_token.or(self.admin_token),
            log_level: over.log_level.or(self.log_level),
            log_format: over.log_format.or(self.log_format),
        }
    }

    /// Fills in defaults, reads the secret file, checks cross-field rules.
    pub(crate) fn build(self) -> Result<Config, ConfigError> {
        let defaults = Config::default();

        let workers = match value_or(&self.workers, 0) {
            0 => super::default_workers(),
            n => n,
        };

        let relay_defaults = &defaults.relay;
        let default_lifetime = value_or(
            &self.default_allocation_lifetime,
            relay_defaults.default_allocation_lifetime,
        );
        let max_lifetime = value_or(
            &self.max_allocation_lifetime,
            relay_defaults.max_allocation_lifetime,
        );
        if max_lifetime < default_lifetime {
            return Err(lifetime_error(
                &self.default_allocation_lifetime,
                &self.max_allocation_lifetime,
                default_lifetime,
                max_lifetime,
            ));
        }

        let secret_file = self.secret_file.as_ref().and_then(|v| v.value.clone());
        let mut secrets = value_or(&self.secrets, Vec::new());
        if !self.secrets_resolved
            && let Some(Val {
                value: Some(path),
                origin,
                key,
            }) = &self.secret_file
        {
            secrets.extend(read_secret_file(path, origin, key)?);
        }

        let listen = value_or(&self.listen, defaults.listen);
        let (tls_listen, tls_cert, tls_key) = self.build_tls(&listen)?;
        let proxy_protocol = self.check_proxy_protocol(&listen, &tls_listen)?;
        let (rfc5780, alt_ip, alt_port) = self.check_rfc5780(&listen)?;

        let http = self.build_http(&defaults.http)?;
        let not_yet_supported = Vec::new();

        Ok(Config {
            listen,
            realm: value_or(&self.realm, defaults.realm),
            workers,
            udp_gso: value_or(&self.udp_gso, defaults.udp_gso),
            udp_recv_buffer: value_or(&self.udp_recv_buffer, defaults.udp_recv_buffer),
            udp_send_buffer: value_or(&self.udp_send_buffer, defaults.udp_send_buffer),
            software: value_or(&self.software, defaults.software),
            stun_backward_compatibility: value_or(
                &self.stun_backward_compatibility,
                defaults.stun_backward_compatibility,
            ),
            max_frame_size: value_or(&self.max_frame_size, defaults.max_frame_size),
            tcp_idle_timeout: value_or(&self.tcp_idle_timeout, defaults.tcp_idle_timeout),
            max_tcp_connections: value_or(&self.max_tcp_connections, defaults.max_tcp_connections),
            tls_listen,
            tls_cert,
            tls_key,
            tls_handshake_timeout: value_or(
                &self.tls_handshake_timeout,
                defaults.tls_handshake_timeout,
            ),
            tcp_relay: value_or(&self.tcp_relay, defaults.tcp_relay),
            proxy_protocol,
            max_connections_per_ip: value_or(
                &self.max_connections_per_ip,
                defaults.max_connections_per_ip,
            ),
            drain_timeout: value_or(&self.drain_timeout, defaults.drain_timeout),
            alternate_server: value_or(&self.alternate_server, defaults.alternate_server),
            rfc5780,
            alt_ip,
            alt_port,
            relay: RelayConfig {
                relay_ips: value_or(&self.relay_ips, Vec::new()),
                external_ips: value_or(&self.external_ips, Vec::new()),
                ports: value_or(&self.ports, relay_defaults.ports),
                allow_peer: value_or(&self.allow_peer, Vec::new()),
                deny_peer: value_or(&self.deny_peer, Vec::new()),
                rfc5766_channel_numbers: value_or(
                    &self.rfc5766_channel_numbers,
                    relay_defaults.rfc5766_channel_numbers,
                ),
                default_allocation_lifetime: default_lifetime,
                max_allocation_lifetime: max_lifetime,
                user_quota: value_or(&self.user_quota, relay_defaults.user_quota),
                total_quota: value_or(&self.total_quota, relay_defaults.total_quota),
                max_allocations_per_ip: value_or(
                    &self.max_allocations_per_ip,
                    relay_defaults.max_allocations_per_ip,
                ),
                unauth_rate_limit: value_or(
                    &self.unauth_rate_limit,
                    relay_defaults.unauth_rate_limit,
                ),
                unauth_rate_burst: value_or(
                    &self.unauth_rate_burst,
                    relay_defaults.unauth_rate_burst,
                ),
                max_permissions_per_allocation: value_or(
                    &self.max_permissions_per_allocation,
                    relay_defaults.max_permissions_per_allocation,
                ),
                max_channels_per_allocation: value_or(
                    &self.max_channels_per_allocation,
                    relay_defaults.max_channels_per_allocation,
                ),
                max_bps: value_or(&self.max_bps, relay_defaults.max_bps),
            },
            auth: AuthConfig {
                secrets,
                secret_file,
                users: value_or(&self.users, Vec::new()),
                rest_separator: value_or(&self.rest_separator, defaults.auth.rest_separator),
                nonce_lifetime: value_or(&self.nonce_lifetime, defaults.auth.nonce_lifetime),
            },
            http,
            log: LogConfig {
                level: value_or(&self.log_level, defaults.log.level),
                format: value_or(&self.log_format, defaults.log.format),
            },
            not_yet_supported,
        })
    }

    /// The command-line / environment layer of an already-parsed [`Cli`].
    pub(crate) fn from_cli(c: &Cli) -> Result<Layer, ConfigError> {
        Ok(Layer {
            listen: cli_list("TERND_LISTEN", "--listen", &c.listen, values::listen)?,
            realm: cli_one("TERND_REALM", "--realm", &c.realm, values::realm)?,
            workers: cli_one("TERND_WORKERS", "--workers", &c.workers, |s| {
                values::uint(s).and_then(values::workers)
            })?,
            udp_gso: cli_bool("TERND_UDP_GSO", "--udp-gso", c.udp_gso),
            udp_recv_buffer: cli_one(
                "TERND_UDP_RECV_BUFFER",
                "--udp-recv-buffer",
                &c.udp_recv_buffer,
                |s| values::uint(s).and_then(values::udp_buffer),
            )?,
            udp_send_buffer: cli_one(
                "TERND_UDP_SEND_BUFFER",
                "--udp-send-buffer",
                &c.udp_send_buffer,
                |s| values::uint(s).and_then(values::udp_buffer),
            )?,
            software: cli_one(
                "TERND_SOFTWARE",
                "--software",
                &c.software,
                values::software,
            )?,
            stun_backward_compatibility: cli_bool(
                "TERND_STUN_BACKWARD_COMPATIBILITY",
                "--stun-backward-compatibility",
                c.stun_backward_compatibility,
            ),
            max_frame_size: cli_one(
                "TERND_MAX_FRAME_SIZE",
                "--max-frame-size",
                &c.max_frame_size,
                |s| values::uint(s).and_then(values::max_frame_size),
            )?,
            tcp_idle_timeout: cli_one(
                "TERND_TCP_IDLE_TIMEOUT",
                "--tcp-idle-timeout",
                &c.tcp_idle_timeout,
                values::duration,
            )?,
            max_tcp_connections: cli_one(
                "TERND_MAX_TCP_CONNECTIONS",
                "--max-tcp-connections",
                &c.max_tcp_connections,
                |s| values::uint(s).and_then(values::max_tcp_connections),
            )?,
            tls_listen: cli_list(
                "TERND_TLS_LISTEN",
                "--tls-listen",
                &c.tls_listen,
                values::listener_list,
            )?,
            tls_cert: cli_one("TERND_CERT", "--cert", &c.cert, values::optional_path)?,
            tls_key: cli_one("TERND_KEY", "--key", &c.key, values::optional_path)?,
            tls_handshake_timeout: cli_one(
                "TERND_TLS_HANDSHAKE_TIMEOUT",
                "--tls-handshake-timeout",
                &c.tls_handshake_timeout,
                values::duration,
            )?,
            tcp_relay: cli_bool("TERND_TCP_RELAY", "--tcp-relay", c.tcp_relay),
            proxy_protocol: cli_list(
                "TERND_PROXY_PROTOCOL",
                "--proxy-protocol",
                &c.proxy_protocol,
                values::listener_list,
            )?,
            max_connections_per_ip: cli_one(
                "TERND_MAX_CONNECTIONS_PER_IP",
                "--max-connections-per-ip",
                &c.max_connections_per_ip,
                |s| values::uint(s).and_then(values::max_connections_per_ip),
            )?,
            drain_timeout: cli_one(
                "TERND_DRAIN_TIMEOUT",
                "--drain-timeout",
                &c.drain_timeout,
                values::duration_or_zero,
            )?,
            alternate_server: cli_one(
                "TERND_ALTERNATE_SERVER",
                "--alternate-server",
                &c.alternate_server,
                values::alternate_server,
            )?,
            rfc5780: cli_bool("TERND_RFC5780", "--rfc5780", c.rfc5780),
            alt_ip: cli_one("TERND_ALT_IP", "--alt-ip", &c.alt_ip, values::alt_ip)?,
            alt_port: cli_one(
                "TERND_ALT_PORT",
                "--alt-port",
                &c.alt_port,
                values::alt_port_text,
            )?,
            relay_ips: cli_list(
                "TERND_RELAY_IP",
                "--relay-ip",
                &c.relay_ip,
                values::relay_ips,
            )?,
            external_ips: cli_list(
                "TERND_EXTERNAL_IP",
                "--external-ip",
                &c.external_ip,
                values::external_ips,
            )?,
            ports: cli_one(
                "TERND_RELAY_PORTS",
                "--relay-ports",
                &c.relay_ports,
                values::port_range,
            )?,
            allow_peer: cli_list(
                "TERND_ALLOW_PEER",
                "--allow-peer",
                &c.allow_peer,
                values::cidrs,
            )?,
            deny_peer: cli_list(
                "TERND_DENY_PEER",
                "--deny-peer",
                &c.deny_peer,
                values::cidrs,
            )?,
            rfc5766_channel_numbers: cli_bool(
                "TERND_RFC5766_CHANNEL_NUMBERS",
                "--rfc5766-channel-numbers",
                c.rfc5766_channel_numbers,
            ),
            default_allocation_lifetime: cli_one(
                "TERND_DEFAULT_ALLOCATION_LIFETIME",
                "--default-allocation-lifetime",
                &c.default_allocation_lifetime,
                values::duration,
            )?,
            max_allocation_lifetime: cli_one(
                "TERND_MAX_ALLOCATION_LIFETIME",
                "--max-allocation-lifetime",
                &c.max_allocation_lifetime,
                values::duration,
            )?,
            user_quota: cli_one(
                "TERND_USER_QUOTA",
                "--user-quota",
                &c.user_quota,
                values::uint,
            )?,
            total_quota: cli_one(
                "TERND_TOTAL_QUOTA",
                "--total-quota",
                &c.total_quota,
                values::uint,
            )?,
            max_allocations_per_ip: cli_one(
                "TERND_MAX_ALLOCATIONS_PER_IP",
                "--max-allocations-per-ip",
                &c.max_allocations_per_ip,
                values::uint,
            )?,
            unauth_rate_limit: cli_one(
                "TERND_UNAUTH_RATE_LIMIT",
                "--unauth-rate-limit",
                &c.unauth_rate_limit,
                values::uint,
            )?,
            unauth_rate_burst: cli_one(
                "TERND_UNAUTH_RATE_BURST",
                "--unauth-rate-burst",
                &c.unauth_rate_burst,
                |s| values::uint(s).and_then(values::unauth_rate_burst),
            )?,
            max_permissions_per_allocation: cli_one(
                "TERND_MAX_PERMISSIONS_PER_ALLOCATION",
                "--max-permissions-per-allocation",
                &c.max_permissions_per_allocation,
                |s| values::uint(s).and_then(values::max_permissions),
            )?,
            max_channels_per_allocation: cli_one(
                "TERND_MAX_CHANNELS_PER_ALLOCATION",
                "--max-channels-per-allocation",
                &c.max_channels_per_allocation,
                |s| values::uint(s).and_then(values::max_channels),
            )?,
            max_bps: cli_one("TERND_MAX_BPS", "--max-bps", &c.max_bps, values::uint)?,
            secrets: cli_list("TERND_SECRET", "--secret", &c.secret, values::secrets)?,
            secret_file: cli_one("TERND_SECRET_FILE", "--secret-file", &c.secret_file, |s| {
                Ok((!s.is_empty()).then(|| PathBuf::from(s)))
            })?,
            secrets_resolved: false,
            users: cli_list("TERND_USER", "--user", &c.user, |items| {
                let users = items
                    .iter()
                    .map(|s| values::user_spec(s))
                    .collect::<Result<Vec<_>, _>>()?;
                values::unique_users(&users)?;
                Ok(users)
            })?,
            rest_separator: None,
            nonce_lifetime: cli_one(
                "TERND_NONCE_LIFETIME",
                "--nonce-lifetime",
                &c.nonce_lifetime,
                values::duration,
            )?,
            http_listen: cli_one(
                "TERND_HTTP_LISTEN",
                "--http-listen",
                &c.http_listen,
                values::http_listen,
            )?,
            http_tls_cert: cli_one(
                "TERND_HTTP_TLS_CERT",
                "--http-tls-cert",
                &c.http_tls_cert,
                values::optional_path,
            )?,
            http_tls_key: cli_one(
                "TERND_HTTP_TLS_KEY",
                "--http-tls-key",
                &c.http_tls_key,
                values::optional_path,
            )?,
            http_public_hosts: cli_list(
                "TERND_HTTP_PUBLIC_HOST",
                "--http-public-host",
                &c.http_public_host,
                values::public_hosts,
            )?,
            http_credential_ttl: cli_one(
                "TERND_HTTP_CREDENTIAL_TTL",
                "--http-credential-ttl",
                &c.http_credential_ttl,
                |s| values::duration(s).and_then(values::credential_ttl),
            )?,
            token_hs256_secrets: cli_list(
                "TERND_TOKEN_HS256_SECRET",
                "--token-hs256-secret",
                &c.token_hs256_secret,
                values::secrets,
            )?,
            token_public_keys: cli_list(
                "TERND_TOKEN_PUBLIC_KEY",
                "--token-public-key",
                &c.token_public_key,
                values::paths,
            )?,
            token_jwks_file: cli_one(
                "TERND_TOKEN_JWKS_FILE",
                "--token-jwks-file",
                &c.token_jwks_file,
                values::optional_path,
            )?,
            token_audience: cli_one(
                "TERND_TOKEN_AUDIENCE",
                "--token-audience",
                &c.token_audience,
                values::audience,
            )?,
            token_issuer: cli_one(
                "TERND_TOKEN_ISSUER",
                "--token-issuer",
                &c.token_issuer,
                values::optional_text,
            )?,
            token_scope: cli_one(
                "TERND_TOKEN_SCOPE",
                "--token-scope",
                &c.token_scope,
                values::scope,
            )?,
            token_leeway: cli_one(
                "TERND_TOKEN_LEEWAY",
                "--token-leeway",
                &c.token_leeway,
                values::leeway,
            )?,
            cors_origins: cli_list(
                "TERND_HTTP_CORS_ORIGIN",
                "--http-cors-origin",
                &c.http_cors_origin,
                values::cors_origins,
            )?,
            rate_limit: cli_one(
                "TERND_HTTP_RATE_LIMIT",
                "--http-rate-limit",
                &c.http_rate_limit,
                values::uint,
            )?,
            rate_burst: cli_one(
                "TERND_HTTP_RATE_BURST",
                "--http-rate-burst",
                &c.http_rate_burst,
                |s| values::uint(s).and_then(values::rate_burst),
            )?,
            http_max_connections_per_ip: cli_one(
                "TERND_HTTP_MAX_CONNECTIONS_PER_IP",
                "--http-max-connections-per-ip",
                &c.http_max_connections_per_ip,
                |s| values::uint(s).and_then(values::http_max_connections_per_ip),
            )?,
            admin_token: cli_one(
                "TERND_ADMIN_TOKEN",
                "--admin-token",
                &c.admin_token,
                values::admin_token,
            )?,
            log_level: cli_one(
                "TERND_LOG_LEVEL",
                "--log-level",
                &c.log_level,
                values::log_level,
            )?,
            log_format: cli_one(
                "TERND_LOG_FORMAT",
                "--log-format",
                &c.log_format,
                values::log_format,
            )?,
        })
    }

    /// A layer holding every value of `config` (origin [`Origin::Merged`]),
    /// ready to have `cli` laid over it.
    pub(crate) fn from_config(config: Config, cli: &Cli) -> Layer {
        fn v<T>(value: T, key: &str) -> Slot<T> {
            Some(Val {
                value,
                origin: Origin::Merged,
                key: key.to_owned(),
            })
        }
        let Config {
            listen,
            realm,
            workers,
            udp_gso,
            udp_recv_buffer,
            udp_send_buffer,
            software,
            stun_backward_compatibility,
            max_frame_size,
            tcp_idle_timeout,
            max_tcp_connections,
            tls_listen,
            tls_cert,
            tls_key,
            tls_handshake_timeout,
            tcp_relay,
            proxy_protocol,
            max_connections_per_ip,
            drain_timeout,
            alternate_server,
            rfc5780,
            alt_ip,
            alt_port,
            relay,
            auth,
            http,
            log,
            not_yet_supported: _,
        } = config;

        // If the secrets are about to change, drop the ones that came from
        // the old secret file so that they are not kept (or duplicated).
        let secrets_change = !cli.secret.is_empty() || cli.secret_file.is_some();
        let mut secrets = auth.secrets;
        if secrets_change
            && let Some(path) = &auth.secret_file
            && let Ok(text) = std::fs::read_to_string(path)
        {
            let from_file = values::secret_file_contents(&text);
            if secrets.ends_with(&from_file) {
                secrets.truncate(secrets.len() - from_file.len());
            }
        }

        Layer {
            listen: v(listen, "listen"),
            realm: v(realm, "realm"),
            workers: v(workers, "workers"),
            udp_gso: v(udp_gso, "udp_gso"),
            udp_recv_buffer: v(udp_recv_buffer, "udp_recv_buffer"),
            udp_send_buffer: v(udp_send_buffer, "udp_send_buffer"),
            software: v(software, "software"),
            stun_backward_compatibility: v(
                stun_backward_compatibility,
                "stun_backward_compatibility",
            ),
            max_frame_size: v(max_frame_size, "max_frame_size"),
            tcp_idle_timeout: v(tcp_idle_timeout, "tcp_idle_timeout"),
            max_tcp_connections: v(max_tcp_connections, "max_tcp_connections"),
            tls_listen: v(tls_listen, "tls_listen"),
            tls_cert: v(tls_cert, "tls_cert"),
            tls_key: v(tls_key, "tls_key"),
            tls_handshake_timeout: v(tls_handshake_timeout, "tls_handshake_timeout"),
            tcp_relay: v(tcp_relay, "tcp_relay"),
            proxy_protocol: v(proxy_protocol, "proxy_protocol"),
            max_connections_per_ip: v(max_connections_per_ip, "max_connections_per_ip"),
            drain_timeout: v(drain_timeout, "drain_timeout"),
            alternate_server: v(alternate_server, "alternate_server"),
            rfc5780: v(rfc5780, "rfc5780"),
            alt_ip: v(alt_ip, "alt_ip"),
            alt_port: v(alt_port, "alt_port"),
            relay_ips: v(relay.relay_ips, "relay.relay_ips"),
            external_ips: v(relay.external_ips, "relay.external_ips"),
            ports: v(relay.ports, "relay.ports"),
            allow_peer: v(relay.allow_peer, "relay.allow_peer"),
            deny_peer: v(relay.deny_peer, "relay.deny_peer"),
            rfc5766_channel_numbers: v(
                relay.rfc5766_channel_numbers,
                "relay.rfc5766_channel_numbers",
            ),
            default_allocation_lifetime: v(
                relay.default_allocation_lifetime,
                "relay.default_allocation_lifetime",
            ),
            max_allocation_lifetime: v(
                relay.max_allocation_lifetime,
                "relay.max_allocation_lifetime",
            ),
            user_quota: v(relay.user_quota, "relay.user_quota"),
            total_quota: v(relay.total_quota, "relay.total_quota"),
            max_allocations_per_ip: v(relay.max_allocations_per_ip, "relay.max_allocations_per_ip"),
            unauth_rate_limit: v(relay.unauth_rate_limit, "relay.unauth_rate_limit"),
            unauth_rate_burst: v(relay.unauth_rate_burst, "relay.unauth_rate_burst"),
            max_permissions_per_allocation: v(
                relay.max_permissions_per_allocation,
                "relay.max_permissions_per_allocation",
            ),
            max_channels_per_allocation: v(
                relay.max_channels_per_allocation,
                "relay.max_channels_per_allocation",
            ),
            max_bps: v(relay.max_bps, "relay.max_bps"),
            secrets: v(secrets, "auth.secrets"),
            secret_file: v(auth.secret_file, "auth.secret_file"),
            secrets_resolved: !secrets_change,
            users: v(auth.users, "auth.users"),
            rest_separator: v(auth.rest_separator, "auth.rest_separator"),
            nonce_lifetime: v(auth.nonce_lifetime, "auth.nonce_lifetime"),
            http_listen: v(http.listen, "http.listen"),
            http_tls_cert: v(http.tls_cert, "http.tls_cert"),
            http_tls_key: v(http.tls_key, "http.tls_key"),
            http_public_hosts: v(http.public_hosts, "http.public_hosts"),
            http_credential_ttl: v(http.credential_ttl, "http.credential_ttl"),
            token_hs256_secrets: v(http.token_hs256_secrets, "http.token_hs256_secrets"),
            token_public_keys: v(http.token_public_keys, "http.token_public_keys"),
            token_jwks_file: v(http.token_jwks_file, "http.token_jwks_file"),
            token_audience: v(http.token_audience, "http.token_audience"),
            token_issuer: v(http.token_issuer, "http.token_issuer"),
            token_scope: v(http.token_scope, "http.token_scope"),
            token_leeway: v(http.token_leeway, "http.token_leeway"),
            cors_origins: v(http.cors_origins, "http.cors_origins"),
            rate_limit: v(http.rate_limit, "http.rate_limit"),
            rate_burst: v(http.rate_burst, "http.rate_burst"),
            http_max_connections_per_ip: v(
                http.max_connections_per_ip,
                "http.max_connections_per_ip",
            ),
            admin_token: v(http.admin_token, "http.admin_token"),
            log_level: v(log.level, "log.level"),
            log_format: v(log.format, "log.format"),
        }
    }
}

/// `TLS listeners, certificate, key` as built by [`Layer::build_tls`].
type TlsParts = (Vec<SocketAddr>, Option<PathBuf>, Option<PathBuf>);

/// `` `KEY` from ORIGIN `` for messages about another value, or `builtin`.
fn describe<T>(slot: &Slot<T>, builtin: &str) -> String {
    match slot {
        Some(v) => format!("`{}` from {}", v.key, v.origin),
        None => builtin.to_owned(),
    }
}

impl Layer {
    /// The TURN-over-TLS listeners, certificate and key: listeners distinct
    /// from the TCP ones, certificate and key given together (and required
    /// with listeners), read and parsed (errors name the key and the file).
    fn build_tls(&self, listen: &[SocketAddr]) -> Result<TlsParts, ConfigError> {
        let tls_listen = value_or(&self.tls_listen, Vec::new());
        if let Some(slot) = &self.tls_listen {
            for &addr in &tls_listen {
                if let Some(&other) = listen.iter().find(|&&l| values::listeners_overlap(addr, l)) {
                    let what = if other == addr {
                        format!("`{addr}` is also a TCP listen address")
                    } else {
                        format!("`{addr}` overlaps the TCP listen address `{other}`")
                    };
                    return Err(ConfigError::invalid(
                        &slot.origin,
                        &slot.key,
                        format!(
                            "{what} ({}); a TLS listener needs an address (port) of its own",
                            describe(&self.listen, "built-in default of `listen`"),
                        ),
                    ));
                }
            }
        }
        let cert = self.tls_cert.as_ref().and_then(|v| v.value.clone());
        let key = self.tls_key.as_ref().and_then(|v| v.value.clone());
        match (&self.tls_cert, &self.tls_key, &cert, &key) {
            (_, _, Some(c), Some(k)) => {
                if let Err(e) = crate::http::tls::server_config(c, k) {
                    let slot = if e.is_certificate() {
                        &self.tls_cert
                    } else {
                        &self.tls_key
                    };
                    return Err(slot_error(slot, "tls_key", e.to_string()));
                }
            }
            (Some(v), _, Some(_), None) => {
                return Err(ConfigError::invalid(
                    &v.origin,
                    &v.key,
                    "a TLS certificate needs a private key too (tls_key / --key / TERND_KEY)",
                ));
            }
            (_, Some(v), None, Some(_)) => {
                return Err(ConfigError::invalid(
                    &v.origin,
                    &v.key,
                    "a TLS private key needs a certificate too (tls_cert / --cert / TERND_CERT)",
                ));
            }
            _ => {}
        }
        if cert.is_none()
            && key.is_none()
            && let (Some(slot), false) = (&self.tls_listen, tls_listen.is_empty())
        {
            return Err(ConfigError::invalid(
                &slot.origin,
                &slot.key,
                "TLS listeners need a certificate and a private key \
                 (tls_cert and tls_key / --cert and --key / TERND_CERT and TERND_KEY)",
            ));
        }
        Ok((tls_listen, cert, key))
    }

    /// PROXY-protocol addresses: each must be a TCP or TLS listener.
    fn check_proxy_protocol(
        &self,
        listen: &[SocketAddr],
        tls_listen: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        let proxy = value_or(&self.proxy_protocol, Vec::new());
        if let Some(slot) = &self.proxy_protocol
            && let Some(addr) = proxy
                .iter()
                .find(|a| !listen.contains(a) && !tls_listen.contains(a))
        {
            return Err(ConfigError::invalid(
                &slot.origin,
                &slot.key,
                format!(
                    "`{addr}` is not a listener address: each address must appear exactly in \
                     listen ({}) or tls_listen ({})",
                    describe(&self.listen, "built-in default"),
                    describe(&self.tls_listen, "empty"),
                ),
            ));
        }
        Ok(proxy)
    }

    /// RFC 5780 settings: `rfc5780` needs `alt_ip` and a primary address (the
    /// first specific `listen` address of `alt_ip`'s family) whose IP
    /// differs from `alt_ip` and whose port differs from `alt_port` (and
    /// has a successor when `alt_port` is unset); `alt_ip` and `alt_port`
    /// are only allowed with `rfc5780` on, so that a typo cannot silently
    /// do nothing.
    fn check_rfc5780(
        &self,
        listen: &[SocketAddr],
    ) -> Result<(bool, Option<IpAddr>, Option<u16>), ConfigError> {
        const ENABLE: &str = "rfc5780 = true (--rfc5780 / TERND_RFC5780)";
        let on = value_or(&self.rfc5780, false);
        let alt_ip = value_or(&self.alt_ip, None);
        let alt_port = value_or(&self.alt_port, None);
        if !on {
            if let (Some(slot), Some(ip)) = (&self.alt_ip, alt_ip) {
                return Err(ConfigError::invalid(
                    &slot.origin,
                    &slot.key,
                    format!(
                        "alternate IP `{ip}` is only used for RFC 5780 NAT behaviour \
                         discovery, which is off ({}); it needs {ENABLE}",
                        describe(&self.rfc5780, "built-in default of `rfc5780`"),
                    ),
                ));
            }
            if let (Some(slot), Some(port)) = (&self.alt_port, alt_port) {
                return Err(ConfigError::invalid(
                    &slot.origin,
                    &slot.key,
                    format!(
                        "alternate port {port} is only used for RFC 5780 NAT behaviour \
                         discovery, which is off ({}); it needs {ENABLE}",
                        describe(&self.rfc5780, "built-in default of `rfc5780`"),
                    ),
                ));
            }
            return Ok((false, None, None));
        }
        let Some(ip) = alt_ip else {
            return Err(slot_error(
                &self.rfc5780,
                "rfc5780",
                format!(
                    "RFC 5780 NAT behaviour discovery needs a second IP address of this host: \
                     set alt_ip (--alt-ip / TERND_ALT_IP){}",
                    match &self.alt_ip {
                        Some(v) => format!(" (`{}` from {} is empty)", v.key, v.origin),
                        None => String::new(),
                    },
                ),
            ));
        };
        let Some(primary) = values::rfc5780_primary(listen, ip) else {
            let example = if ip.is_ipv4() {
                "`--listen 127.0.0.1:3478 --alt-ip 127.0.0.2`"
            } else {
                "`--listen [2001:db8::1]:3478 --alt-ip 2001:db8::2`"
            };
            return Err(slot_error(
                &self.rfc5780,
                "rfc5780",
                format!(
                    "RFC 5780 needs a specific `listen` address of alt_ip's family as the \
                     primary address, e.g. {example}; listen ({}) has no {family} address \
                     other than the unspecified one (alt_ip `{ip}`, {})",
                    describe(&self.listen, "built-in default"),
                    describe(&self.alt_ip, "built-in default"),
                    family = values::family(&ip),
                ),
            ));
        };
        if primary.ip() == ip {
            return Err(slot_error(
                &self.alt_ip,
                "alt_ip",
                format!(
                    "alternate IP `{ip}` is the primary IP (primary address `{primary}`: the \
                     first specific {} `listen` address, {}); RFC 5780 needs a second, \
                     different IP address",
                    values::family(&ip),
                    describe(&self.listen, "built-in default"),
                ),
            ));
        }
        match alt_port {
            Some(port) if primary.port() != 0 && port == primary.port() => {
                return Err(slot_error(
                    &self.alt_port,
                    "alt_port",
                    format!(
                        "alternate port {port} is the primary port (primary address \
                         `{primary}`, {}); RFC 5780 needs a different port \
                         (0 = the primary port + 1)",
                        describe(&self.listen, "built-in default of `listen`"),
                    ),
                ));
            }
            None if primary.port() == u16::MAX => {
                return Err(slot_error(
                    &self.rfc5780,
                    "rfc5780",
                    format!(
                        "the primary address `{primary}` has port {}, so there is no \
                         primary port + 1 to use as the alternate port; set alt_port \
                         (--alt-port / TERND_ALT_PORT)",
                        u16::MAX,
                    ),
                ));
            }
            _ => {}
        }
        Ok((true, Some(ip), alt_port))
    }

    /// The `[http]` section: defaults filled in, key and certificate files
    /// read and parsed (errors name the key and the file).
    fn build_http(&self, d: &HttpConfig) -> Result<HttpConfig, ConfigError> {
        let tls_cert = self.http_tls_cert.as_ref().and_then(|v| v.value.clone());
        let tls_key = self.http_tls_key.as_ref().and_then(|v| v.value.clone());
        match (&self.http_tls_cert, &self.http_tls_key, &tls_cert, &tls_key) {
            (_, _, Some(cert), Some(key)) => {
                if let Err(e) = crate::http::tls::server_config(cert, key) {
                    let slot = if e.is_certificate() {
                        &self.http_tls_cert
                    } else {
                        &self.http_tls_key
                    };
                    return Err(slot_error(slot, "http.tls_key", e.to_string()));
                }
            }
            (Some(v), _, Some(_), None) => {
                return Err(ConfigError::invalid(
                    &v.origin,
                    &v.key,
                    "a TLS certificate needs a private key too (http.tls_key / --http-tls-key)",
                ));
            }
            (_, Some(v), None, Some(_)) => {
                return Err(ConfigError::invalid(
                    &v.origin,
                    &v.key,
                    "a TLS private key needs a certificate too (http.tls_cert / --http-tls-cert)",
                ));
            }
            _ => {}
        }
        let token_public_keys = value_or(&self.token_public_keys, Vec::new());
        if let Some(slot) = &self.token_public_keys {
            for path in &token_public_keys {
                if let Err(m) = crate::http::token::load_pem_file(path) {
                    return Err(ConfigError::invalid(&slot.origin, &slot.key, m));
                }
            }
        }
        let token_jwks_file = self.token_jwks_file.as_ref().and_then(|v| v.value.clone());
        if let (Some(slot), Some(path)) = (&self.token_jwks_file, &token_jwks_file)
            && let Err(m) = crate::http::token::load_jwks_file(path)
        {
            return Err(ConfigError::invalid(&slot.origin, &slot.key, m));
        }
        Ok(HttpConfig {
            listen: value_or(&self.http_listen, d.listen),
            tls_cert,
            tls_key,
            public_hosts: value_or(&self.http_public_hosts, d.public_hosts.clone()),
            credential_ttl: value_or(&self.http_credential_ttl, d.credential_ttl),
            token_hs256_secrets: value_or(&self.token_hs256_secrets, Vec::new()),
            token_public_keys,
            token_jwks_file,
            token_audience: value_or(&self.token_audience, d.token_audience.clone()),
            token_issuer: value_or(&self.token_issuer, None),
            token_scope: value_or(&self.token_scope, None),
            token_leeway: value_or(&self.token_leeway, d.token_leeway),
            cors_origins: value_or(&self.cors_origins, Vec::new()),
            rate_limit: value_or(&self.rate_limit, d.rate_limit),
            rate_burst: value_or(&self.rate_burst, d.rate_burst),
            max_connections_per_ip: value_or(
                &self.http_max_connections_per_ip,
                d.max_connections_per_ip,
            ),
            admin_token: value_or(&self.admin_token, None),
        })
    }
}

fn slot_error<T>(slot: &Slot<T>, fallback_key: &str, message: String) -> ConfigError {
    match slot {
        Some(v) => ConfigError::invalid(&v.origin, &v.key, message),
        None => ConfigError::invalid(&Origin::Merged, fallback_key, message),
    }
}

fn lifetime_error(
    default: &Slot<Duration>,
    max: &Slot<Duration>,
    default_value: Duration,
    max_value: Duration,
) -> ConfigError {
    // Blame the value with the highest precedence; on a tie, the maximum.
    let blame_default = match (default, max) {
        (Some(d), Some(m)) => rank(&d.origin) > rank(&m.origin),
        (Some(_), None) => true,
        _ => false,
    };
    let (origin, key) = match (blame_default, default, max) {
        (true, Some(d), _) => (d.origin.clone(), d.key.clone()),
        (_, _, Some(m)) => (m.origin.clone(), m.key.clone()),
        _ => (Origin::Merged, "relay.max_allocation_lifetime".to_owned()),
    };
    let message = if blame_default {
        format!(
            "default allocation lifetime ({}) is longer than the maximum allocation lifetime ({}, {})",
            values::fmt_duration(default_value),
            values::fmt_duration(max_value),
            describe(max, "built-in default"),
        )
    } else {
        format!(
            "maximum allocation lifetime ({}) is shorter than the default allocation lifetime ({}, {})",
            values::fmt_duration(max_value),
            values::fmt_duration(default_value),
            describe(default, "built-in default"),
        )
    };
    ConfigError::Invalid {
        origin,
        key,
        message,
    }
}

fn read_secret_file(
    path: &std::path::Path,
    origin: &Origin,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        origin: origin.clone(),
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let secrets = values::secret_file_contents(&text);
    if secrets.is_empty() {
        return Err(ConfigError::invalid(
            origin,
            key,
            format!("secret file `{}` contains no secrets", path.display()),
        ));
    }
    Ok(secrets)
}

fn cli_one<T>(
    env: &str,
    flag: &str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Slot<T>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let origin = cli::origin_one(env, raw);
    match parse(raw) {
        Ok(value) => Ok(Some(Val {
            value,
            origin,
            key: flag.to_owned(),
        })),
        Err(message) => Err(ConfigError::invalid(&origin, flag, message)),
    }
}

/// A list flag: absent means "not given"; a single empty value (e.g.
/// `TERND_DENY_PEER=`) means "explicitly empty".
fn cli_list<T>(
    env: &str,
    flag: &str,
    raw: &[String],
    parse: impl FnOnce(&[String]) -> Result<T, String>,
) -> Result<Slot<T>, ConfigError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let origin = cli::origin_list(env, raw);
    let items: &[String] = if raw.len() == 1 && raw[0].trim().is_empty() {
        &[]
    } else {
        raw
    };
    match parse(items) {
        Ok(value) => Ok(Some(Val {
            value,
            origin,
            key: flag.to_owned(),
        })),
        Err(message) => Err(ConfigError::invalid(&origin, flag, message)),
    }
}

fn cli_bool(env: &str, flag: &str, raw: Option<bool>) -> Slot<bool> {
    raw.map(|value| Val {
        value,
        origin: cli::origin_flag(env),
        key: flag.to_owned(),
    })
}

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
    pub(crate) software: Slot<Option<String>>,
    pub(crate) stun_backward_compatibility: Slot<bool>,
    pub(crate) max_frame_size: Slot<usize>,
    pub(crate) tcp_idle_timeout: Slot<Duration>,
    pub(crate) max_tcp_connections: Slot<usize>,

    pub(crate) relay_ips: Slot<Vec<IpAddr>>,
    pub(crate) external_ips: Slot<Vec<ExternalIp>>,
    pub(crate) ports: Slot<PortRange>,
    pub(crate) allow_peer: Slot<Vec<IpNet>>,
    pub(crate) deny_peer: Slot<Vec<IpNet>>,
    pub(crate) rfc5766_channel_numbers: Slot<bool>,
    pub(crate) default_allocation_lifetime: Slot<Duration>,
    pub(crate) max_allocation_lifetime: Slot<Duration>,
    pub(crate) user_quota: Slot<u32>,

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
            software: over.software.or(self.software),
            stun_backward_compatibility: over
                .stun_backward_compatibility
                .or(self.stun_backward_compatibility),
            max_frame_size: over.max_frame_size.or(self.max_frame_size),
            tcp_idle_timeout: over.tcp_idle_timeout.or(self.tcp_idle_timeout),
            max_tcp_connections: over.max_tcp_connections.or(self.max_tcp_connections),
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
            secrets: over.secrets.or(self.secrets),
            secret_file: over.secret_file.or(self.secret_file),
            secrets_resolved,
            users: over.users.or(self.users),
            rest_separator: over.rest_separator.or(self.rest_separator),
            nonce_lifetime: over.nonce_lifetime.or(self.nonce_lifetime),
            http_listen: over.http_listen.or(self.http_listen),
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

        let http_listen = self.http_listen.as_ref().and_then(|v| v.value);
        let mut not_yet_supported = Vec::new();
        if http_listen.is_some() {
            not_yet_supported.push("http.listen");
        }

        Ok(Config {
            listen: value_or(&self.listen, defaults.listen),
            realm: value_or(&self.realm, defaults.realm),
            workers,
            software: value_or(&self.software, defaults.software),
            stun_backward_compatibility: value_or(
                &self.stun_backward_compatibility,
                defaults.stun_backward_compatibility,
            ),
            max_frame_size: value_or(&self.max_frame_size, defaults.max_frame_size),
            tcp_idle_timeout: value_or(&self.tcp_idle_timeout, defaults.tcp_idle_timeout),
            max_tcp_connections: value_or(&self.max_tcp_connections, defaults.max_tcp_connections),
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
            },
            auth: AuthConfig {
                secrets,
                secret_file,
                users: value_or(&self.users, Vec::new()),
                rest_separator: value_or(&self.rest_separator, defaults.auth.rest_separator),
                nonce_lifetime: value_or(&self.nonce_lifetime, defaults.auth.nonce_lifetime),
            },
            http: HttpConfig {
                listen: http_listen,
            },
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
            software,
            stun_backward_compatibility,
            max_frame_size,
            tcp_idle_timeout,
            max_tcp_connections,
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
            software: v(software, "software"),
            stun_backward_compatibility: v(
                stun_backward_compatibility,
                "stun_backward_compatibility",
            ),
            max_frame_size: v(max_frame_size, "max_frame_size"),
            tcp_idle_timeout: v(tcp_idle_timeout, "tcp_idle_timeout"),
            max_tcp_connections: v(max_tcp_connections, "max_tcp_connections"),
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
            secrets: v(secrets, "auth.secrets"),
            secret_file: v(auth.secret_file, "auth.secret_file"),
            secrets_resolved: !secrets_change,
            users: v(auth.users, "auth.users"),
            rest_separator: v(auth.rest_separator, "auth.rest_separator"),
            nonce_lifetime: v(auth.nonce_lifetime, "auth.nonce_lifetime"),
            http_listen: v(http.listen, "http.listen"),
            log_level: v(log.level, "log.level"),
            log_format: v(log.format, "log.format"),
        }
    }
}

fn lifetime_error(
    default: &Slot<Duration>,
    max: &Slot<Duration>,
    default_value: Duration,
    max_value: Duration,
) -> ConfigError {
    let describe = |slot: &Slot<Duration>, builtin: &str| match slot {
        Some(v) => format!("`{}` from {}", v.key, v.origin),
        None => builtin.to_owned(),
    };
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

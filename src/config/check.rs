//! After parsing: where each value came from ([`Origins`]), and the rules
//! that span several settings (errors name both, and where each came from).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::error::Conflict;
use super::{Config, ConfigError, Origin, values};

/// Where each explicitly given setting came from: its origin and the key
/// or flag as given, by dotted TOML key. Bookkeeping for error messages,
/// not configuration: two `Origins` always compare equal.
#[derive(Clone, Default)]
pub struct Origins(BTreeMap<&'static str, (Origin, String)>);

impl PartialEq for Origins {
    fn eq(&self, _: &Origins) -> bool {
        true
    }
}

impl fmt::Debug for Origins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origins({} given)", self.0.len())
    }
}

impl Origins {
    /// Every setting, with origin [`Origin::Merged`]: a configuration built
    /// before whose origins are no longer known.
    pub(crate) fn merged() -> Origins {
        Origins(
            super::schema_http::all()
                .map(|s| (s.key, (Origin::Merged, s.key.to_owned())))
                .collect(),
        )
    }

    pub(crate) fn set(&mut self, key: &'static str, origin: Origin, shown: String) {
        self.0.insert(key, (origin, shown));
    }

    /// Where `key` came from and how it was spelled there, if it was given.
    pub(crate) fn get(&self, key: &str) -> Option<&(Origin, String)> {
        self.0.get(key)
    }

    /// Whether `key` was given (not a built-in default).
    pub(crate) fn given(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// An error about `key`: blamed on where it came from, or on the
    /// configuration as a whole when it was not given.
    pub(crate) fn conflict(&self, key: &str, conflict: Conflict) -> ConfigError {
        let (origin, key) = match self.0.get(key) {
            Some((origin, shown)) => (origin.clone(), shown.clone()),
            None => (Origin::Merged, key.to_owned()),
        };
        ConfigError::Conflict {
            origin,
            key,
            conflict: Box::new(conflict),
        }
    }

    /// Where `key` came from, for the origin and key of a load error.
    pub(crate) fn site(&self, key: &str) -> (Origin, String) {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| (Origin::Merged, key.to_owned()))
    }

    /// `` `KEY` from ORIGIN `` for messages about another value, or `builtin`.
    pub(crate) fn describe(&self, key: &str, builtin: &str) -> String {
        match self.0.get(key) {
            Some((origin, shown)) => format!("`{shown}` from {origin}"),
            None => builtin.to_owned(),
        }
    }

    fn rank(&self, key: &str) -> u8 {
        match self.0.get(key).map(|(o, _)| o) {
            Some(Origin::CommandLine) => 4,
            Some(Origin::Env(_)) => 3,
            Some(Origin::File(_)) => 2,
            Some(Origin::Merged) => 1,
            None => 0,
        }
    }
}

/// Resolves `workers = 0` and checks the rules across settings.
pub(crate) fn check(c: &mut Config) -> Result<(), ConfigError> {
    if c.workers == 0 {
        c.workers = super::default_workers();
    }
    profile(c)?;
    lifetimes(c)?;
    tls(c)?;
    proxy_protocol(c)?;
    rfc5780(c)?;
    revocation(c)?;
    if c.log.output == super::LogOutput::File && c.log.file.is_none() {
        return Err(c.origins.conflict("log.output", Conflict::LogFileMissing));
    }
    http_tls(c)
}

/// `profile = "loadtest"`: refused unless every listener is on loopback; then the limits
/// that get in a benchmark's way are lifted, where nothing set them explicitly.
fn profile(c: &mut Config) -> Result<(), ConfigError> {
    if c.profile != super::Profile::Loadtest {
        return Ok(());
    }
    let outside = c
        .listen
        .iter()
        .chain(&c.tls_listen)
        .chain(&c.http.listen)
        .find(|a| !a.ip().is_loopback());
    if let Some(addr) = outside {
        return Err(c.origins.conflict(
            "profile",
            Conflict::LoadtestBeyondLoopback {
                addr: addr.to_string(),
            },
        ));
    }
    let limits = &mut c.relay.limits;
    if !c.origins.given("relay.user_quota") {
        limits.user_quota = 0;
    }
    if !c.origins.given("relay.max_allocations_per_ip") {
        limits.max_allocations_per_ip = 0;
    }
    if !c.origins.given("relay.unauth_rate_limit") {
        c.relay.unauth_rate_limit = 0;
    }
    if !c.origins.given("relay.rfc5766_channel_numbers") {
        c.relay.rfc5766_channel_numbers = true;
    }
    for net in ["127.0.0.0/8", "::1/128"] {
        let net: ipnet::IpNet = net.parse().expect("a valid network");
        if !c.relay.allow_peer.contains(&net) {
            c.relay.allow_peer.push(net);
        }
    }
    Ok(())
}

/// A revocation stands at least as long as the credentials the endpoint mints live, or
/// credentials minted before it could outlive it (only with a cluster).
fn revocation(c: &Config) -> Result<(), ConfigError> {
    let (ttl, minted) = (c.cluster.revocation_ttl, c.http.credential_ttl);
    if c.cluster.api_only && c.cluster.redis_url.is_none() {
        return Err(c
            .origins
            .conflict("cluster.api_only", Conflict::ApiOnlyWithoutCluster));
    }
    if c.cluster.redis_url.is_none() || ttl >= minted {
        return Ok(());
    }
    Err(c.origins.conflict(
        "cluster.revocation_ttl",
        Conflict::RevocationShorterThanCredentials {
            ttl: values::fmt_duration(ttl),
            minted: values::fmt_duration(minted),
            from: c
                .origins
                .describe("http.credential_ttl", "built-in default"),
        },
    ))
}

const DEFAULT_LIFETIME: &str = "relay.default_allocation_lifetime";
const MAX_LIFETIME: &str = "relay.max_allocation_lifetime";

fn lifetimes(c: &Config) -> Result<(), ConfigError> {
    let (default, max) = (
        c.relay.default_allocation_lifetime,
        c.relay.max_allocation_lifetime,
    );
    if max >= default {
        return Ok(());
    }
    let o = &c.origins;
    // Blame the value with the highest precedence; on a tie, the maximum.
    let blame_default =
        o.given(DEFAULT_LIFETIME) && o.rank(DEFAULT_LIFETIME) > o.rank(MAX_LIFETIME);
    let (default, max) = (values::fmt_duration(default), values::fmt_duration(max));
    Err(if blame_default {
        o.conflict(
            DEFAULT_LIFETIME,
            Conflict::DefaultLifetimeTooLong {
                default,
                max,
                from: o.describe(MAX_LIFETIME, "built-in default"),
            },
        )
    } else {
        o.conflict(
            MAX_LIFETIME,
            Conflict::MaxLifetimeTooShort {
                max,
                default,
                from: o.describe(DEFAULT_LIFETIME, "built-in default"),
            },
        )
    })
}

/// The TURN-over-TLS listeners: distinct from the TCP ones, certificate and
/// key given together, and required with listeners.
fn tls(c: &Config) -> Result<(), ConfigError> {
    let o = &c.origins;
    if o.given("tls_listen") {
        for &addr in &c.tls_listen {
            if let Some(&other) = c
                .listen
                .iter()
                .find(|&&l| values::listeners_overlap(addr, l))
            {
                let from = o.describe("listen", "built-in default of `listen`");
                return Err(o.conflict(
                    "tls_listen",
                    if other == addr {
                        Conflict::TlsOnTcpAddress {
                            addr: addr.to_string(),
                            from,
                        }
                    } else {
                        Conflict::TlsOverlapsTcp {
                            addr: addr.to_string(),
                            other: other.to_string(),
                            from,
                        }
                    },
                ));
            }
        }
    }
    halves(
        c,
        ("tls_cert", &c.tls_cert),
        ("tls_key", &c.tls_key),
        (
            "tls_key / --key / TERND_KEY",
            "tls_cert / --cert / TERND_CERT",
        ),
    )?;
    if c.tls_cert.is_none()
        && c.tls_key.is_none()
        && o.given("tls_listen")
        && !c.tls_listen.is_empty()
    {
        return Err(o.conflict("tls_listen", Conflict::TlsWithoutCertificate));
    }
    Ok(())
}

/// A certificate and a key, given together or not at all.
fn halves<T>(
    c: &Config,
    (cert_key, cert): (&str, &Option<T>),
    (key_key, key): (&str, &Option<T>),
    (how_key, how_cert): (&'static str, &'static str),
) -> Result<(), ConfigError> {
    match (cert, key) {
        (Some(_), None) => Err(c.origins.conflict(
            cert_key,
            Conflict::Half {
                given: "certificate",
                missing: "private key",
                how: how_key,
            },
        )),
        (None, Some(_)) => Err(c.origins.conflict(
            key_key,
            Conflict::Half {
                given: "private key",
                missing: "certificate",
                how: how_cert,
            },
        )),
        _ => Ok(()),
    }
}

fn http_tls(c: &Config) -> Result<(), ConfigError> {
    halves(
        c,
        ("http.tls_cert", &c.http.tls_cert),
        ("http.tls_key", &c.http.tls_key),
        (
            "http.tls_key / --http-tls-key",
            "http.tls_cert / --http-tls-cert",
        ),
    )
}

/// PROXY-protocol addresses: each must be a TCP or TLS listener.
fn proxy_protocol(c: &Config) -> Result<(), ConfigError> {
    let o = &c.origins;
    if !o.given("proxy_protocol") {
        return Ok(());
    }
    match c
        .proxy_protocol
        .iter()
        .find(|a| !c.listen.contains(a) && !c.tls_listen.contains(a))
    {
        Some(addr) => Err(o.conflict(
            "proxy_protocol",
            Conflict::NotAListener {
                addr: addr.to_string(),
                listen: o.describe("listen", "built-in default"),
                tls_listen: o.describe("tls_listen", "empty"),
            },
        )),
        None => Ok(()),
    }
}

/// RFC 5780 settings: `rfc5780` needs `alt_ip` and a primary address (the
/// first specific `listen` address of `alt_ip`'s family) whose IP differs
/// from `alt_ip` and whose port differs from `alt_port` (and has a
/// successor when `alt_port` is unset); `alt_ip` and `alt_port` are only
/// allowed with `rfc5780` on, so that a typo cannot silently do nothing.
fn rfc5780(c: &Config) -> Result<(), ConfigError> {
    let o = &c.origins;
    if !c.rfc5780 {
        let from = || o.describe("rfc5780", "built-in default of `rfc5780`");
        if let Some(ip) = c.alt_ip.filter(|_| o.given("alt_ip")) {
            return Err(o.conflict(
                "alt_ip",
                Conflict::Rfc5780Off {
                    what: format!("IP `{ip}`"),
                    from: from(),
                },
            ));
        }
        if let Some(port) = c.alt_port.filter(|_| o.given("alt_port")) {
            return Err(o.conflict(
                "alt_port",
                Conflict::Rfc5780Off {
                    what: format!("port {port}"),
                    from: from(),
                },
            ));
        }
        return Ok(());
    }
    let Some(ip) = c.alt_ip else {
        let empty = if o.given("alt_ip") {
            let (origin, key) = o.site("alt_ip");
            format!(" (`{key}` from {origin} is empty)")
        } else {
            String::new()
        };
        return Err(o.conflict("rfc5780", Conflict::NoAltIp { empty }));
    };
    let Some(primary) = values::rfc5780_primary(&c.listen, ip) else {
        return Err(o.conflict(
            "rfc5780",
            Conflict::NoPrimary {
                example: if ip.is_ipv4() {
                    "`--listen 127.0.0.1:3478 --alt-ip 127.0.0.2`"
                } else {
                    "`--listen [2001:db8::1]:3478 --alt-ip 2001:db8::2`"
                },
                listen: o.describe("listen", "built-in default"),
                family: values::family(&ip),
                ip: ip.to_string(),
                alt_ip: o.describe("alt_ip", "built-in default"),
            },
        ));
    };
    alternate(c, ip, primary)
}

/// The alternate IP and port against the primary address.
fn alternate(c: &Config, ip: IpAddr, primary: SocketAddr) -> Result<(), ConfigError> {
    let o = &c.origins;
    if primary.ip() == ip {
        return Err(o.conflict(
            "alt_ip",
            Conflict::AltIpIsPrimary {
                ip: ip.to_string(),
                primary: primary.to_string(),
                family: values::family(&ip),
                listen: o.describe("listen", "built-in default"),
            },
        ));
    }
    match c.alt_port {
        Some(port) if primary.port() != 0 && port == primary.port() => Err(o.conflict(
            "alt_port",
            Conflict::AltPortIsPrimary {
                port,
                primary: primary.to_string(),
                listen: o.describe("listen", "built-in default of `listen`"),
            },
        )),
        None if primary.port() == u16::MAX => Err(o.conflict(
            "rfc5780",
            Conflict::NoNextPort {
                primary: primary.to_string(),
            },
        )),
        _ => Ok(()),
    }
}

//! Reading the TOML configuration file into a [`Layer`].
//!
//! The file is parsed into a generic TOML table and walked by hand against
//! the schema, so that every error — unknown key, wrong type, bad value —
//! names the full dotted key (e.g. `relay.ports`, `auth.users[1].key`) and
//! the file.

use std::path::PathBuf;

use toml::{Table, Value};

use super::layer::{Layer, Slot, Val};
use super::values;
use super::{ConfigError, Origin, StaticUser, UserCredential};

/// Parses `text` (the contents of the file called `name`).
pub(crate) fn parse(text: &str, name: &str) -> Result<Layer, ConfigError> {
    let origin = Origin::File(name.to_owned());
    let table: Table = toml::from_str(text).map_err(|e| syntax_error(text, &origin, &e))?;
    Walker { origin }.top(&table)
}

fn syntax_error(text: &str, origin: &Origin, e: &toml::de::Error) -> ConfigError {
    let (line, column, snippet) = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let snippet = text
                .get(span.clone())
                .filter(|s| !s.is_empty() && s.len() <= 60 && !s.contains('\n'))
                .map(str::to_owned);
            (line, column, snippet)
        }
        None => (1, 1, None),
    };
    let mut message = e.message().trim().to_owned();
    if let Some(snippet) = snippet {
        message.push_str(&format!(" (at `{snippet}`)"));
    }
    ConfigError::Syntax {
        origin: origin.clone(),
        line,
        column,
        message,
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

struct Walker {
    origin: Origin,
}

impl Walker {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(&self.origin, key, message)
    }

    fn unknown(&self, key: String) -> ConfigError {
        ConfigError::UnknownKey {
            origin: self.origin.clone(),
            key,
        }
    }

    fn set<T>(&self, key: &str, r: Result<T, String>) -> Result<Slot<T>, ConfigError> {
        match r {
            Ok(value) => Ok(Some(Val {
                value,
                origin: self.origin.clone(),
                key: key.to_owned(),
            })),
            Err(message) => Err(self.err(key, message)),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str, v: &Value) -> ConfigError {
        self.err(key, format!("expected {expected}, found {}", type_name(v)))
    }

    fn string<'v>(&self, key: &str, v: &'v Value) -> Result<&'v str, ConfigError> {
        v.as_str()
            .ok_or_else(|| self.wrong_type(key, "a string", v))
    }

    fn boolean(&self, key: &str, v: &Value) -> Result<bool, ConfigError> {
        v.as_bool()
            .ok_or_else(|| self.wrong_type(key, "a boolean (true or false)", v))
    }

    fn integer<T: TryFrom<i64>>(&self, key: &str, v: &Value) -> Result<T, ConfigError> {
        let n = v
            .as_integer()
            .ok_or_else(|| self.wrong_type(key, "an integer", v))?;
        T::try_from(n).map_err(|_| self.err(key, format!("{n} is out of range")))
    }

    fn strings<'v>(&self, key: &str, v: &'v Value) -> Result<Vec<&'v str>, ConfigError> {
        let arr = v
            .as_array()
            .ok_or_else(|| self.wrong_type(key, "an array of strings", v))?;
        arr.iter()
            .enumerate()
            .map(|(i, item)| self.string(&format!("{key}[{i}]"), item))
            .collect()
    }

    fn table<'v>(&self, key: &str, v: &'v Value) -> Result<&'v Table, ConfigError> {
        v.as_table()
            .ok_or_else(|| self.wrong_type(key, "a table", v))
    }

    /// A humantime string or an integer number of seconds.
    fn duration(&self, key: &str, v: &Value) -> Result<Slot<std::time::Duration>, ConfigError> {
        let r = match v {
            Value::String(s) => values::duration(s),
            Value::Integer(n) => values::duration_secs(*n),
            other => {
                return Err(self.wrong_type(
                    key,
                    "a duration (e.g. \"10m\" or a number of seconds)",
                    other,
                ));
            }
        };
        self.set(key, r)
    }

    fn top(&self, t: &Table) -> Result<Layer, ConfigError> {
        let mut l = Layer::default();
        for (k, v) in t {
            let key = k.as_str();
            match key {
                "listen" => l.listen = self.set(key, values::listen(&self.strings(key, v)?))?,
                "realm" => l.realm = self.set(key, values::realm(self.string(key, v)?))?,
                "workers" => {
                    l.workers = self.set(key, values::workers(self.integer(key, v)?))?;
                }
                "udp_gso" => l.udp_gso = self.set(key, Ok(self.boolean(key, v)?))?,
                "udp_recv_buffer" => {
                    l.udp_recv_buffer = self.set(key, values::udp_buffer(self.integer(key, v)?))?;
                }
                "udp_send_buffer" => {
                    l.udp_send_buffer = self.set(key, values::udp_buffer(self.integer(key, v)?))?;
                }
                "software" => {
                    l.software = self.set(key, values::software(self.string(key, v)?))?;
                }
                "stun_backward_compatibility" => {
                    l.stun_backward_compatibility = self.set(key, Ok(self.boolean(key, v)?))?;
                }
                "max_frame_size" => {
                    l.max_frame_size =
                        self.set(key, values::max_frame_size(self.integer(key, v)?))?;
                }
                "tcp_idle_timeout" => l.tcp_idle_timeout = self.duration(key, v)?,
                "max_tcp_connections" => {
                    l.max_tcp_connections =
                        self.set(key, values::max_tcp_connections(self.integer(key, v)?))?;
                }
                "tls_listen" => {
                    l.tls_listen = self.set(key, values::listener_list(&self.strings(key, v)?))?;
                }
                "tls_cert" => {
                    l.tls_cert = self.set(key, values::optional_path(self.string(key, v)?))?;
                }
                "tls_key" => {
                    l.tls_key = self.set(key, values::optional_path(self.string(key, v)?))?;
                }
                "tls_handshake_timeout" => l.tls_handshake_timeout = self.duration(key, v)?,
                "tcp_relay" => l.tcp_relay = self.set(key, Ok(self.boolean(key, v)?))?,
                "proxy_protocol" => {
                    l.proxy_protocol =
                        self.set(key, values::listener_list(&self.strings(key, v)?))?;
                }
                "max_connections_per_ip" => {
                    l.max_connections_per_ip =
                        self.set(key, values::max_connections_per_ip(self.integer(key, v)?))?;
                }
                "drain_timeout" => {
                    let r = match v {
                        Value::String(s) => values::duration_or_zero(s),
                        Value::Integer(n) => values::duration_secs_or_zero(*n),
                        other => {
                            return Err(self.wrong_type(
                                key,
                                "a duration (e.g. \"30s\", \"0s\" or a number of seconds)",
                                other,
                            ));
                        }
                    };
                    l.drain_timeout = self.set(key, r)?;
                }
                "alternate_server" => {
                    l.alternate_server =
                        self.set(key, values::alternate_server(self.string(key, v)?))?;
                }
                "rfc5780" => l.rfc5780 = self.set(key, Ok(self.boolean(key, v)?))?,
                "alt_ip" => l.alt_ip = self.set(key, values::alt_ip(self.string(key, v)?))?,
                "alt_port" => {
                    l.alt_port = self.set(key, values::alt_port(self.integer(key, v)?))?;
                }
                "relay" => self.relay(&mut l, self.table(key, v)?)?,
                "auth" => self.auth(&mut l, self.table(key, v)?)?,
                "http" => self.http(&mut l, self.table(key, v)?)?,
                "log" => self.log(&mut l, self.table(key, v)?)?,
                _ => return Err(self.unknown(key.to_owned())),
            }
        }
        Ok(l)
    }

    fn relay(&self, l: &mut Layer, t: &Table) -> Result<(), ConfigError> {
        for (k, v) in t {
            let key = &join("relay", k);
            match k.as_str() {
                "relay_ips" => {
                    l.relay_ips = self.set(key, values::relay_ips(&self.strings(key, v)?))?;
                }
                "external_ips" => {
                    l.external_ips = self.set(key, values::external_ips(&self.strings(key, v)?))?;
                }
                "ports" => l.ports = self.set(key, values::port_range(self.string(key, v)?))?,
                "allow_peer" => {
                    l.allow_peer = self.set(key, values::cidrs(&self.strings(key, v)?))?;
                }
                "deny_peer" => {
                    l.deny_peer = self.set(key, values::cidrs(&self.strings(key, v)?))?;
                }
                "rfc5766_channel_numbers" => {
                    l.rfc5766_channel_numbers = self.set(key, Ok(self.boolean(key, v)?))?;
                }
                "default_allocation_lifetime" => {
                    l.default_allocation_lifetime = self.duration(key, v)?;
                }
                "max_allocation_lifetime" => l.max_allocation_lifetime = self.duration(key, v)?,
                "user_quota" => l.user_quota = self.set(key, Ok(self.integer(key, v)?))?,
                "total_quota" => l.total_quota = self.set(key, Ok(self.integer(key, v)?))?,
                "max_allocations_per_ip" => {
                    l.max_allocations_per_ip = self.set(key, Ok(self.integer(key, v)?))?;
                }
                "unauth_rate_limit" => {
                    l.unauth_rate_limit = self.set(key, Ok(self.integer(key, v)?))?;
                }
                "unauth_rate_burst" => {
                    l.unauth_rate_burst =
                        self.set(key, values::unauth_rate_burst(self.integer(key, v)?))?;
                }
                "max_permissions_per_allocation" => {
                    l.max_permissions_per_allocation =
                        self.set(key, values::max_permissions(self.integer(key, v)?))?;
                }
                "max_channels_per_allocation" => {
                    l.max_channels_per_allocation =
                        self.set(key, values::max_channels(self.integer(key, v)?))?;
                }
                "max_bps" => l.max_bps = self.set(key, Ok(self.integer(key, v)?))?,
                _ => return Err(self.unknown(key.clone())),
            }
        }
        Ok(())
    }

    fn auth(&self, l: &mut Layer, t: &Table) -> Result<(), ConfigError> {
        for (k, v) in t {
            let key = &join("auth", k);
            match k.as_str() {
                "secrets" => l.secrets = self.set(key, values::secrets(&self.strings(key, v)?))?,
                "secret_file" => {
                    let s = self.string(key, v)?;
                    l.secret_file = self.set(key, Ok((!s.is_empty()).then(|| PathBuf::from(s))))?;
                }
                "users" => l.users = self.set(key, Ok(self.users(key, v)?))?,
                "rest_separator" => {
                    l.rest_separator =
                        self.set(key, values::rest_separator(self.string(key, v)?))?;
                }
                "nonce_lifetime" => l.nonce_lifetime = self.duration(key, v)?,
                _ => return Err(self.unknown(key.clone())),
            }
        }
        Ok(())
    }

    fn users(&self, key: &str, v: &Value) -> Result<Vec<StaticUser>, ConfigError> {
        let arr = v.as_array().ok_or_else(|| {
            self.wrong_type(key, "an array of tables ([[auth.users]] sections)", v)
        })?;
        let mut users = Vec::with_capacity(arr.len());
        for (i, item) in arr.iter().enumerate() {
            let ukey = format!("{key}[{i}]");
            let t = self.table(&ukey, item)?;
            let (mut name, mut password, mut md5) = (None, None, None);
            for (k, v) in t {
                let fkey = join(&ukey, k);
                match k.as_str() {
                    "name" => name = Some(self.string(&fkey, v)?),
                    "password" => password = Some((fkey.clone(), self.string(&fkey, v)?)),
                    "key" => md5 = Some((fkey.clone(), self.string(&fkey, v)?)),
                    _ => return Err(self.unknown(fkey)),
                }
            }
            let name_key = join(&ukey, "name");
            let name =
                name.ok_or_else(|| self.err(&name_key, "missing (every user needs a name)"))?;
            values::user_name(name).map_err(|m| self.err(&name_key, m))?;
            let credential = match (password, md5) {
                (Some(_), Some(_)) => {
                    return Err(self.err(
                        &ukey,
                        format!("user `{name}`: give either `password` or `key`, not both"),
                    ));
                }
                (None, None) => {
                    return Err(self.err(
                        &ukey,
                        format!("user `{name}`: one of `password` or `key` is required"),
                    ));
                }
                (Some((pkey, p)), None) => {
                    if p.is_empty() {
                        return Err(self.err(&pkey, format!("user `{name}`: empty password")));
                    }
                    UserCredential::Password(p.to_owned())
                }
                (None, Some((kkey, hex))) => {
                    UserCredential::Md5Key(values::md5_key(hex).map_err(|m| self.err(&kkey, m))?)
                }
            };
            users.push(StaticUser {
                name: name.to_owned(),
                credential,
            });
        }
        values::unique_users(&users).map_err(|m| self.err(key, m))?;
        Ok(users)
    }

    fn http(&self, l: &mut Layer, t: &Table) -> Result<(), ConfigError> {
        for (k, v) in t {
            let key = &join("http", k);
            match k.as_str() {
                "listen" => {
                    l.http_listen = self.set(key, values::http_listen(self.string(key, v)?))?;
                }
                "tls_cert" => {
                    l.http_tls_cert = self.set(key, values::optional_path(self.string(key, v)?))?;
                }
                "tls_key" => {
                    l.http_tls_key = self.set(key, values::optional_path(self.string(key, v)?))?;
                }
                "public_hosts" => {
                    l.http_public_hosts =
                        self.set(key, values::public_hosts(&self.strings(key, v)?))?;
                }
                "credential_ttl" => {
                    l.http_credential_ttl = match self.duration(key, v)? {
                        Some(d) => self.set(key, values::credential_ttl(d.value))?,
                        None => None,
                    };
                }
                "token_hs256_secrets" => {
                    l.token_hs256_secrets =
                        self.set(key, values::secrets(&self.strings(key, v)?))?;
                }
                "token_public_keys" => {
                    l.token_public_keys = self.set(key, values::paths(&self.strings(key, v)?))?;
                }
                "token_jwks_file" => {
                    l.token_jwks_file =
                        self.set(key, values::optional_path(self.string(key, v)?))?;
                }
                "token_audience" => {
                    l.token_audience = self.set(key, values::audience(self.string(key, v)?))?;
                }
                "token_issuer" => {
                    l.token_issuer = self.set(key, values::optional_text(self.string(key, v)?))?;
                }
                "token_scope" => {
                    l.token_scope = self.set(key, values::scope(self.string(key, v)?))?;
                }
                "token_leeway" => {
                    let r = match v {
                        Value::String(s) => values::leeway(s),
                        Value::Integer(n) => values::leeway_secs(*n),
                        other => {
                            return Err(self.wrong_type(
                                key,
                                "a duration (e.g. \"30s\" or a number of seconds)",
                                other,
                            ));
                        }
                    };
                    l.token_leeway = self.set(key, r)?;
                }
                "cors_origins" => {
                    l.cors_origins = self.set(key, values::cors_origins(&self.strings(key, v)?))?;
                }
                "rate_limit" => l.rate_limit = self.set(key, Ok(self.integer(key, v)?))?,
                "rate_burst" => {
                    l.rate_burst = self.set(key, values::rate_burst(self.integer(key, v)?))?;
                }
                "max_connections_per_ip" => {
                    l.http_max_connections_per_ip = self.set(
                        key,
                        values::http_max_connections_per_ip(self.integer(key, v)?),
                    )?;
                }
                "admin_token" => {
                    l.admin_token = self.set(key, values::admin_token(self.string(key, v)?))?;
                }
                _ => return Err(self.unknown(key.clone())),
            }
        }
        Ok(())
    }

    fn log(&self, l: &mut Layer, t: &Table) -> Result<(), ConfigError> {
        for (k, v) in t {
            let key = &join("log", k);
            match k.as_str() {
                "level" => l.log_level = self.set(key, values::log_level(self.string(key, v)?))?,
                "format" => {
                    l.log_format = self.set(key, values::log_format(self.string(key, v)?))?;
                }
                _ => return Err(self.unknown(key.clone())),
            }
        }
        Ok(())
    }
}

//! Server configuration: one validated [`Config`] merged from a TOML file,
//! `TERND_*` environment variables and command-line flags.
//!
//! Precedence, highest first: command line, environment, file, built-in
//! defaults. clap resolves command line over environment (every flag has an
//! environment variable and no clap default), then [`Config::load`] lays
//! the result over the file, which is laid over the defaults. A list given
//! on the command line or in the environment *replaces* the file's list.
//!
//! Every setting is declared once, in the declaration table
//! (`src/config/schema.rs` and `schema_http.rs`): its field, default, TOML
//! key, parser and checks, flag, environment variable and help text. The TOML walker, the clap command, the defaults and the
//! `Debug` output are generated from it. `[relay]` holds the core's own
//! [`Limits`] (`relay.limits`), handed to the core as is.
//!
//! Parsing is pure; the files a configuration names (secret file, TLS
//! certificates and keys, access-token keys) are read by a separate step,
//! [`Config::load_files`].
//!
//! ```no_run
//! use clap::Parser;
//! use ternd::config::{Cli, Config};
//!
//! let cli = Cli::parse();
//! let config = Config::load(&cli)?.load_files()?;
//! # Ok::<(), ternd::config::ConfigError>(())
//! ```
//!
//! The documented default file is `config/ternd.toml`; it loads to exactly
//! [`Config::default()`].
#![warn(missing_docs)]

mod check;
pub mod cli;
pub mod cli_tools;
mod declare;
mod error;
pub mod hints;
pub mod ip_range;
mod kind;
mod reload;
mod render;
mod schema;
mod schema_cluster;
mod schema_http;
pub mod show;
mod toml_file;
mod values;
pub use values::{DEFAULT_UDP_BUFFER, MAX_HTTP_CONNECTIONS};

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

pub use crate::auth::store::{StaticUser, UserCredential};
pub use crate::turn::{Limits, ParsePortRangeError, PortRange};
pub use check::Origins;
pub use cli::{
    Cli, Command, CredentialsArgs, ImportCoturnArgs, TokenArgs, TokenCommand, TokenIssueArgs,
};
pub use error::{ConfigError, Conflict, FileError, Origin, ValueError};
pub use schema::{Config, RelayConfig};
pub use schema_cluster::ClusterConfig;
pub use schema_http::{AuthConfig, HttpConfig, LogConfig};

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

/// What the cluster-wide user quota does while Redis is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnavailable {
    /// Count on this node alone (a metric and a warning say so).
    #[default]
    Open,
    /// Refuse (486) the Allocates that cannot be counted.
    Closed,
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

/// A set of settings chosen together (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// None: every setting as configured.
    #[default]
    None,
    /// Benchmarking on loopback: no per-user, per-IP or unauthenticated limits, peers on
    /// loopback allowed, RFC 5766 channel numbers accepted (coturn's uclient); refused
    /// unless every listener is on loopback.
    Loadtest,
}

/// When log lines carry ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogColor {
    /// Only when the output is stderr and stderr is a terminal.
    #[default]
    Auto,
    /// Always (stderr or a file).
    Always,
    /// Never.
    Never,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// Standard error.
    #[default]
    Stderr,
    /// The file `log.file`, appended to.
    File,
    /// The local syslog daemon: RFC 3164 datagrams to `log.syslog_socket`.
    Syslog,
    /// Standard error, each line prefixed with its syslog priority (`<6>`) and no time
    /// stamp: what systemd's journal reads from a service's stderr.
    Journald,
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

// ---------------------------------------------------------------------------
// Loading

impl Config {
    /// Parses the configuration the command line gives: the file named by
    /// `cli.config` (if any), with the flags and environment variables of
    /// the already-parsed `cli` laid over it, then checked. Reads no other
    /// file: call [`Config::load_files`] for the secret, certificate and key
    /// files it names.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let origin = cli::origin_os("TERND_CONFIG", path.as_os_str());
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                origin,
                key: "--config".to_owned(),
                path: path.clone(),
                source,
            })?;
            toml_file::apply(&mut config, &text, &path.display().to_string())?;
        }
        cli.apply(&mut config)?;
        check::check(&mut config)?;
        Ok(config)
    }

    /// Parses and checks TOML text; `origin` is the file name used in error
    /// messages. Pure: reads no file (see [`Config::load_files`]).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        toml_file::apply(&mut config, text, origin)?;
        check::check(&mut config)?;
        Ok(config)
    }

    /// Checks one value for the setting `key` (its dotted TOML key, e.g. `relay.ports`)
    /// as the file would give it, on its own: its type, syntax and range, not how it
    /// goes with other settings. The error names `origin` and the key.
    pub fn check_value(key: &str, value: &toml::Value, origin: &str) -> Result<(), ConfigError> {
        let mut config = Config::default();
        toml_file::apply_one(&mut config, key, value, &Origin::File(origin.to_owned()))
    }

    /// Lays the command-line / environment values of an already-parsed `cli`
    /// over `self` (a parsed configuration, before [`Config::load_files`])
    /// and re-checks. `cli.config` is ignored here (use [`Config::load`] to
    /// read a file). Errors about values of `self` name them with origin
    /// [`Origin::Merged`].
    pub fn apply_cli(mut self, cli: &Cli) -> Result<Config, ConfigError> {
        self.origins = Origins::merged();
        cli.apply(&mut self)?;
        check::check(&mut self)?;
        Ok(self)
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
    type Err = ValueError;

    /// Parses `IP` or `PUBLIC/PRIVATE`.
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

/// Debug stand-in for `n` secret values.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} redacted>", self.0)
    }
}

/// A setting whose value is secret (marked `(secret)` in the declaration
/// table): what its `Debug` shows, and its environment value is hidden in
/// `--help`.
pub(crate) trait Secret {
    /// The value as `Debug` shows it.
    fn shown(&self) -> impl fmt::Debug + '_;
}

impl Secret for Vec<String> {
    fn shown(&self) -> impl fmt::Debug + '_ {
        Redacted(self.len())
    }
}

impl Secret for Option<String> {
    fn shown(&self) -> impl fmt::Debug + '_ {
        Redacted(usize::from(self.is_some()))
    }
}

/// Static users redact their own passwords and keys.
impl Secret for Vec<StaticUser> {
    fn shown(&self) -> impl fmt::Debug + '_ {
        self
    }
}

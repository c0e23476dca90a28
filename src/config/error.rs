//! Errors produced while loading and validating the configuration.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
///
/// Every [`ConfigError`] names one, so that an operator can tell whether the
/// offending value sits in the file, in the environment or on the command
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A TOML configuration file; the string is the path as given.
    File(String),
    /// An environment variable; the string is its name (e.g. `TERND_RELAY_PORTS`).
    Env(String),
    /// A command-line flag.
    CommandLine,
    /// An already-built [`Config`](super::Config) whose values' origins are no
    /// longer known (used by [`Config::apply_cli`](super::Config::apply_cli)).
    Merged,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => f.write_str(path),
            Origin::Env(var) => write!(f, "environment ({var})"),
            Origin::CommandLine => f.write_str("command line"),
            Origin::Merged => f.write_str("configuration"),
        }
    }
}

/// An error found while loading or validating the configuration.
///
/// The `Display` form always starts with the [`Origin`] and names the key:
/// the dotted TOML path (e.g. `relay.ports`) for file values, the flag
/// (e.g. `--relay-ports`) for command-line and environment values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file named by `--config` could not be read.
    #[error("{origin}: `{key}`: cannot read configuration file `{}`: {source}", path.display())]
    ReadFile {
        /// Where the file name came from (command line or `TERND_CONFIG`).
        origin: Origin,
        /// The flag naming the file (`--config`).
        key: String,
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin}: invalid TOML at line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        origin: Origin,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description of the problem.
        message: String,
    },
    /// The file contains a key this version does not know.
    #[error("{origin}: unknown key `{key}`")]
    UnknownKey {
        /// The file.
        origin: Origin,
        /// The dotted path of the unknown key (e.g. `relay.portz`).
        key: String,
    },
    /// A value is malformed or out of range.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// The dotted TOML key or the flag.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The secret file named by `auth.secret_file` / `--secret-file` could not be read.
    #[error("{origin}: `{key}`: cannot read secret file `{}`: {source}", path.display())]
    SecretFile {
        /// Where the file name came from.
        origin: Origin,
        /// The dotted TOML key or the flag.
        key: String,
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Where the offending value came from.
    pub fn origin(&self) -> &Origin {
        match self {
            ConfigError::ReadFile { origin, .. }
            | ConfigError::Syntax { origin, .. }
            | ConfigError::UnknownKey { origin, .. }
            | ConfigError::Invalid { origin, .. }
            | ConfigError::SecretFile { origin, .. } => origin,
        }
    }

    /// The key (dotted TOML path or flag) the error is about, if there is one
    /// (a TOML syntax error has none).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::ReadFile { key, .. }
            | ConfigError::UnknownKey { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::SecretFile { key, .. } => Some(key),
            ConfigError::Syntax { .. } => None,
        }
    }

    pub(crate) fn invalid(origin: &Origin, key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            origin: origin.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

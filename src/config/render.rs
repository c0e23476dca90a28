//! Settings back to TOML: every value type of the declaration table as the TOML value
//! the file takes for it, so that `ternd config show` prints a file that loads to the
//! same configuration. An absent optional value is the empty string (or 0 for the
//! alternate port), which every such setting reads as "none".

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use toml::Value;

use super::{
    ExternalIp, LogColor, LogFormat, LogOutput, OnUnavailable, PortRange, Profile, StaticUser,
    UserCredential, values,
};

/// A setting's value as the TOML file writes it.
pub(crate) trait ToToml {
    /// The TOML value.
    fn to_toml(&self) -> Value;
}

fn text(s: impl ToString) -> Value {
    Value::String(s.to_string())
}

fn int(n: impl TryInto<i64>) -> Value {
    Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

macro_rules! displayed {
    ($($t:ty),*) => { $(
        impl ToToml for $t {
            fn to_toml(&self) -> Value {
                text(self)
            }
        }
    )* };
}
displayed!(
    String, char, SocketAddr, IpAddr, IpNet, ExternalIp, PortRange, LogFormat
);

macro_rules! integer {
    ($($t:ty),*) => { $(
        impl ToToml for $t {
            fn to_toml(&self) -> Value {
                int(*self)
            }
        }
    )* };
}
integer!(u16, u32, u64, usize);

impl ToToml for bool {
    fn to_toml(&self) -> Value {
        Value::Boolean(*self)
    }
}

impl ToToml for PathBuf {
    fn to_toml(&self) -> Value {
        text(self.display())
    }
}

impl ToToml for Duration {
    fn to_toml(&self) -> Value {
        text(values::fmt_duration(*self))
    }
}

/// The alternate port: 0 = the primary port + 1.
impl ToToml for Option<u16> {
    fn to_toml(&self) -> Value {
        int(self.unwrap_or(0))
    }
}

macro_rules! optional {
    ($($t:ty),*) => { $(
        impl ToToml for Option<$t> {
            fn to_toml(&self) -> Value {
                match self {
                    Some(v) => v.to_toml(),
                    None => text(""),
                }
            }
        }
    )* };
}
optional!(String, SocketAddr, IpAddr, PathBuf);

impl<T: ToToml> ToToml for Vec<T> {
    fn to_toml(&self) -> Value {
        Value::Array(self.iter().map(ToToml::to_toml).collect())
    }
}

/// A region prefix, `CIDR=REGION`.
impl ToToml for (IpNet, String) {
    fn to_toml(&self) -> Value {
        text(format!("{}={}", self.0, self.1))
    }
}

impl ToToml for StaticUser {
    fn to_toml(&self) -> Value {
        let mut t = toml::Table::new();
        t.insert("name".to_owned(), text(&self.name));
        match &self.credential {
            UserCredential::Password(p) => t.insert("password".to_owned(), text(p)),
            UserCredential::Md5Key(k) => {
                let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                t.insert("key".to_owned(), text(hex))
            }
        };
        Value::Table(t)
    }
}

impl ToToml for Profile {
    fn to_toml(&self) -> Value {
        text(match self {
            Profile::None => "none",
            Profile::Loadtest => "loadtest",
        })
    }
}

impl ToToml for LogColor {
    fn to_toml(&self) -> Value {
        text(match self {
            LogColor::Auto => "auto",
            LogColor::Always => "always",
            LogColor::Never => "never",
        })
    }
}

impl ToToml for LogOutput {
    fn to_toml(&self) -> Value {
        text(match self {
            LogOutput::Stderr => "stderr",
            LogOutput::File => "file",
            LogOutput::Syslog => "syslog",
            LogOutput::Journald => "journald",
        })
    }
}

impl ToToml for OnUnavailable {
    fn to_toml(&self) -> Value {
        text(match self {
            OnUnavailable::Open => "open",
            OnUnavailable::Closed => "closed",
        })
    }
}

/// The placeholder `ternd config show` prints for a secret; refused as a value, so
/// that its output cannot run with a secret everybody knows.
pub(crate) const REDACTED: &str = "<redacted>";

/// `value` with every secret string replaced by [`REDACTED`] (a user keeps its name).
pub(crate) fn redact(value: &Value) -> Value {
    match value {
        Value::String(s) if s.is_empty() => value.clone(),
        Value::String(_) => text(REDACTED),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| {
                    let v = if k == "name" { v.clone() } else { redact(v) };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

//! Kinds of settings: how one value is read from the TOML file and from a
//! flag / environment variable, and what shape its flag has.
//!
//! A kind is a small value holding the setting's parse / check functions
//! (from [`values`](super::values)); the declaration table names one per
//! setting, e.g. `Int::new(values::max_channels)`.

use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::values::{self, Result};
use super::{ConfigError, Origin, StaticUser, UserCredential, ValueError};

/// How a setting's flag takes its value on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `--flag` or `--flag=BOOL` (`TERND_FLAG=true|false|yes|no|1|0`).
    Bool,
    /// `--flag VALUE`.
    One,
    /// `--flag A --flag B` or `--flag A,B` (`TERND_FLAG=A,B`); an empty
    /// environment variable means an empty list.
    List,
}

/// A flag's or environment variable's value, as clap gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Raw {
    /// [`Shape::Bool`].
    Bool(bool),
    /// [`Shape::One`].
    One(String),
    /// [`Shape::List`].
    List(Vec<String>),
}

/// Where a TOML value sits: the file and the dotted key, for errors.
pub(crate) struct At<'a> {
    pub(crate) origin: &'a Origin,
    pub(crate) key: &'a str,
}

impl At<'_> {
    pub(crate) fn err(&self, problem: ValueError) -> ConfigError {
        ConfigError::invalid(self.origin, self.key, problem)
    }

    fn wrong_type(&self, expected: &'static str, v: &Value) -> ConfigError {
        self.err(ValueError::WrongType {
            expected,
            found: type_name(v),
        })
    }

    fn string<'v>(&self, v: &'v Value) -> std::result::Result<&'v str, ConfigError> {
        v.as_str().ok_or_else(|| self.wrong_type("a string", v))
    }

    fn table<'v>(&self, v: &'v Value) -> std::result::Result<&'v toml::Table, ConfigError> {
        v.as_table().ok_or_else(|| self.wrong_type("a table", v))
    }

    fn strings<'v>(&self, v: &'v Value) -> std::result::Result<Vec<&'v str>, ConfigError> {
        let arr = v
            .as_array()
            .ok_or_else(|| self.wrong_type("an array of strings", v))?;
        arr.iter()
            .enumerate()
            .map(|(i, item)| {
                let key = format!("{}[{i}]", self.key);
                At { key: &key, ..*self }.string(item)
            })
            .collect()
    }
}

/// `a string`, `an integer`, ... for "expected X, found Y".
pub(crate) fn type_name(v: &Value) -> &'static str {
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

/// One kind of setting.
pub(crate) trait Kind {
    /// What the setting holds.
    type Value;
    /// Its flag's shape.
    const SHAPE: Shape;
    /// The value of `v`, a TOML value at `at`.
    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<Self::Value, ConfigError>;
    /// The value of a flag or environment variable.
    fn text(&self, raw: &Raw) -> Result<Self::Value>;
}

/// The shape of `kind`'s flag (for the declaration table, in a `const`).
pub(crate) const fn shape_of<K: Kind>(_kind: &K) -> Shape {
    K::SHAPE
}

fn one(raw: &Raw) -> &str {
    match raw {
        Raw::One(s) => s,
        Raw::List(v) => v.first().map_or("", String::as_str),
        Raw::Bool(_) => "",
    }
}

/// `true` / `false`.
pub(crate) struct Bool;

impl Kind for Bool {
    type Value = bool;
    const SHAPE: Shape = Shape::Bool;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<bool, ConfigError> {
        v.as_bool()
            .ok_or_else(|| at.wrong_type("a boolean (true or false)", v))
    }

    fn text(&self, raw: &Raw) -> Result<bool> {
        Ok(matches!(raw, Raw::Bool(true)))
    }
}

/// An integer of type `N` (a TOML integer, or decimal text), then checked.
pub(crate) struct Int<N, T> {
    check: fn(N) -> Result<T>,
    text: Option<fn(&str) -> Result<T>>,
}

impl<N, T> Int<N, T> {
    /// An integer checked by `check`.
    pub(crate) const fn new(check: fn(N) -> Result<T>) -> Self {
        Int { check, text: None }
    }

    /// The same, with its own parser for flags and environment variables.
    pub(crate) const fn with_text(check: fn(N) -> Result<T>, text: fn(&str) -> Result<T>) -> Self {
        Int {
            check,
            text: Some(text),
        }
    }
}

impl<N: TryFrom<i64> + std::str::FromStr, T> Kind for Int<N, T> {
    type Value = T;
    const SHAPE: Shape = Shape::One;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<T, ConfigError> {
        let n = v
            .as_integer()
            .ok_or_else(|| at.wrong_type("an integer", v))?;
        let n = N::try_from(n).map_err(|_| at.err(ValueError::IntOutOfRange(n)))?;
        (self.check)(n).map_err(|e| at.err(e))
    }

    fn text(&self, raw: &Raw) -> Result<T> {
        match self.text {
            Some(text) => text(one(raw)),
            None => values::uint(one(raw)).and_then(self.check),
        }
    }
}

/// A TOML string, or the flag's text, parsed by one function.
pub(crate) struct Text<T>(pub(crate) fn(&str) -> Result<T>);

impl<T> Kind for Text<T> {
    type Value = T;
    const SHAPE: Shape = Shape::One;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<T, ConfigError> {
        (self.0)(at.string(v)?).map_err(|e| at.err(e))
    }

    fn text(&self, raw: &Raw) -> Result<T> {
        (self.0)(one(raw))
    }
}

/// A file name; empty means none.
pub(crate) const PATH: Text<Option<PathBuf>> = Text(values::optional_path);

/// A TOML array of strings, or a repeatable / comma-separated flag.
pub(crate) struct List<T>(pub(crate) fn(&[&str]) -> Result<T>);

/// A list flag's items: a single empty value (e.g. `TERND_DENY_PEER=`) is
/// an empty list.
fn items(raw: &Raw) -> Vec<&str> {
    match raw {
        Raw::List(v) if v.len() == 1 && v[0].trim().is_empty() => Vec::new(),
        Raw::List(v) => v.iter().map(String::as_str).collect(),
        Raw::One(s) => vec![s.as_str()],
        Raw::Bool(_) => Vec::new(),
    }
}

impl<T> Kind for List<T> {
    type Value = T;
    const SHAPE: Shape = Shape::List;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<T, ConfigError> {
        (self.0)(&at.strings(v)?).map_err(|e| at.err(e))
    }

    fn text(&self, raw: &Raw) -> Result<T> {
        (self.0)(&items(raw))
    }
}

/// A duration: a humantime string or an integer number of seconds.
pub(crate) struct Dur {
    text: fn(&str) -> Result<Duration>,
    secs: fn(i64) -> Result<Duration>,
    expected: &'static str,
}

impl Dur {
    /// Nonzero.
    pub(crate) const NONZERO: Dur = Dur {
        text: values::duration,
        secs: values::duration_secs,
        expected: "a duration (e.g. \"10m\" or a number of seconds)",
    };
    /// Zero allowed.
    pub(crate) const OR_ZERO: Dur = Dur {
        text: values::duration_or_zero,
        secs: values::duration_secs_or_zero,
        expected: "a duration (e.g. \"30s\", \"0s\" or a number of seconds)",
    };
    /// Whole seconds, at least one (the nonce lifetime, whose age is counted in seconds).
    pub(crate) const WHOLE_SECONDS: Dur = Dur {
        text: values::whole_seconds,
        secs: values::whole_seconds_secs,
        expected: "a whole number of seconds, at least 1 (e.g. \"10m\" or 600)",
    };
    /// The access-token leeway: zero allowed, at most an hour.
    pub(crate) const LEEWAY: Dur = Dur {
        text: values::leeway,
        secs: values::leeway_secs,
        expected: "a duration (e.g. \"30s\" or a number of seconds)",
    };
    /// The credential lifetime of the HTTP endpoint: 1 s ..= 7 days.
    pub(crate) const CREDENTIAL_TTL: Dur = Dur {
        text: values::credential_ttl_text,
        secs: values::credential_ttl_secs,
        expected: Dur::NONZERO.expected,
    };
}

impl Kind for Dur {
    type Value = Duration;
    const SHAPE: Shape = Shape::One;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<Duration, ConfigError> {
        let r = match v {
            Value::String(s) => (self.text)(s),
            Value::Integer(n) => (self.secs)(*n),
            other => return Err(at.wrong_type(self.expected, other)),
        };
        r.map_err(|e| at.err(e))
    }

    fn text(&self, raw: &Raw) -> Result<Duration> {
        (self.text)(one(raw))
    }
}

/// Static users: `[[auth.users]]` tables in the file, `NAME:PASSWORD` flags.
pub(crate) struct Users;

impl Kind for Users {
    type Value = Vec<StaticUser>;
    const SHAPE: Shape = Shape::List;

    fn toml(&self, at: &At<'_>, v: &Value) -> std::result::Result<Vec<StaticUser>, ConfigError> {
        let arr = v
            .as_array()
            .ok_or_else(|| at.wrong_type("an array of tables ([[auth.users]] sections)", v))?;
        let mut users = Vec::with_capacity(arr.len());
        for (i, item) in arr.iter().enumerate() {
            let ukey = format!("{}[{i}]", at.key);
            let user_at = At { key: &ukey, ..*at };
            users.push(user(&user_at, user_at.table(item)?)?);
        }
        values::unique_users(&users).map_err(|e| at.err(e))?;
        Ok(users)
    }

    fn text(&self, raw: &Raw) -> Result<Vec<StaticUser>> {
        let users = items(raw)
            .into_iter()
            .map(values::user_spec)
            .collect::<Result<Vec<_>>>()?;
        values::unique_users(&users)?;
        Ok(users)
    }
}

/// One `[[auth.users]]` table.
fn user(at: &At<'_>, t: &toml::Table) -> std::result::Result<StaticUser, ConfigError> {
    let (mut name, mut password, mut md5) = (None, None, None);
    for (k, v) in t {
        let fkey = format!("{}.{k}", at.key);
        let field = At { key: &fkey, ..*at };
        match k.as_str() {
            "name" => name = Some(field.string(v)?),
            "password" => password = Some((fkey.clone(), field.string(v)?)),
            "key" => md5 = Some((fkey.clone(), field.string(v)?)),
            _ => {
                return Err(ConfigError::UnknownKey {
                    origin: at.origin.clone(),
                    key: fkey,
                    hint: " (a user has `name` and `password` or `key`)".to_owned(),
                });
            }
        }
    }
    let name_key = format!("{}.name", at.key);
    let name_at = At {
        key: &name_key,
        ..*at
    };
    let name =
        name.ok_or_else(|| name_at.err(ValueError::Text("missing (every user needs a name)")))?;
    values::user_name(name).map_err(|e| name_at.err(e))?;
    let problem = |problem| {
        at.err(ValueError::User {
            name: name.to_owned(),
            problem,
        })
    };
    let credential = match (password, md5) {
        (Some(_), Some(_)) => return Err(problem(": give either `password` or `key`, not both")),
        (None, None) => return Err(problem(": one of `password` or `key` is required")),
        (Some((pkey, p)), None) => {
            if p.is_empty() {
                return Err(ConfigError::invalid(
                    at.origin,
                    &pkey,
                    ValueError::User {
                        name: name.to_owned(),
                        problem: ": empty password",
                    },
                ));
            }
            values::not_redacted(p).map_err(|e| ConfigError::invalid(at.origin, &pkey, e))?;
            UserCredential::Password(p.to_owned())
        }
        (None, Some((kkey, hex))) => UserCredential::Md5Key(
            values::md5_key(hex).map_err(|e| ConfigError::invalid(at.origin, &kkey, e))?,
        ),
    };
    Ok(StaticUser {
        name: name.to_owned(),
        credential,
    })
}

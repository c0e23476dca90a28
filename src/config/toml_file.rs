//! Reading the TOML configuration file into a [`Config`].
//!
//! The file is parsed by the `toml` crate into a generic table, which is
//! walked against the declaration table ([`schema`](super::schema)): every
//! error — unknown key, wrong type, bad value — names the full dotted key
//! (e.g. `relay.ports`, `auth.users[1].key`) and the file; syntax errors
//! name the line and column.

use toml::{Table, Value};

use super::declare::Setting;
use super::kind::At;
use super::schema_http::all;
use super::{Config, ConfigError, Origin};

/// Lays the settings of `text` (the contents of the file called `name`)
/// over `config`, recording where each came from.
pub(crate) fn apply(config: &mut Config, text: &str, name: &str) -> Result<(), ConfigError> {
    let origin = Origin::File(name.to_owned());
    let table: Table = toml::from_str(text).map_err(|e| syntax_error(text, &origin, &e))?;
    for (k, v) in &table {
        // A quoted top-level key with a dot ("relay.ports" = ...) is not `[relay] ports`.
        if let Some(setting) = find(k).filter(|_| !k.contains('.')) {
            set(config, setting, &origin, k, v)?;
        } else if is_section(k) {
            let at = At {
                origin: &origin,
                key: k,
            };
            let Value::Table(t) = v else {
                return Err(at.err(super::ValueError::WrongType {
                    expected: "a table",
                    found: super::kind::type_name(v),
                }));
            };
            for (k2, v2) in t {
                let key = format!("{k}.{k2}");
                match find(&key) {
                    Some(setting) => set(config, setting, &origin, &key, v2)?,
                    None => return Err(unknown(&origin, key)),
                }
            }
        } else {
            return Err(unknown(&origin, k.clone()));
        }
    }
    Ok(())
}

/// Parses `v` as the value of the setting `key` (a dotted TOML key) into `config`,
/// without the checks across settings. `UnknownKey` when there is no such setting.
pub(crate) fn apply_one(
    config: &mut Config,
    key: &str,
    v: &Value,
    origin: &Origin,
) -> Result<(), ConfigError> {
    match find(key) {
        Some(setting) => set(config, setting, origin, key, v),
        None => Err(unknown(origin, key.to_owned())),
    }
}

fn find(key: &str) -> Option<&'static Setting> {
    all().find(|s| s.key == key)
}

/// Whether `key` is a section (`relay`, `auth`, ...).
fn is_section(key: &str) -> bool {
    all().any(|s| {
        s.key
            .split_once('.')
            .is_some_and(|(section, _)| section == key)
    })
}

fn unknown(origin: &Origin, key: String) -> ConfigError {
    ConfigError::UnknownKey {
        origin: origin.clone(),
        hint: super::hints::unknown_key(&key),
        key,
    }
}

fn set(
    config: &mut Config,
    setting: &'static Setting,
    origin: &Origin,
    key: &str,
    v: &Value,
) -> Result<(), ConfigError> {
    (setting.toml)(config, &At { origin, key }, v)?;
    config
        .origins
        .set(setting.key, origin.clone(), key.to_owned());
    Ok(())
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

//! coturn options to ternd settings: the listeners, the relay, credentials, limits,
//! the metrics endpoint and logging. Peer lists are [`peers`](super::peers)' part.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use toml::Value;

use super::Finding;
use super::parse::{self, Arg, Line, shown};
use super::unsupported;

mod auth;
mod listen;
mod other;
mod peers;

/// One ternd setting of the translation.
pub(crate) struct Item {
    /// Its dotted TOML key.
    pub(crate) key: &'static str,
    pub(crate) value: Value,
    /// The coturn options it came from: (line, name).
    pub(crate) from: Vec<(usize, String)>,
    /// Comment lines written above it.
    pub(crate) comment: Vec<String>,
}

/// One `[[auth.users]]` entry.
pub(crate) struct User {
    pub(crate) name: String,
    /// `password` or `key`, and its value.
    pub(crate) field: &'static str,
    pub(crate) value: String,
    pub(crate) line: usize,
}

/// What the translation produced.
#[derive(Default)]
pub(crate) struct Translation {
    pub(crate) items: Vec<Item>,
    pub(crate) users: Vec<User>,
    pub(crate) skipped: Vec<Finding>,
    pub(crate) notes: Vec<Finding>,
    /// Options ternd needs no setting for.
    pub(crate) implied: Vec<Finding>,
}

pub(super) fn finding(line: usize, option: &str, why: impl Into<String>) -> Finding {
    Finding {
        line,
        option: shown(option),
        why: why.into(),
    }
}

impl Translation {
    pub(crate) fn skip(&mut self, line: usize, option: &str, why: impl Into<String>) {
        self.skipped.push(finding(line, option, why));
    }

    pub(crate) fn note(&mut self, line: usize, option: &str, why: impl Into<String>) {
        self.notes.push(finding(line, option, why));
    }

    /// Sets `key` to `value` if ternd accepts the value, else skips the first option it
    /// came from with ternd's reason. Returns whether it was set.
    pub(crate) fn set(
        &mut self,
        key: &'static str,
        value: Value,
        from: &[&Line],
        comment: &[&str],
    ) -> bool {
        if let Err(e) = crate::config::Config::check_value(key, &value, "-") {
            let problem = e.to_string();
            let problem = problem.strip_prefix("-: ").unwrap_or(&problem);
            if let Some(first) = from.first() {
                self.skip(
                    first.no,
                    &first.name,
                    format!("ternd does not take the value: {problem}"),
                );
            }
            return false;
        }
        self.items.retain(|i| i.key != key);
        self.items.push(Item {
            key,
            value,
            from: from.iter().map(|l| (l.no, l.name.clone())).collect(),
            comment: comment.iter().map(|&c| c.to_owned()).collect(),
        });
        true
    }
}

/// The option lines by name, taken by the handlers; what is left at the end was not
/// translated.
pub(super) struct Options<'a> {
    by_name: HashMap<&'a str, Vec<&'a Line>>,
}

impl<'a> Options<'a> {
    /// Every occurrence of `name`, in line order.
    pub(super) fn all(&mut self, name: &str) -> Vec<&'a Line> {
        self.by_name.remove(name).unwrap_or_default()
    }

    /// The last occurrence of `name` (as in coturn, a later one replaces an earlier one;
    /// the earlier ones are noted).
    pub(super) fn last(&mut self, t: &mut Translation, name: &str) -> Option<&'a Line> {
        let mut all = self.all(name);
        let last = all.pop()?;
        for l in all {
            t.note(
                l.no,
                name,
                format!(
                    "given again on line {}: the last one counts, as in coturn",
                    last.no
                ),
            );
        }
        Some(last)
    }

    /// The line of flag `name` when it is on (`name`, `name=yes`); a value that is no
    /// boolean is skipped.
    pub(super) fn flag(&mut self, t: &mut Translation, name: &str) -> Option<&'a Line> {
        let line = self.last(t, name)?;
        match parse::bool_value(line.value.as_deref()) {
            Ok(true) => Some(line),
            Ok(false) => None,
            Err(e) => {
                t.skip(line.no, name, e);
                None
            }
        }
    }
}

pub(super) fn value(l: &Line) -> &str {
    l.value.as_deref().unwrap_or("")
}

/// `l`'s value as a number of type `N`, else skipped.
pub(super) fn number<N: std::str::FromStr>(t: &mut Translation, l: &Line) -> Option<N> {
    let v = value(l).trim();
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            t.skip(l.no, &l.name, format!("`{}` is not a number", shown(v)));
            None
        }
    }
}

pub(super) fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(super) fn strings(v: impl IntoIterator<Item = String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

/// Translates the option lines; `dir` resolves relative file names.
pub(crate) fn translate(lines: &[Line], dir: Option<&Path>) -> Translation {
    let mut t = Translation::default();
    let mut by_name: HashMap<&str, Vec<&Line>> = HashMap::new();
    for l in lines {
        match parse::arg(&l.name) {
            None if l.name.to_ascii_lowercase().contains("dtls") => {
                t.skip(l.no, &l.name, "ternd has no DTLS");
            }
            None => t.skip(l.no, &l.name, "not a coturn option"),
            Some(Arg::Required) if l.value.is_none() => {
                t.skip(l.no, &l.name, "has no value");
            }
            Some(_) => by_name.entry(l.name.as_str()).or_default().push(l),
        }
    }
    let mut o = Options { by_name };
    listen::listeners(&mut t, &mut o, dir);
    listen::relay(&mut t, &mut o);
    auth::credentials(&mut t, &mut o);
    auth::limits(&mut t, &mut o);
    let loopback = o.flag(&mut t, "allow-loopback-peers").is_some();
    let multicast = o.flag(&mut t, "no-multicast-peers");
    if let Some(l) = multicast {
        let why = unsupported::implied(&l.name).unwrap_or("");
        t.implied.push(finding(l.no, &l.name, why));
    }
    let (allowed, denied) = (o.all("allowed-peer-ip"), o.all("denied-peer-ip"));
    peers::translate(&mut t, allowed, denied, (loopback, multicast.is_some()));
    other::metrics(&mut t, &mut o, dir);
    other::misc(&mut t, &mut o);
    // What no handler took: reasons, or nothing to set.
    let mut left: Vec<&Line> = o.by_name.into_values().flatten().collect();
    left.sort_by_key(|l| l.no);
    for l in left {
        let off = parse::arg(&l.name) == Some(Arg::Optional)
            && parse::bool_value(l.value.as_deref()) == Ok(false);
        if off {
            t.implied
                .push(finding(l.no, &l.name, "turned off: nothing to translate"));
        } else if let Some(why) = unsupported::implied(&l.name) {
            t.implied.push(finding(l.no, &l.name, why));
        } else {
            let why = unsupported::reason(&l.name).unwrap_or("ternd has no equivalent");
            t.skip(l.no, &l.name, why);
        }
    }
    t.skipped.sort_by_key(|f| f.line);
    t.notes.sort_by_key(|f| f.line);
    t.implied.sort_by_key(|f| f.line);
    t
}

/// A relative file name, resolved against the coturn file's directory.
pub(super) fn path(dir: Option<&Path>, name: &str) -> String {
    match dir {
        Some(d) if Path::new(name).is_relative() => d.join(name).display().to_string(),
        _ => name.to_owned(),
    }
}

pub(super) fn ip(t: &mut Translation, l: &Line) -> Option<IpAddr> {
    match value(l).trim().parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            t.skip(
                l.no,
                &l.name,
                format!("`{}` is not an IP address", shown(value(l))),
            );
            None
        }
    }
}

pub(super) fn port(t: &mut Translation, l: Option<&Line>, default: u16) -> u16 {
    match l.map(|l| (l, number::<u16>(t, l))) {
        Some((_, Some(p))) if p != 0 => p,
        Some((l, Some(_))) => {
            t.skip(l.no, &l.name, "port 0 is not a listening port");
            default
        }
        _ => default,
    }
}

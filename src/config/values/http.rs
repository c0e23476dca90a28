//! Parsers and checks for the values of `[auth]`, `[http]` and `[log]`
//! (re-exported by [`values`](super)).

use std::collections::HashSet;
use std::time::Duration;

use super::super::{LogColor, LogFormat, LogOutput, StaticUser, UserCredential, ValueError};
use super::{MAX_USERNAME_BYTES, Result, duration, duration_secs, malformed};

pub(crate) fn secrets(items: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, s) in items.iter().enumerate() {
        if s.is_empty() {
            return Err(ValueError::EmptyEntry {
                what: "secret",
                index: i + 1,
            });
        }
        not_redacted(s)?;
        out.push((*s).to_owned());
    }
    Ok(out)
}

/// What `ternd config show` prints for a secret is refused as one: its output must not
/// run with a secret that everybody knows.
pub(crate) fn not_redacted(s: &str) -> Result<()> {
    if s == crate::config::render::REDACTED {
        return Err(ValueError::Text(
            "`<redacted>` is the placeholder `ternd config show` prints for a secret: put the real secret here",
        ));
    }
    Ok(())
}

pub(crate) fn user_name(name: &str) -> Result<()> {
    const _: () = assert!(MAX_USERNAME_BYTES == 508);
    if name.is_empty() {
        return Err(ValueError::Empty("user name"));
    }
    if name.len() > MAX_USERNAME_BYTES {
        return Err(ValueError::TooLong {
            what: "user name is ",
            len: name.len(),
            unit: "bytes",
            limit: "at most 508, RFC 8489",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ValueError::ControlInUserName(
            name.escape_default().to_string(),
        ));
    }
    Ok(())
}

/// `NAME:PASSWORD` as given to `--user`; splits at the first `:`.
pub(crate) fn user_spec(s: &str) -> Result<StaticUser> {
    let Some((name, password)) = s.split_once(':') else {
        return Err(ValueError::NoColon);
    };
    user_name(name)?;
    if password.is_empty() {
        return Err(ValueError::User {
            name: name.to_owned(),
            problem: " has an empty password",
        });
    }
    not_redacted(password)?;
    Ok(StaticUser {
        name: name.to_owned(),
        credential: UserCredential::Password(password.to_owned()),
    })
}

pub(crate) fn md5_key(hex: &str) -> Result<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return Err(ValueError::KeyLength(hex.chars().count()));
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_digit(pair[0]);
        let lo = hex_digit(pair[1]);
        match (hi, lo) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            _ => {
                return Err(ValueError::Text(
                    "key must contain only hexadecimal digits 0-9, a-f",
                ));
            }
        }
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn unique_users(users: &[StaticUser]) -> Result<()> {
    let mut seen = HashSet::new();
    for u in users {
        if !seen.insert(u.name.as_str()) {
            return Err(ValueError::User {
                name: u.name.clone(),
                problem: " is defined twice",
            });
        }
    }
    Ok(())
}

pub(crate) fn rest_separator(s: &str) -> Result<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control() => Ok(c),
        (Some(_), None) => Err(ValueError::BadSeparator(s.escape_default().to_string())),
        _ => Err(ValueError::NotOneChar(s.escape_default().to_string())),
    }
}

pub(crate) fn log_level(s: &str) -> Result<String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let t = s.trim();
    let is_level = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(t));
    if !is_level && !t.contains('=') {
        return Err(malformed(
            "log level",
            s,
            " (expected trace, debug, info, warn, error, off or a directive such as \"info,ternd=debug\")",
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(t) {
        return Err(ValueError::LogDirective {
            text: s.to_owned(),
            reason: e.to_string(),
        });
    }
    Ok(t.to_owned())
}

pub(crate) fn log_format(s: &str) -> Result<LogFormat> {
    Ok(s.parse::<LogFormat>()?)
}

pub(crate) fn profile(s: &str) -> Result<super::super::Profile> {
    match s {
        "" | "none" => Ok(super::super::Profile::None),
        "loadtest" => Ok(super::super::Profile::Loadtest),
        _ => Err(malformed(
            "profile",
            &s.escape_default().to_string(),
            " (expected loadtest, or none)",
        )),
    }
}

pub(crate) fn log_color(s: &str) -> Result<LogColor> {
    match s {
        "auto" => Ok(LogColor::Auto),
        "always" => Ok(LogColor::Always),
        "never" => Ok(LogColor::Never),
        _ => Err(malformed(
            "log colour",
            &s.escape_default().to_string(),
            " (expected auto, always or never)",
        )),
    }
}

pub(crate) fn log_output(s: &str) -> Result<LogOutput> {
    match s {
        "stderr" => Ok(LogOutput::Stderr),
        "file" => Ok(LogOutput::File),
        "syslog" => Ok(LogOutput::Syslog),
        "journald" => Ok(LogOutput::Journald),
        _ => Err(malformed(
            "log output",
            &s.escape_default().to_string(),
            " (expected stderr, file, syslog or journald)",
        )),
    }
}

/// A file name, which must not be empty.
pub(crate) fn path(s: &str) -> Result<std::path::PathBuf> {
    if s.is_empty() {
        return Err(ValueError::Empty("the path"));
    }
    Ok(std::path::PathBuf::from(s))
}

/// A file name; empty means "none".
pub(crate) fn optional_path(s: &str) -> Result<Option<std::path::PathBuf>> {
    Ok((!s.is_empty()).then(|| std::path::PathBuf::from(s)))
}

/// A list of file names (none may be empty).
pub(crate) fn paths(items: &[&str]) -> Result<Vec<std::path::PathBuf>> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.is_empty() {
                Err(ValueError::EmptyEntry {
                    what: "file name",
                    index: i + 1,
                })
            } else {
                Ok(std::path::PathBuf::from(s))
            }
        })
        .collect()
}

/// Host names or IP literals for URLs.
pub(crate) fn public_hosts(items: &[&str]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let h = item.trim();
        let bracketed = h.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        let ok = if let Some(inner) = bracketed {
            inner.parse::<std::net::Ipv6Addr>().is_ok()
        } else if h.contains(':') {
            h.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if !ok {
            return Err(malformed(
                "public host",
                &item.escape_default().to_string(),
                " (expected a host name or an IP address, without port or scheme)",
            ));
        }
        let h = bracketed.unwrap_or(h).to_owned();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

/// CORS origins: `scheme://host[:port]`, compared exactly with the browser's
/// `Origin` header (so no path and no trailing slash).
pub(crate) fn cors_origins(items: &[&str]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let o = item.trim();
        let rest = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && r.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']')
                })
        });
        if !ok {
            return Err(malformed(
                "CORS origin",
                &item.escape_default().to_string(),
                " (expected scheme://host[:port] such as https://app.example.com, without path or trailing slash)",
            ));
        }
        if !out.iter().any(|x| x == o) {
            out.push(o.to_owned());
        }
    }
    Ok(out)
}

/// Access-token clock-skew leeway: zero allowed, at most one hour.
pub(crate) fn leeway(s: &str) -> Result<Duration> {
    let d = if s.trim() == "0" {
        Duration::ZERO
    } else {
        duration(s)?
    };
    leeway_limit(d)
}

pub(crate) fn leeway_secs(secs: i64) -> Result<Duration> {
    let secs = u64::try_from(secs).map_err(|_| ValueError::NegativeDuration(secs))?;
    leeway_limit(Duration::from_secs(secs))
}

fn leeway_limit(d: Duration) -> Result<Duration> {
    if d > Duration::from_secs(3600) {
        Err(ValueError::DurationTooLong {
            what: "leeway ",
            max: "1h",
        })
    } else {
        Ok(d)
    }
}

/// Credential lifetime of the endpoint: 1 s ..= 7 days.
pub(crate) fn credential_ttl(d: Duration) -> Result<Duration> {
    if d < Duration::from_secs(1) {
        Err(ValueError::SubSecond("must be"))
    } else if d > Duration::from_secs(7 * 24 * 3600) {
        Err(ValueError::DurationTooLong {
            what: "",
            max: "7 days",
        })
    } else {
        Ok(d)
    }
}

/// [`duration`] checked by [`credential_ttl`].
pub(crate) fn credential_ttl_text(s: &str) -> Result<Duration> {
    duration(s).and_then(credential_ttl)
}

/// [`duration_secs`] checked by [`credential_ttl`].
pub(crate) fn credential_ttl_secs(secs: i64) -> Result<Duration> {
    duration_secs(secs).and_then(credential_ttl)
}

/// Free text where empty means "none" (token issuer).
pub(crate) fn optional_text(s: &str) -> Result<Option<String>> {
    if s.chars().any(char::is_control) {
        return Err(ValueError::Text("must not contain control characters"));
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

/// The token audience (empty = no check).
pub(crate) fn audience(s: &str) -> Result<String> {
    if s.chars().any(char::is_control) {
        return Err(ValueError::Text("must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// A required scope token (RFC 6749 §3.3 characters); empty = none.
pub(crate) fn scope(s: &str) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        Ok(Some(s.to_owned()))
    } else {
        Err(malformed(
            "scope",
            &s.escape_default().to_string(),
            " (one scope token: printable ASCII without space, `\"` or `\\`)",
        ))
    }
}

/// The per-IP burst: at least 1.
pub(crate) fn rate_burst(n: u32) -> Result<u32> {
    if n == 0 {
        Err(ValueError::Zero {
            hint: " (use rate_limit = 0 to turn the limit off)",
        })
    } else {
        Ok(n)
    }
}

/// Smallest admin token accepted.
pub(crate) const MIN_ADMIN_TOKEN: usize = 16;

/// The admin bearer token; empty = admin API off.
pub(crate) fn admin_token(s: &str) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValueError::Text(
            "the admin token must be printable ASCII without spaces",
        ));
    }
    if s.len() < MIN_ADMIN_TOKEN {
        return Err(ValueError::ShortToken(s.len()));
    }
    Ok(Some(s.to_owned()))
}

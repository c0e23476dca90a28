//! "Did you mean" hints: for an unknown key of the file (the key in another section, a
//! coturn name, a typo), an unknown flag that is coturn's, and unknown `TERND_*`
//! environment variables (warned about, never fatal).

use super::declare::Setting;
use super::schema_http::all;

/// coturn option names with a ternd equivalent, and the ternd key (the table in
/// MIGRATING.md, for the options a hint can name one setting for).
const COTURN: &[(&str, &str)] = &[
    ("listening-port", "listen"),
    ("listening-ip", "listen"),
    ("aux-server", "listen"),
    ("tls-listening-port", "tls_listen"),
    ("alt-listening-port", "alt_port"),
    ("tcp-proxy-port", "proxy_protocol"),
    ("relay-ip", "relay.relay_ips"),
    ("external-ip", "relay.external_ips"),
    ("min-port", "relay.ports"),
    ("max-port", "relay.ports"),
    ("realm", "realm"),
    ("use-auth-secret", "auth.secrets"),
    ("static-auth-secret", "auth.secrets"),
    ("rest-api-separator", "auth.rest_separator"),
    ("user", "auth.users"),
    ("stale-nonce", "auth.nonce_lifetime"),
    ("user-quota", "relay.user_quota"),
    ("total-quota", "relay.total_quota"),
    ("max-bps", "relay.max_bps"),
    ("max-allocate-lifetime", "relay.max_allocation_lifetime"),
    ("denied-peer-ip", "relay.deny_peer"),
    ("allowed-peer-ip", "relay.allow_peer"),
    ("allow-loopback-peers", "relay.allow_peer"),
    ("cert", "tls_cert"),
    ("pkey", "tls_key"),
    ("alternate-server", "alternate_server"),
    ("tls-alternate-server", "alternate_server"),
    ("rfc3489-compatibility", "stun_backward_compatibility"),
    ("rfc5766-channel-numbers", "relay.rfc5766_channel_numbers"),
    ("software-attribute", "software"),
    ("unauthorized-ratelimit-rps", "relay.unauth_rate_limit"),
    ("prometheus", "http.listen"),
    ("prometheus-port", "http.listen"),
    ("prometheus-address", "http.listen"),
    ("verbose", "log.level"),
    ("Verbose", "log.level"),
    ("log-min-level", "log.level"),
    ("relay-threads", "workers"),
    ("sock-buf-size", "udp_recv_buffer"),
];

/// `TERND_*` variables of the test suite and the scripts: not settings, never warned about.
const TOOLING: &[&str] = &[
    "TERND_REQUIRE_INTEROP",
    "TERND_ARGS",
    "TERND_CHROMIUM",
    "TERND_HEALTH_ADDR",
    "TERND_KEEP_LOG",
    "TERND_REDIS_SERVER",
    "TERND_TURNSERVER",
    "TERND_TURNSERVER_LOG",
];

fn setting(key: &str) -> Option<&'static Setting> {
    all().find(|s| s.key == key)
}

/// `[relay] user_quota`, or `realm` (top level).
fn placed(key: &str) -> String {
    match key.split_once('.') {
        Some((section, k)) => format!("`[{section}] {k}`"),
        None => format!("top-level `{key}`"),
    }
}

/// Where the setting `key` is set: `` `[relay] ports` (--relay-ports LO-HI, TERND_RELAY_PORTS) ``.
fn described(key: &str) -> String {
    match setting(key).and_then(|s| s.flag.as_ref()) {
        Some(f) => format!("{} (--{} {}, {})", placed(key), f.long, f.value_name, f.env),
        None => format!("{} in the file (no flag)", placed(key)),
    }
}

/// The ternd setting for coturn option `name` (also written with `_` for `-`), if
/// there is one: "`min-port` is coturn's name: ternd's is ...".
pub fn coturn(name: &str) -> Option<String> {
    let dashed = name.replace('_', "-");
    let (coturn, key) = COTURN
        .iter()
        .find(|(c, _)| *c == dashed || c.eq_ignore_ascii_case(&dashed))?;
    Some(format!(
        "`{coturn}` is coturn's name; ternd's is {}",
        described(key)
    ))
}

/// Edit distance (insertions, deletions, substitutions), for typos.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The closest of `candidates` to `name`, if a typo away (at most 2 edits, and fewer
/// than a third of the name).
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 2);
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The hint for unknown key `key` of the file (a dotted path), as `: did you mean ...?`
/// or empty.
pub(crate) fn unknown_key(key: &str) -> String {
    if key.contains('[') {
        return String::new();
    }
    let (section, last) = match key.rsplit_once('.') {
        Some((s, l)) => (s, l),
        None => ("", key),
    };
    let elsewhere: Vec<&str> = all()
        .map(|s| s.key)
        .filter(|k| k.rsplit('.').next() == Some(last) && *k != key)
        .collect();
    if let Some(k) = elsewhere.first() {
        let before = if k.contains('.') {
            ""
        } else {
            " (before any [section])"
        };
        return format!(": did you mean {}{before}?", placed(k));
    }
    if let Some(c) = coturn(last) {
        return format!(": {c}");
    }
    let in_section = all().filter_map(|s| {
        let (sec, k) = s.key.rsplit_once('.').unwrap_or(("", s.key));
        (sec == section).then_some(k)
    });
    match closest(last, in_section) {
        Some(k) if section.is_empty() => format!(": did you mean `{k}`?"),
        Some(k) => format!(": did you mean `{section}.{k}`?"),
        None => String::new(),
    }
}

/// Every environment variable ternd reads.
fn known_env() -> Vec<String> {
    let mut out = vec!["TERND_CONFIG".to_owned(), "TERND_CHECK_CONFIG".to_owned()];
    for s in all() {
        if let Some(f) = &s.flag {
            out.push(f.env.to_owned());
            if f.secret {
                out.push(format!("{}_FILE", f.env));
            }
        }
    }
    out
}

/// Warnings for the `TERND_*` variables among `names` that ternd does not read, each
/// with a did-you-mean when one is close (or the name is coturn's).
pub fn unknown_env<I, S>(names: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let known = known_env();
    let mut out = Vec::new();
    for name in names {
        let name = name.as_ref();
        let Some(rest) = name.strip_prefix("TERND_") else {
            continue;
        };
        if known.iter().any(|k| k == name) || TOOLING.contains(&name) {
            continue;
        }
        let mut w = format!("unknown environment variable {name} (ignored)");
        if let Some(c) = coturn(&rest.to_ascii_lowercase()) {
            w.push_str(&format!(": {c}"));
        } else if let Some(k) = closest(name, known.iter().map(String::as_str)) {
            w.push_str(&format!(": did you mean {k}?"));
        }
        out.push(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_another_section() {
        assert_eq!(
            unknown_key("user_quota"),
            ": did you mean `[relay] user_quota`?"
        );
        assert_eq!(
            unknown_key("relay.realm"),
            ": did you mean top-level `realm` (before any [section])?"
        );
    }

    #[test]
    fn coturn_names() {
        assert_eq!(
            unknown_key("min-port"),
            ": `min-port` is coturn's name; ternd's is `[relay] ports` (--relay-ports LO-HI, \
             TERND_RELAY_PORTS)"
        );
        assert!(unknown_key("relay.static-auth-secret").contains("`[auth] secrets` (--secret"));
        assert!(unknown_key("denied_peer_ip").contains("`[relay] deny_peer` (--deny-peer CIDR"));
        assert!(
            coturn("rest-api-separator")
                .unwrap()
                .ends_with("in the file (no flag)")
        );
        assert_eq!(coturn("no-such-thing"), None);
    }

    #[test]
    fn typos() {
        assert_eq!(unknown_key("relay.portz"), ": did you mean `relay.ports`?");
        assert_eq!(unknown_key("relm"), ": did you mean `realm`?");
        assert_eq!(unknown_key("bogus"), "");
        assert_eq!(unknown_key("auth.users[0].role"), "");
    }

    #[test]
    fn environment() {
        let w = unknown_env([
            "TERND_USER_QOTA",
            "TERND_MIN_PORT",
            "TERND_REALM",
            "TERND_ADMIN_TOKEN_FILE",
            "TERND_REQUIRE_INTEROP",
            "PATH",
            "TERND_ZZZZZZZZ",
        ]);
        assert_eq!(
            w,
            [
                "unknown environment variable TERND_USER_QOTA (ignored): did you mean \
                 TERND_USER_QUOTA?",
                "unknown environment variable TERND_MIN_PORT (ignored): `min-port` is coturn's \
                 name; ternd's is `[relay] ports` (--relay-ports LO-HI, TERND_RELAY_PORTS)",
                "unknown environment variable TERND_ZZZZZZZZ (ignored)",
            ]
        );
    }
}

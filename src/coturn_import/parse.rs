//! Reading a turnserver.conf the way coturn does: blanks skipped, `#` lines are
//! comments, the option name ends at the first blank or `=`, the value follows the run
//! of blanks and `=` after it (one pair of surrounding double quotes removed), trailing
//! blanks dropped. coturn does not strip `#` after a value, and neither does this.

/// One option line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub no: usize,
    /// The option name as written.
    pub name: String,
    /// Its value; `None` for a bare name (a flag, or an option missing its value).
    pub value: Option<String>,
}

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `name=value` only.
    Required,
    /// A flag that may take a boolean (or, for a few, a number): `name`, `name=yes`.
    Optional,
}

/// coturn's option names (4.6 to 4.17, `turnserver --help`), with whether each needs a
/// value. A name not here is not a coturn option.
pub const OPTIONS: &[(&str, Arg)] = {
    use Arg::{Optional as O, Required as R};
    &[
        ("listening-device", R),
        ("listening-port", R),
        ("tls-listening-port", R),
        ("alt-listening-port", R),
        ("alt-tls-listening-port", R),
        ("tcp-proxy-port", R),
        ("listening-ip", R),
        ("relay-device", R),
        ("relay-ip", R),
        ("external-ip", R),
        ("relay-threads", R),
        ("min-port", R),
        ("max-port", R),
        ("sock-buf-size", R),
        ("lt-cred-mech", O),
        ("no-auth", O),
        ("user", R),
        ("userdb", R),
        ("db", R),
        ("psql-userdb", R),
        ("sql-userdb", R),
        ("mysql-userdb", R),
        ("mongo-userdb", R),
        ("redis-userdb", R),
        ("redis-statsdb", R),
        ("prometheus", O),
        ("prometheus-port", R),
        ("prometheus-address", R),
        ("prometheus-path", R),
        ("prometheus-username-labels", O),
        ("prometheus-tls", O),
        ("prometheus-cert", R),
        ("prometheus-key", R),
        ("use-auth-secret", O),
        ("static-auth-secret", R),
        ("no-auth-pings", O),
        ("no-dynamic-ip-list", O),
        ("no-dynamic-realms", O),
        ("realm", R),
        ("server-name", R),
        ("oauth", O),
        ("user-quota", R),
        ("total-quota", R),
        ("max-bps", R),
        ("bps-capacity", R),
        ("verbose", O),
        ("Verbose", O),
        ("daemon", O),
        ("no-software-attribute", O),
        ("software-attribute", O),
        ("fingerprint", O),
        ("check-origin-consistency", O),
        ("no-udp", O),
        ("no-tcp", O),
        ("no-tls", O),
        ("dtls", O),
        ("no-dtls", O),
        ("no-udp-relay", O),
        ("no-tcp-relay", O),
        ("stale-nonce", O),
        ("max-allocate-lifetime", O),
        ("channel-lifetime", O),
        ("permission-lifetime", O),
        ("stun-only", O),
        ("no-stun", O),
        ("cert", R),
        ("raw-public-keys", O),
        ("pkey", R),
        ("pkey-pwd", R),
        ("log-file", R),
        ("no-stdout-log", O),
        ("syslog", O),
        ("simple-log", O),
        ("log-min-level", R),
        ("new-log-timestamp", O),
        ("new-log-timestamp-format", R),
        ("aux-server", R),
        ("udp-self-balance", O),
        ("alternate-server", R),
        ("tls-alternate-server", R),
        ("tcp-alternate-server", R),
        ("udp-alternate-server", R),
        ("rest-api-separator", R),
        ("max-allocate-timeout", R),
        ("drain-min-allocations", R),
        ("no-multicast-peers", O),
        ("allow-loopback-peers", O),
        ("allowed-peer-ip", R),
        ("denied-peer-ip", R),
        ("cipher-list", R),
        ("pidfile", R),
        ("secure-stun", O),
        ("CA-file", R),
        ("dh-file", R),
        ("proc-user", R),
        ("proc-group", R),
        ("mobility", O),
        ("no-cli", O),
        ("cli", O),
        ("cli-ip", R),
        ("cli-port", R),
        ("cli-password", R),
        ("web-admin", O),
        ("web-admin-ip", R),
        ("web-admin-port", R),
        ("web-admin-listen-on-workers", O),
        ("server-relay", O),
        ("cli-max-output-sessions", R),
        ("ec-curve-name", R),
        ("dh566", O),
        ("dh1066", O),
        ("tlsv1", O),
        ("tlsv1_1", O),
        ("no-tlsv1", O),
        ("no-tlsv1_1", O),
        ("no-tlsv1_2", O),
        ("secret-key-file", R),
        ("keep-address-family", O),
        ("allocation-default-address-family", R),
        ("acme-redirect", R),
        ("log-binding", O),
        ("no-rfc5780", O),
        ("rfc5780", O),
        ("stun-backward-compatibility", O),
        ("rfc5766-channel-numbers", O),
        ("rfc3489-compatibility", O),
        ("response-origin-only-with-rfc5780", O),
        ("respond-http-unsupported", O),
        ("drop-invalid-packets", O),
        ("drop-invalid-packets-log", O),
        ("udp-recvmmsg", O),
        ("udp-recvmmsg-log", O),
        ("udp-sendmmsg-log", O),
        ("udp-gso", O),
        ("include-reason-string", O),
        ("multiplex-peer", O),
        ("multiplex-peer-port", R),
        ("multiplex-peer-max-peers", R),
        ("version", O),
        ("syslog-facility", R),
        ("cpus", R),
        ("unauthorized-ratelimit", O),
        ("unauthorized-ratelimit-rps", O),
        ("stateless-nonce", O),
        ("stateless-nonce-secret", R),
    ]
};

/// The option's [`Arg`], if it is a coturn option.
pub fn arg(name: &str) -> Option<Arg> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|&(_, a)| a)
}

/// The option lines of `text`, comments and blank lines skipped.
pub fn lines(text: &str) -> Vec<Line> {
    let blank = |c: char| c == ' ' || c == '\t';
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let s = raw.trim_start_matches(blank).trim_end();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let (name, rest) = match s.find(|c: char| blank(c) || c == '=') {
            Some(at) => (&s[..at], Some(&s[at..])),
            None => (s, None),
        };
        let value = rest
            .map(|r| r.trim_start_matches(|c: char| blank(c) || c == '='))
            .filter(|v| !v.is_empty())
            .map(unquote);
        out.push(Line {
            no: i + 1,
            name: name.to_owned(),
            value,
        });
    }
    out
}

/// `"value"` without its quotes (coturn removes a leading quote and a trailing one).
fn unquote(v: &str) -> String {
    match v.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .unwrap_or(inner)
            .trim_end()
            .to_owned(),
        None => v.to_owned(),
    }
}

/// `name` fit for a message: control characters escaped, at most 60 characters.
pub fn shown(name: &str) -> String {
    if name.is_empty() {
        return "(no name)".to_owned();
    }
    let escaped: String = name.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 60 {
        let cut: String = escaped.chars().take(57).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// coturn's boolean: empty or absent is true; 0/n/f/off false; y/t/1-9/on true.
pub fn bool_value(v: Option<&str>) -> Result<bool, String> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(true);
    };
    match v.chars().next() {
        Some('0' | 'n' | 'N' | 'f' | 'F') => Ok(false),
        Some('y' | 'Y' | 't' | 'T' | '1'..='9') => Ok(true),
        _ if v.eq_ignore_ascii_case("off") => Ok(false),
        _ if v.eq_ignore_ascii_case("on") => Ok(true),
        _ => Err(format!(
            "`{}` is not a boolean (coturn takes on/off, yes/no, 1/0, true/false)",
            shown(v)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_coturn_reads_them() {
        let text = "# comment\n\n  listening-port=3478\nrealm example.org\nfingerprint\n\
                    user = \"bob:secret\"\nmin-port\t=  \t49160  \nbare=\n  # indented comment\n";
        let got = lines(text);
        let pairs: Vec<(usize, &str, Option<&str>)> = got
            .iter()
            .map(|l| (l.no, l.name.as_str(), l.value.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                (3, "listening-port", Some("3478")),
                (4, "realm", Some("example.org")),
                (5, "fingerprint", None),
                (6, "user", Some("bob:secret")),
                (7, "min-port", Some("49160")),
                (8, "bare", None),
            ]
        );
    }

    #[test]
    fn booleans() {
        for t in [
            None,
            Some(""),
            Some("yes"),
            Some("1"),
            Some("true"),
            Some("on"),
        ] {
            assert_eq!(bool_value(t), Ok(true), "{t:?}");
        }
        for f in ["no", "0", "false", "off", "OFF"] {
            assert_eq!(bool_value(Some(f)), Ok(false), "{f}");
        }
        assert!(bool_value(Some("maybe")).is_err());
    }

    #[test]
    fn garbage_is_shown_safely() {
        assert_eq!(shown("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 60);
    }
}

//! A minimal RFC 7065 server URL parser: `turn:host[:port][?transport=udp|tcp]` and
//! `turns:host[:port][?transport=tcp]`.
// replaced by crate::url when merged

use crate::{Error, Protocol};

/// A parsed TURN server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerUrl {
    /// The host as written (brackets removed from an IPv6 literal).
    pub(super) host: String,
    /// The port (3478 for `turn:`, 5349 for `turns:` when none is given).
    pub(super) port: u16,
    /// How the server is reached.
    pub(super) protocol: Protocol,
}

fn bad(url: &str, why: &str) -> Error {
    Error::Url(format!("{url:?}: {why}"))
}

/// Parses `url`.
pub(super) fn parse(url: &str) -> Result<ServerUrl, Error> {
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad(url, "no scheme (turn: or turns:)"))?;
    let secure = if scheme.eq_ignore_ascii_case("turn") {
        false
    } else if scheme.eq_ignore_ascii_case("turns") {
        true
    } else {
        return Err(bad(url, "the scheme is neither turn: nor turns:"));
    };
    if rest.starts_with("//") {
        return Err(bad(url, "RFC 7065 URLs have no \"//\""));
    }
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if authority.contains(['@', '/', '#']) {
        return Err(bad(url, "unexpected '@', '/' or '#'"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(url, "unclosed '[' in the host"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(url, "not an IPv6 address between '[' and ']'"));
        }
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad(url, "junk after ']'"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad(url, "no host"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
    {
        return Err(bad(
            url,
            "the host has characters no host name or address has",
        ));
    }
    let port = match port {
        None => {
            if secure {
                5349
            } else {
                3478
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(bad(url, "the port is not a number in 1..=65535")),
        },
    };
    let mut transport = None;
    if let Some(q) = query {
        for pair in q.split('&') {
            match pair.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("transport") => {
                    if v.eq_ignore_ascii_case("udp") {
                        transport = Some(false);
                    } else if v.eq_ignore_ascii_case("tcp") {
                        transport = Some(true);
                    } else {
                        return Err(bad(url, "transport is neither udp nor tcp"));
                    }
                }
                _ => return Err(bad(url, "the only query parameter is transport=udp|tcp")),
            }
        }
    }
    let protocol = match (secure, transport) {
        (false, None | Some(false)) => Protocol::Udp,
        (false, Some(true)) => Protocol::Tcp,
        (true, None | Some(true)) => Protocol::Tls,
        (true, Some(false)) => {
            return Err(bad(url, "turns: over UDP is DTLS, which is not supported"));
        }
    };
    Ok(ServerUrl {
        host: host.to_owned(),
        port,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16, Protocol) {
        let u = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (u.host, u.port, u.protocol)
    }

    #[test]
    fn rfc_7065_forms() {
        assert_eq!(
            ok("turn:example.org"),
            ("example.org".into(), 3478, Protocol::Udp)
        );
        assert_eq!(
            ok("turn:192.0.2.1:3479?transport=udp"),
            ("192.0.2.1".into(), 3479, Protocol::Udp)
        );
        assert_eq!(ok("TURN:h:1?transport=TCP"), ("h".into(), 1, Protocol::Tcp));
        assert_eq!(ok("turns:h"), ("h".into(), 5349, Protocol::Tls));
        assert_eq!(
            ok("turns:[2001:db8::1]:443?transport=tcp"),
            ("2001:db8::1".into(), 443, Protocol::Tls)
        );
        assert_eq!(ok("turn:[::1]"), ("::1".into(), 3478, Protocol::Udp));
    }

    #[test]
    fn bad_urls_are_url_errors() {
        for url in [
            "",
            "stun:h",
            "http://h",
            "turn://h:3478",
            "turn:",
            "turn:h:0",
            "turn:h:70000",
            "turn:h:x",
            "turn:u@h",
            "turn:h?transport=sctp",
            "turn:h?foo=bar",
            "turns:h?transport=udp",
            "turn:[::1",
            "turn:[nothost]:1",
            "turn:h h",
            "turn:[::1]x",
        ] {
            assert!(matches!(parse(url), Err(Error::Url(_))), "{url}");
        }
    }
}

//! STUN and TURN server URLs: RFC 7064 (`stun:host[:port]`, `stuns:host[:port]`) and
//! RFC 7065 (`turn:host[:port][?transport=udp|tcp]`, `turns:host[:port][?transport=tcp]`),
//! as WebRTC `iceServers` carry them.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Protocol};

/// The scheme of an [`IceUrl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `stun:` (RFC 7064), STUN over UDP; port 3478 by default.
    Stun,
    /// `stuns:` (RFC 7064), STUN over TLS; port 5349 by default.
    Stuns,
    /// `turn:` (RFC 7065), TURN over UDP or TCP; port 3478 by default.
    Turn,
    /// `turns:` (RFC 7065), TURN over TLS; port 5349 by default.
    Turns,
}

impl Scheme {
    /// The scheme's name, lowercase, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }

    /// True for `turn:` and `turns:`, the URLs `Client::connect` takes.
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }

    /// True for `stuns:` and `turns:` (TLS).
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Stuns | Scheme::Turns)
    }
}

/// A parsed STUN or TURN server URL.
///
/// No `//`, no user info, no path: `turn:turn.example.org:3478?transport=tcp`. The scheme
/// and the transport are case-insensitive; an IPv6 address goes in brackets. `turns:` over
/// UDP (DTLS) is refused, as is any query parameter but `transport` (and any query on
/// `stun:` and `stuns:`, which RFC 7064 gives none). [`Display`](fmt::Display) writes the
/// port and, for TURN, the transport out in full.
///
/// ```
/// use ternd_client::{IceUrl, Protocol, Scheme};
///
/// let url: IceUrl = "turn:[2001:db8::1]?transport=tcp".parse()?;
/// assert_eq!(url.scheme(), Scheme::Turn);
/// assert_eq!(url.host(), "2001:db8::1");
/// assert_eq!(url.port(), 3478);
/// assert_eq!(url.protocol(), Protocol::Tcp);
/// assert_eq!(url.to_string(), "turn:[2001:db8::1]:3478?transport=tcp");
/// # Ok::<(), ternd_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IceUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    protocol: Protocol,
}

fn bad(url: &str, why: &str) -> Error {
    Error::Url(format!("{url:?}: {why}"))
}

impl IceUrl {
    /// Parses `url`; a URL that is not one of the RFC 7064 or 7065 forms is an
    /// [`Error::Url`] naming what is wrong.
    pub fn parse(url: &str) -> Result<IceUrl, Error> {
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| bad(url, "no scheme (stun:, stuns:, turn: or turns:)"))?;
        let scheme = [Scheme::Stun, Scheme::Stuns, Scheme::Turn, Scheme::Turns]
            .into_iter()
            .find(|s| scheme.eq_ignore_ascii_case(s.as_str()))
            .ok_or_else(|| bad(url, "the scheme is none of stun:, stuns:, turn: and turns:"))?;
        if rest.starts_with("//") {
            return Err(bad(url, "STUN and TURN URLs have no \"//\""));
        }
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        if authority.contains(['@', '/', '#']) {
            return Err(bad(url, "unexpected '@', '/' or '#'"));
        }
        let (host, port) = split_host_port(url, authority)?;
        let port = match port {
            None if scheme.is_secure() => 5349,
            None => 3478,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad(url, "the port is not a number in 1..=65535")),
            },
        };
        let tcp = match query {
            None => None,
            Some(_) if !scheme.is_turn() => {
                return Err(bad(url, "stun: and stuns: URLs take no query"));
            }
            Some(q) => transport(url, q)?,
        };
        let protocol = match scheme {
            // No query: `tcp` is None.
            Scheme::Stun => Protocol::Udp,
            Scheme::Stuns => Protocol::Tls,
            Scheme::Turn if tcp == Some(true) => Protocol::Tcp,
            Scheme::Turn => Protocol::Udp,
            Scheme::Turns if tcp == Some(false) => {
                return Err(bad(url, "turns: over UDP is DTLS, which is not supported"));
            }
            Scheme::Turns => Protocol::Tls,
        };
        Ok(IceUrl {
            scheme,
            host: host.to_owned(),
            port,
            protocol,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written: a name or an address, without the brackets of an IPv6 one.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the server is reached: UDP (`stun:`, `turn:` and `?transport=udp`), TCP
    /// (`turn:...?transport=tcp`) or TLS (`stuns:`, `turns:`).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// True for `turn:` and `turns:` URLs.
    pub fn is_turn(&self) -> bool {
        self.scheme.is_turn()
    }
}

/// `host[:port]` or `[v6][:port]`; the host checked.
fn split_host_port<'a>(url: &str, authority: &'a str) -> Result<(&'a str, Option<&'a str>), Error> {
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
    Ok((host, port))
}

/// The `transport` of a TURN URL's query: `Some(true)` for TCP, `Some(false)` for UDP.
fn transport(url: &str, query: &str) -> Result<Option<bool>, Error> {
    let mut tcp = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("transport") => {
                if v.eq_ignore_ascii_case("udp") {
                    tcp = Some(false);
                } else if v.eq_ignore_ascii_case("tcp") {
                    tcp = Some(true);
                } else {
                    return Err(bad(url, "transport is neither udp nor tcp"));
                }
            }
            _ => return Err(bad(url, "the only query parameter is transport=udp|tcp")),
        }
    }
    Ok(tcp)
}

impl FromStr for IceUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<IceUrl, Error> {
        IceUrl::parse(s)
    }
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match (self.scheme, self.protocol) {
            (Scheme::Turn, Protocol::Udp) => f.write_str("?transport=udp"),
            (Scheme::Turn, _) | (Scheme::Turns, _) => f.write_str("?transport=tcp"),
            (Scheme::Stun | Scheme::Stuns, _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (Scheme, String, u16, Protocol) {
        let u = IceUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (u.scheme, u.host, u.port, u.protocol)
    }

    #[test]
    fn rfc_7065_forms() {
        use Scheme::{Turn, Turns};
        assert_eq!(
            ok("turn:example.org"),
            (Turn, "example.org".into(), 3478, Protocol::Udp)
        );
        assert_eq!(
            ok("turn:192.0.2.1:3479?transport=udp"),
            (Turn, "192.0.2.1".into(), 3479, Protocol::Udp)
        );
        assert_eq!(
            ok("TURN:h:1?transport=TCP"),
            (Turn, "h".into(), 1, Protocol::Tcp)
        );
        assert_eq!(ok("turns:h"), (Turns, "h".into(), 5349, Protocol::Tls));
        assert_eq!(
            ok("turns:[2001:db8::1]:443?transport=tcp"),
            (Turns, "2001:db8::1".into(), 443, Protocol::Tls)
        );
        assert_eq!(ok("turn:[::1]"), (Turn, "::1".into(), 3478, Protocol::Udp));
    }

    #[test]
    fn rfc_7064_forms() {
        use Scheme::{Stun, Stuns};
        assert_eq!(
            ok("stun:stun.example.org"),
            (Stun, "stun.example.org".into(), 3478, Protocol::Udp)
        );
        assert_eq!(
            ok("STUN:192.0.2.1:19302"),
            (Stun, "192.0.2.1".into(), 19302, Protocol::Udp)
        );
        assert_eq!(
            ok("stuns:[::1]"),
            (Stuns, "::1".into(), 5349, Protocol::Tls)
        );
        assert!(!IceUrl::parse("stun:h").unwrap().is_turn());
        assert!(IceUrl::parse("turns:h").unwrap().is_turn());
    }

    #[test]
    fn display_round_trips() {
        for (url, shown) in [
            ("turn:h", "turn:h:3478?transport=udp"),
            ("Turn:h:9?transport=TCP", "turn:h:9?transport=tcp"),
            ("turns:[::1]", "turns:[::1]:5349?transport=tcp"),
            ("stun:h", "stun:h:3478"),
            ("stuns:h:1", "stuns:h:1"),
        ] {
            let u = IceUrl::parse(url).unwrap();
            assert_eq!(u.to_string(), shown);
            assert_eq!(shown.parse::<IceUrl>().unwrap(), u);
        }
    }

    #[test]
    fn bad_urls_are_url_errors() {
        for url in [
            "",
            "stun",
            "http://h",
            "turn://h:3478",
            "stun://h",
            "turn:",
            "stun:",
            "turn:h:0",
            "turn:h:70000",
            "turn:h:x",
            "turn:u@h",
            "turn:h/path",
            "turn:h?transport=sctp",
            "turn:h?foo=bar",
            "turns:h?transport=udp",
            "stun:h?transport=udp",
            "stuns:h?transport=tcp",
            "turn:[::1",
            "turn:[nothost]:1",
            "turn:h h",
            "turn:[::1]x",
        ] {
            assert!(matches!(IceUrl::parse(url), Err(Error::Url(_))), "{url}");
        }
    }
}

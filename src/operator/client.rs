//! A minimal HTTP/1.1 client for the admin API: one request per connection
//! (`Connection: close`) over a plain `TcpStream`, bounded by timeouts. `https://` is
//! refused with a message saying so.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// How long connecting, and then each read or write, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read (the session list of a large cluster fits).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// A parsed `http://HOST:PORT[/PREFIX]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// As given, for messages.
    pub(crate) shown: String,
    /// `HOST:PORT`, for the Host header and resolving.
    authority: String,
    /// A path prefix without the trailing slash (a reverse proxy's), usually empty.
    prefix: String,
}

impl Url {
    /// Parses `s`; the error says what is wrong with it.
    pub(crate) fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        if s.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        {
            return Err(format!(
                "{s}: https:// is not supported by this client; reach the admin API over \
                 http:// (e.g. a loopback http.listen), or use curl with the certificate"
            ));
        }
        let rest = match s.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &s[7..],
            _ => {
                return Err(format!(
                    "`{s}` is not an http:// URL (expected e.g. http://127.0.0.1:9641)"
                ));
            }
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(format!("`{s}`: the URL must not have a query or fragment"));
        }
        let bad = || format!("`{s}` names no valid host (expected e.g. http://127.0.0.1:9641)");
        if authority.is_empty()
            || authority.contains('@')
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        let has_port = match authority.rfind(']') {
            Some(end) => authority[end..].contains(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let (_, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        if port.parse::<u16>().is_err() {
            return Err(bad());
        }
        Ok(Url {
            shown: s.trim_end_matches('/').to_owned(),
            authority,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The URL of a listen address (unspecified IPs mean loopback).
    pub(crate) fn of_listen(addr: SocketAddr) -> Url {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let authority = SocketAddr::new(ip, addr.port()).to_string();
        Url {
            shown: format!("http://{authority}"),
            authority,
            prefix: String::new(),
        }
    }
}

/// An answer: status and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Response {
    /// The `error_description` of a JSON error body, if it has one.
    pub(crate) fn description(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v.get("error_description")?.as_str().map(str::to_owned)
    }
}

/// Sends `METHOD PATH` (PATH starting with `/`) with the bearer `token`.
pub(crate) fn request(
    url: &Url,
    method: &str,
    path: &str,
    token: &str,
) -> Result<Response, String> {
    let unreachable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!(
            "no ternd answers at {} (is http.listen set, and is ternd running?)",
            url.shown
        ),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            format!(
                "{} did not answer within {} s",
                url.shown,
                TIMEOUT.as_secs()
            )
        }
        _ => format!("cannot reach {}: {e}", url.shown),
    };
    let addrs: Vec<SocketAddr> = url
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the host of {}: {e}", url.shown))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = match (stream, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(unreachable(e)),
        (None, None) => return Err(format!("the host of {} has no address", url.shown)),
    };
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(unreachable)?;
    let head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         User-Agent: ternd/{}\r\nAccept: application/json\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
        url.prefix,
        url.authority,
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(head.as_bytes()).map_err(unreachable)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(unreachable)?;
    parse(&raw).ok_or_else(|| format!("{} answered something other than HTTP", url.shown))
}

/// Status line, headers and body (with or without chunked transfer coding).
fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let mut body = &raw[end + 4..];
    let decoded;
    if chunked {
        decoded = dechunk(body)?;
        body = &decoded;
    } else if let Some(n) = length {
        body = body.get(..n)?;
    }
    Some(Response {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// `s` percent-encoded for a path segment or a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:9641/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("127.0.0.1:9641", "")
        );
        assert_eq!(u.shown, "http://127.0.0.1:9641");
        let u = Url::parse("http://[::1]/ternd/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.prefix.as_str()),
            ("[::1]:80", "/ternd")
        );
        assert!(
            Url::parse("https://x")
                .unwrap_err()
                .contains("not supported")
        );
        for bad in [
            "",
            "localhost:9641",
            "http://",
            "http://a:b",
            "http://a b",
            "ftp://x",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let any = Url::of_listen("0.0.0.0:9641".parse().unwrap());
        assert_eq!(any.shown, "http://127.0.0.1:9641");
        let any6 = Url::of_listen("[::]:9641".parse().unwrap());
        assert_eq!(any6.shown, "http://[::1]:9641");
    }

    #[test]
    fn responses() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "[]"));
        let r = parse(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "abcd"));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert_eq!(encode("a b:1/é"), "a%20b%3A1%2F%C3%A9");
    }
}

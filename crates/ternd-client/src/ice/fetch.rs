//! One bounded HTTP/1.1 exchange with a credentials endpoint, over TCP or TLS.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{IceServers, clip};
use crate::Error;

/// The largest response head (status line and headers) read.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most response headers read.
const MAX_HEADERS: usize = 64;
/// The most addresses of the endpoint's host tried.
const MAX_ADDRESSES: usize = 16;

/// Bounds and TLS settings of [`fetch_ice_servers_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Bounds the whole exchange: resolving the host, connecting, the TLS handshake,
    /// sending the request and reading the whole answer. 10 s by default.
    pub timeout: Duration,
    /// The largest response body read, in bytes; larger ones (declared in
    /// `Content-Length` or as they arrive) are an [`Error::HttpTooLarge`]. 64 KiB by
    /// default; ternd's answers are well under 2 KiB.
    pub max_body: usize,
    /// The TLS configuration for `https:` (`None`: the Mozilla roots of `webpki-roots`).
    /// The server's certificate is checked against the URL's host either way. Its ALPN
    /// list, if any, must allow `http/1.1`.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl Default for FetchOptions {
    /// 10 s, 64 KiB, webpki roots.
    fn default() -> FetchOptions {
        FetchOptions {
            timeout: Duration::from_secs(10),
            max_body: 64 * 1024,
            tls_config: None,
        }
    }
}

impl FetchOptions {
    /// The same options with another timeout for the whole exchange.
    pub fn timeout(mut self, timeout: Duration) -> FetchOptions {
        self.timeout = timeout;
        self
    }

    /// The same options with another largest response body.
    pub fn max_body(mut self, bytes: usize) -> FetchOptions {
        self.max_body = bytes;
        self
    }

    /// The same options with a TLS configuration of its own (e.g. other roots).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> FetchOptions {
        self.tls_config = Some(config);
        self
    }
}

/// Fetches `iceServers` from `endpoint_url` with an access token, with default
/// [`FetchOptions`] (10 s, 64 KiB, webpki roots). See [`fetch_ice_servers_with`].
pub async fn fetch_ice_servers(
    endpoint_url: &str,
    access_token: &str,
) -> Result<IceServers, Error> {
    fetch_ice_servers_with(endpoint_url, access_token, &FetchOptions::default()).await
}

/// Fetches `iceServers` from `endpoint_url` (`http://host[:port]/path` or `https://...`,
/// e.g. ternd's `https://turn.example.org:9641/v1/ice-servers`) with one HTTP/1.1
/// `POST` carrying `Authorization: Bearer <access_token>` and an empty body, and reads
/// the JSON answer ([`IceServers::from_json`]). Redirects are not followed and nothing is
/// cached; the connection is closed afterwards.
///
/// Errors:
/// - [`Error::Url`]: the endpoint URL is not an absolute `http:` or `https:` URL (user
///   info in it is refused), or its host does not resolve;
/// - [`Error::Io`]: no address of the host accepted a connection;
/// - [`Error::Tls`]: the TLS handshake failed (e.g. a certificate not trusted);
/// - [`Error::HttpTimeout`]: the whole exchange took longer than
///   [`FetchOptions::timeout`];
/// - [`Error::Http`]: the answer is not HTTP/1.1, or the server closed the connection
///   before it was complete;
/// - [`Error::HttpStatus`]: any status but 2xx, with the `error` and
///   `error_description` of an OAuth-style JSON body (ternd answers 401 `invalid_token`
///   for a bad or expired token);
/// - [`Error::HttpTooLarge`]: a 2xx answer's body is over [`FetchOptions::max_body`];
/// - [`Error::IceServers`]: the body is not the expected JSON.
pub async fn fetch_ice_servers_with(
    endpoint_url: &str,
    access_token: &str,
    options: &FetchOptions,
) -> Result<IceServers, Error> {
    let target = Target::parse(endpoint_url)?;
    let request = target.request(access_token)?;
    let tls = match target.https {
        false => None,
        true => {
            let config = match &options.tls_config {
                Some(c) => c.clone(),
                None => crate::client::default_tls()?,
            };
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| Error::Tls(format!("server name {:?}: {e}", target.host)))?;
            Some((TlsConnector::from(config), name))
        }
    };
    let exchange = async {
        let stream = connect(&target.host, target.port).await?;
        match tls {
            None => send(stream, request, options.max_body).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| Error::Tls(e.to_string()))?;
                send(stream, request, options.max_body).await
            }
        }
    };
    let (status, body) = tokio::time::timeout(options.timeout, exchange)
        .await
        .map_err(|_| Error::HttpTimeout {
            after: options.timeout,
        })??;
    if !(200..300).contains(&status) {
        return Err(status_error(status, body.ok()));
    }
    IceServers::from_json(&body?)
}

/// An endpoint URL, taken apart.
struct Target {
    https: bool,
    /// Without the brackets of an IPv6 address.
    host: String,
    port: u16,
    /// `host[:port]` as written, for the Host header.
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let bad = |why: &str| Error::Url(format!("{url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            _ => return Err(bad("the scheme is neither http: nor https:")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "user info in the URL is refused (the access token authenticates)",
            ));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(bad("no host"));
        }
        // `Authority::port_u16` is None for a port that is not a u16: take the port as
        // written (after the host, IPv6 brackets included) to refuse it.
        let after_host = authority
            .as_str()
            .rsplit_once(']')
            .map_or(authority.as_str(), |(_, rest)| rest);
        let port = match after_host.rsplit_once(':') {
            Some((_, "")) | None if https => 443,
            Some((_, "")) | None => 80,
            Some((_, p)) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad("the port is not a number in 1..=65535")),
            },
        };
        Ok(Target {
            https,
            host: host.to_owned(),
            port,
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    fn request(&self, access_token: &str) -> Result<Request<Empty<Bytes>>, Error> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| Error::Http("the access token cannot go in a header".to_owned()))?;
        auth.set_sensitive(true);
        Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_LENGTH, "0")
            .header(header::CONNECTION, "close")
            .header(
                header::USER_AGENT,
                concat!("ternd-client/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| Error::Http(clip(&e.to_string())))
    }
}

/// A TCP connection to the first of the host's addresses that accepts one.
async fn connect(host: &str, port: u16) -> Result<TcpStream, Error> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::Url(format!("cannot resolve {host:?}: {e}")))?;
    let mut last = None;
    for addr in addrs.take(MAX_ADDRESSES) {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| Error::Url(format!("{host:?} has no address")), Error::Io))
}

/// A hyper error with its causes, clipped.
fn http_error(e: &dyn std::error::Error) -> Error {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    Error::Http(clip(&text))
}

/// Sends `request` on `io` and reads the answer: its status and its body of at most
/// `limit` bytes (or why it could not be read).
async fn send<I>(
    io: I,
    request: Request<Empty<Bytes>>,
    limit: usize,
) -> Result<(u16, Result<Bytes, Error>), Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| http_error(&e))?;
    let work = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error(&e))?;
        let status = response.status().as_u16();
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Ok((status, Err(Error::HttpTooLarge { limit })));
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    Error::HttpTooLarge { limit }
                } else {
                    http_error(&*e)
                }
            });
        Ok((status, body))
    };
    tokio::pin!(work);
    tokio::pin!(conn);
    // The connection is driven beside the exchange, in this task: nothing is left running
    // when the caller gives up.
    tokio::select! {
        biased;
        r = &mut work => r,
        ended = &mut conn => {
            // The server closed the connection: what it sent before is buffered, and the
            // exchange now ends either way.
            match (ended, work.await) {
                (Err(e), Err(_)) => Err(http_error(&e)),
                (_, r) => r,
            }
        }
    }
}

/// The OAuth-style error body ternd (and most token-checking endpoints) send.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn status_error(status: u16, body: Option<Bytes>) -> Error {
    let parsed = body.and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok());
    let (error, description) = parsed.map_or((None, None), |p| (p.error, p.error_description));
    Error::HttpStatus {
        status,
        error: error.map(|s| clip(&s)),
        description: description.map(|s| clip(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        let t = Target::parse("https://turn.example.org:9641/v1/ice-servers?x=1").unwrap();
        assert!(t.https);
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            (
                "turn.example.org",
                9641,
                "turn.example.org:9641",
                "/v1/ice-servers?x=1"
            )
        );
        let t = Target::parse("HTTP://[::1]/v1/ice-servers").unwrap();
        assert!(!t.https);
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.authority, "[::1]");
        let t = Target::parse("https://h").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
        let t = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        for bad in [
            "",
            "/v1/ice-servers",
            "h:80/v1",
            "ftp://h/",
            "turn:h",
            "https://user:pw@h/",
            "http://h:0/",
            "http://h:99999/",
            "http://[::1]:70000/",
            "http:///path",
            "http://h h/",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(Error::Url(_))),
                "{bad}: {:?}",
                Target::parse(bad).map(|t| t.authority)
            );
        }
    }

    #[test]
    fn the_request() {
        let t = Target::parse("http://127.0.0.1:9641/v1/ice-servers").unwrap();
        let r = t.request("tok.en").unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/v1/ice-servers");
        let h = r.headers();
        assert_eq!(h[header::HOST], "127.0.0.1:9641");
        assert_eq!(h[header::AUTHORIZATION], "Bearer tok.en");
        assert!(h[header::AUTHORIZATION].is_sensitive());
        assert_eq!(h[header::CONTENT_LENGTH], "0");
        assert!(matches!(t.request("a\r\nX-Evil: 1"), Err(Error::Http(_))));
    }

    #[test]
    fn status_errors() {
        let body =
            Bytes::from_static(br#"{"error":"invalid_token","error_description":"token expired"}"#);
        let e = status_error(401, Some(body));
        assert_eq!(e.http_status(), Some(401));
        assert!(matches!(
            &e,
            Error::HttpStatus { error: Some(c), description: Some(d), .. }
                if c == "invalid_token" && d == "token expired"
        ));
        assert_eq!(
            e.to_string(),
            "HTTP status 401: invalid_token (token expired)"
        );
        for body in [
            None,
            Some(Bytes::from_static(b"<html>")),
            Some(Bytes::new()),
        ] {
            assert!(matches!(
                status_error(502, body),
                Error::HttpStatus {
                    status: 502,
                    error: None,
                    description: None
                }
            ));
        }
    }
}

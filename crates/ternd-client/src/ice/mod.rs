//! WebRTC `iceServers` from a credentials endpoint such as ternd's `/v1/ice-servers`: an
//! access token in, short-lived TURN credentials out (cargo feature `tokio`).
//!
//! [`fetch_ice_servers`] makes one HTTP/1.1 request (`POST`, `Authorization: Bearer
//! <token>`, over `http:` or `https:`), bounded in time and in the size of the answer, and
//! reads the JSON body into [`IceServers`]. [`IceServers::turn_server`] picks a TURN URL
//! and its [`Credentials`] for [`Client::connect`](crate::Client::connect).
//!
//! ```no_run
//! # async fn f() -> Result<(), ternd_client::Error> {
//! use ternd_client::{Client, Protocol, ice};
//!
//! let servers = ice::fetch_ice_servers(
//!     "https://turn.example.org:9641/v1/ice-servers",
//!     "eyJhbGciOiJIUzI1NiJ9...",
//! )
//! .await?;
//! let (url, credentials) = servers
//!     .turn_server(Protocol::Udp)
//!     .expect("a TURN server over UDP");
//! let client = Client::connect(&url, credentials).await?;
//! let relay = client.allocate().await?;
//! # let _ = relay;
//! # Ok(()) }
//! ```

mod fetch;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

pub use fetch::{FetchOptions, fetch_ice_servers, fetch_ice_servers_with};

use crate::{Credentials, Error, IceUrl, Protocol};

/// The `{"iceServers": [...]}` answer of a credentials endpoint (the shape of
/// `RTCConfiguration.iceServers`, with ternd's `ttl` and `expiresOn` beside it).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceServers {
    /// The entries, in the server's order.
    pub ice_servers: Vec<IceServer>,
    /// How long the credentials are valid from the moment they were minted (`ttl`, in
    /// seconds), if the server said.
    pub ttl: Option<Duration>,
    /// When they expire (`expiresOn`, RFC 3339 as the server wrote it), if the server said.
    pub expires_on: Option<String>,
}

/// One entry of `iceServers` (`RTCIceServer`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` and `turns:` URLs, as the server wrote them (a lone
    /// string in the JSON becomes a list of one).
    pub urls: Vec<String>,
    /// The TURN username, if any.
    pub username: Option<String>,
    /// The TURN password, if any.
    pub credential: Option<String>,
}

/// `urls` is a string or a list of strings (WebRTC allows both).
#[derive(Deserialize)]
#[serde(untagged)]
enum Urls {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireServer {
    urls: Urls,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<WireServer>,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default, rename = "expiresOn")]
    expires_on: Option<String>,
}

/// At most this much of a message taken from an answer goes into an error.
const MAX_ERROR_TEXT: usize = 200;

/// `s` cut to [`MAX_ERROR_TEXT`] bytes (on a character boundary).
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl IceServers {
    /// Reads a `{"iceServers": [...], "ttl": N, "expiresOn": "..."}` body. Each entry
    /// needs `urls`; `username`, `credential`, `ttl` and `expiresOn` are optional and
    /// other members are ignored. Anything else is an [`Error::IceServers`]. URLs are kept
    /// as written, whether or not they parse (see [`IceServer::ice_urls`]).
    pub fn from_json(body: &[u8]) -> Result<IceServers, Error> {
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| Error::IceServers(clip(&e.to_string())))?;
        Ok(IceServers {
            ice_servers: wire
                .ice_servers
                .into_iter()
                .map(|s| IceServer {
                    urls: match s.urls {
                        Urls::One(u) => vec![u],
                        Urls::Many(u) => u,
                    },
                    username: s.username,
                    credential: s.credential,
                })
                .collect(),
            ttl: wire.ttl.map(Duration::from_secs),
            expires_on: wire.expires_on,
        })
    }

    /// Every `turn:` and `turns:` URL that parses and comes with a username and a
    /// credential, in the server's order, each with those credentials: what
    /// [`Client::connect`](crate::Client::connect) takes. The URLs are written out in
    /// full ([`IceUrl`]'s `Display`).
    pub fn turn_servers(&self) -> Vec<(String, Credentials)> {
        self.ice_servers
            .iter()
            .filter_map(|s| Some((s, s.credentials()?)))
            .flat_map(|(s, c)| {
                s.ice_urls()
                    .filter(IceUrl::is_turn)
                    .map(move |u| (u.to_string(), c.clone()))
            })
            .collect()
    }

    /// The first of [`turn_servers`](Self::turn_servers) reached over `protocol` (UDP and
    /// TCP: `turn:`, TLS: `turns:`).
    pub fn turn_server(&self, protocol: Protocol) -> Option<(String, Credentials)> {
        self.turn_servers()
            .into_iter()
            .find(|(url, _)| IceUrl::parse(url).is_ok_and(|u| u.protocol() == protocol))
    }

    /// The `stun:` and `stuns:` URLs that parse, in the server's order.
    pub fn stun_urls(&self) -> Vec<IceUrl> {
        self.ice_servers
            .iter()
            .flat_map(IceServer::ice_urls)
            .filter(|u| !u.is_turn())
            .collect()
    }
}

impl IceServer {
    /// The entry's username and credential as [`Credentials`] (the realm comes from the
    /// server's 401), if it has both.
    pub fn credentials(&self) -> Option<Credentials> {
        match (&self.username, &self.credential) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            _ => None,
        }
    }

    /// The entry's URLs that parse as [`IceUrl`]s; the others (another scheme, `turns:`
    /// over UDP, ...) are skipped.
    pub fn ice_urls(&self) -> impl Iterator<Item = IceUrl> + '_ {
        self.urls.iter().filter_map(|u| IceUrl::parse(u).ok())
    }
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl fmt::Debug for IceServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServers")
            .field("ice_servers", &self.ice_servers)
            .field("ttl", &self.ttl)
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ternd's `/v1/ice-servers` answers (its unit tests pin this shape).
    const TERND: &str = r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:127.0.0.1:3478?transport=udp","turn:127.0.0.1:3478?transport=tcp","turns:[::1]:5349?transport=tcp"],"username":"1700000000:alice","credential":"c2VjcmV0"}],"expiresOn":"2023-11-14T22:13:20Z","ttl":3600}"#;

    #[test]
    fn reads_ternds_answer() {
        let s = IceServers::from_json(TERND.as_bytes()).unwrap();
        assert_eq!(s.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(s.expires_on.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(s.ice_servers.len(), 2);
        assert_eq!(s.ice_servers[0].credentials(), None);
        let c = Credentials::new("1700000000:alice", "c2VjcmV0");
        assert_eq!(
            s.turn_servers(),
            vec![
                ("turn:127.0.0.1:3478?transport=udp".to_owned(), c.clone()),
                ("turn:127.0.0.1:3478?transport=tcp".to_owned(), c.clone()),
                ("turns:[::1]:5349?transport=tcp".to_owned(), c.clone()),
            ]
        );
        assert_eq!(
            s.turn_server(Protocol::Tcp).unwrap().0,
            "turn:127.0.0.1:3478?transport=tcp"
        );
        assert_eq!(
            s.turn_server(Protocol::Tls).unwrap().0,
            "turns:[::1]:5349?transport=tcp"
        );
        assert_eq!(
            s.stun_urls(),
            vec![IceUrl::parse("stun:127.0.0.1").unwrap()]
        );
        // The password never shows in Debug.
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("c2VjcmV0") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn other_shapes_webrtc_allows() {
        // A lone URL string, extra members, no ttl, URLs ternd-client cannot use.
        let s = IceServers::from_json(
            br#"{"iceServers":[{"urls":"turn:h","username":"u","credential":"p","credentialType":"password"},
                {"urls":["turns:h?transport=udp","http://h","turn:h:1?transport=tcp"],"username":"v","credential":"q"},
                {"urls":"turn:nocreds"}],"extra":true}"#,
        )
        .unwrap();
        assert_eq!(s.ttl, None);
        assert_eq!(s.expires_on, None);
        assert_eq!(s.ice_servers[0].urls, vec!["turn:h"]);
        let urls: Vec<String> = s.turn_servers().into_iter().map(|(u, _)| u).collect();
        assert_eq!(
            urls,
            ["turn:h:3478?transport=udp", "turn:h:1?transport=tcp"]
        );
        assert_eq!(s.turn_server(Protocol::Tcp).unwrap().1.username, "v");
        assert_eq!(s.turn_server(Protocol::Tls), None);
    }

    #[test]
    fn anything_else_is_an_ice_servers_error() {
        for body in [
            &b""[..],
            b"garbage",
            b"{}",
            b"[]",
            b"{\"iceServers\":5}",
            b"{\"iceServers\":[{}]}",
            b"{\"iceServers\":[{\"urls\":5}]}",
            b"{\"iceServers\":[{\"urls\":[\"turn:h\"],\"username\":1}]}",
            b"{\"iceServers\":[],\"ttl\":-1}",
            b"{\"iceServers\":[]",
            b"\xff\xfe",
        ] {
            match IceServers::from_json(body) {
                Err(Error::IceServers(m)) => assert!(m.len() <= MAX_ERROR_TEXT + 3, "{m}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        // An empty list is an answer, if not a useful one.
        let s = IceServers::from_json(b"{\"iceServers\":[]}").unwrap();
        assert!(s.turn_servers().is_empty());
    }

    #[test]
    fn clip_keeps_characters_whole() {
        let long = "é".repeat(MAX_ERROR_TEXT);
        let c = clip(&long);
        assert!(c.ends_with("...") && c.len() <= MAX_ERROR_TEXT + 3);
        assert_eq!(clip("short"), "short");
    }
}

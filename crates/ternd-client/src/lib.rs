//! A TURN client (RFC 8656 over RFC 8489, RFC 6062): a sans-IO core ([`Allocation`]), a
//! tokio adapter (`Client`, cargo feature `tokio`), and the request-at-a-time [`Session`]
//! with [`blocking`] adapters; credentials helpers ([`rest_credentials`], `ice` for
//! `iceServers` from an HTTP credentials endpoint, cargo feature `tokio`) and [`IceUrl`]
//! (`stun:`, `stuns:`, `turn:`, `turns:`, RFC 7064/7065). The crate README (the page below
//! when built with the `tokio` feature) says what each does.
//!
#![cfg_attr(feature = "tokio", doc = include_str!("../README.md"))]
//!
//! ## The request-at-a-time API
//!
//! [`Session`] builds requests into the caller's buffer, checks the answers, runs the 401
//! challenge and 438 Stale Nonce retries, holds the long-term key, and books what the
//! server granted ([`Grants`]: relayed and mapped addresses, lifetime, permissions,
//! channels, what is due for a refresh). [`Session::request`] writes a request and
//! remembers its transaction; send it; feed the answer to [`Session::handle_response`],
//! which returns [`Response::Success`], or [`Response::Retry`] when a new nonce (or the
//! first challenge) came back and the same request should be built and sent again, or an
//! [`Error`]. [`data`] frames and decodes the data path (Send and Data indications,
//! ChannelData).
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use ternd_client::{Credentials, Session, blocking};
//!
//! let sock = UdpSocket::bind("0.0.0.0:0")?;
//! sock.connect("203.0.113.1:3478")?;
//! let mut session = Session::new(Credentials::new("user", "password"), *b"example0");
//! let mut udp = blocking::Udp::connected(&sock);
//! let relayed = blocking::allocate(&mut session, &mut udp)?;
//! let peer = "198.51.100.2:5000".parse().unwrap();
//! blocking::channel_bind(&mut session, &mut udp, 0x4000, peer)?;
//! assert_eq!(session.grants().relayed(), Some(relayed));
//! assert_eq!(session.grants().channel_for(peer), Some(0x4000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod allocation;
mod auth;
pub mod blocking;
#[cfg(feature = "tokio")]
pub mod client;
pub mod data;
mod error;
#[cfg(feature = "testing")]
pub mod fuzzing;
#[cfg(feature = "tokio")]
pub mod ice;
mod rest;
pub mod sansio;
mod session;
#[cfg(test)]
mod tests;
mod url;

pub use allocation::{CHANNEL_LIFETIME, Channel, Due, Grants, PERMISSION_LIFETIME, Permission};
pub use auth::PasswordAlgorithmKind;
#[cfg(feature = "tokio")]
pub use client::{Client, ClientOptions, RelaySocket, SocketStats, TcpAllocation, TcpRelayStream};
pub use error::{Error, method_name};
pub use rest::{REST_SEPARATOR, rest_credentials};
pub use sansio::{
    Allocation, Binding, Config, ConnectionBind, Encoded, Event, Family, Input, Protocol,
    RelayProtocol, Stats, Timing, Transmit,
};
pub use session::{Request, Response, Session};
pub use ternd_proto::stun;
pub use url::{IceUrl, Scheme};

/// Long-term credentials: a username and password, and optionally the realm to use
/// (otherwise the one the server's 401 names).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// The realm, if known in advance; `None` takes it from the first 401.
    pub realm: Option<String>,
}

impl Credentials {
    /// A username and password; the realm comes from the server.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            realm: None,
        }
    }

    /// TURN REST credentials (coturn's `use-auth-secret`) for `user`, valid until
    /// `expiry_unix`: username `EXPIRY<separator>USER`, password base64(HMAC-SHA1(secret,
    /// username)). [`rest_credentials`] computes the expiry from a lifetime and uses the
    /// usual `:` separator.
    pub fn rest(secret: &str, user: &str, expiry_unix: u64, separator: char) -> Credentials {
        let (username, password) =
            ternd_proto::auth::rest::credentials(secret, user, expiry_unix, separator);
        Credentials::new(username, password)
    }

    /// The same credentials with a fixed realm.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Credentials {
        self.realm = Some(realm.into());
        self
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .finish()
    }
}

//! ternd's STUN/TURN protocol, with no I/O: the STUN codec ([`stun`]), authentication
//! ([`auth`]: long-term keys, stateless nonces, REST usernames, the credential store), the
//! peer policy ([`policy`]), the PROXY protocol header parser ([`proxy`]) and the TURN server
//! core ([`turn`]).
//!
//! Nothing here opens a socket, reads a clock or a file, or draws random numbers: bytes, the
//! addresses they came from, `now` and key material come in from the caller, and what to send
//! goes back out. See [`turn`] for how to drive the core.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod policy;
pub mod proxy;
pub mod stun;
pub mod turn;

//! ternd — a STUN/TURN relay server.
//!
//! The protocol modules ([`stun`], [`auth`], [`turn`]) are pure: they never open a socket or
//! read a clock. [`net`] is the I/O shell around them. [`config`] merges the TOML file,
//! environment and command line into one validated [`config::Config`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod bench;
pub mod config;
pub mod credentials_cmd;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ice;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod stun;
pub mod token_cmd;
pub mod turn;

//! ternd — a STUN/TURN relay server.
//!
//! The protocol lives in the `ternd-proto` crate (re-exported here as [`stun`], [`auth`],
//! [`policy`], [`proxy`] and [`turn`]): it never opens a socket or reads a clock. [`net`] is
//! the I/O shell around it, built on `ternd-io` (the batched-syscall floor). [`config`]
//! merges the TOML file, environment and command line into one validated
//! [`config::Config`]. `ternd bench` and `ternd forwarder` come from `ternd-bench`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub use ternd_bench as bench;
pub use ternd_proto::{auth, policy, proxy, stun, turn};

pub mod cluster;
pub mod config;
pub mod coturn_import;
pub mod credentials_cmd;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ice;
pub mod load;
pub mod log_json;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod operator;
pub mod sd_notify;
pub mod tls;
pub mod token_cmd;

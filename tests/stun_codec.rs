//! The STUN codec from the outside, one test binary: published vectors byte for byte
//! (`stun_codec/vectors.rs`), property tests (`stun_codec/properties.rs`) and cross-checks
//! with the webrtc-rs `stun` and `turn` crates (`stun_codec/crosscheck.rs`).

#[path = "stun_codec/crosscheck.rs"]
mod crosscheck;
#[path = "stun_codec/properties.rs"]
mod properties;
#[path = "stun_codec/vectors.rs"]
mod vectors;

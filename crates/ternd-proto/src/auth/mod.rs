//! Credentials: long-term key derivation (RFC 8489 §9.2) and TURN REST API style
//! ephemeral credentials. Pure code: time is passed in.

pub mod nonce;
pub mod rest;
pub mod store;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Why a credential could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepError {
    /// The string contains characters the OpaqueString/SASLprep profile prohibits.
    #[error("{0} contains prohibited characters")]
    Prohibited(&'static str),
}

/// Applies the SASLprep profile (RFC 4013), which RFC 8489 §9.2.2's OpaqueString profile
/// (RFC 8265) agrees with for the strings STUN uses; e.g. "The\u{AD}M\u{AA}tr\u{2168}"
/// becomes "TheMatrIX".
pub fn prep<'a>(s: &'a str, what: &'static str) -> Result<std::borrow::Cow<'a, str>, PrepError> {
    stringprep::saslprep(s).map_err(|_| PrepError::Prohibited(what))
}

/// The long-term key for MESSAGE-INTEGRITY with the MD5 password algorithm (and for clients
/// that send no PASSWORD-ALGORITHM): MD5(username ":" realm ":" password), realm and
/// password prepared with [`prep`].
pub fn long_term_key_md5(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 16], PrepError> {
    let realm = prep(realm, "realm")?;
    let password = prep(password, "password")?;
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    Ok(h.finalize().into())
}

/// The long-term key for the SHA-256 password algorithm: SHA-256(username ":" realm ":"
/// password), realm and password prepared with [`prep`].
pub fn long_term_key_sha256(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 32], PrepError> {
    let realm = prep(realm, "realm")?;
    let password = prep(password, "password")?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    Ok(h.finalize().into())
}

/// USERHASH = SHA-256(OpaqueString(username) ":" OpaqueString(realm)) (RFC 8489 §14.4).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], PrepError> {
    let username = prep(username, "username")?;
    let realm = prep(realm, "realm")?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslprep_example() {
        assert_eq!(
            prep("The\u{AD}M\u{AA}tr\u{2168}", "password").unwrap(),
            "TheMatrIX"
        );
        assert!(prep("bad\u{7}", "password").is_err());
    }
}

//! TURN REST API style ephemeral credentials (draft-uberti-behave-turn-rest, as coturn's
//! `use-auth-secret`): username `EXPIRY:USER`, password base64(HMAC-SHA1(secret, username)).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::stun::hmac_sha1;

/// The password for a REST username under `secret`.
pub fn password(secret: &str, username: &str) -> String {
    STANDARD.encode(hmac_sha1(secret.as_bytes(), &[username.as_bytes()]))
}

/// A username/password pair for `user`, valid until `expiry` (UNIX seconds).
pub fn credentials(
    secret: &str,
    user: &str,
    expiry_unix: u64,
    separator: char,
) -> (String, String) {
    let username = if user.is_empty() {
        expiry_unix.to_string()
    } else {
        format!("{expiry_unix}{separator}{user}")
    };
    let pw = password(secret, &username);
    (username, pw)
}

/// Splits a REST username into (expiry, user). The expiry is the part before the first
/// `separator` (or the whole username when there is none, as coturn accepts).
pub fn parse_username(username: &str, separator: char) -> Option<(u64, &str)> {
    let (exp, user) = match username.split_once(separator) {
        Some((e, u)) => (e, u),
        None => (username, ""),
    };
    if exp.is_empty() || exp.len() > 20 || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    exp.parse().ok().map(|e| (e, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value() {
        // coturn's documented example shape: HMAC-SHA1 over the username, base64.
        let (u, p) = credentials("north", "alice", 1_700_000_000, ':');
        assert_eq!(u, "1700000000:alice");
        assert_eq!(p, password("north", "1700000000:alice"));
        assert_eq!(p.len(), 28);
        assert_ne!(p, password("south", "1700000000:alice"));
        assert_eq!(parse_username(&u, ':'), Some((1_700_000_000, "alice")));
        assert_eq!(parse_username("1700000000", ':'), Some((1_700_000_000, "")));
        assert_eq!(parse_username("alice:1700000000", ':'), None);
        assert_eq!(parse_username(":alice", ':'), None);
        assert_eq!(parse_username("99999999999999999999999:a", ':'), None);
    }
}

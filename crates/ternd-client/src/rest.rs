//! TURN REST API credentials (draft-uberti-behave-turn-rest; coturn's `use-auth-secret`,
//! ternd's `auth.secrets`) minted from the shared secret the server also knows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Credentials;

/// The separator between the expiry and the user in a REST username: `:`, the default
/// of ternd (`auth.rest_separator`) and coturn (`rest-api-separator`). For a server
/// configured with another one, use [`Credentials::rest`].
pub const REST_SEPARATOR: char = ':';

/// TURN REST credentials for `user` under the shared `secret`, valid for `ttl` from
/// `now`: username `"<expiry>:<user>"` (the expiry in UNIX seconds, `now + ttl` rounded
/// down; the separator is [`REST_SEPARATOR`]), password base64(HMAC-SHA1(`secret`,
/// username)), computed by `ternd-proto`, the code ternd checks them with.
///
/// An empty `user` gives the bare `"<expiry>"` username, which ternd and coturn also
/// accept. The server refuses the credentials once its clock is past the expiry (401), so
/// `ttl` should cover the allocation's whole life: the server checks them again on every
/// Refresh. A `now` before 1970 counts as 1970; a `ttl` past the year 584 billion
/// saturates.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_699_996_400);
/// let c = ternd_client::rest_credentials("mysecret", "alice", Duration::from_secs(3600), now);
/// assert_eq!(c.username, "1700000000:alice");
/// assert_eq!(c.password, "PSwWMIID0EkUrZ8pwY2wbdTQnTc=");
/// ```
pub fn rest_credentials(secret: &str, user: &str, ttl: Duration, now: SystemTime) -> Credentials {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let expiry = since_epoch.saturating_add(ttl).as_secs();
    Credentials::rest(secret, user, expiry, REST_SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ternd_proto::auth::store::{CredentialStore, LookupError, PasswordAlgorithm};
    use ternd_proto::auth::{long_term_key_md5, long_term_key_sha256};

    const REALM: &str = "example.org";
    const NOW: u64 = 1_699_996_400;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    /// ternd's own check: the credential store built from `auth.secrets`.
    fn server(secrets: &[&str]) -> CredentialStore {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        CredentialStore::new(REALM, &secrets, &[], ':').unwrap()
    }

    #[test]
    fn known_vector() {
        // printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac mysecret -binary | base64
        let c = rest_credentials("mysecret", "alice", Duration::from_secs(3600), at(NOW));
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.password, "PSwWMIID0EkUrZ8pwY2wbdTQnTc=");
        assert_eq!(c.realm, None);
        // Sub-second parts of now + ttl round down.
        let c = rest_credentials(
            "mysecret",
            "alice",
            Duration::from_millis(3_599_400),
            at(NOW) + Duration::from_millis(700),
        );
        assert_eq!(c.username, "1700000000:alice");
    }

    #[test]
    fn the_server_accepts_them_until_the_expiry() {
        let store = server(&["north"]);
        let c = rest_credentials("north", "alice", Duration::from_secs(600), at(NOW));
        for (alg, now) in [
            (PasswordAlgorithm::Md5, NOW),
            (PasswordAlgorithm::Sha256, NOW),
            (PasswordAlgorithm::Md5, NOW + 600),
        ] {
            let r = store.resolve(&c.username, alg, now).unwrap();
            assert_eq!(r.user, "alice");
            assert_eq!(r.expiry_unix, Some(NOW + 600));
            // The key the client derives from its password is the one the server holds.
            let client_key = match alg {
                PasswordAlgorithm::Md5 => long_term_key_md5(&c.username, REALM, &c.password)
                    .unwrap()
                    .to_vec(),
                PasswordAlgorithm::Sha256 => long_term_key_sha256(&c.username, REALM, &c.password)
                    .unwrap()
                    .to_vec(),
            };
            assert_eq!(r.keys[0].as_bytes(), &client_key[..]);
        }
        // Another secret gives a key the server does not hold.
        let forged = rest_credentials("south", "alice", Duration::from_secs(600), at(NOW));
        let r = store
            .resolve(&forged.username, PasswordAlgorithm::Md5, NOW)
            .unwrap();
        let forged_key = long_term_key_md5(&forged.username, REALM, &forged.password).unwrap();
        assert_ne!(r.keys[0].as_bytes(), &forged_key[..]);
    }

    #[test]
    fn the_server_refuses_them_after_the_expiry() {
        let store = server(&["north"]);
        let c = rest_credentials("north", "alice", Duration::from_secs(600), at(NOW));
        assert_eq!(
            store.resolve(&c.username, PasswordAlgorithm::Md5, NOW + 601),
            Err(LookupError::Expired)
        );
        // Minted with an expiry already past: refused at once.
        let stale = rest_credentials("north", "alice", Duration::ZERO, at(NOW - 1));
        assert_eq!(
            store.resolve(&stale.username, PasswordAlgorithm::Md5, NOW),
            Err(LookupError::Expired)
        );
    }

    #[test]
    fn edge_cases() {
        let ttl = Duration::from_secs(60);
        // A bare expiry for an empty user.
        let c = rest_credentials("s", "", ttl, at(NOW));
        assert_eq!(c.username, (NOW + 60).to_string());
        assert!(
            server(&["s"])
                .resolve(&c.username, PasswordAlgorithm::Md5, NOW)
                .is_ok()
        );
        // Before 1970, and a ttl past u64 seconds: no panic.
        let early = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rest_credentials("s", "u", ttl, early).username, "60:u");
        let c = rest_credentials("s", "u", Duration::MAX, at(NOW));
        assert_eq!(c.username, format!("{}:u", u64::MAX));
    }
}

//! Where long-term keys come from: static users and TURN REST shared secrets.

use std::collections::HashMap;
use std::fmt;

use super::{PrepError, long_term_key_md5, long_term_key_sha256, prep, rest, userhash};

/// A static long-term-credential user.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// User name (USERNAME attribute).
    pub name: String,
    /// The credential.
    pub credential: UserCredential,
}

/// How a static user's credential is stored.
#[derive(Clone, PartialEq, Eq)]
pub enum UserCredential {
    /// Plain-text password.
    Password(String),
    /// `MD5(name ":" realm ":" password)`, RFC 8489's long-term key.
    Md5Key([u8; 16]),
}

impl fmt::Debug for StaticUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticUser")
            .field("name", &self.name)
            .field("credential", &self.credential)
            .finish()
    }
}

impl fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserCredential::Password(_) => f.write_str("Password(<redacted>)"),
            UserCredential::Md5Key(_) => f.write_str("Md5Key(<redacted>)"),
        }
    }
}

/// A long-term key, as an allocation keeps it (RFC 8656 stores it per allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// MD5(username ":" realm ":" password): the key for the MD5 password algorithm and for
    /// clients that send no PASSWORD-ALGORITHM.
    Md5([u8; 16]),
    /// SHA-256(username ":" realm ":" password): the key for the SHA-256 password algorithm.
    Sha256([u8; 32]),
}

impl Key {
    /// The key bytes (the HMAC key of MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Md5(k) => k,
            Key::Sha256(k) => k,
        }
    }

    /// The password algorithm this key belongs to.
    pub fn algorithm(&self) -> PasswordAlgorithm {
        match self {
            Key::Md5(_) => PasswordAlgorithm::Md5,
            Key::Sha256(_) => PasswordAlgorithm::Sha256,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Md5(_) => f.write_str("Md5(<redacted>)"),
            Key::Sha256(_) => f.write_str("Sha256(<redacted>)"),
        }
    }
}

/// A password algorithm (RFC 8489 §18.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordAlgorithm {
    /// MD5, wire value 0x0001.
    Md5,
    /// SHA-256, wire value 0x0002.
    Sha256,
}

impl PasswordAlgorithm {
    /// The value in PASSWORD-ALGORITHM(S).
    pub const fn wire(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    /// The algorithm with wire value `v`, if this server knows it.
    pub const fn from_wire(v: u16) -> Option<Self> {
        match v {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// What a username resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The quota key: the USER part of a REST username (the whole username when that part
    /// is empty), or the static user's name.
    pub user: String,
    /// The REST credential's expiry (UNIX seconds); `None` for static users.
    pub expiry_unix: Option<u64>,
    /// Candidate keys, all of the requested algorithm: one per REST secret in configuration
    /// order (rotation: the first is the current secret), or the one static key. Never empty.
    pub keys: Vec<Key>,
}

/// Why a username did not resolve to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No such static user, and not a REST username (or no REST secret is configured).
    #[error("unknown user")]
    Unknown,
    /// A REST username whose expiry is in the past.
    #[error("credential expired")]
    Expired,
    /// SHA-256 was asked for a user stored as an MD5 key only. Answer it as a wrong
    /// password: every username is offered the same algorithms, so this must not tell a
    /// key-stored user from the others.
    #[error("password algorithm unavailable for this user")]
    AlgorithmUnavailable,
}

struct StoredUser {
    name: String,
    md5: [u8; 16],
    sha256: Option<[u8; 32]>,
}

/// The credential sources of one realm: static users and REST shared secrets.
pub struct CredentialStore {
    realm: String,
    secrets: Vec<String>,
    separator: char,
    users: Vec<StoredUser>,
    by_name: HashMap<String, usize>,
    by_userhash: HashMap<[u8; 32], usize>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("realm", &self.realm)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("separator", &self.separator)
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl CredentialStore {
    /// Builds the store from configuration: REST secrets (the first is current), static users
    /// (a plain-text password gives both an MD5 and a SHA-256 key, an `Md5Key` only the MD5
    /// key), the REST separator, and `realm`. Keys and USERHASHes are computed here.
    ///
    /// Fails when the realm, a password or a user name is rejected by the OpaqueString
    /// preparation.
    pub fn new(
        realm: &str,
        secrets: &[String],
        static_users: &[StaticUser],
        separator: char,
    ) -> Result<Self, PrepError> {
        prep(realm, "realm")?;
        let mut users = Vec::with_capacity(static_users.len());
        let mut by_name = HashMap::with_capacity(static_users.len());
        let mut by_userhash = HashMap::with_capacity(static_users.len());
        for u in static_users {
            let (md5, sha256) = match &u.credential {
                UserCredential::Password(pw) => (
                    long_term_key_md5(&u.name, realm, pw)?,
                    Some(long_term_key_sha256(&u.name, realm, pw)?),
                ),
                UserCredential::Md5Key(k) => (*k, None),
            };
            let hash = userhash(&u.name, realm)?;
            let i = users.len();
            // Configuration rejects duplicate names; should one slip through, the first wins.
            by_name.entry(u.name.clone()).or_insert(i);
            by_userhash.entry(hash).or_insert(i);
            users.push(StoredUser {
                name: u.name.clone(),
                md5,
                sha256,
            });
        }
        Ok(Self {
            realm: realm.to_owned(),
            secrets: secrets.to_vec(),
            separator,
            users,
            by_name,
            by_userhash,
        })
    }

    /// The realm keys are derived for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Resolves `username` for `alg` at `now_unix`.
    ///
    /// Static users come first (exact name match). Otherwise, with REST secrets configured,
    /// the username must parse as `EXPIRY<sep>USER` (or a bare `EXPIRY`); an expiry before
    /// `now_unix` is [`LookupError::Expired`]; each secret gives one candidate key, the
    /// long-term key of `username` with password base64(HMAC-SHA1(secret, username)).
    pub fn resolve(
        &self,
        username: &str,
        alg: PasswordAlgorithm,
        now_unix: u64,
    ) -> Result<Resolved, LookupError> {
        if let Some(&i) = self.by_name.get(username) {
            let u = &self.users[i];
            let key = match alg {
                PasswordAlgorithm::Md5 => Key::Md5(u.md5),
                PasswordAlgorithm::Sha256 => {
                    Key::Sha256(u.sha256.ok_or(LookupError::AlgorithmUnavailable)?)
                }
            };
            return Ok(Resolved {
                user: u.name.clone(),
                expiry_unix: None,
                keys: vec![key],
            });
        }
        if self.secrets.is_empty() {
            return Err(LookupError::Unknown);
        }
        let (expiry, user) =
            rest::parse_username(username, self.separator).ok_or(LookupError::Unknown)?;
        if expiry < now_unix {
            return Err(LookupError::Expired);
        }
        let keys = self
            .secrets
            .iter()
            .map(|secret| {
                let password = rest::password(secret, username);
                // The realm was prepared in `new` and the password is base64: this cannot
                // fail, but a failure must not authenticate anyone.
                match alg {
                    PasswordAlgorithm::Md5 => {
                        long_term_key_md5(username, &self.realm, &password).map(Key::Md5)
                    }
                    PasswordAlgorithm::Sha256 => {
                        long_term_key_sha256(username, &self.realm, &password).map(Key::Sha256)
                    }
                }
                .map_err(|_| LookupError::Unknown)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A bare `EXPIRY` username has no USER part: count it on its own, as coturn does,
        // rather than lumping every such user into one quota bucket.
        let user = if user.is_empty() { username } else { user };
        Ok(Resolved {
            user: user.to_owned(),
            expiry_unix: Some(expiry),
            keys,
        })
    }

    /// The static user whose USERHASH (RFC 8489 §14.4: SHA-256(username ":" realm)) is
    /// `hash`. REST users cannot be found this way.
    pub fn username_for_userhash(&self, hash: &[u8; 32]) -> Option<&str> {
        self.by_userhash
            .get(hash)
            .map(|&i| self.users[i].name.as_str())
    }

    /// True when no credential source (REST secret or static user) is configured.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.users.is_empty()
    }

    /// Whether SHA-256 can be offered: REST secrets or static users with a plain-text
    /// password exist. A property of the configuration, never of one user: the algorithms
    /// offered must not vary with the USERNAME.
    pub fn offers_sha256(&self) -> bool {
        !self.secrets.is_empty() || self.users.iter().any(|u| u.sha256.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};

    const REALM: &str = "example.org";
    const NOW: u64 = 1_700_000_000;

    struct Auth {
        secrets: Vec<String>,
        users: Vec<StaticUser>,
        rest_separator: char,
    }

    fn auth(secrets: &[&str], users: Vec<StaticUser>) -> Auth {
        Auth {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            users,
            rest_separator: ':',
        }
    }

    fn new_store(realm: &str, a: &Auth) -> Result<CredentialStore, PrepError> {
        CredentialStore::new(realm, &a.secrets, &a.users, a.rest_separator)
    }

    fn user(name: &str, credential: UserCredential) -> StaticUser {
        StaticUser {
            name: name.to_owned(),
            credential,
        }
    }

    /// An Allocate request from `username` with MESSAGE-INTEGRITY under `key`.
    fn signed_request(username: &str, key: &[u8], sha256: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([3; 12]),
        )
        .unwrap();
        b.add_raw(crate::stun::attr_type::USERNAME, username.as_bytes())
            .unwrap();
        b.add_raw(crate::stun::attr_type::REALM, REALM.as_bytes())
            .unwrap();
        if sha256 {
            b.add_message_integrity_sha256(key).unwrap();
        } else {
            b.add_message_integrity(key).unwrap();
        }
        let n = b.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn coturn_rest_password_known_value() {
        // printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac mysecret -binary | base64
        assert_eq!(
            rest::password("mysecret", "1700000000:alice"),
            "PSwWMIID0EkUrZ8pwY2wbdTQnTc="
        );
    }

    #[test]
    fn rest_credential_verifies() {
        let store = new_store(REALM, &auth(&["north"], vec![])).unwrap();
        assert_eq!(store.realm(), REALM);
        assert!(!store.is_empty());
        assert!(store.offers_sha256());
        let (username, password) = rest::credentials("north", "alice", NOW + 3600, ':');

        let r = store
            .resolve(&username, PasswordAlgorithm::Md5, NOW)
            .unwrap();
        assert_eq!(r.user, "alice");
        assert_eq!(r.expiry_unix, Some(NOW + 3600));
        assert_eq!(
            r.keys,
            vec![Key::Md5(
                long_term_key_md5(&username, REALM, &password).unwrap()
            )]
        );
        assert_eq!(r.keys[0].algorithm(), PasswordAlgorithm::Md5);
        // What a client computes from the password verifies with the stored key.
        let client_key = long_term_key_md5(&username, REALM, &password).unwrap();
        let req = signed_request(&username, &client_key, false);
        let msg = Message::parse(&req).unwrap();
        msg.verify_integrity(r.keys[0].as_bytes()).unwrap();
        let wrong = long_term_key_md5(&username, REALM, "guess").unwrap();
        let req = signed_request(&username, &wrong, false);
        assert!(
            Message::parse(&req)
                .unwrap()
                .verify_integrity(r.keys[0].as_bytes())
                .is_err()
        );

        let r = store
            .resolve(&username, PasswordAlgorithm::Sha256, NOW)
            .unwrap();
        let client_key = long_term_key_sha256(&username, REALM, &password).unwrap();
        assert_eq!(r.keys, vec![Key::Sha256(client_key)]);
        let req = signed_request(&username, &client_key, true);
        Message::parse(&req)
            .unwrap()
            .verify_integrity_sha256(r.keys[0].as_bytes())
            .unwrap();

        // Expiry equal to now is still valid; one second later it is not.
        assert!(
            store
                .resolve(&username, PasswordAlgorithm::Md5, NOW + 3600)
                .is_ok()
        );
        assert_eq!(
            store.resolve(&username, PasswordAlgorithm::Md5, NOW + 3601),
            Err(LookupError::Expired)
        );
        // A bare expiry (no user part) is accepted, as coturn does, and is its own quota key.
        let (bare, _) = rest::credentials("north", "", NOW + 10, ':');
        let r = store.resolve(&bare, PasswordAlgorithm::Md5, NOW).unwrap();
        assert_eq!(r.user, bare);
    }

    #[test]
    fn rest_rotation() {
        let store = new_store(REALM, &auth(&["new", "old"], vec![])).unwrap();
        let (username, password) = rest::credentials("old", "bob", NOW + 60, ':');
        let r = store
            .resolve(&username, PasswordAlgorithm::Md5, NOW)
            .unwrap();
        let key = |secret: &str| {
            Key::Md5(
                long_term_key_md5(&username, REALM, &rest::password(secret, &username)).unwrap(),
            )
        };
        assert_eq!(r.keys, vec![key("new"), key("old")]);
        let client_key = long_term_key_md5(&username, REALM, &password).unwrap();
        let req = signed_request(&username, &client_key, false);
        let msg = Message::parse(&req).unwrap();
        assert!(msg.verify_integrity(r.keys[0].as_bytes()).is_err());
        msg.verify_integrity(r.keys[1].as_bytes()).unwrap();
    }

    #[test]
    fn rest_unknown_and_separator() {
        let store = new_store(REALM, &auth(&["s"], vec![])).unwrap();
        let md5 = PasswordAlgorithm::Md5;
        for bad in ["alice", "", "alice:1700000001", ":alice", "17000x:alice"] {
            assert_eq!(
                store.resolve(bad, md5, NOW),
                Err(LookupError::Unknown),
                "{bad}"
            );
        }
        // Another separator: "EXPIRY:USER" is not parsed as a REST username.
        let mut a = auth(&["s"], vec![]);
        a.rest_separator = '|';
        let store = new_store(REALM, &a).unwrap();
        assert_eq!(
            store.resolve("1700000100:alice", md5, NOW),
            Err(LookupError::Unknown)
        );
        let r = store.resolve("1700000100|alice", md5, NOW).unwrap();
        assert_eq!(r.user, "alice");
        // No secrets: REST usernames are unknown.
        let store = new_store(REALM, &auth(&[], vec![])).unwrap();
        assert!(store.is_empty());
        assert!(!store.offers_sha256());
        assert_eq!(
            store.resolve("1700000100:alice", md5, NOW),
            Err(LookupError::Unknown)
        );
    }

    #[test]
    fn static_users() {
        let md5_only = long_term_key_md5("carol", REALM, "pw2").unwrap();
        let store = new_store(
            REALM,
            &auth(
                &[],
                vec![
                    user("alice", UserCredential::Password("pw1".into())),
                    user("carol", UserCredential::Md5Key(md5_only)),
                ],
            ),
        )
        .unwrap();
        assert!(!store.is_empty());
        assert!(store.offers_sha256());

        let r = store.resolve("alice", PasswordAlgorithm::Md5, NOW).unwrap();
        assert_eq!(
            r,
            Resolved {
                user: "alice".into(),
                expiry_unix: None,
                keys: vec![Key::Md5(long_term_key_md5("alice", REALM, "pw1").unwrap())],
            }
        );
        let r = store
            .resolve("alice", PasswordAlgorithm::Sha256, NOW)
            .unwrap();
        assert_eq!(
            r.keys,
            vec![Key::Sha256(
                long_term_key_sha256("alice", REALM, "pw1").unwrap()
            )]
        );

        let r = store.resolve("carol", PasswordAlgorithm::Md5, NOW).unwrap();
        assert_eq!(r.keys, vec![Key::Md5(md5_only)]);
        assert_eq!(
            store.resolve("carol", PasswordAlgorithm::Sha256, NOW),
            Err(LookupError::AlgorithmUnavailable)
        );
        assert_eq!(
            store.resolve("Alice", PasswordAlgorithm::Md5, NOW),
            Err(LookupError::Unknown)
        );

        // Only an MD5-key user: SHA-256 is not offered.
        let store = new_store(
            REALM,
            &auth(&[], vec![user("carol", UserCredential::Md5Key(md5_only))]),
        )
        .unwrap();
        assert!(!store.offers_sha256());
    }

    #[test]
    fn static_user_before_rest() {
        let store = new_store(
            REALM,
            &auth(
                &["s"],
                vec![user(
                    "1700000100:dave",
                    UserCredential::Password("pw".into()),
                )],
            ),
        )
        .unwrap();
        let r = store
            .resolve("1700000100:dave", PasswordAlgorithm::Md5, NOW + 1_000_000)
            .unwrap();
        assert_eq!(r.user, "1700000100:dave");
        assert_eq!(r.expiry_unix, None);
    }

    #[test]
    fn userhash_lookup() {
        let store = new_store(
            REALM,
            &auth(
                &["s"],
                vec![
                    user("alice", UserCredential::Password("pw1".into())),
                    user("carol", UserCredential::Md5Key([1; 16])),
                ],
            ),
        )
        .unwrap();
        let h = userhash("alice", REALM).unwrap();
        assert_eq!(store.username_for_userhash(&h), Some("alice"));
        let h = userhash("carol", REALM).unwrap();
        assert_eq!(store.username_for_userhash(&h), Some("carol"));
        let h = userhash("alice", "other.realm").unwrap();
        assert_eq!(store.username_for_userhash(&h), None);
        assert_eq!(store.username_for_userhash(&[0; 32]), None);
    }

    #[test]
    fn prep_errors_and_redaction() {
        assert!(new_store("bad\u{7}", &auth(&["s"], vec![])).is_err());
        assert!(
            new_store(
                REALM,
                &auth(
                    &[],
                    vec![user("eve", UserCredential::Password("\u{7}".into()))]
                )
            )
            .is_err()
        );
        let store = new_store(
            REALM,
            &auth(
                &["topsecret"],
                vec![user("alice", UserCredential::Password("pw1".into()))],
            ),
        )
        .unwrap();
        let dbg = format!("{store:?}");
        assert!(!dbg.contains("topsecret"), "{dbg}");
        assert!(dbg.contains("alice"), "{dbg}");
        let r = store.resolve("alice", PasswordAlgorithm::Md5, NOW).unwrap();
        assert_eq!(format!("{:?}", r.keys), "[Md5(<redacted>)]");
        assert_eq!(
            PasswordAlgorithm::from_wire(2),
            Some(PasswordAlgorithm::Sha256)
        );
        assert_eq!(PasswordAlgorithm::Md5.wire(), 1);
        assert_eq!(PasswordAlgorithm::from_wire(3), None);
    }
}

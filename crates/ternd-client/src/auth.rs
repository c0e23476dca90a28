//! The client side of the long-term credential mechanism (RFC 8489 §9.2): what a 401 or
//! 438 teaches (realm, nonce, the password algorithms offered, whether USERHASH may be
//! used), the key derived from it, the attributes an authenticated request carries, and
//! the check of an answer's integrity.

use ternd_proto::stun::{
    Attribute, BuildError, Message, MessageBuilder, PasswordAlgorithm, PasswordAlgorithms,
    attr_type,
};

use crate::{Credentials, Error};

/// RFC 8489's nonce cookie: a nonce starting with it carries a Security Feature set.
const NONCE_COOKIE: &str = "obMatJos2";
/// Security Feature bit 0 (most significant): Password algorithms.
const FEATURE_PASSWORD_ALGORITHMS: u32 = 0x80_0000;
/// Security Feature bit 1: Username anonymity (USERHASH).
const FEATURE_USERNAME_ANONYMITY: u32 = 0x40_0000;

/// The password algorithm a session authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAlgorithmKind {
    /// MD5 (the RFC 5389 key, MESSAGE-INTEGRITY with HMAC-SHA1): every server has it.
    Md5,
    /// SHA-256 (RFC 8489 §18.5.1.2, MESSAGE-INTEGRITY-SHA256), used when the server offers
    /// it in PASSWORD-ALGORITHMS.
    Sha256,
}

/// The long-term key, by algorithm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Md5(_) => f.write_str("Key::Md5(<redacted>)"),
            Key::Sha256(_) => f.write_str("Key::Sha256(<redacted>)"),
        }
    }
}

/// The 24-bit Security Feature set of a nonce that starts with the cookie.
fn security_features(nonce: &str) -> Option<u32> {
    let chars = nonce.strip_prefix(NONCE_COOKIE)?.as_bytes().get(..4)?;
    let mut bits = 0u32;
    for &c in chars {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
    }
    Some(bits)
}

/// What the client knows of the server's challenge, and the key.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    credentials: Credentials,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<Key>,
    /// PASSWORD-ALGORITHMS as the server sent it (echoed in every request).
    algorithms: Option<Vec<u8>>,
    /// USERHASH, when the nonce offers username anonymity and the caller allows it.
    userhash: Option<[u8; 32]>,
    /// Whether USERHASH may replace USERNAME when offered.
    pub(crate) allow_userhash: bool,
    /// Whether the SHA-256 password algorithm is taken when offered (else MD5, still
    /// echoing the server's PASSWORD-ALGORITHMS).
    pub(crate) allow_sha256: bool,
}

impl Auth {
    pub(crate) fn new(credentials: Credentials) -> Auth {
        Auth {
            realm: credentials.realm.clone(),
            credentials,
            nonce: None,
            key: None,
            algorithms: None,
            userhash: None,
            allow_userhash: true,
            allow_sha256: true,
        }
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub(crate) fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    pub(crate) fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// True once requests can be authenticated.
    pub(crate) fn ready(&self) -> bool {
        self.key.is_some() && self.nonce.is_some()
    }

    /// The algorithm in use, once a challenge was learned.
    pub(crate) fn algorithm(&self) -> Option<PasswordAlgorithmKind> {
        match self.key? {
            Key::Md5(_) => Some(PasswordAlgorithmKind::Md5),
            Key::Sha256(_) => Some(PasswordAlgorithmKind::Sha256),
        }
    }

    /// The MD5 long-term key, when that is the algorithm in use.
    pub(crate) fn md5_key(&self) -> Option<[u8; 16]> {
        match self.key? {
            Key::Md5(k) => Some(k),
            Key::Sha256(_) => None,
        }
    }

    /// True when requests carry USERHASH instead of USERNAME.
    pub(crate) fn uses_userhash(&self) -> bool {
        self.userhash.is_some()
    }

    /// Forgets the nonce (a new server, after 300 Try Alternate): the next request goes
    /// without credentials and is challenged again.
    pub(crate) fn forget_nonce(&mut self) {
        self.nonce = None;
        self.key = None;
        self.algorithms = None;
        self.userhash = None;
        self.realm = self.credentials.realm.clone();
    }

    /// Learns REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 and derives the key.
    pub(crate) fn learn(&mut self, m: &Message<'_>, code: u16) -> Result<(), Error> {
        let text = |t: u16| match m.get_decoded(t)? {
            Ok(Attribute::Realm(s)) | Ok(Attribute::Nonce(s)) => Some(s),
            _ => None,
        };
        let nonce = text(attr_type::NONCE).ok_or(Error::NoChallenge {
            code,
            missing: "NONCE",
        })?;
        let realm = match (&self.credentials.realm, text(attr_type::REALM)) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => r.to_string(),
            (None, None) => {
                return Err(Error::NoChallenge {
                    code,
                    missing: "REALM",
                });
            }
        };
        let features = security_features(nonce).unwrap_or(0);
        let offered = match m.get_decoded(attr_type::PASSWORD_ALGORITHMS) {
            Some(Ok(Attribute::PasswordAlgorithms(list))) => Some(list),
            _ => None,
        };
        // RFC 8489 §9.2.4: a nonce announcing password algorithms without the list is a
        // downgrade (an on-path attacker stripped it); so is a list that changed.
        if features & FEATURE_PASSWORD_ALGORITHMS != 0 && offered.is_none() {
            return Err(Error::Downgrade);
        }
        if let (Some(known), Some(list)) = (&self.algorithms, offered)
            && known.as_slice() != list.as_bytes()
            && code == 438
        {
            return Err(Error::Downgrade);
        }
        let sha256 = self.allow_sha256
            && offered.is_some_and(|l: PasswordAlgorithms<'_>| {
                l.iter().any(|a| a.algorithm == PasswordAlgorithm::SHA256)
            });
        let username = &self.credentials.username;
        let password = &self.credentials.password;
        let key = if sha256 {
            Key::Sha256(
                ternd_proto::auth::long_term_key_sha256(username, &realm, password)
                    .map_err(Error::Credentials)?,
            )
        } else {
            Key::Md5(
                ternd_proto::auth::long_term_key_md5(username, &realm, password)
                    .map_err(Error::Credentials)?,
            )
        };
        self.userhash = if self.allow_userhash && features & FEATURE_USERNAME_ANONYMITY != 0 {
            Some(ternd_proto::auth::userhash(username, &realm).map_err(Error::Credentials)?)
        } else {
            None
        };
        self.algorithms = offered.map(|l| l.as_bytes().to_vec());
        self.key = Some(key);
        self.realm = Some(realm);
        self.nonce = Some(nonce.to_string());
        Ok(())
    }

    /// Adds USERNAME (or USERHASH), REALM, NONCE, PASSWORD-ALGORITHMS and
    /// PASSWORD-ALGORITHM, then MESSAGE-INTEGRITY(-SHA256); returns false (adding nothing)
    /// before a challenge was learned.
    pub(crate) fn sign(&self, b: &mut MessageBuilder<'_>) -> Result<bool, BuildError> {
        let (Some(realm), Some(nonce), Some(key)) = (&self.realm, &self.nonce, &self.key) else {
            return Ok(false);
        };
        match &self.userhash {
            Some(h) => b.add(&Attribute::UserHash(h))?,
            None => b.add(&Attribute::Username(&self.credentials.username))?,
        }
        b.add(&Attribute::Realm(realm))?;
        b.add(&Attribute::Nonce(nonce))?;
        if let Some(list) = &self.algorithms {
            b.add_raw(attr_type::PASSWORD_ALGORITHMS, list)?;
            let chosen = match key {
                Key::Md5(_) => PasswordAlgorithm::MD5,
                Key::Sha256(_) => PasswordAlgorithm::SHA256,
            };
            b.add(&Attribute::PasswordAlgorithm(PasswordAlgorithm {
                algorithm: chosen,
                params: &[],
            }))?;
        }
        match key {
            Key::Md5(k) => b.add_message_integrity(k)?,
            Key::Sha256(k) => b.add_message_integrity_sha256(k)?,
        }
        Ok(true)
    }

    /// True if `m` carries a MESSAGE-INTEGRITY(-SHA256) that verifies with the key.
    pub(crate) fn verifies(&self, m: &Message<'_>) -> bool {
        match &self.key {
            Some(Key::Md5(k)) => m.verify_integrity(k).is_ok(),
            Some(Key::Sha256(k)) => {
                m.verify_integrity_sha256(k).is_ok()
                    || (!m.has_integrity_sha256() && m.verify_integrity(k).is_ok())
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_bits_of_a_nonce() {
        assert_eq!(security_features("obMatJos2gAAAxyz"), Some(0x80_0000));
        assert_eq!(security_features("obMatJos2wAAA"), Some(0xC0_0000));
        assert_eq!(security_features("obMatJos2AAAA"), Some(0));
        assert_eq!(security_features("obMatJos2gA"), None);
        assert_eq!(security_features("obMatJos2g*AA"), None);
        assert_eq!(security_features("plainnonce"), None);
        assert_eq!(security_features(""), None);
    }
}

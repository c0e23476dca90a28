//! Stateless NONCEs (RFC 8489 §9.2).
//!
//! The server keeps no per-client state before a request authenticates: a nonce carries its
//! own issue time and a MAC under a per-process key over that time and the client's
//! transport address, so checking one needs only the key and the clock.
//!
//! Format (45 ASCII characters, all in the URL-safe base64 alphabet after the cookie, so
//! valid `qdtext` with no quotes or backslashes):
//!
//! ```text
//! obMatJos2 gAAA <32 chars: base64url-nopad( timestamp: u64 BE (8 bytes) | MAC (16 bytes) )>
//! ```
//!
//! - `obMatJos2` is RFC 8489's nonce cookie;
//! - `gAAA` is the base64 of the 24-bit STUN Security Feature set `0x800000`: bit 0 (the
//!   most significant bit) "Password algorithms" set, bit 1 "Username anonymity" clear;
//! - MAC = the first 16 bytes of HMAC-SHA256(key, domain label | cookie and feature set |
//!   timestamp | client IP (IPv4-mapped IPv6 folded to IPv4) | client port).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq as _;

use crate::stun::hmac_sha256;

/// RFC 8489's nonce cookie: a nonce starting with it announces a Security Feature set.
pub const NONCE_COOKIE: &str = "obMatJos2";

/// The 24-bit Security Feature set this server announces: only "Password algorithms".
const FEATURES: [u8; 3] = [0x80, 0x00, 0x00];
/// Bit 0 of the Security Feature set (the most significant): Password algorithms.
const PASSWORD_ALGORITHMS_BIT: u8 = 0x80;
/// Bytes of the truncated HMAC-SHA256.
const MAC_LEN: usize = 16;
/// Bytes of the binary tail: timestamp then MAC.
const TAIL_LEN: usize = 8 + MAC_LEN;
/// Characters of the base64url tail (`TAIL_LEN` is a multiple of 3: no padding, no slack bits).
const TAIL_CHARS: usize = TAIL_LEN / 3 * 4;
/// Cookie plus the four feature-set characters.
const PREFIX_LEN: usize = NONCE_COOKIE.len() + 4;
/// Length of every nonce this module makes.
pub const NONCE_LEN: usize = PREFIX_LEN + TAIL_CHARS;
/// How far in the future a nonce's timestamp may lie (clock steps between workers).
pub const FUTURE_TOLERANCE_SECS: u64 = 5;
/// Domain separation for the MAC.
const LABEL: &[u8] = b"ternd nonce v1\0";

/// The per-process secret key nonces are made and checked with.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl NonceKey {
    /// A key with the given bytes: 32 bytes from the OS random number generator (the server
    /// draws them at start), or a key shared between processes, or a fixed one in tests.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The key's bytes (to share it with the other nodes of a cluster).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// A nonce, held on the stack. Always ASCII.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    buf: [u8; 64],
    len: u8,
}

impl Nonce {
    /// The nonce text (the NONCE attribute value).
    pub fn as_str(&self) -> &str {
        // Only ever filled with ASCII by `make_nonce`.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The nonce bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({:?})", self.as_str())
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn mac(key: &NonceKey, prefix: &[u8], ts: u64, client: SocketAddr) -> [u8; MAC_LEN] {
    let mut addr = [0u8; 1 + 16 + 2];
    let n = match client.ip().to_canonical() {
        IpAddr::V4(v4) => {
            addr[0] = 4;
            addr[1..5].copy_from_slice(&v4.octets());
            5
        }
        IpAddr::V6(v6) => {
            addr[0] = 6;
            addr[1..17].copy_from_slice(&v6.octets());
            17
        }
    };
    addr[n..n + 2].copy_from_slice(&client.port().to_be_bytes());
    let full = hmac_sha256(&key.0, &[LABEL, prefix, &ts.to_be_bytes(), &addr[..n + 2]]);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// A nonce for `client` issued at `now_unix` (see the module documentation for the format).
pub fn make_nonce(key: &NonceKey, client: SocketAddr, now_unix: u64) -> Nonce {
    let mut buf = [0u8; 64];
    buf[..NONCE_COOKIE.len()].copy_from_slice(NONCE_COOKIE.as_bytes());
    // 3 bytes encode to exactly 4 characters.
    let _ = STANDARD_NO_PAD.encode_slice(FEATURES, &mut buf[NONCE_COOKIE.len()..PREFIX_LEN]);
    let mut tail = [0u8; TAIL_LEN];
    tail[..8].copy_from_slice(&now_unix.to_be_bytes());
    tail[8..].copy_from_slice(&mac(key, &buf[..PREFIX_LEN], now_unix, client));
    // TAIL_LEN bytes encode to exactly TAIL_CHARS characters.
    let _ = URL_SAFE_NO_PAD.encode_slice(tail, &mut buf[PREFIX_LEN..NONCE_LEN]);
    Nonce {
        buf,
        len: NONCE_LEN as u8,
    }
}

/// The outcome of [`check_nonce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Made by this key for this client, and not too old: accept.
    Valid,
    /// Made by this key for this client, but too old: answer 438 Stale Nonce with a new one.
    Stale,
    /// Malformed, forged, for another client or from too far in the future.
    Invalid,
}

/// Checks a nonce received from `client` at `now_unix`: [`NonceCheck::Valid`] if its MAC
/// matches (compared in constant time) and it was issued less than `lifetime_secs` ago (and
/// at most [`FUTURE_TOLERANCE_SECS`] ahead of `now_unix`), [`NonceCheck::Stale`] if the MAC
/// matches but it is older, [`NonceCheck::Invalid`] otherwise.
pub fn check_nonce(
    key: &NonceKey,
    nonce: &str,
    client: SocketAddr,
    now_unix: u64,
    lifetime_secs: u64,
) -> NonceCheck {
    let b = nonce.as_bytes();
    if b.len() != NONCE_LEN || !b.starts_with(NONCE_COOKIE.as_bytes()) {
        return NonceCheck::Invalid;
    }
    let (prefix, tail_text) = b.split_at(PREFIX_LEN);
    let mut tail = [0u8; TAIL_LEN];
    match URL_SAFE_NO_PAD.decode_slice(tail_text, &mut tail) {
        Ok(TAIL_LEN) => {}
        _ => return NonceCheck::Invalid,
    }
    let mut ts_bytes = [0u8; 8];
    ts_bytes.copy_from_slice(&tail[..8]);
    let ts = u64::from_be_bytes(ts_bytes);
    let expected = mac(key, prefix, ts, client);
    if !bool::from(expected.ct_eq(&tail[8..])) {
        return NonceCheck::Invalid;
    }
    if ts > now_unix.saturating_add(FUTURE_TOLERANCE_SECS) {
        return NonceCheck::Invalid;
    }
    if now_unix.saturating_sub(ts) < lifetime_secs {
        NonceCheck::Valid
    } else {
        NonceCheck::Stale
    }
}

/// True when `nonce` starts with [`NONCE_COOKIE`] followed by a Security Feature set with
/// the "Password algorithms" bit set (RFC 8489 §9.2: the server then supports
/// PASSWORD-ALGORITHMS, and a client must detect a downgrade if the attribute is missing).
pub fn has_password_algorithms_bit(nonce: &str) -> bool {
    let Some(rest) = nonce.strip_prefix(NONCE_COOKIE) else {
        return false;
    };
    let Some(chars) = rest.as_bytes().get(..4) else {
        return false;
    };
    let mut features = [0u8; 3];
    let decoded = STANDARD_NO_PAD
        .decode_slice(chars, &mut features)
        .or_else(|_| URL_SAFE_NO_PAD.decode_slice(chars, &mut features));
    matches!(decoded, Ok(3)) && features[0] & PASSWORD_ALGORITHMS_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: u64 = 600;
    const NOW: u64 = 1_700_000_000;

    fn key() -> NonceKey {
        NonceKey::from_bytes([7; 32])
    }

    fn client() -> SocketAddr {
        "192.0.2.10:50000".parse().unwrap()
    }

    #[test]
    fn format() {
        let n = make_nonce(&key(), client(), NOW);
        let s = n.as_str();
        assert_eq!(s.len(), NONCE_LEN);
        assert_eq!(NONCE_LEN, 45);
        assert!(s.starts_with("obMatJos2gAAA"), "{s}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{s}"
        );
        assert_eq!(n.to_string(), s);
        assert_eq!(n, make_nonce(&key(), client(), NOW));
        assert_ne!(n, make_nonce(&key(), client(), NOW + 1));
        assert_ne!(n, make_nonce(&NonceKey::from_bytes([8; 32]), client(), NOW));

        assert_eq!(format!("{:?}", key()), "NonceKey(<redacted>)");
    }

    #[test]
    fn round_trip_and_staleness() {
        let n = make_nonce(&key(), client(), NOW);
        let check = |now| check_nonce(&key(), n.as_str(), client(), now, LIFE);
        assert_eq!(check(NOW), NonceCheck::Valid);
        assert_eq!(check(NOW + LIFE - 1), NonceCheck::Valid);
        assert_eq!(check(NOW + LIFE), NonceCheck::Stale);
        assert_eq!(check(NOW + 100 * LIFE), NonceCheck::Stale);
        // Issued slightly in the future (another worker's clock): tolerated.
        assert_eq!(check(NOW - FUTURE_TOLERANCE_SECS), NonceCheck::Valid);
        // Too far in the future.
        assert_eq!(check(NOW - FUTURE_TOLERANCE_SECS - 1), NonceCheck::Invalid);
        assert_eq!(check(0), NonceCheck::Invalid);
        // A timestamp near u64::MAX must not overflow anything.
        let far = make_nonce(&key(), client(), u64::MAX);
        assert_eq!(
            check_nonce(&key(), far.as_str(), client(), NOW, LIFE),
            NonceCheck::Invalid
        );
        assert_eq!(
            check_nonce(&key(), far.as_str(), client(), u64::MAX, LIFE),
            NonceCheck::Valid
        );
    }

    #[test]
    fn bound_to_client_and_key() {
        let n = make_nonce(&key(), client(), NOW);
        let check = |c: &str| check_nonce(&key(), n.as_str(), c.parse().unwrap(), NOW, LIFE);
        assert_eq!(check("192.0.2.10:50001"), NonceCheck::Invalid);
        assert_eq!(check("192.0.2.11:50000"), NonceCheck::Invalid);
        assert_eq!(check("[2001:db8::1]:50000"), NonceCheck::Invalid);
        // The same client seen through a dual-stack socket.
        assert_eq!(check("[::ffff:192.0.2.10]:50000"), NonceCheck::Valid);
        assert_eq!(
            check_nonce(
                &NonceKey::from_bytes([8; 32]),
                n.as_str(),
                client(),
                NOW,
                LIFE
            ),
            NonceCheck::Invalid
        );
        let v6: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        let n6 = make_nonce(&key(), v6, NOW);
        assert_eq!(
            check_nonce(&key(), n6.as_str(), v6, NOW, LIFE),
            NonceCheck::Valid
        );
    }

    #[test]
    fn tampering_is_invalid() {
        let n = make_nonce(&key(), client(), NOW);
        let s = n.as_str();
        let check = |t: &str| check_nonce(&key(), t, client(), NOW, LIFE);
        // Every single-character substitution, including in the cookie and feature set.
        for i in 0..s.len() {
            for c in ['A', 'z', '0', '-', '_', '"', '\\'] {
                if s.as_bytes()[i] == c as u8 {
                    continue;
                }
                let mut t = s.as_bytes().to_vec();
                t[i] = c as u8;
                let t = String::from_utf8(t).unwrap();
                assert_eq!(check(&t), NonceCheck::Invalid, "{t}");
            }
        }
        assert_eq!(check(&s[..s.len() - 1]), NonceCheck::Invalid);
        assert_eq!(check(&s[..PREFIX_LEN]), NonceCheck::Invalid);
        assert_eq!(check(&format!("{s}A")), NonceCheck::Invalid);
        assert_eq!(check(""), NonceCheck::Invalid);
        assert_eq!(check("f//499k954d6OL34oL9FSTvy64sA"), NonceCheck::Invalid);
        let other = format!("xxxxxxxxx{}", &s[NONCE_COOKIE.len()..]);
        assert_eq!(check(&other), NonceCheck::Invalid);
        // Multi-byte characters at the boundaries must not panic.
        assert_eq!(check(&"é".repeat(NONCE_LEN)), NonceCheck::Invalid);
        let mut t = s[..NONCE_LEN - 2].to_string();
        t.push('é');
        assert_eq!(check(&t), NonceCheck::Invalid);
    }

    #[test]
    fn password_algorithms_bit() {
        let n = make_nonce(&key(), client(), NOW);
        assert!(has_password_algorithms_bit(n.as_str()));
        assert!(has_password_algorithms_bit("obMatJos2gAAA"));
        // Both bits set.
        assert!(has_password_algorithms_bit("obMatJos2wAAAxyz"));
        // Username anonymity only.
        assert!(!has_password_algorithms_bit("obMatJos2QAAAxyz"));
        // RFC 8489 Appendix B.1's nonce (feature set 0x000002).
        assert!(!has_password_algorithms_bit(
            "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"
        ));
        assert!(!has_password_algorithms_bit("obMatJos2gAA"));
        assert!(!has_password_algorithms_bit("obMatJos2g\"AA"));
        assert!(!has_password_algorithms_bit("obMatJos2"));
        assert!(!has_password_algorithms_bit(""));
        assert!(!has_password_algorithms_bit("gAAAgAAAgAAA"));
        assert!(!has_password_algorithms_bit("obMatJos3gAAA"));
    }
}

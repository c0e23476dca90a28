//! The long-term credential check of RFC 8489 §9.2.4, in the order the RFC gives.
//!
//! Nothing here stores anything: the nonce is stateless and a failed check leaves no trace.

use std::net::SocketAddr;

use crate::auth::nonce::{self, NonceCheck};
use crate::auth::store::{CredentialStore, Key, LookupError, PasswordAlgorithm};
use crate::stun::{Attribute, Message, PasswordAlgorithm as WireAlgorithm, attr_type};

use super::allocation::Allocation;
use super::refusal::Refusal;
use super::shared::Shared;

/// A request that passed the check.
#[derive(Debug, Clone)]
pub(super) struct Authenticated {
    /// The USERNAME (or the static user a USERHASH named).
    pub username: String,
    /// The quota key.
    pub user: String,
    /// The key that verified.
    pub key: Key,
    /// Its algorithm.
    pub algorithm: PasswordAlgorithm,
    /// REST credential expiry, UNIX seconds.
    pub expiry_unix: Option<u64>,
}

/// How a request failed the check: which error response to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthFailure {
    /// 400: attributes missing or inconsistent.
    BadRequest,
    /// 401: no MESSAGE-INTEGRITY (`None`: the challenge every client gets first), or an
    /// unknown user, a bad MESSAGE-INTEGRITY or an expired credential (the answer is the
    /// same 401 for all, so that it tells nobody who exists; the reason is for the log
    /// and the metrics).
    Unauthorized(Option<Refusal>),
    /// 438: the nonce is stale or not ours (with a fresh one).
    StaleNonce,
    /// 441: the credentials differ from those that created the allocation; the key that
    /// verified protects the answer.
    WrongCredentials(Key),
}

/// The PASSWORD-ALGORITHMS value the server offers: SHA-256 then MD5, or MD5 alone when no
/// credential source can derive SHA-256 keys (only static users stored as an MD5 `key`).
///
/// The same for every client and every username: the challenge goes out before anything
/// is authenticated, so an answer that varied with the USERNAME would tell who is
/// configured (and how). A user stored as an MD5 key who picks SHA-256 fails at the
/// integrity step instead, exactly as a wrong password does ([`authenticate`]).
pub(super) fn offered_algorithms(store: &CredentialStore) -> &'static [u8] {
    const SHA256_AND_MD5: [u8; 8] = [0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    const MD5_ONLY: [u8; 4] = [0x00, 0x01, 0x00, 0x00];
    if store.offers_sha256() {
        &SHA256_AND_MD5
    } else {
        &MD5_ONLY
    }
}

fn text<'a>(msg: &Message<'a>, typ: u16) -> Option<&'a str> {
    match msg.get_decoded(typ)? {
        Ok(Attribute::Username(s)) | Ok(Attribute::Realm(s)) | Ok(Attribute::Nonce(s)) => Some(s),
        _ => None,
    }
}

/// Runs the check for `msg` from `client` at `now_unix`. `existing` is the allocation of
/// this 5-tuple, if any (for a ConnectionBind, the allocation owning the connection): its
/// stored key is used when the username matches. A nonce made for `client`, or for
/// `also_nonce_of` (a ConnectionBind's control connection), is accepted.
pub(super) fn authenticate(
    shared: &Shared,
    msg: &Message<'_>,
    client: SocketAddr,
    now_unix: u64,
    existing: Option<&Allocation>,
    also_nonce_of: Option<SocketAddr>,
) -> Result<Authenticated, AuthFailure> {
    let has_sha256 = msg.has_integrity_sha256();
    if !msg.has_integrity() && !has_sha256 {
        return Err(AuthFailure::Unauthorized(None));
    }
    // The credential set of this request, even if SIGHUP replaces it meanwhile.
    let store = shared.store();
    let username_attr = text(msg, attr_type::USERNAME);
    let userhash = match msg.get_decoded(attr_type::USERHASH) {
        Some(Ok(Attribute::UserHash(h))) => Some(h),
        _ => None,
    };
    let (Some(_realm), Some(nonce_value)) =
        (text(msg, attr_type::REALM), text(msg, attr_type::NONCE))
    else {
        return Err(AuthFailure::BadRequest);
    };
    if username_attr.is_none() && userhash.is_none() {
        return Err(AuthFailure::BadRequest);
    }

    // Password algorithm negotiation (RFC 8489 §9.2.4, the nonce-cookie checks).
    let mut algorithm = PasswordAlgorithm::Md5;
    if nonce::has_password_algorithms_bit(nonce_value) {
        let list = msg.get(attr_type::PASSWORD_ALGORITHMS);
        let chosen = msg.get_decoded(attr_type::PASSWORD_ALGORITHM);
        match (list, chosen) {
            (None, None) => {}
            (Some(list), Some(Ok(Attribute::PasswordAlgorithm(a)))) => {
                if list.value != offered_algorithms(&store) {
                    return Err(AuthFailure::BadRequest);
                }
                let in_list =
                    crate::stun::PasswordAlgorithms::from_raw(list.value).is_some_and(|l| {
                        l.iter()
                            .any(|x| x.algorithm == a.algorithm && x.params == a.params)
                    });
                if !in_list {
                    return Err(AuthFailure::BadRequest);
                }
                algorithm = match a.algorithm {
                    WireAlgorithm::MD5 => PasswordAlgorithm::Md5,
                    WireAlgorithm::SHA256 => PasswordAlgorithm::Sha256,
                    _ => return Err(AuthFailure::BadRequest),
                };
            }
            _ => return Err(AuthFailure::BadRequest),
        }
    }

    let username: &str = match (username_attr, userhash) {
        (Some(u), _) => u,
        (None, Some(h)) => store
            .username_for_userhash(h)
            .ok_or(AuthFailure::Unauthorized(Some(Refusal::UnknownUser)))?,
        (None, None) => return Err(AuthFailure::BadRequest),
    };

    let verify = |key: &Key| {
        if has_sha256 {
            msg.verify_integrity_sha256(key.as_bytes()).is_ok()
        } else {
            msg.verify_integrity(key.as_bytes()).is_ok()
        }
    };

    let authed = match existing {
        Some(a) if a.username == username && a.algorithm == algorithm => {
            if !verify(&a.key) {
                return Err(AuthFailure::Unauthorized(Some(Refusal::WrongPassword)));
            }
            if let Some(exp) = a.credential_expires_unix()
                && exp < now_unix
            {
                return Err(AuthFailure::Unauthorized(Some(Refusal::Expired)));
            }
            Authenticated {
                username: a.username.clone(),
                user: a.user.clone(),
                key: a.key,
                algorithm,
                expiry_unix: a.credential_expires_unix(),
            }
        }
        _ => {
            // Unknown, expired, or no key for the algorithm (SHA-256 for a user stored as an
            // MD5 key): all are the 401 of a wrong password, so none tells who exists.
            let resolved =
                store
                    .resolve(username, algorithm, now_unix)
                    .map_err(|e: LookupError| {
                        AuthFailure::Unauthorized(Some(match e {
                            LookupError::Unknown => Refusal::UnknownUser,
                            LookupError::Expired => Refusal::Expired,
                            LookupError::AlgorithmUnavailable => Refusal::WrongPassword,
                        }))
                    })?;
            let key = *resolved
                .keys
                .iter()
                .find(|k| verify(k))
                .ok_or(AuthFailure::Unauthorized(Some(Refusal::WrongPassword)))?;
            if existing.is_some() {
                // Authentic, but not the credentials that created this allocation.
                return Err(AuthFailure::WrongCredentials(key));
            }
            Authenticated {
                username: username.to_string(),
                user: resolved.user,
                key,
                algorithm,
                expiry_unix: resolved.expiry_unix,
            }
        }
    };

    let valid_for = |c: SocketAddr| {
        nonce::check_nonce(
            &shared.nonce_key(),
            nonce_value,
            c,
            now_unix,
            shared.config.nonce_lifetime.as_secs(),
        ) == NonceCheck::Valid
    };
    if valid_for(client) || also_nonce_of.is_some_and(valid_for) {
        Ok(authed)
    } else {
        Err(AuthFailure::StaleNonce)
    }
}

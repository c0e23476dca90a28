//! Building answers: the success and error responses the request handlers write, their
//! protection (MESSAGE-INTEGRITY, FINGERPRINT), the 401/438 challenges, 420, and the
//! authentication step every TURN request goes through first.

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::authn::{self, AuthFailure};
use super::codes::{self, Code};
use super::refusal::Refusal;
use super::types::{DropReason, FiveTuple, Outcome};
use crate::auth::nonce;
use crate::auth::store::Key;
use crate::stun::{Attribute, Message, MessageBuilder, MessageType, attr_type};

/// Most attribute types listed in one UNKNOWN-ATTRIBUTES.
const MAX_UNKNOWN_REPORTED: usize = 16;

/// The error code of a response this core built (every error response starts with
/// ERROR-CODE), or 0 for a success.
pub(super) fn response_code(resp: &[u8]) -> u16 {
    let is_error = resp.len() >= 28 && resp[0] & 0x01 == 0x01 && resp[1] & 0x10 == 0x10;
    if is_error && resp[20..22] == attr_type::ERROR_CODE.to_be_bytes() {
        u16::from(resp[26] & 0x07) * 100 + u16::from(resp[27])
    } else {
        0
    }
}

/// A response in progress: the request it answers and how to protect it.
pub(super) struct Reply<'m, 'a> {
    /// The request.
    pub(super) msg: &'m Message<'a>,
    /// The key to protect the answer with (`None`: unauthenticated).
    pub(super) key: Option<Key>,
}

impl<'m, 'a> Reply<'m, 'a> {
    /// An answer without integrity.
    pub(super) fn bare(msg: &'m Message<'a>) -> Self {
        Self { msg, key: None }
    }
}

impl Server {
    /// Counts a dropped client packet and says so.
    pub(super) fn drop(&self, reason: DropReason) -> Outcome {
        match reason {
            DropReason::Malformed | DropReason::BadFingerprint | DropReason::Rfc3489Disabled => {
                self.stats.malformed.inc()
            }
            DropReason::NoPermission => self.stats.client_dropped_no_permission.inc(),
            _ => self.stats.dropped.inc(),
        }
        Outcome::Dropped(reason)
    }

    /// Authenticates a request for the allocation in slot `owner` (if any): its credentials
    /// must be that allocation's, and with `owner_nonce` the nonce of the allocation's own
    /// 5-tuple is good too (a ConnectionBind on a new connection). A failure is answered
    /// (401, 438, 400, 441), and so are unknown comprehension-required attributes (420);
    /// `Err` carries that answer, `Ok` what the request's handler needs.
    pub(super) fn authenticate_request<'m, 'a>(
        &mut self,
        msg: &'m Message<'a>,
        tuple: FiveTuple,
        now: Instant,
        owner: Option<u32>,
        owner_nonce: bool,
        out: &mut [u8],
    ) -> Result<(authn::Authenticated, Reply<'m, 'a>), Option<usize>> {
        let existing = owner.and_then(|i| self.slots.get(i as usize)?.as_ref());
        let also_nonce_of = existing.filter(|_| owner_nonce).map(|a| a.tuple.client);
        let now_unix = self.shared.config.unix_at(now);
        let auth = match authn::authenticate(
            &self.shared,
            msg,
            tuple.client,
            now_unix,
            existing,
            also_nonce_of,
        ) {
            Ok(a) => a,
            Err(f) => return Err(self.auth_failed(msg, f, tuple, now, out)),
        };
        self.stats.auth_ok.inc();
        let reply = Reply {
            msg,
            key: Some(auth.key),
        };
        if let Some(len) = self.reject_unknown(&reply, out) {
            return Err(len);
        }
        Ok((auth, reply))
    }

    /// 420 for unknown comprehension-required attributes: `Some(answer)` when it applies.
    /// Outside Binding, RFC 5780's request attributes count as unknown.
    fn reject_unknown(&mut self, reply: &Reply<'_, '_>, out: &mut [u8]) -> Option<Option<usize>> {
        let known = |t: u16| attr_type::is_known(t) && !attr_type::is_rfc5780_request(t);
        self.reject_unknown_by(reply, known, out)
    }

    /// 420 for the comprehension-required attributes `known` does not accept.
    pub(super) fn reject_unknown_by(
        &mut self,
        reply: &Reply<'_, '_>,
        known: impl Fn(u16) -> bool,
        out: &mut [u8],
    ) -> Option<Option<usize>> {
        let mut unknown = [0u16; MAX_UNKNOWN_REPORTED];
        let n = reply
            .msg
            .unknown_comprehension_required(known, &mut unknown);
        if n == 0 {
            return None;
        }
        self.stats.unknown_attribute_errors.inc();
        self.stats.error_responses.inc();
        Some(self.unknown_attributes_error(reply, &unknown[..n], out))
    }

    fn unknown_attributes_error(
        &self,
        reply: &Reply<'_, '_>,
        unknown: &[u16],
        out: &mut [u8],
    ) -> Option<usize> {
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(codes::UNKNOWN_ATTRIBUTE))
            .ok()?;
        b.add_unknown_attributes(unknown).ok()?;
        self.finish(reply, b)
    }

    pub(super) fn start<'b>(
        &self,
        msg: &Message<'_>,
        typ: MessageType,
        out: &'b mut [u8],
    ) -> Option<MessageBuilder<'b>> {
        MessageBuilder::with_cookie(out, typ, msg.cookie(), msg.transaction_id()).ok()
    }

    /// Adds SOFTWARE, then MESSAGE-INTEGRITY(-SHA256) when the request authenticated, then
    /// FINGERPRINT when the request had one.
    pub(super) fn finish(&self, reply: &Reply<'_, '_>, mut b: MessageBuilder<'_>) -> Option<usize> {
        if let Some(s) = &self.shared.config.software {
            b.add(&Attribute::Software(s)).ok()?;
        }
        if let Some(key) = &reply.key {
            if reply.msg.has_integrity_sha256() {
                b.add_message_integrity_sha256(key.as_bytes()).ok()?;
            } else {
                b.add_message_integrity(key.as_bytes()).ok()?;
            }
        }
        if reply.msg.has_fingerprint() && !reply.msg.is_rfc3489() {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    pub(super) fn error(
        &mut self,
        reply: &Reply<'_, '_>,
        code: Code,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.error_responses.inc();
        if let Some(why) = self.why.take() {
            let (client, now) = self.ctx;
            self.explain_refusal(why, reply.msg, client, code.code, now);
        }
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(code)).ok()?;
        self.finish(reply, b)
    }

    /// 300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10), protected like the request.
    pub(super) fn try_alternate(
        &mut self,
        reply: &Reply<'_, '_>,
        alt: SocketAddr,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.error_responses.inc();
        let mut b = self.start(reply.msg, reply.msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(codes::TRY_ALTERNATE)).ok()?;
        b.add(&Attribute::AlternateServer(alt)).ok()?;
        self.finish(reply, b)
    }

    /// 401 or 438 (`code`): ERROR-CODE, REALM, a fresh NONCE and PASSWORD-ALGORITHMS; no
    /// integrity.
    pub(super) fn challenge(
        &mut self,
        msg: &Message<'_>,
        code: Code,
        client: SocketAddr,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        // A request without integrity was charged on arrival; one with integrity that
        // still ends here (bad key, stale nonce) is charged now.
        if (msg.has_integrity() || msg.has_integrity_sha256())
            && !self.unauth.admit(client.ip(), now)
        {
            self.suppressed = true;
            return Some(0);
        }
        self.stats.error_responses.inc();
        self.stats.auth_challenges.inc();
        let nonce = nonce::make_nonce(
            &self.shared.nonce_key(),
            client,
            self.shared.config.unix_at(now),
        );
        // One credential set for REALM and PASSWORD-ALGORITHMS, even if SIGHUP replaces it.
        let store = self.shared.store();
        let mut b = self.start(msg, msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(code)).ok()?;
        b.add(&Attribute::Realm(store.realm())).ok()?;
        b.add(&Attribute::Nonce(nonce.as_str())).ok()?;
        b.add_raw(
            attr_type::PASSWORD_ALGORITHMS,
            authn::offered_algorithms(&store),
        )
        .ok()?;
        // No SOFTWARE here: an answer to an unauthenticated request is kept as small as
        // the protocol allows (amplification), and tells nothing about the server.
        if msg.has_fingerprint() {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    /// The error response for a failed credential check.
    fn auth_failed(
        &mut self,
        msg: &Message<'_>,
        f: AuthFailure,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.auth_failures.inc();
        match f {
            AuthFailure::Unauthorized(why) => {
                self.stats.auth_unauthorized.inc();
                match why {
                    None => self.stats.auth_no_integrity.inc(),
                    Some(Refusal::UnknownUser) => self.stats.auth_unknown_user.inc(),
                    Some(Refusal::Expired) => self.stats.auth_expired.inc(),
                    Some(_) => self.stats.auth_wrong_password.inc(),
                }
                if let Some(why) = why {
                    self.explain_refusal(why, msg, tuple.client, 401, now);
                }
                self.challenge(msg, codes::UNAUTHORIZED, tuple.client, now, out)
            }
            AuthFailure::StaleNonce => {
                self.stats.auth_stale_nonce.inc();
                self.explain_refusal(Refusal::StaleNonce, msg, tuple.client, 438, now);
                self.challenge(msg, codes::STALE_NONCE, tuple.client, now, out)
            }
            AuthFailure::BadRequest => {
                self.stats.auth_bad_request.inc();
                self.error(&Reply::bare(msg), codes::BAD_REQUEST, out)
            }
            AuthFailure::WrongCredentials(key) => {
                self.stats.auth_wrong_credentials.inc();
                // Authentic with other credentials: protect the answer with them.
                self.error(
                    &Reply {
                        msg,
                        key: Some(key),
                    },
                    codes::WRONG_CREDENTIALS,
                    out,
                )
            }
        }
    }
}

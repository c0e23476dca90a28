//! The entry point for client packets: ChannelData goes to the channel handler, STUN
//! messages are parsed, checked (FINGERPRINT, RFC 3489, the unauthenticated rate limit)
//! and routed to the handler of their method; responses are counted by method and code.

use std::time::Instant;

use super::Server;
use super::codes;
use super::relays::Relays;
use super::respond::{Reply, response_code};
use super::stats;
use super::types::{DropReason, FiveTuple, Outcome};
use crate::stun::channel::{self, PacketKind};
use crate::stun::{Class, Message, Method, ParseOptions};

impl Server {
    /// Handles one packet (a datagram, or one frame from a stream) from a client.
    pub fn handle_client(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Outcome {
        match channel::classify(packet, self.shared.config.channel_range) {
            PacketKind::ChannelData => self.channel_data(packet, tuple, now),
            PacketKind::Stun => self.handle_stun(packet, tuple, now, out, relays),
            PacketKind::Other => self.drop(DropReason::Malformed),
        }
    }

    /// Parses a STUN message from a client and hands it to its handler.
    fn handle_stun(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Outcome {
        let opts = ParseOptions {
            allow_rfc3489: true,
            ..ParseOptions::default()
        };
        let Ok(msg) = Message::parse_with(packet, opts) else {
            return self.drop(DropReason::Malformed);
        };
        if msg.is_rfc3489() && !self.shared.config.stun_backward_compatibility {
            return self.drop(DropReason::Rfc3489Disabled);
        }
        if msg.has_fingerprint() && msg.verify_fingerprint().is_err() {
            return self.drop(DropReason::BadFingerprint);
        }
        let typ = msg.message_type();
        match typ.class {
            Class::Success | Class::Error => self.drop(DropReason::UnexpectedResponse),
            Class::Indication => {
                self.stats.indications.inc();
                match typ.method {
                    // Binding indications are keepalives (RFC 8489 §6.3.2).
                    Method::BINDING => Outcome::Consumed,
                    Method::SEND if !msg.is_rfc3489() => {
                        self.send_indication(&msg, packet, tuple, now)
                    }
                    _ => self.drop(DropReason::UnhandledIndication),
                }
            }
            Class::Request => {
                self.stats.requests.inc();
                self.ctx = (tuple.client, now);
                self.why.set(None);
                // Unauthenticated requests other than Binding can only be answered with an
                // error (401, 400, ...): each takes from its source's budget, and over it
                // is dropped unanswered. (Requests with integrity are charged only if they
                // end in 401/438: see `challenge`.)
                if typ.method != Method::BINDING
                    && !(msg.has_integrity() || msg.has_integrity_sha256())
                    && !self.unauth.admit(tuple.client.ip(), now)
                {
                    self.stats.unauth_rate_limited.inc();
                    return Outcome::Dropped(DropReason::UnauthRateLimited);
                }
                let result = if typ.method == Method::BINDING {
                    self.binding(&msg, tuple, out)
                } else if msg.is_rfc3489() {
                    self.error(&Reply::bare(&msg), codes::BAD_REQUEST, out)
                } else {
                    self.turn_request(&msg, tuple, now, out, relays)
                };
                if std::mem::take(&mut self.suppressed) {
                    self.stats.unauth_rate_limited.inc();
                    return Outcome::Dropped(DropReason::UnauthRateLimited);
                }
                match result {
                    // Answered later (Connect) or elsewhere (a hand-off).
                    Some(0) => Outcome::Consumed,
                    Some(len) => {
                        let code = response_code(&out[..len]);
                        self.stats.responses[stats::method_index(typ.method)]
                            [stats::code_index(code)]
                        .inc();
                        match self.redirect.take() {
                            Some((from, to)) => Outcome::ReplyVia { len, from, to },
                            None => Outcome::Reply { len },
                        }
                    }
                    None => self.drop(DropReason::OutputTooSmall),
                }
            }
        }
    }

    /// Routes a TURN request: authenticates it (against the 5-tuple's allocation, if any),
    /// then hands it to its method's handler.
    fn turn_request(
        &mut self,
        msg: &Message<'_>,
        tuple: FiveTuple,
        now: Instant,
        out: &mut [u8],
        relays: &mut dyn Relays,
    ) -> Option<usize> {
        let method = msg.message_type().method;
        if !matches!(
            method,
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
        ) {
            return self.error(&Reply::bare(msg), codes::BAD_REQUEST, out);
        }
        if method == Method::CONNECTION_BIND {
            return self.connection_bind(msg, tuple, now, out);
        }
        if self.tcp.by_data.contains_key(&tuple) {
            // A client data connection carries no more STUN.
            return self.error(&Reply::bare(msg), codes::BAD_REQUEST, out);
        }
        let existing_idx = self.by_tuple.get(&tuple).copied();
        // A retransmitted Allocate gets the original success response again (§7.2).
        if method == Method::ALLOCATE
            && let Some(a) = existing_idx.and_then(|i| self.slots.get(i as usize)?.as_ref())
            && a.allocate_response.0 == msg.transaction_id()
            && msg.has_integrity() | msg.has_integrity_sha256()
        {
            let (_, bytes) = &a.allocate_response;
            let dst = out.get_mut(..bytes.len())?;
            dst.copy_from_slice(bytes);
            return Some(bytes.len());
        }
        let (auth, reply) =
            match self.authenticate_request(msg, tuple, now, existing_idx, false, out) {
                Ok(ok) => ok,
                Err(answer) => return answer,
            };
        match method {
            Method::ALLOCATE => self.allocate(&reply, auth, existing_idx, tuple, now, out, relays),
            _ => {
                let Some(idx) = existing_idx else {
                    return self.error(&reply, codes::ALLOCATION_MISMATCH, out);
                };
                match method {
                    Method::REFRESH => self.refresh(&reply, idx, now, out, relays),
                    Method::CREATE_PERMISSION => self.create_permission(&reply, idx, now, out),
                    Method::CONNECT => self.connect(&reply, idx, tuple, now, out, relays),
                    _ => self.channel_bind(&reply, idx, now, out),
                }
            }
        }
    }
}

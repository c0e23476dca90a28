//! The sans-IO server core: it takes a packet, the 5-tuple it arrived on and `now`, and
//! writes what to send back into a caller's buffer. It never opens a socket or reads a clock.
//!
//! # How to drive it
//!
//! For every packet a listener receives, call [`Server::handle_client`] with the bytes, the
//! [`FiveTuple`] and the current time, and a buffer for the answer. Act on the returned
//! [`Outcome`]: send `out[..len]` back on the same 5-tuple for [`Outcome::Reply`], do nothing
//! otherwise. Counters live in [`Stats`], one per worker, summed when read.
//!
//! This build answers STUN Binding (RFC 8489, RFC 5389 and, when enabled, RFC 3489
//! clients). TURN methods get 400 until the TURN core lands.

mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use stats::{Stats, StatsSnapshot};

use crate::stun::channel::{self, ChannelRange, PacketKind};
use crate::stun::{
    Attribute, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, ParseOptions,
    TransactionId, attr_type,
};

/// The transport a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// A client's 5-tuple: its address, the server address it reached, and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The client's address as seen by the server (its server-reflexive address).
    pub client: SocketAddr,
    /// The local address the packet arrived on.
    pub server: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

/// Settings of the core, derived from [`crate::config::Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// SOFTWARE attribute to send; `None` sends none.
    pub software: Option<String>,
    /// Answer RFC 3489 clients (no magic cookie).
    pub stun_backward_compatibility: bool,
    /// Valid channel numbers.
    pub channel_range: ChannelRange,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            software: None,
            stun_backward_compatibility: false,
            channel_range: ChannelRange::RFC8656,
        }
    }
}

impl CoreConfig {
    /// The core settings a validated configuration asks for.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            software: c.software.clone(),
            stun_backward_compatibility: c.stun_backward_compatibility,
            channel_range: ChannelRange::new(c.relay.rfc5766_channel_numbers),
        }
    }
}

/// What to do after [`Server::handle_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Send `out[..len]` back to the client on the same 5-tuple.
    Reply {
        /// Length of the answer in the output buffer.
        len: usize,
    },
    /// Nothing to send: the packet was consumed (an indication, say).
    Consumed,
    /// Nothing to send: the packet was dropped, for this reason (already counted).
    Dropped(DropReason),
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed STUN message or ChannelData frame.
    Malformed,
    /// FINGERPRINT present but wrong.
    BadFingerprint,
    /// A STUN response sent to the server.
    UnexpectedResponse,
    /// An RFC 3489 message while backward compatibility is off.
    Rfc3489Disabled,
    /// ChannelData with no channel bound on this 5-tuple.
    NoChannel,
    /// The answer did not fit the output buffer.
    OutputTooSmall,
}

/// Most attribute types listed in one UNKNOWN-ATTRIBUTES.
const MAX_UNKNOWN_REPORTED: usize = 16;

/// The protocol core of one worker.
#[derive(Debug)]
pub struct Server {
    config: Arc<CoreConfig>,
    stats: Arc<Stats>,
}

impl Server {
    /// A core with its settings and the counters it updates.
    pub fn new(config: Arc<CoreConfig>, stats: Arc<Stats>) -> Self {
        Self { config, stats }
    }

    /// The counters this core updates.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Handles one packet (a datagram, or one frame from a stream) from a client.
    pub fn handle_client(
        &mut self,
        packet: &[u8],
        tuple: FiveTuple,
        _now: Instant,
        out: &mut [u8],
    ) -> Outcome {
        match channel::classify(packet, self.config.channel_range) {
            PacketKind::Stun => self.handle_stun(packet, tuple, out),
            PacketKind::ChannelData => self.drop(DropReason::NoChannel),
            PacketKind::Other => self.drop(DropReason::Malformed),
        }
    }

    fn drop(&self, reason: DropReason) -> Outcome {
        match reason {
            DropReason::Malformed | DropReason::BadFingerprint | DropReason::Rfc3489Disabled => {
                self.stats.malformed.inc()
            }
            _ => self.stats.dropped.inc(),
        }
        Outcome::Dropped(reason)
    }

    fn handle_stun(&mut self, packet: &[u8], tuple: FiveTuple, out: &mut [u8]) -> Outcome {
        let opts = ParseOptions {
            allow_rfc3489: true,
            ..ParseOptions::default()
        };
        let Ok(msg) = Message::parse_with(packet, opts) else {
            return self.drop(DropReason::Malformed);
        };
        if msg.is_rfc3489() && !self.config.stun_backward_compatibility {
            return self.drop(DropReason::Rfc3489Disabled);
        }
        if msg.has_fingerprint() && msg.verify_fingerprint().is_err() {
            return self.drop(DropReason::BadFingerprint);
        }
        let typ = msg.message_type();
        match typ.class {
            Class::Success | Class::Error => self.drop(DropReason::UnexpectedResponse),
            Class::Indication => {
                // Binding indications are keepalives (RFC 8489 §6.3.2): accepted silently.
                self.stats.indications.inc();
                Outcome::Consumed
            }
            Class::Request => {
                self.stats.requests.inc();
                let result = if typ.method == Method::BINDING {
                    self.binding(&msg, tuple, out)
                } else {
                    self.error(&msg, ErrorCode::new(400, "Unsupported method"), &[], out)
                };
                match result {
                    Some(len) => Outcome::Reply { len },
                    None => self.drop(DropReason::OutputTooSmall),
                }
            }
        }
    }

    /// Lists comprehension-required attributes this server does not understand.
    fn unknown_attributes(msg: &Message<'_>, out: &mut [u16; MAX_UNKNOWN_REPORTED]) -> usize {
        msg.unknown_comprehension_required(attr_type::is_known, out)
    }

    fn binding(&mut self, msg: &Message<'_>, tuple: FiveTuple, out: &mut [u8]) -> Option<usize> {
        let mut unknown = [0u16; MAX_UNKNOWN_REPORTED];
        let n = Self::unknown_attributes(msg, &mut unknown);
        if n > 0 {
            self.stats.unknown_attribute_errors.inc();
            return self.error(
                msg,
                ErrorCode::new(420, "Unknown Attribute"),
                &unknown[..n],
                out,
            );
        }
        let mut b = self.start(msg, msg.message_type().success(), out)?;
        if msg.is_rfc3489() {
            b.add(&Attribute::MappedAddress(tuple.client)).ok()?;
        } else {
            b.add(&Attribute::XorMappedAddress(tuple.client)).ok()?;
        }
        self.stats.binding_responses.inc();
        self.end(msg, b)
    }

    fn start<'b>(
        &self,
        msg: &Message<'_>,
        typ: MessageType,
        out: &'b mut [u8],
    ) -> Option<MessageBuilder<'b>> {
        let tid: TransactionId = msg.transaction_id();
        MessageBuilder::with_cookie(out, typ, msg.cookie(), tid).ok()
    }

    fn end(&self, msg: &Message<'_>, mut b: MessageBuilder<'_>) -> Option<usize> {
        if let Some(s) = &self.config.software {
            b.add(&Attribute::Software(s)).ok()?;
        }
        if msg.has_fingerprint() && !msg.is_rfc3489() {
            b.add_fingerprint().ok()?;
        }
        Some(b.finish())
    }

    fn error(
        &mut self,
        msg: &Message<'_>,
        code: ErrorCode<'_>,
        unknown: &[u16],
        out: &mut [u8],
    ) -> Option<usize> {
        self.stats.error_responses.inc();
        let mut b = self.start(msg, msg.message_type().error(), out)?;
        b.add(&Attribute::ErrorCode(code)).ok()?;
        if !unknown.is_empty() {
            b.add_unknown_attributes(unknown).ok()?;
        }
        self.end(msg, b)
    }
}

#[cfg(test)]
mod tests;

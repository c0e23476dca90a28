//! STUN wire format (RFC 8489, with RFC 5389 and TURN/RFC 8656 attributes).
//!
//! Everything here is pure: it reads borrowed bytes and writes into caller-owned buffers.
//! Nothing allocates on the parse path, nothing panics on input.
//!
//! - [`Message`] is a zero-copy view over one STUN message: [`Message::parse`] checks the
//!   header and walks every attribute once, bounding each length against the buffer.
//! - [`Attribute`] is the typed form of one attribute, decoded lazily from a [`RawAttribute`].
//! - [`MessageBuilder`] writes a message into a caller's `&mut [u8]` and appends
//!   MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT with the length rules of
//!   RFC 8489 §14.5–§14.7.
//! - [`channel`] frames ChannelData and tells it apart from STUN (RFC 7983).
//! - [`stream`] splits a TCP byte stream into STUN messages and ChannelData frames.

mod attr;
mod builder;
pub mod channel;
mod integrity;
mod message;
pub mod stream;
mod wire;

pub use attr::{
    AddressFamily, Attribute, DecodeError, ErrorCode, PasswordAlgorithm, PasswordAlgorithms,
    UnknownAttributes,
};
pub use builder::MessageBuilder;
pub use integrity::{FINGERPRINT_XOR, IntegrityError, fingerprint, hmac_sha1, hmac_sha256};
pub use message::{Attributes, MAX_ATTRIBUTES, Message, ParseError, ParseOptions};
pub use wire::{AttributeType, BuildError, HEADER_LEN, MAGIC_COOKIE, RawAttribute, attr_type};

/// A STUN method (the 12 method bits of the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656).
    pub const REFRESH: Method = Method(0x004);
    /// Send (RFC 8656, indication only).
    pub const SEND: Method = Method(0x006);
    /// Data (RFC 8656, indication only).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656).
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect (RFC 6062).
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind (RFC 6062).
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt (RFC 6062, indication only).
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// The method's name as its RFC spells it (`"ChannelBind"`); `"request"` for a
    /// method this crate does not know.
    pub fn name(self) -> &'static str {
        match self {
            Method::BINDING => "Binding",
            Method::ALLOCATE => "Allocate",
            Method::REFRESH => "Refresh",
            Method::SEND => "Send",
            Method::DATA => "Data",
            Method::CREATE_PERMISSION => "CreatePermission",
            Method::CHANNEL_BIND => "ChannelBind",
            Method::CONNECT => "Connect",
            Method::CONNECTION_BIND => "ConnectionBind",
            Method::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => "request",
        }
    }
}

/// The class of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// Method and class together: the 14-bit STUN message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The method.
    pub method: Method,
    /// The class.
    pub class: Class,
}

impl MessageType {
    /// A message type from its parts.
    pub const fn new(method: Method, class: Class) -> Self {
        Self { method, class }
    }

    /// Decodes the 16-bit type field. The two top bits must be zero (checked by the parser).
    pub const fn from_u16(v: u16) -> Self {
        let class = match ((v >> 7) & 0b10) | ((v >> 4) & 0b1) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        };
        let method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2);
        Self {
            method: Method(method),
            class,
        }
    }

    /// Encodes to the 16-bit type field. Method bits above 12 are dropped.
    pub const fn to_u16(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c: u16 = match self.class {
            Class::Request => 0,
            Class::Indication => 1,
            Class::Success => 2,
            Class::Error => 3,
        };
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    /// The success-response type for this (request) type.
    pub const fn success(self) -> Self {
        Self {
            method: self.method,
            class: Class::Success,
        }
    }

    /// The error-response type for this (request) type.
    pub const fn error(self) -> Self {
        Self {
            method: self.method,
            class: Class::Error,
        }
    }
}

/// The 96-bit transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransactionId(pub [u8; 12]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trip() {
        for m in 0..0x1000u16 {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                let t = MessageType::new(Method(m), c);
                assert_eq!(MessageType::from_u16(t.to_u16()), t);
                assert_eq!(t.to_u16() & 0xC000, 0);
            }
        }
        assert_eq!(
            MessageType::new(Method::BINDING, Class::Request).to_u16(),
            0x0001
        );
        assert_eq!(
            MessageType::new(Method::BINDING, Class::Success).to_u16(),
            0x0101
        );
        assert_eq!(
            MessageType::new(Method::BINDING, Class::Error).to_u16(),
            0x0111
        );
        assert_eq!(
            MessageType::new(Method::ALLOCATE, Class::Request).to_u16(),
            0x0003
        );
        assert_eq!(
            MessageType::new(Method::DATA, Class::Indication).to_u16(),
            0x0017
        );
        assert_eq!(
            MessageType::new(Method::SEND, Class::Indication).to_u16(),
            0x0016
        );
    }
}

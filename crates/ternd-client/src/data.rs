//! The data path: Send indications and ChannelData out, Data indications and ChannelData
//! in, and the Binding request for STUN-only use.

use std::net::SocketAddr;

use ternd_proto::stun::channel::{ChannelData, ChannelRange};
use ternd_proto::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

use crate::Error;

/// A packet from the server, decoded.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// A Data indication: `data` from `peer`.
    Data {
        /// The peer (XOR-PEER-ADDRESS).
        peer: SocketAddr,
        /// The payload.
        data: &'a [u8],
    },
    /// ChannelData on channel `number`.
    ChannelData {
        /// The channel number.
        number: u16,
        /// The payload (without padding).
        data: &'a [u8],
    },
    /// Another STUN message (a response, an indication without DATA...).
    Stun(Message<'a>),
}

/// Decodes a packet from the server; `None` if it is neither STUN nor ChannelData (in
/// the RFC 5766 channel range, which admits every number RFC 8656 does).
pub fn decode(packet: &[u8]) -> Option<Incoming<'_>> {
    match packet.first()? {
        0x40..=0x7F => {
            let c = ChannelData::parse(packet, ChannelRange::RFC5766).ok()?;
            Some(Incoming::ChannelData {
                number: c.channel,
                data: c.data,
            })
        }
        0..=3 => {
            let m = Message::parse(packet).ok()?;
            if m.message_type() == MessageType::new(Method::DATA, Class::Indication)
                && let (Some(Ok(Attribute::XorPeerAddress(peer))), Some(Ok(Attribute::Data(data)))) = (
                    m.get_decoded(attr_type::XOR_PEER_ADDRESS),
                    m.get_decoded(attr_type::DATA),
                )
            {
                return Some(Incoming::Data { peer, data });
            }
            Some(Incoming::Stun(m))
        }
        _ => None,
    }
}

/// Writes a Send indication of `data` to `peer` into `out`; returns its length.
pub fn send_indication(
    tid: TransactionId,
    peer: SocketAddr,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut b = MessageBuilder::new(out, MessageType::new(Method::SEND, Class::Indication), tid)?;
    b.add(&Attribute::XorPeerAddress(peer))?;
    b.add(&Attribute::Data(data))?;
    Ok(b.finish())
}

/// Writes ChannelData of `data` on channel `number` into `out` (padded to four bytes when
/// `pad`, as streams need); returns its length.
pub fn channel_data(number: u16, data: &[u8], pad: bool, out: &mut [u8]) -> Result<usize, Error> {
    ChannelData::encode(number, data, pad, out)
        .ok_or(Error::Build(ternd_proto::stun::BuildError::BufferTooSmall))
}

/// Writes a Binding request (no attributes) into `out`; returns its length.
pub fn binding_request(tid: TransactionId, out: &mut [u8]) -> Result<usize, Error> {
    let b = MessageBuilder::new(out, MessageType::new(Method::BINDING, Class::Request), tid)?;
    Ok(b.finish())
}

/// Writes a Binding indication with FINGERPRINT (a keepalive: no answer) into `out`;
/// returns its length (28).
pub fn binding_indication(tid: TransactionId, out: &mut [u8]) -> Result<usize, Error> {
    let mut b = MessageBuilder::new(
        out,
        MessageType::new(Method::BINDING, Class::Indication),
        tid,
    )?;
    b.add_fingerprint()?;
    Ok(b.finish())
}

/// The XOR-MAPPED-ADDRESS of a Binding (or Allocate) success.
pub fn mapped_address(m: &Message<'_>) -> Result<SocketAddr, Error> {
    match m.get_decoded(attr_type::XOR_MAPPED_ADDRESS) {
        Some(Ok(Attribute::XorMappedAddress(a))) => Ok(a),
        _ => Err(Error::Missing {
            method: m.message_type().method,
            attribute: "XOR-MAPPED-ADDRESS",
        }),
    }
}

//! Writing messages into a caller's buffer.

use super::attr::Attribute;
use super::integrity;
use super::wire::{BuildError, HEADER_LEN, MAGIC_COOKIE, attr_type};
use super::{MessageType, TransactionId};

/// Writes one STUN message into a caller-supplied buffer, without allocating.
///
/// Add attributes in order, then (optionally) [`add_message_integrity`],
/// [`add_message_integrity_sha256`] and [`add_fingerprint`], which compute their values over
/// what was written so far, then [`finish`] for the length. The header's length field is
/// kept current after every call.
///
/// [`add_message_integrity`]: MessageBuilder::add_message_integrity
/// [`add_message_integrity_sha256`]: MessageBuilder::add_message_integrity_sha256
/// [`add_fingerprint`]: MessageBuilder::add_fingerprint
/// [`finish`]: MessageBuilder::finish
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message with the magic cookie.
    pub fn new(
        buf: &'b mut [u8],
        typ: MessageType,
        tid: TransactionId,
    ) -> Result<Self, BuildError> {
        Self::with_cookie(buf, typ, MAGIC_COOKIE, tid)
    }

    /// Starts a message with another cookie field: an answer to an RFC 3489 client echoes
    /// the first four bytes of its 128-bit transaction id here.
    pub fn with_cookie(
        buf: &'b mut [u8],
        typ: MessageType,
        cookie: u32,
        tid: TransactionId,
    ) -> Result<Self, BuildError> {
        let h = buf
            .get_mut(..HEADER_LEN)
            .ok_or(BuildError::BufferTooSmall)?;
        h[0..2].copy_from_slice(&typ.to_u16().to_be_bytes());
        h[2..4].fill(0);
        h[4..8].copy_from_slice(&cookie.to_be_bytes());
        h[8..20].copy_from_slice(&tid.0);
        Ok(Self {
            buf,
            len: HEADER_LEN,
            tid,
        })
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    fn set_length(&mut self, total: usize) {
        let l = (total - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&l.to_be_bytes());
    }

    /// Reserves room for an attribute with a `len`-byte value and writes its header and
    /// padding; returns the value slot.
    fn slot(&mut self, typ: u16, len: usize) -> Result<&mut [u8], BuildError> {
        let padded = (len + 3) & !3;
        let end = self.len + 4 + padded;
        if len > usize::from(u16::MAX) || end - HEADER_LEN > usize::from(u16::MAX) {
            return Err(BuildError::InvalidValue);
        }
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(BuildError::BufferTooSmall)?;
        dst[0..2].copy_from_slice(&typ.to_be_bytes());
        dst[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        dst[4 + len..].fill(0);
        let start = self.len + 4;
        self.len = end;
        self.set_length(end);
        Ok(&mut self.buf[start..start + len])
    }

    /// Appends a raw attribute (padded with zeros).
    pub fn add_raw(&mut self, typ: u16, value: &[u8]) -> Result<(), BuildError> {
        self.slot(typ, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// Appends a typed attribute. XOR-*-ADDRESS values are XORed with this message's id.
    pub fn add(&mut self, attr: &Attribute<'_>) -> Result<(), BuildError> {
        // Encode straight into the buffer behind room for the attribute header.
        let start = self.len;
        let tid = self.tid;
        let value_area = self
            .buf
            .get_mut(start + 4..)
            .ok_or(BuildError::BufferTooSmall)?;
        let len = attr.encode_value(&tid, value_area)?;
        let padded = (len + 3) & !3;
        let end = start + 4 + padded;
        if len > usize::from(u16::MAX) || end - HEADER_LEN > usize::from(u16::MAX) {
            return Err(BuildError::InvalidValue);
        }
        if end > self.buf.len() {
            return Err(BuildError::BufferTooSmall);
        }
        self.buf[start..start + 2].copy_from_slice(&attr.typ().to_be_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
        self.buf[start + 4 + len..end].fill(0);
        self.len = end;
        self.set_length(end);
        Ok(())
    }

    /// Appends UNKNOWN-ATTRIBUTES listing `types`.
    pub fn add_unknown_attributes(&mut self, types: &[u16]) -> Result<(), BuildError> {
        let slot = self.slot(attr_type::UNKNOWN_ATTRIBUTES, types.len() * 2)?;
        for (dst, t) in slot.chunks_exact_mut(2).zip(types) {
            dst.copy_from_slice(&t.to_be_bytes());
        }
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 under `key` over the message so far, with the
    /// length field counting the attribute itself (RFC 8489 §14.5).
    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<(), BuildError> {
        let covered = self.len;
        self.slot(attr_type::MESSAGE_INTEGRITY, 20)?;
        let mac = integrity::hmac_sha1(key, &[&self.buf[..covered]]);
        self.buf[covered + 4..covered + 24].copy_from_slice(&mac);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (full 32 bytes, RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), BuildError> {
        let covered = self.len;
        self.slot(attr_type::MESSAGE_INTEGRITY_SHA256, 32)?;
        let mac = integrity::hmac_sha256(key, &[&self.buf[..covered]]);
        self.buf[covered + 4..covered + 36].copy_from_slice(&mac);
        Ok(())
    }

    /// Appends FINGERPRINT (RFC 8489 §14.7). Add nothing after it.
    pub fn add_fingerprint(&mut self) -> Result<(), BuildError> {
        let covered = self.len;
        self.slot(attr_type::FINGERPRINT, 4)?;
        let crc = integrity::fingerprint(&[&self.buf[..covered]]);
        self.buf[covered + 4..covered + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Ends the message; returns its length in the buffer.
    pub fn finish(self) -> usize {
        self.len
    }

    /// The message written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

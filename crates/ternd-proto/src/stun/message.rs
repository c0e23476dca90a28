//! The zero-copy message view.

use super::attr;
use super::integrity::{self, IntegrityError};
use super::wire::{HEADER_LEN, MAGIC_COOKIE, RawAttribute, attr_type};
use super::{MessageType, TransactionId};

/// Default cap on the number of attributes [`Message::parse`] reads.
pub const MAX_ATTRIBUTES: usize = 64;

/// Why a byte string is not a STUN message we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than 20 bytes.
    #[error("shorter than a STUN header")]
    TooShort,
    /// One of the two top bits of the first byte is set.
    #[error("top two bits not zero")]
    NotStun,
    /// The magic cookie is missing (and RFC 3489 messages are not accepted).
    #[error("bad magic cookie")]
    BadMagicCookie,
    /// The length field is not a multiple of four.
    #[error("length not a multiple of 4")]
    UnalignedLength,
    /// The length field disagrees with the bytes received.
    #[error("length field {declared} but {actual} attribute bytes received")]
    LengthMismatch {
        /// What the header says.
        declared: usize,
        /// What was received after the header.
        actual: usize,
    },
    /// An attribute runs past the end of the message.
    #[error("attribute at offset {offset} runs past the end")]
    AttributeOverrun {
        /// Offset of the attribute header.
        offset: usize,
    },
    /// More attributes than the configured cap.
    #[error("more than {max} attributes")]
    TooManyAttributes {
        /// The cap.
        max: usize,
    },
    /// An attribute follows FINGERPRINT.
    #[error("attribute after FINGERPRINT")]
    AfterFingerprint,
    /// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 or FINGERPRINT with an impossible length.
    #[error("attribute {attr:#06x} with invalid length {len}")]
    BadIntegrityLength {
        /// The attribute type.
        attr: u16,
        /// Its length.
        len: usize,
    },
}

/// Knobs for [`Message::parse_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Stop with [`ParseError::TooManyAttributes`] past this many attributes.
    pub max_attributes: usize,
    /// Accept RFC 3489 messages (no magic cookie).
    pub allow_rfc3489: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_attributes: MAX_ATTRIBUTES,
            allow_rfc3489: false,
        }
    }
}

/// A parsed STUN message: a view over borrowed bytes.
///
/// [`Message::parse`] has already checked the header, that every attribute fits, the
/// attribute cap, and the lengths of the integrity and fingerprint attributes; reading
/// attributes afterwards cannot fail for framing reasons, only for value reasons.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    typ: MessageType,
    rfc3489: bool,
    count: u16,
    integrity: Option<u16>,
    integrity_sha256: Option<u16>,
    fingerprint: Option<u16>,
}

/// Which attributes still count while walking a message (RFC 8489 §14.5–§14.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    AfterIntegrity,
    AfterIntegritySha256,
    AfterFingerprint,
}

impl Stage {
    /// Whether an attribute of type `typ` counts in this stage, and the next stage.
    fn step(self, typ: u16) -> (bool, Stage) {
        match (self, typ) {
            (Stage::AfterFingerprint, _) => (false, Stage::AfterFingerprint),
            (_, attr_type::FINGERPRINT) => (true, Stage::AfterFingerprint),
            (Stage::Open, attr_type::MESSAGE_INTEGRITY) => (true, Stage::AfterIntegrity),
            (Stage::Open | Stage::AfterIntegrity, attr_type::MESSAGE_INTEGRITY_SHA256) => {
                (true, Stage::AfterIntegritySha256)
            }
            (Stage::Open, _) => (true, Stage::Open),
            (s, _) => (false, s),
        }
    }
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl<'a> Message<'a> {
    /// Parses `buf` as exactly one STUN message with default [`ParseOptions`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(buf, ParseOptions::default())
    }

    /// Parses `buf` as exactly one STUN message.
    pub fn parse_with(buf: &'a [u8], opts: ParseOptions) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::TooShort);
        }
        if buf[0] & 0xC0 != 0 {
            return Err(ParseError::NotStun);
        }
        let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let rfc3489 = cookie != MAGIC_COOKIE;
        if rfc3489 && !opts.allow_rfc3489 {
            return Err(ParseError::BadMagicCookie);
        }
        let declared = usize::from(read_u16(buf, 2));
        if declared % 4 != 0 {
            return Err(ParseError::UnalignedLength);
        }
        let actual = buf.len() - HEADER_LEN;
        if declared != actual {
            return Err(ParseError::LengthMismatch { declared, actual });
        }
        let typ = MessageType::from_u16(read_u16(buf, 0));
        let mut msg = Message {
            buf,
            typ,
            rfc3489,
            count: 0,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut stage = Stage::Open;
        let mut offset = HEADER_LEN;
        let mut count = 0usize;
        while offset < buf.len() {
            if buf.len() - offset < 4 {
                return Err(ParseError::AttributeOverrun { offset });
            }
            let atyp = read_u16(buf, offset);
            let len = usize::from(read_u16(buf, offset + 2));
            let padded = (len + 3) & !3;
            if buf.len() - offset - 4 < padded {
                return Err(ParseError::AttributeOverrun { offset });
            }
            count += 1;
            if count > opts.max_attributes {
                return Err(ParseError::TooManyAttributes {
                    max: opts.max_attributes,
                });
            }
            if stage == Stage::AfterFingerprint {
                return Err(ParseError::AfterFingerprint);
            }
            let (counts, next) = stage.step(atyp);
            if counts {
                // `offset` < 65_556 always fits in u16 for the attribute header? The
                // message is at most 20 + 65_535 bytes, so offsets fit in u32; we store u16
                // relative to the end of the header to stay small.
                let rel = u16::try_from(offset - HEADER_LEN)
                    .map_err(|_| ParseError::AttributeOverrun { offset })?;
                match atyp {
                    attr_type::MESSAGE_INTEGRITY => {
                        if len != 20 {
                            return Err(ParseError::BadIntegrityLength { attr: atyp, len });
                        }
                        msg.integrity = Some(rel);
                    }
                    attr_type::MESSAGE_INTEGRITY_SHA256 => {
                        if !(16..=32).contains(&len) || len % 4 != 0 {
                            return Err(ParseError::BadIntegrityLength { attr: atyp, len });
                        }
                        msg.integrity_sha256 = Some(rel);
                    }
                    attr_type::FINGERPRINT => {
                        if len != 4 {
                            return Err(ParseError::BadIntegrityLength { attr: atyp, len });
                        }
                        msg.fingerprint = Some(rel);
                    }
                    _ => {}
                }
            }
            stage = next;
            offset += 4 + padded;
        }
        // count <= max_attributes and the message holds at most 16_384 attributes.
        msg.count = u16::try_from(count).unwrap_or(u16::MAX);
        Ok(msg)
    }

    /// The message type (method and class).
    pub fn message_type(&self) -> MessageType {
        self.typ
    }

    /// The transaction id (the 12 bytes after the cookie).
    pub fn transaction_id(&self) -> TransactionId {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        TransactionId(t)
    }

    /// The 32-bit cookie field: [`MAGIC_COOKIE`], or part of an RFC 3489 transaction id.
    pub fn cookie(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// True when the message lacks the magic cookie (an RFC 3489 client).
    pub fn is_rfc3489(&self) -> bool {
        self.rfc3489
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of attributes on the wire (counted or ignored).
    pub fn attribute_count(&self) -> usize {
        usize::from(self.count)
    }

    /// The attributes that count, in order: everything up to MESSAGE-INTEGRITY, then only
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT (RFC 8489 §14.5–§14.7); others are skipped.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            buf: self.buf,
            offset: HEADER_LEN,
            stage: Stage::Open,
        }
    }

    /// The first counted attribute of type `typ`.
    pub fn get(&self, typ: u16) -> Option<RawAttribute<'a>> {
        self.attributes().find(|a| a.typ == typ)
    }

    /// Decodes the first counted attribute of type `typ`.
    pub fn get_decoded(&self, typ: u16) -> Option<Result<attr::Attribute<'a>, attr::DecodeError>> {
        let tid = self.transaction_id();
        self.get(typ).map(|raw| attr::Attribute::decode(raw, &tid))
    }

    /// The first comprehension-required attribute type not accepted by `known`, if any,
    /// reported up to `out.len()` of them into `out`; returns how many were written.
    pub fn unknown_comprehension_required(
        &self,
        known: impl Fn(u16) -> bool,
        out: &mut [u16],
    ) -> usize {
        let mut n = 0;
        for a in self.attributes() {
            if a.is_comprehension_required() && !known(a.typ) && !out[..n].contains(&a.typ) {
                if n == out.len() {
                    break;
                }
                out[n] = a.typ;
                n += 1;
            }
        }
        n
    }

    /// True if the message carries MESSAGE-INTEGRITY.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// True if the message carries MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// True if the message carries FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// The header with its length field set as if the message ended at `end`.
    fn header_ending_at(&self, end: usize) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.buf[..HEADER_LEN]);
        let len = (end - HEADER_LEN) as u16;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h
    }

    /// Verifies MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let at = HEADER_LEN + usize::from(self.integrity.ok_or(IntegrityError::Missing)?);
        let header = self.header_ending_at(at + 4 + 20);
        let mac = integrity::hmac_sha1(key, &[&header, &self.buf[HEADER_LEN..at]]);
        integrity::ct_eq(&mac, &self.buf[at + 4..at + 24])
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 with `key`, in constant time; a truncated value
    /// (16–32 bytes, RFC 8489 §14.6) is compared against the same prefix.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let at = HEADER_LEN + usize::from(self.integrity_sha256.ok_or(IntegrityError::Missing)?);
        let len = usize::from(read_u16(self.buf, at + 2));
        let header = self.header_ending_at(at + 4 + len);
        let mac = integrity::hmac_sha256(key, &[&header, &self.buf[HEADER_LEN..at]]);
        integrity::ct_eq(&mac[..len], &self.buf[at + 4..at + 4 + len])
    }

    /// Verifies FINGERPRINT.
    pub fn verify_fingerprint(&self) -> Result<(), IntegrityError> {
        let at = HEADER_LEN + usize::from(self.fingerprint.ok_or(IntegrityError::Missing)?);
        let header = self.header_ending_at(at + 8);
        let crc = integrity::fingerprint(&[&header, &self.buf[HEADER_LEN..at]]);
        let got = u32::from_be_bytes([
            self.buf[at + 4],
            self.buf[at + 5],
            self.buf[at + 6],
            self.buf[at + 7],
        ]);
        if crc == got {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }
}

/// Iterator over the counted attributes of a [`Message`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    offset: usize,
    stage: Stage,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        // Bounds were checked by `Message::parse`; `get` keeps this panic-free regardless.
        loop {
            let head = self.buf.get(self.offset..self.offset + 4)?;
            let typ = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let start = self.offset + 4;
            let value = self.buf.get(start..start + len)?;
            let offset = self.offset;
            self.offset = start + ((len + 3) & !3);
            let (counts, next) = self.stage.step(typ);
            self.stage = next;
            if counts {
                return Some(RawAttribute { typ, value, offset });
            }
        }
    }
}

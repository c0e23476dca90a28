//! ChannelData framing (RFC 8656 §12.4–§12.5) and demultiplexing (RFC 7983).

/// Length of the ChannelData header (channel number and length).
pub const HEADER_LEN: usize = 4;

/// Which channel numbers are valid: a parameter, not a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRange {
    lo: u16,
    hi: u16,
}

impl ChannelRange {
    /// RFC 8656 §12: 0x4000–0x4FFF (0x5000 and up are reserved for RFC 7983 demultiplexing).
    pub const RFC8656: ChannelRange = ChannelRange {
        lo: 0x4000,
        hi: 0x4FFF,
    };
    /// RFC 5766: 0x4000–0x7FFF, for legacy clients.
    pub const RFC5766: ChannelRange = ChannelRange {
        lo: 0x4000,
        hi: 0x7FFF,
    };

    /// The range for a server with or without legacy channel numbers.
    pub const fn new(rfc5766: bool) -> Self {
        if rfc5766 {
            Self::RFC5766
        } else {
            Self::RFC8656
        }
    }

    /// True if `channel` is valid in this range.
    pub const fn contains(&self, channel: u16) -> bool {
        channel >= self.lo && channel <= self.hi
    }

    /// True if `first_byte` can start a ChannelData message in this range.
    pub const fn admits_first_byte(&self, first_byte: u8) -> bool {
        first_byte >= (self.lo >> 8) as u8 && first_byte <= (self.hi >> 8) as u8
    }
}

impl Default for ChannelRange {
    fn default() -> Self {
        Self::RFC8656
    }
}

/// What a packet is, from its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// First byte 0–3: STUN.
    Stun,
    /// First byte in the channel range: ChannelData.
    ChannelData,
    /// Anything else (DTLS, RTP, or noise).
    Other,
}

/// Classifies a packet by its first byte under `range`.
pub fn classify(packet: &[u8], range: ChannelRange) -> PacketKind {
    match packet.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(&b) if range.admits_first_byte(b) => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// Why a ChannelData message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Fewer than four bytes.
    #[error("shorter than a ChannelData header")]
    TooShort,
    /// The channel number is outside the valid range.
    #[error("channel number {0:#06x} out of range")]
    BadChannel(u16),
    /// The length field claims more bytes than were received.
    #[error("length {declared} but {available} bytes follow the header")]
    Truncated {
        /// What the header says.
        declared: usize,
        /// What is there.
        available: usize,
    },
}

/// A ChannelData message: a view over borrowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number.
    pub channel: u16,
    /// The application data (without padding).
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses a ChannelData message. Bytes past the declared length (padding) are ignored,
    /// as RFC 8656 §12.5 allows on UDP.
    pub fn parse(buf: &'a [u8], range: ChannelRange) -> Result<Self, ChannelDataError> {
        if buf.len() < HEADER_LEN {
            return Err(ChannelDataError::TooShort);
        }
        let channel = u16::from_be_bytes([buf[0], buf[1]]);
        if !range.contains(channel) {
            return Err(ChannelDataError::BadChannel(channel));
        }
        let declared = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        let data =
            buf.get(HEADER_LEN..HEADER_LEN + declared)
                .ok_or(ChannelDataError::Truncated {
                    declared,
                    available: buf.len() - HEADER_LEN,
                })?;
        Ok(Self { channel, data })
    }

    /// Writes the 4-byte header in front of data that is already in place: the relay's
    /// zero-copy path receives into `buf[4..]` and calls this.
    pub fn write_header(header: &mut [u8; HEADER_LEN], channel: u16, data_len: u16) {
        header[0..2].copy_from_slice(&channel.to_be_bytes());
        header[2..4].copy_from_slice(&data_len.to_be_bytes());
    }

    /// Writes a whole ChannelData message into `out`, padded to a multiple of four when
    /// `pad` is set (streams, RFC 8656 §12.5). Returns the bytes written, or `None` when
    /// `out` is too small or `data` longer than 65,535 bytes.
    pub fn encode(channel: u16, data: &[u8], pad: bool, out: &mut [u8]) -> Option<usize> {
        let len = u16::try_from(data.len()).ok()?;
        let total = if pad {
            padded_len(data.len())
        } else {
            HEADER_LEN + data.len()
        };
        let dst = out.get_mut(..total)?;
        dst[0..2].copy_from_slice(&channel.to_be_bytes());
        dst[2..4].copy_from_slice(&len.to_be_bytes());
        dst[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        dst[HEADER_LEN + data.len()..].fill(0);
        Some(total)
    }
}

/// Size of a ChannelData message with `data_len` bytes of data, padded to four.
pub const fn padded_len(data_len: usize) -> usize {
    HEADER_LEN + ((data_len + 3) & !3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(ChannelRange::RFC8656.contains(0x4000));
        assert!(ChannelRange::RFC8656.contains(0x4FFF));
        assert!(!ChannelRange::RFC8656.contains(0x5000));
        assert!(!ChannelRange::RFC8656.contains(0x3FFF));
        assert!(ChannelRange::RFC5766.contains(0x7FFF));
        assert!(!ChannelRange::RFC5766.contains(0x8000));
        assert_eq!(
            classify(&[0x00, 1], ChannelRange::RFC8656),
            PacketKind::Stun
        );
        assert_eq!(classify(&[0x03], ChannelRange::RFC8656), PacketKind::Stun);
        assert_eq!(
            classify(&[0x40], ChannelRange::RFC8656),
            PacketKind::ChannelData
        );
        assert_eq!(
            classify(&[0x4F], ChannelRange::RFC8656),
            PacketKind::ChannelData
        );
        assert_eq!(classify(&[0x50], ChannelRange::RFC8656), PacketKind::Other);
        assert_eq!(
            classify(&[0x7F], ChannelRange::RFC5766),
            PacketKind::ChannelData
        );
        assert_eq!(classify(&[0x80], ChannelRange::RFC5766), PacketKind::Other);
        assert_eq!(classify(&[0x14], ChannelRange::RFC5766), PacketKind::Other);
        assert_eq!(classify(&[], ChannelRange::RFC5766), PacketKind::Other);
    }

    #[test]
    fn parse_and_encode() {
        let mut buf = [0u8; 16];
        let n = ChannelData::encode(0x4001, b"hello", true, &mut buf).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&buf[..12], b"\x40\x01\x00\x05hello\0\0\0");
        let cd = ChannelData::parse(&buf[..n], ChannelRange::RFC8656).unwrap();
        assert_eq!(
            cd,
            ChannelData {
                channel: 0x4001,
                data: b"hello"
            }
        );
        let n = ChannelData::encode(0x4001, b"hello", false, &mut buf).unwrap();
        assert_eq!(n, 9);
        assert_eq!(
            ChannelData::encode(0x4001, b"hello", true, &mut [0u8; 11]),
            None
        );
        assert_eq!(
            ChannelData::parse(&buf[..8], ChannelRange::RFC8656),
            Err(ChannelDataError::Truncated {
                declared: 5,
                available: 4
            })
        );
        assert_eq!(
            ChannelData::parse(&buf[..3], ChannelRange::RFC8656),
            Err(ChannelDataError::TooShort)
        );
        assert_eq!(
            ChannelData::parse(b"\x50\x00\x00\x00", ChannelRange::RFC8656),
            Err(ChannelDataError::BadChannel(0x5000))
        );
        assert!(ChannelData::parse(b"\x50\x00\x00\x00", ChannelRange::RFC5766).is_ok());
        let mut h = [0u8; 4];
        ChannelData::write_header(&mut h, 0x4ABC, 300);
        assert_eq!(h, [0x4A, 0xBC, 0x01, 0x2C]);
    }
}

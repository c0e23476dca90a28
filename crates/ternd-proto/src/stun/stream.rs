//! Splitting a TCP/TLS byte stream into STUN messages and ChannelData frames.
//!
//! On a stream, a STUN message is 20 bytes of header plus the length in its header, and a
//! ChannelData frame is 4 bytes of header plus its length padded to a multiple of four
//! (RFC 8656 §12.5). Anything else at a frame boundary is a framing error: the stream can
//! no longer be resynchronised and must be closed.

use super::channel::{self, ChannelRange};
use super::wire::HEADER_LEN as STUN_HEADER_LEN;

/// The kind of a frame on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A STUN message.
    Stun,
    /// A ChannelData message (including its padding).
    ChannelData,
}

/// Why a stream cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The next byte starts neither a STUN message nor a ChannelData frame.
    #[error("first byte {0:#04x} starts neither STUN nor ChannelData")]
    UnknownFrame(u8),
    /// The frame is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Looks at the start of `buf` and returns the kind and total length of the next frame,
/// `Ok(None)` if more bytes are needed to tell, or an error if the stream is broken.
pub fn next_frame(
    buf: &[u8],
    range: ChannelRange,
    max: usize,
) -> Result<Option<(FrameKind, usize)>, FramingError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let kind = match channel::classify(buf, range) {
        channel::PacketKind::Stun => FrameKind::Stun,
        channel::PacketKind::ChannelData => FrameKind::ChannelData,
        channel::PacketKind::Other => return Err(FramingError::UnknownFrame(first)),
    };
    if buf.len() < 4 {
        return Ok(None);
    }
    let declared = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let len = match kind {
        FrameKind::Stun => STUN_HEADER_LEN + declared,
        FrameKind::ChannelData => channel::padded_len(declared),
    };
    if len > max {
        return Err(FramingError::TooLarge { len, max });
    }
    Ok((buf.len() >= len).then_some((kind, len)))
}

/// A fixed-capacity receive buffer for one stream that yields whole frames.
///
/// Its memory is allocated once, at `max_frame` bytes (and at least one STUN header), so a
/// peer cannot make it grow.
#[derive(Debug)]
pub struct StreamBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    range: ChannelRange,
}

impl StreamBuffer {
    /// A buffer for frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize, range: ChannelRange) -> Self {
        let cap = max_frame.max(STUN_HEADER_LEN);
        Self {
            buf: vec![0u8; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            range,
        }
    }

    /// Free space to read into; call [`StreamBuffer::filled`] with what was read. Always
    /// non-empty unless a frame larger than the buffer is pending, which
    /// [`StreamBuffer::next_frame`] reports as an error first.
    pub fn space(&mut self) -> &mut [u8] {
        if self.start > 0 && (self.end == self.buf.len() || self.start == self.end) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written into [`StreamBuffer::space`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// The bytes buffered but not yet returned as frames (for a stream that stops being
    /// framed, e.g. an RFC 6062 data connection after ConnectionBind).
    pub fn pending_bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(FrameKind, &[u8])>, FramingError> {
        let avail = &self.buf[self.start..self.end];
        match next_frame(avail, self.range, self.buf.len())? {
            None => Ok(None),
            Some((kind, len)) => {
                let at = self.start;
                self.start += len;
                Ok(Some((kind, &self.buf[at..at + len])))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads() {
        let mut stream = Vec::new();
        // A Binding request with no attributes, then a padded ChannelData frame.
        stream.extend_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42]);
        stream.extend_from_slice(&[7; 12]);
        stream.extend_from_slice(&[0x40, 0x00, 0x00, 0x03, b'a', b'b', b'c', 0]);
        let mut sb = StreamBuffer::new(64, ChannelRange::RFC8656);
        let mut out = Vec::new();
        for chunk in stream.chunks(3) {
            let space = sb.space();
            space[..chunk.len()].copy_from_slice(chunk);
            sb.filled(chunk.len());
            while let Some((k, f)) = sb.next_frame().unwrap() {
                out.push((k, f.to_vec()));
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, FrameKind::Stun);
        assert_eq!(out[0].1.len(), 20);
        assert_eq!(
            out[1],
            (
                FrameKind::ChannelData,
                vec![0x40, 0, 0, 3, b'a', b'b', b'c', 0]
            )
        );
        assert_eq!(sb.pending(), 0);
    }

    #[test]
    fn errors() {
        assert_eq!(
            next_frame(&[0x80], ChannelRange::RFC8656, 100),
            Err(FramingError::UnknownFrame(0x80))
        );
        assert_eq!(
            next_frame(&[0x50], ChannelRange::RFC8656, 100),
            Err(FramingError::UnknownFrame(0x50))
        );
        assert_eq!(next_frame(&[0x00, 1], ChannelRange::RFC8656, 100), Ok(None));
        assert_eq!(
            next_frame(&[0x00, 1, 0x01, 0x00], ChannelRange::RFC8656, 100),
            Err(FramingError::TooLarge { len: 276, max: 100 })
        );
        assert_eq!(
            next_frame(&[0x40, 0, 0, 97], ChannelRange::RFC8656, 100),
            Err(FramingError::TooLarge { len: 104, max: 100 })
        );
        assert_eq!(
            next_frame(&[0x40, 0, 0, 96], ChannelRange::RFC8656, 100),
            Ok(None)
        );
        let mut sb = StreamBuffer::new(24, ChannelRange::RFC8656);
        let s = sb.space();
        s[..4].copy_from_slice(&[0x00, 0x01, 0x00, 0x08]);
        sb.filled(4);
        assert!(sb.next_frame().is_err());
    }
}

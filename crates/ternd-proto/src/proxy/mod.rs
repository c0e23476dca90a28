//! The HAProxy PROXY protocol, versions 1 (text) and 2 (binary), as a server behind an L4
//! load balancer receives it: a header at the very start of a TCP connection that names the
//! real client and the address it connected to
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>).
//!
//! [`parse`] is pure, zero-copy and incremental: feed it the bytes received so far and it
//! answers "complete, here is what it says and how long it was", "need more bytes" or "this
//! cannot be a PROXY header". It never reads past the header, so the bytes after
//! `header_len` are the proxied protocol's own (a STUN message, a TLS ClientHello...).
//!
//! Only what a TCP relay needs is accepted: v1 `TCP4`, `TCP6` and `UNKNOWN`; v2 `PROXY` over
//! `AF_INET`/`AF_INET6` `STREAM`, `PROXY` with `AF_UNSPEC`, and `LOCAL`. v2 TLVs are skipped
//! (their framing is checked) and the whole v2 address block is bounded by
//! [`V2_MAX_PAYLOAD`] bytes.

use std::net::SocketAddr;

#[cfg(test)]
mod tests;
mod v1;
mod v2;

use v1::parse_v1;
use v2::parse_v2;

/// What a PROXY header says about the real connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxied {
    /// `PROXY` with addresses (v1 `TCP4`/`TCP6`, or the v2 `PROXY` command with
    /// `AF_INET`/`AF_INET6` over `STREAM`).
    Addresses {
        /// The real client.
        source: SocketAddr,
        /// The address the client connected to (the load balancer's frontend).
        destination: SocketAddr,
    },
    /// v1 `UNKNOWN`, the v2 `LOCAL` command (health checks) or v2 `PROXY` with `AF_UNSPEC`:
    /// use the socket's own addresses.
    Local,
}

/// Why bytes cannot be (the start of) a PROXY header this parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Starts with neither the v1 signature `PROXY ` nor the v2 signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// The signature is right but the rest is not a well-formed header: a bad address, port,
    /// separator or line ending, a v2 address block too short for its family, broken TLV
    /// framing.
    #[error("malformed PROXY protocol header")]
    Malformed,
    /// A v1 line without CRLF in its first [`V1_MAX_LEN`] bytes, or a v2 header announcing
    /// more than [`V2_MAX_PAYLOAD`] bytes of addresses and TLVs.
    #[error("PROXY protocol header too long")]
    TooLong,
    /// A v2 header whose version nibble is not 2.
    #[error("unsupported PROXY protocol version")]
    UnsupportedVersion,
    /// A v2 header whose command is neither `LOCAL` nor `PROXY`.
    #[error("unsupported PROXY protocol v2 command")]
    UnsupportedCommand,
    /// A protocol, address family or transport other than TCP over IPv4/IPv6 (v1 `UDP4`, v2
    /// `DGRAM` or `AF_UNIX`, unassigned values).
    #[error("unsupported PROXY protocol address family or transport")]
    Unsupported,
}

/// The longest v1 line, CRLF included.
pub const V1_MAX_LEN: usize = 107;

/// The most address and TLV bytes a v2 header may carry here (the protocol allows 65,535).
/// Enough for an IPv6 address block (36 bytes) and the TLVs load balancers add (AWS VPC
/// endpoint IDs, Azure link IDs, ALPN, authority, CRC32C, SSL summaries).
pub const V2_MAX_PAYLOAD: usize = 536;

/// The longest header [`parse`] accepts, so a caller can size a fixed buffer: once `buf`
/// holds this many bytes, [`parse`] never answers `Ok(None)`.
pub const MAX_HEADER_LEN: usize = V2_FIXED_LEN + V2_MAX_PAYLOAD;

/// The v1 signature, space included.
const V1_SIGNATURE: &[u8] = b"PROXY ";

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a v2 header: signature, version/command, family/transport, length.
const V2_FIXED_LEN: usize = 16;

/// The v2 version nibble.
const V2_VERSION: u8 = 0x2;
/// The v2 `LOCAL` command.
const V2_CMD_LOCAL: u8 = 0x0;
/// The v2 `PROXY` command.
const V2_CMD_PROXY: u8 = 0x1;
/// v2 `AF_UNSPEC` with an unspecified transport.
const V2_UNSPEC: u8 = 0x00;
/// v2 `AF_INET` over `STREAM`.
const V2_TCP4: u8 = 0x11;
/// v2 `AF_INET6` over `STREAM`.
const V2_TCP6: u8 = 0x21;
/// The size of a v2 `AF_INET` address block.
const V2_INET_LEN: usize = 12;
/// The size of a v2 `AF_INET6` address block.
const V2_INET6_LEN: usize = 36;
/// The size of a v2 TLV's type and length.
const V2_TLV_HEADER_LEN: usize = 3;

/// The longest text form of an IPv6 address (six groups and a dotted IPv4 tail).
const IPV6_MAX_TEXT: usize = 45;

/// Parses a PROXY header (v1 or v2) at the start of `buf`.
///
/// Returns `Ok(Some((proxied, header_len)))` when a complete header is there (the proxied
/// protocol starts at `buf[header_len..]`), `Ok(None)` when `buf` is a valid prefix of a
/// header and more bytes are needed, and `Err` as soon as `buf` cannot be the start of an
/// accepted header. The answer for a prefix is never contradicted by a longer buffer:
/// `Ok(None)` may become anything, `Err` stays `Err`, and `Ok(Some(_))` stays the same.
/// With [`MAX_HEADER_LEN`] bytes or more the answer is never `Ok(None)`.
pub fn parse(buf: &[u8]) -> Result<Option<(Proxied, usize)>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// Whether `buf` holds all of `signature`; `Err` when it disagrees with it.
fn signature(buf: &[u8], signature: &[u8]) -> Result<bool, ProxyError> {
    let n = buf.len().min(signature.len());
    if buf[..n] == signature[..n] {
        Ok(n == signature.len())
    } else {
        Err(ProxyError::NotProxy)
    }
}

//! PROXY protocol version 2: the binary header and its TLVs.

use std::net::{Ipv6Addr, SocketAddr};

use super::{
    Proxied, ProxyError, V2_CMD_LOCAL, V2_CMD_PROXY, V2_FIXED_LEN, V2_INET_LEN, V2_INET6_LEN,
    V2_MAX_PAYLOAD, V2_SIGNATURE, V2_TCP4, V2_TCP6, V2_TLV_HEADER_LEN, V2_UNSPEC, V2_VERSION,
    signature,
};

/// Parses a v2 header: signature, version/command, family/transport, big-endian length,
/// then that many bytes of address block and TLVs.
pub(super) fn parse_v2(buf: &[u8]) -> Result<Option<(Proxied, usize)>, ProxyError> {
    if !signature(buf, V2_SIGNATURE)? {
        return Ok(None);
    }
    let Some(&version_command) = buf.get(12) else {
        return Ok(None);
    };
    if version_command >> 4 != V2_VERSION {
        return Err(ProxyError::UnsupportedVersion);
    }
    let local = match version_command & 0x0f {
        V2_CMD_LOCAL => true,
        V2_CMD_PROXY => false,
        _ => return Err(ProxyError::UnsupportedCommand),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(None);
    };
    // LOCAL: "discard the protocol block including the family which is ignored".
    let address_len = match (local, family) {
        (true, _) | (false, V2_UNSPEC) => 0,
        (false, V2_TCP4) => V2_INET_LEN,
        (false, V2_TCP6) => V2_INET6_LEN,
        (false, _) => return Err(ProxyError::Unsupported),
    };
    let Some(&[hi, lo]) = buf.get(14..V2_FIXED_LEN) else {
        return Ok(None);
    };
    let payload_len = usize::from(u16::from_be_bytes([hi, lo]));
    if payload_len > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong);
    }
    if payload_len < address_len {
        return Err(ProxyError::Malformed);
    }
    let header_len = V2_FIXED_LEN + payload_len;
    let payload = &buf[V2_FIXED_LEN..buf.len().min(header_len)];
    if address_len > 0 {
        let tlvs = payload.get(address_len..).unwrap_or_default();
        check_tlvs(tlvs, payload_len - address_len)?;
    }
    if payload.len() < payload_len {
        return Ok(None);
    }
    let proxied = match (address_len, payload) {
        (V2_INET_LEN, &[a0, a1, a2, a3, b0, b1, b2, b3, p0, p1, q0, q1, ..]) => {
            Proxied::Addresses {
                source: SocketAddr::from(([a0, a1, a2, a3], u16::from_be_bytes([p0, p1]))),
                destination: SocketAddr::from(([b0, b1, b2, b3], u16::from_be_bytes([q0, q1]))),
            }
        }
        (V2_INET6_LEN, _) => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&payload[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([payload[at], payload[at + 1]]);
            Proxied::Addresses {
                source: SocketAddr::from((ip(0), port(32))),
                destination: SocketAddr::from((ip(16), port(34))),
            }
        }
        _ => Proxied::Local,
    };
    Ok(Some((proxied, header_len)))
}

/// Checks the framing of the TLVs received so far (`tlvs`, a prefix of a `total`-byte TLV
/// area): every TLV (type, 16-bit length, value) must end inside the area, and the area
/// must end exactly where one ends.
fn check_tlvs(tlvs: &[u8], total: usize) -> Result<(), ProxyError> {
    let mut at = 0;
    while at < total {
        if total - at < V2_TLV_HEADER_LEN {
            return Err(ProxyError::Malformed);
        }
        let Some(&[_, hi, lo]) = tlvs.get(at..at + V2_TLV_HEADER_LEN) else {
            return Ok(());
        };
        at += V2_TLV_HEADER_LEN + usize::from(u16::from_be_bytes([hi, lo]));
        if at > total {
            return Err(ProxyError::Malformed);
        }
    }
    Ok(())
}

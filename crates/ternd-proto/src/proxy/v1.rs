//! PROXY protocol version 1: the text line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{IPV6_MAX_TEXT, Proxied, ProxyError, V1_MAX_LEN, V1_SIGNATURE, signature};

/// Parses a v1 line: `PROXY <TCP4|TCP6> <src> <dst> <sport> <dport>\r\n` or
/// `PROXY UNKNOWN[ <anything>]\r\n`.
pub(super) fn parse_v1(buf: &[u8]) -> Result<Option<(Proxied, usize)>, ProxyError> {
    if !signature(buf, V1_SIGNATURE)? {
        return Ok(None);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let fields = &window[V1_SIGNATURE.len()..];
    match fields.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) => {
            let line = &fields[..i];
            match (fields[i], fields.get(i + 1)) {
                (b'\r', Some(b'\n')) => {
                    let header_len = V1_SIGNATURE.len() + i + 2;
                    v1_fields(line).map(|p| Some((p, header_len)))
                }
                (b'\r', None) => {
                    // The line is complete; only its LF is missing.
                    v1_fields(line)?;
                    if window.len() == V1_MAX_LEN {
                        Err(ProxyError::TooLong)
                    } else {
                        Ok(None)
                    }
                }
                // A bare LF, or CR followed by anything but LF.
                _ => Err(ProxyError::Malformed),
            }
        }
        None => {
            v1_fields_prefix(fields)?;
            if window.len() == V1_MAX_LEN {
                Err(ProxyError::TooLong)
            } else {
                Ok(None)
            }
        }
    }
}

/// The v1 protocol tokens.
const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

/// Which v1 protocol a complete token names: `Some(false)` for `TCP4`, `Some(true)` for
/// `TCP6`, `None` for `UNKNOWN`.
fn v1_protocol(token: &[u8]) -> Result<Option<bool>, ProxyError> {
    match token {
        b"TCP4" => Ok(Some(false)),
        b"TCP6" => Ok(Some(true)),
        b"UNKNOWN" => Ok(None),
        b"" => Err(ProxyError::Malformed),
        _ => Err(ProxyError::Unsupported),
    }
}

/// Parses a complete v1 line after `PROXY ` and before CRLF (which it does not contain).
fn v1_fields(line: &[u8]) -> Result<Proxied, ProxyError> {
    let mut fields = line.split(|&b| b == b' ');
    let Some(v6) = v1_protocol(fields.next().unwrap_or_default())? else {
        // UNKNOWN: whatever follows a space is ignored.
        return Ok(Proxied::Local);
    };
    let mut next = || fields.next().ok_or(ProxyError::Malformed);
    let source_ip = v1_ip(next()?, v6).ok_or(ProxyError::Malformed)?;
    let destination_ip = v1_ip(next()?, v6).ok_or(ProxyError::Malformed)?;
    let source_port = v1_port(next()?).ok_or(ProxyError::Malformed)?;
    let destination_port = v1_port(next()?).ok_or(ProxyError::Malformed)?;
    if fields.next().is_some() {
        return Err(ProxyError::Malformed);
    }
    Ok(Proxied::Addresses {
        source: SocketAddr::new(source_ip, source_port),
        destination: SocketAddr::new(destination_ip, destination_port),
    })
}

/// Checks that `partial` (the bytes after `PROXY `, without CR or LF) can still become a
/// valid v1 line. Never rejects a prefix of a line [`v1_fields`] accepts.
fn v1_fields_prefix(partial: &[u8]) -> Result<(), ProxyError> {
    let mut fields = partial.split(|&b| b == b' ').peekable();
    let token = fields.next().unwrap_or_default();
    if fields.peek().is_none() {
        // Still receiving the protocol token.
        return if V1_PROTOCOLS.iter().any(|p| p.starts_with(token)) {
            Ok(())
        } else {
            Err(ProxyError::Unsupported)
        };
    }
    let Some(v6) = v1_protocol(token)? else {
        return Ok(());
    };
    let mut index = 0;
    while let Some(field) = fields.next() {
        let complete = fields.peek().is_some();
        let ok = match (index, complete) {
            (0 | 1, true) => v1_ip(field, v6).is_some(),
            (0 | 1, false) => v1_ip_prefix(field, v6),
            (2, true) => v1_port(field).is_some(),
            (2 | 3, false) => v1_port_prefix(field),
            // A space after the destination port, or a sixth field.
            _ => false,
        };
        if !ok {
            return Err(ProxyError::Malformed);
        }
        index += 1;
    }
    Ok(())
}

/// Parses a v1 address of the family the protocol token names. The standard library's
/// parsers take exactly the canonical forms the specification asks for (no leading zeros
/// in IPv4, at most one `::` in IPv6).
fn v1_ip(field: &[u8], v6: bool) -> Option<IpAddr> {
    let text = std::str::from_utf8(field).ok()?;
    if v6 {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Whether `field` can still become a v1 address of the family the protocol token names.
fn v1_ip_prefix(field: &[u8], v6: bool) -> bool {
    if v6 {
        ipv6_prefix(field)
    } else {
        ipv4_prefix(field)
    }
}

/// Whether `field` is the start of a dotted-quad IPv4 address without leading zeros.
fn ipv4_prefix(field: &[u8]) -> bool {
    let mut parts = 0;
    let mut last_empty = false;
    for part in field.split(|&b| b == b'.') {
        // Only the last part may still be empty.
        if last_empty {
            return false;
        }
        parts += 1;
        last_empty = part.is_empty();
        if parts > 4 || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
        if part.len() > 1 && part[0] == b'0' {
            return false;
        }
        if part.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')) > 255 {
            return false;
        }
    }
    true
}

/// Whether `field` may be the start of an IPv6 address: hex groups of at most four digits,
/// at most one `::`, and a dotted IPv4 tail only in the last group. Deliberately loose
/// (the complete field goes through [`Ipv6Addr`]'s parser); it never rejects a prefix of a
/// valid address.
fn ipv6_prefix(field: &[u8]) -> bool {
    if field.len() > IPV6_MAX_TEXT || field.windows(2).filter(|w| w == b"::").count() > 1 {
        return false;
    }
    let groups = field.split(|&b| b == b':').count();
    field.split(|&b| b == b':').enumerate().all(|(i, group)| {
        if group.contains(&b'.') {
            i + 1 == groups && ipv4_prefix(group)
        } else {
            group.len() <= 4 && group.iter().all(u8::is_ascii_hexdigit)
        }
    })
}

/// Parses a v1 port: decimal, 0–65535, no sign and no leading zeros.
fn v1_port(field: &[u8]) -> Option<u16> {
    if field.is_empty() || !v1_port_prefix(field) {
        return None;
    }
    field.iter().try_fold(0u16, |n, &d| {
        n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
    })
}

/// Whether `field` can still become a v1 port.
fn v1_port_prefix(field: &[u8]) -> bool {
    field.len() <= 5
        && field.iter().all(u8::is_ascii_digit)
        && !(field.len() > 1 && field[0] == b'0')
        && field
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
            <= u32::from(u16::MAX)
}

//! Typed attributes: decoding from and encoding to attribute values.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::TransactionId;
use super::wire::{BuildError, MAGIC_COOKIE, RawAttribute, attr_type};

/// Longest USERNAME value (RFC 8489 §14.3).
pub const MAX_USERNAME: usize = 513;
/// Longest REALM, NONCE, SOFTWARE, ALTERNATE-DOMAIN value and reason phrase (RFC 8489).
pub const MAX_TEXT: usize = 763;

/// Why an attribute value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("attribute {attr:#06x}: {kind}")]
pub struct DecodeError {
    /// The attribute type.
    pub attr: u16,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A fixed-size attribute with the wrong size, or a variable one too long.
    #[error("invalid length {0}")]
    BadLength(usize),
    /// An address family other than IPv4 (0x01) or IPv6 (0x02).
    #[error("unknown address family {0:#04x}")]
    BadFamily(u8),
    /// Text that is not UTF-8.
    #[error("not UTF-8")]
    BadUtf8,
    /// A value out of its range (an error class outside 3–6, for instance).
    #[error("value out of range")]
    BadValue,
}

fn err(attr: u16, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { attr, kind }
}

/// IP address family as STUN encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// 0x01.
    V4,
    /// 0x02.
    V6,
}

impl AddressFamily {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            AddressFamily::V4 => 1,
            AddressFamily::V6 => 2,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AddressFamily::V4),
            2 => Some(AddressFamily::V6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressFamily::V4,
            IpAddr::V6(_) => AddressFamily::V6,
        }
    }
}

/// An ERROR-CODE value (or the error part of ADDRESS-ERROR-CODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// 300–699.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl<'a> ErrorCode<'a> {
    /// An error code with its reason phrase.
    pub const fn new(code: u16, reason: &'a str) -> Self {
        Self { code, reason }
    }
}

/// One entry of PASSWORD-ALGORITHMS, or the PASSWORD-ALGORITHM value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithm<'a> {
    /// 0x0001 MD5, 0x0002 SHA-256.
    pub algorithm: u16,
    /// Algorithm parameters (empty for MD5 and SHA-256).
    pub params: &'a [u8],
}

impl PasswordAlgorithm<'_> {
    /// MD5 (RFC 8489 §18.5.1.1).
    pub const MD5: u16 = 0x0001;
    /// SHA-256 (RFC 8489 §18.5.1.2).
    pub const SHA256: u16 = 0x0002;
}

/// The PASSWORD-ALGORITHMS value: a validated list, read with [`PasswordAlgorithms::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithms<'a>(&'a [u8]);

impl<'a> PasswordAlgorithms<'a> {
    /// Validates a raw value: entries of (algorithm, length, parameters padded to 4).
    pub fn from_raw(value: &'a [u8]) -> Option<Self> {
        let mut rest = value;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let padded = (plen + 3) & !3;
            if rest.len() - 4 < padded {
                return None;
            }
            rest = &rest[4 + padded..];
        }
        Some(Self(value))
    }

    /// The raw value.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm<'a>> + 'a {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let algorithm = u16::from_be_bytes([rest[0], rest[1]]);
            let plen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let params = rest.get(4..4 + plen)?;
            rest = rest.get(4 + ((plen + 3) & !3)..).unwrap_or(&[]);
            Some(PasswordAlgorithm { algorithm, params })
        })
    }

    /// Writes a list of algorithms into `out` as a PASSWORD-ALGORITHMS value; returns the
    /// length.
    pub fn encode(list: &[PasswordAlgorithm<'_>], out: &mut [u8]) -> Result<usize, BuildError> {
        let mut n = 0;
        for a in list {
            let plen = u16::try_from(a.params.len()).map_err(|_| BuildError::InvalidValue)?;
            let padded = (a.params.len() + 3) & !3;
            let dst = out
                .get_mut(n..n + 4 + padded)
                .ok_or(BuildError::BufferTooSmall)?;
            dst[0..2].copy_from_slice(&a.algorithm.to_be_bytes());
            dst[2..4].copy_from_slice(&plen.to_be_bytes());
            dst[4..4 + a.params.len()].copy_from_slice(a.params);
            dst[4 + a.params.len()..].fill(0);
            n += 4 + padded;
        }
        Ok(n)
    }
}

/// The UNKNOWN-ATTRIBUTES value: a list of 16-bit types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAttributes<'a>(&'a [u8]);

impl<'a> UnknownAttributes<'a> {
    /// Validates a raw value (an even number of bytes).
    pub fn from_raw(value: &'a [u8]) -> Option<Self> {
        value.len().is_multiple_of(2).then_some(Self(value))
    }

    /// The raw value.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The attribute types listed.
    pub fn iter(&self) -> impl Iterator<Item = u16> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    }
}

/// A decoded attribute. Text borrows from the message; nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute<'a> {
    /// MAPPED-ADDRESS.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS.
    XorMappedAddress(SocketAddr),
    /// USERNAME.
    Username(&'a str),
    /// USERHASH (32 bytes).
    UserHash(&'a [u8; 32]),
    /// MESSAGE-INTEGRITY (20 bytes).
    MessageIntegrity(&'a [u8; 20]),
    /// MESSAGE-INTEGRITY-SHA256 (16–32 bytes, a multiple of 4).
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT.
    Fingerprint(u32),
    /// ERROR-CODE.
    ErrorCode(ErrorCode<'a>),
    /// REALM.
    Realm(&'a str),
    /// NONCE.
    Nonce(&'a str),
    /// PASSWORD-ALGORITHMS.
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    /// PASSWORD-ALGORITHM.
    PasswordAlgorithm(PasswordAlgorithm<'a>),
    /// UNKNOWN-ATTRIBUTES.
    UnknownAttributes(UnknownAttributes<'a>),
    /// SOFTWARE.
    Software(&'a str),
    /// ALTERNATE-SERVER.
    AlternateServer(SocketAddr),
    /// ALTERNATE-DOMAIN.
    AlternateDomain(&'a str),
    /// CHANNEL-NUMBER.
    ChannelNumber(u16),
    /// LIFETIME, in seconds.
    Lifetime(u32),
    /// XOR-PEER-ADDRESS.
    XorPeerAddress(SocketAddr),
    /// DATA.
    Data(&'a [u8]),
    /// XOR-RELAYED-ADDRESS.
    XorRelayedAddress(SocketAddr),
    /// REQUESTED-ADDRESS-FAMILY.
    RequestedAddressFamily(AddressFamily),
    /// EVEN-PORT; `true` when the R bit asks to reserve the next port.
    EvenPort(bool),
    /// REQUESTED-TRANSPORT: the IP protocol number (17 UDP, 6 TCP).
    RequestedTransport(u8),
    /// DONT-FRAGMENT.
    DontFragment,
    /// RESERVATION-TOKEN.
    ReservationToken([u8; 8]),
    /// ADDITIONAL-ADDRESS-FAMILY.
    AdditionalAddressFamily(AddressFamily),
    /// ADDRESS-ERROR-CODE.
    AddressErrorCode(AddressFamily, ErrorCode<'a>),
    /// ICMP.
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Error data.
        data: u32,
    },
    /// CONNECTION-ID.
    ConnectionId(u32),
    /// CHANGE-REQUEST (RFC 5780): answer from the other IP and/or port.
    ChangeRequest {
        /// The "change IP" flag (0x04).
        ip: bool,
        /// The "change port" flag (0x02).
        port: bool,
    },
    /// RESPONSE-PORT (RFC 5780): the port to send the response to.
    ResponsePort(u16),
    /// PADDING (RFC 5780): its content does not matter, only its length.
    Padding(&'a [u8]),
    /// RESPONSE-ORIGIN (RFC 5780): where the response was sent from.
    ResponseOrigin(SocketAddr),
    /// OTHER-ADDRESS (RFC 5780): the server's other IP and port.
    OtherAddress(SocketAddr),
    /// Any other type, undecoded.
    Unknown {
        /// The type.
        typ: u16,
        /// The value.
        value: &'a [u8],
    },
}

fn fixed<const N: usize>(attr: u16, v: &[u8]) -> Result<&[u8; N], DecodeError> {
    v.try_into()
        .map_err(|_| err(attr, DecodeErrorKind::BadLength(v.len())))
}

fn text(attr: u16, v: &[u8], max: usize) -> Result<&str, DecodeError> {
    if v.len() > max {
        return Err(err(attr, DecodeErrorKind::BadLength(v.len())));
    }
    std::str::from_utf8(v).map_err(|_| err(attr, DecodeErrorKind::BadUtf8))
}

fn family(attr: u16, v: u8) -> Result<AddressFamily, DecodeError> {
    AddressFamily::from_u8(v).ok_or(err(attr, DecodeErrorKind::BadFamily(v)))
}

/// The 16 bytes an IPv6 X-Address is XORed with: the magic cookie then the transaction id.
fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[4..].copy_from_slice(&tid.0);
    m
}

fn decode_address(
    attr: u16,
    v: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, DecodeError> {
    if v.len() < 4 {
        return Err(err(attr, DecodeErrorKind::BadLength(v.len())));
    }
    let fam = family(attr, v[1])?;
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match fam {
        AddressFamily::V4 => {
            let b: &[u8; 4] = fixed::<4>(attr, &v[4..])
                .map_err(|_| err(attr, DecodeErrorKind::BadLength(v.len())))?;
            let mut a = u32::from_be_bytes(*b);
            if xor.is_some() {
                a ^= MAGIC_COOKIE;
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        AddressFamily::V6 => {
            let b: &[u8; 16] = fixed::<16>(attr, &v[4..])
                .map_err(|_| err(attr, DecodeErrorKind::BadLength(v.len())))?;
            let mut a = *b;
            if let Some(tid) = xor {
                for (x, m) in a.iter_mut().zip(xor_mask(tid)) {
                    *x ^= m;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn encode_address(
    addr: &SocketAddr,
    xor: Option<&TransactionId>,
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let len = if addr.is_ipv4() { 8 } else { 20 };
    let out = out.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
    out[0] = 0;
    out[1] = AddressFamily::of(addr.ip()).to_u8();
    let mut port = addr.port();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            let mut a = u32::from(ip);
            if xor.is_some() {
                a ^= MAGIC_COOKIE;
            }
            out[4..8].copy_from_slice(&a.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            let mut a = ip.octets();
            if let Some(tid) = xor {
                for (x, m) in a.iter_mut().zip(xor_mask(tid)) {
                    *x ^= m;
                }
            }
            out[4..20].copy_from_slice(&a);
        }
    }
    Ok(len)
}

fn decode_error_code(attr: u16, v: &[u8]) -> Result<ErrorCode<'_>, DecodeError> {
    if v.len() < 4 {
        return Err(err(attr, DecodeErrorKind::BadLength(v.len())));
    }
    let class = u16::from(v[2] & 0x07);
    let number = u16::from(v[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(err(attr, DecodeErrorKind::BadValue));
    }
    let reason = text(attr, &v[4..], MAX_TEXT)?;
    Ok(ErrorCode {
        code: class * 100 + number,
        reason,
    })
}

fn encode_error_code(first: u8, e: &ErrorCode<'_>, out: &mut [u8]) -> Result<usize, BuildError> {
    if !(300..=699).contains(&e.code) || e.reason.len() > MAX_TEXT {
        return Err(BuildError::InvalidValue);
    }
    let len = 4 + e.reason.len();
    let out = out.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
    out[0] = first;
    out[1] = 0;
    out[2] = (e.code / 100) as u8;
    out[3] = (e.code % 100) as u8;
    out[4..].copy_from_slice(e.reason.as_bytes());
    Ok(len)
}

fn put(out: &mut [u8], bytes: &[u8]) -> Result<usize, BuildError> {
    out.get_mut(..bytes.len())
        .ok_or(BuildError::BufferTooSmall)?
        .copy_from_slice(bytes);
    Ok(bytes.len())
}

impl<'a> Attribute<'a> {
    /// Decodes a raw attribute; `tid` un-XORs the XOR-*-ADDRESS types.
    pub fn decode(raw: RawAttribute<'a>, tid: &TransactionId) -> Result<Self, DecodeError> {
        use attr_type as t;
        let v = raw.value;
        let a = raw.typ;
        let bad_len = || err(a, DecodeErrorKind::BadLength(v.len()));
        Ok(match a {
            t::MAPPED_ADDRESS => Attribute::MappedAddress(decode_address(a, v, None)?),
            t::XOR_MAPPED_ADDRESS => Attribute::XorMappedAddress(decode_address(a, v, Some(tid))?),
            t::ALTERNATE_SERVER => Attribute::AlternateServer(decode_address(a, v, None)?),
            t::XOR_PEER_ADDRESS => Attribute::XorPeerAddress(decode_address(a, v, Some(tid))?),
            t::XOR_RELAYED_ADDRESS => {
                Attribute::XorRelayedAddress(decode_address(a, v, Some(tid))?)
            }
            // RFC 8489 §14.3: senders stay under 509 bytes, but a receiver MUST parse up to 763.
            t::USERNAME => Attribute::Username(text(a, v, MAX_TEXT)?),
            t::REALM => Attribute::Realm(text(a, v, MAX_TEXT)?),
            t::NONCE => Attribute::Nonce(text(a, v, MAX_TEXT)?),
            t::SOFTWARE => Attribute::Software(text(a, v, MAX_TEXT)?),
            t::ALTERNATE_DOMAIN => Attribute::AlternateDomain(text(a, v, MAX_TEXT)?),
            t::USERHASH => Attribute::UserHash(fixed::<32>(a, v)?),
            t::MESSAGE_INTEGRITY => Attribute::MessageIntegrity(fixed::<20>(a, v)?),
            t::MESSAGE_INTEGRITY_SHA256 => {
                if !(16..=32).contains(&v.len()) || !v.len().is_multiple_of(4) {
                    return Err(bad_len());
                }
                Attribute::MessageIntegritySha256(v)
            }
            t::FINGERPRINT => Attribute::Fingerprint(u32::from_be_bytes(*fixed::<4>(a, v)?)),
            t::ERROR_CODE => Attribute::ErrorCode(decode_error_code(a, v)?),
            t::PASSWORD_ALGORITHMS => {
                Attribute::PasswordAlgorithms(PasswordAlgorithms::from_raw(v).ok_or_else(bad_len)?)
            }
            t::PASSWORD_ALGORITHM => {
                let pa = PasswordAlgorithms::from_raw(v).ok_or_else(bad_len)?;
                let mut it = pa.iter();
                let first = it.next().ok_or_else(bad_len)?;
                if it.next().is_some() {
                    return Err(bad_len());
                }
                Attribute::PasswordAlgorithm(first)
            }
            t::UNKNOWN_ATTRIBUTES => {
                Attribute::UnknownAttributes(UnknownAttributes::from_raw(v).ok_or_else(bad_len)?)
            }
            t::CHANNEL_NUMBER => {
                let b = fixed::<4>(a, v)?;
                Attribute::ChannelNumber(u16::from_be_bytes([b[0], b[1]]))
            }
            t::LIFETIME => Attribute::Lifetime(u32::from_be_bytes(*fixed::<4>(a, v)?)),
            t::DATA => Attribute::Data(v),
            t::REQUESTED_ADDRESS_FAMILY => {
                Attribute::RequestedAddressFamily(family(a, fixed::<4>(a, v)?[0])?)
            }
            t::ADDITIONAL_ADDRESS_FAMILY => {
                Attribute::AdditionalAddressFamily(family(a, fixed::<4>(a, v)?[0])?)
            }
            t::EVEN_PORT => Attribute::EvenPort(fixed::<1>(a, v)?[0] & 0x80 != 0),
            t::REQUESTED_TRANSPORT => Attribute::RequestedTransport(fixed::<4>(a, v)?[0]),
            t::DONT_FRAGMENT => {
                if !v.is_empty() {
                    return Err(bad_len());
                }
                Attribute::DontFragment
            }
            t::RESERVATION_TOKEN => Attribute::ReservationToken(*fixed::<8>(a, v)?),
            t::ADDRESS_ERROR_CODE => {
                let e = decode_error_code(a, v)?;
                Attribute::AddressErrorCode(family(a, v[0])?, e)
            }
            t::ICMP => {
                let b = fixed::<8>(a, v)?;
                Attribute::Icmp {
                    icmp_type: b[2],
                    code: b[3],
                    data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                }
            }
            t::CONNECTION_ID => Attribute::ConnectionId(u32::from_be_bytes(*fixed::<4>(a, v)?)),
            t::CHANGE_REQUEST => {
                let flags = fixed::<4>(a, v)?[3];
                Attribute::ChangeRequest {
                    ip: flags & 0x04 != 0,
                    port: flags & 0x02 != 0,
                }
            }
            t::RESPONSE_PORT => {
                let b = fixed::<4>(a, v)?;
                Attribute::ResponsePort(u16::from_be_bytes([b[0], b[1]]))
            }
            t::PADDING => Attribute::Padding(v),
            t::RESPONSE_ORIGIN => Attribute::ResponseOrigin(decode_address(a, v, None)?),
            t::OTHER_ADDRESS => Attribute::OtherAddress(decode_address(a, v, None)?),
            _ => Attribute::Unknown { typ: a, value: v },
        })
    }

    /// The attribute type code.
    pub fn typ(&self) -> u16 {
        use attr_type as t;
        match self {
            Attribute::MappedAddress(_) => t::MAPPED_ADDRESS,
            Attribute::XorMappedAddress(_) => t::XOR_MAPPED_ADDRESS,
            Attribute::Username(_) => t::USERNAME,
            Attribute::UserHash(_) => t::USERHASH,
            Attribute::MessageIntegrity(_) => t::MESSAGE_INTEGRITY,
            Attribute::MessageIntegritySha256(_) => t::MESSAGE_INTEGRITY_SHA256,
            Attribute::Fingerprint(_) => t::FINGERPRINT,
            Attribute::ErrorCode(_) => t::ERROR_CODE,
            Attribute::Realm(_) => t::REALM,
            Attribute::Nonce(_) => t::NONCE,
            Attribute::PasswordAlgorithms(_) => t::PASSWORD_ALGORITHMS,
            Attribute::PasswordAlgorithm(_) => t::PASSWORD_ALGORITHM,
            Attribute::UnknownAttributes(_) => t::UNKNOWN_ATTRIBUTES,
            Attribute::Software(_) => t::SOFTWARE,
            Attribute::AlternateServer(_) => t::ALTERNATE_SERVER,
            Attribute::AlternateDomain(_) => t::ALTERNATE_DOMAIN,
            Attribute::ChannelNumber(_) => t::CHANNEL_NUMBER,
            Attribute::Lifetime(_) => t::LIFETIME,
            Attribute::XorPeerAddress(_) => t::XOR_PEER_ADDRESS,
            Attribute::Data(_) => t::DATA,
            Attribute::XorRelayedAddress(_) => t::XOR_RELAYED_ADDRESS,
            Attribute::RequestedAddressFamily(_) => t::REQUESTED_ADDRESS_FAMILY,
            Attribute::EvenPort(_) => t::EVEN_PORT,
            Attribute::RequestedTransport(_) => t::REQUESTED_TRANSPORT,
            Attribute::DontFragment => t::DONT_FRAGMENT,
            Attribute::ReservationToken(_) => t::RESERVATION_TOKEN,
            Attribute::AdditionalAddressFamily(_) => t::ADDITIONAL_ADDRESS_FAMILY,
            Attribute::AddressErrorCode(..) => t::ADDRESS_ERROR_CODE,
            Attribute::Icmp { .. } => t::ICMP,
            Attribute::ConnectionId(_) => t::CONNECTION_ID,
            Attribute::ChangeRequest { .. } => t::CHANGE_REQUEST,
            Attribute::ResponsePort(_) => t::RESPONSE_PORT,
            Attribute::Padding(_) => t::PADDING,
            Attribute::ResponseOrigin(_) => t::RESPONSE_ORIGIN,
            Attribute::OtherAddress(_) => t::OTHER_ADDRESS,
            Attribute::Unknown { typ, .. } => *typ,
        }
    }

    /// Writes the value (without header or padding) into `out`; returns its length.
    /// Fails when `out` is too small or the value cannot be encoded (text too long, an
    /// error code outside 300–699, a MESSAGE-INTEGRITY-SHA256 of a bad size).
    pub fn encode_value(&self, tid: &TransactionId, out: &mut [u8]) -> Result<usize, BuildError> {
        let text_max = |s: &str, max: usize| {
            if s.len() <= max {
                Ok(())
            } else {
                Err(BuildError::InvalidValue)
            }
        };
        match self {
            Attribute::MappedAddress(a)
            | Attribute::AlternateServer(a)
            | Attribute::ResponseOrigin(a)
            | Attribute::OtherAddress(a) => encode_address(a, None, out),
            Attribute::ChangeRequest { ip, port } => {
                let flags = if *ip { 0x04 } else { 0 } | if *port { 0x02 } else { 0 };
                put(out, &[0, 0, 0, flags])
            }
            Attribute::ResponsePort(p) => {
                let b = p.to_be_bytes();
                put(out, &[b[0], b[1], 0, 0])
            }
            Attribute::Padding(d) => put(out, d),
            Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => encode_address(a, Some(tid), out),
            Attribute::Username(s) => {
                text_max(s, MAX_USERNAME)?;
                put(out, s.as_bytes())
            }
            Attribute::Realm(s)
            | Attribute::Nonce(s)
            | Attribute::Software(s)
            | Attribute::AlternateDomain(s) => {
                text_max(s, MAX_TEXT)?;
                put(out, s.as_bytes())
            }
            Attribute::UserHash(h) => put(out, &h[..]),
            Attribute::MessageIntegrity(m) => put(out, &m[..]),
            Attribute::MessageIntegritySha256(m) => {
                if !(16..=32).contains(&m.len()) || m.len() % 4 != 0 {
                    return Err(BuildError::InvalidValue);
                }
                put(out, m)
            }
            Attribute::Fingerprint(f) => put(out, &f.to_be_bytes()),
            Attribute::ErrorCode(e) => encode_error_code(0, e, out),
            Attribute::PasswordAlgorithms(p) => put(out, p.as_bytes()),
            Attribute::PasswordAlgorithm(p) => PasswordAlgorithms::encode(&[*p], out),
            Attribute::UnknownAttributes(u) => put(out, u.as_bytes()),
            Attribute::ChannelNumber(n) => {
                let b = n.to_be_bytes();
                put(out, &[b[0], b[1], 0, 0])
            }
            Attribute::Lifetime(l) | Attribute::ConnectionId(l) => put(out, &l.to_be_bytes()),
            Attribute::Data(d) => put(out, d),
            Attribute::RequestedAddressFamily(f) | Attribute::AdditionalAddressFamily(f) => {
                put(out, &[f.to_u8(), 0, 0, 0])
            }
            Attribute::EvenPort(r) => put(out, &[if *r { 0x80 } else { 0 }]),
            Attribute::RequestedTransport(p) => put(out, &[*p, 0, 0, 0]),
            Attribute::DontFragment => Ok(0),
            Attribute::ReservationToken(t) => put(out, t),
            Attribute::AddressErrorCode(f, e) => encode_error_code(f.to_u8(), e, out),
            Attribute::Icmp {
                icmp_type,
                code,
                data,
            } => {
                let d = data.to_be_bytes();
                put(out, &[0, 0, *icmp_type, *code, d[0], d[1], d[2], d[3]])
            }
            Attribute::Unknown { value, .. } => put(out, value),
        }
    }
}

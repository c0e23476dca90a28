//! Property tests for the STUN codec: typed attributes round-trip through the builder and the
//! parser; arbitrary and mutated input never panics; MESSAGE-INTEGRITY(-SHA256) and
//! FINGERPRINT written by the builder verify and break on any single-byte change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use ternd::stun::channel::{ChannelData, ChannelRange};
use ternd::stun::stream::{self, FrameKind, StreamBuffer};
use ternd::stun::{
    AddressFamily, Attribute, BuildError, Class, ErrorCode, HEADER_LEN, IntegrityError, Message,
    MessageBuilder, MessageType, Method, PasswordAlgorithm, PasswordAlgorithms, TransactionId,
    UnknownAttributes, attr_type, hmac_sha256,
};

// ---------------------------------------------------------------------------------------------
// Owned attributes (the codec's `Attribute` borrows) and one strategy per variant.

#[derive(Debug, Clone, PartialEq)]
enum Owned {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    XorPeerAddress(SocketAddr),
    XorRelayedAddress(SocketAddr),
    AlternateServer(SocketAddr),
    ResponseOrigin(SocketAddr),
    OtherAddress(SocketAddr),
    ChangeRequest(bool, bool),
    ResponsePort(u16),
    Padding(Vec<u8>),
    Username(String),
    Realm(String),
    Nonce(String),
    Software(String),
    AlternateDomain(String),
    UserHash([u8; 32]),
    ErrorCode(u16, String),
    AddressErrorCode(AddressFamily, u16, String),
    /// Raw PASSWORD-ALGORITHMS value, encoded from the list alongside.
    PasswordAlgorithms(Vec<u8>, Vec<(u16, Vec<u8>)>),
    PasswordAlgorithm(u16, Vec<u8>),
    /// Raw UNKNOWN-ATTRIBUTES value and the list it encodes.
    UnknownAttributes(Vec<u8>, Vec<u16>),
    ChannelNumber(u16),
    Lifetime(u32),
    ConnectionId(u32),
    Data(Vec<u8>),
    RequestedAddressFamily(AddressFamily),
    AdditionalAddressFamily(AddressFamily),
    EvenPort(bool),
    RequestedTransport(u8),
    DontFragment,
    ReservationToken([u8; 8]),
    Icmp(u8, u8, u32),
    Unknown(u16, Vec<u8>),
    MessageIntegrity([u8; 20]),
    MessageIntegritySha256(Vec<u8>),
    Fingerprint(u32),
}

impl Owned {
    fn as_attr(&self) -> Attribute<'_> {
        match self {
            Owned::MappedAddress(a) => Attribute::MappedAddress(*a),
            Owned::XorMappedAddress(a) => Attribute::XorMappedAddress(*a),
            Owned::XorPeerAddress(a) => Attribute::XorPeerAddress(*a),
            Owned::XorRelayedAddress(a) => Attribute::XorRelayedAddress(*a),
            Owned::AlternateServer(a) => Attribute::AlternateServer(*a),
            Owned::ResponseOrigin(a) => Attribute::ResponseOrigin(*a),
            Owned::OtherAddress(a) => Attribute::OtherAddress(*a),
            Owned::ChangeRequest(ip, port) => Attribute::ChangeRequest {
                ip: *ip,
                port: *port,
            },
            Owned::ResponsePort(p) => Attribute::ResponsePort(*p),
            Owned::Padding(d) => Attribute::Padding(d),
            Owned::Username(s) => Attribute::Username(s),
            Owned::Realm(s) => Attribute::Realm(s),
            Owned::Nonce(s) => Attribute::Nonce(s),
            Owned::Software(s) => Attribute::Software(s),
            Owned::AlternateDomain(s) => Attribute::AlternateDomain(s),
            Owned::UserHash(h) => Attribute::UserHash(h),
            Owned::ErrorCode(c, r) => Attribute::ErrorCode(ErrorCode::new(*c, r)),
            Owned::AddressErrorCode(f, c, r) => {
                Attribute::AddressErrorCode(*f, ErrorCode::new(*c, r))
            }
            Owned::PasswordAlgorithms(raw, _) => Attribute::PasswordAlgorithms(
                PasswordAlgorithms::from_raw(raw).expect("valid list"),
            ),
            Owned::PasswordAlgorithm(a, p) => Attribute::PasswordAlgorithm(PasswordAlgorithm {
                algorithm: *a,
                params: p,
            }),
            Owned::UnknownAttributes(raw, _) => {
                Attribute::UnknownAttributes(UnknownAttributes::from_raw(raw).expect("even length"))
            }
            Owned::ChannelNumber(n) => Attribute::ChannelNumber(*n),
            Owned::Lifetime(l) => Attribute::Lifetime(*l),
            Owned::ConnectionId(c) => Attribute::ConnectionId(*c),
            Owned::Data(d) => Attribute::Data(d),
            Owned::RequestedAddressFamily(f) => Attribute::RequestedAddressFamily(*f),
            Owned::AdditionalAddressFamily(f) => Attribute::AdditionalAddressFamily(*f),
            Owned::EvenPort(r) => Attribute::EvenPort(*r),
            Owned::RequestedTransport(p) => Attribute::RequestedTransport(*p),
            Owned::DontFragment => Attribute::DontFragment,
            Owned::ReservationToken(t) => Attribute::ReservationToken(*t),
            Owned::Icmp(t, c, d) => Attribute::Icmp {
                icmp_type: *t,
                code: *c,
                data: *d,
            },
            Owned::Unknown(t, v) => Attribute::Unknown { typ: *t, value: v },
            Owned::MessageIntegrity(m) => Attribute::MessageIntegrity(m),
            Owned::MessageIntegritySha256(m) => Attribute::MessageIntegritySha256(m),
            Owned::Fingerprint(f) => Attribute::Fingerprint(*f),
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
    ]
}

/// Arbitrary UTF-8 of at most `max_bytes` bytes (whole characters only).
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_bytes).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > max_bytes {
                break;
            }
            s.push(c);
        }
        s
    })
}

/// ASCII text exactly `n` bytes long, to sit on the size limits.
fn ascii_exact(n: usize) -> impl Strategy<Value = String> {
    vec(0x20u8..0x7f, n).prop_map(|b| String::from_utf8(b).unwrap())
}

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::V4), Just(AddressFamily::V6)]
}

fn error_code() -> impl Strategy<Value = (u16, String)> {
    (300u16..=699, text(763))
}

fn unknown_type() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("type must be unknown to ternd", |t| {
        !attr_type::is_known(*t)
    })
}

const MAX_USERNAME: usize = 513;
const MAX_TEXT: usize = 763;

/// Every typed attribute that may appear before MESSAGE-INTEGRITY.
fn body_attr() -> impl Strategy<Value = Owned> {
    let addresses = prop_oneof![
        socket_addr().prop_map(Owned::MappedAddress),
        socket_addr().prop_map(Owned::XorMappedAddress),
        socket_addr().prop_map(Owned::XorPeerAddress),
        socket_addr().prop_map(Owned::XorRelayedAddress),
        socket_addr().prop_map(Owned::AlternateServer),
        socket_addr().prop_map(Owned::ResponseOrigin),
        socket_addr().prop_map(Owned::OtherAddress),
    ];
    let texts = prop_oneof![
        text(MAX_USERNAME).prop_map(Owned::Username),
        ascii_exact(MAX_USERNAME).prop_map(Owned::Username),
        text(MAX_TEXT).prop_map(Owned::Realm),
        text(MAX_TEXT).prop_map(Owned::Nonce),
        ascii_exact(MAX_TEXT).prop_map(Owned::Nonce),
        text(MAX_TEXT).prop_map(Owned::Software),
        text(MAX_TEXT).prop_map(Owned::AlternateDomain),
    ];
    let codes = prop_oneof![
        error_code().prop_map(|(c, r)| Owned::ErrorCode(c, r)),
        (family(), error_code()).prop_map(|(f, (c, r))| Owned::AddressErrorCode(f, c, r)),
    ];
    let lists = prop_oneof![
        vec((any::<u16>(), vec(any::<u8>(), 0..12)), 0..6).prop_map(|list| {
            let entries: Vec<PasswordAlgorithm<'_>> = list
                .iter()
                .map(|(a, p)| PasswordAlgorithm {
                    algorithm: *a,
                    params: p,
                })
                .collect();
            let mut raw = vec![0u8; 6 * 16];
            let n = PasswordAlgorithms::encode(&entries, &mut raw).unwrap();
            raw.truncate(n);
            Owned::PasswordAlgorithms(raw, list)
        }),
        (any::<u16>(), vec(any::<u8>(), 0..12)).prop_map(|(a, p)| Owned::PasswordAlgorithm(a, p)),
        vec(any::<u16>(), 0..12).prop_map(|types| {
            let raw = types.iter().flat_map(|t| t.to_be_bytes()).collect();
            Owned::UnknownAttributes(raw, types)
        }),
    ];
    let scalars = prop_oneof![
        any::<u16>().prop_map(Owned::ChannelNumber),
        any::<u32>().prop_map(Owned::Lifetime),
        any::<u32>().prop_map(Owned::ConnectionId),
        family().prop_map(Owned::RequestedAddressFamily),
        family().prop_map(Owned::AdditionalAddressFamily),
        any::<bool>().prop_map(Owned::EvenPort),
        any::<u8>().prop_map(Owned::RequestedTransport),
        Just(Owned::DontFragment),
        any::<[u8; 8]>().prop_map(Owned::ReservationToken),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(t, c, d)| Owned::Icmp(t, c, d)),
        any::<[u8; 32]>().prop_map(Owned::UserHash),
        (any::<bool>(), any::<bool>()).prop_map(|(i, p)| Owned::ChangeRequest(i, p)),
        any::<u16>().prop_map(Owned::ResponsePort),
    ];
    let opaque = prop_oneof![
        vec(any::<u8>(), 0..=2000).prop_map(Owned::Data),
        vec(any::<u8>(), 0..=1600).prop_map(Owned::Padding),
        (unknown_type(), vec(any::<u8>(), 0..300)).prop_map(|(t, v)| Owned::Unknown(t, v)),
    ];
    prop_oneof![addresses, texts, codes, lists, scalars, opaque]
}

/// The optional tail, in the only order the parser and iterator honour.
fn tail_attrs() -> impl Strategy<Value = Vec<Owned>> {
    (
        proptest::option::of(any::<[u8; 20]>()),
        proptest::option::of((0usize..5).prop_flat_map(|k| vec(any::<u8>(), 16 + 4 * k))),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(mi, mi256, fp)| {
            let mut v = Vec::new();
            v.extend(mi.map(Owned::MessageIntegrity));
            v.extend(mi256.map(Owned::MessageIntegritySha256));
            v.extend(fp.map(Owned::Fingerprint));
            v
        })
}

fn message_type() -> impl Strategy<Value = MessageType> {
    (
        0u16..0x1000,
        prop_oneof![
            Just(Class::Request),
            Just(Class::Indication),
            Just(Class::Success),
            Just(Class::Error)
        ],
    )
        .prop_map(|(m, c)| MessageType::new(Method(m), c))
}

fn build(typ: MessageType, tid: TransactionId, attrs: &[Owned]) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let mut b = MessageBuilder::new(&mut buf, typ, tid).unwrap();
    for a in attrs {
        b.add(&a.as_attr())
            .unwrap_or_else(|e| panic!("add {a:?}: {e}"));
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

// ---------------------------------------------------------------------------------------------
// (b) helpers: run every read path on some bytes; a panic fails the test.

fn exercise(bytes: &[u8]) {
    for allow_rfc3489 in [false, true] {
        let opts = ternd::stun::ParseOptions {
            allow_rfc3489,
            ..Default::default()
        };
        if let Ok(m) = Message::parse_with(bytes, opts) {
            let tid = m.transaction_id();
            let _ = (
                m.message_type(),
                m.cookie(),
                m.attribute_count(),
                m.is_rfc3489(),
            );
            for raw in m.attributes() {
                let _ = raw.is_comprehension_required();
                if let Ok(a) = Attribute::decode(raw, &tid) {
                    let _ = a.typ();
                    match a {
                        Attribute::PasswordAlgorithms(p) => p.iter().for_each(drop),
                        Attribute::UnknownAttributes(u) => u.iter().for_each(drop),
                        _ => {}
                    }
                    // Whatever decodes can be re-encoded (or refused) without panicking.
                    let mut out = vec![0u8; 65_536];
                    let _ = a.encode_value(&tid, &mut out);
                }
            }
            for t in [
                attr_type::USERNAME,
                attr_type::XOR_MAPPED_ADDRESS,
                attr_type::FINGERPRINT,
            ] {
                let _ = m.get_decoded(t);
            }
            let mut unknown = [0u16; 3];
            let _ = m.unknown_comprehension_required(attr_type::is_known, &mut unknown);
            let _ = m.unknown_comprehension_required(attr_type::is_known, &mut []);
            let _ = m.verify_integrity(b"key");
            let _ = m.verify_integrity(&[]);
            let _ = m.verify_integrity_sha256(b"key");
            let _ = m.verify_fingerprint();
        }
    }
    for range in [ChannelRange::RFC8656, ChannelRange::RFC5766] {
        let _ = ChannelData::parse(bytes, range);
        for max in [0, 4, 20, 100, 1500, 65_556] {
            let _ = stream::next_frame(bytes, range, max);
        }
    }
}

/// Feeds `bytes` into a [`StreamBuffer`] in the given chunk sizes; returns the frames, and
/// whether the stream ended in a framing error.
fn feed(
    bytes: &[u8],
    chunks: &[usize],
    max_frame: usize,
    range: ChannelRange,
) -> (Vec<(FrameKind, Vec<u8>)>, bool) {
    let mut sb = StreamBuffer::new(max_frame, range);
    let mut frames = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let space = sb.space();
        let n = sizes
            .next()
            .unwrap_or(1)
            .max(1)
            .min(rest.len())
            .min(space.len());
        // A full buffer with no frame would have been reported as an error already.
        assert!(n != 0, "StreamBuffer has no space but reported no error");
        space[..n].copy_from_slice(&rest[..n]);
        sb.filled(n);
        rest = &rest[n..];
        loop {
            match sb.next_frame() {
                Ok(Some((k, f))) => frames.push((k, f.to_vec())),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
        assert!(sb.pending() <= max_frame.max(HEADER_LEN));
    }
    (frames, false)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
    SetU16(usize, u16),
    SetHeaderLength(u16),
    SetAttrLength(usize, u16),
    SetAttrType(usize, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        (any::<usize>(), any::<u16>()).prop_map(|(i, v)| Mutation::SetU16(i, v)),
        any::<u16>().prop_map(Mutation::SetHeaderLength),
        (any::<usize>(), any::<u16>()).prop_map(|(i, v)| Mutation::SetAttrLength(i, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just(attr_type::MESSAGE_INTEGRITY),
                Just(attr_type::MESSAGE_INTEGRITY_SHA256),
                Just(attr_type::FINGERPRINT),
                any::<u16>()
            ]
        )
            .prop_map(|(i, t)| Mutation::SetAttrType(i, t)),
    ]
}

/// Offsets of the attribute headers, following lengths for as long as they fit.
fn attr_headers(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at + 4 <= b.len() {
        out.push(at);
        let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
        at += 4 + ((len + 3) & !3);
    }
    out
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(i, x) if !b.is_empty() => {
            let i = i % b.len();
            b[i] ^= x;
        }
        Mutation::Truncate(n) => b.truncate(n % (b.len() + 1)),
        Mutation::Extend(more) => b.extend_from_slice(more),
        Mutation::SetU16(i, v) if b.len() >= 2 => {
            let i = i % (b.len() - 1);
            b[i..i + 2].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::SetHeaderLength(v) if b.len() >= 4 => b[2..4].copy_from_slice(&v.to_be_bytes()),
        Mutation::SetAttrLength(i, v) | Mutation::SetAttrType(i, v) => {
            let heads = attr_headers(b);
            if !heads.is_empty() {
                let at = heads[i % heads.len()];
                let off = if matches!(m, Mutation::SetAttrLength(..)) {
                    at + 2
                } else {
                    at
                };
                b[off..off + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        _ => {}
    }
}

fn channel_frame() -> impl Strategy<Value = Vec<u8>> {
    (0x4000u16..=0x4FFF, vec(any::<u8>(), 0..300)).prop_map(|(ch, data)| {
        let mut out = vec![0u8; 4 + data.len() + 3];
        let n = ChannelData::encode(ch, &data, true, &mut out).unwrap();
        out.truncate(n);
        out
    })
}

/// Message types whose first byte is 0–3, which RFC 7983 (and so `classify` and the stream
/// framer) treats as STUN: methods below 0x100.
fn demuxable_message_type() -> impl Strategy<Value = MessageType> {
    message_type().prop_map(|t| MessageType::new(Method(t.method.0 & 0xFF), t.class))
}

fn valid_message() -> impl Strategy<Value = Vec<u8>> {
    (
        demuxable_message_type(),
        any::<[u8; 12]>(),
        vec(body_attr(), 0..6),
        proptest::option::of(vec(any::<u8>(), 0..40)),
        proptest::option::of(vec(any::<u8>(), 0..40)),
        any::<bool>(),
    )
        .prop_map(|(typ, tid, attrs, key, key256, fp)| {
            let mut buf = vec![0u8; 70_000];
            let mut b = MessageBuilder::new(&mut buf, typ, TransactionId(tid)).unwrap();
            for a in &attrs {
                b.add(&a.as_attr()).unwrap();
            }
            if let Some(k) = key {
                b.add_message_integrity(&k).unwrap();
            }
            if let Some(k) = key256 {
                b.add_message_integrity_sha256(&k).unwrap();
            }
            if fp {
                b.add_fingerprint().unwrap();
            }
            let n = b.finish();
            buf.truncate(n);
            buf
        })
}

// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Every typed attribute survives builder → parser → decode, in order.
    #[test]
    fn attributes_round_trip(
        typ in message_type(),
        tid in any::<[u8; 12]>(),
        body in vec(body_attr(), 1..8),
        tail in tail_attrs(),
    ) {
        let tid = TransactionId(tid);
        let attrs: Vec<Owned> = body.into_iter().chain(tail).collect();
        let bytes = build(typ, tid, &attrs);
        prop_assert_eq!(bytes.len() % 4, 0);
        let m = Message::parse(&bytes).expect("own message parses");
        prop_assert_eq!(m.message_type(), typ);
        prop_assert_eq!(m.transaction_id(), tid);
        prop_assert_eq!(m.attribute_count(), attrs.len());
        let decoded: Vec<Attribute<'_>> = m
            .attributes()
            .map(|raw| Attribute::decode(raw, &tid).expect("own attribute decodes"))
            .collect();
        let expected: Vec<Attribute<'_>> = attrs.iter().map(Owned::as_attr).collect();
        prop_assert_eq!(&decoded, &expected);
        // The lists read back entry by entry too.
        for (d, o) in decoded.iter().zip(&attrs) {
            match (d, o) {
                (Attribute::PasswordAlgorithms(p), Owned::PasswordAlgorithms(_, list)) => {
                    let got: Vec<(u16, Vec<u8>)> = p.iter().map(|e| (e.algorithm, e.params.to_vec())).collect();
                    prop_assert_eq!(&got, list);
                }
                (Attribute::UnknownAttributes(u), Owned::UnknownAttributes(_, list)) => {
                    prop_assert_eq!(&u.iter().collect::<Vec<_>>(), list);
                }
                _ => {}
            }
        }
        // `get_decoded` finds the first of a type.
        let first = &expected[0];
        prop_assert_eq!(
            m.get_decoded(first.typ()),
            Some(Ok(*expected.iter().find(|a| a.typ() == first.typ()).unwrap()))
        );
        // Re-encoding what was decoded gives the same bytes.
        let mut again = vec![0u8; 70_000];
        let mut b = MessageBuilder::new(&mut again, m.message_type(), m.transaction_id()).unwrap();
        for a in &decoded {
            b.add(a).unwrap();
        }
        let n = b.finish();
        prop_assert_eq!(&again[..n], &bytes[..]);
    }

    /// (a) The size limits. The encoder refuses one byte over its limit; the decoder accepts up
    /// to its own limit and refuses one byte more. For USERNAME the two differ: RFC 8489 §14.3
    /// has senders stay short but requires receivers to parse up to 763 bytes.
    #[test]
    fn text_limits(which in 0usize..5, extra in 1usize..4, under in 0usize..3) {
        let (typ, enc_max, dec_max) = [
            (attr_type::USERNAME, MAX_USERNAME, MAX_TEXT),
            (attr_type::REALM, MAX_TEXT, MAX_TEXT),
            (attr_type::NONCE, MAX_TEXT, MAX_TEXT),
            (attr_type::SOFTWARE, MAX_TEXT, MAX_TEXT),
            (attr_type::ALTERNATE_DOMAIN, MAX_TEXT, MAX_TEXT),
        ][which];
        let attr = |s: &str| -> Vec<u8> {
            let a = match typ {
                attr_type::USERNAME => Attribute::Username(s),
                attr_type::REALM => Attribute::Realm(s),
                attr_type::NONCE => Attribute::Nonce(s),
                attr_type::SOFTWARE => Attribute::Software(s),
                _ => Attribute::AlternateDomain(s),
            };
            let mut buf = vec![0u8; 2000];
            let tid = TransactionId([7; 12]);
            let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid).unwrap();
            match b.add(&a) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e, BuildError::InvalidValue);
                    return Vec::new();
                }
            }
            let n = b.finish();
            buf.truncate(n);
            buf
        };
        prop_assert!(!attr(&"a".repeat(enc_max - under)).is_empty());
        prop_assert!(attr(&"a".repeat(enc_max + extra)).is_empty(), "encoder accepted {} bytes", enc_max + extra);

        let raw_message = |len: usize| {
            let mut buf = vec![0u8; 2000];
            let tid = TransactionId([7; 12]);
            let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid).unwrap();
            b.add_raw(typ, "a".repeat(len).as_bytes()).unwrap();
            let n = b.finish();
            buf.truncate(n);
            buf
        };
        let ok = raw_message(dec_max - under);
        let m = Message::parse(&ok).unwrap();
        prop_assert!(m.get_decoded(typ).unwrap().is_ok(), "decoder refused {} bytes", dec_max - under);
        let too_long = raw_message(dec_max + extra);
        let m = Message::parse(&too_long).unwrap();
        prop_assert!(m.get_decoded(typ).unwrap().is_err(), "decoder accepted {} bytes", dec_max + extra);
    }

    /// (b) Arbitrary bytes never panic any read path.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    /// (b) Arbitrary bytes behind a plausible STUN header never panic (reaches the attribute
    /// walk far more often than fully random bytes).
    #[test]
    fn arbitrary_attributes_never_panic(
        typ in 0u16..0x4000,
        body in vec(any::<u8>(), 0..600),
        tid in any::<[u8; 12]>(),
    ) {
        let mut bytes = typ.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        bytes.extend_from_slice(&tid);
        bytes.extend_from_slice(&body);
        exercise(&bytes);
    }

    /// (b) Mutations of valid messages never panic.
    #[test]
    fn mutated_messages_never_panic(msg in valid_message(), muts in vec(mutation(), 1..6)) {
        let mut bytes = msg;
        for m in &muts {
            apply(&mut bytes, m);
            exercise(&bytes);
        }
    }

    /// (b) A stream of valid STUN messages and ChannelData frames, cut into arbitrary chunks,
    /// comes out of `StreamBuffer` frame for frame.
    #[test]
    fn stream_buffer_reassembles(
        frames in vec(prop_oneof![valid_message(), channel_frame()], 1..6),
        chunks in vec(1usize..200, 1..20),
    ) {
        let max = frames.iter().map(Vec::len).max().unwrap();
        let bytes: Vec<u8> = frames.concat();
        let (got, broken) = feed(&bytes, &chunks, max, ChannelRange::RFC8656);
        prop_assert!(!broken);
        let want: Vec<(FrameKind, Vec<u8>)> = frames
            .iter()
            .map(|f| (if f[0] < 4 { FrameKind::Stun } else { FrameKind::ChannelData }, f.clone()))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// (b) Garbage and mutated streams never panic the `StreamBuffer`.
    #[test]
    fn stream_buffer_never_panics(
        parts in vec(prop_oneof![valid_message(), channel_frame(), vec(any::<u8>(), 0..100)], 1..6),
        muts in vec(mutation(), 0..4),
        chunks in vec(1usize..300, 1..20),
        max in 0usize..3000,
        legacy in any::<bool>(),
    ) {
        let mut bytes: Vec<u8> = parts.concat();
        for m in &muts {
            apply(&mut bytes, m);
        }
        let range = if legacy { ChannelRange::RFC5766 } else { ChannelRange::RFC8656 };
        let _ = feed(&bytes, &chunks, max, range);
    }

    /// (c) MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT from the builder verify,
    /// not under another key, and no longer after any single-byte change in what they cover.
    #[test]
    fn integrity_and_fingerprint(
        typ in message_type(),
        tid in any::<[u8; 12]>(),
        body in vec(body_attr(), 0..4),
        key in vec(any::<u8>(), 0..80),
        key256 in vec(any::<u8>(), 0..80),
        extra in 1u8..=255,
        with_mi in any::<bool>(),
        with_mi256 in any::<bool>(),
        pos in any::<usize>(),
        xor in 1u8..=255,
    ) {
        // Another key. (Appending a zero byte would not do: HMAC zero-pads short keys.)
        let other_key: Vec<u8> = key.iter().copied().chain([extra]).collect();
        let other_key256: Vec<u8> = key256.iter().copied().chain([extra]).collect();
        let tid = TransactionId(tid);
        let mut buf = vec![0u8; 70_000];
        let mut b = MessageBuilder::new(&mut buf, typ, tid).unwrap();
        for a in &body {
            b.add(&a.as_attr()).unwrap();
        }
        if with_mi {
            b.add_message_integrity(&key).unwrap();
        }
        if with_mi256 {
            b.add_message_integrity_sha256(&key256).unwrap();
        }
        b.add_fingerprint().unwrap();
        let n = b.finish();
        let bytes = &buf[..n];
        let m = Message::parse(bytes).unwrap();
        m.verify_fingerprint().unwrap();
        if with_mi {
            m.verify_integrity(&key).unwrap();
            prop_assert_eq!(m.verify_integrity(&other_key), Err(IntegrityError::Mismatch));
        } else {
            prop_assert_eq!(m.verify_integrity(&key), Err(IntegrityError::Missing));
        }
        if with_mi256 {
            m.verify_integrity_sha256(&key256).unwrap();
            prop_assert_eq!(m.verify_integrity_sha256(&other_key256), Err(IntegrityError::Mismatch));
        } else {
            prop_assert_eq!(m.verify_integrity_sha256(&key256), Err(IntegrityError::Missing));
        }

        // FINGERPRINT covers the whole message.
        let mut bad = bytes.to_vec();
        let i = pos % n;
        bad[i] ^= xor;
        if let Ok(bm) = Message::parse(&bad) {
            prop_assert!(bm.verify_fingerprint().is_err(), "FINGERPRINT survived a change at {}", i);
        }
        // MESSAGE-INTEGRITY covers everything up to the end of its value.
        if with_mi {
            let mi_end = m.get(attr_type::MESSAGE_INTEGRITY).unwrap().offset + 24;
            let mut bad = bytes.to_vec();
            let i = pos % mi_end;
            bad[i] ^= xor;
            if let Ok(bm) = Message::parse(&bad) {
                prop_assert!(bm.verify_integrity(&key).is_err(), "MESSAGE-INTEGRITY survived a change at {}", i);
            }
        }
        if with_mi256 {
            let end = m.get(attr_type::MESSAGE_INTEGRITY_SHA256).unwrap().offset + 36;
            let mut bad = bytes.to_vec();
            let i = pos % end;
            bad[i] ^= xor;
            if let Ok(bm) = Message::parse(&bad) {
                prop_assert!(bm.verify_integrity_sha256(&key256).is_err(), "MI-SHA256 survived a change at {}", i);
            }
        }
    }

    /// (c) A truncated MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6 allows 16–32 bytes), computed
    /// here by hand, verifies against the same prefix and fails on any change.
    #[test]
    fn truncated_integrity_sha256(
        body in vec(body_attr(), 0..3),
        key in vec(any::<u8>(), 0..40),
        k in 0usize..5,
        pos in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let len = 16 + 4 * k;
        let tid = TransactionId([3; 12]);
        let mut buf = vec![0u8; 70_000];
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid).unwrap();
        for a in &body {
            b.add(&a.as_attr()).unwrap();
        }
        // HMAC over the message so far with the length field counting the attribute to come.
        let mut covered = b.as_bytes().to_vec();
        let l = (covered.len() - HEADER_LEN + 4 + len) as u16;
        covered[2..4].copy_from_slice(&l.to_be_bytes());
        let mac = hmac_sha256(&key, &[&covered]);
        b.add_raw(attr_type::MESSAGE_INTEGRITY_SHA256, &mac[..len]).unwrap();
        let n = b.finish();
        let m = Message::parse(&buf[..n]).unwrap();
        m.verify_integrity_sha256(&key).unwrap();
        let mut bad = buf[..n].to_vec();
        let i = pos % n;
        bad[i] ^= xor;
        if let Ok(bm) = Message::parse(&bad) {
            prop_assert!(bm.verify_integrity_sha256(&key).is_err(), "survived a change at {}", i);
        }
    }
}

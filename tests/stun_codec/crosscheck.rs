//! Cross-checks against an independent implementation: the webrtc-rs `stun` crate (0.17) and
//! its `turn` crate's ChannelData.
//!
//! (a) What ternd writes, `stun` reads: attributes, MESSAGE-INTEGRITY and FINGERPRINT.
//! (b) What `stun` writes, ternd reads and verifies, with the long-term key derived by ternd.
//! (c) ChannelData framing agrees with `turn::proto::chandata::ChannelData` both ways.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;
use stun::agent::TransactionId as SId;
use stun::attributes::{
    ATTR_ERROR_CODE, ATTR_NONCE, ATTR_REALM, ATTR_SOFTWARE, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS,
    ATTR_XORMAPPED_ADDRESS, AttrType,
};
use stun::error_code::{ErrorCode as SErrorCode, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Getter, Message as SMessage,
    MessageType as SMessageType, Setter,
};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use ternd::auth::long_term_key_md5;
use ternd::stun::channel::{ChannelData, ChannelRange};
use ternd::stun::{
    Attribute, Class, ErrorCode, IntegrityError, Message, MessageBuilder, MessageType, Method,
    TransactionId, attr_type,
};

const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

/// Decodes bytes with the `stun` crate.
fn stun_decode(bytes: &[u8]) -> SMessage {
    let mut m = SMessage::new();
    m.raw = bytes.to_vec();
    m.decode().expect("stun crate decodes ternd's message");
    m
}

fn stun_text(m: &SMessage, t: AttrType) -> String {
    TextAttribute::get_from_as(m, t)
        .expect("text attribute")
        .text
}

fn stun_xor_addr(m: &SMessage, t: AttrType) -> SocketAddr {
    let mut a = XorMappedAddress::default();
    if t == ATTR_XORMAPPED_ADDRESS {
        a.get_from(m).expect("XOR-MAPPED-ADDRESS");
    } else {
        a.get_from_as(m, t).expect("XOR address");
    }
    SocketAddr::new(a.ip, a.port)
}

struct Fields<'a> {
    username: &'a str,
    software: &'a str,
    realm: &'a str,
    nonce: &'a str,
    mapped: SocketAddr,
    peer: SocketAddr,
    code: u16,
    reason: &'a str,
}

/// A Binding message with every attribute of (a), built by ternd.
fn ternd_build(typ: MessageType, tid: [u8; 12], f: &Fields<'_>, key: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut b = MessageBuilder::new(&mut buf, typ, TransactionId(tid)).unwrap();
    b.add(&Attribute::Username(f.username)).unwrap();
    b.add(&Attribute::Software(f.software)).unwrap();
    b.add(&Attribute::XorMappedAddress(f.mapped)).unwrap();
    b.add(&Attribute::XorPeerAddress(f.peer)).unwrap();
    b.add(&Attribute::ErrorCode(ErrorCode::new(f.code, f.reason)))
        .unwrap();
    b.add(&Attribute::Realm(f.realm)).unwrap();
    b.add(&Attribute::Nonce(f.nonce)).unwrap();
    b.add_message_integrity(key).unwrap();
    b.add_fingerprint().unwrap();
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// (a): checks a ternd-built message with the `stun` crate.
fn check_with_stun_crate(
    bytes: &[u8],
    stype: SMessageType,
    tid: [u8; 12],
    f: &Fields<'_>,
    password: &str,
) {
    let mut m = stun_decode(bytes);
    assert_eq!(m.typ, stype);
    assert_eq!(m.transaction_id.0, tid);
    assert_eq!(m.attributes.0.len(), 9);
    assert_eq!(stun_text(&m, ATTR_USERNAME), f.username);
    assert_eq!(stun_text(&m, ATTR_SOFTWARE), f.software);
    assert_eq!(stun_text(&m, ATTR_REALM), f.realm);
    assert_eq!(stun_text(&m, ATTR_NONCE), f.nonce);
    assert_eq!(stun_xor_addr(&m, ATTR_XORMAPPED_ADDRESS), f.mapped);
    assert_eq!(stun_xor_addr(&m, ATTR_XOR_PEER_ADDRESS), f.peer);
    let mut ec = ErrorCodeAttribute::default();
    ec.get_from(&m).unwrap();
    assert!(
        ec.code == SErrorCode(f.code),
        "ERROR-CODE {} != {}",
        ec.code.0,
        f.code
    );
    assert_eq!(ec.reason, f.reason.as_bytes());
    assert_eq!(m.get(ATTR_ERROR_CODE).unwrap()[..2], [0, 0]);

    MessageIntegrity::new_short_term_integrity(password.to_owned())
        .check(&mut m)
        .expect("stun crate accepts ternd's MESSAGE-INTEGRITY");
    FINGERPRINT
        .check(&m)
        .expect("stun crate accepts ternd's FINGERPRINT");
    // The `stun` crate rejects a wrong password, and a tampered message.
    assert!(
        MessageIntegrity::new_short_term_integrity(format!("{password}x"))
            .check(&mut m)
            .is_err()
    );
    let mut tampered = bytes.to_vec();
    tampered[24] ^= 0x01; // first byte of the USERNAME value
    let mut tm = stun_decode(&tampered);
    assert!(
        MessageIntegrity::new_short_term_integrity(password.to_owned())
            .check(&mut tm)
            .is_err()
    );
    assert!(FINGERPRINT.check(&tm).is_err());
}

#[test]
fn ternd_message_read_by_stun_crate() {
    let f = Fields {
        username: "evtj:h6vY",
        software: "ternd crosscheck",
        realm: "example.org",
        nonce: "f//499k954d6OL34oL9FSTvy64sA",
        mapped: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853),
        peer: SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0x1234, 0x5678, 0x11, 0x2233, 0x4455, 0x6677,
            )),
            32853,
        ),
        code: 401,
        reason: "Unauthorized",
    };
    let tid = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];
    let req = MessageType::new(Method::BINDING, Class::Request);
    let bytes = ternd_build(req, tid, &f, SHORT_TERM_PASSWORD.as_bytes());
    check_with_stun_crate(&bytes, BINDING_REQUEST, tid, &f, SHORT_TERM_PASSWORD);

    // Same with the addresses swapped between families, in a success and an error response.
    let f2 = Fields {
        mapped: f.peer,
        peer: f.mapped,
        ..f
    };
    let bytes = ternd_build(req.success(), tid, &f2, SHORT_TERM_PASSWORD.as_bytes());
    check_with_stun_crate(&bytes, BINDING_SUCCESS, tid, &f2, SHORT_TERM_PASSWORD);
    let bytes = ternd_build(req.error(), tid, &f2, SHORT_TERM_PASSWORD.as_bytes());
    check_with_stun_crate(&bytes, BINDING_ERROR, tid, &f2, SHORT_TERM_PASSWORD);
}

/// (b): a message built by the `stun` crate with long-term credentials.
fn stun_build_long_term(
    tid: [u8; 12],
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    mapped: SocketAddr,
) -> SMessage {
    let mut m = SMessage::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(SId(tid)),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(TextAttribute::new(ATTR_REALM, realm.to_owned())),
        Box::new(TextAttribute::new(ATTR_NONCE, nonce.to_owned())),
        Box::new(TextAttribute::new(
            ATTR_SOFTWARE,
            "webrtc-rs stun".to_owned(),
        )),
        Box::new(XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        }),
        Box::new(ErrorCodeAttribute {
            code: SErrorCode(438),
            reason: b"Stale Nonce".to_vec(),
        }),
        Box::new(MessageIntegrity::new_long_term_integrity(
            username.to_owned(),
            realm.to_owned(),
            password.to_owned(),
        )),
        Box::new(FINGERPRINT),
    ];
    m.build(&setters).expect("stun crate builds");
    m
}

fn check_stun_message_with_ternd(
    raw: &[u8],
    tid: [u8; 12],
    username: &str,
    realm: &str,
    password_for_ternd: &str,
    nonce: &str,
    mapped: SocketAddr,
) {
    let m = Message::parse(raw).expect("ternd parses the stun crate's message");
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Request)
    );
    assert_eq!(m.transaction_id(), TransactionId(tid));
    let t = m.transaction_id();
    let attrs: Vec<Attribute<'_>> = m
        .attributes()
        .map(|r| Attribute::decode(r, &t).unwrap())
        .collect();
    let mi = m.get(attr_type::MESSAGE_INTEGRITY).unwrap().value;
    let fp = u32::from_be_bytes(
        m.get(attr_type::FINGERPRINT)
            .unwrap()
            .value
            .try_into()
            .unwrap(),
    );
    assert_eq!(
        attrs,
        vec![
            Attribute::Username(username),
            Attribute::Realm(realm),
            Attribute::Nonce(nonce),
            Attribute::Software("webrtc-rs stun"),
            Attribute::XorMappedAddress(mapped),
            Attribute::ErrorCode(ErrorCode::new(438, "Stale Nonce")),
            Attribute::MessageIntegrity(mi.try_into().unwrap()),
            Attribute::Fingerprint(fp),
        ]
    );
    let key = long_term_key_md5(username, realm, password_for_ternd).unwrap();
    m.verify_integrity(&key)
        .expect("ternd accepts the stun crate's MESSAGE-INTEGRITY");
    m.verify_fingerprint()
        .expect("ternd accepts the stun crate's FINGERPRINT");
    let wrong = long_term_key_md5(username, realm, &format!("{password_for_ternd}!")).unwrap();
    assert_eq!(m.verify_integrity(&wrong), Err(IntegrityError::Mismatch));
    let mut bad = raw.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    assert_eq!(
        Message::parse(&bad).unwrap().verify_fingerprint(),
        Err(IntegrityError::Mismatch)
    );
}

#[test]
fn stun_crate_message_read_by_ternd() {
    let tid = [
        0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
    ];
    let mapped = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 3478);
    // ASCII credentials: both sides hash the same bytes.
    let m = stun_build_long_term(tid, "alice", "example.org", "hunter2", "nonce-123", mapped);
    check_stun_message_with_ternd(
        &m.raw,
        tid,
        "alice",
        "example.org",
        "hunter2",
        "nonce-123",
        mapped,
    );

    // RFC 5769 §2.4 credentials: the `stun` crate wants the SASL-prepared password
    // ("TheMatrIX"); ternd prepares "The\u{AD}M\u{AA}tr\u{2168}" itself to the same key.
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    let mapped6 = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        65535,
    );
    let m = stun_build_long_term(
        tid,
        user,
        "example.org",
        "TheMatrIX",
        "f//499k954d6OL34oL9FSTvy64sA",
        mapped6,
    );
    check_stun_message_with_ternd(
        &m.raw,
        tid,
        user,
        "example.org",
        "The\u{AD}M\u{AA}tr\u{2168}",
        "f//499k954d6OL34oL9FSTvy64sA",
        mapped6,
    );

    // Short-term integrity from the `stun` crate: the key is the password itself.
    let mut s = SMessage::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_SUCCESS),
        Box::new(SId(tid)),
        Box::new(XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity(
            SHORT_TERM_PASSWORD.to_owned(),
        )),
        Box::new(FINGERPRINT),
    ];
    s.build(&setters).unwrap();
    let m = Message::parse(&s.raw).unwrap();
    assert_eq!(
        m.get_decoded(attr_type::XOR_MAPPED_ADDRESS),
        Some(Ok(Attribute::XorMappedAddress(mapped)))
    );
    m.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    m.verify_fingerprint().unwrap();
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p)),
        // IPv4-mapped IPv6 stays IPv6 (family 0x02) on both sides.
        (any::<u32>(), any::<u16>()).prop_map(|(ip, p)| {
            SocketAddr::new(IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped()), p)
        }),
    ]
}

/// Printable ASCII (the `stun` crate hashes credentials verbatim; ternd SASL-prepares realm and
/// password, which leaves printable ASCII unchanged).
fn ascii(max: usize) -> impl Strategy<Value = String> {
    vec(0x21u8..0x7f, 1..max).prop_map(|b| String::from_utf8(b).unwrap())
}

/// Arbitrary UTF-8 of at most `max` bytes.
fn utf8(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..max).prop_map(move |cs| {
        let mut s = String::new();
        for c in cs {
            if s.len() + c.len_utf8() > max {
                break;
            }
            s.push(c);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_ternd_messages_read_by_stun_crate(
        tid in any::<[u8; 12]>(),
        username in utf8(513),
        software in utf8(763),
        realm in utf8(763),
        nonce in utf8(763),
        mapped in socket_addr(),
        peer in socket_addr(),
        code in 300u16..=699,
        reason in utf8(300),
        password in vec(any::<u8>(), 1..64),
    ) {
        // The `stun` crate takes the short-term key as a String; use printable bytes.
        let password: String = password.iter().map(|b| char::from(0x21 + b % 94)).collect();
        let f = Fields { username: &username, software: &software, realm: &realm, nonce: &nonce, mapped, peer, code, reason: &reason };
        let req = MessageType::new(Method::BINDING, Class::Request);
        let bytes = ternd_build(req, tid, &f, password.as_bytes());
        check_with_stun_crate(&bytes, BINDING_REQUEST, tid, &f, &password);
    }

    #[test]
    fn random_stun_crate_messages_read_by_ternd(
        tid in any::<[u8; 12]>(),
        username in ascii(100),
        realm in ascii(100),
        password in ascii(100),
        nonce in ascii(200),
        mapped in socket_addr(),
    ) {
        let m = stun_build_long_term(tid, &username, &realm, &password, &nonce, mapped);
        check_stun_message_with_ternd(&m.raw, tid, &username, &realm, &password, &nonce, mapped);
    }

    /// (c) ChannelData: ternd's padded encoding equals the `turn` crate's, and each side
    /// decodes the other's.
    #[test]
    fn channel_data_agrees_with_turn_crate(
        channel in 0x4000u16..=0x4FFF,
        data in vec(any::<u8>(), 0..1500),
    ) {
        use turn::proto::chandata::ChannelData as TChannelData;
        use turn::proto::channum::ChannelNumber;

        let mut ours = vec![0u8; data.len() + 8];
        let n = ChannelData::encode(channel, &data, true, &mut ours).unwrap();
        ours.truncate(n);

        let mut theirs = TChannelData { data: data.clone(), number: ChannelNumber(channel), raw: vec![] };
        theirs.encode();
        prop_assert_eq!(&theirs.raw, &ours);

        let mut decoded = TChannelData { raw: ours.clone(), ..Default::default() };
        decoded.decode().unwrap();
        prop_assert_eq!(decoded.number, ChannelNumber(channel));
        prop_assert_eq!(&decoded.data, &data);

        let parsed = ChannelData::parse(&theirs.raw, ChannelRange::RFC8656).unwrap();
        prop_assert_eq!(parsed, ChannelData { channel, data: &data });
        // Unpadded (UDP) framing is accepted by both as well.
        let mut unpadded = vec![0u8; data.len() + 4];
        let n = ChannelData::encode(channel, &data, false, &mut unpadded).unwrap();
        prop_assert_eq!(n, 4 + data.len());
        let mut decoded = TChannelData { raw: unpadded[..n].to_vec(), ..Default::default() };
        decoded.decode().unwrap();
        prop_assert_eq!(&decoded.data, &data);
    }
}

/// Both reject what RFC 8656 forbids: channel numbers outside the range and truncated data.
#[test]
fn channel_data_rejections_agree() {
    use turn::proto::chandata::ChannelData as TChannelData;

    for raw in [
        &b"\x3f\xff\x00\x00"[..],     // below 0x4000
        &b"\x80\x00\x00\x00"[..],     // above 0x7FFF
        &b"\x40\x00\x00\x05abcd"[..], // one byte short
        &b"\x40\x00\x00"[..],         // short header
    ] {
        let mut t = TChannelData {
            raw: raw.to_vec(),
            ..Default::default()
        };
        assert!(t.decode().is_err(), "turn crate accepted {raw:?}");
        assert!(
            ChannelData::parse(raw, ChannelRange::RFC5766).is_err(),
            "ternd accepted {raw:?}"
        );
    }
    // 0x5000–0x7FFF: RFC 5766 (and the `turn` crate) allow them; RFC 8656 does not.
    let raw = b"\x50\x00\x00\x01x\x00\x00\x00";
    let mut t = TChannelData {
        raw: raw.to_vec(),
        ..Default::default()
    };
    assert!(t.decode().is_ok());
    assert!(ChannelData::parse(raw, ChannelRange::RFC5766).is_ok());
    assert!(ChannelData::parse(raw, ChannelRange::RFC8656).is_err());
}

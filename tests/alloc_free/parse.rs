//! The STUN hot path performs no heap allocation.
//!
//! A counting `#[global_allocator]` wraps `System`. Counting is switched on per thread (a
//! thread-local flag), so allocations made by the test harness or by other tests running on
//! other threads are not counted; only what the measured closure does on this thread is.
//!
//! Measured: `Message::parse`, iterating `attributes()` and `Attribute::decode` of every
//! attribute, `verify_integrity`, `verify_fingerprint`, `ChannelData::parse`, and building a
//! response with `MessageBuilder` into a stack buffer (then parsing and verifying that too).
//! `counter_sees_allocations` proves the counter is live, so a zero is not vacuous.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ternd::stun::channel::{ChannelData, ChannelRange};
use ternd::stun::{
    Attribute, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

use super::counting::count_allocs;

/// RFC 5769 §2.1 Sample Request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
/// MESSAGE-INTEGRITY, FINGERPRINT).
const REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// The RFC 5769 short-term password.
const KEY: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// Parses `bytes`, decodes every attribute, verifies both checks; returns how many
/// attributes decoded.
fn parse_all(bytes: &[u8], key: &[u8]) -> usize {
    let msg = Message::parse(black_box(bytes)).expect("parse");
    let tid = msg.transaction_id();
    let mut n = 0;
    for raw in msg.attributes() {
        black_box(Attribute::decode(raw, &tid).expect("decode"));
        n += 1;
    }
    msg.verify_integrity(black_box(key)).expect("integrity");
    msg.verify_fingerprint().expect("fingerprint");
    n
}

/// The whole hot path; returns facts checked after counting stops.
fn hot_path(buf: &mut [u8; 256], frame: &[u8]) -> (usize, usize, usize, u16, usize) {
    // An ICE Binding request.
    let req_attrs = parse_all(&REQUEST, KEY);
    let msg = Message::parse(black_box(&REQUEST[..])).expect("parse");
    black_box(msg.get_decoded(attr_type::USERNAME));

    // ChannelData.
    let cd = ChannelData::parse(black_box(frame), ChannelRange::RFC8656).expect("chandata");

    // A Binding success response into a stack buffer: XOR-MAPPED-ADDRESS, MI, FINGERPRINT.
    let typ = MessageType::new(Method::BINDING, Class::Success);
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853);
    let mut b = MessageBuilder::new(&mut buf[..], typ, msg.transaction_id()).expect("header");
    b.add(&Attribute::XorMappedAddress(black_box(peer)))
        .expect("xma");
    b.add_message_integrity(KEY).expect("mi");
    b.add_fingerprint().expect("fp");
    let resp_len = b.finish();
    let resp_attrs = parse_all(&buf[..resp_len], KEY);

    // A wider mix of attribute types, including IPv6 X-addresses and text.
    let typ = MessageType::new(Method::ALLOCATE, Class::Error);
    let relayed = SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        49152,
    );
    let mut b = MessageBuilder::new(&mut buf[..], typ, TransactionId([7; 12])).expect("header");
    b.add(&Attribute::ErrorCode(ErrorCode::new(401, "Unauthorized")))
        .expect("error-code");
    b.add(&Attribute::Realm("example.org")).expect("realm");
    b.add(&Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA"))
        .expect("nonce");
    b.add(&Attribute::XorRelayedAddress(relayed))
        .expect("relayed");
    b.add(&Attribute::XorPeerAddress(peer)).expect("peer");
    b.add(&Attribute::Lifetime(600)).expect("lifetime");
    b.add(&Attribute::Software("ternd")).expect("software");
    b.add_unknown_attributes(&[0x0031, 0x0032])
        .expect("unknown-attributes");
    b.add_message_integrity(KEY).expect("mi");
    b.add_message_integrity_sha256(KEY).expect("mi-sha256");
    b.add_fingerprint().expect("fp");
    let n = b.finish();
    let mixed = Message::parse(black_box(&buf[..n])).expect("parse mixed");
    let tid = mixed.transaction_id();
    let mut mixed_attrs = 0;
    for raw in mixed.attributes() {
        black_box(Attribute::decode(raw, &tid).expect("decode mixed"));
        mixed_attrs += 1;
    }
    mixed.verify_integrity(KEY).expect("mixed mi");
    mixed.verify_integrity_sha256(KEY).expect("mixed mi-sha256");
    mixed.verify_fingerprint().expect("mixed fp");

    (
        req_attrs,
        resp_attrs,
        mixed_attrs,
        cd.channel,
        cd.data.len(),
    )
}

#[test]
fn hot_path_does_not_allocate() {
    // Built before counting starts.
    let mut frame = [0u8; 104];
    let payload = [0xA5u8; 100];
    assert_eq!(
        ChannelData::encode(0x4001, &payload, false, &mut frame),
        Some(104)
    );
    let mut buf = [0u8; 256];

    let (facts, allocs) = count_allocs(|| hot_path(&mut buf, &frame));
    assert_eq!(
        allocs, 0,
        "the STUN hot path made {allocs} heap allocation(s)"
    );
    assert_eq!(facts, (6, 3, 11, 0x4001, 100));
}

#[test]
fn counter_sees_allocations() {
    let ((), allocs) = count_allocs(|| {
        let mut v: Vec<u8> = black_box(Vec::new());
        v.push(1);
        black_box(&v);
    });
    assert_eq!(allocs, 1, "the counting allocator is not counting");
}

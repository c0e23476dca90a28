//! Codec micro-benchmarks: ternd's zero-copy STUN codec against webrtc-rs `stun` 0.17 (and
//! `turn` 0.17 for ChannelData), doing the same work on the same bytes.
//!
//! Groups (each with a `ternd` and a `stun` function):
//!
//! - `parse`: the RFC 5769 §2.1 Binding request (an ICE connectivity check: SOFTWARE,
//!   PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT). Header checks plus
//!   reading every attribute. No HMAC, no CRC.
//!   - ternd: `Message::parse`, then `Attribute::decode` of each item of `attributes()`.
//!   - stun: `Message::unmarshal_binary` into one reused `Message` (copies the bytes into its
//!     `raw` Vec, whose capacity is reused, and decodes the attribute list, one `Vec` per
//!     value), then each attribute read the way its API offers: `TextAttribute::get_from_as`
//!     for USERNAME and SOFTWARE (what `Username::get_from` / `Software::get_from` call),
//!     `m.get(..)` for PRIORITY, ICE-CONTROLLED, MESSAGE-INTEGRITY and FINGERPRINT (stun 0.17
//!     has no typed getter for the first two; MESSAGE-INTEGRITY and FINGERPRINT are read
//!     raw, as ternd's decode reads them raw).
//! - `parse_verify`: the same, then MESSAGE-INTEGRITY (short-term key) and FINGERPRINT checks.
//!   - ternd: `verify_integrity` + `verify_fingerprint`.
//!   - stun: `MessageIntegrity::check` (key built once, outside the loop) + `FINGERPRINT.check`.
//! - `build_response`: a Binding success response with XOR-MAPPED-ADDRESS (IPv4),
//!   MESSAGE-INTEGRITY and FINGERPRINT into a reused buffer.
//!   - ternd: `MessageBuilder::new` over a reused stack array.
//!   - stun: one reused `Message` and its setters called directly: `reset`, set type and
//!     transaction id, `write_header`, then `XorMappedAddress::add_to`,
//!     `MessageIntegrity::add_to`, `FINGERPRINT.add_to`. That is exactly what
//!     `Message::build(&[Box<dyn Setter>])` does, minus building the boxes, so it is the
//!     cheapest path its API offers; `raw` and the attribute list keep their capacity.
//! - `channel_data`: a ChannelData frame with a 100-byte payload.
//!   - ternd: `ChannelData::parse` (a borrowed view).
//!   - stun: `turn::proto::chandata::ChannelData` (public in turn 0.17, fields public) reused:
//!     the frame is copied into its `raw` (capacity reused) and `decode` copies the payload
//!     into `data`, which is how its API takes input.
//!
//! Every function is checked once, outside the timed loop, to produce the expected values.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use stun::attributes::{
    ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_MESSAGE_INTEGRITY, ATTR_PRIORITY, ATTR_SOFTWARE,
    ATTR_USERNAME,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{BINDING_SUCCESS, Getter as _, Setter as _};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use ternd::stun::channel::{ChannelData, ChannelRange};
use ternd::stun::{Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

/// RFC 5769 §2.1 Sample Request.
const REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, // header
    0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, // SOFTWARE "STUN test client"
    0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, // PRIORITY
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, // ICE-CONTROLLED
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
    0x20, // USERNAME "evtj:h6vY"
    0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5,
    0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, // MESSAGE-INTEGRITY
    0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf, // FINGERPRINT
];

/// The RFC 5769 short-term password.
const KEY: &str = "VOkJxbRl1RmTxUk/WvJxBt";

const PRIORITY: u16 = 0x0024;
const ICE_CONTROLLED: u16 = 0x8029;

fn group<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g
}

// ---------------------------------------------------------------------------------------
// ternd

/// Parses and decodes every attribute; returns the message for further checks.
#[inline(always)]
fn ternd_parse(bytes: &[u8]) -> Message<'_> {
    let msg = Message::parse(bytes).expect("parse");
    let tid = msg.transaction_id();
    for raw in msg.attributes() {
        black_box(Attribute::decode(raw, &tid).expect("decode"));
    }
    msg
}

fn ternd_build(buf: &mut [u8], tid: TransactionId, addr: SocketAddr, key: &[u8]) -> usize {
    let typ = MessageType::new(Method::BINDING, Class::Success);
    let mut b = MessageBuilder::new(buf, typ, tid).expect("header");
    b.add(&Attribute::XorMappedAddress(addr)).expect("xma");
    b.add_message_integrity(key).expect("mi");
    b.add_fingerprint().expect("fp");
    b.finish()
}

// ---------------------------------------------------------------------------------------
// webrtc-rs stun

/// Decodes into `m` and reads every attribute.
#[inline(always)]
fn stun_parse(m: &mut stun::message::Message, bytes: &[u8]) {
    m.unmarshal_binary(bytes).expect("decode");
    let username = TextAttribute::get_from_as(m, ATTR_USERNAME).expect("username");
    black_box(&username.text);
    let software = TextAttribute::get_from_as(m, ATTR_SOFTWARE).expect("software");
    black_box(&software.text);
    let p = m.get(ATTR_PRIORITY).expect("priority");
    black_box(u32::from_be_bytes(p[..].try_into().expect("priority len")));
    let ic = m.get(ATTR_ICE_CONTROLLED).expect("ice-controlled");
    black_box(u64::from_be_bytes(ic[..].try_into().expect("ice len")));
    let mi = m.get(ATTR_MESSAGE_INTEGRITY).expect("mi");
    black_box(&mi);
    let fp = m.get(ATTR_FINGERPRINT).expect("fingerprint");
    black_box(u32::from_be_bytes(fp[..].try_into().expect("fp len")));
}

fn stun_build(
    m: &mut stun::message::Message,
    tid: [u8; 12],
    xma: &XorMappedAddress,
    mi: &MessageIntegrity,
) {
    m.reset();
    m.typ = BINDING_SUCCESS;
    m.transaction_id = stun::agent::TransactionId(tid);
    m.write_header();
    xma.add_to(m).expect("xma");
    mi.add_to(m).expect("mi");
    FINGERPRINT.add_to(m).expect("fp");
}

// ---------------------------------------------------------------------------------------
// Sanity: both sides see the same values.

fn sanity() {
    let msg = ternd_parse(&REQUEST);
    let tid = msg.transaction_id();
    let decoded: Vec<_> = msg
        .attributes()
        .map(|r| Attribute::decode(r, &tid).expect("decode"))
        .collect();
    assert_eq!(decoded.len(), 6);
    assert_eq!(decoded[0], Attribute::Software("STUN test client"));
    assert_eq!(
        decoded[1],
        Attribute::Unknown {
            typ: PRIORITY,
            value: &[0x6e, 0x00, 0x01, 0xff]
        }
    );
    assert!(
        matches!(decoded[2], Attribute::Unknown { typ: ICE_CONTROLLED, value } if value.len() == 8)
    );
    assert_eq!(decoded[3], Attribute::Username("evtj:h6vY"));
    msg.verify_integrity(KEY.as_bytes()).expect("ternd MI");
    msg.verify_fingerprint().expect("ternd FP");

    let mut m = stun::message::Message::new();
    stun_parse(&mut m, &REQUEST);
    let mut u = TextAttribute::new(ATTR_USERNAME, String::new());
    u.get_from(&m).expect("username");
    assert_eq!(u.text, "evtj:h6vY");
    MessageIntegrity::new_short_term_integrity(KEY.to_owned())
        .check(&mut m)
        .expect("stun MI");
    FINGERPRINT.check(&m).expect("stun FP");

    // Both builders produce the same bytes.
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853);
    let mut buf = [0u8; 128];
    let n = ternd_build(&mut buf, tid, addr, KEY.as_bytes());
    let mut sm = stun::message::Message::new();
    let xma = XorMappedAddress {
        ip: addr.ip(),
        port: addr.port(),
    };
    let mi = MessageIntegrity::new_short_term_integrity(KEY.to_owned());
    stun_build(&mut sm, tid.0, &xma, &mi);
    assert_eq!(&buf[..n], &sm.raw[..], "ternd and stun responses differ");
    let resp = Message::parse(&buf[..n]).expect("response parses");
    resp.verify_integrity(KEY.as_bytes()).expect("response MI");
    resp.verify_fingerprint().expect("response FP");

    let frame = channel_frame();
    let cd = ChannelData::parse(&frame, ChannelRange::RFC8656).expect("ternd chandata");
    assert_eq!((cd.channel, cd.data.len()), (0x4001, 100));
    let mut tc = turn::proto::chandata::ChannelData {
        raw: frame.to_vec(),
        ..Default::default()
    };
    tc.decode().expect("turn chandata");
    assert_eq!((tc.number.0, tc.data.len()), (0x4001, 100));
}

fn channel_frame() -> [u8; 104] {
    let mut f = [0u8; 104];
    let payload: Vec<u8> = (0..100u8).collect();
    let n = ChannelData::encode(0x4001, &payload, false, &mut f).expect("encode");
    assert_eq!(n, 104);
    f
}

// ---------------------------------------------------------------------------------------
// Benchmarks

fn bench_parse(c: &mut Criterion) {
    let mut g = group(c, "parse");
    g.bench_function("ternd", |b| {
        b.iter(|| black_box(ternd_parse(black_box(&REQUEST[..]))))
    });
    let mut m = stun::message::Message::new();
    g.bench_function("stun", |b| {
        b.iter(|| stun_parse(&mut m, black_box(&REQUEST[..])))
    });
    g.finish();
}

fn bench_parse_verify(c: &mut Criterion) {
    let mut g = group(c, "parse_verify");
    g.bench_function("ternd", |b| {
        b.iter(|| {
            let msg = ternd_parse(black_box(&REQUEST[..]));
            msg.verify_integrity(black_box(KEY.as_bytes())).expect("MI");
            msg.verify_fingerprint().expect("FP");
        })
    });
    let mut m = stun::message::Message::new();
    let mi = MessageIntegrity::new_short_term_integrity(KEY.to_owned());
    g.bench_function("stun", |b| {
        b.iter(|| {
            stun_parse(&mut m, black_box(&REQUEST[..]));
            black_box(&mi).check(&mut m).expect("MI");
            FINGERPRINT.check(&m).expect("FP");
        })
    });
    g.finish();
}

fn bench_build_response(c: &mut Criterion) {
    let mut g = group(c, "build_response");
    let tid = TransactionId([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ]);
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853);
    let mut buf = [0u8; 128];
    g.bench_function("ternd", |b| {
        b.iter(|| {
            let n = ternd_build(
                &mut buf,
                black_box(tid),
                black_box(addr),
                black_box(KEY.as_bytes()),
            );
            black_box(&buf[..n]);
        })
    });
    let mut m = stun::message::Message::new();
    let mi = MessageIntegrity::new_short_term_integrity(KEY.to_owned());
    g.bench_function("stun", |b| {
        b.iter(|| {
            // The address and id change per request in a server, so the setter is built in
            // the loop (it is a plain struct: no allocation).
            let xma = XorMappedAddress {
                ip: black_box(addr).ip(),
                port: black_box(addr).port(),
            };
            stun_build(&mut m, black_box(tid.0), &xma, black_box(&mi));
            black_box(&m.raw);
        })
    });
    g.finish();
}

fn bench_channel_data(c: &mut Criterion) {
    let mut g = group(c, "channel_data");
    let frame = channel_frame();
    g.bench_function("ternd", |b| {
        b.iter(|| {
            black_box(
                ChannelData::parse(black_box(&frame[..]), ChannelRange::RFC8656).expect("parse"),
            )
        })
    });
    let mut cd = turn::proto::chandata::ChannelData::default();
    g.bench_function("stun", |b| {
        b.iter(|| {
            cd.raw.clear();
            cd.raw.extend_from_slice(black_box(&frame[..]));
            cd.decode().expect("decode");
            black_box((&cd.number, &cd.data));
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    sanity();
    bench_parse(c);
    bench_parse_verify(c);
    bench_build_response(c);
    bench_channel_data(c);
}

criterion_group!(codec, benches);
criterion_main!(codec);

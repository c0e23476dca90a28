//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and must never panic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::stun::channel::{ChannelData, ChannelRange};
use crate::stun::stream::{self, StreamBuffer};
use crate::stun::{Attribute, Message, MessageBuilder, ParseOptions};
use crate::turn::{FiveTuple, Server, Stats, Transport, testing};

/// Parses `data` as a STUN message (with and without RFC 3489 leniency), decodes every
/// attribute, runs every verification, re-encodes what decoded, and feeds the core.
pub fn message(data: &[u8]) {
    for allow_rfc3489 in [false, true] {
        let opts = ParseOptions {
            allow_rfc3489,
            ..ParseOptions::default()
        };
        let Ok(msg) = Message::parse_with(data, opts) else {
            continue;
        };
        let tid = msg.transaction_id();
        let mut out = [0u8; 2048];
        if let Ok(mut b) = MessageBuilder::new(&mut out, msg.message_type(), tid) {
            for raw in msg.attributes() {
                if let Ok(attr) = Attribute::decode(raw, &tid) {
                    let _ = b.add(&attr);
                    // Typed attributes re-encode to what was decoded.
                    let mut v = [0u8; 2048];
                    if let Ok(n) = attr.encode_value(&tid, &mut v) {
                        let again = crate::stun::RawAttribute {
                            typ: raw.typ,
                            value: &v[..n],
                            offset: 0,
                        };
                        assert_eq!(Attribute::decode(again, &tid).ok(), Some(attr));
                    }
                }
            }
        }
        let _ = msg.verify_integrity(b"key");
        let _ = msg.verify_integrity_sha256(b"key");
        let _ = msg.verify_fingerprint();
        let mut unknown = [0u16; 8];
        let _ = msg.unknown_comprehension_required(crate::stun::attr_type::is_known, &mut unknown);
    }
    let anchor = Instant::now();
    let allow = vec!["192.0.2.0/24".parse().unwrap_or_else(|_| unreachable!())];
    let shared = testing::shared(anchor, allow, |c| c.stun_backward_compatibility = true);
    let mut core = Server::new(Arc::new(shared), Arc::new(Stats::default()), [1; 32]);
    let mut relays = testing::FakeRelays::default();
    let tuple = FiveTuple {
        client: SocketAddr::from(([192, 0, 2, 1], 4000)),
        server: SocketAddr::from(([192, 0, 2, 2], 3478)),
        transport: Transport::Udp,
    };
    let mut out = [0u8; 1500];
    let _ = core.handle_client(data, tuple, anchor, &mut out, &mut relays);
}

/// Parses `data` as ChannelData under both channel ranges.
pub fn channel_data(data: &[u8]) {
    for range in [ChannelRange::RFC8656, ChannelRange::RFC5766] {
        if let Ok(cd) = ChannelData::parse(data, range) {
            assert!(range.contains(cd.channel));
            assert!(cd.data.len() + 4 <= data.len());
            let mut out = [0u8; 70_000];
            let n = ChannelData::encode(cd.channel, cd.data, true, &mut out).unwrap_or(0);
            assert_eq!(ChannelData::parse(&out[..n], range).ok(), Some(cd));
        }
    }
}

/// Splits `data` as a TCP stream: the first byte picks a chunk size for the reads, the rest
/// is the stream. Every frame yielded is at most the limit and parses as what it claims.
pub fn stream(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 64) + 1;
    let max = 1024;
    let range = ChannelRange::RFC5766;
    let mut sb = StreamBuffer::new(max, range);
    'outer: for piece in rest.chunks(chunk) {
        let space = sb.space();
        let n = piece.len().min(space.len());
        space[..n].copy_from_slice(&piece[..n]);
        sb.filled(n);
        loop {
            match sb.next_frame() {
                Ok(Some((kind, frame))) => {
                    assert!(frame.len() <= max);
                    match kind {
                        stream::FrameKind::Stun => {
                            let _ = Message::parse(frame);
                        }
                        stream::FrameKind::ChannelData => {
                            assert!(ChannelData::parse(frame, range).is_ok());
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }
}

/// Parses `data` as a PROXY protocol header (v1 or v2) and checks that parsing is
/// incremental: every prefix answers "need more" until the first decision, which no longer
/// prefix contradicts; a complete header is within bounds and parses the same alone; and
/// addresses it carries survive a v1 round trip.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy::{self, MAX_HEADER_LEN, Proxied};

    let full = proxy::parse(data);
    let mut decided = None;
    for k in 0..=data.len().min(MAX_HEADER_LEN) {
        let r = proxy::parse(&data[..k]);
        match decided {
            None if r != Ok(None) => decided = Some(r),
            None => {}
            Some(Err(_)) => assert!(r.is_err()),
            Some(d) => assert_eq!(r, d),
        }
    }
    match decided {
        None => assert!(data.len() < MAX_HEADER_LEN && full == Ok(None)),
        Some(Err(_)) => assert!(full.is_err()),
        Some(d) => assert_eq!(full, d),
    }
    let Ok(Some((proxied, n))) = full else {
        return;
    };
    assert!(n <= data.len() && n <= MAX_HEADER_LEN);
    assert_eq!(proxy::parse(&data[..n]), full);
    if let Proxied::Addresses {
        source,
        destination,
    } = proxied
    {
        assert_eq!(source.is_ipv4(), destination.is_ipv4());
        let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
        let line = format!(
            "PROXY {proto} {} {} {} {}\r\n",
            source.ip(),
            destination.ip(),
            source.port(),
            destination.port()
        );
        assert_eq!(
            proxy::parse(line.as_bytes()),
            Ok(Some((proxied, line.len())))
        );
    }
}

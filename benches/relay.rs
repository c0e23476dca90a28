//! Relay fast-path micro-benchmarks: the sans-IO forwarding decision of
//! `ternd::turn::Server`, in ns per packet, with 1 and with 10,000 allocations in the table.
//!
//! The steady state is built through the public API only, with real STUN messages:
//! `ternd::turn::testing::shared` (relay 192.0.2.10, ports widened to 10000–60000, no quotas,
//! no unauthenticated rate limit), then for each allocation an Allocate (401, then with REST
//! credentials), a CreatePermission and a ChannelBind (channel 0x4000) on its own client
//! 5-tuple (203.0.113.x:port) towards its own peer (198.18.0.0/15, port 7000; explicitly
//! allowed).
//!
//! Groups (each with `1` and `10000` allocations; a 100-byte payload):
//!
//! - `relay/channel_data_to_peer`: ChannelData client → peer, `handle_client` →
//!   `Outcome::Forward`.
//! - `relay/channel_data_to_client`: peer → client over the channel, `handle_peer` →
//!   `PeerOutcome::ToClient` (ChannelData header written in the headroom).
//! - `relay/send_to_peer`: a Send indication client → peer (XOR-PEER-ADDRESS, DATA),
//!   `handle_client` → `Outcome::Forward`.
//! - `relay/data_to_client`: peer → client without a channel (the channel peer's IP, another
//!   port: permitted, not bound), `handle_peer` → `PeerOutcome::ToClient` (a Data indication
//!   written in the headroom).
//!
//! Each iteration handles one packet for the next allocation, round robin, so with 10,000
//! allocations the lookups touch the whole table rather than one hot entry. Every packet of
//! every allocation is checked once, outside the timed loop, to give the expected outcome.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use ternd::stun::{Attribute, Message, attr_type};
use ternd::turn::testing::steady::{DATA_INDICATION, PAYLOAD, Steady, channel_frame, peer_buffer};
use ternd::turn::{Outcome, PEER_HEADROOM, PeerOutcome};

fn bench_relay(c: &mut Criterion) {
    let states = [
        Steady::new(1, std::time::Instant::now()),
        Steady::new(10_000, std::time::Instant::now()),
    ];
    let frame = channel_frame();
    let mut out = [0u8; 1500];
    let mut buf = peer_buffer();

    // Every packet of every allocation gives what is expected.
    let mut states = states.map(|mut s| {
        let Steady {
            server,
            relays,
            now,
            allocs,
            ..
        } = &mut s;
        for a in allocs.iter() {
            let forward = Outcome::Forward {
                relay: a.relay,
                peer: a.peer,
                start: 4,
                len: PAYLOAD,
            };
            assert_eq!(
                server.handle_client(&frame, a.tuple, *now, &mut out, relays),
                forward
            );
            let o = server.handle_client(&a.send, a.tuple, *now, &mut out, relays);
            let Outcome::Forward {
                relay,
                peer,
                start,
                len,
            } = o
            else {
                panic!("send: {o:?}")
            };
            assert_eq!((relay, peer, len), (a.relay, a.peer, PAYLOAD));
            assert_eq!(a.send[start..start + len], [0xA5; PAYLOAD]);
            assert_eq!(
                server.handle_peer(a.relay, a.peer, &mut buf, PAYLOAD, *now),
                PeerOutcome::ToClient {
                    tuple: a.tuple,
                    start: PEER_HEADROOM - 4,
                    len: 4 + PAYLOAD,
                }
            );
            let o = server.handle_peer(a.relay, a.other_peer, &mut buf, PAYLOAD, *now);
            let PeerOutcome::ToClient { tuple, start, len } = o else {
                panic!("data: {o:?}")
            };
            assert_eq!((tuple, (start, len)), (a.tuple, DATA_INDICATION));
            let m = Message::parse(&buf[start..start + len]).expect("data indication");
            assert_eq!(
                m.get_decoded(attr_type::XOR_PEER_ADDRESS),
                Some(Ok(Attribute::XorPeerAddress(a.other_peer)))
            );
            assert_eq!(
                m.get_decoded(attr_type::DATA),
                Some(Ok(Attribute::Data(&[0x5A; PAYLOAD])))
            );
        }
        s
    });

    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));

    for s in &mut states {
        let n = s.allocs.len();
        let Steady {
            server,
            relays,
            now,
            allocs,
            ..
        } = s;
        let now = *now;
        g.bench_function(BenchmarkId::new("channel_data_to_peer", n), |b| {
            let mut i = 0;
            b.iter(|| {
                let a = &allocs[i];
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(server.handle_client(black_box(&frame), a.tuple, now, &mut out, relays))
            });
        });
        g.bench_function(BenchmarkId::new("channel_data_to_client", n), |b| {
            let mut i = 0;
            b.iter(|| {
                let a = &allocs[i];
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(server.handle_peer(a.relay, a.peer, black_box(&mut buf), PAYLOAD, now))
            });
        });
        g.bench_function(BenchmarkId::new("send_to_peer", n), |b| {
            let mut i = 0;
            b.iter(|| {
                let a = &allocs[i];
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(server.handle_client(black_box(&a.send), a.tuple, now, &mut out, relays))
            });
        });
        g.bench_function(BenchmarkId::new("data_to_client", n), |b| {
            let mut i = 0;
            b.iter(|| {
                let a = &allocs[i];
                i = if i + 1 == n { 0 } else { i + 1 };
                black_box(server.handle_peer(
                    a.relay,
                    a.other_peer,
                    black_box(&mut buf),
                    PAYLOAD,
                    now,
                ))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_relay);
criterion_main!(benches);

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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use ternd::auth::{long_term_key_md5, rest};
use ternd::stun::channel::ChannelData;
use ternd::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};
use ternd::turn::testing::{FakeRelays, shared};
use ternd::turn::{
    FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, Server, Stats, Transport,
};

/// UNIX time at the shared clock anchor.
const UNIX0: u64 = 1_700_000_000;
/// The channel every allocation binds.
const CHANNEL: u16 = 0x4000;
/// Payload bytes per packet.
const PAYLOAD: usize = 100;
/// The relay's bound address (the core keys relay sockets by it).
const RELAY_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// One allocation of the steady state.
struct Alloc {
    tuple: FiveTuple,
    /// The relay socket's bound (local) address.
    relay: SocketAddr,
    /// The peer bound to [`CHANNEL`] (and permitted).
    peer: SocketAddr,
    /// The same IP, another port: permitted, no channel (Data indications).
    other_peer: SocketAddr,
    /// A Send indication to `peer` with a [`PAYLOAD`]-byte DATA.
    send: Vec<u8>,
}

/// A core with `n` allocations, each with a permission and a channel.
struct Steady {
    server: Server,
    relays: FakeRelays,
    now: Instant,
    allocs: Vec<Alloc>,
    /// The last transaction id used.
    tid: u32,
}

/// Long-term credentials after the 401 exchange.
struct Creds {
    username: String,
    key: [u8; 16],
    realm: String,
    nonce: String,
}

fn client_tuple(i: usize) -> FiveTuple {
    let host = u8::try_from(1 + i % 250).expect("host");
    let port = u16::try_from(10_000 + i / 250).expect("port");
    FiveTuple {
        client: SocketAddr::from(([203, 0, 113, host], port)),
        server: SocketAddr::from((RELAY_IP, 3478)),
        transport: Transport::Udp,
    }
}

fn peer_ip(i: usize) -> IpAddr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 1));
    IpAddr::V4(Ipv4Addr::from(base + u32::try_from(i).expect("peer index")))
}

fn request(
    method: Method,
    tid: TransactionId,
    creds: Option<&Creds>,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid)
        .expect("header");
    build(&mut b);
    if let Some(c) = creds {
        b.add(&Attribute::Username(&c.username)).expect("username");
        b.add(&Attribute::Realm(&c.realm)).expect("realm");
        b.add(&Attribute::Nonce(&c.nonce)).expect("nonce");
        b.add_message_integrity(&c.key).expect("integrity");
    }
    let n = b.finish();
    buf[..n].to_vec()
}

fn send_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::SEND, Class::Indication),
        TransactionId([3; 12]),
    )
    .expect("header");
    b.add(&Attribute::XorPeerAddress(peer)).expect("peer");
    b.add(&Attribute::Data(payload)).expect("data");
    let n = b.finish();
    buf[..n].to_vec()
}

fn text(m: &Message<'_>, t: u16) -> String {
    match m.get_decoded(t) {
        Some(Ok(Attribute::Realm(s) | Attribute::Nonce(s))) => s.to_string(),
        other => panic!("attribute {t:#x}: {other:?}"),
    }
}

impl Steady {
    fn new(n: usize) -> Self {
        let now = Instant::now();
        let allow = vec!["198.18.0.0/15".parse().expect("cidr")];
        let shared = shared(now, allow, |c| {
            c.ports.lo = 10_000;
            c.ports.hi = 60_000;
            c.user_quota = 0;
            c.max_allocations_per_ip = 0;
            c.unauth_rate_limit = 0;
        });
        let mut s = Steady {
            server: Server::new(Arc::new(shared), Arc::new(Stats::default()), [42; 32]),
            relays: FakeRelays::default(),
            now,
            allocs: Vec::with_capacity(n),
            tid: 0,
        };
        let (username, password) = rest::credentials("s3cret", "bench", UNIX0 + 86_400, ':');
        let key = long_term_key_md5(&username, "example.org", &password).expect("key");
        let payload = [0xA5u8; PAYLOAD];
        for i in 0..n {
            let tuple = client_tuple(i);
            let transport = |b: &mut MessageBuilder<'_>| {
                b.add(&Attribute::RequestedTransport(17))
                    .expect("transport")
            };

            // The 401 exchange, then the authenticated Allocate.
            let resp = s.exchange(tuple, Method::ALLOCATE, None, transport);
            let m = Message::parse(&resp).expect("401");
            let creds = Creds {
                username: username.clone(),
                key,
                realm: text(&m, attr_type::REALM),
                nonce: text(&m, attr_type::NONCE),
            };
            let resp = s.exchange(tuple, Method::ALLOCATE, Some(&creds), transport);
            let m = Message::parse(&resp).expect("allocate");
            assert_eq!(m.message_type().class, Class::Success, "allocate #{i}");
            let relay = match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
                Some(Ok(Attribute::XorRelayedAddress(a))) => {
                    SocketAddr::new(RELAY_IP.into(), a.port())
                }
                other => panic!("relayed address #{i}: {other:?}"),
            };

            let peer = SocketAddr::new(peer_ip(i), 7000);
            let resp = s.exchange(tuple, Method::CREATE_PERMISSION, Some(&creds), |b| {
                b.add(&Attribute::XorPeerAddress(peer)).expect("peer")
            });
            let m = Message::parse(&resp).expect("permission");
            assert_eq!(m.message_type().class, Class::Success, "permission #{i}");
            let resp = s.exchange(tuple, Method::CHANNEL_BIND, Some(&creds), |b| {
                b.add(&Attribute::ChannelNumber(CHANNEL)).expect("channel");
                b.add(&Attribute::XorPeerAddress(peer)).expect("peer")
            });
            let m = Message::parse(&resp).expect("channel bind");
            assert_eq!(m.message_type().class, Class::Success, "channel bind #{i}");

            s.allocs.push(Alloc {
                tuple,
                relay,
                peer,
                other_peer: SocketAddr::new(peer.ip(), 7001),
                send: send_indication(peer, &payload),
            });
        }
        assert_eq!(s.server.allocation_count(), n);
        s
    }

    /// Sends a request on `tuple`; returns the answer.
    fn exchange(
        &mut self,
        tuple: FiveTuple,
        method: Method,
        creds: Option<&Creds>,
        build: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        self.tid += 1;
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&self.tid.to_be_bytes());
        let pkt = request(method, TransactionId(tid), creds, build);
        let mut out = [0u8; 1500];
        match self
            .server
            .handle_client(&pkt, tuple, self.now, &mut out, &mut self.relays)
        {
            Outcome::Reply { len } => out[..len].to_vec(),
            o => panic!("{method:?} from {}: {o:?}", tuple.client),
        }
    }
}

/// A ChannelData frame on [`CHANNEL`] with a [`PAYLOAD`]-byte payload.
fn channel_frame() -> Vec<u8> {
    let mut frame = vec![0u8; 4 + PAYLOAD];
    let n = ChannelData::encode(CHANNEL, &[0xA5; PAYLOAD], false, &mut frame).expect("frame");
    assert_eq!(n, frame.len());
    frame
}

/// A relay receive buffer with the payload at `PEER_HEADROOM`.
fn peer_buffer() -> Vec<u8> {
    let mut buf = vec![0u8; PEER_HEADROOM + PAYLOAD + PEER_TAILROOM];
    buf[PEER_HEADROOM..PEER_HEADROOM + PAYLOAD].fill(0x5A);
    buf
}

/// Start and length of a Data indication to an IPv4 peer (header, XOR-PEER-ADDRESS, DATA
/// header in front of the payload; the payload already a multiple of four).
const DATA_INDICATION: (usize, usize) = (PEER_HEADROOM - 36, 36 + PAYLOAD);

fn bench_relay(c: &mut Criterion) {
    let states = [Steady::new(1), Steady::new(10_000)];
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

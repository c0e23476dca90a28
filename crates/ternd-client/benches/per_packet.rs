//! The client's per-packet cost in steady state, without sockets: framing a datagram for
//! the server (`Allocation::encode_data`: ChannelData on a bound channel, or a Send
//! indication with channels off) and taking one in (`Allocation::handle_input`: ChannelData
//! or a Data indication from the server). The allocation is made against ternd's sans-IO
//! server core on a fake clock, so the frames are the ones a real server sends.
//!
//! `cargo bench -p ternd-client --bench per_packet`

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ternd_client::{Allocation, Config, Credentials, Encoded, Event, Input};
use ternd_proto::turn::testing::{FakeRelays, shared};
use ternd_proto::turn::{
    FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, Server, Stats, Transport,
};

const SERVER: ([u8; 4], u16) = ([192, 0, 2, 10], 3478);
const CLIENT: ([u8; 4], u16) = ([203, 0, 113, 5], 40_000);
const PEER: ([u8; 4], u16) = ([198, 18, 0, 7], 7000);
/// A typical game-state or media datagram.
const PAYLOAD: usize = 160;

/// ternd's core with fake relay sockets, and a client allocation on it.
struct Setup {
    server: Server,
    relays: FakeRelays,
    alloc: Allocation,
    now: Instant,
}

impl Setup {
    /// An allocation with a permission (and, with `channels`, a channel) for [`PEER`].
    fn new(channels: bool) -> Setup {
        let now = Instant::now();
        let allow = vec!["198.18.0.0/15".parse().expect("cidr")];
        let shared = shared(now, allow, |c| c.unauth_rate_limit = 0);
        let server = Server::new(Arc::new(shared), Arc::new(Stats::default()), [9; 32]);
        let creds = Credentials::rest("s3cret", "bench", 1_700_000_000 + 86_400, ':');
        let config = Config::new(creds).channels(channels);
        let alloc = Allocation::new(config, SocketAddr::from(SERVER), [1; 32], now);
        let mut s = Setup {
            server,
            relays: FakeRelays::default(),
            alloc,
            now,
        };
        s.pump();
        let mut out = [0u8; 2048];
        // The first datagram asks for the permission (and the channel); the second goes.
        let _ = s.alloc.encode_data(peer(), b"first", now, &mut out);
        s.pump();
        let framing = s.alloc.encode_data(peer(), b"again", now, &mut out);
        match (channels, framing) {
            (true, Ok(Encoded::ChannelData(_))) | (false, Ok(Encoded::Indication(_))) => {}
            other => panic!("setup did not reach the steady state: {other:?}"),
        }
        s
    }

    /// Carries the client's requests to the server and the answers back.
    fn pump(&mut self) {
        let tuple = FiveTuple {
            client: SocketAddr::from(CLIENT),
            server: SocketAddr::from(SERVER),
            transport: Transport::Udp,
        };
        for _ in 0..16 {
            let Some(t) = self.alloc.poll_transmit() else {
                break;
            };
            let mut out = [0u8; 2048];
            if let Outcome::Reply { len } =
                self.server
                    .handle_client(&t.payload, tuple, self.now, &mut out, &mut self.relays)
            {
                let _ = self
                    .alloc
                    .handle_input(&out[..len], SocketAddr::from(SERVER), self.now);
            }
            while self.server.poll_command().is_some() {}
        }
        while let Some(e) = self.alloc.poll_event() {
            if let Event::Failed(e) = e {
                panic!("setup failed: {e}");
            }
        }
    }

    /// What the server sends the client when the peer sends `payload`.
    fn peer_sends(&mut self, payload: &[u8]) -> Vec<u8> {
        let relayed = self.alloc.relayed().expect("allocated");
        // The fake relays bind the server's address and advertise another.
        let relay = SocketAddr::new(IpAddr::from(SERVER.0), relayed.port());
        let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
        match self
            .server
            .handle_peer(relay, peer(), &mut buf, payload.len(), self.now)
        {
            PeerOutcome::ToClient { start, len, .. } => buf[start..start + len].to_vec(),
            PeerOutcome::Dropped(why) => panic!("the server dropped the peer's datagram: {why:?}"),
        }
    }
}

fn peer() -> SocketAddr {
    SocketAddr::from(PEER)
}

fn per_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("client_per_packet");
    g.throughput(Throughput::Elements(1));
    let payload = [0x5Au8; PAYLOAD];
    for (name, channels) in [("channel_data", true), ("indication", false)] {
        let mut s = Setup::new(channels);
        let mut out = [0u8; 2048];
        // One second into the allocation: the permission and channel are fresh, so no
        // refresh is due however many iterations criterion runs.
        let now = s.now + Duration::from_secs(1);
        g.bench_function(format!("encode_{name}_{PAYLOAD}B"), |b| {
            b.iter(|| {
                black_box(
                    s.alloc
                        .encode_data(peer(), black_box(&payload), now, &mut out),
                )
            })
        });
        let frame = s.peer_sends(&payload);
        let server = SocketAddr::from(SERVER);
        g.bench_function(format!("receive_{name}_{PAYLOAD}B"), |b| {
            b.iter(
                || match s.alloc.handle_input(black_box(&frame), server, now) {
                    Input::Data { data, .. } => black_box(data.len()),
                    other => panic!("not data: {other:?}"),
                },
            )
        });
    }
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);

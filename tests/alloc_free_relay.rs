//! The relay fast path performs no heap allocation.
//!
//! A counting `#[global_allocator]` wraps `System` (the pattern of `alloc_free_parse.rs`).
//! Counting is switched on per thread (a thread-local flag), so allocations made by the test
//! harness or by other tests running on other threads are not counted; only what the
//! measured closure does on this thread is.
//!
//! The steady state (1 and 1,000 allocations, each with a permission and a channel) is built
//! through the public API with real STUN messages, as in `benches/relay.rs`: Allocate (401,
//! then with REST credentials), CreatePermission and ChannelBind on distinct client
//! 5-tuples towards distinct peers. Then, counted, [`ITERATIONS`] packets of each kind,
//! round robin over the allocations:
//!
//! - ChannelData client → peer (`Server::handle_client` → `Outcome::Forward`);
//! - ChannelData peer → client (`Server::handle_peer` → `PeerOutcome::ToClient`);
//! - a Send indication client → peer (`handle_client` → `Outcome::Forward`);
//! - a Data indication peer → client (`handle_peer` → `PeerOutcome::ToClient`, from a
//!   permitted peer without a channel).
//!
//! Nothing is warmed up before counting: the first packet counts too. Each path is counted
//! separately, so a failure names the path. `counter_sees_allocations` proves the counter is
//! live, so a zero is not vacuous.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use ternd::auth::{long_term_key_md5, rest};
use ternd::stun::channel::ChannelData;
use ternd::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};
use ternd::turn::testing::{FakeRelays, shared};
use ternd::turn::{
    FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, Server, Stats, Transport,
};

struct Counting;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: the allocator can run while this thread's locals are being torn down.
    if ENABLED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with counting on for this thread; returns its result and the allocations made.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    ENABLED.with(|e| e.set(true));
    let r = f();
    ENABLED.with(|e| e.set(false));
    (r, COUNT.with(Cell::get))
}

/// Packets per path per test.
const ITERATIONS: usize = 10_000;

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

/// Handles [`ITERATIONS`] packets on each path, round robin over the allocations, each path
/// counted on its own; panics naming every path that allocated or gave an unexpected outcome.
fn assert_paths_allocation_free(s: &mut Steady) {
    let n = s.allocs.len();
    let frame = channel_frame();
    let mut out = [0u8; 1500];
    let mut buf = peer_buffer();
    let Steady {
        server,
        relays,
        now,
        allocs,
        ..
    } = s;
    let now = *now;

    // Each closure returns how many packets gave the expected outcome.
    let (cd_out, cd_out_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_client(black_box(&frame), a.tuple, now, &mut out, relays);
            let want = Outcome::Forward {
                relay: a.relay,
                peer: a.peer,
                start: 4,
                len: PAYLOAD,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });
    let (cd_in, cd_in_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_peer(a.relay, a.peer, black_box(&mut buf), PAYLOAD, now);
            let want = PeerOutcome::ToClient {
                tuple: a.tuple,
                start: PEER_HEADROOM - 4,
                len: 4 + PAYLOAD,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });
    let (send, send_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_client(black_box(&a.send), a.tuple, now, &mut out, relays);
            ok += usize::from(matches!(
                black_box(o),
                Outcome::Forward { relay, peer, len: PAYLOAD, .. }
                    if relay == a.relay && peer == a.peer
            ));
        }
        ok
    });
    let (data, data_allocs) = count_allocs(|| {
        let mut ok = 0;
        for k in 0..ITERATIONS {
            let a = &allocs[k % n];
            let o = server.handle_peer(a.relay, a.other_peer, black_box(&mut buf), PAYLOAD, now);
            let (start, len) = DATA_INDICATION;
            let want = PeerOutcome::ToClient {
                tuple: a.tuple,
                start,
                len,
            };
            ok += usize::from(black_box(o) == want);
        }
        ok
    });

    let results = [
        ("ChannelData client -> peer", cd_out, cd_out_allocs),
        ("ChannelData peer -> client", cd_in, cd_in_allocs),
        ("Send indication client -> peer", send, send_allocs),
        ("Data indication peer -> client", data, data_allocs),
    ];
    let failures: Vec<String> = results
        .iter()
        .filter(|&&(_, ok, allocs)| ok != ITERATIONS || allocs != 0)
        .map(|(path, ok, allocs)| {
            format!("{path}: {allocs} heap allocation(s), {ok}/{ITERATIONS} expected outcomes")
        })
        .collect();
    assert!(
        failures.is_empty(),
        "with {n} allocation(s):\n{}",
        failures.join("\n")
    );

    // The last Data indication is well formed (the outcome checks above are positional).
    let (start, len) = DATA_INDICATION;
    let m = Message::parse(&buf[start..start + len]).expect("data indication");
    let last = &allocs[(ITERATIONS - 1) % n];
    assert_eq!(
        m.get_decoded(attr_type::XOR_PEER_ADDRESS),
        Some(Ok(Attribute::XorPeerAddress(last.other_peer)))
    );
    assert_eq!(
        m.get_decoded(attr_type::DATA),
        Some(Ok(Attribute::Data(&[0x5A; PAYLOAD])))
    );
    let st = server.stats().snapshot();
    assert_eq!(st.relayed_out_packets, 2 * ITERATIONS as u64);
    assert_eq!(st.relayed_in_packets, 2 * ITERATIONS as u64);
}

#[test]
fn one_allocation_relays_without_heap_allocation() {
    assert_paths_allocation_free(&mut Steady::new(1));
}

#[test]
fn thousand_allocations_relay_without_heap_allocation() {
    assert_paths_allocation_free(&mut Steady::new(1_000));
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

//! The sans-IO client against ternd's sans-IO server core (`ternd_proto::turn::Server`,
//! the real protocol logic with fake relay sockets) on a fake clock: an hour of an
//! allocation's life runs in milliseconds.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ternd_proto::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};
use ternd_proto::turn::testing::{FakeRelays, shared};
use ternd_proto::turn::{
    CoreConfig, FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, PeerOutcome, Server,
    Stats as ServerStats, Transport,
};

use super::answer::is_private;
use super::*;
use crate::Credentials;

const SERVER: ([u8; 4], u16) = ([192, 0, 2, 10], 3478);
const CLIENT: ([u8; 4], u16) = ([203, 0, 113, 5], 40_000);
const PEER: ([u8; 4], u16) = ([198, 18, 0, 7], 7000);
const UNIX0: u64 = 1_700_000_000;

fn server_addr() -> SocketAddr {
    SocketAddr::from(SERVER)
}

fn peer() -> SocketAddr {
    SocketAddr::from(PEER)
}

/// REST credentials for "game" valid for a day from the server's clock anchor.
fn rest() -> Credentials {
    Credentials::rest("s3cret", "game", UNIX0 + 86_400, ':')
}

/// One simulated server: ternd's core and its fake relay sockets.
struct Sim {
    server: Server,
    relays: FakeRelays,
    addr: SocketAddr,
    /// Packets from the client are lost while this is set.
    blackhole: bool,
    /// Payloads the server forwarded to peers.
    forwarded: Vec<Vec<u8>>,
    /// Requests the server received, by method.
    requests: Vec<Method>,
}

impl Sim {
    fn new(anchor: Instant, tweak: impl FnOnce(&mut CoreConfig)) -> Sim {
        let allow = vec!["198.18.0.0/15".parse().expect("cidr")];
        let shared = shared(anchor, allow, |c| {
            c.unauth_rate_limit = 0;
            tweak(c);
        });
        Sim {
            server: Server::new(Arc::new(shared), Arc::new(ServerStats::default()), [9; 32]),
            relays: FakeRelays::default(),
            addr: server_addr(),
            blackhole: false,
            forwarded: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn tuple(&self) -> FiveTuple {
        FiveTuple {
            client: SocketAddr::from(CLIENT),
            server: self.addr,
            transport: Transport::Udp,
        }
    }

    /// Delivers one packet from the client; returns the answer, if any.
    fn deliver(&mut self, packet: &[u8], now: Instant) -> Option<Vec<u8>> {
        if self.blackhole {
            return None;
        }
        if let Ok(m) = Message::parse(packet)
            && m.message_type().class == Class::Request
        {
            self.requests.push(m.message_type().method);
        }
        let mut out = vec![0u8; 2048];
        let tuple = self.tuple();
        match self
            .server
            .handle_client(packet, tuple, now, &mut out, &mut self.relays)
        {
            Outcome::Reply { len } => Some(out[..len].to_vec()),
            Outcome::Forward {
                start, len, peer, ..
            } => {
                assert_eq!(peer, self::peer());
                self.forwarded.push(packet[start..start + len].to_vec());
                None
            }
            _ => None,
        }
        .inspect(|_| while self.server.poll_command().is_some() {})
    }

    /// The peer sends `payload` to relayed address `relayed`; returns what reaches the
    /// client.
    fn peer_sends(&mut self, relayed: SocketAddr, payload: &[u8], now: Instant) -> Option<Vec<u8>> {
        // The fake relays bind 192.0.2.10 and advertise 198.51.100.10.
        let relay = SocketAddr::new(IpAddr::from([192, 0, 2, 10]), relayed.port());
        let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
        match self
            .server
            .handle_peer(relay, peer(), &mut buf, payload.len(), now)
        {
            PeerOutcome::ToClient { start, len, .. } => Some(buf[start..start + len].to_vec()),
            PeerOutcome::Dropped(_) => None,
        }
    }
}

/// Carries every transmit to the server it is addressed to and the answers back; returns
/// the events.
fn pump(a: &mut Allocation, sims: &mut [&mut Sim], now: Instant) -> Vec<Event> {
    for _ in 0..100 {
        let Some(t) = a.poll_transmit() else { break };
        let Some(sim) = sims.iter_mut().find(|s| s.addr == t.destination) else {
            continue;
        };
        if let Some(answer) = sim.deliver(&t.payload, now) {
            let from = sim.addr;
            assert_eq!(a.handle_input(&answer, from, now), Input::Handled);
        }
    }
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn allocated(sim: &mut Sim, config: Config, now: Instant) -> Allocation {
    let mut a = Allocation::new(config, sim.addr, [1; 32], now);
    let events = pump(&mut a, &mut [sim], now);
    assert!(
        matches!(events.as_slice(), [Event::Allocated { .. }]),
        "{events:?}"
    );
    a
}

/// Sends a datagram to the peer; returns how it was framed.
fn send(a: &mut Allocation, sim: &mut Sim, payload: &[u8], now: Instant) -> Encoded {
    let mut out = [0u8; 1500];
    let enc = a
        .encode_data(peer(), payload, now, &mut out)
        .expect("encode");
    if let Encoded::ChannelData(n) | Encoded::Indication(n) = enc {
        assert_eq!(sim.deliver(&out[..n], now), None, "data is not answered");
    }
    enc
}

#[test]
fn allocates_through_the_challenge_and_relays_over_a_channel() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = allocated(&mut sim, Config::new(rest()), t0);
    assert_eq!(sim.requests, [Method::ALLOCATE, Method::ALLOCATE]);
    assert_eq!(
        a.relayed().map(|r| r.ip()),
        Some(IpAddr::from([198, 51, 100, 10]))
    );
    assert_eq!(a.mapped(), Some(SocketAddr::from(CLIENT)));
    assert_eq!(a.lifetime(), Duration::from_secs(600));
    assert_eq!(a.realm(), Some("example.org"));
    // ternd offers SHA-256 for REST credentials: the client takes it.
    assert_eq!(a.password_algorithm(), Some(PasswordAlgorithmKind::Sha256));

    // The first datagram to a new peer asks for a channel (which installs the permission).
    assert_eq!(send(&mut a, &mut sim, b"hello", t0), Encoded::Pending);
    let events = pump(&mut a, &mut [&mut sim], t0);
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::PermissionCreated { .. },
                Event::ChannelBound { number: 0x4000, .. }
            ]
        ),
        "{events:?}"
    );
    assert!(matches!(
        send(&mut a, &mut sim, b"hello", t0),
        Encoded::ChannelData(9)
    ));
    assert_eq!(sim.forwarded, [b"hello".to_vec()]);

    let relayed = a.relayed().expect("relayed");
    let back = sim.peer_sends(relayed, b"world", t0).expect("to client");
    assert_eq!(
        a.handle_input(&back, sim.addr, t0),
        Input::Data {
            peer: peer(),
            data: b"world"
        }
    );
    assert_eq!(a.stats().channel_data_received, 1);
    // From anyone but the server: ignored.
    assert_eq!(
        a.handle_input(&back, SocketAddr::from(PEER), t0),
        Input::Ignored
    );
}

#[test]
fn indications_only_when_channels_are_off() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = allocated(&mut sim, Config::new(rest()).channels(false), t0);
    assert_eq!(send(&mut a, &mut sim, b"x", t0), Encoded::Pending);
    let events = pump(&mut a, &mut [&mut sim], t0);
    assert!(
        matches!(events.as_slice(), [Event::PermissionCreated { .. }]),
        "{events:?}"
    );
    assert!(matches!(
        send(&mut a, &mut sim, b"x", t0),
        Encoded::Indication(_)
    ));
    assert_eq!(sim.forwarded, [b"x".to_vec()]);
    let back = sim.peer_sends(a.relayed().unwrap(), b"y", t0).unwrap();
    assert_eq!(
        a.handle_input(&back, sim.addr, t0),
        Input::Data {
            peer: peer(),
            data: b"y"
        }
    );
    assert_eq!(a.stats().data_indications_received, 1);
}

/// Runs `a` and `sim` from `from` to `until` on the fake clock, one timer at a time, with a
/// datagram each way every `every`. Returns how many round trips went through.
fn run(
    a: &mut Allocation,
    sim: &mut Sim,
    from: Instant,
    until: Instant,
    every: Duration,
) -> (u32, Vec<Event>) {
    let mut now = from;
    let mut next_data = from;
    let mut events = Vec::new();
    let mut round_trips = 0;
    for _ in 0..100_000 {
        if now >= until {
            break;
        }
        if now >= next_data {
            let before = sim.forwarded.len();
            let enc = send(a, sim, b"state", now);
            assert!(
                matches!(enc, Encoded::ChannelData(_)),
                "at {:?}: {enc:?}",
                now - from
            );
            assert_eq!(sim.forwarded.len(), before + 1, "lost at {:?}", now - from);
            let back = sim
                .peer_sends(a.relayed().unwrap(), b"ack", now)
                .unwrap_or_else(|| panic!("peer refused at {:?}", now - from));
            assert!(matches!(
                a.handle_input(&back, sim.addr, now),
                Input::Data { .. }
            ));
            round_trips += 1;
            next_data = now + every;
        }
        let next = [
            a.poll_timeout(),
            sim.server.poll_timeout(),
            Some(next_data),
            Some(until),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        assert!(next >= now, "time goes forward");
        now = next;
        a.handle_timeout(now);
        sim.server.handle_timeout(now, &mut sim.relays);
        events.extend(pump(a, &mut [sim], now));
    }
    assert!(now >= until, "the run ended early at {:?}", now - from);
    (round_trips, events)
}

#[test]
fn an_hour_on_a_fake_clock_keeps_allocation_permission_and_channel() {
    let t0 = Instant::now();
    // Nonces live 2 minutes: the hour sees about 30 of them go stale.
    let mut sim = Sim::new(t0, |c| c.nonce_lifetime = Duration::from_secs(120));
    let mut a = allocated(&mut sim, Config::new(rest()), t0);
    assert_eq!(send(&mut a, &mut sim, b"first", t0), Encoded::Pending);
    pump(&mut a, &mut [&mut sim], t0);
    sim.requests.clear();

    let hour = t0 + Duration::from_secs(3600);
    let (trips, events) = run(&mut a, &mut sim, t0, hour, Duration::from_secs(10));
    assert_eq!(trips, 360);
    assert!(
        events.iter().all(|e| matches!(e, Event::Refreshed { .. })),
        "{events:?}"
    );
    let count = |m: Method| sim.requests.iter().filter(|&&r| r == m).count();
    // Refresh at 540 s of each 600 s lifetime: 6 in the hour.
    assert_eq!(events.len(), 6, "{events:?}");
    // The channel re-bound every 540 s; the permission refreshed 240 s after its last
    // refresh (a re-bind refreshes it too); each 438 adds a retry.
    let stale = a.stats().stale_nonces as usize;
    assert!(stale >= 10, "nonces went stale {stale} times");
    assert!(count(Method::CHANNEL_BIND) >= 6, "{:?}", sim.requests);
    assert!(count(Method::CREATE_PERMISSION) >= 8, "{:?}", sim.requests);
    assert!(count(Method::REFRESH) >= 6, "{:?}", sim.requests);
    // Never a Send indication: ChannelData throughout, across every nonce change.
    assert_eq!(a.stats().indications_sent, 0);
    assert_eq!(a.stats().channel_data_sent, 360);
    assert_eq!(a.stats().retransmissions, 0);
    assert!(a.is_allocated());
    assert_eq!(sim.server.allocation_count(), 1);
    // Keepalives went out only when nothing else did (data every 10 s: never).
    assert_eq!(a.stats().keepalives, 0);
}

#[test]
fn an_idle_allocation_sends_keepalives_over_udp_only() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = allocated(&mut sim, Config::new(rest()), t0);
    let mut now = t0;
    for _ in 0..10 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
        pump(&mut a, &mut [&mut sim], now);
    }
    assert_eq!(now - t0, Duration::from_secs(150));
    assert_eq!(a.stats().keepalives, 10);

    let mut b = Allocation::new(
        Config::new(rest()).protocol(Protocol::Tcp),
        sim.addr,
        [2; 32],
        t0,
    );
    assert!(b.poll_transmit().is_some());
    b.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(b.stats().keepalives, 0);
}

#[test]
fn requests_are_retransmitted_at_rfc_8489_times_then_fail() {
    let t0 = Instant::now();
    let mut a = Allocation::new(Config::new(rest()), server_addr(), [3; 32], t0);
    let mut sent = Vec::new();
    let mut now = t0;
    let failed = loop {
        while let Some(t) = a.poll_transmit() {
            assert_eq!(t.destination, server_addr());
            sent.push((now - t0).as_millis());
        }
        if let Some(e) = a.poll_event() {
            break (e, (now - t0).as_millis());
        }
        now = a.poll_timeout().expect("a timer while allocating");
        a.handle_timeout(now);
    };
    assert_eq!(sent, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(
        matches!(failed, (Event::Failed(Error::Timeout { .. }), 39_500)),
        "{failed:?}"
    );
    assert!(a.is_done());
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(a.stats().retransmissions, 6);
}

#[test]
fn over_tcp_a_request_is_sent_once() {
    let t0 = Instant::now();
    let config = Config::new(rest()).protocol(Protocol::Tcp);
    let mut a = Allocation::new(config, server_addr(), [4; 32], t0);
    assert!(a.poll_transmit().is_some());
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_millis(39_500)));
    a.handle_timeout(t0 + Duration::from_secs(39));
    assert!(a.poll_transmit().is_none());
    a.handle_timeout(t0 + Duration::from_millis(39_500));
    assert!(matches!(
        a.poll_event(),
        Some(Event::Failed(Error::Timeout { .. }))
    ));
}

#[test]
fn a_lost_answer_is_retransmitted_and_the_allocation_survives() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = allocated(&mut sim, Config::new(rest()).keepalive(None), t0);
    // The Refresh is due at 540 s; its first two sends are lost.
    let due = a.poll_timeout().unwrap();
    assert_eq!(due - t0, Duration::from_secs(540));
    sim.blackhole = true;
    a.handle_timeout(due);
    pump(&mut a, &mut [&mut sim], due);
    let resend = a.poll_timeout().unwrap();
    assert_eq!(resend - due, Duration::from_millis(500));
    a.handle_timeout(resend);
    pump(&mut a, &mut [&mut sim], resend);
    sim.blackhole = false;
    let again = a.poll_timeout().unwrap();
    assert_eq!(again - resend, Duration::from_secs(1));
    a.handle_timeout(again);
    let events = pump(&mut a, &mut [&mut sim], again);
    assert!(
        matches!(events.as_slice(), [Event::Refreshed { .. }]),
        "{events:?}"
    );
    assert_eq!(a.stats().retransmissions, 2);
}

#[test]
fn an_unanswered_refresh_loses_the_allocation_before_it_expires_on_the_server() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let config = Config::new(rest()).keepalive(None);
    let mut a = allocated(&mut sim, config, t0);
    sim.blackhole = true;
    let mut last = None;
    for _ in 0..1000 {
        let Some(now) = a.poll_timeout() else { break };
        a.handle_timeout(now);
        if let Some(e) = pump(&mut a, &mut [&mut sim], now).pop() {
            last = Some((e, now - t0));
        }
    }
    let (e, at) = last.expect("an event");
    assert!(matches!(e, Event::Failed(Error::Expired)), "{e:?}");
    // Refresh at 540 s, sent 7 times until 579.5 s, again, and the end at 600 s.
    assert_eq!(at, Duration::from_secs(600));
    assert_eq!(a.stats().requests, 2 + 2);
    assert!(a.is_done());
}

#[test]
fn close_deletes_the_allocation_with_refresh_zero() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = allocated(&mut sim, Config::new(rest()), t0);
    assert_eq!(sim.server.allocation_count(), 1);
    a.close(t0);
    let events = pump(&mut a, &mut [&mut sim], t0);
    assert!(matches!(events.as_slice(), [Event::Closed]), "{events:?}");
    assert_eq!(sim.server.allocation_count(), 0);
    assert!(a.is_done());
    let mut out = [0u8; 64];
    assert!(matches!(
        a.encode_data(peer(), b"x", t0, &mut out),
        Err(Error::NotAllocated)
    ));
}

#[test]
fn md5_when_sha256_is_not_offered_and_wrong_passwords_fail_with_401() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    // The static user "alice" is stored as a password: ternd offers SHA-256 for it too,
    // so only a wrong password is tested against the server...
    let mut a = Allocation::new(
        Config::new(Credentials::new("alice", "nope")),
        sim.addr,
        [5; 32],
        t0,
    );
    let events = pump(&mut a, &mut [&mut sim], t0);
    assert!(
        matches!(
            events.as_slice(),
            [Event::Failed(Error::Failure { code: 401, .. })]
        ),
        "{events:?}"
    );
    // ...and MD5 against a challenge without PASSWORD-ALGORITHMS (an RFC 5389 server).
    let mut b = Allocation::new(
        Config::new(Credentials::new("u", "p")),
        server_addr(),
        [6; 32],
        t0,
    );
    let req = b.poll_transmit().unwrap();
    let challenge = challenge(&req.payload, "plain-nonce", false);
    assert_eq!(
        b.handle_input(&challenge, server_addr(), t0),
        Input::Handled
    );
    assert_eq!(b.password_algorithm(), Some(PasswordAlgorithmKind::Md5));
    let signed = b.poll_transmit().unwrap();
    let m = Message::parse(&signed.payload).unwrap();
    assert!(m.has_integrity() && !m.has_integrity_sha256());
    assert!(m.get(attr_type::PASSWORD_ALGORITHM).is_none());
    assert!(m.get(attr_type::USERNAME).is_some());
}

/// A 401 answering `request` with `nonce` and, if `algorithms`, PASSWORD-ALGORITHMS
/// (SHA-256, MD5).
fn challenge(request: &[u8], nonce: &str, algorithms: bool) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut out = vec![0u8; 512];
    let mut b = MessageBuilder::new(
        &mut out,
        MessageType::new(req.message_type().method, Class::Error),
        req.transaction_id(),
    )
    .unwrap();
    b.add(&Attribute::ErrorCode(ternd_proto::stun::ErrorCode::new(
        401,
        "Unauthorized",
    )))
    .unwrap();
    b.add(&Attribute::Realm("example.net")).unwrap();
    b.add(&Attribute::Nonce(nonce)).unwrap();
    if algorithms {
        b.add_raw(attr_type::PASSWORD_ALGORITHMS, &[0, 2, 0, 0, 0, 1, 0, 0])
            .unwrap();
    }
    let n = b.finish();
    out.truncate(n);
    out
}

#[test]
fn userhash_replaces_username_when_the_nonce_offers_it() {
    let t0 = Instant::now();
    let mut a = Allocation::new(
        Config::new(Credentials::new("bob", "pw")),
        server_addr(),
        [7; 32],
        t0,
    );
    let req = a.poll_transmit().unwrap();
    // Security features 0xC00000: password algorithms and username anonymity.
    let c = challenge(&req.payload, "obMatJos2wAAAabcdef", true);
    assert_eq!(a.handle_input(&c, server_addr(), t0), Input::Handled);
    assert!(a.uses_userhash());
    let signed = a.poll_transmit().unwrap();
    let m = Message::parse(&signed.payload).unwrap();
    assert!(m.get(attr_type::USERNAME).is_none());
    let expected = ternd_proto::auth::userhash("bob", "example.net").unwrap();
    assert!(matches!(
        m.get_decoded(attr_type::USERHASH),
        Some(Ok(Attribute::UserHash(h))) if *h == expected
    ));
    assert!(m.has_integrity_sha256());
    assert!(matches!(
        m.get_decoded(attr_type::PASSWORD_ALGORITHM),
        Some(Ok(Attribute::PasswordAlgorithm(p))) if p.algorithm == 2
    ));
}

#[test]
fn a_stripped_password_algorithms_list_is_a_downgrade() {
    let t0 = Instant::now();
    let mut a = Allocation::new(
        Config::new(Credentials::new("bob", "pw")),
        server_addr(),
        [8; 32],
        t0,
    );
    let req = a.poll_transmit().unwrap();
    let c = challenge(&req.payload, "obMatJos2gAAAabcdef", false);
    a.handle_input(&c, server_addr(), t0);
    assert!(matches!(
        a.poll_event(),
        Some(Event::Failed(Error::Downgrade))
    ));
    assert!(a.poll_transmit().is_none());
}

#[test]
fn a_forged_success_is_ignored_and_the_real_one_taken() {
    let t0 = Instant::now();
    let mut sim = Sim::new(t0, |_| {});
    let mut a = Allocation::new(Config::new(rest()), sim.addr, [10; 32], t0);
    let first = a.poll_transmit().unwrap();
    let c = sim.deliver(&first.payload, t0).unwrap();
    a.handle_input(&c, sim.addr, t0);
    let signed = a.poll_transmit().unwrap();
    // A success with the right transaction id but no integrity: dropped.
    let req = Message::parse(&signed.payload).unwrap();
    let mut forged = vec![0u8; 128];
    let mut b = MessageBuilder::new(
        &mut forged,
        MessageType::new(Method::ALLOCATE, Class::Success),
        req.transaction_id(),
    )
    .unwrap();
    b.add(&Attribute::XorRelayedAddress(SocketAddr::from((
        [6, 6, 6, 6],
        6,
    ))))
    .unwrap();
    let n = b.finish();
    assert_eq!(a.handle_input(&forged[..n], sim.addr, t0), Input::Ignored);
    assert!(!a.is_allocated());
    let real = sim.deliver(&signed.payload, t0).unwrap();
    assert_eq!(a.handle_input(&real, sim.addr, t0), Input::Handled);
    assert!(a.is_allocated());
    assert_ne!(a.relayed(), Some(SocketAddr::from(([6, 6, 6, 6], 6))));
}

#[test]
fn try_alternate_is_followed_once_with_the_same_credentials() {
    let t0 = Instant::now();
    let alt = SocketAddr::from(([192, 0, 2, 11], 3478));
    let mut draining = Sim::new(t0, |c| c.alternate_server = Some(alt));
    draining.server.shared().set_draining(true);
    let mut other = Sim::new(t0, |_| {});
    other.addr = alt;
    let config = Config::new(rest()).allow_private_alternates(true);
    let mut a = Allocation::new(config, draining.addr, [11; 32], t0);
    let events = pump(&mut a, &mut [&mut draining, &mut other], t0);
    assert!(
        matches!(
            events.as_slice(),
            [Event::Redirected { to, .. }, Event::Allocated { .. }] if *to == alt
        ),
        "{events:?}"
    );
    assert_eq!(a.server(), alt);
    assert_eq!(other.server.allocation_count(), 1);
    assert_eq!(draining.server.allocation_count(), 0);

    // Two draining servers pointing at each other: followed once, then a failure.
    let mut back = Sim::new(t0, |c| c.alternate_server = Some(server_addr()));
    back.addr = alt;
    back.server.shared().set_draining(true);
    let config = Config::new(rest()).allow_private_alternates(true);
    let mut b = Allocation::new(config, draining.addr, [12; 32], t0);
    let events = pump(&mut b, &mut [&mut draining, &mut back], t0);
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::Redirected { .. },
                Event::Failed(Error::Failure { code: 300, .. })
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn a_private_alternate_is_refused_unless_allowed() {
    let t0 = Instant::now();
    let alt = SocketAddr::from(([10, 0, 0, 1], 3478));
    let mut draining = Sim::new(t0, |c| c.alternate_server = Some(alt));
    draining.server.shared().set_draining(true);
    let mut a = Allocation::new(Config::new(rest()), draining.addr, [13; 32], t0);
    let events = pump(&mut a, &mut [&mut draining], t0);
    assert!(
        matches!(events.as_slice(), [Event::Failed(Error::RefusedAlternate(x))] if *x == alt),
        "{events:?}"
    );
    assert!(is_private("127.0.0.1".parse().unwrap()));
    assert!(is_private("fd00::1".parse().unwrap()));
    assert!(is_private("::ffff:192.168.1.1".parse().unwrap()));
    assert!(!is_private("203.0.113.9".parse().unwrap()));
    assert!(!is_private("2001:db8::1".parse().unwrap()));
}

#[test]
fn dual_stack_asks_for_an_additional_family() {
    let t0 = Instant::now();
    let config = Config::new(rest()).family(Family::Dual);
    let mut a = Allocation::new(config, server_addr(), [14; 32], t0);
    let t = a.poll_transmit().unwrap();
    let m = Message::parse(&t.payload).unwrap();
    assert!(matches!(
        m.get_decoded(attr_type::ADDITIONAL_ADDRESS_FAMILY),
        Some(Ok(Attribute::AdditionalAddressFamily(
            ternd_proto::stun::AddressFamily::V6
        )))
    ));
    let mut b = Allocation::new(
        Config::new(rest()).family(Family::V6),
        server_addr(),
        [15; 32],
        t0,
    );
    let m2 = b.poll_transmit().unwrap();
    let m2 = Message::parse(&m2.payload).unwrap();
    assert!(m2.get(attr_type::REQUESTED_ADDRESS_FAMILY).is_some());
    // ternd's test core has no IPv6 relay: the dual-stack allocation is IPv4 with the
    // refusal reported.
    let mut sim = Sim::new(t0, |_| {});
    let mut c = Allocation::new(
        Config::new(rest()).family(Family::Dual),
        sim.addr,
        [16; 32],
        t0,
    );
    let events = pump(&mut c, &mut [&mut sim], t0);
    assert!(
        matches!(events.as_slice(), [Event::Allocated { refused_family: Some(440), relayed, .. }] if relayed.len() == 1),
        "{events:?}"
    );
}

#[test]
fn transaction_ids_are_unpredictable_and_distinct() {
    let mut s = TidSource::new([1; 32]);
    let a = s.next();
    let b = s.next();
    assert_ne!(a, b);
    let mut other = TidSource::new([2; 32]);
    assert_ne!(other.next(), a);
    assert_ne!(a.0, [0; 12]);
    let _ = TransactionId([0; 12]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input from the network panics the client, allocated or not.
    #[test]
    fn arbitrary_input_never_panics(packets in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 1..8)) {
        let t0 = Instant::now();
        let mut sim = Sim::new(t0, |_| {});
        let mut a = allocated(&mut sim, Config::new(rest()), t0);
        let mut fresh = Allocation::new(Config::new(rest()), server_addr(), [17; 32], t0);
        for p in &packets {
            let _ = a.handle_input(p, server_addr(), t0);
            let _ = fresh.handle_input(p, server_addr(), t0);
            // ChannelData-looking and STUN-looking variants of the same bytes.
            let mut cd = p.clone();
            if cd.len() >= 4 { cd[0] = 0x40; cd[1] = 0x00; }
            let _ = a.handle_input(&cd, server_addr(), t0);
            let mut stun = p.clone();
            if stun.len() >= 20 {
                stun[0] = 0x01; stun[1] = 0x13;
                stun[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            }
            let _ = a.handle_input(&stun, server_addr(), t0);
        }
        a.handle_timeout(t0 + Duration::from_secs(1));
        while a.poll_transmit().is_some() {}
        while a.poll_event().is_some() {}
    }
}

//! TURN over UDP against the real server on loopback, with a small client built on ternd's
//! codec (the interop tests in `turn_interop.rs` use clients nobody here wrote).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ternd::config::{Config, PortRange, RelayConfig};
use ternd::stun::{Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId};

mod common;
use common::{Client, SECRET, error_code, rss_kib};

fn server(ports: (u16, u16), lifetime: Duration) -> ternd::net::Handle {
    ternd::net::start(&config(ports, lifetime)).expect("start")
}

/// Two workers on 127.0.0.1, relaying on 127.0.0.1 with `ports`, loopback peers allowed.
fn config(ports: (u16, u16), lifetime: Duration) -> Config {
    let mut c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 2,
        relay: RelayConfig {
            relay_ips: vec!["127.0.0.1".parse().unwrap()],
            ports: PortRange {
                lo: ports.0,
                hi: ports.1,
            },
            allow_peer: vec!["127.0.0.0/8".parse().unwrap()],
            default_allocation_lifetime: lifetime,
            max_allocation_lifetime: lifetime.max(Duration::from_secs(3600)),
            ..RelayConfig::default()
        },
        ..Config::default()
    };
    c.auth.secrets = vec![SECRET.into()];
    c
}

/// A second peer on another loopback address, without a permission, sends 100 datagrams to
/// the relayed address: the client receives none within 1 s and the drop counter shows 100.
#[test]
fn permissions_are_per_ip() {
    let h = server((20000, 20999), Duration::from_secs(600));
    let mut c = Client::new(h.udp_addrs()[0], "perm");
    let relay = c.allocate();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = match UdpSocket::bind("127.0.0.2:0") {
        Ok(s) => s,
        Err(e) => panic!("127.0.0.2 must be bindable on Linux loopback: {e}"),
    };
    c.permit(a.local_addr().unwrap());
    // The permitted peer gets through (positive control).
    a.send_to(b"from a", relay).unwrap();
    assert_eq!(
        c.data(Duration::from_secs(2)),
        Some((a.local_addr().unwrap(), b"from a".to_vec()))
    );
    let before = h.stats().peer_dropped_no_permission;
    for i in 0..100u32 {
        b.send_to(&i.to_be_bytes(), relay).unwrap();
    }
    assert_eq!(
        c.data(Duration::from_secs(1)),
        None,
        "nothing from 127.0.0.2"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while h.stats().peer_dropped_no_permission < before + 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.stats().peer_dropped_no_permission - before, 100);
    h.shutdown();
}

/// A short allocation lifetime expires; its port is freed and reusable.
#[test]
fn short_lifetime_expires_and_the_port_is_reused() {
    let h = server((21000, 21000), Duration::from_secs(1));
    let mut c1 = Client::new(h.udp_addrs()[0], "short");
    let r1 = c1.allocate();
    assert_eq!(r1.port(), 21000);
    // While it lives, the only port is taken: 508.
    let mut c2 = Client::new(h.udp_addrs()[0], "short2");
    let first = c2.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&first).unwrap();
    c2.learn(&m);
    let resp = c2.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(error_code(&Message::parse(&resp).unwrap()), Some(508));
    // Expired within a second of its lifetime (timers tick every 250 ms).
    let deadline = Instant::now() + Duration::from_secs(4);
    while h.stats().allocations_ended < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.stats().allocations_ended, 1);
    let r2 = c2.allocate();
    assert_eq!(r2.port(), 21000, "the freed port is reused");
    h.shutdown();
}

/// 100,000 unauthenticated Allocates from 1,000 source ports create no allocation and grow
/// the (in-process) server's memory by less than 2 MiB; with the default unauthenticated
/// rate limit (200/s, burst 1,000 per source IP and worker), the 401s sent stay within
/// burst + rate x duration on each of the 2 workers, and the rest are counted as dropped.
#[test]
fn unauthenticated_allocates_create_no_state() {
    let h = server((22000, 22999), Duration::from_secs(600));
    let target = h.udp_addrs()[0];
    let socks: Vec<UdpSocket> = (0..1000)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut pkt = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut pkt,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([1; 12]),
    )
    .unwrap();
    b.add(&Attribute::RequestedTransport(17)).unwrap();
    let n = b.finish();
    // Warm up (first answers allocate buffers), then measure.
    for s in socks.iter().take(10) {
        s.send_to(&pkt[..n], target).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = rss_kib();
    let started = Instant::now();
    for round in 0..100u32 {
        for (i, s) in socks.iter().enumerate() {
            pkt[8..12].copy_from_slice(&(round * 1000 + i as u32).to_be_bytes());
            s.send_to(&pkt[..n], target).unwrap();
        }
        // Pace so the kernel does not drop most of them (the point is that the server
        // processes them, not that loopback can be overrun).
        std::thread::sleep(Duration::from_millis(10));
        assert!(started.elapsed() < Duration::from_secs(60), "bounded");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = h.stats().auth_challenges;
        if now == last {
            break;
        }
        last = now;
    }
    let st = h.stats();
    let rss1 = rss_kib();
    let duration = started.elapsed().as_secs_f64();
    assert_eq!(st.allocations_created, 0);
    assert!(
        st.auth_challenges + st.unauth_rate_limited >= 50_000,
        "most requests reached the server: {st:?}"
    );
    let bound = 2.0 * (1000.0 + 200.0 * duration) + 10.0;
    assert!(
        (st.auth_challenges as f64) <= bound,
        "{} 401s in {duration:.1} s > {bound:.0}",
        st.auth_challenges
    );
    assert_eq!(st.auth_challenges + st.unauth_rate_limited, st.requests);
    assert!(
        rss1.saturating_sub(rss0) < 2048,
        "RSS grew {} KiB",
        rss1.saturating_sub(rss0)
    );
    eprintln!(
        "unauthenticated Allocates answered: {}, dropped by the limit: {}, RSS {rss0} KiB -> \
         {rss1} KiB",
        st.auth_challenges, st.unauth_rate_limited
    );
    drop(socks);
    h.shutdown();
}

/// A burst of ChannelData from a client and a burst back from the peer arrive complete, in
/// order, as separate datagrams of the sizes sent (runs of equal sizes, a shorter one ending
/// a run), whether or not the server sends runs with UDP GSO; with GSO on, the metrics show
/// runs sent as GSO sends, with it off none.
#[test]
fn bursts_arrive_whole_and_in_order_with_and_without_gso() {
    for (gso, ports) in [(true, (27600, 27699)), (false, (27700, 27799))] {
        let mut c = config(ports, Duration::from_secs(600));
        c.workers = 1;
        c.udp_gso = gso;
        let h = ternd::net::start(&c).expect("start");
        let mut client = Client::new(h.udp_addrs()[0], "burst");
        let relay = client.allocate();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        client.bind_channel(0x4001, peer.local_addr().unwrap());
        // Sizes with runs: equal ones, a shorter one, a longer one starting a new run.
        let sizes: Vec<usize> = (0..60)
            .map(|i| match i % 20 {
                0..=11 => 300,
                12 => 120,
                _ => 500,
            })
            .collect();
        let payload = |i: usize, len: usize| -> Vec<u8> {
            let mut p = vec![(i % 251) as u8; len];
            p[..2].copy_from_slice(&(i as u16).to_be_bytes());
            p
        };
        for round in 0..5 {
            for (i, &len) in sizes.iter().enumerate() {
                client.send_channel(0x4001, &payload(i, len));
            }
            let mut buf = [0u8; 2048];
            for (i, &len) in sizes.iter().enumerate() {
                let (n, from) = peer
                    .recv_from(&mut buf)
                    .expect("every datagram reaches the peer");
                assert_eq!(from, relay);
                assert_eq!(
                    &buf[..n],
                    &payload(i, len)[..],
                    "round {round}, datagram {i}"
                );
            }
            for (i, &len) in sizes.iter().enumerate() {
                peer.send_to(&payload(i, len), relay).unwrap();
            }
            for (i, &len) in sizes.iter().enumerate() {
                let got = client.channel_data(Duration::from_secs(2));
                assert_eq!(
                    got,
                    Some((0x4001, payload(i, len))),
                    "round {round}, back {i}"
                );
            }
        }
        let s = h.stats();
        assert_eq!(s.relayed_out_packets, 300);
        assert_eq!(s.relayed_in_packets, 300);
        if gso {
            assert!(
                s.udp_gso_sends > 0 && s.udp_gso_datagrams >= 2 * s.udp_gso_sends,
                "bursts went out in GSO runs: {} sends, {} datagrams",
                s.udp_gso_sends,
                s.udp_gso_datagrams
            );
            let text = h.view().metrics();
            assert!(common::metric(&text, "ternd_udp_gso_datagrams_total", &[]) >= 2.0);
        } else {
            assert_eq!((s.udp_gso_sends, s.udp_gso_datagrams), (0, 0));
        }
        h.shutdown();
    }
}

/// Data sent just before the Refresh that deletes its allocation is relayed: the datagrams
/// a receive batch queued for the peer leave before a request in the same batch is handled.
#[test]
fn data_sent_just_before_deleting_the_allocation_reaches_the_peer() {
    let h = server((27800, 27899), Duration::from_secs(600));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for round in 0..10u8 {
        let mut c = Client::new(h.udp_addrs()[0], "delete");
        c.allocate();
        c.bind_channel(0x4000, peer.local_addr().unwrap());
        for i in 0..20u8 {
            c.send_channel(0x4000, &[round, i, 0, 0, 0, 0, 0, 0]);
        }
        let resp = c.transact(Method::REFRESH, true, |b| {
            b.add(&Attribute::Lifetime(0)).unwrap();
        });
        assert_eq!(
            Message::parse(&resp).unwrap().message_type().class,
            Class::Success
        );
        let mut buf = [0u8; 64];
        for i in 0..20u8 {
            let (n, _) = peer
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("round {round}: datagram {i} lost: {e}"));
            assert_eq!(&buf[..n], &[round, i, 0, 0, 0, 0, 0, 0]);
        }
    }
    h.shutdown();
}

/// The kernel's receive-queue drop count of the UDP socket bound to `port` on 127.0.0.1,
/// from /proc/net/udp (its last column).
fn proc_udp_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    let local = format!("0100007F:{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// With the smallest socket buffers, a peer's bursts overflow the relay socket's receive
/// queue; `ternd_udp_receive_queue_drops_total{socket="relay"}` counts exactly what the
/// kernel dropped there (as /proc/net/udp reports it) once the next datagram is read.
#[test]
fn relay_receive_queue_overflows_are_counted_as_the_kernel_counts_them() {
    let mut config = config((28200, 28299), Duration::from_secs(600));
    config.workers = 1;
    config.udp_recv_buffer = 4096;
    let h = ternd::net::start(&config).expect("start");
    let mut c = Client::new(h.udp_addrs()[0], "overflow");
    let relay = c.allocate();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.permit(peer.local_addr().unwrap());
    let counted = || {
        common::metric(
            &h.view().metrics(),
            "ternd_udp_receive_queue_drops_total",
            &[("socket", "relay")],
        ) as u64
    };
    let mut kernel = 0;
    // Bounded: at most 20 bursts of 5,000 datagrams (a few KiB of buffer holds a handful).
    for _ in 0..20 {
        for i in 0..5000u32 {
            let _ = peer.send_to(&[i as u8; 200], relay);
        }
        kernel = proc_udp_drops(relay.port());
        if kernel > 0 {
            break;
        }
    }
    assert!(kernel > 0, "bursts of 5,000 overflowed a 4 KiB buffer");
    // The count rides on the next datagram queued; wait for ternd to read one.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counted() != proc_udp_drops(relay.port()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let _ = peer.send_to(b"after", relay);
    }
    let kernel = proc_udp_drops(relay.port());
    assert_eq!(counted(), kernel, "ternd's count is the kernel's");
    assert_eq!(
        common::metric(
            &h.view().metrics(),
            "ternd_udp_receive_queue_drops_total",
            &[("socket", "listener")]
        ),
        0.0
    );
    h.shutdown();
}

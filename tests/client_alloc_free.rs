//! The tokio adapter's steady state allocates nothing: after a warm-up (allocation,
//! channel bound), 1000 `send_to` + `recv_from` round trips through ternd (a child process
//! on loopback) to a UDP echo peer (another thread) make no allocation on the test thread,
//! which runs the current-thread runtime and so the driver task too.

#![allow(unsafe_code)]

#[path = "common/counting.rs"]
#[allow(dead_code)]
mod counting;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

mod common;
#[path = "common/process.rs"]
mod process;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{SECRET, rest_credentials};
use process::{Setup, Ternd};
use ternd_client::{Client, RelaySocket};

const ROUND_TRIPS: u32 = 1000;

/// Echoes UDP datagrams until `stop`.
fn echo(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }
    });
    (addr, t)
}

/// `n` round trips; every echo checked. Allocation-free itself (buffers on the stack).
async fn round_trips(sock: &RelaySocket, peer: SocketAddr, n: u32) {
    let mut out = [0u8; 600];
    let mut back = [0u8; 2048];
    for i in 0..n {
        out[..4].copy_from_slice(&i.to_be_bytes());
        sock.send_to(&out, peer).await.expect("send_to");
        let (len, from) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut back))
            .await
            .expect("echo in time")
            .expect("recv_from");
        assert!(len == out.len() && from == peer && back[..4] == out[..4]);
    }
}

fn steady_state_is_allocation_free(transport: &str, relay_ports: &str) {
    let server = Ternd::start(Setup {
        relay_ports,
        ..Setup::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (peer, echo_thread) = echo(stop.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("turn:{}?transport={transport}", server.addr);
    let (sock, allocs, took) = rt.block_on(async {
        let client = Client::connect(&url, rest_credentials(SECRET, "counted"))
            .await
            .unwrap();
        let sock = client.allocate().await.unwrap();
        // Warm-up: the permission and channel, the runtime's and sockets' first uses.
        round_trips(&sock, peer, 100).await;
        assert!(sock.channel_for(peer).is_some());
        // Counted inside one `block_on`: the current-thread scheduler frees its list of
        // deferred wakers when `block_on` returns, so each call allocates it once again
        // (one allocation per call, whatever it runs).
        let t0 = Instant::now();
        counting::start_counting();
        round_trips(&sock, peer, ROUND_TRIPS).await;
        let allocs = counting::stop_counting();
        (sock, allocs, t0.elapsed())
    });
    let st = sock.stats();
    eprintln!("{transport}: {ROUND_TRIPS} round trips in {took:?}, {allocs} allocations; {st:?}");
    assert_eq!(
        allocs, 0,
        "{transport}: {allocs} allocations in {ROUND_TRIPS} round trips"
    );
    assert_eq!(st.turn.channel_data_sent, u64::from(100 + ROUND_TRIPS));
    assert_eq!(st.dropped, 0);
    rt.block_on(sock.close()).unwrap();
    stop.store(true, Ordering::Relaxed);
    echo_thread.join().unwrap();
}

#[test]
fn udp_send_to_and_recv_from_allocate_nothing() {
    steady_state_is_allocation_free("udp", "13000-13049");
}

#[test]
fn tcp_send_to_and_recv_from_allocate_nothing() {
    steady_state_is_allocation_free("tcp", "13050-13099");
}

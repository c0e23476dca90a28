//! Loopback peers for the client-library tests, and their runtime: a UDP echo thread, a
//! TCP echo listener, and a current-thread runtime bounding a test's async body. Every
//! thread here ends by itself (30 s at most) if a test forgets it. Included with `#[path]`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a helper thread lives, whatever the test does.
const HELPER_LIFE: Duration = Duration::from_secs(30);

/// Runs `f` on a current-thread runtime, failing the test if it takes longer than `bound`.
pub fn run_bounded<F: std::future::Future<Output = ()>>(bound: Duration, f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(bound, f)
            .await
            .expect("test took longer than its bound")
    });
}

/// A thread echoing UDP datagrams on 127.0.0.1 until stopped or dropped.
pub struct UdpEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    echoed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    /// Starts the thread on an ephemeral port of 127.0.0.1.
    pub fn start() -> UdpEcho {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), echoed.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut buf = [0u8; 65_536];
            while !flag.load(Ordering::Relaxed) && started.elapsed() < HELPER_LIFE {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && sock.send_to(&buf[..n], from).is_ok()
                {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        UdpEcho {
            addr,
            echoed,
            stop,
            thread: Some(thread),
        }
    }

    /// Datagrams echoed so far.
    pub fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Stops the thread; how many datagrams it echoed.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.echoed()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A thread accepting TCP connections on 127.0.0.1 and echoing each; it ends once the
/// listener has been idle for 3 s (each connection by a 3 s read timeout).
pub fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut idle = Instant::now();
        while idle.elapsed() < Duration::from_secs(3) {
            match l.accept() {
                Ok((mut s, _)) => {
                    idle = Instant::now();
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 || s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    addr
}

/// An ICE-style server URL: `scheme:addr?transport=…`.
pub fn url(scheme: &str, addr: SocketAddr, transport: &str) -> String {
    format!("{scheme}:{addr}?transport={transport}")
}

/// Datagram `i` of a run: its number and a pattern, 100 to 1099 bytes (most not a
/// multiple of four: ChannelData padding over TCP is exercised both ways).
pub fn datagram(i: u32) -> Vec<u8> {
    let len = 100 + (i as usize * 37) % 1000;
    let mut d: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
    d[..4].copy_from_slice(&i.to_be_bytes());
    d
}

/// Allocates through `client` and checks the server refused it with 401 (bad or expired
/// credentials); `what` names the case in the failure message. Returns the error.
pub async fn assert_allocate_401(client: &ternd_client::Client, what: &str) -> ternd_client::Error {
    let err = client.allocate().await.unwrap_err();
    assert!(
        matches!(
            err,
            ternd_client::Error::Failure {
                method: ternd_client::stun::Method::ALLOCATE,
                code: 401,
                ..
            }
        ),
        "{what}: {err:?}"
    );
    err
}

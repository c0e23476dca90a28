//! Graceful drain on SIGTERM: new Allocates are refused (300 Try Alternate when an
//! alternate server is configured), existing allocations keep relaying, and the process
//! exits 0 once they end, or at once on a second signal.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, SECRET, error_code};
use ternd::stun::{Attribute, Message, Method, attr_type};

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str], ports: &str) -> Server {
    let port = free_udp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--listen",
            &addr.to_string(),
            "--workers",
            "1",
            "--secret",
            SECRET,
            "--http-listen",
            "",
        ])
        .args([
            "--relay-ip",
            "127.0.0.1",
            "--relay-ports",
            ports,
            "--allow-peer",
            "127.0.0.1/32",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, addr };
    // Wait until it answers (a failed start still kills and reaps the child through Drop).
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let req = [
        0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    for _ in 0..50 {
        probe.send_to(&req, addr).unwrap();
        if probe.recv_from(&mut [0u8; 128]).is_ok() {
            return server;
        }
    }
    panic!("server did not start");
}

fn term(s: &Server) {
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
}

fn wait_exit(s: &mut Server, within: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Some(st) = s.child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_drains_then_exits_when_allocations_end() {
    let mut s = start(
        &[
            "--drain-timeout",
            "20s",
            "--alternate-server",
            "127.0.0.1:3479",
        ],
        "29000-29099",
    );
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut c = Client::new(s.addr, "drainee");
    c.allocate();
    c.bind_channel(0x4000, peer.local_addr().unwrap());
    term(&s);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "still running while an allocation lives"
    );
    // A new Allocate: 300 Try Alternate with ALTERNATE-SERVER.
    let mut other = Client::new(s.addr, "latecomer");
    let first = other.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&first).unwrap();
    other.learn(&m);
    let resp = other.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(error_code(&m), Some(300));
    assert_eq!(
        m.get_decoded(attr_type::ALTERNATE_SERVER).unwrap().unwrap(),
        Attribute::AlternateServer("127.0.0.1:3479".parse().unwrap())
    );
    m.verify_integrity(&other.key()).unwrap();
    // The existing allocation keeps relaying.
    c.send_channel(0x4000, b"still here");
    let mut b = [0u8; 64];
    let (n, _) = peer.recv_from(&mut b).expect("relayed while draining");
    assert_eq!(&b[..n], b"still here");
    // Once it ends, the process exits 0.
    c.transact(Method::REFRESH, true, |b| {
        b.add(&Attribute::Lifetime(0)).unwrap()
    });
    let st =
        wait_exit(&mut s, Duration::from_secs(3)).expect("exited after the last allocation ended");
    assert!(st.success());
}

#[test]
fn a_second_signal_stops_at_once_and_no_alternate_means_508() {
    let mut s = start(&["--drain-timeout", "60s"], "29100-29199");
    let mut c = Client::new(s.addr, "stayer");
    c.allocate();
    term(&s);
    std::thread::sleep(Duration::from_millis(300));
    let mut other = Client::new(s.addr, "latecomer");
    let first = other.transact(Method::ALLOCATE, false, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    let m = Message::parse(&first).unwrap();
    other.learn(&m);
    let resp = other.transact(Method::ALLOCATE, true, |b| {
        b.add(&Attribute::RequestedTransport(17)).unwrap()
    });
    assert_eq!(error_code(&Message::parse(&resp).unwrap()), Some(508));
    assert!(s.child.try_wait().unwrap().is_none());
    term(&s);
    let st = wait_exit(&mut s, Duration::from_secs(3)).expect("second signal stops at once");
    assert!(st.success());
}

//! Binding over real sockets on loopback: the library server, the real binary, and
//! coturn's `turnutils_stunclient` where installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use ternd::config::Config;
use ternd::stun::{
    Attribute, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

fn start(workers: usize) -> ternd::net::Handle {
    let c = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers,
        ..Config::default()
    };
    ternd::net::start(&c).expect("start server")
}

fn binding_request(tid: u8, extra: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId([tid; 12]),
    )
    .unwrap();
    extra(&mut b);
    let n = b.finish();
    buf[..n].to_vec()
}

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn udp_roundtrip(s: &UdpSocket, server: SocketAddr, req: &[u8]) -> Vec<u8> {
    s.send_to(req, server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).expect("answer");
    assert_eq!(from, server);
    buf[..n].to_vec()
}

fn mapped(resp: &[u8]) -> SocketAddr {
    let m = Message::parse(resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Success)
    );
    match m.get_decoded(attr_type::XOR_MAPPED_ADDRESS) {
        Some(Ok(Attribute::XorMappedAddress(a))) => a,
        other => panic!("no XOR-MAPPED-ADDRESS: {other:?}"),
    }
}

#[test]
fn udp_binding_reports_the_client_address() {
    let h = start(2);
    let server = h.udp_addrs()[0];
    let c = udp_client();
    let resp = udp_roundtrip(
        &c,
        server,
        &binding_request(1, |b| b.add_fingerprint().unwrap()),
    );
    assert_eq!(mapped(&resp), c.local_addr().unwrap());
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.transaction_id(), TransactionId([1; 12]));
    m.verify_fingerprint()
        .expect("FINGERPRINT echoed because the request had one");
    assert!(m.get(attr_type::SOFTWARE).is_none());
    h.shutdown();
}

#[test]
fn tcp_binding_with_split_writes() {
    let h = start(2);
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = binding_request(2, |_| {});
    // Two requests in one write, then one split across writes.
    let mut two = req.clone();
    two.extend_from_slice(&req);
    s.write_all(&two).unwrap();
    s.write_all(&req[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&req[7..]).unwrap();
    for _ in 0..3 {
        let mut head = [0u8; 20];
        s.read_exact(&mut head).unwrap();
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        let mut msg = head.to_vec();
        msg.extend_from_slice(&body);
        assert_eq!(mapped(&msg), s.local_addr().unwrap());
    }
    h.shutdown();
}

#[test]
fn tcp_bad_framing_closes_the_connection() {
    let h = start(1);
    let mut s = TcpStream::connect(h.tcp_addrs()[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&[0x99; 32]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "connection closed");
    assert!(h.stats().malformed >= 1);
    h.shutdown();
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let h = start(1);
    let c = udp_client();
    let resp = udp_roundtrip(
        &c,
        h.udp_addrs()[0],
        &binding_request(3, |b| b.add_raw(0x7ABC, &[1, 2, 3]).unwrap()),
    );
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::BINDING, Class::Error)
    );
    assert_eq!(
        m.get_decoded(attr_type::ERROR_CODE).unwrap().unwrap(),
        Attribute::ErrorCode(ErrorCode::new(420, "Unknown Attribute"))
    );
    let Some(Ok(Attribute::UnknownAttributes(u))) = m.get_decoded(attr_type::UNKNOWN_ATTRIBUTES)
    else {
        panic!("UNKNOWN-ATTRIBUTES missing");
    };
    assert_eq!(u.iter().collect::<Vec<_>>(), vec![0x7ABC]);
    h.shutdown();
}

/// 3,000 malformed datagrams of many shapes, then the server still answers.
#[test]
fn survives_3000_malformed_datagrams() {
    let h = start(2);
    let server = h.udp_addrs()[0];
    let c = udp_client();
    let good = binding_request(4, |b| b.add_fingerprint().unwrap());
    let mut seed = 0x1234_5678_u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for i in 0..3000 {
        let mut pkt = good.clone();
        match i % 6 {
            0 => pkt.truncate((rnd() as usize) % pkt.len()),
            1 => {
                let at = (rnd() as usize) % pkt.len();
                pkt[at] ^= 1 + (rnd() as u8 % 255);
            }
            2 => pkt[2..4].copy_from_slice(&((rnd() as u16) | 1).to_be_bytes()),
            3 => pkt = (0..(rnd() % 600)).map(|_| rnd() as u8).collect(),
            4 => pkt[4] ^= 0xFF, // bad cookie
            _ => {
                let l = pkt.len();
                pkt[l - 1] ^= 0x55; // bad FINGERPRINT
            }
        }
        c.send_to(&pkt, server).unwrap();
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Drain whatever answers the mutated-but-valid packets earned.
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1500];
    while c.recv_from(&mut buf).is_ok() {}
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let resp = udp_roundtrip(&c, server, &good);
    assert_eq!(mapped(&resp), c.local_addr().unwrap());
    let st = h.stats();
    assert!(st.malformed >= 2000, "malformed counted: {st:?}");
    h.shutdown();
}

#[test]
fn binding_indication_gets_no_answer() {
    let h = start(1);
    let c = udp_client();
    let mut buf = [0u8; 64];
    let b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Indication),
        TransactionId([5; 12]),
    )
    .unwrap();
    let n = b.finish();
    c.send_to(&buf[..n], h.udp_addrs()[0]).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(c.recv_from(&mut [0u8; 64]).is_err());
    assert_eq!(h.stats().indications, 1);
    h.shutdown();
}

#[test]
fn ipv6_loopback_binding() {
    let c = Config {
        listen: vec!["[::1]:0".parse().unwrap()],
        workers: 1,
        ..Config::default()
    };
    let h = match ternd::net::start(&c) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIPPED ipv6_loopback_binding: no IPv6 loopback here ({e})");
            return;
        }
    };
    let s = UdpSocket::bind("[::1]:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let resp = udp_roundtrip(&s, h.udp_addrs()[0], &binding_request(6, |_| {}));
    assert_eq!(mapped(&resp), s.local_addr().unwrap());
    h.shutdown();
}

/// Whether interop tests must run (CI sets `TERND_REQUIRE_INTEROP=1`).
fn interop_required() -> bool {
    std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

#[test]
fn turnutils_stunclient_sees_its_address() {
    if Command::new("turnutils_stunclient")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            !interop_required(),
            "turnutils_stunclient is required (TERND_REQUIRE_INTEROP=1) but not installed"
        );
        eprintln!(
            "SKIPPED turnutils_stunclient_sees_its_address: coturn's turnutils_stunclient is not installed (apt-get install coturn)"
        );
        return;
    }
    let h = start(2);
    let port = h.udp_addrs()[0].port();
    let out = Command::new("timeout")
        .args([
            "10",
            "turnutils_stunclient",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "turnutils_stunclient failed: {text}");
    assert!(
        text.contains("UDP reflexive addr: 127.0.0.1:"),
        "no reflexive address in: {text}"
    );
    assert!(h.stats().binding_responses >= 1);
    h.shutdown();
}

/// The real binary: starts on the embedded defaults (with a loopback listen address so
/// tests never clash), prints quick-start credentials, answers Binding, stops on SIGTERM.
#[test]
fn binary_starts_prints_credentials_and_answers() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env_remove("TERND_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let c = udp_client();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let req = binding_request(7, |_| {});
    let mut answered = None;
    for _ in 0..50 {
        c.send_to(&req, server).unwrap();
        let mut buf = [0u8; 1500];
        if let Ok((n, _)) = c.recv_from(&mut buf) {
            answered = Some(buf[..n].to_vec());
            break;
        }
    }
    let resp = answered.expect("binary answered Binding");
    assert_eq!(mapped(&resp), c.local_addr().unwrap());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM");
    assert!(
        stdout.contains("username  ") && stdout.contains("password  "),
        "{stdout}"
    );
    assert!(stdout.contains("\"iceServers\""), "{stdout}");
}

#[test]
fn binary_rejects_a_bad_config_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("ternd-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[relay]\nports = \"60000-50000\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args(["--check-config", "-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("relay.ports") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(&file, "realm = \"example.org\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args(["--check-config", "-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

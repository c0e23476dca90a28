//! RFC 5780 NAT behaviour discovery over real sockets on loopback (127.0.0.1 and
//! 127.0.0.2 as the two addresses): ternd's own probes, and coturn's
//! `turnutils_natdiscovery` where installed (required when `TERND_REQUIRE_INTEROP=1`).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use ternd::config::Config;
use ternd::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

const ALT_IP: &str = "127.0.0.2";

/// A server with `--rfc5780 --alt-ip 127.0.0.2` on an ephemeral primary port (port + 1 as
/// the alternate); retried when the alternate port happens to be taken.
fn start() -> ternd::net::Handle {
    let mut last = None;
    for _ in 0..20 {
        let c = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            workers: 2,
            rfc5780: true,
            alt_ip: Some(ALT_IP.parse().unwrap()),
            ..Config::default()
        };
        match ternd::net::start(&c) {
            Ok(h) => return h,
            Err(e) => last = Some(e.to_string()),
        }
    }
    panic!("cannot start an RFC 5780 server: {last:?}");
}

fn request(tid: u8, extra: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 2048];
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

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// Sends `req` to `to`; returns the answer and where it came from.
fn ask(s: &UdpSocket, to: SocketAddr, req: &[u8]) -> (Vec<u8>, SocketAddr) {
    s.send_to(req, to).unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = s.recv_from(&mut buf).expect("an answer within 2 s");
    (buf[..n].to_vec(), from)
}

fn addr(resp: &[u8], typ: u16) -> Option<SocketAddr> {
    match Message::parse(resp).unwrap().get_decoded(typ)? {
        Ok(Attribute::OtherAddress(a))
        | Ok(Attribute::ResponseOrigin(a))
        | Ok(Attribute::XorMappedAddress(a)) => Some(a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn listens_on_four_addresses_and_answers_change_requests_from_them() {
    let h = start();
    let primary = h.udp_addrs()[0];
    let alt_ip: IpAddr = ALT_IP.parse().unwrap();
    let alternate = SocketAddr::new(alt_ip, primary.port() + 1);
    for a in [
        primary,
        SocketAddr::new(primary.ip(), alternate.port()),
        SocketAddr::new(alt_ip, primary.port()),
        alternate,
    ] {
        assert!(h.udp_addrs().contains(&a), "{a} in {:?}", h.udp_addrs());
    }
    let s = socket();
    let me = s.local_addr().unwrap();
    let (resp, from) = ask(&s, primary, &request(1, |_| {}));
    assert_eq!(from, primary);
    assert_eq!(addr(&resp, attr_type::OTHER_ADDRESS), Some(alternate));
    assert_eq!(addr(&resp, attr_type::RESPONSE_ORIGIN), Some(primary));
    assert_eq!(addr(&resp, attr_type::XOR_MAPPED_ADDRESS), Some(me));
    for (ip, port, expected) in [
        (true, false, SocketAddr::new(alt_ip, primary.port())),
        (false, true, SocketAddr::new(primary.ip(), alternate.port())),
        (true, true, alternate),
    ] {
        let (resp, from) = ask(
            &s,
            primary,
            &request(2, |b| {
                b.add(&Attribute::ChangeRequest { ip, port }).unwrap()
            }),
        );
        assert_eq!(from, expected, "change ip={ip} port={port}");
        assert_eq!(addr(&resp, attr_type::RESPONSE_ORIGIN), Some(expected));
    }
    // RESPONSE-PORT: the answer goes to another port of the requester's IP.
    let other = socket();
    let other_port = other.local_addr().unwrap().port();
    s.send_to(
        &request(3, |b| b.add(&Attribute::ResponsePort(other_port)).unwrap()),
        alternate,
    )
    .unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = other.recv_from(&mut buf).expect("answer at RESPONSE-PORT");
    assert_eq!(from, alternate);
    assert_eq!(addr(&buf[..n], attr_type::OTHER_ADDRESS), Some(primary));
    // PADDING: the answer is padded like the request, so it is never larger.
    let pad = vec![0u8; 1200];
    let req = request(4, |b| b.add(&Attribute::Padding(&pad)).unwrap());
    let (resp, _) = ask(&s, primary, &req);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get(attr_type::PADDING).unwrap().value.len(), 1200);
    assert!(
        resp.len() <= req.len() + 64,
        "{} vs {}",
        resp.len(),
        req.len()
    );
    h.shutdown();
}

fn interop_required() -> bool {
    std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

#[test]
fn turnutils_natdiscovery_finds_the_loopback_behaviour() {
    let installed = Command::new("turnutils_natdiscovery")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !installed {
        assert!(
            !interop_required(),
            "turnutils_natdiscovery is required (TERND_REQUIRE_INTEROP=1) but not installed"
        );
        eprintln!(
            "SKIPPED turnutils_natdiscovery_finds_the_loopback_behaviour: coturn's \
             turnutils_natdiscovery is not installed (apt-get install coturn)"
        );
        return;
    }
    let h = start();
    let primary = h.udp_addrs()[0];
    let alternate = format!("{ALT_IP}:{}", primary.port() + 1);
    for padding in [false, true] {
        let port = primary.port().to_string();
        let mut args = vec!["30", "turnutils_natdiscovery", "-m", "-f"];
        if padding {
            args.push("-P");
        }
        args.extend(["-p", &port, "127.0.0.1"]);
        let out = Command::new("timeout")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run turnutils_natdiscovery");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        eprintln!("natdiscovery {args:?}:\n{text}");
        assert!(out.status.success(), "natdiscovery failed:\n{text}");
        assert!(
            text.contains("NAT with Endpoint Independent Mapping!"),
            "mapping behaviour not found:\n{text}"
        );
        assert!(
            text.contains("NAT with Endpoint Independent Filtering!"),
            "filtering behaviour not found:\n{text}"
        );
        assert!(
            text.contains(&format!("Other addr: : {alternate}")),
            "OTHER-ADDRESS {alternate} not found:\n{text}"
        );
        assert!(
            text.contains(&format!("Response origin: : {alternate}")),
            "no answer from the alternate address (CHANGE-REQUEST):\n{text}"
        );
    }
    h.shutdown();
}

//! ternd-client against coturn's `turnserver` (Debian's 4.6.1), started on loopback by the
//! tests themselves (tests/common/turnserver.rs): REST and static long-term credentials,
//! UDP, TCP and TLS, ChannelData through a `turnutils_peer` echo, nonce expiry (438), 300
//! Try Alternate, RFC 6062 TCP relaying.
//!
//! Each test prints `SKIPPED …` and passes when coturn is missing, unless
//! `TERND_REQUIRE_INTEROP=1` (CI), where it fails instead.

#[path = "common/turnserver.rs"]
mod turnserver;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ternd_client::blocking::{self, Stream, Timing, Transport, Udp};
use ternd_client::data::{self, Incoming};
use ternd_client::stun::{Attribute, Class, Message, Method, attr_type};
use ternd_client::{Credentials, Error, Session};
use turnserver::coturn::{self, Peer};
use turnserver::tls::connect_tls;
use turnserver::{Auth, TurnServer, TurnServerOptions, turnserver_available};

const SECRET: &str = "coturn-interop-secret";
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

/// Sent once, answered within 2 s (loopback loses nothing): what a [`Recording`] sees is
/// one answer per request.
const TIMING: Timing = Timing {
    wait: Duration::from_secs(2),
    attempts: 1,
};

/// A session with a transaction id prefix of its own.
fn session(credentials: Credentials) -> Session {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut prefix = *b"cotu\0\0\0\0";
    prefix[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    Session::new(credentials, prefix)
}

fn user_options() -> TurnServerOptions {
    TurnServerOptions::user(USER, PASSWORD)
}

fn udp_socket() -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The ERROR-CODE of a response (0 for none).
fn code_of(m: &Message<'_>) -> u16 {
    match m.get_decoded(attr_type::ERROR_CODE) {
        Some(Ok(Attribute::ErrorCode(e))) => e.code,
        _ => 0,
    }
}

/// A transport that notes the answer of every response it carries: 0 for a success, else
/// the error code.
struct Recording<T> {
    inner: T,
    answers: Vec<u16>,
}

impl<T: Transport> Recording<T> {
    fn new(inner: T) -> Recording<T> {
        Recording {
            inner,
            answers: Vec::new(),
        }
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        self.inner.send(packet)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Option<usize>> {
        let got = self.inner.recv(buf, timeout)?;
        if let Some(n) = got
            && let Ok(m) = Message::parse(&buf[..n])
        {
            match m.message_type().class {
                Class::Success => self.answers.push(0),
                Class::Error => self.answers.push(code_of(&m)),
                _ => {}
            }
        }
        Ok(got)
    }

    fn timing(&self) -> Timing {
        self.inner.timing()
    }

    fn is_reliable(&self) -> bool {
        self.inner.is_reliable()
    }
}

/// The session's allocation over `t`, or a panic with the server's log.
fn allocate(server: &TurnServer, s: &mut Session, t: &mut impl Transport) -> SocketAddr {
    let relayed = blocking::allocate(s, t)
        .unwrap_or_else(|e| panic!("Allocate: {e}\nturnserver log:\n{}", server.log_tail()));
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(
        server.relay_ports().contains(&relayed.port()),
        "relayed {relayed} outside {:?}",
        server.relay_ports()
    );
    assert_eq!(s.realm(), Some(server.realm()), "the 401's REALM");
    relayed
}

/// (1) REST credentials over UDP: Allocate, CreatePermission, ChannelBind to a
/// `turnutils_peer`, and ChannelData echoed back through the channel.
#[test]
fn rest_secret_udp_channel_data_echo() {
    let name = "rest_secret_udp_channel_data_echo";
    if !turnserver_available(name) || !coturn::tools_available(name) {
        return;
    }
    let server = TurnServer::start(TurnServerOptions::secret(SECRET));
    let peer = Peer::start(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let peer_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, peer.port));
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut s = session(Credentials::rest(SECRET, "rest-user", expiry, ':'));
    let sock = udp_socket();
    let mut udp = Udp::to(&sock, server.udp_addr()).with_timing(TIMING);
    let relayed = allocate(&server, &mut s, &mut udp);
    blocking::create_permission(&mut s, &mut udp, peer_addr).expect("CreatePermission");
    blocking::channel_bind(&mut s, &mut udp, 0x4000, peer_addr).expect("ChannelBind");
    assert_eq!(s.grants().channel_for(peer_addr), Some(0x4000));

    let payload = b"through coturn and back";
    let mut frame = [0u8; 64];
    let n = data::channel_data(0x4000, payload, false, &mut frame).unwrap();
    let mut echoed = false;
    // At most 5 sends, 1 s each.
    'send: for _ in 0..5 {
        sock.send_to(&frame[..n], server.udp_addr()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        for _ in 0..16 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 1500];
            let Ok((got, _)) = sock.recv_from(&mut buf) else {
                break;
            };
            if let Some(Incoming::ChannelData { number, data }) = data::decode(&buf[..got])
                && number == 0x4000
                && data == payload
            {
                echoed = true;
                break 'send;
            }
        }
    }
    assert!(
        echoed,
        "no ChannelData echo (relayed {relayed}, peer {peer_addr})\nturnserver log:\n{}",
        server.log_tail()
    );
}

/// (2) A static long-term user over TCP (coturn serves TCP on the UDP port).
#[test]
fn static_user_tcp_allocate() {
    if !turnserver_available("static_user_tcp_allocate") {
        return;
    }
    let server = TurnServer::start(user_options());
    let mut s = session(server.credentials(USER));
    let mut stream = Stream::new(tcp(server.tcp_addr()));
    allocate(&server, &mut s, &mut stream);
    blocking::refresh(&mut s, &mut stream, 0).expect("Refresh 0 deletes the allocation");
}

/// (3) TLS on its own port, the client trusting the server's self-signed certificate.
#[test]
fn tls_allocate() {
    if !turnserver_available("tls_allocate") {
        return;
    }
    let server = TurnServer::start(TurnServerOptions {
        tls: true,
        ..TurnServerOptions::secret(SECRET)
    });
    let mut s = session(server.credentials("tls-user"));
    let mut stream = Stream::new(connect_tls(server.tls_addr(), server.tls_client()));
    allocate(&server, &mut s, &mut stream);
    let (tls, _) = stream.into_parts();
    assert!(
        tls.conn.protocol_version().is_some(),
        "a TLS session was negotiated"
    );
}

/// (4) `--stale-nonce=2`: once the nonce has expired, a Refresh is answered 438 with a new
/// nonce; the session retries with it and succeeds.
#[test]
fn stale_nonce_refresh_gets_438_then_succeeds() {
    if !turnserver_available("stale_nonce_refresh_gets_438_then_succeeds") {
        return;
    }
    let server = TurnServer::start(TurnServerOptions {
        stale_nonce: Some(2),
        ..TurnServerOptions::secret(SECRET)
    });
    let mut s = session(server.credentials("stale-user"));
    let sock = udp_socket();
    let mut udp = Udp::to(&sock, server.udp_addr()).with_timing(TIMING);
    allocate(&server, &mut s, &mut udp);
    let first_nonce = s.nonce().unwrap().to_owned();
    let allocated = Instant::now();

    // The nonce dies 1-4 s after it was handed out (N-1 to N+2: coturn's clock has whole
    // seconds): refresh every 250 ms, at most 40 times (10 s), until one meets a 438.
    let mut stale = None;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let mut rec = Recording::new(Udp::to(&sock, server.udp_addr()).with_timing(TIMING));
        blocking::refresh(&mut s, &mut rec, 600).unwrap_or_else(|e| {
            panic!(
                "Refresh after {:?}: {e} (answers {:?})\nturnserver log:\n{}",
                allocated.elapsed(),
                rec.answers,
                server.log_tail()
            )
        });
        if rec.answers.contains(&438) {
            stale = Some(rec.answers);
            break;
        }
        assert_eq!(
            rec.answers,
            [0],
            "a Refresh with a live nonce succeeds at once"
        );
    }
    let waited = allocated.elapsed();
    eprintln!("the nonce was stale after {waited:?}");
    assert_eq!(
        stale.as_deref(),
        Some(&[438, 0][..]),
        "438 Stale Nonce, then success with the new nonce, within 10 s"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "the nonce lived {waited:?}"
    );
    assert_ne!(s.nonce(), Some(first_nonce.as_str()), "a new nonce");
    // And the new nonce is good for the next request.
    let mut rec = Recording::new(udp);
    blocking::refresh(&mut s, &mut rec, 0).expect("Refresh 0");
    assert_eq!(rec.answers, [0]);
}

/// An Allocate (the first, unauthenticated one) over `t` through `s`: its raw answer.
fn allocate_answer(s: &mut Session, t: &mut impl Transport) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let req = s
        .request(
            Method::ALLOCATE,
            &[Attribute::RequestedTransport(17)],
            &mut buf,
        )
        .unwrap();
    blocking::exchange(t, &buf[..req.len], Method::ALLOCATE, req.tid).expect("an answer")
}

/// Checks that `answer` is 300 Try Alternate naming `expected`, without a challenge, and
/// that the session reports it as the failure it is (ternd-client does not follow 300).
fn assert_try_alternate(what: &str, s: &mut Session, answer: &[u8], expected: SocketAddr) {
    let m = Message::parse(answer).unwrap();
    assert_eq!(m.message_type().class, Class::Error, "{what}");
    assert_eq!(code_of(&m), 300, "{what}");
    let alternate = match m.get_decoded(attr_type::ALTERNATE_SERVER) {
        Some(Ok(Attribute::AlternateServer(a))) => a,
        other => panic!("{what}: ALTERNATE-SERVER {other:?}"),
    };
    assert_eq!(alternate, expected, "{what}");
    assert!(
        m.get(attr_type::NONCE).is_none() && m.get(attr_type::REALM).is_none(),
        "{what}: redirected before authentication"
    );
    match s.handle_response(answer, Instant::now()) {
        Err(Error::Failure { code: 300, .. }) => {}
        other => panic!("{what}: session says {other:?}"),
    }
}

/// (5) `--alternate-server`: Allocate over UDP, TCP and (without `--tls-alternate-server`)
/// TLS is answered 300 with the configured ALTERNATE-SERVER; `--tls-alternate-server`
/// takes over for TLS.
#[test]
fn alternate_server_answers_300() {
    if !turnserver_available("alternate_server_answers_300") {
        return;
    }
    let alternate: SocketAddr = "127.0.0.1:3479".parse().unwrap();
    let tls_alternate: SocketAddr = "127.0.0.1:5350".parse().unwrap();
    let server = TurnServer::start(TurnServerOptions {
        tls: true,
        alternate_server: Some(alternate),
        ..user_options()
    });
    let sock = udp_socket();
    let mut s = session(server.credentials(USER));
    let mut udp = Udp::to(&sock, server.udp_addr()).with_timing(TIMING);
    let answer = allocate_answer(&mut s, &mut udp);
    assert_try_alternate("udp", &mut s, &answer, alternate);
    // blocking::allocate gives up with the 300 too.
    match blocking::allocate(&mut s, &mut udp) {
        Err(e) => assert_eq!(e.code(), Some(300)),
        Ok(a) => panic!("allocated {a} despite --alternate-server"),
    }

    let mut s = session(server.credentials(USER));
    let mut stream = Stream::new(tcp(server.tcp_addr()));
    let answer = allocate_answer(&mut s, &mut stream);
    assert_try_alternate("tcp", &mut s, &answer, alternate);

    let mut s = session(server.credentials(USER));
    let mut stream = Stream::new(connect_tls(server.tls_addr(), server.tls_client()));
    let answer = allocate_answer(&mut s, &mut stream);
    assert_try_alternate("tls, --alternate-server only", &mut s, &answer, alternate);
    drop(server);

    let server = TurnServer::start(TurnServerOptions {
        tls: true,
        alternate_server: Some(alternate),
        tls_alternate_server: Some(tls_alternate),
        ..user_options()
    });
    let mut s = session(server.credentials(USER));
    let mut udp = Udp::to(&sock, server.udp_addr()).with_timing(TIMING);
    let answer = allocate_answer(&mut s, &mut udp);
    assert_try_alternate("udp, both options", &mut s, &answer, alternate);
    let mut s = session(server.credentials(USER));
    let mut stream = Stream::new(connect_tls(server.tls_addr(), server.tls_client()));
    let answer = allocate_answer(&mut s, &mut stream);
    assert_try_alternate("tls, both options", &mut s, &answer, tls_alternate);
}

/// A success's attribute, or a panic naming what is missing.
fn required<'a, T>(m: &Message<'a>, typ: u16, pick: impl Fn(Attribute<'a>) -> Option<T>) -> T {
    m.get_decoded(typ)
        .and_then(Result::ok)
        .and_then(pick)
        .unwrap_or_else(|| panic!("attribute {typ:#06x} missing in {:?}", m.message_type()))
}

/// (6) RFC 6062, on by default: a TCP allocation over a TCP control connection, Connect to
/// a TCP peer, ConnectionBind on a data connection, and bytes both ways.
#[test]
fn rfc6062_tcp_allocation_connects_to_a_tcp_peer() {
    if !turnserver_available("rfc6062_tcp_allocation_connects_to_a_tcp_peer") {
        return;
    }
    let server = TurnServer::start(user_options());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let peer_addr = listener.local_addr().unwrap();

    let mut s = session(server.credentials(USER));
    let mut control = Stream::new(tcp(server.tcp_addr()));
    let resp = blocking::transact(
        &mut s,
        &mut control,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    )
    .unwrap_or_else(|e| panic!("TCP Allocate: {e}\nturnserver log:\n{}", server.log_tail()));
    let relayed = required(
        &Message::parse(&resp).unwrap(),
        attr_type::XOR_RELAYED_ADDRESS,
        |a| match a {
            Attribute::XorRelayedAddress(r) => Some(r),
            _ => None,
        },
    );
    assert!(server.relay_ports().contains(&relayed.port()), "{relayed}");
    blocking::create_permission(&mut s, &mut control, peer_addr).expect("CreatePermission");
    let resp = blocking::transact(
        &mut s,
        &mut control,
        Method::CONNECT,
        &[Attribute::XorPeerAddress(peer_addr)],
    )
    .unwrap_or_else(|e| panic!("Connect: {e}\nturnserver log:\n{}", server.log_tail()));
    let id = required(
        &Message::parse(&resp).unwrap(),
        attr_type::CONNECTION_ID,
        |a| match a {
            Attribute::ConnectionId(id) => Some(id),
            _ => None,
        },
    );

    // The server's connection to the peer, from the relayed address (at most 5 s).
    let mut accepted = None;
    for _ in 0..250 {
        match listener.accept() {
            Ok(c) => {
                accepted = Some(c);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    let (mut at_peer, from) = accepted.expect("coturn connected to the peer within 5 s");
    assert_eq!(from, relayed, "the peer sees the relayed address");
    at_peer.set_nonblocking(false).unwrap();
    at_peer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    // The data connection: a new 5-tuple, but coturn checks ConnectionBind against the
    // allocation's session, so the control connection's nonce is good there at once.
    let mut data_session = s.clone();
    let mut data_conn = Recording::new(Stream::new(tcp(server.tcp_addr())));
    blocking::transact(
        &mut data_session,
        &mut data_conn,
        Method::CONNECTION_BIND,
        &[Attribute::ConnectionId(id)],
    )
    .unwrap_or_else(|e| {
        panic!(
            "ConnectionBind: {e} (answers {:?})\nturnserver log:\n{}",
            data_conn.answers,
            server.log_tail()
        )
    });
    assert_eq!(data_conn.answers, [0], "ConnectionBind answers");
    let (mut raw, pending) = data_conn.inner.into_parts();
    assert!(
        pending.is_empty(),
        "nothing after the ConnectionBind success"
    );

    raw.write_all(b"client to peer").unwrap();
    let mut got = [0u8; 14];
    at_peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"client to peer");
    at_peer.write_all(b"peer to client").unwrap();
    raw.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"peer to client");
}

/// The harness itself: the child is turnserver, answers STUN, and is gone after drop.
#[test]
fn harness_starts_and_kills_turnserver() {
    if !turnserver_available("harness_starts_and_kills_turnserver") {
        return;
    }
    let server = TurnServer::start(TurnServerOptions::new(Auth::None));
    let pid = server.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "turnserver");
    assert!(
        server.started_in() < Duration::from_secs(10),
        "{:?}",
        server.started_in()
    );
    let sock = udp_socket();
    let mut udp = Udp::to(&sock, server.udp_addr()).with_timing(TIMING);
    let tid = session(Credentials::new("", "")).next_transaction_id();
    let mapped = blocking::binding(&mut udp, tid).expect("Binding");
    assert_eq!(mapped, sock.local_addr().unwrap());
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert!(log.contains("Version Coturn-"), "{log}");
    // --no-auth: an allocation without credentials.
    let mut s = session(Credentials::new("", ""));
    let relayed = blocking::allocate(&mut s, &mut udp).expect("Allocate without auth");
    assert!(server.relay_ports().contains(&relayed.port()));
    let dir = server.log_path().parent().unwrap().to_owned();
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "turnserver {pid} still running after drop"
    );
    assert!(!dir.exists(), "{} removed", dir.display());
}

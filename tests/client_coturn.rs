//! ternd-client's tokio adapter (`Client`, `RelaySocket`, `TcpAllocation`) against coturn's
//! `turnserver` (Debian's 4.6.1), started on loopback by the tests themselves
//! (tests/common/turnserver.rs): the interop acceptance.
//!
//! - REST shared-secret and static long-term credentials;
//! - UDP, TCP and TLS (`turns:`, the harness's certificate trusted, the name checked) to
//!   coturn, each relaying datagrams to a UDP echo peer and back, over channels and, with
//!   `channels(false)`, in Send indications only;
//! - RFC 6062 over TCP and TLS: Connect to a TCP echo peer, and a peer connecting to the
//!   relayed address (ConnectionAttempt, accepted); and across nonce expiry, where coturn
//!   loses a peer connection whose ConnectionBind meets a stale nonce;
//! - nonce expiry (`--stale-nonce=1`) while the client relays without pause, counted on the
//!   wire by a UDP proxy between client and coturn;
//! - 300 Try Alternate between two coturns, followed when private alternates are allowed
//!   and refused by default, over UDP, TCP and TLS.
//!
//! Every test starts its own turnserver(s) (the harness gives each its own ports) and is
//! bounded in time; every loop is bounded in count and time. Each test prints `SKIPPED …`
//! and passes when coturn is missing, unless `TERND_REQUIRE_INTEROP=1`, where it fails.

#[path = "common/peers.rs"]
mod peers;
#[path = "common/turnserver.rs"]
mod turnserver;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peers::{UdpEcho, datagram, tcp_echo, url};
use ternd_client::stun::Method;
use ternd_client::{Client, ClientOptions, Credentials, Error, Protocol, RelaySocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turnserver::{TurnServer, TurnServerOptions, turnserver_available};

const SECRET: &str = "client-coturn-secret";
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

/// Round trips per relaying path.
const ROUND_TRIPS: u32 = 100;
/// A test's bound, whatever goes wrong.
const BOUND: Duration = Duration::from_secs(15);
/// Waiting for one echo (loopback: a lost datagram, not a slow one).
const ECHO_WAIT: Duration = Duration::from_secs(2);
/// How long helper threads (echo peers, the proxy) live at most.
const HELPER_LIFE: Duration = Duration::from_secs(30);

/// Runs `f` on a current-thread runtime, bounded by [`BOUND`].
fn run<F: std::future::Future<Output = ()>>(f: F) {
    peers::run_bounded(BOUND, f);
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Client options bound to 127.0.0.1 (nothing leaves loopback).
fn local_options() -> ClientOptions {
    ClientOptions::default().local_addr(loopback(0))
}

/// A rustls client configuration trusting the certificates in `pems` (and nothing else).
fn trusting(pems: &[&Path]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in pems {
        let bytes = std::fs::read(pem).unwrap();
        for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&bytes) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The machine's host name if it is not "localhost" and resolves to 127.0.0.1 only.
fn other_loopback_name() -> Option<String> {
    use std::net::ToSocketAddrs;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let host = host.trim();
    if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let addrs: Vec<SocketAddr> = (host, 1).to_socket_addrs().ok()?.collect();
    (!addrs.is_empty() && addrs.iter().all(|a| a.ip() == Ipv4Addr::LOCALHOST))
        .then(|| host.to_owned())
}

fn options_tls(server: &TurnServer) -> ClientOptions {
    local_options().tls_config(server.tls_client())
}

/// Round trip `i` through the relay to the echo peer: the payload comes back intact.
async fn round_trip(sock: &RelaySocket, peer: SocketAddr, i: u32, buf: &mut [u8]) {
    let d = datagram(i);
    assert_eq!(sock.send_to(&d, peer).await.unwrap(), d.len());
    let (len, from) = tokio::time::timeout(ECHO_WAIT, sock.recv_from(buf))
        .await
        .unwrap_or_else(|_| panic!("echo {i} lost; {:?}", sock.stats()))
        .unwrap();
    assert_eq!(from, peer, "echo {i} from the peer");
    assert_eq!(&buf[..len], &d[..], "echo {i} intact");
}

/// `n` lockstep round trips.
async fn lockstep(sock: &RelaySocket, peer: SocketAddr, n: u32) {
    let mut buf = vec![0u8; 2048];
    for i in 0..n {
        round_trip(sock, peer, i, &mut buf).await;
    }
}

/// An allocation on `server` through `client`, checked to be coturn's (relayed address in
/// its relay range on loopback).
async fn allocate_on(client: &Client, server: &TurnServer) -> RelaySocket {
    let sock = client
        .allocate()
        .await
        .unwrap_or_else(|e| panic!("Allocate: {e:?}\nturnserver log:\n{}", server.log_tail()));
    let relayed = sock.relayed_addr();
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(
        server.relay_ports().contains(&relayed.port()),
        "relayed {relayed} outside {:?}",
        server.relay_ports()
    );
    sock
}

/// Both data paths to a UDP echo peer through coturn at `url`: [`ROUND_TRIPS`] over a
/// channel, then as many in Send indications with another client (`channels(false)`).
async fn both_paths(
    server: &TurnServer,
    url: &str,
    credentials: &Credentials,
    options: ClientOptions,
    what: &str,
) {
    let echo = UdpEcho::start();
    let client = Client::connect_with(url, credentials.clone(), options.clone())
        .await
        .unwrap();

    // Channels (the default): the first datagram waits for the ChannelBind, which installs
    // the permission too, so every datagram goes as ChannelData, both ways.
    let sock = allocate_on(&client, server).await;
    lockstep(&sock, echo.addr, ROUND_TRIPS).await;
    let ch = sock.stats();
    assert!(sock.channel_for(echo.addr).is_some(), "{what}: a channel");
    let n = u64::from(ROUND_TRIPS);
    assert_eq!(ch.turn.channel_data_sent, n, "{what}: {ch:?}");
    assert_eq!(ch.turn.indications_sent, 0, "{what}: {ch:?}");
    assert_eq!(ch.turn.channel_data_received, n, "{what}: {ch:?}");
    assert_eq!(ch.turn.data_indications_received, 0, "{what}: {ch:?}");
    assert_eq!((ch.received, ch.dropped, ch.too_large), (n, 0, 0), "{what}");
    assert_eq!(ch.turn.stale_nonces, 0, "{what}: {ch:?}");
    sock.close().await.unwrap();

    // Indications only.
    let client = Client::connect_with(url, credentials.clone(), options.channels(false))
        .await
        .unwrap();
    let sock = allocate_on(&client, server).await;
    lockstep(&sock, echo.addr, ROUND_TRIPS).await;
    let ind = sock.stats();
    assert_eq!(sock.channel_for(echo.addr), None, "{what}: no channel");
    assert_eq!(ind.turn.channel_data_sent, 0, "{what}: {ind:?}");
    assert_eq!(ind.turn.indications_sent, n, "{what}: {ind:?}");
    assert_eq!(ind.turn.channel_data_received, 0, "{what}: {ind:?}");
    assert_eq!(ind.turn.data_indications_received, n, "{what}: {ind:?}");
    assert_eq!(
        (ind.received, ind.dropped, ind.too_large),
        (n, 0, 0),
        "{what}"
    );
    sock.close().await.unwrap();

    assert_eq!(
        echo.stop(),
        2 * n,
        "{what}: the peer echoed every datagram once"
    );
    eprintln!(
        "{what}: {n} round trips over a channel ({} ChannelData out, {} in, {} indications, \
         {} requests), {n} in indications ({} Send out, {} Data in, {} ChannelData, {} requests)",
        ch.turn.channel_data_sent,
        ch.turn.channel_data_received,
        ch.turn.indications_sent,
        ch.turn.requests,
        ind.turn.indications_sent,
        ind.turn.data_indications_received,
        ind.turn.channel_data_sent,
        ind.turn.requests,
    );
}

/// An allocation that must fail with a 401 (bad credentials).
async fn assert_401(url: &str, credentials: Credentials, what: &str) {
    let client = Client::connect_with(url, credentials, local_options())
        .await
        .unwrap();
    peers::assert_allocate_401(&client, what).await;
}

/// (1, 2) REST credentials over UDP: channels and indications; an expired REST username
/// and a wrong password are refused.
#[test]
fn udp_rest_secret_relays_over_channels_and_indications() {
    if !turnserver_available("udp_rest_secret_relays_over_channels_and_indications") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions::secret(SECRET));
    run(async {
        let u = url("turn", server.udp_addr(), "udp");
        let creds = server.credentials("udp-rest");
        both_paths(&server, &u, &creds, local_options(), "udp, REST").await;
        let past = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 60;
        assert_401(&u, Credentials::rest(SECRET, "late", past, ':'), "expired").await;
        assert_401(&u, Credentials::new(creds.username, "wrong"), "wrong").await;
    });
    eprintln!("udp, REST: {:?}", t0.elapsed());
}

/// (1, 2) A static long-term user over UDP: channels and indications; a wrong password is
/// refused.
#[test]
fn udp_static_user_relays_over_channels_and_indications() {
    if !turnserver_available("udp_static_user_relays_over_channels_and_indications") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions::user(USER, PASSWORD));
    run(async {
        let u = url("turn", server.udp_addr(), "udp");
        let creds = Credentials::new(USER, PASSWORD);
        both_paths(&server, &u, &creds, local_options(), "udp, static user").await;
        assert_401(&u, Credentials::new(USER, "not-the-password"), "wrong").await;
    });
    eprintln!("udp, static user: {:?}", t0.elapsed());
}

/// (1, 2) TCP to coturn (a static user): UDP relaying, ChannelData padded on the stream.
#[test]
fn tcp_static_user_relays_over_channels_and_indications() {
    if !turnserver_available("tcp_static_user_relays_over_channels_and_indications") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions::user(USER, PASSWORD));
    run(async {
        let u = url("turn", server.tcp_addr(), "tcp");
        let creds = Credentials::new(USER, PASSWORD);
        let client = Client::connect(&u, creds.clone()).await.unwrap();
        assert_eq!(client.protocol(), Protocol::Tcp);
        both_paths(&server, &u, &creds, local_options(), "tcp, static user").await;
    });
    eprintln!("tcp, static user: {:?}", t0.elapsed());
}

/// (1, 2) TLS to coturn (REST credentials), its self-signed certificate trusted and its name
/// ("localhost") checked; the webpki roots refuse it.
#[test]
fn tls_rest_secret_relays_over_channels_and_indications() {
    if !turnserver_available("tls_rest_secret_relays_over_channels_and_indications") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions {
        tls: true,
        ..TurnServerOptions::secret(SECRET)
    });
    run(async {
        // By name: "localhost" may resolve to ::1 first, where nothing listens; the next
        // address is tried.
        let u = format!("turns:localhost:{}", server.tls_addr().port());
        let creds = server.credentials("tls-rest");
        let options = local_options().tls_config(server.tls_client());
        let client = Client::connect_with(&u, creds.clone(), options.clone())
            .await
            .unwrap();
        assert_eq!(client.protocol(), Protocol::Tls);
        assert_eq!(client.server_addr(), server.tls_addr());
        drop(client);
        both_paths(&server, &u, &creds, options, "tls, REST").await;
        // Not trusted by the default roots.
        let err = Client::connect_with(&u, creds.clone(), local_options())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        // Another certificate for the same name, trusted instead: refused.
        let dir = turnserver::tls::TempDir::new("client-coturn-other-cert");
        let (_, other) = turnserver::tls::self_signed(&dir.0, "other", "localhost");
        let err = Client::connect_with(
            &u,
            creds.clone(),
            local_options().tls_config(trusting(&[&other])),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Tls(_)), "another certificate: {err:?}");
        // The right certificate under a name it does not carry (the machine's host name,
        // when it resolves to 127.0.0.1 only, as in most containers): refused.
        if let Some(host) = other_loopback_name() {
            let u = format!("turns:{host}:{}", server.tls_addr().port());
            let err = Client::connect_with(&u, creds, options_tls(&server))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Tls(_)), "name {host:?}: {err:?}");
        } else {
            eprintln!("tls: no other name for 127.0.0.1 here; the name mismatch is not tried");
        }
    });
    eprintln!("tls, REST: {:?}", t0.elapsed());
}

/// One RFC 6062 round: Connect to a TCP echo peer and 20 kB both ways; then a peer
/// connecting to the relayed address (after `permit`) is accepted and bytes go both ways.
async fn tcp_relay_round(server: &TurnServer, url: &str, options: ClientOptions, what: &str) {
    let client = Client::connect_with(url, Credentials::new(USER, PASSWORD), options)
        .await
        .unwrap();
    let alloc = client
        .allocate_tcp()
        .await
        .unwrap_or_else(|e| panic!("{what}: TCP Allocate: {e:?}\n{}", server.log_tail()));
    let relayed = alloc.relayed_addr();
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(
        server.relay_ports().contains(&relayed.port()),
        "{what}: {relayed}"
    );

    // Connect: coturn dials the echo peer from the relayed address.
    let peer = tcp_echo();
    let mut s = alloc
        .connect(peer)
        .await
        .unwrap_or_else(|e| panic!("{what}: Connect: {e:?}\n{}", server.log_tail()));
    assert_eq!(s.peer_addr(), peer);
    let sent: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&sent).await.unwrap();
    let mut got = vec![0u8; sent.len()];
    tokio::time::timeout(ECHO_WAIT, s.read_exact(&mut got))
        .await
        .unwrap_or_else(|_| panic!("{what}: echo through the TCP relay in time"))
        .unwrap();
    assert_eq!(got, sent, "{what}");

    // Accept: a peer on 127.0.0.1 connects to the relayed address.
    alloc.permit(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let dialer = std::thread::spawn(move || -> std::io::Result<(SocketAddr, [u8; 5])> {
        let mut c = TcpStream::connect_timeout(&relayed, Duration::from_secs(2))?;
        c.set_read_timeout(Some(Duration::from_secs(3)))?;
        c.write_all(b"from the peer")?;
        let mut b = [0u8; 5];
        c.read_exact(&mut b)?;
        Ok((c.local_addr()?, b))
    });
    let (mut a, from) = tokio::time::timeout(Duration::from_secs(3), alloc.accept())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what}: no ConnectionAttempt within 3 s\n{}",
                server.log_tail()
            )
        })
        .unwrap();
    let mut b = [0u8; 13];
    tokio::time::timeout(ECHO_WAIT, a.read_exact(&mut b))
        .await
        .unwrap_or_else(|_| panic!("{what}: the peer's first bytes in time"))
        .unwrap();
    assert_eq!(&b, b"from the peer", "{what}");
    a.write_all(b"reply").await.unwrap();
    let (dialer_addr, back) = tokio::task::spawn_blocking(move || dialer.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"reply", "{what}");
    assert_eq!(
        from, dialer_addr,
        "{what}: XOR-PEER-ADDRESS of the ConnectionAttempt"
    );
    let st = alloc.stats();
    eprintln!("{what}: Connect + 20000 bytes echoed, accept from {from}; {st:?}");
    alloc.close().await.unwrap();
}

/// (3) RFC 6062 to coturn over TCP and over TLS: `connect` and `accept`.
#[test]
fn rfc6062_connect_and_accept_over_tcp_and_tls() {
    if !turnserver_available("rfc6062_connect_and_accept_over_tcp_and_tls") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions {
        tls: true,
        ..TurnServerOptions::user(USER, PASSWORD)
    });
    run(async {
        let u = url("turn", server.tcp_addr(), "tcp");
        tcp_relay_round(&server, &u, local_options(), "rfc6062 tcp").await;
        let u = format!("turns:localhost:{}", server.tls_addr().port());
        tcp_relay_round(&server, &u, options_tls(&server), "rfc6062 tls").await;
        // Over UDP there is no TCP relay.
        let client = Client::connect_with(
            &url("turn", server.udp_addr(), "udp"),
            Credentials::new(USER, PASSWORD),
            local_options(),
        )
        .await
        .unwrap();
        assert!(matches!(client.allocate_tcp().await, Err(Error::Url(_))));
    });
    eprintln!("rfc6062: {:?}", t0.elapsed());
}

/// STUN on the wire, read by hand (not with the client's codec): type, transaction id and
/// the attributes the proxy looks at.
struct Wire<'a> {
    method: u16,
    /// 0 request, 1 indication, 2 success, 3 error.
    class: u8,
    tid: [u8; 12],
    attrs: &'a [u8],
}

impl<'a> Wire<'a> {
    fn parse(p: &'a [u8]) -> Option<Wire<'a>> {
        if p.len() < 20 || p[0] & 0xC0 != 0 || p[4..8] != [0x21, 0x12, 0xA4, 0x42] {
            return None;
        }
        let t = u16::from_be_bytes([p[0], p[1]]);
        let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let attrs = p.get(20..20 + len)?;
        Some(Wire {
            method: (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2),
            class: (((t >> 7) & 0b10) | ((t >> 4) & 0b1)) as u8,
            tid: p[8..20].try_into().unwrap(),
            attrs,
        })
    }

    fn attr(&self, typ: u16) -> Option<&'a [u8]> {
        let mut a = self.attrs;
        while a.len() >= 4 {
            let t = u16::from_be_bytes([a[0], a[1]]);
            let l = usize::from(u16::from_be_bytes([a[2], a[3]]));
            let v = a.get(4..4 + l)?;
            if t == typ {
                return Some(v);
            }
            a = a.get((4 + l).next_multiple_of(4)..).unwrap_or(&[]);
        }
        None
    }

    /// ERROR-CODE as a number (0 if none).
    fn code(&self) -> u16 {
        self.attr(0x0009)
            .filter(|v| v.len() >= 4)
            .map_or(0, |v| u16::from(v[2] & 7) * 100 + u16::from(v[3]))
    }
}

/// What the proxy saw, each way.
#[derive(Debug, Default, Clone)]
struct Tally {
    // Client to server.
    up_channel_data: u64,
    up_send_indications: u64,
    /// Send indications after the client's first ChannelData.
    up_send_after_channel: u64,
    up_keepalives: u64,
    /// Distinct requests (transaction ids), by method.
    up_requests: BTreeMap<u16, u64>,
    up_retransmissions: u64,
    up_other: u64,
    // Server to client.
    down_channel_data: u64,
    down_data_indications: u64,
    down_other: u64,
    /// Answers to a transaction answered already (or unknown).
    down_repeated_answers: u64,
    /// Every answer in order: method and code (0 for success).
    answers: Vec<(u16, u16)>,
    /// Distinct NONCE values in 401 and 438 answers, in order.
    nonces: Vec<Vec<u8>>,
    /// Requests not answered yet.
    pending: HashMap<[u8; 12], u16>,
    /// Every request's transaction id.
    seen: HashSet<[u8; 12]>,
}

impl Tally {
    fn requests(&self) -> u64 {
        self.up_requests.values().sum()
    }

    fn count(&self, code: u16) -> u64 {
        self.answers.iter().filter(|(_, c)| *c == code).count() as u64
    }

    fn up(&mut self, p: &[u8]) {
        if p.first().is_some_and(|b| b & 0xC0 == 0x40) {
            self.up_channel_data += 1;
            return;
        }
        let Some(m) = Wire::parse(p) else {
            self.up_other += 1;
            return;
        };
        match (m.class, m.method) {
            (1, 0x006) => {
                self.up_send_indications += 1;
                if self.up_channel_data > 0 {
                    self.up_send_after_channel += 1;
                }
            }
            (1, 0x001) => self.up_keepalives += 1,
            (0, method) => {
                if self.seen.insert(m.tid) {
                    *self.up_requests.entry(method).or_default() += 1;
                    self.pending.insert(m.tid, method);
                } else {
                    self.up_retransmissions += 1;
                }
            }
            _ => self.up_other += 1,
        }
    }

    fn down(&mut self, p: &[u8]) {
        if p.first().is_some_and(|b| b & 0xC0 == 0x40) {
            self.down_channel_data += 1;
            return;
        }
        let Some(m) = Wire::parse(p) else {
            self.down_other += 1;
            return;
        };
        match m.class {
            1 if m.method == 0x007 => self.down_data_indications += 1,
            2 | 3 => {
                // Only the first answer to a transaction counts (a retransmitted request
                // may be answered twice).
                if self.pending.remove(&m.tid).is_none() {
                    self.down_repeated_answers += 1;
                    return;
                }
                let code = if m.class == 2 { 0 } else { m.code() };
                self.answers.push((m.method, code));
                if let Some(n) = m.attr(0x0015)
                    && !self.nonces.iter().any(|k| k == n)
                {
                    self.nonces.push(n.to_vec());
                }
            }
            _ => self.down_other += 1,
        }
    }
}

/// A UDP proxy on 127.0.0.1 between one client and a server, counting what passes (see
/// [`Tally`]). Two threads, each bounded by [`HELPER_LIFE`] and a datagram count; they
/// stop when the proxy is dropped.
struct CountingProxy {
    addr: SocketAddr,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// At most this many datagrams each way.
const PROXY_MAX: u64 = 200_000;

impl CountingProxy {
    fn start(server: SocketAddr) -> CountingProxy {
        let front = Arc::new(UdpSocket::bind(loopback(0)).unwrap());
        let back = Arc::new(UdpSocket::bind(loopback(0)).unwrap());
        back.connect(server).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let started = Instant::now();
        let live = move |stop: &AtomicBool, n: u64| {
            !stop.load(Ordering::Relaxed) && started.elapsed() < HELPER_LIFE && n < PROXY_MAX
        };
        let up = {
            let (front, back, tally, stop, client) = (
                front.clone(),
                back.clone(),
                tally.clone(),
                stop.clone(),
                client.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut n = 0;
                while live(&stop, n) {
                    let Ok((len, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    n += 1;
                    *client.lock().unwrap() = Some(from);
                    tally.lock().unwrap().up(&buf[..len]);
                    let _ = back.send(&buf[..len]);
                }
            })
        };
        let down = {
            let (tally, stop) = (tally.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut n = 0;
                while live(&stop, n) {
                    let Ok(len) = back.recv(&mut buf) else {
                        continue;
                    };
                    n += 1;
                    tally.lock().unwrap().down(&buf[..len]);
                    if let Some(to) = *client.lock().unwrap() {
                        let _ = front.send_to(&buf[..len], to);
                    }
                }
            })
        };
        CountingProxy {
            addr,
            tally,
            stop,
            threads: vec![up, down],
        }
    }

    fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Requests made often: a permission refreshed every 400 ms and the channel re-bound every
/// 700 ms. The allocation's own Refresh cannot be made frequent: coturn 4.6.1 raises any
/// requested LIFETIME under 600 s to 600 s (`STUN_MIN_ALLOCATE_LIFETIME` is
/// `STUN_DEFAULT_ALLOCATE_LIFETIME` in its ns_turn_msg_defs.h); the test asks for 3 s and
/// checks that.
const PERMISSION_EVERY: Duration = Duration::from_millis(400);
const CHANNEL_EVERY: Duration = Duration::from_millis(700);
const SHORT_LIFETIME: Duration = Duration::from_secs(3);
/// `--stale-nonce=1`: coturn makes a new nonce for the first request it checks once its
/// whole-second clock is past the nonce's birth second + 1, so a nonce lives more than one
/// second and at most about three (it cannot be stale when it is handed out: the retry
/// with it succeeds).
const STALE_NONCE: u32 = 1;
/// Nonce changes to see.
const NONCE_CHANGES: u64 = 3;
/// The relaying loop's bounds.
const RELAY_MAX: u32 = 20_000;
const RELAY_FOR_AT_MOST: Duration = Duration::from_secs(11);

/// (4) `--stale-nonce=1` while the client relays without pause (a lockstep round trip every
/// 2 ms): its refreshes meet at least three nonce changes, each answered 438 and retried
/// with the new nonce, and succeed; meanwhile data flows as ChannelData, none lost.
/// Counted on the wire by a proxy between client and coturn, and checked against the
/// client's own counters.
#[test]
fn stale_nonces_while_relaying_lose_nothing() {
    if !turnserver_available("stale_nonces_while_relaying_lose_nothing") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions {
        stale_nonce: Some(STALE_NONCE),
        ..TurnServerOptions::secret(SECRET)
    });
    let proxy = CountingProxy::start(server.udp_addr());
    let echo = UdpEcho::start();
    run(async {
        let options = local_options()
            .lifetime(SHORT_LIFETIME)
            .refresh_intervals(PERMISSION_EVERY, CHANNEL_EVERY);
        let client = Client::connect_with(
            &url("turn", proxy.addr, "udp"),
            server.credentials("nonce"),
            options,
        )
        .await
        .unwrap();
        let sock = allocate_on(&client, &server).await;
        let granted = sock.lifetime();
        assert_eq!(granted, Duration::from_secs(600), "coturn's floor");
        let started = Instant::now();
        let mut buf = vec![0u8; 2048];
        let mut trips = 0;
        while trips < RELAY_MAX && started.elapsed() < RELAY_FOR_AT_MOST {
            round_trip(&sock, echo.addr, trips, &mut buf).await;
            trips += 1;
            if sock.stats().turn.stale_nonces >= NONCE_CHANGES
                && proxy.tally().count(438) >= NONCE_CHANGES
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let relayed_for = started.elapsed();

        // The client's counters against the wire's: taken when no request is under way (a
        // refresh may be built between the two readings; then read again, a few times).
        let mut agreed = None;
        for _ in 0..20 {
            let st = sock.stats().turn;
            tokio::time::sleep(Duration::from_millis(60)).await;
            let wire = proxy.tally();
            if st == sock.stats().turn && wire.pending.is_empty() && st.requests == wire.requests()
            {
                agreed = Some((st, wire));
                break;
            }
        }
        let (st, wire) = agreed.unwrap_or_else(|| {
            panic!(
                "client and wire never agreed: {:?} vs {:?}",
                sock.stats(),
                proxy.tally()
            )
        });
        let trips = u64::from(trips);
        eprintln!(
            "stale nonces: {trips} round trips in {relayed_for:?} (lifetime granted {granted:?}); \
             wire: {} requests {:?} (method: count), answers 438 x{}, 401 x{}, success x{}, \
             {} nonces, {} retransmissions ({} repeated answers), ChannelData {} up / {} down, Send indications {}, \
             Data indications {}, keepalives {}; 438s by method {:?}; client {st:?}",
            wire.requests(),
            wire.up_requests,
            wire.count(438),
            wire.count(401),
            wire.count(0),
            wire.nonces.len(),
            wire.up_retransmissions,
            wire.down_repeated_answers,
            wire.up_channel_data,
            wire.down_channel_data,
            wire.up_send_indications,
            wire.down_data_indications,
            wire.up_keepalives,
            wire.answers
                .iter()
                .filter(|a| a.1 == 438)
                .map(|a| a.0)
                .collect::<Vec<_>>(),
        );

        // At least three nonce changes, each a 438 with a new NONCE (the first came in the
        // 401).
        let stale = wire.count(438);
        assert!(stale >= NONCE_CHANGES, "{wire:?}");
        assert!(
            wire.nonces.len() as u64 > NONCE_CHANGES,
            "{} distinct nonces",
            wire.nonces.len()
        );
        assert_eq!(st.stale_nonces, stale, "the client took every 438");
        // The only other error is the first Allocate's 401; every request rebuilt after a
        // 438 got its success (so did every request).
        assert_eq!(wire.count(401), 1, "{:?}", wire.answers);
        assert_eq!(
            wire.answers[..2],
            [(Method::ALLOCATE.0, 401), (Method::ALLOCATE.0, 0)]
        );
        let others: Vec<_> = wire
            .answers
            .iter()
            .filter(|(_, c)| ![0, 401, 438].contains(c))
            .collect();
        assert!(others.is_empty(), "other errors: {others:?}");
        for (i, &(method, code)) in wire.answers.iter().enumerate() {
            if code != 0 {
                assert!(
                    wire.answers[i + 1..].contains(&(method, 0)),
                    "answer {i} ({method:#x}, {code}) not followed by a success"
                );
            }
        }
        assert_eq!(
            wire.count(0),
            wire.requests() - stale - 1,
            "one success per request, apart from those answered 401 or 438"
        );
        // 600 s granted: no Refresh while relaying, only the refreshes of the permission
        // and the channel.
        assert_eq!(wire.up_requests.get(&Method::REFRESH.0), None);
        for method in [Method::CREATE_PERMISSION, Method::CHANNEL_BIND] {
            assert!(
                wire.up_requests.get(&method.0).is_some_and(|&n| n >= 2),
                "{method:?} requests: {:?}",
                wire.up_requests
            );
        }
        assert_eq!(st.requests, wire.requests());
        assert_eq!(st.retransmissions, wire.up_retransmissions);
        assert_eq!(st.keepalives, wire.up_keepalives);

        // Data: every round trip as ChannelData both ways, no Send indication at all (the
        // first datagram waited for the ChannelBind), nothing lost.
        assert_eq!(wire.up_channel_data, trips);
        assert_eq!(wire.down_channel_data, trips);
        assert_eq!(wire.up_send_indications, 0);
        assert_eq!(wire.up_send_after_channel, 0);
        assert_eq!(wire.down_data_indications, 0);
        assert_eq!((wire.up_other, wire.down_other), (0, 0));
        assert_eq!(st.channel_data_sent, trips);
        assert_eq!(st.channel_data_received, trips);
        assert_eq!(st.indications_sent, 0);
        let ss = sock.stats();
        assert_eq!((ss.received, ss.dropped, ss.too_large), (trips, 0, 0));
        // Refresh(0) deletes the allocation (after a 438 of its own, perhaps).
        sock.close().await.unwrap();
        let wire = proxy.tally();
        assert_eq!(
            wire.answers.last(),
            Some(&(Method::REFRESH.0, 0)),
            "{:?}",
            wire.answers
        );
        assert!(wire.pending.is_empty());
    });
    assert_eq!(
        echo.stop(),
        proxy.tally().down_channel_data,
        "the peer echoed what came back"
    );
    eprintln!("stale nonces: {:?}", t0.elapsed());
}

/// (5) 300 Try Alternate: coturn A (`--alternate-server`, `--tls-alternate-server`) sends
/// every Allocate to coturn B. Followed with `allow_private_alternates(true)` (the
/// allocation is B's, data flows), refused by default (`Error::RefusedAlternate` naming
/// B), over UDP, TCP and TLS.
#[test]
fn try_alternate_lands_on_the_second_coturn_or_is_refused() {
    if !turnserver_available("try_alternate_lands_on_the_second_coturn_or_is_refused") {
        return;
    }
    let t0 = Instant::now();
    let b = TurnServer::start(TurnServerOptions {
        tls: true,
        ..TurnServerOptions::secret(SECRET)
    });
    let a = TurnServer::start(TurnServerOptions {
        tls: true,
        alternate_server: Some(b.udp_addr()),
        tls_alternate_server: Some(b.tls_addr()),
        ..TurnServerOptions::secret(SECRET)
    });
    assert!(
        a.relay_ports().start() > b.relay_ports().end()
            || a.relay_ports().end() < b.relay_ports().start(),
        "the two relay ranges tell the servers apart"
    );
    let tls = trusting(&[a.cert_path(), b.cert_path()]);
    run(async {
        let echo = UdpEcho::start();
        let cases = [
            ("udp", url("turn", a.udp_addr(), "udp"), b.udp_addr()),
            ("tcp", url("turn", a.tcp_addr(), "tcp"), b.tcp_addr()),
            (
                "tls",
                format!("turns:localhost:{}", a.tls_addr().port()),
                b.tls_addr(),
            ),
        ];
        for (what, u, to) in cases {
            let creds = a.credentials(what);
            let base = local_options().tls_config(tls.clone());
            // Followed: the allocation is on B.
            let client = Client::connect_with(
                &u,
                creds.clone(),
                base.clone().allow_private_alternates(true),
            )
            .await
            .unwrap();
            let sock = allocate_on(&client, &b).await;
            lockstep(&sock, echo.addr, 20).await;
            let st = sock.stats();
            assert_eq!(st.turn.channel_data_sent, 20, "{what}: {st:?}");
            sock.close().await.unwrap();
            // Refused by default: 127.0.0.1 is not a public address.
            let client = Client::connect_with(&u, creds, base).await.unwrap();
            match client.allocate().await {
                Err(Error::RefusedAlternate(named)) => assert_eq!(named, to, "{what}"),
                Err(e) => panic!("{what}: {e:?}"),
                Ok(s) => panic!("{what}: allocated {} despite the 300", s.relayed_addr()),
            }
            if what == "tls" {
                // The alternate's certificate is checked too: trusting A's only, the
                // handshake with B fails.
                let only_a = local_options()
                    .tls_config(trusting(&[a.cert_path()]))
                    .allow_private_alternates(true);
                let client = Client::connect_with(&u, a.credentials(what), only_a)
                    .await
                    .unwrap();
                match client.allocate().await {
                    Err(Error::Tls(_)) => {}
                    Err(e) => panic!("tls, B untrusted: {e:?}"),
                    Ok(s) => panic!("tls, B untrusted: allocated {}", s.relayed_addr()),
                }
            }
            eprintln!(
                "try alternate, {what}: redirected to {to}, 20 round trips; refused by default"
            );
        }
    });
    eprintln!("try alternate: {:?}", t0.elapsed());
}

/// How long after a nonce was handed out it is surely stale with `--stale-nonce=1` (it
/// lives at most about three seconds, see [`STALE_NONCE`]).
const NONCE_SURELY_STALE: Duration = Duration::from_millis(3300);

/// (3, 4) RFC 6062 across nonce expiry (`--stale-nonce=1`), and a coturn 4.6.1 limitation.
///
/// A peer connecting to the relayed address once the allocation's nonce is stale is lost:
/// the client's ConnectionBind on the new data connection carries the stale nonce (nothing
/// on the control connection renewed it), coturn answers 438 "Stale nonce" and, having
/// already dropped the pending connection (`turnserver_accept_tcp_client_data_connection`
/// cleans it up whatever the outcome of the auth check), closes the data connection, so
/// the client's retry with the new nonce meets a reset. `accept` fails with an I/O error;
/// the allocation itself survives, and a Connect afterwards works: it meets the 438 on the
/// control connection, is retried there, and its ConnectionBind follows with the fresh
/// nonce.
#[test]
fn rfc6062_across_nonce_expiry() {
    if !turnserver_available("rfc6062_across_nonce_expiry") {
        return;
    }
    let t0 = Instant::now();
    let server = TurnServer::start(TurnServerOptions {
        stale_nonce: Some(STALE_NONCE),
        // The requests and their answers in the log.
        verbose: true,
        ..TurnServerOptions::user(USER, PASSWORD)
    });
    run(async {
        let u = url("turn", server.tcp_addr(), "tcp");
        let client = Client::connect_with(&u, Credentials::new(USER, PASSWORD), local_options())
            .await
            .unwrap();
        let alloc = client.allocate_tcp().await.unwrap();
        alloc.permit(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
        tokio::time::sleep(NONCE_SURELY_STALE).await;

        // A peer connects: coturn sends ConnectionAttempt, the ConnectionBind meets 438 and
        // the data connection is closed.
        let relayed = alloc.relayed_addr();
        let dialer = std::thread::spawn(move || {
            let mut c = TcpStream::connect_timeout(&relayed, Duration::from_secs(2)).ok()?;
            c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
            c.write_all(b"from the peer").ok()?;
            let mut b = [0u8; 5];
            c.read_exact(&mut b).ok().map(|()| b)
        });
        let accepted = tokio::time::timeout(Duration::from_secs(3), alloc.accept())
            .await
            .expect("the ConnectionAttempt and coturn's answer within 3 s");
        match accepted {
            Err(Error::Io(_)) => {}
            Err(e) => panic!("accept after nonce expiry: {e:?}"),
            Ok((_, from)) => panic!(
                "accept after nonce expiry worked ({from}): coturn renews ConnectionBind \
                 nonces now, or the client refreshed its nonce first; update this test"
            ),
        }
        let peer_got = tokio::task::spawn_blocking(move || dialer.join().unwrap())
            .await
            .unwrap();
        assert_eq!(peer_got, None, "the peer got no answer");
        assert!(
            std::fs::read_to_string(server.log_path())
                .unwrap()
                .contains("CONNECTION_BIND processed, error 438"),
            "coturn logs the 438:\n{}",
            server.log_tail()
        );
        let before = alloc.stats();
        assert_eq!(
            before.stale_nonces, 0,
            "the control connection saw no 438 yet"
        );

        // Connect (the permission holds) meets the 438 on the control connection, is
        // retried, and the ConnectionBind that follows uses the new nonce.
        let peer = tcp_echo();
        let mut s = alloc
            .connect(peer)
            .await
            .unwrap_or_else(|e| panic!("Connect after expiry: {e:?}\n{}", server.log_tail()));
        s.write_all(b"still relaying").await.unwrap();
        let mut got = [0u8; 14];
        tokio::time::timeout(ECHO_WAIT, s.read_exact(&mut got))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(&got, b"still relaying");
        let after = alloc.stats();
        assert!(after.stale_nonces >= 1, "{after:?}");
        eprintln!(
            "rfc6062 across nonce expiry: accept lost (ConnectionBind 438), connect ok; {after:?}"
        );
        alloc.close().await.unwrap();
    });
    eprintln!("rfc6062 across nonce expiry: {:?}", t0.elapsed());
}

/// `bind_channel` before anything is sent: the peer may send first, and every datagram
/// both ways is ChannelData (no Send indication while a ChannelBind is in flight); closing
/// through a shared reference leaves the socket closed; a channel to a refused peer is the
/// server's error.
#[test]
fn bind_channel_first_makes_every_datagram_channel_data() {
    if !turnserver_available("bind_channel_first_makes_every_datagram_channel_data") {
        return;
    }
    let server = TurnServer::start(TurnServerOptions::secret(SECRET));
    run(async {
        let u = url("turn", server.udp_addr(), "udp");
        let client = Client::connect_with(&u, server.credentials("bind-first"), local_options())
            .await
            .unwrap();
        let sock = allocate_on(&client, &server).await;
        drop(client);
        let peer = UdpSocket::bind(loopback(0)).unwrap();
        peer.set_read_timeout(Some(ECHO_WAIT)).unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let number = sock.bind_channel(peer_addr).await.unwrap();
        assert!((0x4000..=0x7FFF).contains(&number), "channel {number:#x}");
        assert_eq!(sock.channel_for(peer_addr), Some(number));
        // Bound again: nothing new is asked for.
        let requests = sock.stats().turn.requests;
        assert_eq!(sock.bind_channel(peer_addr).await.unwrap(), number);
        assert_eq!(sock.stats().turn.requests, requests);
        // The peer first, then 20 exchanges.
        let mut buf = [0u8; 2048];
        for i in 0..20u32 {
            peer.send_to(&datagram(i), sock.relayed_addr()).unwrap();
            let (n, from) = tokio::time::timeout(ECHO_WAIT, sock.recv_from(&mut buf))
                .await
                .expect("the peer's datagram in time")
                .unwrap();
            assert_eq!((from, &buf[..n]), (peer_addr, &datagram(i)[..]));
            sock.send_to(&buf[..n], peer_addr).await.unwrap();
            let (n, _) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &datagram(i)[..]);
        }
        let st = sock.stats().turn;
        assert_eq!(
            (st.channel_data_sent, st.indications_sent),
            (20, 0),
            "{st:?}"
        );
        assert_eq!(
            (st.channel_data_received, st.data_indications_received),
            (20, 0)
        );
        // coturn refuses peers on 0.0.0.0/8 and the like: the server's 403.
        let refused = sock.bind_channel(SocketAddr::from(([0, 0, 0, 1], 9))).await;
        assert!(
            matches!(refused, Err(Error::Failure { code: 403, .. })),
            "{refused:?}"
        );
        sock.close().await.unwrap();
        assert!(matches!(
            sock.send_to(b"x", peer_addr).await,
            Err(Error::Closed)
        ));
    });
}

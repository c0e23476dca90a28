//! Helpers shared by integration tests: a TURN client (ternd-client's session over a UDP
//! socket or a TCP stream, with raw requests for driving exact workloads), and a raw
//! HTTP/1.1 client. (Interop tests use clients nobody here wrote.)
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ternd::stun::{Attribute, Message, MessageBuilder, Method, TransactionId, attr_type};
use ternd_client::blocking::{self, Stream, Timing, Udp};
use ternd_client::data::{self, Incoming};
use ternd_client::{Credentials, Session};

/// The REST secret integration servers use.
pub const SECRET: &str = "integration-secret";

/// Requests are sent once and answered within 2 s: no retransmission, so what the server
/// counts is exactly what a test sent.
pub const TIMING: Timing = Timing {
    wait: Duration::from_secs(2),
    attempts: 1,
};

/// A TURN client: a ternd-client session on a UDP socket.
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub session: Session,
}

pub fn parse_text(m: &Message<'_>, t: u16) -> String {
    match m.get_decoded(t) {
        Some(Ok(Attribute::Realm(s))) | Some(Ok(Attribute::Nonce(s))) => s.to_string(),
        other => panic!("missing {t:#x}: {other:?}"),
    }
}

pub fn error_code(m: &Message<'_>) -> Option<u16> {
    match m.get_decoded(attr_type::ERROR_CODE)? {
        Ok(Attribute::ErrorCode(e)) => Some(e.code),
        _ => None,
    }
}

/// A session with a transaction id prefix of its own.
pub fn session(credentials: Credentials) -> Session {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut prefix = *b"test\0\0\0\0";
    prefix[4..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut s = Session::new(credentials, prefix);
    // Requests as the tests build them, without FINGERPRINT.
    s.set_fingerprint(false);
    s
}

/// REST credentials for `user` under `secret`, valid for an hour.
pub fn rest_credentials(secret: &str, user: &str) -> Credentials {
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    Credentials::rest(secret, user, expiry, ':')
}

impl Client {
    /// A client with REST credentials for `user` under [`SECRET`].
    pub fn new(server: SocketAddr, user: &str) -> Client {
        Self::with_secret(server, user, SECRET)
    }

    /// A client with a given username and password (e.g. from the credentials endpoint).
    pub fn with_credentials(server: SocketAddr, username: &str, password: &str) -> Client {
        Self::with(server, Credentials::new(username, password))
    }

    /// A client with REST credentials for `user` under `secret`.
    pub fn with_secret(server: SocketAddr, user: &str, secret: &str) -> Client {
        Self::with(server, rest_credentials(secret, user))
    }

    fn with(server: SocketAddr, credentials: Credentials) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Client {
            sock,
            server,
            session: session(credentials),
        }
    }

    /// The username requests carry.
    pub fn username(&self) -> &str {
        self.session.username()
    }

    /// The long-term key (known once a challenge was learned).
    pub fn key(&self) -> [u8; 16] {
        self.session.key().expect("a challenge was learned")
    }

    /// Takes the REALM and NONCE of a 401 (or 438): the next requests are authenticated.
    pub fn learn(&mut self, m: &Message<'_>) {
        self.session
            .learn_challenge(m)
            .expect("a challenge with REALM and NONCE");
    }

    fn udp(&self) -> Udp<'_> {
        Udp::to(&self.sock, self.server).with_timing(TIMING)
    }

    /// The next request (a new transaction id), with credentials if `auth`.
    pub fn request(
        &mut self,
        method: Method,
        auth: bool,
        build: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let r = self
            .session
            .build_request(method, auth, &mut buf, |b| {
                build(b);
                Ok(())
            })
            .unwrap();
        buf[..r.len].to_vec()
    }

    /// The same request over a TCP control connection instead of the UDP socket (the
    /// credentials, realm and nonce are this client's); returns the answer.
    pub fn transact_stream(
        &mut self,
        s: &mut TcpStream,
        method: Method,
        auth: bool,
        build: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let req = self.request(method, auth, build);
        blocking::exchange(&mut Stream::new(s), &req, method, tid_of(&req)).expect("answer")
    }

    /// One raw request over UDP; returns the answer.
    pub fn transact(
        &mut self,
        method: Method,
        auth: bool,
        build: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let req = self.request(method, auth, build);
        blocking::exchange(&mut self.udp(), &req, method, tid_of(&req)).expect("answer")
    }

    /// Allocates (with the 401 round trip); returns the relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        // The session checks the success's MESSAGE-INTEGRITY.
        self.try_allocate()
            .unwrap_or_else(|e| panic!("error {:?}: {e}", e.code()))
    }

    /// Allocates (with the 401 round trip, unless a challenge was learned already):
    /// the relayed address, or the error (with its code).
    pub fn try_allocate(&mut self) -> Result<SocketAddr, ternd_client::Error> {
        if !self.session.has_challenge() {
            let first = self.transact(Method::ALLOCATE, false, |b| {
                b.add(&Attribute::RequestedTransport(17)).unwrap()
            });
            let m = Message::parse(&first).unwrap();
            assert_eq!(error_code(&m), Some(401));
            self.learn(&m);
        }
        let mut udp = Udp::to(&self.sock, self.server).with_timing(TIMING);
        blocking::allocate(&mut self.session, &mut udp)
    }

    /// Sends everything from now on to `server` (following a 300), from the same socket
    /// and with the same realm and nonce.
    pub fn redirect(&mut self, server: SocketAddr) {
        self.server = server;
    }

    /// A Refresh with `lifetime` seconds: `None` on success, else the error code.
    pub fn refresh_code(&mut self, lifetime: u32) -> Option<u16> {
        let mut udp = Udp::to(&self.sock, self.server).with_timing(TIMING);
        match blocking::refresh(&mut self.session, &mut udp, lifetime) {
            Ok(()) => None,
            Err(e) => Some(e.code().unwrap_or(0)),
        }
    }

    pub fn permit(&mut self, peer: SocketAddr) {
        let mut udp = Udp::to(&self.sock, self.server).with_timing(TIMING);
        blocking::create_permission(&mut self.session, &mut udp, peer)
            .unwrap_or_else(|e| panic!("error {:?}: {e}", e.code()))
    }

    /// Sends `payload` to `peer` in a Send indication.
    pub fn send(&mut self, peer: SocketAddr, payload: &[u8]) {
        let mut buf = [0u8; 1500];
        let tid = self.session.next_transaction_id();
        let n = data::send_indication(tid, peer, payload, &mut buf).unwrap();
        self.sock.send_to(&buf[..n], self.server).unwrap();
    }

    /// The next Data indication, if one arrives within `wait`.
    pub fn data(&self, wait: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut r = [0u8; 1500];
        let (n, _) = self.sock.recv_from(&mut r).ok()?;
        match data::decode(&r[..n])? {
            Incoming::Data { peer, data } => Some((peer, data.to_vec())),
            Incoming::Stun(m) => panic!("not a Data indication: {:?}", m.message_type()),
            Incoming::ChannelData { .. } => None,
        }
    }
}

/// The transaction id of a STUN message.
fn tid_of(msg: &[u8]) -> TransactionId {
    let mut t = [0u8; 12];
    t.copy_from_slice(&msg[8..20]);
    TransactionId(t)
}

impl Client {
    /// A ChannelBind of `number` to `peer`: `None` on success, else the error code.
    pub fn channel_bind_code(&mut self, number: u16, peer: SocketAddr) -> Option<u16> {
        let mut udp = Udp::to(&self.sock, self.server).with_timing(TIMING);
        match blocking::channel_bind(&mut self.session, &mut udp, number, peer) {
            Ok(()) => None,
            Err(e) => Some(e.code().unwrap_or(0)),
        }
    }

    /// Binds a channel to `peer`.
    pub fn bind_channel(&mut self, number: u16, peer: SocketAddr) {
        let code = self.channel_bind_code(number, peer);
        assert_eq!(code, None, "ChannelBind to {peer}");
    }

    /// Sends ChannelData.
    pub fn send_channel(&self, number: u16, payload: &[u8]) {
        let mut f = vec![0u8; 4 + payload.len()];
        let n = data::channel_data(number, payload, false, &mut f).unwrap();
        self.sock.send_to(&f[..n], self.server).unwrap();
    }

    /// The next ChannelData payload within `wait`.
    pub fn channel_data(&self, wait: Duration) -> Option<(u16, Vec<u8>)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut r = [0u8; 1500];
        let (n, _) = self.sock.recv_from(&mut r).ok()?;
        match data::decode(&r[..n])? {
            Incoming::ChannelData { number, data } => Some((number, data.to_vec())),
            _ => None,
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl HttpResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; bounded by a 5 s timeout.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // Bodies here are small and sent whole or chunked; strip chunk framing if present.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// The sum of a Prometheus metric's samples whose label set contains every `labels` pair.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// This process's resident set size in KiB (0 if /proc cannot tell).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An HS256 access token for `sub` (audience `ternd`), valid for 10 minutes, signed with
/// `key`: what an app's identity service hands the credentials endpoint.
pub fn hs256_token(sub: &str, key: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": exp, "aud": "ternd"}),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

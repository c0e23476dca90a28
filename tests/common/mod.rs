//! Helpers shared by integration tests: a small TURN client on ternd's codec, and a raw
//! HTTP/1.1 client. (Interop tests use clients nobody here wrote; these are for driving
//! exact workloads.)
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ternd::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

/// The REST secret integration servers use.
pub const SECRET: &str = "integration-secret";

pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub username: String,
    pub key: [u8; 16],
    pub realm: String,
    pub nonce: String,
    pub tid: u8,
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

impl Client {
    /// A client with REST credentials for `user` under [`SECRET`].
    pub fn new(server: SocketAddr, user: &str) -> Client {
        Self::with_secret(server, user, SECRET)
    }

    /// A client with a given username and password (e.g. from the credentials endpoint).
    pub fn with_credentials(server: SocketAddr, username: &str, password: &str) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let key = ternd::auth::long_term_key_md5(username, "ternd", password).unwrap();
        Client {
            sock,
            server,
            username: username.to_string(),
            key,
            realm: String::new(),
            nonce: String::new(),
            tid: 0,
        }
    }

    /// A client with REST credentials for `user` under `secret`.
    pub fn with_secret(server: SocketAddr, user: &str, secret: &str) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let (username, password) = ternd::auth::rest::credentials(secret, user, expiry, ':');
        let key = ternd::auth::long_term_key_md5(&username, "ternd", &password).unwrap();
        Client {
            sock,
            server,
            username,
            key,
            realm: String::new(),
            nonce: String::new(),
            tid: 0,
        }
    }

    /// The next request (a new transaction id), with credentials if `auth`.
    pub fn request(
        &mut self,
        method: Method,
        auth: bool,
        build: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        self.tid = self.tid.wrapping_add(1);
        let mut buf = [0u8; 1024];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(method, Class::Request),
            TransactionId([self.tid; 12]),
        )
        .unwrap();
        build(&mut b);
        if auth {
            b.add(&Attribute::Username(&self.username)).unwrap();
            b.add(&Attribute::Realm(&self.realm)).unwrap();
            b.add(&Attribute::Nonce(&self.nonce)).unwrap();
            b.add_message_integrity(&self.key).unwrap();
        }
        let n = b.finish();
        buf[..n].to_vec()
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
        s.write_all(&req).unwrap();
        loop {
            let mut head = [0u8; 20];
            s.read_exact(&mut head).expect("answer");
            let len = u16::from_be_bytes([head[2], head[3]]) as usize;
            let mut msg = head.to_vec();
            msg.resize(20 + len, 0);
            s.read_exact(&mut msg[20..]).unwrap();
            if msg[8..20] == [self.tid; 12] {
                return msg;
            }
        }
    }

    pub fn transact(
        &mut self,
        method: Method,
        auth: bool,
        build: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let req = self.request(method, auth, build);
        self.sock.send_to(&req, self.server).unwrap();
        let mut r = [0u8; 1500];
        loop {
            let (n, _) = self.sock.recv_from(&mut r).expect("answer");
            if r[0] < 4 && r[8..20] == [self.tid; 12] {
                return r[..n].to_vec();
            }
        }
    }

    /// Allocates (with the 401 round trip); returns the relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        let first = self.transact(Method::ALLOCATE, false, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        });
        let m = Message::parse(&first).unwrap();
        assert_eq!(error_code(&m), Some(401));
        self.realm = parse_text(&m, attr_type::REALM);
        self.nonce = parse_text(&m, attr_type::NONCE);
        let resp = self.transact(Method::ALLOCATE, true, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap()
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "error {:?}",
            error_code(&m)
        );
        m.verify_integrity(&self.key).unwrap();
        match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
            Some(Ok(Attribute::XorRelayedAddress(a))) => a,
            other => panic!("{other:?}"),
        }
    }

    pub fn permit(&mut self, peer: SocketAddr) {
        let resp = self.transact(Method::CREATE_PERMISSION, true, |b| {
            b.add(&Attribute::XorPeerAddress(peer)).unwrap()
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "error {:?}",
            error_code(&m)
        );
    }

    /// Sends `payload` to `peer` in a Send indication.
    pub fn send(&mut self, peer: SocketAddr, payload: &[u8]) {
        self.tid = self.tid.wrapping_add(1);
        let mut buf = [0u8; 1500];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId([self.tid; 12]),
        )
        .unwrap();
        b.add(&Attribute::XorPeerAddress(peer)).unwrap();
        b.add(&Attribute::Data(payload)).unwrap();
        let n = b.finish();
        self.sock.send_to(&buf[..n], self.server).unwrap();
    }

    /// The next Data indication, if one arrives within `wait`.
    pub fn data(&self, wait: Duration) -> Option<(SocketAddr, Vec<u8>)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut r = [0u8; 1500];
        let (n, _) = self.sock.recv_from(&mut r).ok()?;
        let m = Message::parse(&r[..n]).ok()?;
        assert_eq!(
            m.message_type(),
            MessageType::new(Method::DATA, Class::Indication)
        );
        let Some(Ok(Attribute::XorPeerAddress(p))) = m.get_decoded(attr_type::XOR_PEER_ADDRESS)
        else {
            panic!()
        };
        let Some(Ok(Attribute::Data(d))) = m.get_decoded(attr_type::DATA) else {
            panic!()
        };
        Some((p, d.to_vec()))
    }
}

impl Client {
    /// A ChannelBind of `number` to `peer`: `None` on success, else the error code.
    pub fn channel_bind_code(&mut self, number: u16, peer: SocketAddr) -> Option<u16> {
        let resp = self.transact(Method::CHANNEL_BIND, true, |b| {
            b.add(&Attribute::ChannelNumber(number)).unwrap();
            b.add(&Attribute::XorPeerAddress(peer)).unwrap();
        });
        let m = Message::parse(&resp).unwrap();
        match m.message_type().class {
            Class::Success => None,
            _ => Some(error_code(&m).unwrap_or(0)),
        }
    }

    /// Binds a channel to `peer`.
    pub fn bind_channel(&mut self, number: u16, peer: SocketAddr) {
        let code = self.channel_bind_code(number, peer);
        assert_eq!(code, None, "ChannelBind to {peer}");
    }

    /// Sends ChannelData.
    pub fn send_channel(&self, number: u16, payload: &[u8]) {
        let mut f = number.to_be_bytes().to_vec();
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(payload);
        self.sock.send_to(&f, self.server).unwrap();
    }

    /// The next ChannelData payload within `wait`.
    pub fn channel_data(&self, wait: Duration) -> Option<(u16, Vec<u8>)> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut r = [0u8; 1500];
        let (n, _) = self.sock.recv_from(&mut r).ok()?;
        if n < 4 || !(0x40..=0x7F).contains(&r[0]) {
            return None;
        }
        let len = u16::from_be_bytes([r[2], r[3]]) as usize;
        Some((u16::from_be_bytes([r[0], r[1]]), r[4..4 + len].to_vec()))
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

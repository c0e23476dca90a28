//! Byte-level tests of the core with a fake clock and fake relay sockets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::testing::{FakeRelays, shared};
use super::*;
use crate::auth::store::Key;
use crate::auth::{long_term_key_md5, long_term_key_sha256, rest};
use crate::policy::PeerPolicy;
use crate::stun::channel::ChannelRange;
use crate::stun::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, ParseOptions,
    TransactionId, attr_type,
};
use crate::stun::{MAGIC_COOKIE, UnknownAttributes};

const UNIX0: u64 = 1_700_000_000;

struct T {
    s: Server,
    r: FakeRelays,
    t0: Instant,
    now: Instant,
    next_tid: u8,
    /// The commands drained so far (closes already carried out on `r`).
    cmds: Vec<Command>,
}

fn client(port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::from(([203, 0, 113, 5], port)),
        server: "192.0.2.10:3478".parse().unwrap(),
        transport: Transport::Udp,
    }
}

struct Creds {
    username: String,
    key: Key,
    realm: String,
    nonce: String,
}

fn rest_creds(valid_for: u64, user: &str) -> (String, [u8; 16], [u8; 32]) {
    let (u, p) = rest::credentials("s3cret", user, UNIX0 + valid_for, ':');
    let k = long_term_key_md5(&u, "example.org", &p).unwrap();
    let k2 = long_term_key_sha256(&u, "example.org", &p).unwrap();
    (u, k, k2)
}

impl T {
    fn new() -> T {
        Self::with(
            vec![
                "198.51.100.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            |_| {},
        )
    }

    fn with(allow: Vec<ipnet::IpNet>, tweak: impl FnOnce(&mut CoreConfig)) -> T {
        let t0 = Instant::now();
        let sh = Arc::new(shared(t0, allow, tweak));
        T {
            s: Server::new(sh, Arc::new(Stats::default()), [42; 32]),
            r: FakeRelays::default(),
            t0,
            now: t0,
            next_tid: 1,
            cmds: Vec::new(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now, &mut self.r);
        self.pump();
    }

    /// Drains the core's commands into `cmds`, closing relay sockets as the shell would.
    fn pump(&mut self) {
        let mut new = self.r.drain(&mut self.s);
        self.cmds.append(&mut new);
    }

    /// The commands drained since the last call.
    fn take_commands(&mut self) -> Vec<Command> {
        self.pump();
        std::mem::take(&mut self.cmds)
    }

    fn tid(&mut self) -> TransactionId {
        self.next_tid = self.next_tid.wrapping_add(1);
        TransactionId([self.next_tid; 12])
    }

    /// Sends a packet; returns the outcome and the reply bytes.
    fn send(&mut self, pkt: &[u8], tuple: FiveTuple) -> (Outcome, Vec<u8>) {
        let mut out = [0u8; 1500];
        let o = self
            .s
            .handle_client(pkt, tuple, self.now, &mut out, &mut self.r);
        self.pump();
        let bytes = match o {
            Outcome::Reply { len } => out[..len].to_vec(),
            _ => Vec::new(),
        };
        (o, bytes)
    }

    fn request(
        &mut self,
        method: Method,
        tuple: FiveTuple,
        creds: Option<&Creds>,
        build: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let tid = self.tid();
        let pkt = build_request(method, tid, creds, build);
        self.send(&pkt, tuple).1
    }

    /// The 401 dance: returns credentials with a fresh nonce.
    fn login(&mut self, username: &str, key: Key, tuple: FiveTuple) -> Creds {
        let resp = self.request(Method::ALLOCATE, tuple, None, |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(error_code(&m), Some(401));
        let text = |t| match m.get_decoded(t).unwrap().unwrap() {
            Attribute::Realm(s) | Attribute::Nonce(s) => s.to_string(),
            other => panic!("{other:?}"),
        };
        Creds {
            username: username.into(),
            key,
            realm: text(attr_type::REALM),
            nonce: text(attr_type::NONCE),
        }
    }

    fn allocate(&mut self, tuple: FiveTuple, creds: &Creds) -> SocketAddr {
        let resp = self.request(Method::ALLOCATE, tuple, Some(creds), |b| {
            b.add(&Attribute::RequestedTransport(17)).unwrap();
        });
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.message_type().class,
            Class::Success,
            "{:?}",
            error_code(&m)
        );
        match m
            .get_decoded(attr_type::XOR_RELAYED_ADDRESS)
            .unwrap()
            .unwrap()
        {
            Attribute::XorRelayedAddress(a) => a,
            _ => unreachable!(),
        }
    }
}

fn build_request(
    method: Method,
    tid: TransactionId,
    creds: Option<&Creds>,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
    build(&mut b);
    if let Some(c) = creds {
        b.add(&Attribute::Username(&c.username)).unwrap();
        b.add(&Attribute::Realm(&c.realm)).unwrap();
        b.add(&Attribute::Nonce(&c.nonce)).unwrap();
        match c.key {
            Key::Md5(k) => b.add_message_integrity(&k).unwrap(),
            Key::Sha256(k) => {
                b.add_raw(attr_type::PASSWORD_ALGORITHMS, &[0, 2, 0, 0, 0, 1, 0, 0])
                    .unwrap();
                b.add_raw(attr_type::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
                    .unwrap();
                b.add_message_integrity_sha256(&k).unwrap()
            }
        }
    }
    let n = b.finish();
    buf[..n].to_vec()
}

fn error_code(m: &Message<'_>) -> Option<u16> {
    match m.get_decoded(attr_type::ERROR_CODE)? {
        Ok(Attribute::ErrorCode(e)) => Some(e.code),
        _ => None,
    }
}

fn code_of(resp: &[u8]) -> Option<u16> {
    error_code(&Message::parse(resp).unwrap())
}

fn lifetime_of(resp: &[u8]) -> u32 {
    match Message::parse(resp)
        .unwrap()
        .get_decoded(attr_type::LIFETIME)
        .unwrap()
        .unwrap()
    {
        Attribute::Lifetime(l) => l,
        _ => unreachable!(),
    }
}

fn logged_in(t: &mut T, port: u16) -> (FiveTuple, Creds, SocketAddr) {
    let tuple = client(port);
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let relay = t.allocate(tuple, &c);
    (tuple, c, relay)
}

fn peer(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// Feeds a datagram from `from` to the relay socket at port `relay_port`; returns what
/// goes to the client.
fn peer_data(t: &mut T, relay_port: u16, from: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
    buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
    let relay = SocketAddr::new([192, 0, 2, 10].into(), relay_port);
    match t.s.handle_peer(relay, from, &mut buf, payload.len(), t.now) {
        PeerOutcome::ToClient { start, len, .. } => Some(buf[start..start + len].to_vec()),
        PeerOutcome::Dropped(_) => None,
    }
}

mod allocate;
mod auth;
mod binding;
mod cluster;
mod commands;
mod family;
mod limits;
mod regressions;
mod relay;
mod rfc5780;
mod tcp;
mod unauth;

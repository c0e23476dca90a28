//! Tests of the sans-IO session against a scripted server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ternd_proto::stun::{
    Attribute, Class, ErrorCode, Message, MessageBuilder, MessageType, Method, attr_type,
};

use crate::blocking::{self, Transport};
use crate::{Credentials, Due, Error, Response, Session};

const USER: &str = "alice";
const PASS: &str = "secret";
const REALM: &str = "example.org";

fn key() -> [u8; 16] {
    ternd_proto::auth::long_term_key_md5(USER, REALM, PASS).unwrap()
}

fn session() -> Session {
    Session::new(Credentials::new(USER, PASS), *b"unittest")
}

fn peer() -> SocketAddr {
    "198.51.100.2:5000".parse().unwrap()
}

/// A response to `request` of `class` with `attrs`, and MESSAGE-INTEGRITY under `key`.
fn answer(
    request: &[u8],
    class: Class,
    attrs: &[Attribute<'_>],
    key: Option<&[u8; 16]>,
) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut out = vec![0u8; 512];
    let typ = MessageType::new(req.message_type().method, class);
    let mut b = MessageBuilder::new(&mut out, typ, req.transaction_id()).unwrap();
    for a in attrs {
        b.add(a).unwrap();
    }
    if let Some(k) = key {
        b.add_message_integrity(k).unwrap();
    }
    let n = b.finish();
    out.truncate(n);
    out
}

fn challenge(request: &[u8], code: u16, nonce: &str) -> Vec<u8> {
    answer(
        request,
        Class::Error,
        &[
            Attribute::ErrorCode(ErrorCode::new(code, "challenge")),
            Attribute::Realm(REALM),
            Attribute::Nonce(nonce),
        ],
        None,
    )
}

/// The request's USERNAME, NONCE and whether its MESSAGE-INTEGRITY verifies under the
/// right key.
fn credentials_of(request: &[u8]) -> Option<(String, String, bool)> {
    let m = Message::parse(request).unwrap();
    let user = match m.get_decoded(attr_type::USERNAME)? {
        Ok(Attribute::Username(u)) => u.to_string(),
        _ => return None,
    };
    let nonce = match m.get_decoded(attr_type::NONCE)? {
        Ok(Attribute::Nonce(n)) => n.to_string(),
        _ => return None,
    };
    Some((user, nonce, m.verify_integrity(&key()).is_ok()))
}

/// Allocates through a 401: returns the session and the time of the success.
fn allocated() -> (Session, Instant) {
    let mut s = session();
    let now = Instant::now();
    let mut buf = [0u8; 512];
    let alloc = [Attribute::RequestedTransport(17)];
    let r = s.request(Method::ALLOCATE, &alloc, &mut buf).unwrap();
    assert!(
        credentials_of(&buf[..r.len]).is_none(),
        "first request is anonymous"
    );
    let resp = challenge(&buf[..r.len], 401, "n1");
    assert!(matches!(s.handle_response(&resp, now), Ok(Response::Retry)));
    assert_eq!(s.realm(), Some(REALM));
    assert_eq!(s.key(), Some(key()));
    let r = s.request(Method::ALLOCATE, &alloc, &mut buf).unwrap();
    assert_eq!(
        credentials_of(&buf[..r.len]),
        Some((USER.into(), "n1".into(), true))
    );
    let relayed: SocketAddr = "192.0.2.1:50000".parse().unwrap();
    let mapped: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let resp = answer(
        &buf[..r.len],
        Class::Success,
        &[
            Attribute::XorRelayedAddress(relayed),
            Attribute::XorMappedAddress(mapped),
            Attribute::Lifetime(600),
        ],
        Some(&key()),
    );
    assert!(matches!(
        s.handle_response(&resp, now),
        Ok(Response::Success(_))
    ));
    let a = s.grants();
    assert_eq!(a.relayed(), Some(relayed));
    assert_eq!(a.mapped(), Some(mapped));
    assert_eq!(a.expires(), Some(now + Duration::from_secs(600)));
    (s, now)
}

#[test]
fn a_401_then_success() {
    allocated();
}

#[test]
fn a_stale_nonce_is_retried_with_the_new_nonce_every_time() {
    let (mut s, now) = allocated();
    let mut buf = [0u8; 512];
    for round in 0..3 {
        let refresh = [Attribute::Lifetime(600)];
        let r = s.request(Method::REFRESH, &refresh, &mut buf).unwrap();
        let nonce = format!("stale{round}");
        let resp = challenge(&buf[..r.len], 438, &nonce);
        assert!(matches!(s.handle_response(&resp, now), Ok(Response::Retry)));
        let r = s.request(Method::REFRESH, &refresh, &mut buf).unwrap();
        assert_eq!(
            credentials_of(&buf[..r.len]),
            Some((USER.into(), nonce, true)),
            "round {round}"
        );
        let ok = answer(
            &buf[..r.len],
            Class::Success,
            &[Attribute::Lifetime(300)],
            Some(&key()),
        );
        assert!(matches!(
            s.handle_response(&ok, now),
            Ok(Response::Success(_))
        ));
        assert_eq!(s.grants().lifetime(), Some(Duration::from_secs(300)));
    }
}

#[test]
fn retries_are_bounded() {
    let (mut s, now) = allocated();
    let mut buf = [0u8; 512];
    let refresh = [Attribute::Lifetime(600)];
    // A 401 to an authenticated request is retried once (a new nonce), not twice.
    let r = s.request(Method::REFRESH, &refresh, &mut buf).unwrap();
    let resp = challenge(&buf[..r.len], 401, "n2");
    assert!(matches!(s.handle_response(&resp, now), Ok(Response::Retry)));
    let r = s.request(Method::REFRESH, &refresh, &mut buf).unwrap();
    let resp = challenge(&buf[..r.len], 401, "n3");
    match s.handle_response(&resp, now) {
        Err(e @ Error::Failure { code: 401, .. }) => assert_eq!(e.code(), Some(401)),
        other => panic!("{other:?}"),
    }
    // 438 forever: two retries, then the error.
    for i in 0..3 {
        let r = s.request(Method::REFRESH, &refresh, &mut buf).unwrap();
        let resp = challenge(&buf[..r.len], 438, "again");
        let got = s.handle_response(&resp, now);
        if i < 2 {
            assert!(matches!(got, Ok(Response::Retry)), "{i}: {got:?}");
        } else {
            assert!(
                matches!(got, Err(Error::Failure { code: 438, .. })),
                "{got:?}"
            );
        }
    }
}

#[test]
fn a_bad_or_missing_message_integrity_is_rejected() {
    let (mut s, now) = allocated();
    let mut buf = [0u8; 512];
    let attrs = [Attribute::XorPeerAddress(peer())];
    let wrong = ternd_proto::auth::long_term_key_md5(USER, REALM, "other").unwrap();
    for key in [Some(&wrong), None] {
        let r = s
            .request(Method::CREATE_PERMISSION, &attrs, &mut buf)
            .unwrap();
        let resp = answer(&buf[..r.len], Class::Success, &[], key);
        assert!(
            matches!(
                s.handle_response(&resp, now),
                Err(Error::Integrity {
                    method: Method::CREATE_PERMISSION
                })
            ),
            "key {key:?}"
        );
        assert!(s.grants().permissions().is_empty(), "nothing booked");
    }
    // An error response with a wrong MESSAGE-INTEGRITY is rejected as well.
    let r = s
        .request(Method::CREATE_PERMISSION, &attrs, &mut buf)
        .unwrap();
    let resp = answer(
        &buf[..r.len],
        Class::Error,
        &[Attribute::ErrorCode(ErrorCode::new(403, "Forbidden"))],
        Some(&wrong),
    );
    assert!(matches!(
        s.handle_response(&resp, now),
        Err(Error::Integrity { .. })
    ));
}

#[test]
fn answers_to_other_transactions_are_not_taken() {
    let (mut s, now) = allocated();
    let mut buf = [0u8; 512];
    let r1 = s
        .request(Method::REFRESH, &[Attribute::Lifetime(600)], &mut buf)
        .unwrap();
    let old = buf[..r1.len].to_vec();
    let r2 = s
        .request(Method::REFRESH, &[Attribute::Lifetime(600)], &mut buf)
        .unwrap();
    assert_ne!(r1.tid, r2.tid);
    let stale = answer(&old, Class::Success, &[], Some(&key()));
    assert!(!s.is_response(&stale));
    assert!(matches!(
        s.handle_response(&stale, now),
        Err(Error::UnknownTransaction)
    ));
    // The outstanding request is still answerable.
    let ok = answer(&buf[..r2.len], Class::Success, &[], Some(&key()));
    assert!(s.is_response(&ok));
    assert!(matches!(
        s.handle_response(&ok, now),
        Ok(Response::Success(_))
    ));
}

#[test]
fn channel_bindings_and_permissions_are_booked_and_come_due() {
    let (mut s, now) = allocated();
    let mut buf = [0u8; 512];
    let attrs = [
        Attribute::ChannelNumber(0x4001),
        Attribute::XorPeerAddress(peer()),
    ];
    let r = s.request(Method::CHANNEL_BIND, &attrs, &mut buf).unwrap();
    let ok = answer(&buf[..r.len], Class::Success, &[], Some(&key()));
    assert!(matches!(
        s.handle_response(&ok, now),
        Ok(Response::Success(_))
    ));
    let a = s.grants();
    assert_eq!(a.channel_for(peer()), Some(0x4001));
    assert_eq!(a.peer_of(0x4001), Some(peer()));
    assert!(a.has_permission(peer().ip(), now));
    assert!(!a.has_permission(peer().ip(), now + Duration::from_secs(301)));
    // The allocation (600 s) and the channel (600 s) are due 60 s before they expire, the
    // permission (300 s) 60 s before it does: the permission comes first.
    assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(240)));
    assert_eq!(a.due(now), None);
    assert_eq!(
        a.due(now + Duration::from_secs(240)),
        Some(Due::Permission(peer().ip()))
    );
    assert_eq!(a.due(now + Duration::from_secs(540)), Some(Due::Grants));
    // A failed bind books nothing.
    let other: SocketAddr = "198.51.100.3:6000".parse().unwrap();
    let attrs = [
        Attribute::ChannelNumber(0x4002),
        Attribute::XorPeerAddress(other),
    ];
    let r = s.request(Method::CHANNEL_BIND, &attrs, &mut buf).unwrap();
    let err = answer(
        &buf[..r.len],
        Class::Error,
        &[Attribute::ErrorCode(ErrorCode::new(400, "Bad Request"))],
        Some(&key()),
    );
    assert!(matches!(
        s.handle_response(&err, now),
        Err(Error::Failure { code: 400, .. })
    ));
    assert_eq!(s.grants().channels().len(), 1);
    // Re-binding the same channel later refreshes it; Refresh(0) forgets everything.
    let later = now + Duration::from_secs(500);
    let attrs = [
        Attribute::ChannelNumber(0x4001),
        Attribute::XorPeerAddress(peer()),
    ];
    let r = s.request(Method::CHANNEL_BIND, &attrs, &mut buf).unwrap();
    let ok = answer(&buf[..r.len], Class::Success, &[], Some(&key()));
    s.handle_response(&ok, later).unwrap();
    assert_eq!(
        s.grants().channels()[0].expires,
        later + Duration::from_secs(600)
    );
    assert_eq!(s.grants().channels().len(), 1);
    let r = s
        .request(Method::REFRESH, &[Attribute::Lifetime(0)], &mut buf)
        .unwrap();
    let ok = answer(&buf[..r.len], Class::Success, &[], Some(&key()));
    s.handle_response(&ok, later).unwrap();
    assert!(!s.grants().is_allocated());
    assert!(s.grants().channels().is_empty());
    assert_eq!(s.grants().poll_timeout(), None);
}

/// A scripted server behind the blocking adapter: answers with a 401, then with 438 once,
/// then success; the first request of every exchange is "lost" once.
struct Scripted {
    sent: Vec<Vec<u8>>,
    inbox: Vec<Vec<u8>>,
}

impl Transport for Scripted {
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        self.sent.push(packet.to_vec());
        let n = self.sent.len();
        // Every odd send is lost; the answer depends on how many arrived.
        if n % 2 == 1 {
            return Ok(());
        }
        let reply = match n / 2 {
            1 => challenge(packet, 401, "first"),
            2 => challenge(packet, 438, "second"),
            _ => answer(
                packet,
                Class::Success,
                &[Attribute::XorRelayedAddress(peer())],
                Some(&key()),
            ),
        };
        self.inbox.push(reply);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], _: Duration) -> std::io::Result<Option<usize>> {
        Ok(self.inbox.pop().map(|m| {
            buf[..m.len()].copy_from_slice(&m);
            m.len()
        }))
    }

    fn timing(&self) -> blocking::Timing {
        blocking::Timing {
            wait: Duration::from_millis(1),
            attempts: 2,
        }
    }
}

#[test]
fn blocking_transact_resends_and_follows_the_challenges() {
    let mut s = session();
    let mut t = Scripted {
        sent: Vec::new(),
        inbox: Vec::new(),
    };
    assert_eq!(blocking::allocate(&mut s, &mut t).unwrap(), peer());
    assert_eq!(t.sent.len(), 6, "three requests, each sent twice");
    assert_eq!(t.sent[0], t.sent[1], "a resend is the same request");
    let nonces: Vec<_> = t
        .sent
        .iter()
        .map(|r| credentials_of(r).map(|c| c.1))
        .collect();
    assert_eq!(nonces[1], None);
    assert_eq!(nonces[3].as_deref(), Some("first"));
    assert_eq!(nonces[5].as_deref(), Some("second"));
}

#[test]
fn data_frames_round_trip() {
    let mut buf = [0u8; 256];
    let n = crate::data::channel_data(0x4000, b"hello", true, &mut buf).unwrap();
    assert_eq!(n, 12);
    match crate::data::decode(&buf[..n]) {
        Some(crate::data::Incoming::ChannelData { number, data }) => {
            assert_eq!((number, data), (0x4000, &b"hello"[..]))
        }
        other => panic!("{other:?}"),
    }
    let mut s = session();
    let tid = s.next_transaction_id();
    let n = crate::data::send_indication(tid, peer(), b"hi", &mut buf).unwrap();
    // A Send indication is not a Data indication: decoded as plain STUN.
    assert!(matches!(
        crate::data::decode(&buf[..n]),
        Some(crate::data::Incoming::Stun(_))
    ));
}

/// An in-memory stream: reads come from `input` in chunks of `chunk` bytes, writes go to
/// `output`.
struct Pipe {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    output: Vec<u8>,
}

impl std::io::Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.input.len() - self.at);
        if n == 0 && self.at < self.input.len() {
            return Ok(0);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl std::io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn streams_are_framed_and_requests_sent_once() {
    let mut s = session();
    let mut buf = [0u8; 512];
    let tid = s.next_transaction_id();
    let n = crate::data::binding_request(tid, &mut buf).unwrap();
    let mapped: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    // A padded ChannelData frame first (skipped: not the answer), then the answer, read
    // three bytes at a time.
    let mut input = vec![0u8; 12];
    crate::data::channel_data(0x4000, b"hello", true, &mut input).unwrap();
    input.extend(answer(
        &buf[..n],
        Class::Success,
        &[Attribute::XorMappedAddress(mapped)],
        None,
    ));
    let mut pipe = Pipe {
        input,
        at: 0,
        chunk: 3,
        output: Vec::new(),
    };
    let got = blocking::binding(&mut blocking::Stream::new(&mut pipe), tid).unwrap();
    assert_eq!(got, mapped);
    assert_eq!(pipe.output, &buf[..n], "sent once, as built");
    // Nothing more to read: a timeout, reported as such.
    let tid = s.next_transaction_id();
    assert!(matches!(
        blocking::binding(&mut blocking::Stream::new(&mut pipe), tid),
        Err(Error::Timeout {
            method: Method::BINDING
        })
    ));
}

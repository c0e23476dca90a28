//! RFC 6062 TCP allocations, with the fake clock and fake relays of the parent module.

use super::*;
use crate::turn::testing::shared;

/// A core with `tcp_relay` on (at most `max` connections per allocation).
fn tcp_t(max: usize) -> T {
    let t0 = Instant::now();
    let sh = shared(
        t0,
        vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        |_| {},
    )
    .with_tcp_relay(TcpRelayConfig {
        enabled: true,
        max_connections_per_allocation: max,
    });
    T {
        s: Server::new(Arc::new(sh), Arc::new(Stats::default()), [42; 32]),
        r: FakeRelays::default(),
        t0,
        now: t0,
        next_tid: 1,
        cmds: Vec::new(),
    }
}

fn stream(port: u16, transport: Transport) -> FiveTuple {
    FiveTuple {
        transport,
        ..client(port)
    }
}

fn tcp(port: u16) -> FiveTuple {
    stream(port, Transport::Tcp)
}

const PEER: [u8; 4] = [198, 51, 100, 7];

fn allocate_tcp(t: &mut T, tuple: FiveTuple, c: &Creds) -> Vec<u8> {
    t.request(Method::ALLOCATE, tuple, Some(c), |b| {
        b.add(&Attribute::RequestedTransport(TRANSPORT_TCP))
            .unwrap();
    })
}

/// A TCP allocation on `tuple` for bob; returns his credentials and the relay listener's
/// local address.
fn tcp_allocation(t: &mut T, tuple: FiveTuple) -> (Creds, SocketAddr) {
    let (u, k, _) = rest_creds(86_400, "bob");
    let c = t.login(&u, Key::Md5(k), tuple);
    let resp = allocate_tcp(t, tuple, &c);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        m.message_type().class,
        Class::Success,
        "{:?}",
        error_code(&m)
    );
    let relay = t.s.allocation(&tuple).unwrap().relay;
    (c, relay)
}

/// Sends a request built by `build` with `creds`; returns the outcome, the reply bytes and
/// the transaction id.
fn send_req(
    t: &mut T,
    method: Method,
    tuple: FiveTuple,
    creds: Option<&Creds>,
    build: impl FnOnce(&mut MessageBuilder<'_>),
) -> (Outcome, Vec<u8>, TransactionId) {
    let tid = t.tid();
    let pkt = build_request(method, tid, creds, build);
    let (o, bytes) = t.send(&pkt, tuple);
    (o, bytes, tid)
}

fn connect(
    t: &mut T,
    tuple: FiveTuple,
    c: &Creds,
    peer: SocketAddr,
) -> (Outcome, Vec<u8>, TransactionId) {
    send_req(t, Method::CONNECT, tuple, Some(c), |b| {
        b.add(&Attribute::XorPeerAddress(peer)).unwrap();
    })
}

/// A Connect that the I/O layer starts; returns its connection id and transaction id.
fn connect_started(
    t: &mut T,
    tuple: FiveTuple,
    c: &Creds,
    peer: SocketAddr,
) -> (u32, TransactionId) {
    let n = t.r.connects.len();
    let (o, _, tid) = connect(t, tuple, c, peer);
    assert_eq!(o, Outcome::Consumed, "the answer waits for the connection");
    assert_eq!(t.r.connects.len(), n + 1);
    let (relay, p, id) = *t.r.connects.last().unwrap();
    assert_eq!(relay, t.s.allocation(&tuple).unwrap().relay);
    assert_eq!(p, peer);
    assert_ne!(id, 0);
    (id, tid)
}

/// A peer connection up and waiting for its ConnectionBind; the Connect response drained.
fn connected(t: &mut T, tuple: FiveTuple, c: &Creds, peer: SocketAddr) -> u32 {
    let (id, _) = connect_started(t, tuple, c, peer);
    assert_eq!(
        event(t, TcpEvent::Connected { id }),
        TcpVerdict::Keep { id }
    );
    let out = drain(t);
    assert_eq!(out.len(), 1);
    id
}

fn event(t: &mut T, e: TcpEvent) -> TcpVerdict {
    let v = t.s.handle_tcp_event(e, t.now, &mut t.r);
    t.pump();
    v
}

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Msg(FiveTuple, Vec<u8>),
    Splice(FiveTuple, u32),
    Handoff(FiveTuple, u16),
}

fn drain(t: &mut T) -> Vec<Got> {
    let mut out = [0u8; 1500];
    let mut v = Vec::new();
    while let Some(o) = t.s.poll_output(&mut out) {
        v.push(match o {
            Output::Transmit { tuple, len } => Got::Msg(tuple, out[..len].to_vec()),
            Output::Splice {
                tuple,
                connection_id,
            } => Got::Splice(tuple, connection_id),
            Output::Handoff { tuple, worker } => Got::Handoff(tuple, worker),
        });
    }
    v
}

fn msg_to(got: &Got) -> (FiveTuple, &[u8]) {
    match got {
        Got::Msg(t, b) => (*t, b),
        other => panic!("not a message: {other:?}"),
    }
}

fn connection_id_of(m: &Message<'_>) -> u32 {
    match m.get_decoded(attr_type::CONNECTION_ID) {
        Some(Ok(Attribute::ConnectionId(id))) => id,
        other => panic!("no CONNECTION-ID: {other:?}"),
    }
}

fn bind(t: &mut T, data: FiveTuple, c: Option<&Creds>, id: Option<u32>) -> (Outcome, Vec<u8>) {
    let (o, bytes, _) = send_req(t, Method::CONNECTION_BIND, data, c, |b| {
        if let Some(id) = id {
            b.add(&Attribute::ConnectionId(id)).unwrap();
        }
    });
    (o, bytes)
}

fn key_bytes(c: &Creds) -> Vec<u8> {
    c.key.as_bytes().to_vec()
}

mod bind;
mod connect;

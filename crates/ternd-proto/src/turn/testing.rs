//! Test and fuzzing support: a fake [`Relays`] and a ready [`Shared`]. Not part of the API.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::{Command, CoreConfig, RelayAddress, Relays, Server, Shared};
use crate::auth::nonce::NonceKey;
use crate::auth::store::{CredentialStore, StaticUser, UserCredential};
use crate::policy::PeerPolicy;

/// Records relay sockets instead of binding them. Ports in `in_use` fail with `AddrInUse`.
#[derive(Debug, Default)]
pub struct FakeRelays {
    /// Open relay addresses.
    pub open: HashSet<SocketAddr>,
    /// Reserved addresses.
    pub reserved: HashSet<SocketAddr>,
    /// Addresses that fail to bind.
    pub in_use: HashSet<SocketAddr>,
    /// Addresses opened with DONT-FRAGMENT.
    pub dont_fragment: HashSet<SocketAddr>,
    /// Every close, in order.
    pub closed: Vec<SocketAddr>,
    /// TCP listening sockets (RFC 6062 relayed addresses).
    pub listening: HashSet<SocketAddr>,
    /// Every `connect_tcp` (relay, peer, connection id), in order.
    pub connects: Vec<(SocketAddr, SocketAddr, u32)>,
    /// Make `connect_tcp` fail at once.
    pub refuse_connect: bool,
    /// Every [`Command::CloseTcp`] applied, in order.
    pub closed_tcp: Vec<u32>,
}

impl FakeRelays {
    /// Closes the relay socket at `addr` (what the shell does for [`Command::CloseRelay`]).
    pub fn close(&mut self, addr: SocketAddr) {
        self.open.remove(&addr);
        self.listening.remove(&addr);
        self.closed.push(addr);
    }

    /// Carries out what a [`Command`] asks of relay sockets and connections (closing them).
    pub fn apply(&mut self, cmd: &Command) {
        match *cmd {
            Command::CloseRelay { relay } => self.close(relay.0),
            Command::CloseTcp { connection_id } => self.closed_tcp.push(connection_id),
            _ => {}
        }
    }

    /// Drains `server`'s commands, carrying them out; returns them.
    pub fn drain(&mut self, server: &mut Server) -> Vec<Command> {
        let mut all = Vec::new();
        while let Some(cmd) = server.poll_command() {
            self.apply(&cmd);
            all.push(cmd);
        }
        all
    }
}

impl Relays for FakeRelays {
    fn open(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        if self.in_use.contains(&addr) || self.open.contains(&addr) || self.reserved.contains(&addr)
        {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        if dont_fragment {
            self.dont_fragment.insert(addr);
        }
        self.open.insert(addr);
        Ok(())
    }

    fn claim(&mut self, addr: SocketAddr, dont_fragment: bool) -> io::Result<()> {
        if !self.reserved.remove(&addr) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if dont_fragment {
            self.dont_fragment.insert(addr);
        }
        self.open.insert(addr);
        Ok(())
    }

    fn reserve(&mut self, addr: SocketAddr) -> io::Result<()> {
        if self.in_use.contains(&addr) || self.open.contains(&addr) || !self.reserved.insert(addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        Ok(())
    }

    fn release(&mut self, addr: SocketAddr) {
        self.reserved.remove(&addr);
    }

    fn listen_tcp(&mut self, addr: SocketAddr) -> io::Result<()> {
        if self.in_use.contains(&addr) || !self.listening.insert(addr) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        Ok(())
    }

    fn connect_tcp(&mut self, relay: SocketAddr, peer: SocketAddr, id: u32) -> io::Result<()> {
        if self.refuse_connect {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        self.connects.push((relay, peer, id));
        Ok(())
    }
}

/// Shared state for tests: realm "example.org", REST secret "s3cret", static user
/// "alice"/"wonderland", relay 192.0.2.10 (advertised as 198.51.100.10), ports 50000–50099,
/// nonce key all 7s, allow list `allow`, and the UNIX clock at 1,700,000,000 at `anchor`.
pub fn shared(
    anchor: Instant,
    allow: Vec<ipnet::IpNet>,
    tweak: impl FnOnce(&mut CoreConfig),
) -> Shared {
    let mut core = CoreConfig::minimal((anchor, 1_700_000_000));
    core.relay_v4 = Some(RelayAddress {
        bind: [192, 0, 2, 10].into(),
        advertise: [198, 51, 100, 10].into(),
    });
    core.ports = crate::turn::PortRange {
        lo: 50000,
        hi: 50099,
    };
    tweak(&mut core);
    let users = [StaticUser {
        name: "alice".into(),
        credential: UserCredential::Password("wonderland".into()),
    }];
    let store = CredentialStore::new("example.org", &["s3cret".into()], &users, ':')
        .unwrap_or_else(|e| panic!("test store: {e}"));
    let service = vec![SocketAddr::from(([192, 0, 2, 10], 3478))];
    let policy = PeerPolicy::new(allow, Vec::new(), service);
    Shared::new(core, store, NonceKey::from_bytes([7; 32]), policy)
}

/// A core in steady state for benchmarks and the zero-allocation test: `n` allocations, each
/// with a permission and a channel, built with real STUN messages through the public API.
pub mod steady {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Instant;

    use super::{FakeRelays, shared};
    use crate::auth::{long_term_key_md5, rest};
    use crate::stun::channel::ChannelData;
    use crate::stun::{
        Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
    };
    use crate::turn::{FiveTuple, Outcome, PEER_HEADROOM, PEER_TAILROOM, Server, Stats, Transport};

    /// UNIX time at the shared clock anchor.
    pub const UNIX0: u64 = 1_700_000_000;
    /// The channel every allocation binds.
    pub const CHANNEL: u16 = 0x4000;
    /// Payload bytes per packet.
    pub const PAYLOAD: usize = 100;
    /// The relay's bound address (the core keys relay sockets by it).
    pub const RELAY_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    /// One allocation of the steady state.
    pub struct Alloc {
        /// The client's 5-tuple (UDP).
        pub tuple: FiveTuple,
        /// The relay socket's bound (local) address.
        pub relay: SocketAddr,
        /// The peer bound to [`CHANNEL`] (and permitted).
        pub peer: SocketAddr,
        /// The same IP, another port: permitted, no channel (Data indications).
        pub other_peer: SocketAddr,
        /// A Send indication to `peer` with a [`PAYLOAD`]-byte DATA.
        pub send: Vec<u8>,
    }

    /// A core with `n` allocations, each with a permission and a channel.
    pub struct Steady {
        /// The core.
        pub server: Server,
        /// Its relay sockets.
        pub relays: FakeRelays,
        /// The clock the allocations were made at.
        pub now: Instant,
        /// The allocations, in the order made.
        pub allocs: Vec<Alloc>,
        /// The last transaction id used.
        tid: u32,
    }

    /// Long-term credentials after the 401 exchange.
    pub struct Creds {
        username: String,
        key: [u8; 16],
        realm: String,
        nonce: String,
    }

    fn client_tuple(i: usize) -> FiveTuple {
        let host = u8::try_from(1 + i % 250).expect("host");
        let port = u16::try_from(10_000 + i / 250).expect("port");
        FiveTuple {
            client: SocketAddr::from(([203, 0, 113, host], port)),
            server: SocketAddr::from((RELAY_IP, 3478)),
            transport: Transport::Udp,
        }
    }

    fn peer_ip(i: usize) -> IpAddr {
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 1));
        IpAddr::V4(Ipv4Addr::from(base + u32::try_from(i).expect("peer index")))
    }

    fn request(
        method: Method,
        tid: TransactionId,
        creds: Option<&Creds>,
        build: impl FnOnce(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let mut b = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), tid)
            .expect("header");
        build(&mut b);
        if let Some(c) = creds {
            b.add(&Attribute::Username(&c.username)).expect("username");
            b.add(&Attribute::Realm(&c.realm)).expect("realm");
            b.add(&Attribute::Nonce(&c.nonce)).expect("nonce");
            b.add_message_integrity(&c.key).expect("integrity");
        }
        let n = b.finish();
        buf[..n].to_vec()
    }

    fn send_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId([3; 12]),
        )
        .expect("header");
        b.add(&Attribute::XorPeerAddress(peer)).expect("peer");
        b.add(&Attribute::Data(payload)).expect("data");
        let n = b.finish();
        buf[..n].to_vec()
    }

    fn text(m: &Message<'_>, t: u16) -> String {
        match m.get_decoded(t) {
            Some(Ok(Attribute::Realm(s) | Attribute::Nonce(s))) => s.to_string(),
            other => panic!("attribute {t:#x}: {other:?}"),
        }
    }

    impl Steady {
        /// `n` allocations made at `now`, each with a permission and a channel.
        pub fn new(n: usize, now: Instant) -> Self {
            let allow = vec!["198.18.0.0/15".parse().expect("cidr")];
            let shared = shared(now, allow, |c| {
                c.ports.lo = 10_000;
                c.ports.hi = 60_000;
                c.limits.user_quota = 0;
                c.limits.max_allocations_per_ip = 0;
                c.unauth_rate_limit = 0;
            });
            let mut s = Steady {
                server: Server::new(Arc::new(shared), Arc::new(Stats::default()), [42; 32]),
                relays: FakeRelays::default(),
                now,
                allocs: Vec::with_capacity(n),
                tid: 0,
            };
            let (username, password) = rest::credentials("s3cret", "bench", UNIX0 + 86_400, ':');
            let key = long_term_key_md5(&username, "example.org", &password).expect("key");
            let payload = [0xA5u8; PAYLOAD];
            for i in 0..n {
                let tuple = client_tuple(i);
                let transport = |b: &mut MessageBuilder<'_>| {
                    b.add(&Attribute::RequestedTransport(17))
                        .expect("transport")
                };

                // The 401 exchange, then the authenticated Allocate.
                let resp = s.exchange(tuple, Method::ALLOCATE, None, transport);
                let m = Message::parse(&resp).expect("401");
                let creds = Creds {
                    username: username.clone(),
                    key,
                    realm: text(&m, attr_type::REALM),
                    nonce: text(&m, attr_type::NONCE),
                };
                let resp = s.exchange(tuple, Method::ALLOCATE, Some(&creds), transport);
                let m = Message::parse(&resp).expect("allocate");
                assert_eq!(m.message_type().class, Class::Success, "allocate #{i}");
                let relay = match m.get_decoded(attr_type::XOR_RELAYED_ADDRESS) {
                    Some(Ok(Attribute::XorRelayedAddress(a))) => {
                        SocketAddr::new(RELAY_IP.into(), a.port())
                    }
                    other => panic!("relayed address #{i}: {other:?}"),
                };

                let peer = SocketAddr::new(peer_ip(i), 7000);
                let resp = s.exchange(tuple, Method::CREATE_PERMISSION, Some(&creds), |b| {
                    b.add(&Attribute::XorPeerAddress(peer)).expect("peer")
                });
                let m = Message::parse(&resp).expect("permission");
                assert_eq!(m.message_type().class, Class::Success, "permission #{i}");
                let resp = s.exchange(tuple, Method::CHANNEL_BIND, Some(&creds), |b| {
                    b.add(&Attribute::ChannelNumber(CHANNEL)).expect("channel");
                    b.add(&Attribute::XorPeerAddress(peer)).expect("peer")
                });
                let m = Message::parse(&resp).expect("channel bind");
                assert_eq!(m.message_type().class, Class::Success, "channel bind #{i}");

                s.allocs.push(Alloc {
                    tuple,
                    relay,
                    peer,
                    other_peer: SocketAddr::new(peer.ip(), 7001),
                    send: send_indication(peer, &payload),
                });
            }
            assert_eq!(s.server.allocation_count(), n);
            // One ChannelBound each; drained so that nothing waits in the queue while the
            // steady state is measured.
            let bound = s.relays.drain(&mut s.server);
            assert_eq!(bound.len(), n, "{bound:?}");
            s
        }

        /// Sends a request on `tuple`; returns the answer.
        pub fn exchange(
            &mut self,
            tuple: FiveTuple,
            method: Method,
            creds: Option<&Creds>,
            build: impl FnOnce(&mut MessageBuilder<'_>),
        ) -> Vec<u8> {
            self.tid += 1;
            let mut tid = [0u8; 12];
            tid[..4].copy_from_slice(&self.tid.to_be_bytes());
            let pkt = request(method, TransactionId(tid), creds, build);
            let mut out = [0u8; 1500];
            match self
                .server
                .handle_client(&pkt, tuple, self.now, &mut out, &mut self.relays)
            {
                Outcome::Reply { len } => out[..len].to_vec(),
                o => panic!("{method:?} from {}: {o:?}", tuple.client),
            }
        }
    }

    /// A ChannelData frame on [`CHANNEL`] with a [`PAYLOAD`]-byte payload.
    pub fn channel_frame() -> Vec<u8> {
        let mut frame = vec![0u8; 4 + PAYLOAD];
        let n = ChannelData::encode(CHANNEL, &[0xA5; PAYLOAD], false, &mut frame).expect("frame");
        assert_eq!(n, frame.len());
        frame
    }

    /// A relay receive buffer with the payload at `PEER_HEADROOM`.
    pub fn peer_buffer() -> Vec<u8> {
        let mut buf = vec![0u8; PEER_HEADROOM + PAYLOAD + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + PAYLOAD].fill(0x5A);
        buf
    }

    /// Start and length of a Data indication to an IPv4 peer (header, XOR-PEER-ADDRESS, DATA
    /// header in front of the payload; the payload already a multiple of four).
    pub const DATA_INDICATION: (usize, usize) = (PEER_HEADROOM - 36, 36 + PAYLOAD);
}

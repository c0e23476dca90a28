//! Test and fuzzing support: a fake [`Relays`] and a ready [`Shared`]. Not part of the API.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::{CoreConfig, RelayAddress, Relays, Shared};
use crate::auth::nonce::NonceKey;
use crate::auth::store::CredentialStore;
use crate::config::{AuthConfig, StaticUser, UserCredential};
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
    /// Every `close_tcp`, in order.
    pub closed_tcp: Vec<u32>,
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

    fn close(&mut self, addr: SocketAddr) {
        self.open.remove(&addr);
        self.listening.remove(&addr);
        self.closed.push(addr);
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

    fn close_tcp(&mut self, id: u32) {
        self.closed_tcp.push(id);
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
    core.ports = crate::config::PortRange {
        lo: 50000,
        hi: 50099,
    };
    tweak(&mut core);
    let auth = AuthConfig {
        secrets: vec!["s3cret".into()],
        users: vec![StaticUser {
            name: "alice".into(),
            credential: UserCredential::Password("wonderland".into()),
        }],
        ..AuthConfig::default()
    };
    let store =
        CredentialStore::new("example.org", &auth).unwrap_or_else(|e| panic!("test store: {e}"));
    let service = vec![SocketAddr::from(([192, 0, 2, 10], 3478))];
    let policy = PeerPolicy::new(allow, Vec::new(), service);
    Shared::new(core, store, NonceKey::from_bytes([7; 32]), policy)
}

//! The core's control effects: typed [`Command`]s the shell drains with
//! [`Server::poll_command`](super::Server::poll_command), and the address newtypes they
//! carry ([`ClientAddr`], [`PeerAddr`], [`RelayAddr`]), so that a record cannot mix up
//! whose address is whose.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::types::{EndReason, FiveTuple, RelayTransport, Traffic, Transport};

macro_rules! address_role {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub SocketAddr);

        impl From<SocketAddr> for $name {
            fn from(a: SocketAddr) -> Self {
                Self(a)
            }
        }

        impl From<$name> for SocketAddr {
            fn from(a: $name) -> Self {
                a.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

address_role!(
    /// A client's transport address as the server sees it (its server-reflexive address).
    ClientAddr
);
address_role!(
    /// A peer's transport address, as the client names it (XOR-PEER-ADDRESS). Relay sockets
    /// send to its [`CoreConfig::local_form`](super::CoreConfig::local_form).
    PeerAddr
);
address_role!(
    /// A relayed transport address: the local address a relay socket is bound to, or, where
    /// a field says so, the form advertised to the client (they differ behind a 1:1 NAT).
    RelayAddr
);

/// The accounting record of an allocation that ended: who, where, how much, how long, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRecord {
    /// The session id (the admin API's).
    pub id: u64,
    /// The quota key (the USER part of a REST username, or the static user).
    pub user: String,
    /// The full USERNAME.
    pub username: String,
    /// The client's transport address.
    pub client: ClientAddr,
    /// The client's transport.
    pub transport: Transport,
    /// What the allocation relayed to peers: UDP, or TCP (RFC 6062).
    pub relay_transport: RelayTransport,
    /// The relayed transport address, as advertised.
    pub relay: RelayAddr,
    /// A dual allocation's second relayed transport address, as advertised.
    pub additional_relay: Option<RelayAddr>,
    /// When it was created, UNIX seconds.
    pub started_unix: u64,
    /// How long it lived.
    pub duration: Duration,
    /// Packets and bytes relayed each way (`*_out`: client → peer; `*_in`: peer → client).
    pub traffic: Traffic,
    /// Why it ended.
    pub reason: EndReason,
}

/// An Allocate waiting for the cluster's verdict ([`Command::Admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The allocation id it will have (the admin API's session id).
    pub id: u64,
    /// The quota key.
    pub user: String,
    /// The client's 5-tuple.
    pub tuple: FiveTuple,
    /// The Allocate's transaction id.
    pub transaction: [u8; 12],
    /// When the Allocate arrived (for the Allocate latency histogram).
    pub asked: std::time::Instant,
}

/// A control effect of the core, for the shell to carry out or to publish. Drain them with
/// [`Server::poll_command`](super::Server::poll_command) after every input.
///
/// Every [`Command::ChannelBound`] is followed, sooner or later, by exactly one
/// [`Command::ChannelUnbound`] for the same 5-tuple and channel, before the
/// [`Command::AllocationEnded`] of its allocation; so a subscriber that installs channels
/// (a kernel fast path, a cluster registry) removes each one it installed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// A channel was bound (a new binding, not a refresh): ChannelData on `channel` from the
    /// client on `tuple` goes to `peer` from the relay socket `relay`, and datagrams from
    /// `peer` to `relay` go to the client as ChannelData on `channel`.
    ChannelBound {
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// The relay socket (local address) that serves the peer's family.
        relay: RelayAddr,
        /// The peer.
        peer: PeerAddr,
        /// The channel number.
        channel: u16,
    },
    /// A channel stopped relaying: it expired, its peer is no longer allowed (policy
    /// reload, or the relayed address it was exempted for went away), its family was
    /// removed from a dual allocation, or its allocation ended.
    ChannelUnbound {
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// The relay socket (local address) it used.
        relay: RelayAddr,
        /// The peer.
        peer: PeerAddr,
        /// The channel number.
        channel: u16,
    },
    /// Close the relay socket bound at `relay` (for a TCP allocation: its listener). The
    /// core no longer routes anything to or from it.
    CloseRelay {
        /// The relay socket's local address.
        relay: RelayAddr,
    },
    /// Close the RFC 6062 peer connection `connection_id` (or abandon connecting it) and
    /// the client data connection spliced to it, if any. Never sent for a connection the
    /// I/O layer reported closed or failed ([`TcpEvent`](super::TcpEvent)).
    CloseTcp {
        /// Its CONNECTION-ID.
        connection_id: u32,
    },
    /// With [`CoreConfig::cluster_admission`](super::CoreConfig::cluster_admission): an
    /// Allocate passed every local check and waits for the cluster to count it against
    /// its user's quota on all nodes. Answer with [`Server::admit`](super::Server::admit);
    /// an answer that never comes costs the client a retransmission (the wait is forgotten
    /// after [`ADMISSION_TIMEOUT`](super::ADMISSION_TIMEOUT)).
    Admit {
        /// What waits.
        admission: Admission,
    },
    /// An Allocate the cluster admitted (id `id`) was refused or abandoned here after all:
    /// give its slot of `user`'s cluster-wide quota back.
    Withdrawn {
        /// The allocation id it was admitted under.
        id: u64,
        /// The quota key.
        user: String,
    },
    /// An allocation ended; `record` is its accounting. Its channels were unbound, its
    /// relay sockets and RFC 6062 connections closed, by the commands before this one.
    AllocationEnded {
        /// Its accounting record.
        record: AccountingRecord,
    },
}

//! The core's small vocabulary: transports, the 5-tuple, and what an input answers
//! ([`Outcome`], [`PeerOutcome`], [`DropReason`]); why an allocation ended ([`EndReason`])
//! and what it relayed ([`Traffic`]).

use std::net::SocketAddr;

/// Bytes a relay socket must leave free in front of a received payload: room for the
/// largest header the core writes there (a Data indication to an IPv6 peer: 20 + 24 + 4).
pub const PEER_HEADROOM: usize = 48;
/// Bytes a relay receive buffer must leave free after the payload (DATA padding).
pub const PEER_TAILROOM: usize = 3;
/// The REQUESTED-TRANSPORT value for UDP.
pub const TRANSPORT_UDP: u8 = 17;

/// The transport a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// What a relayed transport address carries towards peers: UDP (a UDP allocation) or TCP
/// (an RFC 6062 TCP allocation). The same IP and port can be a UDP relay of one allocation
/// and a foreign TCP service at once, so the same-server exemption names both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayTransport {
    /// UDP relaying: Send indications, ChannelData, Data indications.
    Udp,
    /// TCP relaying (RFC 6062): Connect and incoming peer connections.
    Tcp,
}

/// A live relayed address's exemption from the peer policy ([`Shared::check_peer_policy`](super::Shared::check_peer_policy)):
/// a number unique to one allocation's use of that address, so a channel exempted for it
/// stops when that allocation ends, even if another one binds the same address later.
pub type Lease = u64;

/// A client's 5-tuple: its address, the server address it reached, and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The client's address as seen by the server (its server-reflexive address).
    pub client: SocketAddr,
    /// The local address the packet arrived on.
    pub server: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

/// What to do after [`Server::handle_client`](super::Server::handle_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Send `out[..len]` back to the client on the same 5-tuple.
    Reply {
        /// Length of the answer in the output buffer.
        len: usize,
    },
    /// Send the answer (`len` bytes of the output buffer) from the listener bound at `from`
    /// to `to` instead of back the way the request came (RFC 5780 CHANGE-REQUEST and
    /// RESPONSE-PORT; UDP only).
    ReplyVia {
        /// Length of the answer in the output buffer.
        len: usize,
        /// The local (listener) address to send from.
        from: SocketAddr,
        /// The destination.
        to: SocketAddr,
    },
    /// Send `packet[start..start + len]` from the relay socket bound at `relay` to `peer`.
    Forward {
        /// The relay socket's local address.
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
        /// Start of the payload in the packet.
        start: usize,
        /// Length of the payload.
        len: usize,
    },
    /// Nothing to send: the packet was consumed (an indication, say).
    Consumed,
    /// Nothing to send: the packet was dropped, for this reason (already counted).
    Dropped(DropReason),
}

/// What to do after [`Server::handle_peer`](super::Server::handle_peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum PeerOutcome {
    /// Send `buf[start..start + len]` to the client on `tuple`.
    ToClient {
        /// The client's 5-tuple.
        tuple: FiveTuple,
        /// Start of the message (header written in front of the payload).
        start: usize,
        /// Length of the message.
        len: usize,
    },
    /// Dropped, for this reason (already counted).
    Dropped(DropReason),
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed STUN message or ChannelData frame.
    Malformed,
    /// FINGERPRINT present but wrong.
    BadFingerprint,
    /// A STUN response sent to the server.
    UnexpectedResponse,
    /// An RFC 3489 message while backward compatibility is off.
    Rfc3489Disabled,
    /// ChannelData or a Send indication on a 5-tuple without an allocation.
    NoAllocation,
    /// ChannelData on a channel that is not bound.
    NoChannel,
    /// Data to or from a peer without a permission.
    NoPermission,
    /// A peer the policy denies.
    PolicyDenied,
    /// An indication the server does not act on.
    UnhandledIndication,
    /// The answer did not fit the output buffer.
    OutputTooSmall,
    /// Data for a relay address with no allocation (a late packet after expiry).
    UnknownRelay,
    /// Over the allocation's bandwidth limit (`max_bps`).
    RateLimited,
    /// A Send indication for a TCP allocation (RFC 6062: data goes over data connections).
    TcpAllocation,
    /// An unauthenticated request (or one answered 401/438) over its source's rate limit
    /// (`unauth_rate_limit`): dropped unanswered, so the server amplifies nothing.
    UnauthRateLimited,
}

/// Why an allocation ended (for the accounting line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Its lifetime ran out.
    Expired,
    /// Refresh with LIFETIME 0.
    Deleted,
    /// The server shut down.
    Shutdown,
    /// The client's TCP/TLS connection closed.
    ConnectionClosed,
    /// An operator ended it (admin API).
    Admin,
}

impl EndReason {
    /// The reason as the accounting line writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Deleted => "deleted by client",
            EndReason::Shutdown => "server shutdown",
            EndReason::Admin => "ended by an operator",
            EndReason::ConnectionClosed => "connection closed",
        }
    }
}

/// Per-allocation traffic counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Traffic {
    /// Packets relayed client → peer.
    pub packets_out: u64,
    /// Bytes (payload) relayed client → peer.
    pub bytes_out: u64,
    /// Packets relayed peer → client.
    pub packets_in: u64,
    /// Bytes (payload) relayed peer → client.
    pub bytes_in: u64,
}

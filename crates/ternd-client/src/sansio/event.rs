//! What the sans-IO core hands its driver: packets to send, events, decoded input.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::Error;

/// A packet to send to the server at `destination`.
///
/// Over UDP, send it from the allocation's socket. Over TCP and TLS, write it to the
/// connection; a `destination` other than the connected server (after 300 Try Alternate)
/// means: open a connection to it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The server's address.
    pub destination: SocketAddr,
    /// The bytes (a STUN message).
    pub payload: Vec<u8>,
}

/// Something the application may want to know.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The allocation exists.
    Allocated {
        /// The relayed addresses (two for a dual-stack allocation).
        relayed: Vec<SocketAddr>,
        /// The client's address as the server saw it.
        mapped: Option<SocketAddr>,
        /// The lifetime granted.
        lifetime: Duration,
        /// For [`Family::Dual`](super::Family::Dual): the IPv6 relay the server could not
        /// give, with its ADDRESS-ERROR-CODE.
        refused_family: Option<u16>,
    },
    /// 300 Try Alternate was followed: the allocation is now asked of `to`.
    Redirected {
        /// The server that redirected.
        from: SocketAddr,
        /// The alternate server.
        to: SocketAddr,
    },
    /// A Refresh succeeded.
    Refreshed {
        /// The lifetime granted.
        lifetime: Duration,
    },
    /// A permission for `ip` was installed (first time only; refreshes are silent).
    PermissionCreated {
        /// The peer address.
        ip: IpAddr,
    },
    /// A permission could not be installed or kept; data to that address is refused.
    PermissionFailed {
        /// The peer address.
        ip: IpAddr,
        /// Why.
        error: Error,
    },
    /// Channel `number` was bound to `peer` (first time only; re-binds are silent).
    ChannelBound {
        /// The channel number.
        number: u16,
        /// The peer.
        peer: SocketAddr,
    },
    /// A channel could not be bound; data to the peer goes in Send indications while its
    /// permission holds, and binding is tried again later.
    ChannelFailed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        error: Error,
    },
    /// RFC 6062: a Connect succeeded; open a data connection and send ConnectionBind
    /// (see [`Allocation::connection_bind`](super::Allocation::connection_bind)).
    Connected {
        /// The peer.
        peer: SocketAddr,
        /// The server's CONNECTION-ID.
        connection_id: u32,
    },
    /// RFC 6062: a Connect failed.
    ConnectFailed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        error: Error,
    },
    /// RFC 6062: a peer connected to the relayed address.
    ConnectionAttempt {
        /// The peer.
        peer: SocketAddr,
        /// The server's CONNECTION-ID.
        connection_id: u32,
    },
    /// The allocation failed or was lost (Allocate refused, Refresh refused, no answer);
    /// nothing more will happen.
    Failed(Error),
    /// The allocation was deleted after [`Allocation::close`](super::Allocation::close)
    /// (or the server's answer did not come in time).
    Closed,
}

/// What a packet from the server was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Data from a peer (ChannelData or a Data indication), borrowed from the packet.
    Data {
        /// The peer.
        peer: SocketAddr,
        /// The payload.
        data: &'a [u8],
    },
    /// A control message, taken into account (see [`Allocation::poll_event`](super::Allocation::poll_event)).
    Handled,
    /// Not for this allocation: another source, an unknown transaction or channel, a
    /// response whose integrity does not verify, or not STUN at all.
    Ignored,
}

/// How [`Allocation::encode_data`](super::Allocation::encode_data) framed a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// ChannelData of this many bytes.
    ChannelData(usize),
    /// A Send indication of this many bytes.
    Indication(usize),
    /// No permission for the peer yet: it was asked for; send again after
    /// [`Event::PermissionCreated`] (or drop the datagram, as a UDP socket would).
    Pending,
}

/// Counters of what the allocation sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// ChannelData frames encoded.
    pub channel_data_sent: u64,
    /// Send indications encoded.
    pub indications_sent: u64,
    /// ChannelData frames received from bound channels.
    pub channel_data_received: u64,
    /// Data indications received.
    pub data_indications_received: u64,
    /// Requests built (first sends and rebuilds after 401/438; not retransmissions).
    pub requests: u64,
    /// Retransmissions of requests over UDP.
    pub retransmissions: u64,
    /// 438 Stale Nonce answers taken (each rebuilt the request with the new nonce).
    pub stale_nonces: u64,
    /// Keepalive Binding indications sent.
    pub keepalives: u64,
}

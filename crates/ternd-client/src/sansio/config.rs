//! What an [`Allocation`](super::Allocation) asks for and how it behaves.

use std::time::Duration;

use super::timer::Timing;
use crate::Credentials;

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// UDP: requests are retransmitted (RFC 8489 §6.2.1), keepalives keep NAT bindings.
    Udp,
    /// TCP: one send per request, ChannelData padded to four bytes (RFC 8656 §12.5).
    Tcp,
    /// TLS over TCP: as TCP.
    Tls,
}

impl Protocol {
    /// True for TCP and TLS: nothing is lost, requests are sent once.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Protocol::Udp)
    }
}

/// What the relay carries to peers (REQUESTED-TRANSPORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayProtocol {
    /// UDP relaying (RFC 8656).
    Udp,
    /// TCP relaying (RFC 6062): peers are reached by Connect, over one data connection
    /// each; the client must reach the server over TCP or TLS.
    Tcp,
}

/// Which relayed address families to ask for (RFC 8656 §7.1 and RFC 6156's successors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// An IPv4 relayed address (the default; no attribute is sent).
    V4,
    /// An IPv6 relayed address (REQUESTED-ADDRESS-FAMILY IPv6).
    V6,
    /// Both (ADDITIONAL-ADDRESS-FAMILY IPv6): the server grants IPv4 and, if it can,
    /// IPv6; when it cannot, the allocation is IPv4 only and the event says why.
    Dual,
}

/// The settings of one allocation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The long-term credentials (static user, REST, or from an `iceServers` answer).
    pub credentials: Credentials,
    /// How the server is reached.
    pub protocol: Protocol,
    /// What is relayed.
    pub relay: RelayProtocol,
    /// Which relayed address families.
    pub family: Family,
    /// The LIFETIME to ask for (`None`: the server's default, 600 s on most servers).
    pub lifetime: Option<Duration>,
    /// Request timing.
    pub timing: Timing,
    /// Whether data goes over channels once bound (ChannelData, 4 bytes of overhead)
    /// rather than only Send indications (36 bytes). On by default.
    pub channels: bool,
    /// Whether a 300 Try Alternate may send the client to a loopback, private,
    /// link-local or unspecified address (off: only public alternates are followed).
    pub allow_private_alternates: bool,
    /// Whether USERHASH replaces USERNAME when the server's nonce offers it.
    pub userhash: bool,
    /// SOFTWARE sent in requests.
    pub software: Option<String>,
    /// Over UDP, how long the client may stay silent towards the server before it sends
    /// a Binding indication, so that NAT bindings on the way stay open (`None`: never).
    pub keepalive: Option<Duration>,
    /// How long after a permission is installed it is refreshed (before its 300 s end).
    pub permission_refresh: Duration,
    /// How long after a channel is bound it is bound again (before its 600 s end).
    pub channel_refresh: Duration,
    /// Whether requests end with FINGERPRINT.
    pub fingerprint: bool,
}

impl Config {
    /// An IPv4 UDP relay reached over UDP, with RFC 8489 timing, channels on, 15 s
    /// keepalives, permissions refreshed after 240 s and channels after 540 s.
    pub fn new(credentials: Credentials) -> Config {
        Config {
            credentials,
            protocol: Protocol::Udp,
            relay: RelayProtocol::Udp,
            family: Family::V4,
            lifetime: None,
            timing: Timing::default(),
            channels: true,
            allow_private_alternates: false,
            userhash: true,
            software: None,
            keepalive: Some(Duration::from_secs(15)),
            permission_refresh: Duration::from_secs(240),
            channel_refresh: Duration::from_secs(540),
            fingerprint: true,
        }
    }

    /// The same settings over another transport.
    pub fn protocol(mut self, protocol: Protocol) -> Config {
        self.protocol = protocol;
        self
    }

    /// The same settings for another relayed transport.
    pub fn relay(mut self, relay: RelayProtocol) -> Config {
        self.relay = relay;
        self
    }

    /// The same settings for other address families.
    pub fn family(mut self, family: Family) -> Config {
        self.family = family;
        self
    }

    /// The same settings with a requested lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> Config {
        self.lifetime = Some(lifetime);
        self
    }

    /// The same settings with other request timing.
    pub fn timing(mut self, timing: Timing) -> Config {
        self.timing = timing;
        self
    }

    /// The same settings with channels on or off (off: Send indications only).
    pub fn channels(mut self, on: bool) -> Config {
        self.channels = on;
        self
    }

    /// The same settings, following 300 Try Alternate to private addresses too (tests,
    /// private deployments).
    pub fn allow_private_alternates(mut self, on: bool) -> Config {
        self.allow_private_alternates = on;
        self
    }

    /// The same settings with another keepalive interval (`None`: none).
    pub fn keepalive(mut self, every: Option<Duration>) -> Config {
        self.keepalive = every;
        self
    }
}

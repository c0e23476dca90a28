//! The sans-IO TURN client: one [`Allocation`] driven by its caller.
//!
//! The driver feeds it what the server sent ([`Allocation::handle_input`]) and the time
//! ([`Allocation::handle_timeout`] when [`Allocation::poll_timeout`] says), sends what
//! [`Allocation::poll_transmit`] returns, and reads [`Allocation::poll_event`]. Nothing here
//! reads a clock, opens a socket or draws a random number: `now` and a random seed come
//! from the caller, so the whole life of an allocation (an hour of refreshes in a
//! millisecond) can be run on a fake clock.
//!
//! What it does by itself:
//! - the 401 challenge: realm and nonce, MD5 or SHA-256 password algorithm (SHA-256 when
//!   the server offers it in PASSWORD-ALGORITHMS), USERHASH when the nonce offers it;
//! - 438 Stale Nonce on any request: the request is rebuilt with the new nonce (a few times
//!   per transaction); data keeps flowing meanwhile, channels stay channels;
//! - 300 Try Alternate on Allocate: ALTERNATE-SERVER is followed once per attempt, with the
//!   same credentials, public addresses only unless allowed;
//! - retransmissions (RFC 8489 §6.2), Refresh before the allocation expires, permission
//!   refreshes before 300 s, channel re-binds before 600 s, a keepalive over UDP, and
//!   Refresh(0) on [`Allocation::close`].

mod answer;
mod binding;
mod config;
mod event;
mod peers;
#[cfg(test)]
mod tests;
pub(crate) mod timer;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ternd_proto::stun::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type, hmac_sha256,
};

pub use binding::{Binding, ConnectionBind};
pub use config::{Config, Family, Protocol, RelayProtocol};
pub use event::{Encoded, Event, Input, Stats, Transmit};
use peers::Peers;
pub use timer::Timing;
use timer::{Retransmit, Tick, later};

use crate::Error;
use crate::auth::{Auth, PasswordAlgorithmKind};
use crate::data;

/// How many times one transaction is rebuilt after 438 Stale Nonce before it fails.
const MAX_STALE: u8 = 3;
/// How long after a failed permission or channel refresh it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The largest request this client builds.
const MAX_REQUEST: usize = 1280;

/// Where the allocation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Allocating { redirected: bool },
    Allocated,
    Closing,
    Closed,
    Failed,
}

/// What a transaction asks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Allocate,
    Refresh { lifetime: u32 },
    Permission { ips: Vec<IpAddr> },
    ChannelBind { number: u16, peer: SocketAddr },
    Connect { peer: SocketAddr },
}

impl What {
    fn method(&self) -> Method {
        match self {
            What::Allocate => Method::ALLOCATE,
            What::Refresh { .. } => Method::REFRESH,
            What::Permission { .. } => Method::CREATE_PERMISSION,
            What::ChannelBind { .. } => Method::CHANNEL_BIND,
            What::Connect { .. } => Method::CONNECT,
        }
    }
}

/// One outstanding request.
#[derive(Debug)]
struct Txn {
    tid: TransactionId,
    what: What,
    bytes: Vec<u8>,
    timer: Retransmit,
    authenticated: bool,
    stale: u8,
    challenged: bool,
}

/// Transaction ids from the caller's random seed: HMAC-SHA256(seed, counter), so they are
/// unpredictable to anyone without the seed, and never repeat within an allocation.
#[derive(Clone)]
pub(crate) struct TidSource {
    seed: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for TidSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TidSource(<seed>)")
    }
}

impl TidSource {
    pub(crate) fn new(seed: [u8; 32]) -> TidSource {
        TidSource { seed, counter: 0 }
    }

    pub(crate) fn next(&mut self) -> TransactionId {
        self.counter += 1;
        let h = hmac_sha256(&self.seed, &[&self.counter.to_be_bytes()]);
        let mut t = [0u8; 12];
        t.copy_from_slice(&h[..12]);
        TransactionId(t)
    }
}

/// One TURN allocation, sans-IO (see the [module documentation](self)).
#[derive(Debug)]
pub struct Allocation {
    config: Config,
    server: SocketAddr,
    auth: Auth,
    tids: TidSource,
    phase: Phase,
    txns: Vec<Txn>,
    relayed: Vec<SocketAddr>,
    mapped: Option<SocketAddr>,
    lifetime: Duration,
    expires: Option<Instant>,
    refresh_at: Option<Instant>,
    peers: Peers,
    last_sent: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

fn error_code<'a>(m: &Message<'a>) -> (u16, &'a str) {
    match m.get_decoded(attr_type::ERROR_CODE) {
        Some(Ok(Attribute::ErrorCode(e))) => (e.code, e.reason),
        _ => (0, ""),
    }
}

impl Allocation {
    /// Starts an allocation at `server`: the first Allocate is ready in
    /// [`Allocation::poll_transmit`]. `seed` must be random (transaction ids derive from
    /// it).
    pub fn new(config: Config, server: SocketAddr, seed: [u8; 32], now: Instant) -> Allocation {
        let mut auth = Auth::new(config.credentials.clone());
        auth.allow_userhash = config.userhash;
        let mut a = Allocation {
            config,
            server,
            auth,
            tids: TidSource::new(seed),
            phase: Phase::Allocating { redirected: false },
            txns: Vec::new(),
            relayed: Vec::new(),
            mapped: None,
            lifetime: Duration::ZERO,
            expires: None,
            refresh_at: None,
            peers: Peers::default(),
            last_sent: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        a.start(What::Allocate, now);
        a
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The server the allocation is (being) made on: the configured one, or the alternate
    /// after a redirect.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// True once the allocation exists and until it is closed, fails or expires.
    pub fn is_allocated(&self) -> bool {
        self.phase == Phase::Allocated
    }

    /// True once nothing more will happen (closed or failed).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Failed)
    }

    /// The relayed addresses (the first is the requested family's).
    pub fn relayed_addrs(&self) -> &[SocketAddr] {
        &self.relayed
    }

    /// The first relayed address.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed.first().copied()
    }

    /// The client's address as the server saw it (XOR-MAPPED-ADDRESS).
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The lifetime the server granted last.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the allocation expires unless refreshed.
    pub fn expires(&self) -> Option<Instant> {
        self.expires
    }

    /// The realm in use.
    pub fn realm(&self) -> Option<&str> {
        self.auth.realm()
    }

    /// The server's current nonce.
    pub fn nonce(&self) -> Option<&str> {
        self.auth.nonce()
    }

    /// The password algorithm in use once challenged.
    pub fn password_algorithm(&self) -> Option<PasswordAlgorithmKind> {
        self.auth.algorithm()
    }

    /// True when requests carry USERHASH rather than USERNAME.
    pub fn uses_userhash(&self) -> bool {
        self.auth.uses_userhash()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The channel bound to `peer` and not expired at `now`.
    pub fn channel_for(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.peers.usable_channel(peer, now)
    }

    /// True if a permission for `ip` is installed and not expired at `now`.
    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.peers.permitted(ip, now)
    }

    /// When the permission for `ip` expires, if installed.
    pub fn permission_expires(&self, ip: IpAddr) -> Option<Instant> {
        self.peers.permission_expires(ip)
    }

    /// When the channel bound to `peer` expires, if bound.
    pub fn channel_expires(&self, peer: SocketAddr) -> Option<Instant> {
        self.peers.channel_expires(peer)
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Allocation::handle_timeout`] must be called next (`None`: nothing is
    /// scheduled, the allocation is done).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            return None;
        }
        let txns = self.txns.iter().map(|t| t.timer.poll_timeout());
        let mut next = txns.min();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        if self.phase == Phase::Allocated {
            consider(self.refresh_at);
            consider(self.expires);
            consider(self.peers.poll_timeout());
            consider(self.keepalive_at());
        }
        next
    }

    fn keepalive_at(&self) -> Option<Instant> {
        match (self.config.protocol, self.config.keepalive) {
            (Protocol::Udp, Some(every)) => Some(later(self.last_sent, every)),
            _ => None,
        }
    }

    /// Frames `payload` for `peer` into `out`: ChannelData once a channel is bound, a Send
    /// indication while only the permission is installed (a channel is then asked for, if
    /// channels are on). Without a permission, asks for one (and a channel) and returns
    /// [`Encoded::Pending`]. Allocation-free once the peer is set up.
    pub fn encode_data(
        &mut self,
        peer: SocketAddr,
        payload: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<Encoded, Error> {
        if self.phase != Phase::Allocated {
            return Err(Error::NotAllocated);
        }
        if self.config.relay == RelayProtocol::Tcp {
            return Err(Error::NotAllocated);
        }
        if let Some(number) = self.peers.usable_channel(peer, now) {
            let pad = self.config.protocol.is_reliable();
            let n = data::channel_data(number, payload, pad, out)?;
            self.stats.channel_data_sent += 1;
            self.last_sent = now;
            return Ok(Encoded::ChannelData(n));
        }
        if self.config.channels {
            self.bind_channel(peer, now)?;
        }
        if !self.peers.permitted(peer.ip(), now) {
            self.permit(peer.ip(), now)?;
            return Ok(Encoded::Pending);
        }
        let n = data::send_indication(self.tids.next(), peer, payload, out)?;
        self.stats.indications_sent += 1;
        self.last_sent = now;
        Ok(Encoded::Indication(n))
    }

    /// Asks for a permission for `ip` (no-op if installed or asked for already).
    pub fn permit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Error> {
        if self.phase != Phase::Allocated {
            return Err(Error::NotAllocated);
        }
        if self.peers.want_permission(ip, now) {
            self.start(What::Permission { ips: vec![ip] }, now);
        }
        Ok(())
    }

    /// Asks for a channel to `peer` (no-op if bound or asked for); returns its number.
    pub fn bind_channel(&mut self, peer: SocketAddr, now: Instant) -> Result<u16, Error> {
        if self.phase != Phase::Allocated {
            return Err(Error::NotAllocated);
        }
        let (number, send) = self.peers.want_channel(peer, now)?;
        if send {
            self.start(What::ChannelBind { number, peer }, now);
        }
        Ok(number)
    }

    /// RFC 6062: asks the server to connect the relay to `peer` (a permission is asked for
    /// first if there is none); the answer comes as [`Event::Connected`] or
    /// [`Event::ConnectFailed`].
    pub fn connect(&mut self, peer: SocketAddr, now: Instant) -> Result<(), Error> {
        if self.phase != Phase::Allocated || self.config.relay != RelayProtocol::Tcp {
            return Err(Error::NotAllocated);
        }
        self.permit(peer.ip(), now)?;
        self.start(What::Connect { peer }, now);
        Ok(())
    }

    /// RFC 6062: the ConnectionBind exchange for a data connection, with this allocation's
    /// credentials and nonce.
    pub fn connection_bind(&mut self, connection_id: u32) -> ConnectionBind {
        let mut seed = [0u8; 32];
        seed[..12].copy_from_slice(&self.tids.next().0);
        seed[12..24].copy_from_slice(&self.tids.next().0);
        ConnectionBind::new(
            self.auth.clone(),
            connection_id,
            TidSource::new(seed),
            self.config.fingerprint,
        )
    }

    /// Deletes the allocation: Refresh with LIFETIME 0. [`Event::Closed`] follows the
    /// answer (or the timeout). Outstanding requests are dropped.
    pub fn close(&mut self, now: Instant) {
        match self.phase {
            Phase::Allocated => {
                self.txns.clear();
                self.phase = Phase::Closing;
                self.start(What::Refresh { lifetime: 0 }, now);
            }
            Phase::Allocating { .. } => {
                self.txns.clear();
                self.phase = Phase::Closed;
                self.events.push_back(Event::Closed);
            }
            Phase::Closing | Phase::Closed | Phase::Failed => {}
        }
    }

    /// Builds and queues a new request.
    fn start(&mut self, what: What, now: Instant) {
        self.start_with(what, now, 0, false);
    }

    fn start_with(&mut self, what: What, now: Instant, stale: u8, challenged: bool) {
        let tid = self.tids.next();
        let mut buf = vec![0u8; MAX_REQUEST];
        let (n, authenticated) = match self.build(&what, tid, &mut buf) {
            Ok(x) => x,
            Err(e) => {
                self.failed_request(&what, e, now);
                return;
            }
        };
        buf.truncate(n);
        self.stats.requests += 1;
        self.last_sent = now;
        self.transmits.push_back(Transmit {
            destination: self.server,
            payload: buf.clone(),
        });
        self.txns.push(Txn {
            tid,
            what,
            bytes: buf,
            timer: Retransmit::start(self.config.timing, self.config.protocol.is_reliable(), now),
            authenticated,
            stale,
            challenged,
        });
    }

    fn build(
        &self,
        what: &What,
        tid: TransactionId,
        out: &mut [u8],
    ) -> Result<(usize, bool), Error> {
        let mut b = MessageBuilder::new(out, MessageType::new(what.method(), Class::Request), tid)?;
        match what {
            What::Allocate => {
                let proto = match self.config.relay {
                    RelayProtocol::Udp => 17,
                    RelayProtocol::Tcp => 6,
                };
                b.add(&Attribute::RequestedTransport(proto))?;
                if let Some(l) = self.config.lifetime {
                    let secs = u32::try_from(l.as_secs()).unwrap_or(u32::MAX);
                    b.add(&Attribute::Lifetime(secs))?;
                }
                match self.config.family {
                    Family::V4 => {}
                    Family::V6 => b.add(&Attribute::RequestedAddressFamily(AddressFamily::V6))?,
                    Family::Dual => {
                        b.add(&Attribute::AdditionalAddressFamily(AddressFamily::V6))?
                    }
                }
            }
            What::Refresh { lifetime } => b.add(&Attribute::Lifetime(*lifetime))?,
            What::Permission { ips } => {
                for ip in ips {
                    b.add(&Attribute::XorPeerAddress(SocketAddr::new(*ip, 0)))?;
                }
            }
            What::ChannelBind { number, peer } => {
                b.add(&Attribute::ChannelNumber(*number))?;
                b.add(&Attribute::XorPeerAddress(*peer))?;
            }
            What::Connect { peer } => b.add(&Attribute::XorPeerAddress(*peer))?,
        }
        if let Some(s) = &self.config.software {
            b.add(&Attribute::Software(s))?;
        }
        let authenticated = self.auth.sign(&mut b)?;
        if self.config.fingerprint {
            b.add_fingerprint()?;
        }
        Ok((b.finish(), authenticated))
    }

    /// Feeds a packet that came from `from`. Data is returned borrowed from `packet`;
    /// control messages change the state and may queue events and transmits.
    pub fn handle_input<'a>(
        &mut self,
        packet: &'a [u8],
        from: SocketAddr,
        now: Instant,
    ) -> Input<'a> {
        if from != self.server || self.is_done() {
            return Input::Ignored;
        }
        match data::decode(packet) {
            Some(data::Incoming::ChannelData { number, data }) => {
                match self.peers.peer_of(number) {
                    Some(peer) => {
                        self.stats.channel_data_received += 1;
                        Input::Data { peer, data }
                    }
                    None => Input::Ignored,
                }
            }
            Some(data::Incoming::Data { peer, data }) => {
                self.stats.data_indications_received += 1;
                Input::Data { peer, data }
            }
            Some(data::Incoming::Stun(m)) => self.handle_stun(&m, now),
            None => Input::Ignored,
        }
    }

    /// Runs the timers: retransmissions, transaction timeouts, refreshes, keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_done() {
            return;
        }
        let mut i = 0;
        while i < self.txns.len() {
            match self.txns[i].timer.tick(now) {
                Tick::Wait => i += 1,
                Tick::Resend => {
                    self.stats.retransmissions += 1;
                    self.last_sent = now;
                    self.transmits.push_back(Transmit {
                        destination: self.server,
                        payload: self.txns[i].bytes.clone(),
                    });
                    i += 1;
                }
                Tick::Expired => {
                    let t = self.txns.swap_remove(i);
                    let method = t.what.method();
                    self.failed_request(&t.what, Error::Timeout { method }, now);
                    if self.is_done() {
                        return;
                    }
                }
            }
        }
        if self.phase != Phase::Allocated {
            return;
        }
        if self.expires.is_some_and(|x| now >= x) {
            return self.fail(Error::Expired);
        }
        if self.refresh_at.is_some_and(|r| now >= r)
            && !self
                .txns
                .iter()
                .any(|t| matches!(t.what, What::Refresh { .. }))
        {
            self.refresh_at = None;
            let secs = self
                .config
                .lifetime
                .map_or(self.lifetime.as_secs(), |l| l.as_secs());
            let lifetime = u32::try_from(secs).unwrap_or(u32::MAX).max(1);
            self.start(What::Refresh { lifetime }, now);
        }
        let due = self.peers.due_permissions(now);
        if !due.is_empty() {
            self.start(What::Permission { ips: due }, now);
        }
        while let Some((number, peer)) = self.peers.due_channel(now) {
            self.start(What::ChannelBind { number, peer }, now);
        }
        if let Some(at) = self.keepalive_at()
            && now >= at
        {
            let mut buf = [0u8; 28];
            if let Ok(n) = data::binding_indication(self.tids.next(), &mut buf) {
                self.stats.keepalives += 1;
                self.last_sent = now;
                self.transmits.push_back(Transmit {
                    destination: self.server,
                    payload: buf[..n].to_vec(),
                });
            }
        }
    }
}

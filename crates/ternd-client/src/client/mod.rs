//! The tokio adapter: a TURN client over UDP, TCP or TLS that drives the sans-IO
//! [`Allocation`] in a task of its own.
//!
//! - [`Client::connect`] takes a server URL (`turn:host:port?transport=udp|tcp`,
//!   `turns:host:port`) and credentials, resolves the host and opens the connection (a UDP
//!   socket, a TCP connection, or TLS with the server's name verified against the
//!   webpki roots or [`ClientOptions::tls_config`]).
//! - [`Client::allocate`] makes a UDP relay, a [`RelaySocket`] used like a UDP socket
//!   (`send_to`, `recv_from`); its steady state allocates no memory.
//! - [`Client::allocate_tcp`] makes an RFC 6062 TCP relay, a [`TcpAllocation`] whose
//!   [`connect`](TcpAllocation::connect) and [`accept`](TcpAllocation::accept) give
//!   [`TcpRelayStream`]s (tokio `AsyncRead + AsyncWrite`).
//! - [`Client::binding`] asks the server for the client's public address (STUN Binding).
//!
//! ```no_run
//! # async fn f() -> Result<(), ternd_client::Error> {
//! use ternd_client::{Client, Credentials};
//!
//! let client = Client::connect("turn:turn.example.org:3478", Credentials::new("u", "p")).await?;
//! let socket = client.allocate().await?;
//! let peer = "198.51.100.2:5000".parse().unwrap();
//! socket.send_to(b"hello", peer).await?;
//! let mut buf = [0u8; 1500];
//! let (n, from) = socket.recv_from(&mut buf).await?;
//! socket.close().await?;
//! # let _ = (n, from);
//! # Ok(()) }
//! ```

mod conn;
mod driver;
mod ring;
mod shared;
mod socket;
mod tcp;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ternd_proto::stun::Method;

pub use socket::{RelaySocket, SocketStats};
pub use tcp::{TcpAllocation, TcpRelayStream};

pub(crate) use conn::default_tls;

use crate::sansio::Binding;
use crate::{
    Allocation, Config, Credentials, Error, Family, IceUrl, Protocol, RelayProtocol, Timing,
};
use conn::{Conn, Dialer, TlsSetup};
use ring::Ring;
use shared::{Owner, Shared, State};

/// Settings of a [`Client`] beyond the URL and the credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The TLS configuration for `turns:` (`None`: the Mozilla roots of `webpki-roots`).
    /// The server's certificate is checked against the URL's host either way.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    /// Which relayed address families to ask for.
    pub family: Family,
    /// The allocation lifetime to ask for (`None`: the server's default).
    pub lifetime: Option<Duration>,
    /// Whether data goes over channels once bound (on by default) or only in Send
    /// indications.
    pub channels: bool,
    /// Whether a 300 Try Alternate may send the client to a private address.
    pub allow_private_alternates: bool,
    /// Request timing (RFC 8489's defaults: 39.5 s before a request fails).
    pub timing: Timing,
    /// Over UDP, the keepalive interval towards the server (`None`: none).
    pub keepalive: Option<Duration>,
    /// SOFTWARE sent in requests.
    pub software: Option<String>,
    /// The local address to bind (`None`: the unspecified address of the server's family,
    /// any port). TCP data connections keep its IP and take ports of their own.
    pub local_addr: Option<SocketAddr>,
    /// Bounds resolving the host, a TCP connect and a TLS handshake, each.
    pub connect_timeout: Duration,
    /// How many received datagrams a [`RelaySocket`] queues before it drops new ones.
    pub recv_queue: usize,
    /// The largest datagram a [`RelaySocket`] queues (larger ones are dropped and counted).
    pub recv_datagram_size: usize,
    /// How long after a permission is installed it is refreshed (240 s; never later than
    /// 90% of its 300 s life). See [`ClientOptions::refresh_intervals`].
    pub permission_refresh: Duration,
    /// How long after a channel is bound it is bound again (540 s; never later than 90%
    /// of its 600 s life).
    pub channel_refresh: Duration,
}

impl Default for ClientOptions {
    /// Webpki roots, IPv4, the server's lifetime, channels on, public alternates only,
    /// RFC 8489 timing, 15 s keepalives, 10 s to connect, 128 queued datagrams of up to
    /// 2048 bytes, permissions refreshed after 240 s and channels after 540 s.
    fn default() -> ClientOptions {
        ClientOptions {
            tls_config: None,
            family: Family::V4,
            lifetime: None,
            channels: true,
            allow_private_alternates: false,
            timing: Timing::default(),
            keepalive: Some(Duration::from_secs(15)),
            software: None,
            local_addr: None,
            connect_timeout: Duration::from_secs(10),
            recv_queue: 128,
            recv_datagram_size: 2048,
            permission_refresh: Duration::from_secs(240),
            channel_refresh: Duration::from_secs(540),
        }
    }
}

impl ClientOptions {
    /// The same options with a TLS configuration of its own (e.g. other roots).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> ClientOptions {
        self.tls_config = Some(config);
        self
    }

    /// The same options for other relayed address families.
    pub fn family(mut self, family: Family) -> ClientOptions {
        self.family = family;
        self
    }

    /// The same options with a requested lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> ClientOptions {
        self.lifetime = Some(lifetime);
        self
    }

    /// The same options with channels on or off (off: Send indications only).
    pub fn channels(mut self, on: bool) -> ClientOptions {
        self.channels = on;
        self
    }

    /// The same options, following 300 Try Alternate to private addresses too.
    pub fn allow_private_alternates(mut self, on: bool) -> ClientOptions {
        self.allow_private_alternates = on;
        self
    }

    /// The same options with other request timing.
    pub fn timing(mut self, timing: Timing) -> ClientOptions {
        self.timing = timing;
        self
    }

    /// The same options with another keepalive interval (`None`: none).
    pub fn keepalive(mut self, every: Option<Duration>) -> ClientOptions {
        self.keepalive = every;
        self
    }

    /// The same options with a local address to bind.
    pub fn local_addr(mut self, addr: SocketAddr) -> ClientOptions {
        self.local_addr = Some(addr);
        self
    }

    /// The same options with another connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.connect_timeout = timeout;
        self
    }

    /// The same options with another receive queue: `slots` datagrams of up to `size`
    /// bytes, allocated once per [`RelaySocket`].
    pub fn recv_queue(mut self, slots: usize, size: usize) -> ClientOptions {
        self.recv_queue = slots;
        self.recv_datagram_size = size;
        self
    }

    /// The same options with other refresh intervals: a permission is refreshed
    /// (CreatePermission) `permission` after it was installed, a channel bound again
    /// (ChannelBind) `channel` after it was bound. Shorter than the defaults (240 s and
    /// 540 s) only costs requests; longer ones are capped at 90% of the lifetimes RFC 8656
    /// gives them (300 s and 600 s). Tests use short ones to make requests (and meet
    /// nonce expiry) often.
    pub fn refresh_intervals(mut self, permission: Duration, channel: Duration) -> ClientOptions {
        self.permission_refresh = permission;
        self.channel_refresh = channel;
        self
    }
}

/// A TURN server to make allocations on, with the credentials to use.
///
/// [`Client::connect`] opens the first connection; the first allocation (or Binding) uses
/// it, later ones open connections of their own (a connection carries one allocation).
/// An allocation does not need its `Client` afterwards: dropping the `Client` closes
/// nothing, the [`RelaySocket`] or [`TcpAllocation`] keeps its connection and driver.
#[derive(Debug)]
pub struct Client {
    server: SocketAddr,
    credentials: Credentials,
    options: ClientOptions,
    dialer: Dialer,
    spare: Mutex<Option<Conn>>,
}

/// 32 random bytes (transaction id seeds).
fn random_seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
    Ok(seed)
}

/// The server's addresses (of the local address's family, if one is set).
async fn resolve(
    host: &str,
    port: u16,
    local: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Error> {
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::Url(format!("resolving {host:?} timed out")))?
        .map_err(|e| Error::Url(format!("cannot resolve {host:?}: {e}")))?;
    let addrs: Vec<SocketAddr> = found
        .filter(|a| local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .take(16)
        .collect();
    if addrs.is_empty() {
        return Err(Error::Url(format!(
            "{host:?} has no address of the local address's family"
        )));
    }
    Ok(addrs)
}

impl Client {
    /// Connects to the TURN server at `server_url` with default [`ClientOptions`].
    pub async fn connect(server_url: &str, credentials: Credentials) -> Result<Client, Error> {
        Client::connect_with(server_url, credentials, ClientOptions::default()).await
    }

    /// Connects to the TURN server at `server_url`: resolves its host, then binds a UDP
    /// socket (`turn:...?transport=udp`, the default), connects over TCP
    /// (`transport=tcp`) or connects and runs the TLS handshake (`turns:`). Over TCP and
    /// TLS the host's addresses are tried in turn.
    ///
    /// Errors: [`Error::Url`] for a URL that does not parse ([`IceUrl`]), a `stun:` or
    /// `stuns:` URL, or a host that does not resolve, [`Error::Tls`] for TLS failures, [`Error::Io`] otherwise.
    pub async fn connect_with(
        server_url: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let url = IceUrl::parse(server_url)?;
        if !url.is_turn() {
            return Err(Error::Url(format!(
                "{server_url:?}: a STUN server's URL; a TURN client needs turn: or turns:"
            )));
        }
        let tls = match url.protocol() {
            Protocol::Tls => Some(TlsSetup::new(options.tls_config.clone(), url.host())?),
            Protocol::Udp | Protocol::Tcp => None,
        };
        let dialer = Dialer {
            protocol: url.protocol(),
            tls,
            local: options.local_addr,
            timeout: options.connect_timeout,
        };
        let addrs = resolve(
            url.host(),
            url.port(),
            options.local_addr,
            options.connect_timeout,
        )
        .await?;
        let mut last = None;
        for &server in &addrs {
            match dialer.open(server).await {
                Ok(conn) => {
                    return Ok(Client {
                        server,
                        credentials,
                        options,
                        dialer,
                        spare: Mutex::new(Some(conn)),
                    });
                }
                // A TLS failure is the server's answer, not a reason to try another.
                Err(e @ Error::Tls(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::Closed))
    }

    /// The server's address (the one the host resolved to that answered).
    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// How the server is reached.
    pub fn protocol(&self) -> Protocol {
        self.dialer.protocol
    }

    /// The connection opened by [`Client::connect`] if still unused, else a new one.
    async fn take_conn(&self) -> Result<Conn, Error> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match spare {
            Some(c) => Ok(c),
            None => self.dialer.open(self.server).await,
        }
    }

    fn config(&self, relay: RelayProtocol) -> Config {
        let o = &self.options;
        let mut c = Config::new(self.credentials.clone())
            .protocol(self.dialer.protocol)
            .relay(relay)
            .family(o.family)
            .timing(o.timing)
            .channels(o.channels)
            .allow_private_alternates(o.allow_private_alternates)
            .keepalive(o.keepalive);
        c.lifetime = o.lifetime;
        c.software = o.software.clone();
        c.permission_refresh = o.permission_refresh;
        c.channel_refresh = o.channel_refresh;
        c
    }

    /// Starts an allocation and its driver; returns once the server granted it.
    async fn start(&self, relay: RelayProtocol) -> Result<(Owner, Granted), Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
        let conn = self.take_conn().await?;
        let alloc = Allocation::new(
            self.config(relay),
            self.server,
            random_seed()?,
            Instant::now(),
        );
        let ring = match relay {
            RelayProtocol::Udp => {
                Ring::new(self.options.recv_queue, self.options.recv_datagram_size)
            }
            RelayProtocol::Tcp => Ring::new(1, 1),
        };
        let (reader, writer) = driver::split(conn);
        let shared = Arc::new(Shared::new(alloc, ring, writer));
        // From here on a failure or a cancelled future drops the owner: the driver ends.
        let owner = Owner(shared.clone());
        runtime.spawn(driver::run(shared.clone(), reader, self.dialer.clone()));
        // The core bounds each transaction; a 401, a redirect and the new connection it
        // needs make at most three in a row.
        let bound = shared.transaction_timeout().saturating_mul(3) + self.options.connect_timeout;
        let granted = shared
            .wait_for(Some(Instant::now() + bound), |inner| match &inner.state {
                State::Ready => Some(Ok(Granted {
                    relayed: inner.alloc.relayed_addrs().to_vec(),
                    mapped: inner.alloc.mapped(),
                    lifetime: inner.alloc.lifetime(),
                })),
                State::Failed(e) => Some(Err(e.duplicate())),
                State::Closed => Some(Err(Error::Closed)),
                State::Allocating => inner.driver_done.then_some(Err(Error::Closed)),
            })
            .await
            .unwrap_or(Err(Error::Timeout {
                method: Method::ALLOCATE,
            }))?;
        if granted.relayed.is_empty() {
            return Err(Error::NotAllocated);
        }
        Ok((owner, granted))
    }

    /// Allocates a UDP relay (Allocate, with the 401 challenge, 438 and 300 handled);
    /// returns it once the server granted it.
    pub async fn allocate(&self) -> Result<RelaySocket, Error> {
        let (owner, g) = self.start(RelayProtocol::Udp).await?;
        Ok(RelaySocket {
            owner,
            buf: tokio::sync::Mutex::new(vec![0u8; socket::SEND_BUFFER].into_boxed_slice()),
            relayed: g.relayed[0],
            relayed_all: g.relayed,
            mapped: g.mapped,
            lifetime: g.lifetime,
        })
    }

    /// Allocates an RFC 6062 TCP relay; only over TCP or TLS to the server
    /// ([`Error::Url`] otherwise).
    pub async fn allocate_tcp(&self) -> Result<TcpAllocation, Error> {
        if self.dialer.protocol == Protocol::Udp {
            return Err(Error::Url(
                "RFC 6062 TCP relaying needs a TCP or TLS server URL (transport=tcp, turns:)"
                    .into(),
            ));
        }
        let (owner, g) = self.start(RelayProtocol::Tcp).await?;
        Ok(TcpAllocation {
            owner,
            dialer: self.dialer.clone(),
            relayed: g.relayed[0],
            mapped: g.mapped,
        })
    }

    /// The client's address as the server sees it (STUN Binding, no credentials;
    /// retransmitted over UDP as RFC 8489 says). Uses the connection that the next
    /// allocation will use, if there is one.
    pub async fn binding(&self) -> Result<SocketAddr, Error> {
        let mut conn = self.take_conn().await?;
        let result = binding_on(&mut conn, self.server, self.options.timing).await;
        if !matches!(result, Err(Error::Io(_) | Error::Framing(_))) {
            let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
            if spare.is_none() {
                *spare = Some(conn);
            }
        }
        result
    }
}

/// What the server granted.
struct Granted {
    relayed: Vec<SocketAddr>,
    mapped: Option<SocketAddr>,
    lifetime: Duration,
}

/// One Binding exchange on `conn`.
async fn binding_on(
    conn: &mut Conn,
    server: SocketAddr,
    timing: Timing,
) -> Result<SocketAddr, Error> {
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&random_seed()?[..12]);
    let reliable = matches!(conn, Conn::Stream(_));
    let mut b = Binding::new(server, tid, timing, reliable, Instant::now());
    let mut buf = vec![0u8; 2048];
    loop {
        if let Some((to, request)) = b.poll_transmit() {
            let request = request.to_vec();
            if let Err(e) = conn.send(&request, to).await
                && reliable
            {
                return Err(e);
            }
        }
        let Some(deadline) = b.poll_timeout() else {
            return Err(Error::Timeout {
                method: Method::BINDING,
            });
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, conn.recv(&mut buf)).await {
            Err(_) => b.handle_timeout(Instant::now().max(deadline.into_std()))?,
            Ok(Err(e)) => return Err(e),
            Ok(Ok((n, from))) => {
                if let Some(r) = b.handle_input(&buf[..n], from) {
                    return r;
                }
            }
        }
    }
}

//! `ternd bench`: a load generator for any RFC 8656 TURN server over UDP.
//!
//! It allocates N relayed addresses (timing the setup, the 401 round trip included), gives
//! each a permission (`--mode send`) or a channel (`--mode channel`) towards an echo peer —
//! by default its own, on 127.0.0.1 — and sends timestamped payloads through the relay at a
//! paced rate. The echo peer reflects them back through the relay, and the generator reports
//! packets per second, Mbit/s, loss and round-trip latency (an HDR histogram), and its own CPU
//! time. At the end it deallocates (Refresh with LIFETIME 0).
//!
//! Threads: one sender (token-bucket pacing over all allocations, non-blocking sockets), one
//! receiver (a current-thread tokio runtime with one task per client socket), the echo peer,
//! and the calling thread, which prints a progress line each second and refreshes the
//! allocations of runs longer than five minutes.
//!
//! The server must allow the echo peer's address: ternd `--allow-peer 127.0.0.1/32`, coturn
//! `--allow-loopback-peers`.

mod control;
pub mod forward;

use std::cell::RefCell;
use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;

use control::{Alloc, Blocking, Creds, Exchange};
use ternd_proto::stun::channel::{ChannelData, ChannelRange};
use ternd_proto::stun::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};

/// Long help of `ternd bench`.
pub const LONG_ABOUT: &str = "\
Load generator for any RFC 8656 TURN server over UDP (ternd, coturn, ...).

It allocates --allocations relayed addresses (timing the setup, the 401 round trip \
included), creates a permission (--mode send) or binds a channel (--mode channel) on each \
towards an echo peer, sends timestamped --size-byte payloads at --rate packets per second in \
total for --duration, and reports packets sent/received per second, Mbit/s, loss, round-trip \
latency percentiles and its own CPU time. It deallocates at the end.

The default echo peer is built in and listens on 127.0.0.1: the server must allow that peer \
(ternd: --allow-peer 127.0.0.1/32; coturn: --allow-loopback-peers). Client sockets bind to \
--bind (default 127.0.0.2) so that they never take the server's relay ports on 127.0.0.1.";

/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Most allocations.
pub const MAX_ALLOCATIONS: u32 = 20_000;
/// Payload size bounds (the payload carries a 16-byte timestamp header).
pub const MIN_SIZE: usize = 16;
/// Largest payload.
pub const MAX_SIZE: usize = 8192;

const MAGIC: [u8; 4] = *b"tbn1";
const CHANNEL: u16 = 0x4000;
/// Runs longer than this refresh their allocations, permissions and channels.
const REFRESH_AFTER: Duration = Duration::from_secs(300);
const REFRESH_EVERY: Duration = Duration::from_secs(120);

/// How payloads travel from the client to the relay.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// ChannelBind, then ChannelData both ways.
    Channel,
    /// CreatePermission, then Send and Data indications.
    Send,
    /// Plain UDP, no TURN: for `ternd forwarder`, the I/O floor a relay is measured against
    /// (`--server` is the forwarder; the forwarder's `--peer` echoes).
    Raw,
}

/// Options of `ternd forwarder`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ForwarderArgs {
    /// Address to listen on (UDP)
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    pub listen: SocketAddr,

    /// Where to forward what clients send (an echo peer); its answers go back to the client
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    pub peer: SocketAddr,

    /// Worker threads, each with its own SO_REUSEPORT listener
    #[arg(long, value_name = "N", default_value = "2")]
    pub workers: usize,

    /// Send bursts for one destination as one GSO send, as the relay does
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub udp_gso: bool,

    /// Stop after this long (at most 10m)
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
}

/// The sending rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// As fast as the sockets take them.
    Max,
    /// Packets per second in total across all allocations.
    Pps(u64),
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.trim().replace('_', "").parse::<u64>() {
        Ok(n) if (1..=10_000_000).contains(&n) => Ok(Rate::Pps(n)),
        _ => Err(format!(
            "invalid rate `{s}`: expected packets per second (1..=10000000) or `max`"
        )),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(t.parse().map_err(|_| format!("invalid duration `{s}`"))?)
    } else {
        humantime::parse_duration(t).map_err(|e| format!("invalid duration `{s}`: {e}"))?
    };
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!("the duration must be in (0, 10m], got `{s}`"));
    }
    Ok(d)
}

fn parse_server(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_allocations(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_ALLOCATIONS).contains(&n) => Ok(n),
        _ => Err(format!("expected 1..={MAX_ALLOCATIONS}, got `{s}`")),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (MIN_SIZE..=MAX_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("expected {MIN_SIZE}..={MAX_SIZE} bytes, got `{s}`")),
    }
}

/// Options of `ternd bench`.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// TURN server address (UDP), HOST:PORT
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    pub server: SocketAddr,

    /// REST shared secret: usernames are EXPIRY:benchN, one user per allocation
    #[arg(long, value_name = "SECRET", conflicts_with_all = ["username", "password"])]
    pub secret: Option<String>,

    /// Long-term credential username (with --password)
    #[arg(long, value_name = "USER", requires = "password")]
    pub username: Option<String>,

    /// Long-term credential password (with --username)
    #[arg(long, value_name = "PASSWORD", requires = "username")]
    pub password: Option<String>,

    /// Realm for the key [default: the one the server's 401 names]
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,

    /// Number of allocations
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_allocations)]
    pub allocations: u32,

    /// ChannelData (channel) or Send/Data indications (send)
    #[arg(long, value_enum, default_value = "channel")]
    pub mode: Mode,

    /// Payload bytes per packet (16..=8192)
    #[arg(long, value_name = "BYTES", default_value = "100", value_parser = parse_size)]
    pub size: usize,

    /// Packets per second in total across allocations, or `max`
    #[arg(long, value_name = "PPS|max", default_value = "1000", value_parser = parse_rate)]
    pub rate: Rate,

    /// How long to send (at most 10m), e.g. 10s, 2m
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Echo peer that reflects every datagram to its sender [default: a built-in one on
    /// 127.0.0.1]; with --mode raw, where the built-in echo peer listens (the forwarder's
    /// --peer)
    #[arg(long, value_name = "ADDR", value_parser = parse_server)]
    pub peer: Option<SocketAddr>,

    /// Local IP for the client sockets
    #[arg(long, value_name = "IP", default_value = "127.0.0.2")]
    pub bind: IpAddr,

    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,

    /// No progress lines on stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// The server's Prometheus endpoint (plain HTTP), e.g. http://127.0.0.1:9641/metrics:
    /// scraped before and after the traffic to report the server's own drop counters
    /// (receive-queue overflows, send errors) for the run
    #[arg(long, value_name = "URL", value_parser = parse_metrics_url)]
    pub metrics: Option<MetricsUrl>,
}

/// Where `--metrics` scrapes: a host:port and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    /// HOST:PORT.
    pub addr: SocketAddr,
    /// The path, `/metrics` when the URL has none.
    pub path: String,
}

fn parse_metrics_url(s: &str) -> Result<MetricsUrl, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or("only plain http:// URLs are scraped")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the path must not contain spaces".into());
    }
    Ok(MetricsUrl {
        addr,
        path: path.to_string(),
    })
}

/// The server's drop counters over one run, from two scrapes of its `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ServerDrops {
    /// Datagrams dropped at full listener receive queues.
    pub listener_rx_queue: u64,
    /// Datagrams dropped at full relay socket receive queues.
    pub relay_rx_queue: u64,
    /// Failed sends on listeners (to clients), all errors.
    pub listener_send_errors: u64,
    /// Failed sends on relay sockets (to peers), all errors.
    pub relay_send_errors: u64,
}

impl ServerDrops {
    /// The counters in a Prometheus text exposition.
    fn parse(text: &str) -> ServerDrops {
        let mut d = ServerDrops::default();
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            let v = v as u64;
            let slot = if name.starts_with("ternd_udp_receive_queue_drops_total{") {
                if name.contains("socket=\"listener\"") {
                    &mut d.listener_rx_queue
                } else {
                    &mut d.relay_rx_queue
                }
            } else if name.starts_with("ternd_udp_send_errors_total{") {
                if name.contains("socket=\"listener\"") {
                    &mut d.listener_send_errors
                } else {
                    &mut d.relay_send_errors
                }
            } else {
                continue;
            };
            *slot += v;
        }
        d
    }

    /// Scrapes `url` (HTTP/1.0, a bounded read).
    fn scrape(url: &MetricsUrl) -> Result<ServerDrops, String> {
        use std::io::{Read, Write};
        let timeout = Duration::from_secs(2);
        let mut s = std::net::TcpStream::connect_timeout(&url.addr, timeout)
            .map_err(|e| format!("metrics {}: {e}", url.addr))?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        write!(s, "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n", url.path, url.addr)
            .map_err(|e| format!("metrics {}: {e}", url.addr))?;
        let mut body = Vec::new();
        s.take(4 << 20)
            .read_to_end(&mut body)
            .map_err(|e| format!("metrics {}: {e}", url.addr))?;
        let text = String::from_utf8_lossy(&body);
        if !text.starts_with("HTTP/1.") || text.split(' ').nth(1).is_none_or(|c| c != "200") {
            return Err(format!(
                "metrics {}: {}",
                url.addr,
                text.lines().next().unwrap_or("no answer")
            ));
        }
        if !text.contains("ternd_udp_receive_queue_drops_total") {
            return Err(format!(
                "metrics {}: no ternd_udp_receive_queue_drops_total (not a ternd, or an older one)",
                url.addr
            ));
        }
        Ok(ServerDrops::parse(&text))
    }

    fn since(&self, before: &ServerDrops) -> ServerDrops {
        ServerDrops {
            listener_rx_queue: self
                .listener_rx_queue
                .saturating_sub(before.listener_rx_queue),
            relay_rx_queue: self.relay_rx_queue.saturating_sub(before.relay_rx_queue),
            listener_send_errors: self
                .listener_send_errors
                .saturating_sub(before.listener_send_errors),
            relay_send_errors: self
                .relay_send_errors
                .saturating_sub(before.relay_send_errors),
        }
    }
}

impl fmt::Debug for BenchArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchArgs")
            .field("server", &self.server)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("realm", &self.realm)
            .field("allocations", &self.allocations)
            .field("mode", &self.mode)
            .field("size", &self.size)
            .field("rate", &self.rate)
            .field("duration", &self.duration)
            .field("peer", &self.peer)
            .field("bind", &self.bind)
            .field("json", &self.json)
            .field("quiet", &self.quiet)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl BenchArgs {
    /// The defaults of the command line for `server` and REST `secret`.
    pub fn new(server: SocketAddr, secret: &str) -> BenchArgs {
        BenchArgs {
            server,
            secret: Some(secret.to_owned()),
            username: None,
            password: None,
            realm: None,
            allocations: 1,
            mode: Mode::Channel,
            size: 100,
            rate: Rate::Pps(1000),
            duration: Duration::from_secs(10),
            peer: None,
            bind: IpAddr::from([127, 0, 0, 2]),
            json: false,
            quiet: false,
            metrics: None,
        }
    }
}

/// Round-trip latency in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Server address.
    pub server: String,
    /// channel or send.
    pub mode: Mode,
    /// Allocations used.
    pub allocations: u32,
    /// Payload bytes per packet.
    pub size: usize,
    /// Target packets per second, `None` for max.
    pub target_pps: Option<u64>,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Seconds spent in Allocate transactions (401 round trip included), summed.
    pub allocate_s: f64,
    /// Allocations per second, sequential, authentication included.
    pub allocations_per_s: f64,
    /// Seconds of the whole setup (allocations, permissions or channels).
    pub setup_s: f64,
    /// Packets sent to the server.
    pub sent: u64,
    /// Echoed packets received back.
    pub received: u64,
    /// Packets the built-in echo peer received (client→peer forwards), if it was used.
    pub peer_received: Option<u64>,
    /// Sent packets per second.
    pub sent_pps: f64,
    /// Received packets per second.
    pub received_pps: f64,
    /// Payload megabits per second received.
    pub received_mbps: f64,
    /// Payload megabits per second sent.
    pub sent_mbps: f64,
    /// Lost packets in per cent of those sent.
    pub loss_pct: f64,
    /// Send errors (other than a full socket buffer).
    pub send_errors: u64,
    /// Datagrams the kernel dropped at the bench's own client sockets' receive queues
    /// (`SO_MEMINFO`): loss in the generator, not the server. `None` where unknown.
    pub client_rx_drops: Option<u64>,
    /// Datagrams the kernel dropped at the built-in echo peer's receive queue.
    pub peer_rx_drops: Option<u64>,
    /// The server's drop counters over the run (with `--metrics`).
    pub server_drops: Option<ServerDrops>,
    /// Round-trip latency, microseconds.
    pub latency_us: Latency,
    /// CPU seconds (user + system) this process used while sending and draining.
    pub bench_cpu_s: f64,
    /// Allocations that failed to deallocate at the end.
    pub dealloc_failures: u32,
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let l = &self.latency_us;
        let rate = match self.target_pps {
            Some(r) => format!("{r} pps"),
            None => "max".into(),
        };
        let peer = match self.peer_received {
            Some(p) => format!("{p}"),
            None => "n/a (external peer)".into(),
        };
        format!(
            "\
ternd bench: {server}, mode {mode}, {allocs} allocation(s), {size} B payload, rate {rate}, {dur:.1} s
  setup          {aps:.0} allocations/s ({alloc:.3} s allocating, {setup:.3} s with permissions/channels)
  sent           {sent} packets  {spps:.0} pps  {smb:.2} Mbit/s  ({errs} send errors)
  received       {recv} packets  {rpps:.0} pps  {rmb:.2} Mbit/s
  peer received  {peer}
  loss           {loss:.3} %
  bench drops    {own}
  server drops   {srv}
  rtt (µs)       p50 {p50:.1}  p90 {p90:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}  mean {mean:.1}
  bench cpu      {cpu:.2} s ({cpupct:.0} % of one core)
",
            server = self.server,
            mode = match self.mode {
                Mode::Channel => "channel",
                Mode::Send => "send",
                Mode::Raw => "raw",
            },
            allocs = self.allocations,
            size = self.size,
            dur = self.duration_s,
            aps = self.allocations_per_s,
            alloc = self.allocate_s,
            setup = self.setup_s,
            sent = self.sent,
            spps = self.sent_pps,
            smb = self.sent_mbps,
            errs = self.send_errors,
            recv = self.received,
            rpps = self.received_pps,
            rmb = self.received_mbps,
            loss = self.loss_pct,
            own = match (self.client_rx_drops, self.peer_rx_drops) {
                (None, None) => "unknown".to_string(),
                (c, p) => {
                    let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
                    format!(
                        "{} at the client sockets' receive queues, {} at the echo peer's",
                        n(c),
                        match p {
                            Some(_) => n(p),
                            None => "n/a (external peer)".into(),
                        }
                    )
                }
            },
            srv = match &self.server_drops {
                Some(d) => format!(
                    "receive queues: listener {} relay {}; send errors: listener {} relay {}",
                    d.listener_rx_queue,
                    d.relay_rx_queue,
                    d.listener_send_errors,
                    d.relay_send_errors
                ),
                None => "n/a (no --metrics)".into(),
            },
            p50 = l.p50,
            p90 = l.p90,
            p99 = l.p99,
            p999 = l.p999,
            max = l.max,
            mean = l.mean,
            cpu = self.bench_cpu_s,
            cpupct = 100.0 * self.bench_cpu_s / self.duration_s.max(1e-9),
        )
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// CPU seconds (user + system, all threads) of this process from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // rest[0] is field 3, so field n is rest[n - 3]; USER_HZ is 100 on Linux.
    (tick(11) + tick(12)) as f64 / 100.0
}

fn socket(bind: IpAddr, server: SocketAddr) -> Result<UdpSocket, String> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| format!("socket: {e}"))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&SocketAddr::new(bind, 0).into())
        .map_err(|e| format!("cannot bind a client socket to {bind}: {e}"))?;
    let s: UdpSocket = s.into();
    s.connect(server)
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    Ok(s)
}

/// The built-in echo peer: reflects every datagram to its sender until stopped.
struct EchoPeer {
    addr: SocketAddr,
    sock: Arc<UdpSocket>,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoPeer {
    /// An echo peer on `at` (port 0: any free port).
    fn start(at: SocketAddr) -> Result<EchoPeer, String> {
        let s = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::DGRAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        s.bind(&at.into())
            .map_err(|e| format!("cannot bind the echo peer on {at}: {e}"))?;
        let sock: Arc<UdpSocket> = Arc::new(s.into());
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let addr = sock.local_addr().map_err(|e| e.to_string())?;
        let peer_sock = sock.clone();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (received.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-peer".into())
            .spawn(move || {
                let sock = peer_sock;
                let mut buf = vec![0u8; 65536];
                while !st.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        r.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(EchoPeer {
            addr,
            sock,
            received,
            stop,
            thread: Some(thread),
        })
    }
}

impl EchoPeer {
    /// Datagrams the kernel dropped at the peer's receive queue so far.
    fn rx_drops(&self) -> Option<u64> {
        ternd_io::socket_rx_drops(&self.sock).ok().map(u64::from)
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Counters shared by the threads of a run.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    send_errors: AtomicU64,
    received: AtomicU64,
    sending_done: AtomicBool,
    stop_receiving: AtomicBool,
}

/// What the sender needs per allocation: its socket and a prebuilt frame with the payload
/// at `payload_at`.
struct Target {
    sock: Arc<UdpSocket>,
    frame: Vec<u8>,
    payload_at: usize,
}

fn build_frame(mode: Mode, peer: SocketAddr, size: usize, index: u32) -> (Vec<u8>, usize) {
    let mut payload = vec![0x5Au8; size];
    payload[8..12].copy_from_slice(&index.to_be_bytes());
    payload[12..16].copy_from_slice(&MAGIC);
    match mode {
        Mode::Channel => {
            let mut f = vec![0u8; 4 + size];
            let n = ChannelData::encode(CHANNEL, &payload, false, &mut f).unwrap_or(0);
            f.truncate(n);
            (f, 4)
        }
        Mode::Raw => (payload, 0),
        Mode::Send => {
            let mut f = vec![0u8; size + 128];
            let n = match MessageBuilder::new(
                &mut f,
                MessageType::new(Method::SEND, Class::Indication),
                TransactionId(*b"tbn0sendindi"),
            ) {
                Ok(mut b) => {
                    let ok = b.add(&Attribute::XorPeerAddress(peer)).is_ok()
                        && b.add(&Attribute::Data(&payload)).is_ok();
                    if ok { b.finish() } else { 0 }
                }
                Err(_) => 0,
            };
            f.truncate(n);
            // DATA is the last attribute: its value starts at the end minus the padded size.
            let at = n.saturating_sub((size + 3) & !3);
            (f, at)
        }
    }
}

/// The payload of an echoed packet: ChannelData or a Data indication (raw mode: the
/// datagram).
fn payload_of(mode: Mode, buf: &[u8]) -> Option<&[u8]> {
    if mode == Mode::Raw {
        return Some(buf);
    }
    match buf.first()? {
        0x40..=0x7F => ChannelData::parse(buf, ChannelRange::RFC5766)
            .ok()
            .map(|c| c.data),
        0..=3 => {
            let m = Message::parse(buf).ok()?;
            if m.message_type() != MessageType::new(Method::DATA, Class::Indication) {
                return None;
            }
            match m.get_decoded(attr_type::DATA)? {
                Ok(Attribute::Data(d)) => Some(d),
                _ => None,
            }
        }
        _ => None,
    }
}

fn sender(targets: Vec<Target>, rate: Rate, start: Instant, until: Instant, shared: &Shared) {
    let mut targets = targets;
    let n = targets.len();
    let interval = match rate {
        Rate::Max => Duration::ZERO,
        Rate::Pps(r) => Duration::from_nanos(1_000_000_000 / r.max(1)),
    };
    // Token bucket: a packet is due every `interval`; at most 10 ms of backlog is kept.
    let burst = Duration::from_millis(10);
    let mut due = Instant::now();
    let mut i = 0usize;
    let (mut sent, mut errors) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        if !interval.is_zero() {
            if due > now {
                // Sleep at least 250 µs: a wake-up per packet would cost more than the send.
                std::thread::sleep((due - now).max(Duration::from_micros(250)));
                continue;
            }
            if now - due > burst {
                due = now - burst;
            }
        }
        let t = &mut targets[i];
        let ts = start.elapsed().as_nanos() as u64;
        t.frame[t.payload_at..t.payload_at + 8].copy_from_slice(&ts.to_be_bytes());
        match t.sock.send(&t.frame) {
            Ok(_) => {
                sent += 1;
                due += interval;
                i = (i + 1) % n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::yield_now();
                i = (i + 1) % n;
            }
            Err(_) => {
                errors += 1;
                due += interval;
                i = (i + 1) % n;
            }
        }
        if sent % 64 == 0 {
            shared.sent.store(sent, Ordering::Relaxed);
            shared.send_errors.store(errors, Ordering::Relaxed);
        }
    }
    shared.sent.store(sent, Ordering::Relaxed);
    shared.send_errors.store(errors, Ordering::Relaxed);
    shared.sending_done.store(true, Ordering::Relaxed);
}

fn new_histogram() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// The receiver: one task per socket on a current-thread runtime. STUN answers (refreshes
/// during long runs) go to `control` tagged with the allocation's index.
fn receiver(
    mode: Mode,
    socks: Vec<Arc<UdpSocket>>,
    start: Instant,
    shared: Arc<Shared>,
    control: mpsc::Sender<(usize, Vec<u8>)>,
) -> Result<Histogram<u64>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let hist = Rc::new(RefCell::new(new_histogram()));
    let local = tokio::task::LocalSet::new();
    let h = hist.clone();
    let result: Result<(), String> = local.block_on(&rt, async move {
        for (idx, s) in socks.into_iter().enumerate() {
            // The socket is shared with the sender and the control exchanges: registered
            // here for readability only (one descriptor per allocation, so 10,000 fit).
            let s = ternd_io::register_shared_udp(s).map_err(|e| e.to_string())?;
            let (h, shared, control) = (h.clone(), shared.clone(), control.clone());
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok(mut guard) = s.readable().await else {
                        return;
                    };
                    let n = match guard.try_io(|inner| inner.get_ref().recv(&mut buf)) {
                        Ok(Ok(n)) => n,
                        Ok(Err(_)) => {
                            // ICMP errors on a connected socket; keep going.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        Err(_would_block) => continue,
                    };
                    let now = start.elapsed().as_nanos() as u64;
                    match payload_of(mode, &buf[..n]) {
                        Some(p) if p.len() >= MIN_SIZE && p[12..16] == MAGIC => {
                            shared.received.fetch_add(1, Ordering::Relaxed);
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&p[..8]);
                            let rtt = now.saturating_sub(u64::from_be_bytes(ts)).max(1);
                            let _ = h.borrow_mut().record(rtt);
                        }
                        Some(_) => {}
                        None => {
                            if buf[0] < 4 {
                                let _ = control.send((idx, buf[..n].to_vec()));
                            }
                        }
                    }
                }
            });
        }
        while !shared.stop_receiving.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    });
    drop(local);
    result?;
    Rc::try_unwrap(hist)
        .map(RefCell::into_inner)
        .map_err(|_| "receiver tasks outlived the run".to_string())
}

/// Exchanges through the running receiver: requests go out on the socket, answers come back
/// over the channel.
struct Routed<'a> {
    rx: &'a mpsc::Receiver<(usize, Vec<u8>)>,
}

impl Exchange for Routed<'_> {
    fn exchange(&mut self, sock: &UdpSocket, req: &[u8], tid: TransactionId) -> Option<Vec<u8>> {
        for _ in 0..3 {
            if sock.send(req).is_err() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let deadline = Instant::now() + Duration::from_millis(700);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match self.rx.recv_timeout(left) {
                    Ok((_, m)) if m.len() >= 20 && m[8..20] == tid.0 => return Some(m),
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        None
    }
}

fn credentials(args: &BenchArgs, i: u32) -> Result<Creds, String> {
    let realm = args.realm.clone().unwrap_or_default();
    match (&args.secret, &args.username, &args.password) {
        (Some(secret), _, _) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let expiry = now + args.duration.as_secs() + 3600;
            let (username, password) =
                ternd_proto::auth::rest::credentials(secret, &format!("bench{i}"), expiry, ':');
            Ok(Creds {
                username,
                password,
                realm,
            })
        }
        (None, Some(u), Some(p)) => Ok(Creds {
            username: u.clone(),
            password: p.clone(),
            realm,
        }),
        _ => Err("give --secret, or --username and --password".into()),
    }
}

fn progress(quiet: bool, line: impl FnOnce() -> String) {
    if !quiet {
        eprintln!("{}", line());
    }
}

/// Allocates, then permits or binds towards `peer`.
fn setup(args: &BenchArgs, peer: SocketAddr) -> Result<(Vec<Alloc>, f64, f64), String> {
    let t0 = Instant::now();
    let mut allocating = Duration::ZERO;
    let mut allocs = Vec::with_capacity(args.allocations as usize);
    let mut io = Blocking;
    let mut learned_realm: Option<String> = None;
    if args.mode == Mode::Raw {
        // No TURN: one socket per "allocation", straight to the forwarder.
        for i in 0..args.allocations {
            let sock = socket(args.bind, args.server)?;
            let creds = Creds {
                username: String::new(),
                password: String::new(),
                realm: String::new(),
            };
            allocs.push(Alloc::new(sock, creds, i));
        }
        return Ok((allocs, 0.0, t0.elapsed().as_secs_f64()));
    }
    for i in 0..args.allocations {
        let mut creds = credentials(args, i)?;
        if creds.realm.is_empty()
            && let Some(r) = &learned_realm
        {
            // Same server, same realm; the 401 still brings this allocation its nonce.
            creds.realm = r.clone();
        }
        let sock = socket(args.bind, args.server)?;
        let mut a = Alloc::new(sock, creds, i);
        let t = Instant::now();
        a.allocate(&mut io)
            .map_err(|e| format!("allocation {i}: {e}"))?;
        allocating += t.elapsed();
        learned_realm = Some(a.creds.realm.clone());
        match args.mode {
            Mode::Channel => a.bind_channel(&mut io, CHANNEL, peer),
            Mode::Send | Mode::Raw => a.permit(&mut io, peer),
        }
        .map_err(|e| format!("allocation {i}: {e}"))?;
        allocs.push(a);
    }
    Ok((allocs, allocating.as_secs_f64(), t0.elapsed().as_secs_f64()))
}

fn deallocate(allocs: &mut [Alloc]) -> u32 {
    let mut failures = 0;
    for a in allocs.iter_mut() {
        let _ = a.sock.set_nonblocking(false);
        if a.refresh(&mut Blocking, 0).is_err() {
            failures += 1;
        }
    }
    failures
}

/// Runs one benchmark and returns what it measured. Progress goes to stderr unless
/// `args.quiet`.
pub fn run(args: &BenchArgs) -> Result<Report, String> {
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return Err("the duration must be in (0, 10m]".into());
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&args.size) {
        return Err(format!("--size must be {MIN_SIZE}..={MAX_SIZE}"));
    }
    if args.allocations == 0 || args.allocations > MAX_ALLOCATIONS {
        return Err(format!("--allocations must be 1..={MAX_ALLOCATIONS}"));
    }
    // Thousands of client sockets need as many descriptors.
    let _ = ternd_io::raise_fd_limit();
    // Raw mode talks to a forwarder that sends to a fixed peer: the built-in echo peer then
    // listens on --peer (the forwarder's --peer), so both directions are counted.
    let echo = match (args.peer, args.mode) {
        (Some(at), Mode::Raw) => Some(EchoPeer::start(at)?),
        (None, Mode::Raw) => {
            return Err(
                "--mode raw needs --peer: the address the forwarder sends to, where \
                        the built-in echo peer listens"
                    .into(),
            );
        }
        (Some(_), _) => None,
        (None, _) => Some(EchoPeer::start(SocketAddr::from(([127, 0, 0, 1], 0)))?),
    };
    let peer = args
        .peer
        .or(echo.as_ref().map(|e| e.addr))
        .unwrap_or(args.server);

    let (mut allocs, allocate_s, setup_s) = setup(args, peer)?;
    progress(args.quiet, || {
        format!(
            "setup: {} allocation(s) in {allocate_s:.3} s ({:.0}/s), {} towards {peer} in {setup_s:.3} s",
            allocs.len(),
            f64::from(args.allocations) / allocate_s.max(1e-9),
            match args.mode {
                Mode::Channel => "channels",
                Mode::Send => "permissions",
                Mode::Raw => "plain sockets",
            }
        )
    });

    let scrape = |when: &str| {
        args.metrics.as_ref().map(|url| {
            ServerDrops::scrape(url).map_err(|e| format!("{e} (scraping {when} the run)"))
        })
    };
    let server_before = scrape("before").transpose()?;
    let result = traffic(args, peer, &mut allocs, echo.as_ref());
    // Read before the sockets close: fresh sockets, so the counts are this run's.
    let client_rx_drops = allocs
        .iter()
        .map(|a| ternd_io::socket_rx_drops(&a.sock).map(u64::from))
        .sum::<std::io::Result<u64>>()
        .ok();
    let peer_rx_drops = echo.as_ref().and_then(|e| e.rx_drops());
    let server_drops = match (server_before, scrape("after")) {
        (Some(b), Some(Ok(a))) => Some(a.since(&b)),
        (_, Some(Err(e))) => {
            eprintln!("ternd bench: {e}");
            None
        }
        _ => None,
    };
    let dealloc_failures = if args.mode == Mode::Raw {
        0
    } else {
        deallocate(&mut allocs)
    };
    let (sent, received, send_errors, hist, elapsed, cpu) = result?;
    let peer_received = echo.as_ref().map(|e| e.received.load(Ordering::Relaxed));
    drop(echo);

    let secs = elapsed.max(1e-9);
    let bits = (args.size * 8) as f64;
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let latency = if hist.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: hist.max() as f64 / 1000.0,
            mean: hist.mean() / 1000.0,
        }
    };
    Ok(Report {
        server: args.server.to_string(),
        mode: args.mode,
        allocations: args.allocations,
        size: args.size,
        target_pps: match args.rate {
            Rate::Max => None,
            Rate::Pps(r) => Some(r),
        },
        duration_s: elapsed,
        allocate_s,
        allocations_per_s: if args.mode == Mode::Raw {
            0.0
        } else {
            f64::from(args.allocations) / allocate_s.max(1e-9)
        },
        setup_s,
        sent,
        received,
        peer_received,
        sent_pps: sent as f64 / secs,
        received_pps: received as f64 / secs,
        received_mbps: received as f64 * bits / secs / 1e6,
        sent_mbps: sent as f64 * bits / secs / 1e6,
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * sent.saturating_sub(received) as f64 / sent as f64
        },
        send_errors,
        client_rx_drops,
        peer_rx_drops,
        server_drops,
        latency_us: latency,
        bench_cpu_s: cpu,
        dealloc_failures,
    })
}

type Traffic = (u64, u64, u64, Histogram<u64>, f64, f64);

/// The data phase: sender, receiver, progress, refreshes, drain.
fn traffic(
    args: &BenchArgs,
    peer: SocketAddr,
    allocs: &mut [Alloc],
    echo: Option<&EchoPeer>,
) -> Result<Traffic, String> {
    let mut targets = Vec::with_capacity(allocs.len());
    let mut recv_socks = Vec::with_capacity(allocs.len());
    for a in allocs.iter() {
        a.sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        recv_socks.push(a.sock.clone());
        let (frame, payload_at) = build_frame(args.mode, peer, args.size, a.index);
        if frame.is_empty() {
            return Err("cannot build the data frame".into());
        }
        targets.push(Target {
            sock: a.sock.clone(),
            frame,
            payload_at,
        });
    }
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let rx_shared = shared.clone();
    let mode = args.mode;
    let receiver = std::thread::Builder::new()
        .name("bench-recv".into())
        .spawn(move || receiver(mode, recv_socks, start, rx_shared, ctl_tx))
        .map_err(|e| e.to_string())?;
    let until = start + args.duration;
    let tx_shared = shared.clone();
    let rate = args.rate;
    let sender = std::thread::Builder::new()
        .name("bench-send".into())
        .spawn(move || sender(targets, rate, start, until, &tx_shared))
        .map_err(|e| e.to_string())?;

    let long = args.duration > REFRESH_AFTER && args.mode != Mode::Raw;
    let mut next_refresh = start + REFRESH_EVERY;
    let mut next_report = start + Duration::from_secs(1);
    let (mut last_sent, mut last_recv, mut last_peer) = (0u64, 0u64, 0u64);
    let mut refresh_failures = 0u32;
    while !shared.sending_done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if long && now >= next_refresh {
            next_refresh = now + REFRESH_EVERY;
            let mut io = Routed { rx: &ctl_rx };
            for a in allocs.iter_mut() {
                let ok = a.refresh(&mut io, 600).is_ok()
                    && match args.mode {
                        Mode::Channel => a.bind_channel(&mut io, CHANNEL, peer),
                        Mode::Send | Mode::Raw => a.permit(&mut io, peer),
                    }
                    .is_ok();
                if !ok {
                    refresh_failures += 1;
                }
            }
            progress(args.quiet, || {
                format!(
                    "refreshed {} allocation(s), {refresh_failures} failure(s) so far",
                    allocs.len()
                )
            });
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            let s = shared.sent.load(Ordering::Relaxed);
            let r = shared.received.load(Ordering::Relaxed);
            let p = echo.map_or(0, |e| e.received.load(Ordering::Relaxed));
            let peer_part = match echo {
                Some(_) => format!("  peer {:>7} pps", p - last_peer),
                None => String::new(),
            };
            progress(args.quiet, || {
                format!(
                    "{:>4.0}s  sent {:>7} pps  recv {:>7} pps{peer_part}  loss {:.2} %  cpu {:.2} s",
                    start.elapsed().as_secs_f64(),
                    s - last_sent,
                    r - last_recv,
                    if s == 0 {
                        0.0
                    } else {
                        100.0 * s.saturating_sub(r) as f64 / s as f64
                    },
                    cpu_seconds() - cpu0,
                )
            });
            (last_sent, last_recv, last_peer) = (s, r, p);
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    sender
        .join()
        .map_err(|_| "the sender thread panicked".to_string())?;
    // Drain: until nothing arrived for 300 ms, at most 2 s.
    let drain_until = Instant::now() + Duration::from_secs(2);
    let mut last = shared.received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < drain_until && quiet_since.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(20));
        let r = shared.received.load(Ordering::Relaxed);
        if r != last {
            last = r;
            quiet_since = Instant::now();
        }
    }
    shared.stop_receiving.store(true, Ordering::Relaxed);
    let hist = receiver
        .join()
        .map_err(|_| "the receiver thread panicked".to_string())??;
    let cpu = cpu_seconds() - cpu0;
    Ok((
        shared.sent.load(Ordering::Relaxed),
        shared.received.load(Ordering::Relaxed),
        shared.send_errors.load(Ordering::Relaxed),
        hist,
        send_secs,
        cpu,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_urls_are_plain_http_with_a_default_path() {
        let u = parse_metrics_url("http://127.0.0.1:9641").unwrap();
        assert_eq!(u.addr, SocketAddr::from(([127, 0, 0, 1], 9641)));
        assert_eq!(u.path, "/metrics");
        let u = parse_metrics_url("http://[::1]:80/other/metrics").unwrap();
        assert_eq!(u.addr.port(), 80);
        assert_eq!(u.path, "/other/metrics");
        assert!(parse_metrics_url("https://127.0.0.1:9641/metrics").is_err());
        assert!(parse_metrics_url("127.0.0.1:9641").is_err());
        assert!(parse_metrics_url("http://127.0.0.1:9641/a b").is_err());
    }

    #[test]
    fn server_drops_are_read_from_the_exposition_and_differenced() {
        let text = "\
# HELP ternd_udp_receive_queue_drops_total x
ternd_udp_receive_queue_drops_total{socket=\"listener\"} 5
ternd_udp_receive_queue_drops_total{socket=\"relay\"} 7
ternd_udp_send_errors_total{socket=\"listener\",error=\"would_block\"} 2
ternd_udp_send_errors_total{socket=\"listener\",error=\"other\"} 1
ternd_udp_send_errors_total{socket=\"relay\",error=\"no_buffers\"} 4
ternd_dropped_total{reason=\"malformed\"} 99
";
        let after = ServerDrops::parse(text);
        assert_eq!(
            after,
            ServerDrops {
                listener_rx_queue: 5,
                relay_rx_queue: 7,
                listener_send_errors: 3,
                relay_send_errors: 4,
            }
        );
        let before = ServerDrops {
            listener_rx_queue: 1,
            relay_rx_queue: 7,
            listener_send_errors: 0,
            relay_send_errors: 5,
        };
        assert_eq!(
            after.since(&before),
            ServerDrops {
                listener_rx_queue: 4,
                relay_rx_queue: 0,
                listener_send_errors: 3,
                relay_send_errors: 0,
            }
        );
        assert_eq!(ServerDrops::parse("garbage\n{ 1"), ServerDrops::default());
    }
}

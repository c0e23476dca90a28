//! The command lines of `ternd bench` and `ternd forwarder`, and their value parsers.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::{MAX_ALLOCATIONS, MAX_DURATION, MAX_SIZE, MIN_SIZE};

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
}

//! Parsers and validators for individual configuration values.
//!
//! Everything here returns a [`ValueError`]; callers wrap it in a
//! [`ConfigError`](super::ConfigError) naming the key and the origin.
//! Messages never echo secrets or passwords.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

mod cluster;
mod http;

use super::{ExternalIp, PortRange, ValueError};
pub(crate) use cluster::*;
pub(crate) use http::*;

/// Concurrent connections the HTTP endpoint serves (in all); `http.max_connections_per_ip`
/// is at most this.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

/// The result of parsing or checking one value.
pub(crate) type Result<T> = std::result::Result<T, ValueError>;

/// RFC 8489 §14.9/§14.14: REALM and SOFTWARE hold fewer than 128 characters,
/// which can be as long as 763 bytes.
pub(crate) const MAX_TEXT_BYTES: usize = 763;
/// Characters limit for REALM and SOFTWARE (exclusive upper bound is 128).
pub(crate) const MAX_TEXT_CHARS: usize = 127;
/// RFC 8489 §14.3: USERNAME is fewer than 509 bytes.
pub(crate) const MAX_USERNAME_BYTES: usize = 508;
/// Smallest accepted `max_frame_size` (the IPv4 minimum MTU-ish STUN size).
pub(crate) const MIN_FRAME_SIZE: usize = 548;
/// Largest accepted `max_frame_size`: a 65 535-byte payload plus the 4-byte
/// ChannelData header.
pub(crate) const MAX_FRAME_SIZE: usize = 65_540;
/// Upper bound for `workers`.
pub(crate) const MAX_WORKERS: usize = 1024;

pub(crate) fn malformed(what: &'static str, text: &str, expected: &'static str) -> ValueError {
    ValueError::Malformed {
        what,
        text: text.to_owned(),
        expected,
    }
}

fn address(addr: impl std::fmt::Display, problem: &'static str) -> ValueError {
    ValueError::Address {
        addr: addr.to_string(),
        problem,
    }
}

pub(crate) fn socket_addr(s: &str) -> Result<SocketAddr> {
    s.trim().parse().map_err(|_| {
        malformed(
            "socket address",
            s,
            " (expected IP:PORT, e.g. 0.0.0.0:3478 or [::]:3478)",
        )
    })
}

pub(crate) fn ip_addr(s: &str) -> Result<IpAddr> {
    s.trim().parse().map_err(|_| malformed("IP address", s, ""))
}

/// A concrete unicast address usable as a relay or public address.
fn concrete_ip(s: &str) -> Result<IpAddr> {
    let ip = ip_addr(s)?;
    if ip.is_unspecified() {
        return Err(address(
            ip,
            "is the unspecified address; give a concrete address",
        ));
    }
    if ip.is_multicast() {
        return Err(address(ip, "is a multicast address"));
    }
    Ok(ip)
}

/// `"IPv4"` or `"IPv6"`.
pub(crate) fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

pub(crate) fn relay_ips(items: &[&str]) -> Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(items.len());
    for item in items {
        let ip = concrete_ip(item)?;
        if let Some(prev) = out.iter().find(|p| p.is_ipv4() == ip.is_ipv4()) {
            return Err(ValueError::TwoOfFamily {
                what: "relay",
                family: family(&ip),
                first: prev.to_string(),
                second: ip.to_string(),
            });
        }
        out.push(ip);
    }
    Ok(out)
}

pub(crate) fn external_ip(s: &str) -> Result<ExternalIp> {
    match s.split_once('/') {
        None => Ok(ExternalIp {
            public: concrete_ip(s)?,
            private: None,
        }),
        Some((public, private)) => {
            let public = concrete_ip(public)?;
            let private = concrete_ip(private)?;
            if public.is_ipv4() != private.is_ipv4() {
                return Err(ValueError::MixedFamilies {
                    public: public.to_string(),
                    public_family: family(&public),
                    private: private.to_string(),
                    private_family: family(&private),
                });
            }
            Ok(ExternalIp {
                public,
                private: Some(private),
            })
        }
    }
}

pub(crate) fn external_ips(items: &[&str]) -> Result<Vec<ExternalIp>> {
    let mut out: Vec<ExternalIp> = Vec::with_capacity(items.len());
    for item in items {
        let ext = external_ip(item)?;
        if let Some(prev) = out
            .iter()
            .find(|p| p.public.is_ipv4() == ext.public.is_ipv4())
        {
            return Err(ValueError::TwoOfFamily {
                what: "external",
                family: family(&ext.public),
                first: prev.to_string(),
                second: ext.to_string(),
            });
        }
        out.push(ext);
    }
    Ok(out)
}

/// One peer-list entry: a CIDR, a bare IP (/32 or /128) or a `FIRST-LAST` range
/// (coturn's form), which becomes the fewest CIDRs that cover it exactly.
pub(crate) fn cidr(s: &str) -> Result<Vec<IpNet>> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(vec![net]);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(vec![IpNet::from(ip)]);
    }
    if let Some(range) = super::ip_range::parse_range(t) {
        let (lo, hi) = range?;
        return Ok(super::ip_range::range_to_cidrs(lo, hi));
    }
    Err(malformed(
        "CIDR",
        s,
        " (expected e.g. 10.0.0.0/8, fd00::/8, a bare IP address or a range FIRST-LAST)",
    ))
}

pub(crate) fn cidrs(items: &[&str]) -> Result<Vec<IpNet>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(cidr(item)?);
    }
    Ok(out)
}

pub(crate) fn listen(items: &[&str]) -> Result<Vec<SocketAddr>> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(items.len());
    for item in items {
        let addr = socket_addr(item)?;
        if out.contains(&addr) {
            return Err(ValueError::Duplicate(addr.to_string()));
        }
        out.push(addr);
    }
    if out.is_empty() {
        return Err(ValueError::NoListenAddress);
    }
    Ok(out)
}

/// One TCP/TLS listener address: `IP:PORT`, or `:PORT` for every interface,
/// which stands for both `0.0.0.0:PORT` and `[::]:PORT` (the IPv6 one is
/// skipped at bind time on hosts without IPv6).
fn listener_addrs(s: &str) -> Result<Vec<SocketAddr>> {
    const EXPECTED: &str = " (expected IP:PORT or :PORT, e.g. 0.0.0.0:5349, [::]:5349 or :443)";
    let t = s.trim();
    if let Some(port) = t.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| malformed("socket address", s, EXPECTED))?;
        return Ok(vec![
            SocketAddr::from(([0, 0, 0, 0], port)),
            SocketAddr::from(([0u16; 8], port)),
        ]);
    }
    t.parse()
        .map(|a| vec![a])
        .map_err(|_| malformed("socket address", s, EXPECTED))
}

/// A possibly empty list of listener addresses (`tls_listen`,
/// `proxy_protocol`); `:PORT` expands to both families; no duplicates.
pub(crate) fn listener_list(items: &[&str]) -> Result<Vec<SocketAddr>> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(items.len());
    for item in items {
        for addr in listener_addrs(item)? {
            if out.contains(&addr) {
                return Err(ValueError::Duplicate(addr.to_string()));
            }
            out.push(addr);
        }
    }
    Ok(out)
}

/// Whether a TCP listener on `a` and one on `b` would take the same
/// connections: the same port (not 0, which picks a free one) and the same
/// IP, or an unspecified IP of the other's family.
pub(crate) fn listeners_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// A duration: a humantime string (`"600s"`, `"10m"`, `"1h30m"`) or a bare
/// integer number of seconds. Zero is rejected.
pub(crate) fn duration(s: &str) -> Result<Duration> {
    duration_or_zero(s).and_then(nonzero_duration)
}

/// Like [`duration`], but zero (`"0"`, `"0s"`) is allowed.
pub(crate) fn duration_or_zero(s: &str) -> Result<Duration> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = t
            .parse()
            .map_err(|_| ValueError::DurationTooLarge(s.to_owned()))?;
        Duration::from_secs(secs)
    } else {
        humantime::parse_duration(t).map_err(|e| ValueError::Duration {
            text: s.to_owned(),
            reason: e.to_string(),
        })?
    };
    Ok(d)
}

pub(crate) fn duration_secs(secs: i64) -> Result<Duration> {
    duration_secs_or_zero(secs).and_then(nonzero_duration)
}

/// Like [`duration_secs`], but zero is allowed.
pub(crate) fn duration_secs_or_zero(secs: i64) -> Result<Duration> {
    let secs = u64::try_from(secs).map_err(|_| ValueError::NegativeDuration(secs))?;
    Ok(Duration::from_secs(secs))
}

fn nonzero_duration(d: Duration) -> Result<Duration> {
    if d.is_zero() {
        Err(ValueError::ZeroDuration)
    } else {
        Ok(d)
    }
}

/// A duration counted in whole seconds (the nonce lifetime): at least 1 s, no fraction
/// (which would be dropped: `500ms` would make every nonce stale at once).
pub(crate) fn whole_seconds(s: &str) -> Result<Duration> {
    duration(s).and_then(whole)
}

/// [`duration_secs`] checked like [`whole_seconds`].
pub(crate) fn whole_seconds_secs(secs: i64) -> Result<Duration> {
    duration_secs(secs).and_then(whole)
}

fn whole(d: Duration) -> Result<Duration> {
    if d < Duration::from_secs(1) {
        Err(ValueError::SubSecond("must be"))
    } else if d.subsec_nanos() != 0 {
        Err(ValueError::FractionalSeconds)
    } else {
        Ok(d)
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(crate) fn realm(s: &str) -> Result<String> {
    if s.is_empty() {
        return Err(ValueError::Empty("realm"));
    }
    text_limit(s)?;
    Ok(s.to_owned())
}

/// SOFTWARE text; empty means "off".
pub(crate) fn software(s: &str) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    text_limit(s)?;
    Ok(Some(s.to_owned()))
}

fn text_limit(s: &str) -> Result<()> {
    const _: () = assert!(MAX_TEXT_BYTES == 763 && MAX_TEXT_CHARS == 127);
    if s.len() > MAX_TEXT_BYTES {
        return Err(ValueError::TooLong {
            what: "",
            len: s.len(),
            unit: "bytes",
            limit: "at most 763 bytes, RFC 8489",
        });
    }
    let chars = s.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ValueError::TooLong {
            what: "",
            len: chars,
            unit: "characters",
            limit: "fewer than 128 allowed, RFC 8489",
        });
    }
    Ok(())
}

/// Parses an unsigned integer given as text (CLI / environment).
pub(crate) fn uint<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| ValueError::NotANumber(s.to_owned()))
}

/// Any value of the type is allowed.
pub(crate) fn any<T>(n: T) -> Result<T> {
    Ok(n)
}

fn out_of_range(n: usize, allowed: String) -> ValueError {
    ValueError::OutOfRange {
        value: n as u64,
        allowed,
    }
}

pub(crate) fn workers(n: usize) -> Result<usize> {
    if n > MAX_WORKERS {
        Err(ValueError::TooManyWorkers(n))
    } else {
        Ok(n)
    }
}

/// Default `udp_recv_buffer` / `udp_send_buffer`: 4 MiB (what stock kernels cap at is
/// far less: net.core.rmem_max / wmem_max, 208 KiB by default).
pub use ternd_io::DEFAULT_UDP_BUFFER;
/// Smallest nonzero socket buffer accepted.
pub const MIN_UDP_BUFFER: usize = 4096;
/// Largest socket buffer accepted (setsockopt takes an int; the kernel doubles it).
pub const MAX_UDP_BUFFER: usize = 1 << 30;

/// A UDP socket buffer size in bytes: 0 (the kernel's default) or
/// `MIN_UDP_BUFFER..=MAX_UDP_BUFFER`.
pub(crate) fn udp_buffer(n: usize) -> Result<usize> {
    if n == 0 || (MIN_UDP_BUFFER..=MAX_UDP_BUFFER).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range(
            n,
            format!("0 = the kernel default, or {MIN_UDP_BUFFER}..={MAX_UDP_BUFFER} bytes"),
        ))
    }
}

pub(crate) fn max_frame_size(n: usize) -> Result<usize> {
    if (MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range(
            n,
            format!("{MIN_FRAME_SIZE}..={MAX_FRAME_SIZE} bytes"),
        ))
    }
}

pub(crate) fn max_tcp_connections(n: usize) -> Result<usize> {
    if n == 0 {
        Err(ValueError::Zero { hint: "" })
    } else {
        Ok(n)
    }
}

/// Largest `max_connections_per_ip`.
pub(crate) const MAX_CONNECTIONS_PER_IP: usize = 1_000_000;

pub(crate) fn max_connections_per_ip(n: usize) -> Result<usize> {
    if (1..=MAX_CONNECTIONS_PER_IP).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range(n, format!("1..={MAX_CONNECTIONS_PER_IP}")))
    }
}

/// `http.max_connections_per_ip`: 0 (no per-IP cap) up to every HTTP connection slot.
pub(crate) fn http_max_connections_per_ip(n: usize) -> Result<usize> {
    let max = MAX_HTTP_CONNECTIONS;
    if n <= max {
        Ok(n)
    } else {
        Err(out_of_range(n, format!("0..={max}; 0 = no per-IP cap")))
    }
}

/// Largest `relay.max_permissions_per_allocation`.
pub(crate) const MAX_PERMISSIONS: usize = 65_535;
/// Largest `relay.max_channels_per_allocation`: every channel number of the
/// RFC 5766 range 0x4000-0x7FFF.
pub(crate) const MAX_CHANNELS: usize = 16_384;

pub(crate) fn max_permissions(n: usize) -> Result<usize> {
    if (1..=MAX_PERMISSIONS).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range(n, format!("1..={MAX_PERMISSIONS}")))
    }
}

pub(crate) fn max_channels(n: usize) -> Result<usize> {
    if (1..=MAX_CHANNELS).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range(n, format!("1..={MAX_CHANNELS}")))
    }
}

pub(crate) fn port_range(s: &str) -> Result<PortRange> {
    Ok(s.parse::<PortRange>()?)
}

/// Empty means "off".
pub(crate) fn http_listen(s: &str) -> Result<Option<SocketAddr>> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        socket_addr(s).map(Some)
    }
}

/// The ALTERNATE-SERVER address offered while draining: a concrete
/// `IP:PORT` (no unspecified or multicast IP, no port 0). Empty means none.
pub(crate) fn alternate_server(s: &str) -> Result<Option<SocketAddr>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = s.trim().parse().map_err(|_| {
        malformed(
            "socket address",
            s,
            " (expected IP:PORT, e.g. 203.0.113.8:3478)",
        )
    })?;
    if addr.ip().is_unspecified() {
        return Err(address(
            addr,
            "has the unspecified address; give the address clients should move to",
        ));
    }
    if addr.ip().is_multicast() {
        return Err(address(addr, "is a multicast address"));
    }
    if addr.port() == 0 {
        return Err(address(addr, "has port 0; give the server's real port"));
    }
    Ok(Some(addr))
}

/// The RFC 5780 alternate IP address: a concrete unicast address (no
/// unspecified or multicast IP). Empty means none.
pub(crate) fn alt_ip(s: &str) -> Result<Option<IpAddr>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    concrete_ip(s).map(Some)
}

/// The RFC 5780 alternate port; 0 means none (the primary port + 1).
pub(crate) fn alt_port(n: u16) -> Result<Option<u16>> {
    Ok((n != 0).then_some(n))
}

/// [`alt_port`] given as text (CLI / environment); empty means none too.
pub(crate) fn alt_port_text(s: &str) -> Result<Option<u16>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    uint(s)
        .map_err(|_| malformed("port", s, " (expected 0..=65535; 0 = the primary port + 1)"))
        .and_then(alt_port)
}

/// The RFC 5780 primary address: the first of `listen` with a specific
/// (not unspecified) IP of `alt_ip`'s family.
pub(crate) fn rfc5780_primary(listen: &[SocketAddr], alt_ip: IpAddr) -> Option<SocketAddr> {
    listen
        .iter()
        .copied()
        .find(|a| a.is_ipv4() == alt_ip.is_ipv4() && !a.ip().is_unspecified())
}

/// The burst of the unauthenticated request limit: at least 1.
pub(crate) fn unauth_rate_burst(n: u32) -> Result<u32> {
    if n == 0 {
        Err(ValueError::Zero {
            hint: " (use unauth_rate_limit = 0 to turn the limit off)",
        })
    } else {
        Ok(n)
    }
}

//! What a run measured: the report (table and JSON), latency, the server's drop counters
//! scraped from its metrics endpoint, and the bench's own CPU time.

use std::time::Duration;

use serde::Serialize;

use crate::args::{MetricsUrl, Mode};

/// An empty histogram of nanoseconds: 1 ns to 100 s, 3 significant digits.
pub(crate) fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
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
    pub(crate) fn scrape(url: &MetricsUrl) -> Result<ServerDrops, String> {
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

    pub(crate) fn since(&self, before: &ServerDrops) -> ServerDrops {
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
    /// Time of each Allocate (its 401 round trip included), microseconds.
    pub allocate_latency_us: Latency,
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
  allocate (µs)  p50 {a50:.1}  p99 {a99:.1}  max {amax:.1}  (each: 401 round trip + Allocate)
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
            a50 = self.allocate_latency_us.p50,
            a99 = self.allocate_latency_us.p99,
            amax = self.allocate_latency_us.max,
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
pub(crate) fn cpu_seconds() -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

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

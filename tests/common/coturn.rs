//! coturn's test tools as independent peers: whether they are installed (SKIPPED, or a
//! failure when `TERND_REQUIRE_INTEROP=1`), a `turnutils_peer` echo child, and one
//! `turnutils_uclient` run with its counts. Included with `#[path]` by the interop tests.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether interop tests must run (CI sets `TERND_REQUIRE_INTEROP=1`).
pub fn interop_required() -> bool {
    std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// True when coturn's test tools are there; otherwise says SKIPPED (or fails when interop
/// is required).
pub fn tools_available(test: &str) -> bool {
    let missing: Vec<&str> = ["turnutils_uclient", "turnutils_peer", "timeout"]
        .into_iter()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !interop_required(),
        "{missing:?} required (TERND_REQUIRE_INTEROP=1) but not installed"
    );
    eprintln!(
        "SKIPPED {test}: {missing:?} not installed (apt-get install coturn coreutils) \
         - set TERND_REQUIRE_INTEROP=1 to make this a failure"
    );
    false
}

/// A `turnutils_peer` child, killed and reaped on drop (also when an assert fails).
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `port` and `port + 1` can be bound exclusively on every one of `ips` right now.
fn pair_free(ips: &[IpAddr], port: u16) -> bool {
    ips.iter()
        .all(|&ip| UdpSocket::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port + 1)).is_ok())
}

impl Peer {
    /// Starts `turnutils_peer -L IP...` on loopback addresses `ips` and waits (bounded)
    /// until it echoes on each.
    ///
    /// The peer binds its port P *and* P+1 (RTCP), both with SO_REUSEADDR|SO_REUSEPORT, and
    /// so do ternd's listeners when asked for port 0; the kernel may then hand a listener
    /// started later by a parallel test the peer's port (same user, both reusable), silently
    /// splitting the traffic. So P is taken between the relay range (10000-30000) and
    /// Linux's ephemeral range (from 32768), where no port-0 bind ever lands, with P and P+1
    /// checked free; a peer that exits (port taken meanwhile) is retried on another port.
    pub fn start(ips: &[IpAddr]) -> Peer {
        let probes: Vec<UdpSocket> = ips
            .iter()
            .map(|&ip| {
                let s = UdpSocket::bind((ip, 0)).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                s
            })
            .collect();
        // Distinct candidates for concurrent callers in this process, varied across runs.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let seed = std::process::id() as usize
            ^ SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as usize;
        const LO: usize = 30_001;
        const SPAN: usize = 32_766 - LO; // P+1 stays below 32768
        let mut args: Vec<String> = Vec::new();
        for ip in ips {
            args.extend(["-L".to_owned(), ip.to_string()]);
        }
        for _attempt in 0..20 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = (LO + (seed % SPAN + n * 389) % SPAN) as u16;
            if !pair_free(ips, port) {
                continue;
            }
            let child = Command::new("turnutils_peer")
                .args(&args)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn turnutils_peer");
            let mut peer = Peer { child, port };
            let mut echoed = vec![false; probes.len()];
            for _ in 0..50 {
                if peer.child.try_wait().ok().flatten().is_some() {
                    break; // exited: try another port
                }
                for (probe, ok) in probes.iter().zip(echoed.iter_mut()) {
                    if *ok {
                        continue;
                    }
                    let target = SocketAddr::new(probe.local_addr().unwrap().ip(), port);
                    let _ = probe.send_to(b"ping", target);
                    let mut buf = [0u8; 64];
                    if let Ok((n, from)) = probe.recv_from(&mut buf)
                        && from == target
                        && &buf[..n] == b"ping"
                    {
                        *ok = true;
                    }
                }
                if echoed.iter().all(|&e| e) {
                    return peer;
                }
            }
            // Dropping `peer` kills and reaps it.
        }
        panic!("turnutils_peer did not start (echoing on {ips:?})");
    }

    /// `None` while running, else how it ended (a peer killed by someone else shows here).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// What one `turnutils_uclient` run reported.
pub struct Run {
    pub success: bool,
    pub text: String,
    pub sent: u64,
    pub received: u64,
    pub elapsed: Duration,
}

impl Run {
    /// What a run against ternd must show: success, "Total lost packets 0", the message
    /// counts (`exact`: sent and received both `expected`; else at least `expected` sent and
    /// all received), at least `clients` allocations, and the server relaying at least what
    /// uclient counted. `Err` explains the first failure after `summary`, with the peer's exit
    /// status, the server's counters and uclient's last lines.
    pub fn judge(
        &self,
        summary: &str,
        peer_exit: Option<std::process::ExitStatus>,
        st: &ternd::turn::StatsSnapshot,
        clients: u32,
        expected: u64,
        exact: bool,
    ) -> Result<(), String> {
        let why = if !self.success {
            "turnutils_uclient exited unsuccessfully (or timed out)".to_owned()
        } else if !self.text.contains("Total lost packets 0 ") {
            "packets lost".to_owned()
        } else if exact && (self.sent != expected || self.received != expected) {
            format!("expected tot_send_msgs={expected}, tot_recv_msgs={expected}")
        } else if !exact && (self.sent < expected || self.received < self.sent) {
            format!("expected at least {expected} sent and all received")
        } else if st.allocations_created < u64::from(clients) {
            format!("allocations_created < {clients}")
        } else if st.relayed_out_packets < self.sent || st.relayed_in_packets < self.received {
            "server relayed fewer packets than uclient counted".to_owned()
        } else {
            return Ok(());
        };
        Err(format!(
            "{summary}\n  FAILED: {why}\n  peer exit during run: {peer_exit:?}\n  server {st:?}\n  uclient's last lines:\n{}",
            self.tail()
        ))
    }

    /// The last 20 lines of uclient's output.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Runs `turnutils_uclient` (under `timeout 60`) against `server` with `-m clients -n
/// messages -l length`, the given extra arguments and the server's IP last.
pub fn uclient(
    server: SocketAddr,
    (clients, messages, length): (u32, u32, u32),
    extra: &[&str],
) -> Run {
    let (m, n, l) = (
        clients.to_string(),
        messages.to_string(),
        length.to_string(),
    );
    let port = server.port().to_string();
    let ip = server.ip().to_string();
    let mut args = vec!["60", "turnutils_uclient", "-p", &port];
    args.extend_from_slice(&["-m", &m, "-n", &n, "-l", &l]);
    args.extend_from_slice(extra);
    args.push(&ip);
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run turnutils_uclient");
    let elapsed = started.elapsed();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // The summary line: "N: : start_mclient: tot_send_msgs=1000, tot_recv_msgs=1000".
    let count = |key: &str| -> u64 {
        text.lines()
            .rev()
            .filter(|l| l.contains("start_mclient: tot_send_msgs="))
            .find_map(|l| {
                let rest = &l[l.find(key)? + key.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .unwrap_or(0)
    };
    Run {
        success: out.status.success(),
        sent: count("tot_send_msgs="),
        received: count("tot_recv_msgs="),
        text,
        elapsed,
    }
}

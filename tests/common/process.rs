//! ternd as a child process on loopback (the binary the tests build), for tests whose
//! client counts its own allocations or runs its own runtime: REST secret [`SECRET`],
//! UDP and TCP on one port, optionally TLS and RFC 6062, the HTTP endpoint for metrics.
//! Killed and reaped on drop. Included with `#[path]`; needs `common` (for `http`).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{SECRET, http, metric};

/// A running ternd.
pub struct Ternd {
    child: Child,
    /// The STUN/TURN address, UDP and TCP.
    pub addr: SocketAddr,
    /// The TLS listener, if started with a certificate.
    pub tls: Option<SocketAddr>,
    /// The HTTP endpoint (metrics).
    pub http: SocketAddr,
    /// Its standard error.
    log: std::path::PathBuf,
}

impl Drop for Ternd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// What to start.
#[derive(Default)]
pub struct Setup<'a> {
    /// Relay port range, "LO-HI".
    pub relay_ports: &'a str,
    /// (certificate, key) for a TLS listener.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// RFC 6062 TCP relaying.
    pub tcp_relay: bool,
    /// `--drain-timeout` (a flag given once only); `None` = "0s", stop at once on SIGTERM.
    pub drain_timeout: Option<&'a str>,
    /// More flags.
    pub extra: &'a [&'a str],
    /// It binds no STUN/TURN listener (an API-only cluster node): wait for HTTP only.
    pub http_only: bool,
}

impl Ternd {
    /// Starts ternd and waits (bounded, 10 s) until it answers a Binding over UDP and its
    /// TLS and HTTP listeners accept.
    pub fn start(setup: Setup<'_>) -> Ternd {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ternd"));
        cmd.args(["--listen", &addr.to_string(), "--workers", "1"])
            .args(["--secret", SECRET, "--http-listen", &http_addr.to_string()])
            .args([
                "--relay-ip",
                "127.0.0.1",
                "--relay-ports",
                setup.relay_ports,
            ])
            .args(["--allow-peer", "127.0.0.0/8"])
            .args(["--drain-timeout", setup.drain_timeout.unwrap_or("0s")])
            .args(["--log-level", "warn"]);
        let tls = setup.tls.map(|(cert, key)| {
            let tls: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            cmd.args(["--tls-listen", &tls.to_string()])
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key);
            tls
        });
        if setup.tcp_relay {
            cmd.args(["--tcp-relay", "true"]);
        }
        cmd.args(setup.extra);
        let log = std::env::temp_dir().join(format!(
            "ternd-child-{}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ternd");
        let server = Ternd {
            child,
            addr,
            tls,
            http: http_addr,
            log,
        };
        server.wait_ready(setup.http_only);
        server
    }

    fn wait_ready(&self, http_only: bool) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let req = [
            0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = |a: Option<SocketAddr>| {
            a.is_none_or(|a| TcpStream::connect_timeout(&a, Duration::from_millis(50)).is_ok())
        };
        while Instant::now() < deadline {
            let stun = http_only || {
                let _ = probe.send_to(&req, self.addr);
                probe.recv_from(&mut [0u8; 128]).is_ok()
            };
            if stun && up(self.tls) && up(Some(self.http)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("ternd did not start within 10 s:\n{log}");
    }

    /// Sends SIGTERM: with a nonzero drain timeout and a live allocation, ternd drains
    /// (new Allocates get 300 or 508) instead of stopping.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Waits (bounded by `within`) for the process to exit; its status, or `None` if it
    /// is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// /metrics, the whole text.
    pub fn metrics(&self) -> String {
        http(self.http, "GET", "/metrics", &[]).body
    }

    /// The sum of a metric's samples on /metrics.
    pub fn metric(&self, name: &str) -> f64 {
        metric(&http(self.http, "GET", "/metrics", &[]).body, name, &[])
    }

    /// Waits (bounded by `within`) until `ternd_allocations_active` is `n`; returns the
    /// last value.
    pub fn wait_allocations(&self, n: f64, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            let v = self.metric("ternd_allocations_active");
            if v == n || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

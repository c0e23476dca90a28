//! Debian's coturn `turnserver` as an independent TURN server on loopback, for testing
//! ternd-client against a server nobody here wrote. Included with
//! `#[path = "common/turnserver.rs"] mod turnserver;`; it brings `coturn.rs` (the
//! `TERND_REQUIRE_INTEROP` rule, `turnutils_peer`) and `tls.rs` (temporary directory,
//! self-signed certificate, rustls client) along as [`coturn`] and [`tls`].
//!
//! [`TurnServer::start`] runs `turnserver -n` (no config file) with everything on the
//! command line and everything it writes inside a temporary directory: log (stdout and
//! stderr), pid file, SQLite user database (never /var/lib/turn), certificate. It listens on
//! 127.0.0.1 only: UDP and TCP on one even port P in 61000-61998, TLS (if on) on P+1, no
//! DTLS, no CLI, no RFC 5780 (so no alternate port P+1 for CHANGE-REQUEST either). Relay
//! ports are a 100-port slice of 62000-64999. Both ranges are above Linux's ephemeral range
//! (32768-60999) and ternd's test relay range (10000-32000), so nothing bound to port 0
//! and no ternd test server lands there. coturn binds its listeners with SO_REUSEPORT, so
//! a second turnserver of the same user on the same port starts without complaint and
//! splits the traffic: each pair P, P+1 is therefore claimed first, within the process (a
//! counter) and across processes (a lock file `ternd-turnserver-port-P.lock` in the temp
//! directory holding the claimant's pid, taken over once that process is gone), and then
//! checked free (UDP and TCP, binding without SO_REUSEPORT). A turnserver that exits or logs
//! that it cannot bind its listener (someone else has the port) is killed and started
//! again on another pair. `start` returns once the server answers a STUN
//! Binding (with coturn's SOFTWARE) over UDP, over TCP, and over TLS when on. `Drop` kills
//! the child by PID (SIGKILL) and reaps it, also when a test panics; Ctrl-C reaches it too
//! (same process group). Only a SIGKILLed test binary leaves a turnserver behind.
//!
//! Knobs: [`TurnServerOptions::verbose`] (`--verbose`), and `TERND_TURNSERVER_LOG=1`
//! prints each server's whole log to stderr when it is dropped (shown for failed tests,
//! or with `--nocapture`). `TERND_TURNSERVER=/path/to/turnserver` runs another binary.
//!
//! # What coturn 4.6.1 does (read in its source, `src/server/ns_turn_server.c` at tag
//! 4.6.1, and checked against the Debian binary by `tests/coturn_server.rs`)
//!
//! - **Authentication is RFC 5389 only.** The 401 (and 438) carries NONCE, REALM and
//!   SOFTWARE (plus THIRD-PARTY-AUTHORIZATION with `--oauth`): no PASSWORD-ALGORITHMS, and
//!   the nonce is 16 plain hex digits without RFC 8489's "obMatJos2" security-feature
//!   cookie. A MESSAGE-INTEGRITY must be 20 bytes (HMAC-SHA1 over the MD5 key); a request
//!   without one (MESSAGE-INTEGRITY-SHA256 alone, for instance) gets another 401. USERHASH
//!   is not known: a request with USERHASH instead of USERNAME is 400. So no SHA-256 and
//!   no USERHASH (nor in coturn's source up to 4.17.1).
//! - **Nonces belong to the 5-tuple's session** (each UDP source, each TCP/TLS
//!   connection). The first authenticated request on a session that has no nonce yet (a
//!   client reusing a nonce learned on another connection) gets 438 "Wrong nonce" with a
//!   fresh one. ConnectionBind is the exception: it is checked against the session of the
//!   allocation it names, so the control connection's nonce works on the data connection.
//! - Reason phrases are sent with their NUL padding inside the attribute length ("Try
//!   Alternate\0\0\0", "Bad Request\0"): compare codes, not reasons.
//! - **`--stale-nonce=N`**: a nonce lives N seconds from when it was generated; the first
//!   request checked after that generates a new one and, as it carries the old one, is
//!   answered 438 "Stale nonce" with the new NONCE and REALM. Refreshes do not extend a
//!   nonce. Expiry is checked against a whole-second clock coturn updates once a second,
//!   so a nonce dies between N-1 and N+2 seconds after it was handed out (hence tests use
//!   N >= 2 to tell "expired" from "never valid"). `--stale-nonce` without a
//!   value means 600, `=0` means never; and 600 is also 4.6.1's default without the option
//!   (`turn_params.stale_nonce` starts at `STUN_DEFAULT_NONCE_EXPIRATION_TIME`), so
//!   [`TurnServerOptions::stale_nonce`] `None` means "expires after 600 s", not "never".
//! - **RFC 6062 is on by default** (`--no-tcp-relay` turns it off): an Allocate with
//!   REQUESTED-TRANSPORT 6 over a TCP or TLS control connection gets a TCP relay; Connect
//!   answers with CONNECTION-ID, and a ConnectionBind on a new connection to the same
//!   listener splices it to the peer. REQUESTED-TRANSPORT 6 over UDP is 400 "Wrong
//!   Transport Data". A peer connecting to the relayed address (with a permission) gets a
//!   ConnectionAttempt sent to the client. But a ConnectionBind that meets a stale nonce
//!   loses that connection: it is answered 438 "Stale nonce" and the data connection is
//!   closed, the pending peer connection already dropped
//!   (`turnserver_accept_tcp_client_data_connection` cleans it up whatever the auth check
//!   said), so a retry with the new nonce has nothing to bind to.
//! - **LIFETIME has a floor of 600 s**: `stun_adjust_allocate_lifetime` raises any non-zero
//!   LIFETIME under `STUN_MIN_ALLOCATE_LIFETIME`, which ns_turn_msg_defs.h defines as
//!   `STUN_DEFAULT_ALLOCATE_LIFETIME` (600); `--max-allocate-lifetime` only caps from above.
//!   A client cannot make coturn's allocations short (nor its Refreshes frequent).
//! - **`--alternate-server=IP[:PORT]`** (port 3478 if omitted; repeatable, then handed out
//!   round-robin): every Allocate, before authentication (so the very first, unauthenticated
//!   one), is answered 300 "Try Alternate" with ALTERNATE-SERVER and SOFTWARE only (no
//!   REALM, NONCE or MESSAGE-INTEGRITY); other methods are not redirected (Refresh and
//!   CreatePermission get the usual 401). Only addresses of the client's address family
//!   are used, and none at all if any listed address is the listener the request came in
//!   on (loop protection). It applies to UDP and TCP, and to
//!   TLS and DTLS as well unless `--tls-alternate-server` is given, which then replaces it
//!   for TLS/DTLS (port 5349 if omitted).
#![allow(dead_code)]

#[path = "coturn.rs"]
pub mod coturn;
#[path = "tls.rs"]
pub mod tls;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ternd_client::blocking::{self, Stream, Timing, Transport, Udp};
use ternd_client::stun::{Attribute, Class, Message, Method, TransactionId, attr_type};
use ternd_client::{Credentials, data};

use tls::TempDir;

/// The turnserver binary (`TERND_TURNSERVER` overrides).
fn program() -> String {
    std::env::var("TERND_TURNSERVER").unwrap_or_else(|_| "turnserver".to_owned())
}

/// True if `turnserver` runs; otherwise prints SKIPPED and returns false, or panics when
/// `TERND_REQUIRE_INTEROP=1`.
pub fn turnserver_available(test: &str) -> bool {
    let runs = Command::new(program())
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return true;
    }
    assert!(
        !coturn::interop_required(),
        "{test}: turnserver required (TERND_REQUIRE_INTEROP=1) but not installed \
         (apt-get install coturn)"
    );
    eprintln!(
        "SKIPPED {test}: turnserver not installed (apt-get install coturn) \
         - set TERND_REQUIRE_INTEROP=1 to make this a failure"
    );
    false
}

/// How clients authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// TURN REST credentials: `--use-auth-secret --static-auth-secret=SECRET`.
    Secret(String),
    /// One static long-term user: `--lt-cred-mech --user=USERNAME:PASSWORD` (neither may
    /// contain ':').
    User { username: String, password: String },
    /// No authentication: `--no-auth`.
    None,
}

/// How to start a turnserver. `TurnServerOptions::new(auth)` gives the defaults; set the
/// public fields with struct update syntax.
#[derive(Debug, Clone)]
pub struct TurnServerOptions {
    /// How clients authenticate.
    pub auth: Auth,
    /// `--realm` (default "ternd.test").
    pub realm: String,
    /// A TLS listener on its own port with a fresh self-signed certificate for
    /// "localhost" and 127.0.0.1 (`--tls-listening-port --cert --pkey`); else `--no-tls`.
    pub tls: bool,
    /// `--stale-nonce=N` (seconds; 0 = never). `None` leaves coturn's default: 600 s.
    pub stale_nonce: Option<u32>,
    /// `--alternate-server=IP:PORT`: Allocate over UDP and TCP (and TLS, unless
    /// `tls_alternate_server`) is answered 300 with this ALTERNATE-SERVER.
    pub alternate_server: Option<SocketAddr>,
    /// `--tls-alternate-server=IP:PORT`: the ALTERNATE-SERVER for TLS (and DTLS).
    pub tls_alternate_server: Option<SocketAddr>,
    /// RFC 6062 TCP allocations (default on; off is `--no-tcp-relay`).
    pub tcp_relay: bool,
    /// `--relay-threads` (default 1).
    pub relay_threads: u32,
    /// `--verbose`: requests and allocations in the log.
    pub verbose: bool,
    /// More command-line arguments, added last.
    pub extra_args: Vec<String>,
}

impl TurnServerOptions {
    /// The defaults with `auth`.
    pub fn new(auth: Auth) -> TurnServerOptions {
        TurnServerOptions {
            auth,
            realm: "ternd.test".to_owned(),
            tls: false,
            stale_nonce: None,
            alternate_server: None,
            tls_alternate_server: None,
            tcp_relay: true,
            relay_threads: 1,
            verbose: false,
            extra_args: Vec::new(),
        }
    }

    /// The defaults with REST credentials under `secret`.
    pub fn secret(secret: &str) -> TurnServerOptions {
        Self::new(Auth::Secret(secret.to_owned()))
    }

    /// The defaults with one static user.
    pub fn user(username: &str, password: &str) -> TurnServerOptions {
        Self::new(Auth::User {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Listening ports: P (UDP and TCP) and P+1 (TLS) with P = LISTEN_LO + 2k, k < LISTEN_PAIRS.
const LISTEN_LO: usize = 61_000;
const LISTEN_PAIRS: usize = 500;
/// Relay ports: slice k is RELAY_LO + k * RELAY_SLICE .. + RELAY_SLICE - 1.
const RELAY_LO: usize = 62_000;
const RELAY_SLICE: usize = 100;
const RELAY_SLICES: usize = 30;
/// Ports looked at, and starts tried, before giving up; each start is waited for at most
/// ATTEMPT_WAIT, all of them within START_WAIT.
const CANDIDATES: usize = 64;
const ATTEMPTS: usize = 8;
const ATTEMPT_WAIT: Duration = Duration::from_secs(5);
const START_WAIT: Duration = Duration::from_secs(10);
/// Readiness probes per start (bounded in time by ATTEMPT_WAIT as well).
const POLL_ROUNDS: u32 = 500;
/// Log lines [`TurnServer::log_tail`] returns.
const TAIL_LINES: usize = 40;

/// A running turnserver child, killed and reaped on drop.
pub struct TurnServer {
    child: Child,
    opts: TurnServerOptions,
    port: u16,
    relay_ports: RangeInclusive<u16>,
    cert: Option<PathBuf>,
    log: PathBuf,
    args: Vec<String>,
    started_in: Duration,
    // Last: released and removed after the child is gone.
    claim: PortClaim,
    dir: TempDir,
}

/// A claim on a listening port pair across processes: the lock file exists (holding our
/// pid) while the claim lives.
struct PortClaim(PathBuf);

impl PortClaim {
    /// Claims `port`, unless a live process holds it.
    fn take(port: u16) -> Option<PortClaim> {
        let dir = std::env::temp_dir();
        let lock = dir.join(format!("ternd-turnserver-port-{port}.lock"));
        // Written whole first, then linked into place: the link either creates the lock
        // with our pid in it or fails because it exists.
        let mine = dir.join(format!(
            "ternd-turnserver-port-{port}.{}.claim",
            std::process::id()
        ));
        std::fs::write(&mine, std::process::id().to_string()).ok()?;
        let mut claimed = None;
        for _ in 0..2 {
            match std::fs::hard_link(&mine, &lock) {
                Ok(()) => {
                    claimed = Some(PortClaim(lock));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&lock).ok();
                    let alive = owner
                        .as_deref()
                        .and_then(|s| s.trim().parse::<u32>().ok())
                        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if alive || owner.is_none() {
                        break;
                    }
                    // Left behind by a test process that was killed: take it over.
                    let _ = std::fs::remove_file(&lock);
                }
                Err(_) => break,
            }
        }
        let _ = std::fs::remove_file(&mine);
        claimed
    }
}

impl Drop for PortClaim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `port` can be bound, UDP and TCP, on 127.0.0.1 right now.
fn port_free(port: u16) -> bool {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A number distinct per call in this process, and this process's seed (varied across
/// processes and runs).
fn next_candidate() -> (usize, usize) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SEED: OnceLock<usize> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::process::id() as usize
            ^ SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as usize
    });
    (NEXT.fetch_add(1, Ordering::Relaxed), seed)
}

/// The last `n` lines of the file at `path`.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A Binding over `t`: answered with success, XOR-MAPPED-ADDRESS `mapped` and coturn's
/// SOFTWARE (so not by someone else holding the port).
fn coturn_binding(t: &mut impl Transport, tid: TransactionId, mapped: SocketAddr) -> bool {
    let mut req = [0u8; 64];
    let Ok(n) = data::binding_request(tid, &mut req) else {
        return false;
    };
    let Ok(resp) = blocking::exchange(t, &req[..n], Method::BINDING, tid) else {
        return false;
    };
    let Ok(m) = Message::parse(&resp) else {
        return false;
    };
    m.message_type().class == Class::Success
        && data::mapped_address(&m).ok() == Some(mapped)
        && matches!(
            m.get_decoded(attr_type::SOFTWARE),
            Some(Ok(Attribute::Software(s))) if s.starts_with("Coturn")
        )
}

fn tid(n: u32) -> TransactionId {
    let mut t = *b"turnserver\0\0";
    t[8..].copy_from_slice(&n.to_be_bytes());
    TransactionId(t)
}

impl TurnServer {
    /// Starts a turnserver with `opts` and waits (at most 10 s over all attempts) until it
    /// answers over UDP, TCP and (if on) TLS; panics with its log if it does not.
    pub fn start(opts: TurnServerOptions) -> TurnServer {
        let started = Instant::now();
        let mut last_log = String::from("no free listening port found");
        let mut attempt = 0;
        for _candidate in 0..CANDIDATES {
            if attempt == ATTEMPTS || started.elapsed() >= START_WAIT {
                break;
            }
            let (n, seed) = next_candidate();
            // Distinct pairs for the first LISTEN_PAIRS calls in this process (197 and 500
            // are coprime).
            let port = (LISTEN_LO + 2 * ((seed + n * 197) % LISTEN_PAIRS)) as u16;
            let Some(claim) = PortClaim::take(port) else {
                continue;
            };
            if !port_free(port) || !port_free(port + 1) {
                continue;
            }
            attempt += 1;
            let slice = (seed / 7 + n) % RELAY_SLICES;
            let lo = (RELAY_LO + slice * RELAY_SLICE) as u16;
            let relay_ports = lo..=lo + (RELAY_SLICE as u16 - 1);
            let dir = TempDir::new(&format!("turnserver-{n}"));
            let mut server = Self::spawn(&opts, dir, claim, port, relay_ports);
            let deadline = (Instant::now() + ATTEMPT_WAIT).min(started + START_WAIT);
            match server.wait_ready(deadline) {
                Ok(()) => {
                    server.started_in = started.elapsed();
                    return server;
                }
                Err(why) => {
                    last_log = format!(
                        "attempt {attempt} on port {port}: {why}\n  command: {} {}\n  log:\n{}",
                        program(),
                        server.args.join(" "),
                        server.log_tail()
                    );
                    // Dropping `server` kills it; try another port.
                }
            }
        }
        panic!(
            "turnserver did not start within {:?}; last {last_log}",
            started.elapsed()
        );
    }

    fn spawn(
        opts: &TurnServerOptions,
        dir: TempDir,
        claim: PortClaim,
        port: u16,
        relay_ports: RangeInclusive<u16>,
    ) -> TurnServer {
        let path = |name: &str| dir.0.join(name).display().to_string();
        let mut args: Vec<String> = vec![
            "-n".into(),
            "--no-cli".into(),
            "--log-file=stdout".into(),
            "--simple-log".into(),
            format!("--pidfile={}", path("turnserver.pid")),
            format!("--userdb={}", path("turndb.sqlite")),
            "--listening-ip=127.0.0.1".into(),
            "--relay-ip=127.0.0.1".into(),
            format!("--listening-port={port}"),
            format!("--min-port={}", relay_ports.start()),
            format!("--max-port={}", relay_ports.end()),
            format!("--relay-threads={}", opts.relay_threads),
            "--no-dtls".into(),
            "--no-rfc5780".into(),
            "--allow-loopback-peers".into(),
            // No periodic database polling.
            "--no-auth-pings".into(),
            "--no-dynamic-ip-list".into(),
            "--no-dynamic-realms".into(),
            format!("--realm={}", opts.realm),
        ];
        match &opts.auth {
            Auth::Secret(s) => {
                args.push("--use-auth-secret".into());
                args.push(format!("--static-auth-secret={s}"));
            }
            Auth::User { username, password } => {
                args.push("--lt-cred-mech".into());
                args.push(format!("--user={username}:{password}"));
            }
            Auth::None => args.push("--no-auth".into()),
        }
        let cert = if opts.tls {
            let (key, cert) = tls::self_signed(&dir.0, "turnserver", "localhost");
            args.push(format!("--tls-listening-port={}", port + 1));
            args.push(format!("--cert={}", cert.display()));
            args.push(format!("--pkey={}", key.display()));
            Some(cert)
        } else {
            args.push("--no-tls".into());
            None
        };
        if let Some(n) = opts.stale_nonce {
            args.push(format!("--stale-nonce={n}"));
        }
        if let Some(a) = opts.alternate_server {
            args.push(format!("--alternate-server={a}"));
        }
        if let Some(a) = opts.tls_alternate_server {
            args.push(format!("--tls-alternate-server={a}"));
        }
        if !opts.tcp_relay {
            args.push("--no-tcp-relay".into());
        }
        if opts.verbose {
            args.push("--verbose".into());
        }
        args.extend(opts.extra_args.iter().cloned());
        let log = dir.0.join("turnserver.log");
        let out = File::create(&log).expect("create the turnserver log");
        let err = out.try_clone().expect("clone the log file");
        let child = Command::new(program())
            .args(&args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program()));
        TurnServer {
            child,
            opts: opts.clone(),
            port,
            relay_ports,
            cert,
            log,
            args,
            started_in: Duration::ZERO,
            claim,
            dir,
        }
    }

    /// Polls until the server answers on every listener, it exits, it logs that it cannot
    /// bind, or `deadline`.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let probe_addr = probe.local_addr().unwrap();
        let quick = Timing {
            wait: Duration::from_millis(100),
            attempts: 1,
        };
        let tls_cfg = self.cert.as_deref().map(tls::tls_client);
        let (mut udp_ok, mut tcp_ok, mut tls_ok) = (false, false, tls_cfg.is_none());
        // At most 100 ms per round (the UDP wait) plus 20 ms sleep; the deadline ends it sooner.
        for round in 0..POLL_ROUNDS {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited: {status}"));
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log
                .lines()
                .any(|l| l.contains("Cannot bind") && l.contains("listener"))
            {
                return Err("cannot bind its listener (port taken)".into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not answering (udp {udp_ok}, tcp {tcp_ok}, tls {tls_ok})"
                ));
            }
            if !udp_ok {
                let mut udp = Udp::to(&probe, self.udp_addr()).with_timing(quick);
                udp_ok = coturn_binding(&mut udp, tid(round), probe_addr);
            }
            if udp_ok && !tcp_ok {
                tcp_ok = Self::stream_probe(self.tcp_addr(), |tcp| {
                    let local = tcp.local_addr().ok()?;
                    let mut s = Stream::new(tcp);
                    Some(coturn_binding(&mut s, tid(round), local))
                });
            }
            if udp_ok && tcp_ok && !tls_ok {
                let cfg = tls_cfg.clone().unwrap();
                tls_ok = Self::stream_probe(self.tls_addr(), |tcp| {
                    let local = tcp.local_addr().ok()?;
                    let conn =
                        rustls::ClientConnection::new(cfg, "localhost".try_into().ok()?).ok()?;
                    let mut s = Stream::new(rustls::StreamOwned::new(conn, tcp));
                    Some(coturn_binding(&mut s, tid(round), local))
                });
            }
            if udp_ok && tcp_ok && tls_ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not answering after {POLL_ROUNDS} rounds"))
    }

    /// Connects to `addr` (500 ms) with a 1 s read timeout and runs `f` on the stream.
    fn stream_probe(addr: SocketAddr, f: impl FnOnce(TcpStream) -> Option<bool>) -> bool {
        let Ok(tcp) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        if tcp.set_read_timeout(Some(Duration::from_secs(1))).is_err()
            || tcp.set_write_timeout(Some(Duration::from_secs(1))).is_err()
        {
            return false;
        }
        f(tcp).unwrap_or(false)
    }

    /// Its UDP listener, 127.0.0.1:P.
    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its TCP listener: the same port as UDP.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.udp_addr()
    }

    /// Its TLS listener, 127.0.0.1:P+1. Panics if started without `tls`.
    pub fn tls_addr(&self) -> SocketAddr {
        assert!(self.opts.tls, "turnserver started without tls");
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port + 1))
    }

    /// The PEM of its self-signed certificate (trust it with [`tls::tls_client`]). Panics
    /// if started without `tls`.
    pub fn cert_path(&self) -> &Path {
        self.cert
            .as_deref()
            .expect("turnserver started without tls")
    }

    /// A rustls client configuration that trusts its certificate.
    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        tls::tls_client(self.cert_path())
    }

    /// Its realm.
    pub fn realm(&self) -> &str {
        &self.opts.realm
    }

    /// The options it was started with.
    pub fn options(&self) -> &TurnServerOptions {
        &self.opts
    }

    /// Its relay port range (`--min-port..=--max-port`).
    pub fn relay_ports(&self) -> RangeInclusive<u16> {
        self.relay_ports.clone()
    }

    /// Credentials it accepts: the static user's, or REST credentials for `user` valid for
    /// an hour (`:` separator). With `Auth::None`, any.
    pub fn credentials(&self, user: &str) -> Credentials {
        match &self.opts.auth {
            Auth::Secret(secret) => {
                let expiry = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 3600;
                Credentials::rest(secret, user, expiry, ':')
            }
            Auth::User { username, password } => Credentials::new(username, password),
            Auth::None => Credentials::new(user, "none"),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long `start` took (all attempts).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Its log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log, for assert messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, TAIL_LINES)
    }

    /// `None` while it runs, else how it ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var("TERND_TURNSERVER_LOG").is_ok_and(|v| v == "1") {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "---- turnserver pid {} on {} ({}) ----\n{log}---- end ----",
                self.child.id(),
                self.udp_addr(),
                self.args.join(" ")
            );
        }
        // `dir` is removed when the fields drop, after the child is gone.
    }
}

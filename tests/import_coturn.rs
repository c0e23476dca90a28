//! `ternd import-coturn`: three coturn configurations as operators write them, each
//! translated by the real binary, checked with `ternd --check-config`, then served by
//! ternd on loopback and relayed through with coturn's own `turnutils_uclient` (0 loss);
//! the peer lists keep coturn's "allowed beats denied"; bad input is reported, bounded.
//!
//! The relaying parts print `SKIPPED …` and pass when coturn's tools are missing, unless
//! `TERND_REQUIRE_INTEROP=1`.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ternd::config::Config;
use ternd::policy::PeerPolicy;

#[path = "common/coturn.rs"]
mod coturn;
#[path = "common/tls.rs"]
mod tls;
#[path = "common/tools.rs"]
mod tools;
use tls::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ternd");

/// A loopback port free for both UDP and TCP right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// What one `ternd import-coturn` run gave.
struct Imported {
    status: std::process::ExitStatus,
    toml: String,
    stderr: String,
    /// The translation, written next to the coturn file.
    path: PathBuf,
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ternd")
}

/// Writes `conf` to DIR/turnserver.conf and imports it.
fn import(dir: &Path, conf: &str) -> Imported {
    let file = dir.join("turnserver.conf");
    std::fs::write(&file, conf).unwrap();
    let out = run(&["import-coturn".as_ref(), file.as_os_str()]);
    let toml = String::from_utf8(out.stdout).expect("UTF-8 output");
    let path = dir.join("ternd.toml");
    std::fs::write(&path, &toml).unwrap();
    Imported {
        status: out.status,
        toml,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
    }
}

impl Imported {
    /// Exit 0, and `ternd --config OUT --check-config` accepts the output.
    #[track_caller]
    fn assert_valid(&self) {
        assert!(self.status.success(), "{}\n{}", self.stderr, self.toml);
        let out = run(&[
            "--config".as_ref(),
            self.path.as_os_str(),
            "--check-config".as_ref(),
        ]);
        assert!(
            out.status.success(),
            "--check-config refused the translation: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.toml
        );
    }

    /// The option of `line` is reported as not translated, on stderr and in the output,
    /// with `why` in the reason.
    #[track_caller]
    fn assert_skipped(&self, conf: &str, option_line: &str, why: &str) {
        let no = line_of(conf, option_line);
        let name = option_line.split(['=', ' ']).next().unwrap();
        let want = format!("line {no}: {name}: ");
        let find = |text: &str| text.lines().find(|l| l.contains(&want)).map(str::to_owned);
        let on_stderr = find(&self.stderr)
            .unwrap_or_else(|| panic!("`{want}` not on stderr:\n{}", self.stderr));
        assert!(on_stderr.contains(why), "{on_stderr} lacks `{why}`");
        let in_toml = find(&self.toml)
            .unwrap_or_else(|| panic!("`{want}` not in the output:\n{}", self.toml));
        assert!(in_toml.trim_start().starts_with('#'), "{in_toml}");
    }

    fn config(&self) -> Config {
        Config::from_toml_str(&self.toml, "translation").unwrap()
    }
}

/// The 1-based line of `conf` that is `line`.
#[track_caller]
fn line_of(conf: &str, line: &str) -> usize {
    conf.lines()
        .position(|l| l.trim() == line)
        .unwrap_or_else(|| panic!("no line `{line}`"))
        + 1
}

/// ternd serving a translated configuration, killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `ternd --config FILE` (plus `extra`) and waits until `udp` answers a
    /// Binding and `tcp` (if any) accepts.
    fn start(config: &Path, udp: SocketAddr, tcp: Option<SocketAddr>, extra: &[&str]) -> Server {
        let log = config.with_extension("log");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--workers", "1", "--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ternd");
        let server = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let stun = tools::answers_binding(udp, Duration::from_millis(50));
            let tcp_up = tcp
                .is_none_or(|a| TcpStream::connect_timeout(&a, Duration::from_millis(50)).is_ok());
            if stun && tcp_up {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "ternd did not start within 10 s:\n{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// turnutils_uclient client to client (`-y`: relay to relay) with `args`: 5 clients x
/// 50 messages of 200 bytes (at least: `-y` counts its pairs' traffic), all relayed,
/// nothing lost.
#[track_caller]
fn relay_without_loss(server: &Server, addr: SocketAddr, args: &[&str]) {
    let r = coturn::uclient(addr, (5, 50, 200), args);
    assert!(
        r.success
            && r.text.contains("Total lost packets 0 ")
            && r.sent >= 250
            && r.received == r.sent,
        "uclient {args:?} against {addr}: sent {}, received {}\n{}\nternd's log:\n{}",
        r.sent,
        r.received,
        r.tail(),
        server.log()
    );
}

/// (a) The minimal REST deployment coturn's docs describe.
#[test]
fn minimal_rest_config() {
    let dir = TempDir::new("import-rest");
    let port = free_port();
    let conf = format!(
        "# coturn for our WebRTC app: REST credentials from the backend\n\
         listening-ip=127.0.0.1\n\
         listening-port={port}\n\
         min-port=12000\n\
         max-port=12999\n\
         fingerprint\n\
         use-auth-secret\n\
         static-auth-secret=northwind\n\
         realm=turn.example.org\n\
         rfc5766-channel-numbers\n\
         no-cli\n\
         no-tlsv1\n\
         log-file=/var/log/turnserver.log\n\
         simple-log\n\
         pidfile=\"/var/run/turnserver.pid\"\n\
         dtls-listening-port=5350\n"
    );
    let imp = import(&dir.0, &conf);
    imp.assert_valid();
    imp.assert_skipped(&conf, "log-file=/var/log/turnserver.log", "stderr");
    imp.assert_skipped(
        &conf,
        "pidfile=\"/var/run/turnserver.pid\"",
        "service manager",
    );
    imp.assert_skipped(&conf, "dtls-listening-port=5350", "ternd has no DTLS");
    assert!(
        imp.stderr
            .contains("static-auth-secret: the secret is copied"),
        "{}",
        imp.stderr
    );
    let c = imp.config();
    assert_eq!(c.listen, vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    assert_eq!(c.auth.secrets, ["northwind"]);
    assert_eq!(c.realm, "turn.example.org");
    assert_eq!((c.relay.ports.lo, c.relay.ports.hi), (12000, 12999));
    assert!(c.relay.rfc5766_channel_numbers);
    assert!(imp.toml.contains("auth.secret_file"), "{}", imp.toml);

    if !coturn::tools_available("minimal_rest_config (relaying)") {
        return;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&imp.path, addr, Some(addr), &["--http-listen", &http]);
    relay_without_loss(&server, addr, &["-y", "-W", "northwind", "-u", "bob"]);
}

/// (b) Static users (a password and a `turnadmin -k` key), TLS, quotas, Prometheus.
#[test]
fn static_users_tls_and_quotas() {
    let dir = TempDir::new("import-users");
    let (key, cert) = tls::self_signed(&dir.0, "turn", "localhost");
    let (port, tls_port, prom) = (free_port(), free_port(), free_port());
    let carol_key: String = ternd::auth::long_term_key_md5("carol", "example.org", "c4rol")
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let conf = format!(
        "listening-ip=127.0.0.1\n\
         listening-port={port}\n\
         tls-listening-port={tls_port}\n\
         min-port 13000\n\
         max-port 13999\n\
         lt-cred-mech\n\
         realm=example.org\n\
         user=alice:wonderland\n\
         user=carol:0x{carol_key}\n\
         user-quota=25\n\
         total-quota=100\n\
         max-bps=1000000\n\
         stale-nonce=300\n\
         cert={cert}\n\
         pkey={key}\n\
         cipher-list=\"ECDHE-RSA-AES256-GCM-SHA384\"\n\
         dh-file=/etc/ssl/dhparam.pem\n\
         prometheus\n\
         prometheus-address=127.0.0.1\n\
         prometheus-port={prom}\n\
         rfc5766-channel-numbers\n\
         verbose\n\
         web-admin\n\
         cli-password=qwerty\n",
        cert = cert.display(),
        key = key.display(),
    );
    let imp = import(&dir.0, &conf);
    imp.assert_valid();
    imp.assert_skipped(
        &conf,
        "cipher-list=\"ECDHE-RSA-AES256-GCM-SHA384\"",
        "rustls",
    );
    imp.assert_skipped(&conf, "web-admin", "admin API");
    imp.assert_skipped(&conf, "cli-password=qwerty", "telnet CLI");
    let c = imp.config();
    assert_eq!(c.auth.users.len(), 2);
    assert!(matches!(
        &c.auth.users[1].credential,
        ternd::config::UserCredential::Md5Key(k) if k.iter().map(|b| format!("{b:02x}")).collect::<String>() == carol_key
    ));
    assert_eq!(c.relay.limits.user_quota, 25);
    assert_eq!(c.relay.limits.total_quota, 100);
    assert_eq!(c.relay.limits.max_bps, 1_000_000);
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(300));
    assert_eq!(
        c.tls_listen,
        vec![SocketAddr::from(([127, 0, 0, 1], tls_port))]
    );
    assert_eq!(
        c.http.listen,
        Some(SocketAddr::from(([127, 0, 0, 1], prom)))
    );
    assert_eq!(c.log.level, "debug");

    if !coturn::tools_available("static_users_tls_and_quotas (relaying)") {
        return;
    }
    let (addr, tls_addr) = (
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from(([127, 0, 0, 1], tls_port)),
    );
    let server = Server::start(&imp.path, addr, Some(tls_addr), &[]);
    relay_without_loss(&server, addr, &["-y", "-u", "alice", "-w", "wonderland"]);
    relay_without_loss(&server, addr, &["-y", "-u", "carol", "-w", "c4rol"]);
    relay_without_loss(
        &server,
        tls_addr,
        &["-t", "-S", "-y", "-u", "alice", "-w", "wonderland"],
    );
    let metrics = http_get(SocketAddr::from(([127, 0, 0, 1], prom)), "/metrics");
    assert!(
        metrics.contains("ternd_allocations_created_total"),
        "{metrics}"
    );
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// (c) Behind 1:1 NAT, with peer lists whose allowed address sits inside a denied range.
#[test]
fn nat_and_peer_lists() {
    let dir = TempDir::new("import-nat");
    let port = free_port();
    let conf = format!(
        "listening-ip=127.0.0.1\n\
         listening-port={port}\n\
         relay-ip=127.0.0.1\n\
         external-ip=127.0.0.2/127.0.0.1\n\
         min-port=14000\n\
         max-port=14999\n\
         use-auth-secret\n\
         static-auth-secret=s3cret\n\
         realm=nat.example.org\n\
         denied-peer-ip=10.0.0.0-10.255.255.255\n\
         denied-peer-ip=172.16.0.0-172.31.255.255\n\
         denied-peer-ip=192.168.0.0-192.168.255.255\n\
         allowed-peer-ip=10.0.1.5\n\
         allowed-peer-ip=192.168.7.0-192.168.7.255\n\
         denied-peer-ip=10.9.9.9-10.9.9.1\n\
         denied-peer-ip=10.0.0.1-fd00::1\n\
         no-multicast-peers\n\
         rfc5766-channel-numbers\n\
         relay-device=eth1\n\
         no-udp-relay\n"
    );
    let imp = import(&dir.0, &conf);
    imp.assert_valid();
    imp.assert_skipped(
        &conf,
        "denied-peer-ip=10.9.9.9-10.9.9.1",
        "starts after it ends",
    );
    imp.assert_skipped(
        &conf,
        "denied-peer-ip=10.0.0.1-fd00::1",
        "mixes IPv4 and IPv6",
    );
    imp.assert_skipped(&conf, "relay-device=eth1", "network device");
    imp.assert_skipped(&conf, "no-udp-relay", "always relays UDP");
    let c = imp.config();
    assert_eq!(c.relay.external_ips[0].to_string(), "127.0.0.2/127.0.0.1");
    let policy = PeerPolicy::new(
        c.relay.allow_peer.clone(),
        c.relay.deny_peer.clone(),
        Vec::new(),
    );
    let ok = |ip: &str| policy.check_ip(ip.parse().unwrap()).is_ok();
    assert!(
        ok("10.0.1.5"),
        "allowed-peer-ip beats denied-peer-ip, as in coturn"
    );
    assert!(!ok("10.0.1.6") && !ok("10.0.1.4") && !ok("10.200.1.1"));
    assert!(ok("192.168.7.1") && ok("192.168.7.255") && !ok("192.168.8.1"));
    assert!(!ok("172.20.0.1"));
    assert!(ok("8.8.8.8"));
    assert!(
        imp.stderr
            .contains("deny_peer holds the denied ranges without the allowed addresses")
    );

    if !coturn::tools_available("nat_and_peer_lists (relaying)") {
        return;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let http = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&imp.path, addr, Some(addr), &["--http-listen", &http]);
    relay_without_loss(&server, addr, &["-y", "-W", "s3cret", "-u", "bob"]);
}

/// A file that cannot be read: exit 2 with the reason; nothing on stdout.
#[test]
fn unreadable_files_fail() {
    let dir = TempDir::new("import-unreadable");
    for path in [dir.0.join("missing.conf"), dir.0.clone()] {
        let out = run(&["import-coturn".as_ref(), path.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{path:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("ternd import-coturn: cannot read"), "{err}");
        assert!(out.stdout.is_empty());
    }
    let big = dir.0.join("big.conf");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    let out = run(&["import-coturn".as_ref(), big.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 1048576 bytes"));
}

/// Garbage, options without values and binary junk are reported, and what remains is
/// still a working configuration.
#[test]
fn garbage_is_reported_not_fatal() {
    let dir = TempDir::new("import-garbage");
    let conf = "listening-port\nrealm=\n\u{1b}[31mred=1\n=oops\nmin-port=lots\n\
                use-auth-secret=maybe\nuser=nocolon\nuser=bad:0x1234\n\
                external-ip=turn.example.org\n\x00\x01\x02\nverbose\n";
    let imp = import(&dir.0, conf);
    imp.assert_valid();
    imp.assert_skipped(conf, "listening-port", "has no value");
    imp.assert_skipped(conf, "realm=", "has no value");
    assert!(
        imp.stderr
            .contains("line 3: \\u{1b}[31mred: not a coturn option"),
        "{}",
        imp.stderr
    );
    imp.assert_skipped(conf, "min-port=lots", "not a number");
    imp.assert_skipped(conf, "use-auth-secret=maybe", "not a boolean");
    imp.assert_skipped(conf, "user=nocolon", "NAME:PASSWORD");
    imp.assert_skipped(conf, "user=bad:0x1234", "32 hexadecimal digits");
    imp.assert_skipped(conf, "external-ip=turn.example.org", "no host names");
    assert!(
        imp.stderr
            .contains("line 4: (no name): not a coturn option"),
        "{}",
        imp.stderr
    );
    assert!(
        imp.stderr
            .contains("line 10: \\0\\u{1}\\u{2}: not a coturn option"),
        "{}",
        imp.stderr
    );
}

/// A big file of junk: the report is bounded, the run quick.
#[test]
fn huge_files_are_bounded() {
    let dir = TempDir::new("import-huge");
    let mut conf = String::new();
    while conf.len() < 1_000_000 {
        conf.push_str(
            "junk-option=1\ndenied-peer-ip=::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe\n",
        );
    }
    let started = Instant::now();
    let imp = import(&dir.0, &conf);
    imp.assert_valid();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        imp.stderr.lines().count() < 250,
        "{} lines",
        imp.stderr.lines().count()
    );
    assert!(imp.stderr.contains("... and "), "{}", &imp.stderr[..500]);
    assert!(imp.toml.len() < 200_000, "{} bytes", imp.toml.len());
}

/// ternd's own peer lists take ranges on the command line too; bad ones are errors.
#[test]
fn ternd_takes_ranges_itself() {
    let ok = run(&[
        "--deny-peer".as_ref(),
        "10.0.0.0-10.0.0.255".as_ref(),
        "--check-config".as_ref(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(&[
        "--allow-peer".as_ref(),
        "10.0.0.9-10.0.0.1".as_ref(),
        "--check-config".as_ref(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("`--allow-peer`") && err.contains("starts after it ends"),
        "{err}"
    );
}

/// coturn's names where ternd's are expected get ternd's: flags (instead of clap's
/// spelling-based tip), file keys, and environment variables (a warning, not an error).
#[test]
fn coturn_names_get_ternd_names() {
    let out = run(&["--min-port".as_ref(), "40000".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "ternd: unknown flag `--min-port`: `min-port` is coturn's name; ternd's is \
         `[relay] ports` (--relay-ports LO-HI, TERND_RELAY_PORTS); `ternd import-coturn \
         turnserver.conf` translates a whole coturn configuration"
    );
    assert!(!err.contains("--alt-port"), "{err}");
    for (flag, want) in [
        (
            "--static-auth-secret=x",
            "ternd's is `[auth] secrets` (--secret SECRET",
        ),
        (
            "--listening-port",
            "ternd's is top-level `listen` (--listen ADDR, TERND_LISTEN)",
        ),
        (
            "--denied-peer-ip",
            "ternd's is `[relay] deny_peer` (--deny-peer CIDR",
        ),
        (
            "--dtls",
            "a coturn option; ternd has no equivalent: ternd has no DTLS",
        ),
        (
            "--no-cli",
            "a coturn option; nothing to set: ternd has no telnet CLI",
        ),
    ] {
        let out = run(&[flag.as_ref()]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{flag}: {err}");
    }
    // Other unknown flags keep clap's message.
    let out = run(&["--lisen".as_ref(), "127.0.0.1:1".as_ref()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a similar argument exists: '--listen'"));

    let dir = TempDir::new("import-hints");
    let file = dir.0.join("t.toml");
    for (text, want) in [
        (
            "user-quota = 5\n",
            "unknown key `user-quota`: `user-quota` is coturn's name; ternd's is `[relay] \
             user_quota` (--user-quota N, TERND_USER_QUOTA)",
        ),
        (
            "user_quota = 5\n",
            "unknown key `user_quota`: did you mean `[relay] user_quota`?",
        ),
        (
            "[relay]\nrealm = \"x\"\n",
            "did you mean top-level `realm` (before any [section])?",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = run(&["-c".as_ref(), file.as_os_str(), "--check-config".as_ref()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text}: {err}");
    }

    let out = Command::new(BIN)
        .arg("--check-config")
        .env("TERND_USER_QOTA", "5")
        .env("TERND_DENIED_PEER_IP", "10.0.0.1")
        .output()
        .unwrap();
    assert!(out.status.success(), "unknown variables only warn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "ternd: warning: unknown environment variable TERND_USER_QOTA (ignored): did you \
             mean TERND_USER_QUOTA?"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "ternd: warning: unknown environment variable TERND_DENIED_PEER_IP (ignored): \
             `denied-peer-ip` is coturn's name; ternd's is `[relay] deny_peer`"
        ),
        "{err}"
    );
}

//! The operator's first hour: each way ternd used to start and then fail without a word
//! now fails loudly at start, or warns with the setting to change. Every test runs the
//! real binary and reads what it says.

mod common;
#[path = "common/process.rs"]
mod process;
#[path = "common/tools.rs"]
mod tools;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process::free_port;

/// A ternd child whose stderr goes to a file the test reads.
struct Run {
    child: Child,
    log: std::path::PathBuf,
}

impl Run {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Run {
        let log = std::env::temp_dir().join(format!(
            "ternd-first-hour-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_ternd"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ternd");
        Run { child, log }
    }

    fn said(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits (bounded) until the log has `text`.
    fn wait_for(&self, text: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.said().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The exit status within `within`, or `None` (still running).
    fn exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs ternd with `args`; it must exit non-zero within 5 s, saying `expected`.
fn refuses(args: &[&str], env: &[(&str, &str)], expected: &str) -> String {
    let mut run = Run::start(args, env);
    let status = run.exit(Duration::from_secs(5));
    let said = run.said();
    assert!(
        status.is_some_and(|s| !s.success()),
        "ternd {args:?} should refuse to start ({status:?}): {said}"
    );
    assert!(said.contains(expected), "ternd {args:?} said: {said}");
    let line = said
        .lines()
        .find(|l| l.contains(expected))
        .unwrap_or_default()
        .to_owned();
    eprintln!("{line}");
    line
}

fn listen() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn a_relay_address_this_host_does_not_have_is_refused_at_start() {
    // The README's NAT example used to start, log "relaying IPv4 bind=10.0.0.7", then
    // answer every Allocate with 508 and log nothing. 198.51.100.7 (TEST-NET-2) is on
    // no interface here.
    let l = listen();
    let base = [
        "--listen",
        &l,
        "--secret",
        "first-hour",
        "--http-listen",
        "",
    ];
    let mut args = base.to_vec();
    args.extend(["--relay-ip", "198.51.100.7"]);
    refuses(
        &args,
        &[],
        "ternd: cannot relay from 198.51.100.7 (--relay-ip): Cannot assign requested address",
    );
    let mut args = base.to_vec();
    args.extend(["--external-ip", "203.0.113.7/198.51.100.7"]);
    refuses(
        &args,
        &[],
        "cannot relay from 198.51.100.7 (the private side of --external-ip PUBLIC/PRIVATE)",
    );
    refuses(
        &[
            "--listen",
            "198.51.100.7:3478",
            "--secret",
            "first-hour",
            "--http-listen",
            "",
        ],
        &[],
        "198.51.100.7:3478",
    );
}

#[test]
fn an_empty_secret_is_refused_instead_of_replaced_by_a_random_one() {
    let l = listen();
    let expected = "is empty (an unset shell variable?): a secret cannot be empty";
    let line = refuses(
        &["--listen", &l, "--secret", "", "--http-listen", ""],
        &[],
        expected,
    );
    assert!(line.contains("command line: `--secret`"), "{line}");
    let line = refuses(
        &["--listen", &l, "--http-listen", ""],
        &[("TERND_SECRET", "")],
        expected,
    );
    assert!(
        line.contains("environment (TERND_SECRET): `--secret`"),
        "{line}"
    );
}

#[test]
fn a_second_ternd_on_the_same_port_is_refused() {
    let l = listen();
    let args = [
        "--listen",
        &l,
        "--secret",
        "first-hour",
        "--http-listen",
        "",
        "--relay-ip",
        "127.0.0.1",
    ];
    let first = Run::start(&args, &[]);
    assert!(
        first.wait_for("listening", Duration::from_secs(10)),
        "{}",
        first.said()
    );
    let line = refuses(&args, &[], "already serves udp");
    assert!(
        line.contains(&format!(
            "another ternd (pid {}) already serves udp {l}",
            first.child.id()
        )),
        "{line}"
    );
    assert!(line.contains("split its clients between them"), "{line}");
}

#[test]
fn the_credentials_endpoint_names_a_reachable_host_or_says_which_flag_to_set() {
    let key = "0123456789abcdef0123456789abcdef";
    let port = free_port();
    let http = format!("127.0.0.1:{}", free_port());
    // On 0.0.0.0 with no --http-public-host: the host's relay address, said at start.
    let wildcard = format!("0.0.0.0:{port}");
    let run = Run::start(
        &[
            "--listen",
            &wildcard,
            "--secret",
            "first-hour",
            "--http-listen",
            &http,
            "--token-hs256-secret",
            key,
        ],
        &[],
    );
    assert!(
        run.wait_for("the credentials endpoint names", Duration::from_secs(10)),
        "{}",
        run.said()
    );
    let said = run.said();
    let line = said
        .lines()
        .find(|l| l.contains("the credentials endpoint names"))
        .unwrap();
    eprintln!("{line}");
    assert!(
        line.contains("(the relay's address); set --http-public-host"),
        "{line}"
    );
    let token = common::hs256_token("alice", key);
    let r = common::http(
        http.parse().unwrap(),
        "POST",
        "/v1/ice-servers",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains("turn:127.0.0.1"),
        "loopback URLs handed out: {}",
        r.body
    );
    drop(run);
    // Relaying from loopback while listening everywhere: a warning with the flag.
    let http = format!("127.0.0.1:{}", free_port());
    let run = Run::start(
        &[
            "--listen",
            &wildcard,
            "--secret",
            "first-hour",
            "--http-listen",
            &http,
            "--token-hs256-secret",
            key,
            "--relay-ip",
            "127.0.0.1",
        ],
        &[],
    );
    assert!(
        run.wait_for("clients elsewhere cannot use them", Duration::from_secs(10)),
        "{}",
        run.said()
    );
    let said = run.said();
    let line = said
        .lines()
        .find(|l| l.contains("clients elsewhere"))
        .unwrap();
    eprintln!("{line}");
    assert!(
        line.contains("Set --http-public-host (http.public_hosts)"),
        "{line}"
    );
}

#[test]
fn sighup_names_the_settings_that_need_a_restart() {
    let dir = std::env::temp_dir().join(format!("ternd-first-hour-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ternd.toml");
    let l = listen();
    let write = |listen: &str, workers: u32, quota: u32| {
        std::fs::write(
            &file,
            format!(
                "listen = [\"{listen}\"]\nworkers = {workers}\n[relay]\nrelay_ips = [\"127.0.0.1\"]\n\
                 user_quota = {quota}\n[auth]\nsecrets = [\"first-hour\"]\n[http]\nlisten = \"\"\n"
            ),
        )
        .unwrap();
    };
    write(&l, 1, 10);
    let run = Run::start(&["-c", file.to_str().unwrap()], &[]);
    assert!(
        run.wait_for("listening", Duration::from_secs(10)),
        "{}",
        run.said()
    );
    // A quota change alone reloads without a word about restarts.
    write(&l, 1, 20);
    run.signal("-HUP");
    assert!(run.wait_for(
        "SIGHUP: secrets, users and peer policy reloaded",
        Duration::from_secs(5)
    ));
    assert!(!run.said().contains("need a restart"), "{}", run.said());
    // Listen and workers cannot change without one: said, named.
    write(&format!("127.0.0.1:{}", free_port()), 2, 20);
    run.signal("-HUP");
    assert!(
        run.wait_for("need a restart", Duration::from_secs(5)),
        "{}",
        run.said()
    );
    let said = run.said();
    let line = said.lines().find(|l| l.contains("need a restart")).unwrap();
    eprintln!("{line}");
    assert!(
        line.contains("SIGHUP: changed settings that need a restart keep their running values: listen, workers"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A ternd on a free loopback port with `extra` flags, and its UDP address.
fn server(extra: &[&str]) -> (Run, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let l = addr.to_string();
    let mut args = vec![
        "--listen",
        &l,
        "--secret",
        common::SECRET,
        "--http-listen",
        "",
        "--relay-ip",
        "127.0.0.1",
        "--workers",
        "1",
        "--drain-timeout",
        "0s",
    ];
    if extra.contains(&"--http-listen") {
        // The caller's HTTP endpoint instead of none.
        let at = args.iter().position(|a| *a == "--http-listen").unwrap();
        args.drain(at..at + 2);
    }
    args.extend_from_slice(extra);
    let run = Run::start(&args, &[]);
    // Ready when it answers a Binding (its log may go elsewhere).
    assert!(
        tools::answers_binding(addr, Duration::from_secs(10)),
        "ternd did not start: {}",
        run.said()
    );
    (run, addr)
}

/// One allocation made and deleted, then SIGTERM and the exit.
fn one_session_then_stop(run: &mut Run, addr: std::net::SocketAddr) {
    let mut c = common::Client::new(addr, "carol");
    c.allocate();
    assert_eq!(c.refresh_code(0), None, "deleted");
    run.signal("-TERM");
    assert!(
        run.exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn logs_written_to_a_file_have_no_colour_codes_and_a_readable_summary() {
    let (mut run, addr) = server(&["--log-level", "info"]);
    one_session_then_stop(&mut run, addr);
    let said = run.said();
    assert!(
        !said.contains('\u{1b}'),
        "ANSI codes in a log that is not a terminal: {said}"
    );
    assert!(
        said.contains(&format!("udp=[\"{addr}\"]")),
        "a list in text: {said}"
    );
    assert!(!said.contains('\u{e000}'), "the list mark is never shown");
    // The session line carries an RFC 3339 start time next to the UNIX one.
    let session = said
        .lines()
        .find(|l| l.contains("allocation ended"))
        .expect("session line");
    eprintln!("{session}");
    let started = session
        .split("started=")
        .nth(1)
        .expect("started=")
        .split(' ')
        .next()
        .unwrap();
    assert!(
        started.len() == 20 && started.ends_with('Z') && started.as_bytes()[10] == b'T',
        "RFC 3339: {started}"
    );
    assert!(session.contains("start=1"), "{session}");
    // The last line is a summary in words, not a Rust Debug dump.
    assert!(!said.contains("StatsSnapshot"), "{said}");
    let stop = said
        .lines()
        .find(|l| l.contains("stopped after"))
        .expect("summary");
    eprintln!("{stop}");
    assert!(
        stop.contains(": 1 allocations (0 expired, 1 deleted by their client"),
        "{stop}"
    );
    // Forced colours, for a terminal multiplexer that wants them.
    let (mut run, addr) = server(&["--log-color", "always"]);
    one_session_then_stop(&mut run, addr);
    assert!(run.said().contains("\u{1b}["), "--log-color always");
}

#[test]
fn json_logs_have_numbers_and_the_summary_as_fields() {
    let (mut run, addr) = server(&["--log-format", "json"]);
    one_session_then_stop(&mut run, addr);
    let said = run.said();
    let lines: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let stop = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stopped after"))
        })
        .expect("summary");
    assert_eq!(stop["fields"]["allocations"], 1, "{stop}");
    assert!(stop["fields"]["relayed_out_bytes"].is_u64(), "{stop}");
    let session = lines
        .iter()
        .find(|l| l["fields"]["message"] == "allocation ended")
        .expect("session");
    assert!(session["fields"]["bytes_in"].is_u64(), "{session}");
    // Lists are arrays, not strings.
    let listening = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("listening"))
        })
        .expect("listening line");
    assert_eq!(
        listening["fields"]["udp"],
        serde_json::json!([addr.to_string()]),
        "{listening}"
    );
    assert_eq!(listening["fields"]["tls"], serde_json::json!([]));
    assert!(listening["fields"]["workers"].is_u64());
    assert!(
        session["fields"]["started"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
}

#[test]
fn logs_go_to_a_file_to_syslog_or_to_the_journal_with_priorities() {
    let dir = std::env::temp_dir().join(format!("ternd-first-hour-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A file, appended to.
    let file = dir.join("ternd.log");
    let file_arg = file.to_str().unwrap();
    let (mut run, addr) = server(&["--log-output", "file", "--log-file", file_arg]);
    // Nothing on stderr but what comes before logging starts.
    one_session_then_stop(&mut run, addr);
    let logged = std::fs::read_to_string(&file).unwrap();
    assert!(
        logged.contains("allocation ended") && logged.contains("stopped after"),
        "{logged}"
    );
    assert!(!run.said().contains("allocation ended"), "{}", run.said());
    // Without the file name: refused at start.
    let l = listen();
    refuses(
        &[
            "--listen",
            &l,
            "--secret",
            "first-hour",
            "--http-listen",
            "",
            "--log-output",
            "file",
        ],
        &[],
        "logs go to a file, but which one? set log.file (--log-file)",
    );
    // Syslog: RFC 3164 datagrams with facility daemon.
    let sock = dir.join("log.sock");
    let daemon = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (mut run, addr) = server(&[
        "--log-output",
        "syslog",
        "--log-syslog-socket",
        sock.to_str().unwrap(),
    ]);
    one_session_then_stop(&mut run, addr);
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = daemon.recv(&mut buf) {
        datagrams.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if datagrams.last().unwrap().contains("stopped after") {
            break;
        }
    }
    let pid = run.child.id();
    let session = datagrams
        .iter()
        .find(|d| d.contains("allocation ended"))
        .expect("session");
    eprintln!("{session}");
    assert!(
        session.starts_with(&format!("<30>ternd[{pid}]: ")),
        "{session}"
    );
    // No syslog daemon there: refused at start, naming the flag.
    refuses(
        &[
            "--listen",
            &l,
            "--secret",
            "first-hour",
            "--http-listen",
            "",
            "--log-output",
            "syslog",
            "--log-syslog-socket",
            dir.join("nobody.sock").to_str().unwrap(),
        ],
        &[],
        "cannot reach the syslog daemon at",
    );
    // The journal: stderr lines with <N> priorities and no time stamps.
    let (mut run, addr) = server(&["--log-output", "journald"]);
    one_session_then_stop(&mut run, addr);
    let said = run.said();
    let session = said
        .lines()
        .find(|l| l.contains("allocation ended"))
        .expect("session");
    assert!(
        session.starts_with("<6>ternd::session: allocation ended") || session.starts_with("<6> "),
        "{session}"
    );
    assert!(
        said.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('<')),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log lines of `run` that say `refused:` with `reason=REASON`.
fn refusals(run: &Run, reason: &str) -> Vec<String> {
    run.said()
        .lines()
        .filter(|l| l.contains("refused:") && l.contains(&format!("reason=\"{reason}\"")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_refusal_is_explained_once_with_the_client_user_request_and_code() {
    use ternd_client::blocking::{self, Udp};
    let http = format!("127.0.0.1:{}", free_port());
    let (run, addr) = server(&[
        "--log-level",
        "info,ternd_proto::turn::refusal=debug",
        "--user-quota",
        "1",
        "--relay-ports",
        "47000-47001",
        "--http-listen",
        &http,
    ]);
    // 486: the user's quota, twice from one client: one line.
    let mut first = common::Client::new(addr, "dave");
    first.allocate();
    for _ in 0..2 {
        let mut again = common::Client::new(addr, "dave");
        assert_eq!(again.try_allocate().err().and_then(|e| e.code()), Some(486));
    }
    std::thread::sleep(Duration::from_millis(200));
    let lines = refusals(&run, "user_quota");
    assert_eq!(lines.len(), 1, "{}", run.said());
    eprintln!("{}", lines[0]);
    assert!(lines[0].contains(" INFO "), "{}", lines[0]);
    assert!(
        lines[0]
            .contains("refused: the user has relay.user_quota allocations already (--user-quota"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("client=127.0.0.1:")
            && lines[0].contains("request=\"Allocate\"")
            && lines[0].contains("code=486"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(":dave"), "the user: {}", lines[0]);
    // 403: a private peer, with the rule.
    let mut udp = Udp::to(&first.sock, first.server).with_timing(common::TIMING);
    let private: std::net::SocketAddr = "10.1.2.3:4000".parse().unwrap();
    let code = blocking::create_permission(&mut first.session, &mut udp, private)
        .err()
        .and_then(|e| e.code());
    assert_eq!(code, Some(403));
    let lines = refusals(&run, "peer_default_deny");
    assert_eq!(lines.len(), 1, "{}", run.said());
    eprintln!("{}", lines[0]);
    assert!(lines[0].contains("refused: peer address is in a default-denied range (private (RFC 1918)) (relay.allow_peer / --allow-peer opens a range)"), "{}", lines[0]);
    // 400: a channel number from RFC 5766's range, as coturn's uclient picks.
    let peer: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
    assert_eq!(first.channel_bind_code(0x5001, peer), Some(400));
    let lines = refusals(&run, "channel_range");
    assert_eq!(lines.len(), 1, "{}", run.said());
    eprintln!("{}", lines[0]);
    assert!(
        lines[0].contains("channel number 0x5001 is outside RFC 8656's 0x4000-0x4FFF")
            && lines[0].contains("--rfc5766-channel-numbers accepts them"),
        "{}",
        lines[0]
    );
    // 508: the relay range (two ports) is used up.
    let mut erin = common::Client::new(addr, "erin");
    erin.allocate();
    let mut frank = common::Client::new(addr, "frank");
    assert_eq!(frank.try_allocate().err().and_then(|e| e.code()), Some(508));
    let lines = refusals(&run, "no_relay_port");
    assert_eq!(lines.len(), 1, "{}", run.said());
    eprintln!("{}", lines[0]);
    assert!(
        lines[0].contains("no relay port free in relay.ports")
            && lines[0].contains("--relay-ports widens the range"),
        "{}",
        lines[0]
    );
    // 401s, at debug level: a wrong secret, an expired credential, an unknown user.
    let mut wrong = common::Client::with_secret(addr, "gina", "not-the-secret");
    assert_eq!(wrong.try_allocate().err().and_then(|e| e.code()), Some(401));
    let expired_name = "1000000000:hank";
    let password = ternd::auth::rest::password(common::SECRET, expired_name);
    let mut expired = common::Client::with_credentials(addr, expired_name, &password);
    assert_eq!(
        expired.try_allocate().err().and_then(|e| e.code()),
        Some(401)
    );
    let mut nobody = common::Client::with_credentials(addr, "ivan", "pw");
    assert_eq!(
        nobody.try_allocate().err().and_then(|e| e.code()),
        Some(401)
    );
    std::thread::sleep(Duration::from_millis(200));
    for (reason, text) in [
        (
            "wrong_password",
            "refused: MESSAGE-INTEGRITY does not verify: a wrong password, or REST credentials minted with another secret than this server's",
        ),
        ("expired", "refused: the credential's expiry has passed"),
        ("unknown_user", "refused: no such user"),
    ] {
        let lines = refusals(&run, reason);
        assert_eq!(lines.len(), 1, "{reason}: {}", run.said());
        eprintln!("{}", lines[0]);
        assert!(
            lines[0].contains("DEBUG") && lines[0].contains(text) && lines[0].contains("code=401"),
            "{}",
            lines[0]
        );
    }
    // The first 401 of every client is the challenge: never logged, counted apart.
    assert!(!run.said().contains("reason=\"challenge\""));
    let metrics = common::http(http.parse().unwrap(), "GET", "/metrics", &[]).body;
    let m = |labels: &[(&str, &str)]| common::metric(&metrics, "ternd_auth_total", labels);
    // The client library retries a 401 once with the fresh nonce: two each, one line.
    assert_eq!(m(&[("result", "wrong_password")]), 2.0, "{metrics}");
    assert_eq!(m(&[("result", "expired")]), 2.0);
    assert_eq!(m(&[("result", "unknown_user")]), 2.0);
    assert_eq!(m(&[("result", "challenge")]), 8.0, "one per client");
    assert_eq!(
        common::metric(&metrics, "ternd_peer_denied_total", &[("rule", "default")]),
        1.0
    );
    assert_eq!(
        common::metric(&metrics, "ternd_dropped_total", &[("reason", "user_quota")]),
        2.0
    );
}

#[test]
fn metrics_have_process_figures_and_latency_and_lifetime_histograms() {
    let http = format!("127.0.0.1:{}", free_port());
    let (run, addr) = server(&["--http-listen", &http]);
    let mut c = common::Client::new(addr, "olga");
    c.allocate();
    assert_eq!(c.refresh_code(0), None);
    let text = common::http(http.parse().unwrap(), "GET", "/metrics", &[]).body;
    let value = |name: &str| common::metric(&text, name, &[]);
    // The 401 challenge and the success: two Allocate answers, each well under a second.
    assert_eq!(
        value("ternd_allocate_duration_seconds_count"),
        2.0,
        "{text}"
    );
    assert_eq!(
        common::metric(
            &text,
            "ternd_allocate_duration_seconds_bucket",
            &[("le", "1")]
        ),
        2.0
    );
    assert!(text.contains("# TYPE ternd_allocate_duration_seconds histogram"));
    assert_eq!(value("ternd_allocation_lifetime_seconds_count"), 1.0);
    assert_eq!(
        common::metric(
            &text,
            "ternd_allocation_lifetime_seconds_bucket",
            &[("le", "10")]
        ),
        1.0
    );
    assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
    assert!(value("process_open_fds") > 3.0);
    assert!(value("process_start_time_seconds") > 1.7e9);
    drop(run);
}

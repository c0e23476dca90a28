//! The operator's first hour: each way ternd used to start and then fail without a word
//! now fails loudly at start, or warns with the setting to change. Every test runs the
//! real binary and reads what it says.

mod common;
#[path = "common/process.rs"]
mod process;

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
    args.extend_from_slice(extra);
    let run = Run::start(&args, &[]);
    // Ready when it answers a Binding (its log may go elsewhere).
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let req = [
        0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = probe.send_to(&req, addr);
        if probe.recv_from(&mut [0u8; 128]).is_ok() {
            break;
        }
        assert!(Instant::now() < end, "ternd did not start: {}", run.said());
    }
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

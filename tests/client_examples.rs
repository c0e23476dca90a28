//! ternd-client's examples (`game_sync`, `turncat`) run as programs against ternd on
//! loopback: they are tools, so what is checked is what a script sees (exit status,
//! stdout), and that they delete their allocations when they end.
//!
//! Cargo does not hand example binaries to integration tests; `cargo test` builds every
//! example of the workspace's default members before it runs a test, and they are found
//! next to this test's binary (`target/<profile>/examples/`).

mod common;
#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::SECRET;
use process::{Setup, Ternd};

/// Bounds one example run.
const RUN_BOUND: Duration = Duration::from_secs(8);
/// Bounds waiting for one line of output.
const LINE_WAIT: Duration = Duration::from_secs(5);

/// The path of example `name` of ternd-client, built by `cargo test`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/client_examples-HASH
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds ternd-client's examples before the tests, but a \
         filtered run may not; build them with `cargo build -p ternd-client --examples` \
         (same profile) and run again",
        path.display()
    );
    path
}

/// A child process, killed and reaped on drop (a failed assertion leaves none behind).
struct Running {
    child: Child,
    name: &'static str,
}

impl Running {
    fn spawn(name: &'static str, args: &[&str]) -> Running {
        let child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Running { child, name }
    }

    fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin piped")
    }

    /// The lines of stdout (or stderr), read by a thread, as they come.
    fn lines(&mut self, stderr: bool) -> mpsc::Receiver<String> {
        let reader: Box<dyn Read + Send> = if stderr {
            Box::new(self.child.stderr.take().expect("stderr piped"))
        } else {
            Box::new(self.child.stdout.take().expect("stdout piped"))
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Waits (bounded by [`RUN_BOUND`]) for the child to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + RUN_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {RUN_BOUND:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What is left in `lines` once the child exited (its pipe's end ends the reader).
fn rest(lines: &mpsc::Receiver<String>) -> String {
    let mut all = Vec::new();
    while let Ok(line) = lines.recv_timeout(LINE_WAIT) {
        all.push(line);
    }
    all.join("\n")
}

/// The next line from `lines`, or a failure naming what was expected.
fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(LINE_WAIT)
        .unwrap_or_else(|_| panic!("no {what} within {LINE_WAIT:?}"))
}

fn url(server: &Ternd) -> String {
    format!("turn:{}?transport=udp", server.addr)
}

#[test]
fn game_sync_loses_nothing_on_loopback() {
    let server = Ternd::start(Setup {
        relay_ports: "12400-12449",
        ..Setup::default()
    });
    let url = url(&server);
    let args = ["--server", &url, "--secret", SECRET];
    let mut game = Running::spawn(
        "game_sync",
        &[
            &args[..],
            &["--seconds", "2", "--rate", "50", "--max-loss", "0"],
        ]
        .concat(),
    );
    let stdout = game.lines(false);
    let stderr = game.lines(true);
    let status = game.wait();
    let out = rest(&stdout);
    assert!(
        status.success(),
        "game_sync: {status}\nstdout:\n{out}\nstderr:\n{}",
        rest(&stderr)
    );
    // A report per player: 100 states each way, all received and acknowledged.
    assert_eq!(out.matches("RTT p50 ").count(), 2, "{out}");
    assert!(out.contains("p99 ") && out.contains(", max "), "{out}");
    // A player skips a tick it missed (a game sends its current state, not old ones), so
    // on a loaded machine it may send a few fewer than 100: every one sent arrives and is
    // acknowledged.
    let players: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("sent "))
        .collect();
    assert_eq!(players.len(), 2, "{out}");
    for p in players {
        let sent: u32 = p.trim_start()["sent ".len()..]
            .split(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!((90..=100).contains(&sent), "{out}");
        let received: u32 = p
            .split("received ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!((90..=100).contains(&received), "{out}");
        assert!(
            p.contains(&format!(
                "received {received} of {received}, lost 0 (0.00%)"
            )) && p.contains(&format!("acks {sent} of {sent}")),
            "{out}"
        );
    }
    assert_eq!(out.matches("framing: ChannelData (").count(), 2, "{out}");
    assert!(
        out.contains("+ 0 Send indications"),
        "every state is ChannelData: {out}"
    );
    // Both allocations were deleted (close, not left to expire).
    assert_eq!(
        server.wait_allocations(0.0, Duration::from_secs(2)),
        0.0,
        "allocations left behind"
    );
}

#[test]
fn two_turncats_talk() {
    let server = Ternd::start(Setup {
        relay_ports: "12450-12499",
        ..Setup::default()
    });
    let url = url(&server);
    let creds = ["--server", &url, "--secret", SECRET];

    // A waits for anyone on 127.0.0.1 and answers whoever sent last.
    let mut a = Running::spawn(
        "turncat",
        &[&creds[..], &["--permit", "127.0.0.1", "--timeout", "5"]].concat(),
    );
    let a_err = a.lines(true);
    let a_out = a.lines(false);
    let mut a_in = a.stdin();
    let banner = next_line(&a_err, "relayed address from turncat A");
    let a_relayed = banner
        .strip_prefix("turncat: relayed ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {banner:?}"))
        .to_string();

    // B sends three lines to A's relayed address, then waits for two answers.
    let mut b = Running::spawn(
        "turncat",
        &[
            &creds[..],
            &["--peer", &a_relayed, "--count", "2", "--linger", "5"],
        ]
        .concat(),
    );
    let b_out = b.lines(false);
    let b_err = b.lines(true);
    let mut b_in = b.stdin();
    b_in.write_all(b"one\ntwo\nthree\n").unwrap();
    drop(b_in);
    for want in ["one", "two", "three"] {
        assert_eq!(next_line(&a_out, &format!("{want:?} at A")), want);
    }

    // A answers; its stdin's end makes it linger (1 s) and exit.
    a_in.write_all(b"four\nfive\n").unwrap();
    drop(a_in);
    for want in ["four", "five"] {
        assert_eq!(next_line(&b_out, &format!("{want:?} at B")), want);
    }
    let b_status = b.wait();
    assert!(
        b_status.success(),
        "turncat B: {b_status}; stderr:\n{}",
        rest(&b_err)
    );
    let a_status = a.wait();
    assert!(
        a_status.success(),
        "turncat A: {a_status}; stderr:\n{}",
        rest(&a_err)
    );
    assert_eq!(
        server.wait_allocations(0.0, Duration::from_secs(2)),
        0.0,
        "allocations left behind"
    );
}

//! Load testing works twice: `--profile loadtest` lets coturn's uclient run back to back
//! without hitting the quota with its leftovers, and `ternd bench` deletes what it
//! allocated whether it finishes, fails or is interrupted, naming the limit it hit.

mod common;
#[path = "common/coturn.rs"]
mod coturn;
#[path = "common/process.rs"]
mod process;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{Setup, Ternd, free_port};

#[test]
fn the_loadtest_profile_is_refused_beyond_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--profile",
            "loadtest",
            "--listen",
            "0.0.0.0:3478",
            "--secret",
            "x-secret",
        ])
        .args(["--check-config"])
        .env_clear()
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    eprintln!("{said}");
    assert!(!out.status.success());
    assert!(
        said.contains("the loadtest profile lifts the per-user, per-IP and unauthenticated limits, so it runs only on loopback; 0.0.0.0:3478 is not"),
        "{said}"
    );
    // On loopback it is taken, and an explicit setting still wins.
    let ok = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ternd"))
            .args(["--profile", "loadtest", "--listen", "127.0.0.1:3478"])
            .args(["--http-listen", "127.0.0.1:9641", "--secret", "x-secret"])
            .args(extra)
            .arg("--check-config")
            .env_clear()
            .status()
            .unwrap()
            .success()
    };
    assert!(ok(&[]));
    assert!(ok(&["--user-quota", "7"]));
    let c = ternd::config::Config::from_toml_str(
        "profile = \"loadtest\"\nlisten = [\"127.0.0.1:3478\"]\n[relay]\nuser_quota = 7\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.relay.limits.user_quota, 7, "explicit wins");
    assert_eq!(c.relay.limits.max_allocations_per_ip, 0);
    assert_eq!(c.relay.unauth_rate_limit, 0);
    assert!(c.relay.rfc5766_channel_numbers);
    assert!(c.relay.allow_peer.contains(&"127.0.0.0/8".parse().unwrap()));
}

#[test]
fn two_uclient_runs_in_a_row_relay_with_no_loss_under_the_loadtest_profile() {
    if !coturn::tools_available("two_uclient_runs_in_a_row") {
        return;
    }
    // Each run of 50 clients leaves allocations behind (uclient deletes none at exit):
    // with the default user_quota of 100 the second run gets 486.
    let t = Ternd::start(Setup {
        relay_ports: "44000-44999",
        extra: &["--profile", "loadtest"],
        ..Setup::default()
    });
    let mut peer = coturn::Peer::start(&["127.0.0.1".parse().unwrap()]);
    let password = ternd::auth::rest::password(common::SECRET, "4102444800:load");
    let port = peer.port.to_string();
    for run in 1..=2 {
        let r = coturn::uclient(
            t.addr,
            (50, 100, 120),
            &[
                "-u",
                "4102444800:load",
                "-w",
                &password,
                "-e",
                "127.0.0.1",
                "-r",
                &port,
            ],
        );
        eprintln!(
            "run {run}: sent {} received {} in {:?}; {} active allocations",
            r.sent,
            r.received,
            r.elapsed,
            t.metric("ternd_allocations_active")
        );
        assert!(
            r.success
                && r.text.contains("Total lost packets 0 ")
                && r.sent == 5_000
                && r.received == 5_000,
            "run {run} (peer exit {:?}):\n{}",
            peer.exited(),
            r.tail()
        );
    }
    let metrics = t.metrics();
    let refused = common::metric(&metrics, "ternd_dropped_total", &[("reason", "user_quota")]);
    assert_eq!(refused, 0.0);
}

/// `ternd bench` against `server`; its exit status and stderr.
fn bench(server: SocketAddr, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "bench",
            "--server",
            &server.to_string(),
            "--secret",
            common::SECRET,
        ])
        .args(["--duration", "1s", "--rate", "500", "-q"])
        .args(extra)
        .output()
        .expect("run ternd bench");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_failed_bench_deletes_what_it_made_names_the_limit_and_the_next_run_passes() {
    let t = Ternd::start(Setup {
        relay_ports: "45000-45999",
        extra: &["--max-allocations-per-ip", "5"],
        ..Setup::default()
    });
    let (ok, said) = bench(t.addr, &["--allocations", "10"]);
    eprintln!("{said}");
    assert!(!ok);
    assert!(
        said.contains("allocation 5: Allocate: error 486 Allocation Quota Reached. The server's per-user or per-IP allocation limit was hit"),
        "{said}"
    );
    assert!(said.contains("--max-allocations-per-ip") && said.contains("--profile loadtest"));
    assert!(
        said.contains("(5 allocation(s) made before it, 5 deleted)"),
        "{said}"
    );
    assert_eq!(
        t.wait_allocations(0.0, Duration::from_secs(2)),
        0.0,
        "none left behind"
    );
    // So the next run, within the limit, passes at once.
    let (ok, said) = bench(t.addr, &["--allocations", "5"]);
    assert!(ok, "{said}");
    assert_eq!(t.wait_allocations(0.0, Duration::from_secs(2)), 0.0);
    // A refused echo peer says which flag allows it.
    let strict = Ternd::start(Setup {
        relay_ports: "46000-46999",
        extra: &["--deny-peer", "127.0.0.1/32"],
        ..Setup::default()
    });
    let (ok, said) = bench(strict.addr, &["--allocations", "3"]);
    assert!(
        !ok && said.contains("refused the echo peer: allow it (ternd: --allow-peer 127.0.0.1/32"),
        "{said}"
    );
    assert_eq!(strict.wait_allocations(0.0, Duration::from_secs(2)), 0.0);
}

#[test]
fn an_interrupted_bench_deletes_its_allocations() {
    let t = Ternd::start(Setup {
        relay_ports: "43000-43999",
        ..Setup::default()
    });
    let log = std::env::temp_dir().join(format!(
        "ternd-bench-int-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "bench",
            "--server",
            &t.addr.to_string(),
            "--secret",
            common::SECRET,
        ])
        .args(["--allocations", "20", "--duration", "60s", "--rate", "200"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let said = || {
        let mut s = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut s));
        s
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !said().contains("sent") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(t.metric("ternd_allocations_active"), 20.0, "{}", said());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "bench ignored Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = said();
    let last = text.lines().last().unwrap_or_default().to_owned();
    eprintln!("{last} (exit {status:?} after {:?})", stopped.elapsed());
    assert!(!status.success());
    assert!(
        last.contains("interrupted after") && last.contains("20 allocation(s) deleted"),
        "{text}"
    );
    assert_eq!(t.metric("ternd_allocations_active"), 0.0);
    let _ = std::fs::remove_file(&log);
}

#[test]
fn the_banners_uclient_command_works_as_printed() {
    if !coturn::tools_available("the_banners_uclient_command_works_as_printed") {
        return;
    }
    // No secret configured: ternd generates one and prints how to try it.
    let port = free_port();
    let out = std::env::temp_dir().join(format!("ternd-banner-{}-{port}.txt", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--http-listen",
            "",
        ])
        .args(["--relay-ports", "42000-42199", "--log-level", "warn"])
        .env_clear()
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(l) = text
            .lines()
            .find(|l| l.trim_start().starts_with("turnutils_uclient"))
        {
            break l.trim().to_owned();
        }
        assert!(
            Instant::now() < end,
            "no uclient command in the banner: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("banner: {line}");
    assert!(line.contains(" -y -s "), "{line}");
    // Run it exactly as printed (its quoting is the shell's), bounded.
    let run = Command::new("timeout")
        .args(["30", "sh", "-c", &line])
        .output()
        .expect("run the printed command");
    let text =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&out);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("Total lost packets 0 "), "{text}");
    assert!(!text.contains("error 400"), "{text}");
}

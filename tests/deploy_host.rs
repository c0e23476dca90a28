//! The host-side deployment files: `deploy/systemd/ternd.service` (`systemd-analyze
//! verify` with the built binary), the sd_notify messages its `Type=notify` needs, and
//! the Dockerfile and `.dockerignore` (no Docker engine runs here: their content is
//! checked, not a build).

#[path = "common/tls.rs"]
mod tls;
#[path = "common/tools.rs"]
mod tools;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ternd::config::Config;
use tools::{have, root};

#[test]
fn the_systemd_unit_verifies_with_the_built_binary() {
    let test = "the_systemd_unit_verifies_with_the_built_binary";
    if !have(
        test,
        "systemd-analyze",
        &["--version"],
        "apt-get install systemd",
    ) {
        return;
    }
    let unit = std::fs::read_to_string(root().join("deploy/systemd/ternd.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line}");
    }
    // systemd must wait for the whole drain before it kills.
    let stop = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec");
    let stop = humantime::parse_duration(stop).expect("TimeoutStopSec parses");
    assert!(stop >= Config::default().drain_timeout, "{stop:?}");
    let tmp = tls::TempDir::new("systemd");
    let verify = |text: &str| {
        let file = tmp.0.join("ternd.service");
        std::fs::write(&file, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&file)
            .output()
            .expect("systemd-analyze verify");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        // Unknown keys are only warnings; any word from verify is a failure here.
        (out.status.success() && said.trim().is_empty(), said)
    };
    let binary = env!("CARGO_BIN_EXE_ternd");
    assert!(unit.contains("ExecStart=/usr/local/bin/ternd "));
    let (ok, said) = verify(&unit.replace("/usr/local/bin/ternd", binary));
    assert!(ok, "systemd-analyze verify: {said}");
    // The same check sees a misspelt key.
    let (ok, said) = verify(
        &unit
            .replace("/usr/local/bin/ternd", binary)
            .replace("ProtectHome=", "ProtectHomme="),
    );
    assert!(!ok && said.contains("ProtectHomme"), "{said}");
}

#[test]
fn the_service_manager_hears_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let tmp = tls::TempDir::new("notify");
    let socket_path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ternd"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "1"])
        .args(["--secret", "notify-secret", "--http-listen", ""])
        .args(["--relay-ip", "127.0.0.1", "--log-level", "warn"])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ternd");
    let recv = || {
        let mut buf = [0u8; 512];
        match socket.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => format!("nothing: {e}"),
        }
    };
    let kill = |sig: &str, pid: u32| {
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill");
    };
    let started = Instant::now();
    let ready = recv();
    let mut checks = || {
        assert!(ready.starts_with("READY=1\n"), "{ready}");
        assert!(
            ready.contains("STATUS=relaying on 1 UDP, 1 TCP and 0 TLS listeners"),
            "{ready}"
        );
        // Ready means bound: a Binding is answered now.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let req = [
            0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        probe.send_to(&req, ("127.0.0.1", port)).unwrap();
        assert!(
            probe.recv_from(&mut [0u8; 128]).is_ok(),
            "READY before the listener answers"
        );
        kill("-HUP", child.id());
        assert_eq!(recv(), "RELOADING=1");
        let again = recv();
        assert!(
            again.starts_with("READY=1\nSTATUS=configuration reloaded"),
            "{again}"
        );
        kill("-TERM", child.id());
        let stopping = recv();
        assert!(stopping.starts_with("STOPPING=1\n"), "{stopping}");
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut checks));
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("the notify sequence took {:?}", started.elapsed());
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn the_container_image_builds_the_workspace_and_runs_as_the_manifests_user() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    // Multi-stage: a build stage and a slim runtime stage.
    assert_eq!(lines.iter().filter(|l| l.starts_with("FROM ")).count(), 2);
    // Everything the workspace's manifests name is copied into the build stage.
    let copied: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "crates", "benches"] {
        assert!(
            copied.contains(&needed),
            "the image build copies {needed}: {copied:?}"
        );
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"members = [".", "crates/*"]"#),
        "workspace layout changed"
    );
    for bench in manifest.lines().filter_map(|l| l.strip_prefix("name = \"")) {
        let bench = bench.trim_end_matches('"');
        if root().join("benches").join(format!("{bench}.rs")).exists() {
            continue;
        }
        assert!(
            ["ternd"].contains(&bench),
            "[[bench]] {bench} is not under benches/"
        );
    }
    // Non-root, with the UID the Kubernetes manifests run as.
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert_eq!(user, "10001:10001", "the manifests' runAsUser/runAsGroup");
    assert!(dockerfile.contains("--uid 10001"));
    assert!(lines.iter().any(|l| l.starts_with("HEALTHCHECK ")));
    assert!(dockerfile.contains("/healthz"));
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.version",
    ] {
        assert!(dockerfile.contains(label), "OCI label {label}");
    }
    assert!(dockerfile.contains("COPY config/ternd.toml /etc/ternd/ternd.toml"));
    // The build context leaves out build output and VCS data.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    for entry in [
        "target",
        ".git",
        "fuzz/target",
        "tests/browser/node_modules",
    ] {
        assert!(
            ignore
                .lines()
                .any(|l| l.trim().trim_start_matches('/') == entry),
            ".dockerignore has {entry}"
        );
    }
}

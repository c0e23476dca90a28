//! External tools a test needs (kubectl, yamllint, systemd-analyze, ...): whether one is
//! usable, and what to do when it is not (skip loudly; fail when
//! `TERND_REQUIRE_INTEROP=1`, as `.ci/run` sets after installing them).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` runs (`tool args` exits 0); if not, skips loudly or, in CI, fails.
pub fn have(test: &str, tool: &str, args: &[&str], install: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let required = std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{tool} required (TERND_REQUIRE_INTEROP=1) but not usable; {install}"
    );
    eprintln!(
        "SKIPPED {test}: {tool} not usable ({install}) - set TERND_REQUIRE_INTEROP=1 to make \
         this a failure"
    );
    false
}

/// Whether a STUN server at `addr` answers a Binding request within `within` (asked again
/// every 50 ms): how a test knows a server it started is up, whatever its log says.
pub fn answers_binding(addr: SocketAddr, within: Duration) -> bool {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let req = [
        0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let end = Instant::now() + within;
    while Instant::now() < end {
        let _ = probe.send_to(&req, addr);
        if probe.recv_from(&mut [0u8; 128]).is_ok() {
            return true;
        }
    }
    false
}

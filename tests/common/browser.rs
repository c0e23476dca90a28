//! Debian's Chromium driven by `playwright-core` (npm, pinned in tests/browser/package.json)
//! through Node.js: runs one script of tests/browser/ and returns its JSON line. Without
//! chromium, node or `npm ci --prefix tests/browser`, a test says SKIPPED (or fails with
//! `TERND_REQUIRE_INTEROP=1`, as `.ci/run` sets after installing them). Included with
//! `#[path]`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> String {
    std::env::var("TERND_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// True when Chromium, Node.js and playwright-core are there; otherwise says SKIPPED, or
/// fails when `TERND_REQUIRE_INTEROP=1`.
pub fn available(test: &str) -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !node {
        Some("node (apt-get install nodejs)")
    } else if !std::path::Path::new(&chromium()).exists() {
        Some("chromium (apt-get install chromium)")
    } else if !dir().join("node_modules/playwright-core").exists() {
        Some("playwright-core (npm ci --prefix tests/browser)")
    } else {
        None
    };
    let Some(missing) = missing else {
        return true;
    };
    let required = std::env::var("TERND_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{missing} required (TERND_REQUIRE_INTEROP=1) but not installed"
    );
    eprintln!(
        "SKIPPED {test}: {missing} missing - set TERND_REQUIRE_INTEROP=1 to make this a failure"
    );
    false
}

/// Runs `tests/browser/<script>` with `arg` (JSON); its last stdout line, parsed, and
/// what it said on stderr.
pub fn run(script: &str, arg: &serde_json::Value) -> (serde_json::Value, String) {
    run_in(None, script, arg)
}

/// [`run`] inside network namespace `netns` (`ip netns exec`), when given.
pub fn run_in(
    netns: Option<&str>,
    script: &str,
    arg: &serde_json::Value,
) -> (serde_json::Value, String) {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "timeout"]);
            c
        }
        None => Command::new("timeout"),
    };
    let out = cmd
        .args(["60", "node"])
        .arg(dir().join(script))
        .arg(arg.to_string())
        .env("TERND_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stdout.lines().last().unwrap_or("");
    let v = serde_json::from_str(line).unwrap_or_else(
        |_| serde_json::json!({"ok": false, "error": format!("no JSON line; stdout: {stdout}")}),
    );
    (v, stderr)
}

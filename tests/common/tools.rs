//! External tools a test needs (kubectl, yamllint, systemd-analyze, ...): whether one is
//! usable, and what to do when it is not (skip loudly; fail when
//! `TERND_REQUIRE_INTEROP=1`, as `.ci/run` sets after installing them).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

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

//! Unit tests for `ternd::config`. None of them touches the process
//! environment (see `tests/config_env.rs` for that).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::*;

mod cluster;
mod defaults;
mod errors;
mod file;
mod limits;
mod ranges;
mod rfc5780;
mod tls;

const FILE: &str = "test.toml";

/// Parses `text` and loads the files it names.
fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, FILE).and_then(Config::load_files)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn cli(args: &[&str]) -> Cli {
    let mut v = vec!["ternd"];
    v.extend_from_slice(args);
    match Cli::try_parse_from(v) {
        Ok(c) => c,
        Err(e) => panic!("clap rejected {args:?}: {e}"),
    }
}

fn cli_err(args: &[&str]) -> String {
    match Config::default()
        .apply_cli(&cli(args))
        .and_then(Config::load_files)
    {
        Ok(c) => panic!("expected an error for {args:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `msg` names `key` (in backticks) and `origin`.
#[track_caller]
fn names(msg: &str, key: &str, origin: &str) {
    assert!(
        msg.contains(&format!("`{key}`")),
        "message does not name key `{key}`: {msg}"
    );
    assert!(
        msg.starts_with(&format!("{origin}: ")),
        "message does not start with origin `{origin}`: {msg}"
    );
}

/// A file in the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("ternd-config-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// A fresh temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("ternd-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write");
        p.to_str().expect("utf-8").to_owned()
    }

    /// Runs openssl in the directory; false if it is not installed.
    fn openssl(&self, args: &[&str]) -> bool {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(&self.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("utf-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A temp directory with a self-signed P-256 certificate (`cert.pem`) and
/// its key (`key.pem`); `None` if openssl is not installed.
fn tls_files(name: &str) -> Option<TempDir> {
    let dir = TempDir::new(name);
    let ok = dir.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
    ]);
    if ok {
        Some(dir)
    } else {
        eprintln!("openssl not available; skipping");
        None
    }
}

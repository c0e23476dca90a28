//! Command-line behaviour of `ternd::config` through its public API.
//!
//! These tests do not touch the environment (see `config_env.rs`); they
//! assume no `TERND_*` variable is set when `cargo test` runs.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use ternd::config::{Cli, Config, LogFormat, PortRange, UserCredential};

fn parse(args: &[&str]) -> Cli {
    let mut v = vec!["ternd"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).unwrap_or_else(|e| panic!("clap rejected {args:?}: {e}"))
}

#[test]
fn no_arguments_means_nothing_given() {
    let cli = parse(&[]);
    assert_eq!(cli, Cli::default());
    assert_eq!(Config::load(&cli).expect("defaults"), Config::default());
}

#[test]
fn every_flag_has_an_env_var_and_no_default() {
    for arg in Cli::command().get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let long = arg.get_long().expect("long flag");
        let env = arg
            .get_env()
            .and_then(|e| e.to_str())
            .unwrap_or_else(|| panic!("--{long} has no env var"));
        assert_eq!(
            env,
            format!("TERND_{}", long.replace('-', "_").to_uppercase())
        );
        assert!(
            arg.get_default_values().is_empty(),
            "--{long} must not have a clap default"
        );
    }
}

#[test]
fn all_flags_apply() {
    let cli = parse(&[
        "--listen",
        "127.0.0.1:3478,[::1]:3478",
        "--realm",
        "example.org",
        "--relay-ip",
        "192.0.2.1",
        "--external-ip",
        "203.0.113.1/192.0.2.1",
        "--relay-ports",
        "10000-30000",
        "--secret",
        "s1",
        "--secret",
        "s2",
        "--user",
        "alice:pw",
        "--allow-peer",
        "10.0.0.0/8",
        "--deny-peer",
        "10.0.0.1",
        "--rfc5766-channel-numbers",
        "--default-allocation-lifetime",
        "5m",
        "--max-allocation-lifetime",
        "2h",
        "--user-quota",
        "0",
        "--nonce-lifetime",
        "1h",
        "--workers",
        "3",
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "--software",
        "ternd",
        "--stun-backward-compatibility",
        "--max-frame-size",
        "1500",
        "--tcp-idle-timeout",
        "30s",
        "--max-tcp-connections",
        "10",
    ]);
    let c = Config::load(&cli).expect("all flags");
    let sa = |s: &str| s.parse::<SocketAddr>().expect("addr");
    assert_eq!(c.listen, vec![sa("127.0.0.1:3478"), sa("[::1]:3478")]);
    assert_eq!(c.realm, "example.org");
    assert_eq!(c.relay.relay_ips.len(), 1);
    assert_eq!(c.relay.external_ips[0].to_string(), "203.0.113.1/192.0.2.1");
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 10000,
            hi: 30000
        }
    );
    assert_eq!(c.auth.secrets, vec!["s1", "s2"]);
    assert_eq!(
        c.auth.users[0].credential,
        UserCredential::Password("pw".into())
    );
    assert_eq!(c.relay.allow_peer[0].to_string(), "10.0.0.0/8");
    assert_eq!(c.relay.deny_peer[0].to_string(), "10.0.0.1/32");
    assert!(c.relay.rfc5766_channel_numbers);
    assert_eq!(
        c.relay.default_allocation_lifetime,
        Duration::from_secs(300)
    );
    assert_eq!(c.relay.max_allocation_lifetime, Duration::from_secs(7200));
    assert_eq!(c.relay.limits.user_quota, 0);
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(3600));
    assert_eq!(c.workers, 3);
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.software.as_deref(), Some("ternd"));
    assert!(c.stun_backward_compatibility);
    assert_eq!(c.max_frame_size, 1500);
    assert_eq!(c.tcp_idle_timeout, Duration::from_secs(30));
    assert_eq!(c.max_tcp_connections, 10);
    assert!(c.not_yet_supported.is_empty());
}

#[test]
fn cli_beats_file() {
    let path = std::env::temp_dir().join(format!("ternd-config-cli-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "realm = \"file\"\nworkers = 2\n[relay]\nports = \"10000-20000\"\n",
    )
    .expect("write");
    let file = path.to_str().expect("utf-8");
    let c = Config::load(&parse(&["-c", file, "--relay-ports", "20000-30000"])).expect("load");
    assert_eq!(c.realm, "file");
    assert_eq!(c.workers, 2);
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 20000,
            hi: 30000
        }
    );

    let e = Config::load(&parse(&["-c", file, "--relay-ports", "0-30000"])).expect_err("port 0");
    let m = e.to_string();
    assert!(m.starts_with("command line: `--relay-ports`: "), "{m}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn shipped_config_loads_to_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/ternd.toml");
    let c = Config::load(&parse(&["--config", path])).expect("shipped config");
    assert_eq!(c, Config::default());
}

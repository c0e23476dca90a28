//! Capacity and bandwidth limits; precedence.

use super::*;

// ---------------------------------------------------------------------------
// Capacity and bandwidth limits

#[test]
fn relay_limits_from_file() {
    let c = parse(
        "[relay]\ntotal_quota = 500\nmax_permissions_per_allocation = 65535\n\
         max_channels_per_allocation = 16384\nmax_bps = 125000",
    )
    .expect("limits");
    assert_eq!(c.relay.limits.total_quota, 500);
    assert_eq!(c.relay.limits.max_permissions, 65_535);
    assert_eq!(c.relay.limits.max_channels, 16_384);
    assert_eq!(c.relay.limits.max_bps, 125_000);

    let c = parse(
        "[relay]\ntotal_quota = 4294967295\nmax_permissions_per_allocation = 1\n\
         max_channels_per_allocation = 1\nmax_bps = 0",
    )
    .expect("extremes");
    assert_eq!(c.relay.limits.total_quota, u32::MAX);
    assert_eq!(c.relay.limits.max_permissions, 1);
    assert_eq!(c.relay.limits.max_channels, 1);
    assert_eq!(c.relay.limits.max_bps, 0);
}

#[test]
fn relay_limit_errors_name_the_key() {
    for (text, key) in [
        ("total_quota = -1", "relay.total_quota"),
        ("total_quota = 4294967296", "relay.total_quota"),
        ("total_quota = \"10\"", "relay.total_quota"),
        (
            "max_permissions_per_allocation = 0",
            "relay.max_permissions_per_allocation",
        ),
        (
            "max_permissions_per_allocation = 65536",
            "relay.max_permissions_per_allocation",
        ),
        (
            "max_permissions_per_allocation = -1",
            "relay.max_permissions_per_allocation",
        ),
        (
            "max_channels_per_allocation = 0",
            "relay.max_channels_per_allocation",
        ),
        (
            "max_channels_per_allocation = 16385",
            "relay.max_channels_per_allocation",
        ),
        ("max_bps = -1", "relay.max_bps"),
        ("max_bps = 1.5", "relay.max_bps"),
        ("max_bps = \"1M\"", "relay.max_bps"),
    ] {
        names(&err(&format!("[relay]\n{text}")), key, FILE);
    }
    let m = err("[relay]\nmax_permissions_per_allocation = 65536");
    assert!(m.contains("1..=65535"), "{m}");
    let m = err("[relay]\nmax_channels_per_allocation = 0");
    assert!(m.contains("1..=16384"), "{m}");
}

#[test]
fn relay_limits_on_cli() {
    let c = Config::default()
        .apply_cli(&cli(&[
            "--total-quota",
            "1000",
            "--max-permissions-per-allocation",
            "10",
            "--max-channels-per-allocation=20",
            "--max-bps",
            "62500",
        ]))
        .expect("limit flags");
    assert_eq!(c.relay.limits.total_quota, 1000);
    assert_eq!(c.relay.limits.max_permissions, 10);
    assert_eq!(c.relay.limits.max_channels, 20);
    assert_eq!(c.relay.limits.max_bps, 62_500);

    // The command line overrides the file; absent flags keep its values.
    let file = parse(
        "[relay]\ntotal_quota = 5\nmax_permissions_per_allocation = 6\n\
         max_channels_per_allocation = 7\nmax_bps = 8",
    )
    .expect("file");
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);
    let c = file
        .apply_cli(&cli(&["--total-quota", "0", "--max-bps", "0"]))
        .expect("override");
    assert_eq!((c.relay.limits.total_quota, c.relay.limits.max_bps), (0, 0));
    assert_eq!(c.relay.limits.max_permissions, 6);
    assert_eq!(c.relay.limits.max_channels, 7);

    for (args, flag) in [
        (&["--total-quota=-1"][..], "--total-quota"),
        (&["--total-quota", "4294967296"], "--total-quota"),
        (
            &["--max-permissions-per-allocation", "0"],
            "--max-permissions-per-allocation",
        ),
        (
            &["--max-permissions-per-allocation", "65536"],
            "--max-permissions-per-allocation",
        ),
        (
            &["--max-channels-per-allocation", "0"],
            "--max-channels-per-allocation",
        ),
        (
            &["--max-channels-per-allocation", "16385"],
            "--max-channels-per-allocation",
        ),
        (&["--max-bps", "1M"], "--max-bps"),
        (&["--max-bps=-5"], "--max-bps"),
    ] {
        names(&cli_err(args), flag, "command line");
    }
}

#[test]
fn relay_limit_env_vars() {
    // The environment itself is exercised in tests/config_env.rs; here only
    // the flag <-> variable pairing (no test here touches the environment).
    use clap::CommandFactory;
    let cmd = Cli::command();
    for (flag, env) in [
        ("total-quota", "TERND_TOTAL_QUOTA"),
        (
            "max-permissions-per-allocation",
            "TERND_MAX_PERMISSIONS_PER_ALLOCATION",
        ),
        (
            "max-channels-per-allocation",
            "TERND_MAX_CHANNELS_PER_ALLOCATION",
        ),
        ("max-bps", "TERND_MAX_BPS"),
        ("max-allocations-per-ip", "TERND_MAX_ALLOCATIONS_PER_IP"),
        ("unauth-rate-limit", "TERND_UNAUTH_RATE_LIMIT"),
        ("unauth-rate-burst", "TERND_UNAUTH_RATE_BURST"),
    ] {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("no --{flag}"));
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(env),
            "--{flag}"
        );
    }
}

// ---------------------------------------------------------------------------
// Precedence

#[test]
fn cli_overrides_file_and_lists_replace() {
    let file = parse(
        "listen = [\"127.0.0.1:3478\", \"127.0.0.1:3479\"]\nrealm = \"file\"\nworkers = 2\n[relay]\ndeny_peer = [\"10.0.0.0/8\"]\nports = \"10000-20000\"",
    )
    .expect("file");
    let c = file
        .clone()
        .apply_cli(&cli(&["--realm", "cli", "--listen", "127.0.0.2:3478"]))
        .expect("cli");
    assert_eq!(c.realm, "cli");
    assert_eq!(
        c.listen,
        vec![sa("127.0.0.2:3478")],
        "CLI list replaces the file's"
    );
    assert_eq!(c.workers, 2, "file value kept");
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 10000,
            hi: 20000
        }
    );
    assert_eq!(c.relay.deny_peer.len(), 1);

    // An explicitly empty list clears the file's list.
    let c = file.apply_cli(&cli(&["--deny-peer", ""])).expect("clear");
    assert!(c.relay.deny_peer.is_empty());
}

#[test]
fn bool_flags() {
    let c = Config::default()
        .apply_cli(&cli(&[
            "--stun-backward-compatibility",
            "--rfc5766-channel-numbers",
        ]))
        .expect("flags");
    assert!(c.stun_backward_compatibility && c.relay.rfc5766_channel_numbers);

    let file = parse("stun_backward_compatibility = true\n[relay]\nrfc5766_channel_numbers = true")
        .expect("file");
    // Absent flags keep the file's value...
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);
    // ...and explicit false overrides it.
    let c = file
        .apply_cli(&cli(&[
            "--stun-backward-compatibility=false",
            "--rfc5766-channel-numbers",
            "no",
        ]))
        .expect("false");
    assert!(!c.stun_backward_compatibility && !c.relay.rfc5766_channel_numbers);

    // UDP GSO: on by default, off from the file or the command line, back on from the flag.
    assert!(Config::default().udp_gso);
    let off = parse("udp_gso = false").expect("file");
    assert!(!off.udp_gso);
    assert!(
        off.clone()
            .apply_cli(&cli(&["--udp-gso"]))
            .expect("on")
            .udp_gso
    );
    assert!(
        !Config::default()
            .apply_cli(&cli(&["--udp-gso", "false"]))
            .expect("off")
            .udp_gso
    );
    assert!(parse("udp_gso = \"yes\"").is_err(), "a TOML boolean");

    assert!(!cli(&[]).check_config);
    assert!(cli(&["--check-config"]).check_config);
}

#[test]
fn load_reads_file_then_cli() {
    let f = TempFile::new("load.toml", "realm = \"from-file\"\nworkers = 3\n");
    let c = Config::load(&cli(&["-c", f.path(), "--workers", "5"])).expect("load");
    assert_eq!(c.realm, "from-file");
    assert_eq!(c.workers, 5);

    // Errors in the file name the file path.
    let bad = TempFile::new("bad.toml", "[relay]\nportz = 1\n");
    let m = Config::load(&cli(&["--config", bad.path()]))
        .expect_err("unknown key")
        .to_string();
    assert_eq!(
        m,
        format!(
            "{}: unknown key `relay.portz`: did you mean `relay.ports`?",
            bad.path()
        )
    );

    // A missing config file names --config and the path.
    let m = Config::load(&cli(&["-c", "/nonexistent/ternd.toml"]))
        .expect_err("missing")
        .to_string();
    names(&m, "--config", "command line");
    assert!(m.contains("/nonexistent/ternd.toml"), "{m}");

    // The CLI overrides a secret_file in the file before it is read.
    let g = TempFile::new("load-secrets", "cli-file-secret\n");
    let f = TempFile::new(
        "load2.toml",
        "[auth]\nsecret_file = \"/nonexistent/secrets\"\n",
    );
    let c = Config::load(&cli(&["-c", f.path(), "--secret-file", g.path()]))
        .and_then(Config::load_files)
        .expect("override");
    assert_eq!(c.auth.secrets, vec!["cli-file-secret"]);
}

#[test]
fn error_accessors() {
    let e = parse("[relay]\nports = \"2-1\"").expect_err("inverted");
    assert_eq!(e.key(), Some("relay.ports"));
    assert_eq!(e.origin(), &Origin::File(FILE.into()));
    let e = Config::default()
        .apply_cli(&cli(&["--realm", ""]))
        .expect_err("empty realm");
    assert_eq!(e.key(), Some("--realm"));
    assert_eq!(e.origin(), &Origin::CommandLine);
}

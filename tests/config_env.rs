//! Environment-variable handling of `ternd::config`.
//!
//! This file holds exactly ONE test: it mutates the process environment, and
//! a separate test binary is a separate process, so no other test can
//! observe these variables. Setting them is `unsafe` since edition 2024, the one place
//! outside ternd-io that needs it (the workspace denies `unsafe_code`).

#![allow(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ternd::config::{Cli, Config, Origin, PortRange};

fn set(name: &str, value: &str) {
    // SAFETY: this binary runs a single test, so no other thread reads or
    // writes the environment concurrently.
    unsafe { std::env::set_var(name, value) }
}

fn unset(name: &str) {
    // SAFETY: as for `set`.
    unsafe { std::env::remove_var(name) }
}

fn clear_all() {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("TERND_"))
        .collect();
    for name in names {
        unset(&name);
    }
}

fn parse(args: &[&str]) -> Cli {
    let mut v = vec!["ternd"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).unwrap_or_else(|e| panic!("clap rejected {args:?}: {e}"))
}

#[test]
fn environment_precedence_and_errors() {
    clear_all();

    let dir = std::env::temp_dir();
    let file_path = dir.join(format!("ternd-config-env-{}.toml", std::process::id()));
    let mut f = std::fs::File::create(&file_path).expect("create config");
    writeln!(
        f,
        "realm = \"file\"\nlisten = [\"127.0.0.1:1000\"]\nworkers = 2\nmax_tcp_connections = 7\n\
         [relay]\nports = \"10000-20000\"\ndeny_peer = [\"10.0.0.0/8\"]\nrfc5766_channel_numbers = true"
    )
    .expect("write config");
    drop(f);
    let file = file_path.to_str().expect("utf-8 path");

    // 1. File only (named through TERND_CONFIG).
    set("TERND_CONFIG", file);
    let c = Config::load(&parse(&[])).expect("file via TERND_CONFIG");
    assert_eq!(c.realm, "file");
    assert_eq!(c.workers, 2);

    // 2. Environment beats the file; lists replace; bools and durations parse.
    set("TERND_REALM", "env");
    set("TERND_LISTEN", "127.0.0.1:2000,[::1]:2000");
    set("TERND_RELAY_PORTS", "30000-31000");
    set("TERND_STUN_BACKWARD_COMPATIBILITY", "true");
    set("TERND_RFC5766_CHANNEL_NUMBERS", "false");
    set("TERND_NONCE_LIFETIME", "90");
    set("TERND_SECRET", "current,previous");
    set("TERND_DENY_PEER", "");
    let c = Config::load(&parse(&[])).expect("env over file");
    assert_eq!(c.realm, "env");
    let sa = |s: &str| s.parse::<SocketAddr>().expect("addr");
    assert_eq!(c.listen, vec![sa("127.0.0.1:2000"), sa("[::1]:2000")]);
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 30000,
            hi: 31000
        }
    );
    assert!(c.stun_backward_compatibility);
    assert!(
        !c.relay.rfc5766_channel_numbers,
        "env false overrides file true"
    );
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(90));
    assert_eq!(c.auth.secrets, vec!["current", "previous"]);
    assert!(
        c.relay.deny_peer.is_empty(),
        "empty env var clears the file's list"
    );
    assert_eq!(c.workers, 2, "file value kept where env is silent");
    assert_eq!(c.max_tcp_connections, 7);

    // 3. The command line beats the environment.
    let c = Config::load(&parse(&[
        "--realm",
        "cli",
        "--listen",
        "127.0.0.1:3000",
        "--stun-backward-compatibility=false",
    ]))
    .expect("cli over env");
    assert_eq!(c.realm, "cli");
    assert_eq!(c.listen, vec![sa("127.0.0.1:3000")]);
    assert!(!c.stun_backward_compatibility);
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 30000,
            hi: 31000
        },
        "env kept"
    );

    // 4. Errors in environment values name the variable and the flag...
    set("TERND_RELAY_PORTS", "60000-50000");
    let e = Config::load(&parse(&[])).expect_err("inverted env range");
    assert_eq!(
        e.to_string(),
        "environment (TERND_RELAY_PORTS): `--relay-ports`: port range inverted (60000-50000)"
    );
    assert_eq!(e.origin(), &Origin::Env("TERND_RELAY_PORTS".into()));
    // ...unless the command line overrode them with the bad value.
    let e = Config::load(&parse(&["--relay-ports", "5-1"])).expect_err("inverted cli range");
    assert_eq!(
        e.to_string(),
        "command line: `--relay-ports`: port range inverted (5-1)"
    );
    set("TERND_RELAY_PORTS", "30000-31000");

    set("TERND_LISTEN", "127.0.0.1:1,foo");
    let e = Config::load(&parse(&[])).expect_err("bad env address");
    let m = e.to_string();
    assert!(
        m.starts_with("environment (TERND_LISTEN): `--listen`: invalid socket address `foo`"),
        "{m}"
    );
    unset("TERND_LISTEN");

    set("TERND_USER", "nocolon");
    let m = Config::load(&parse(&[]))
        .expect_err("bad env user")
        .to_string();
    assert!(m.starts_with("environment (TERND_USER): `--user`: "), "{m}");
    assert!(!m.contains("nocolon"), "user specs may hold passwords: {m}");
    unset("TERND_USER");

    // A bad boolean in the environment is rejected by clap, naming the flag.
    set("TERND_STUN_BACKWARD_COMPATIBILITY", "perhaps");
    let e = Cli::try_parse_from(["ternd"]).expect_err("bad env bool");
    assert!(
        e.to_string().contains("--stun-backward-compatibility"),
        "{e}"
    );
    set("TERND_STUN_BACKWARD_COMPATIBILITY", "1");
    assert!(
        Config::load(&parse(&[]))
            .expect("TERND_STUN_BACKWARD_COMPATIBILITY=1")
            .stun_backward_compatibility
    );

    // 5. A missing config file named in the environment.
    set("TERND_CONFIG", "/nonexistent/ternd.toml");
    let m = Config::load(&parse(&[]))
        .expect_err("missing file")
        .to_string();
    assert!(
        m.starts_with("environment (TERND_CONFIG): `--config`: cannot read configuration file `/nonexistent/ternd.toml`"),
        "{m}"
    );

    // 6. http.listen from the environment.
    unset("TERND_CONFIG");
    set("TERND_HTTP_LISTEN", "127.0.0.1:8080");
    let c = Config::load(&parse(&[])).expect("http listen");
    assert_eq!(c.http.listen, Some("127.0.0.1:8080".parse().expect("addr")));
    assert!(c.not_yet_supported.is_empty());

    // 7. RFC 5780 from the environment; its errors name the variable.
    set("TERND_LISTEN", "127.0.0.1:3478");
    set("TERND_RFC5780", "true");
    set("TERND_ALT_IP", "127.0.0.2");
    set("TERND_ALT_PORT", "3479");
    let c = Config::load(&parse(&[])).expect("rfc5780 from env");
    assert!(c.rfc5780);
    assert_eq!(c.alt_ip, Some("127.0.0.2".parse().expect("ip")));
    assert_eq!(c.alt_port, Some(3479));
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:3478")));
    set("TERND_ALT_PORT", "3478");
    let e = Config::load(&parse(&[])).expect_err("alt port = primary port");
    assert_eq!(e.origin(), &Origin::Env("TERND_ALT_PORT".into()));
    assert_eq!(e.key(), Some("--alt-port"));
    set("TERND_ALT_PORT", "0");
    set("TERND_RFC5780", "false");
    let e = Config::load(&parse(&[])).expect_err("alt ip without rfc5780");
    assert_eq!(e.origin(), &Origin::Env("TERND_ALT_IP".into()));
    assert_eq!(e.key(), Some("--alt-ip"));
    set("TERND_ALT_IP", "");
    let c = Config::load(&parse(&[])).expect("rfc5780 off");
    assert!(!c.rfc5780 && c.alt_ip.is_none() && c.alt_port.is_none());
    for name in [
        "TERND_LISTEN",
        "TERND_RFC5780",
        "TERND_ALT_IP",
        "TERND_ALT_PORT",
    ] {
        unset(name);
    }

    // 8. --check-config from the environment.
    set("TERND_CHECK_CONFIG", "true");
    assert!(parse(&[]).check_config);
    unset("TERND_CHECK_CONFIG");

    // 9. Secrets from files (TERND_*_FILE), as Kubernetes mounts them.
    secrets_from_files(&dir);

    clear_all();
    let _ = std::fs::remove_file(&file_path);
    assert_eq!(
        Config::load(&parse(&[])).expect("defaults"),
        Config::default()
    );
}

/// Section 9 of the test: `TERND_*_FILE` for every secret setting.
fn secrets_from_files(dir: &std::path::Path) {
    let file = |name: &str, text: &str| {
        let path = dir.join(format!("ternd-secret-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write secret file");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let admin = file("admin", "  0123456789abcdef0123\n");
    let hs = file("hs", "first-secret\n# a comment\n\n  second-secret  \n");
    let redis = file("redis", "redis://:pw@127.0.0.1:6379/2\n");
    let users = file("users", "alice:wonderland\nbob:builder\n");
    set("TERND_ADMIN_TOKEN_FILE", &admin);
    set("TERND_TOKEN_HS256_SECRET_FILE", &hs);
    set("TERND_CLUSTER_REDIS_URL_FILE", &redis);
    set("TERND_USER_FILE", &users);
    let cli = parse(&[]);
    let c = Config::load(&cli).expect("secrets from files");
    assert_eq!(c.http.admin_token.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(
        c.http.token_hs256_secrets,
        ["first-secret", "second-secret"]
    );
    assert_eq!(
        c.cluster.redis_url.as_deref(),
        Some("redis://:pw@127.0.0.1:6379/2")
    );
    assert_eq!(c.auth.users.len(), 2);
    assert!(
        !format!("{c:?}").contains("0123456789abcdef0123"),
        "redacted in Debug"
    );
    // Read again at every load, so a reload sees a rotated file.
    std::fs::write(&admin, "fedcba9876543210fedcba\n").expect("rotate");
    let c = Config::load(&cli).expect("rotated");
    assert_eq!(
        c.http.admin_token.as_deref(),
        Some("fedcba9876543210fedcba")
    );
    // The value is checked as if it were given inline, and the error names the variable.
    std::fs::write(&admin, "short").expect("write");
    let e = Config::load(&cli).expect_err("short admin token");
    assert_eq!(e.origin(), &Origin::Env("TERND_ADMIN_TOKEN_FILE".into()));
    assert!(e.to_string().contains("too short"), "{e}");
    assert!(!e.to_string().contains("short\""), "{e}");
    std::fs::write(&admin, " \n").expect("write");
    let m = Config::load(&cli).expect_err("empty file").to_string();
    assert!(m.contains("it is empty"), "{m}");
    std::fs::write(&admin, vec![b'a'; 70 * 1024]).expect("write");
    let m = Config::load(&cli).expect_err("huge file").to_string();
    assert!(m.contains("larger than 65536 bytes"), "{m}");
    set("TERND_ADMIN_TOKEN_FILE", "/nonexistent/admin_token");
    let m = Config::load(&parse(&[])).expect_err("missing").to_string();
    assert!(
        m.starts_with("environment (TERND_ADMIN_TOKEN_FILE): `TERND_ADMIN_TOKEN_FILE`: cannot read the secret from `/nonexistent/admin_token`"),
        "{m}"
    );
    // A value given twice is refused, whichever way the other one came.
    set("TERND_ADMIN_TOKEN_FILE", &admin);
    set("TERND_ADMIN_TOKEN", "0123456789abcdef0123");
    let m = Config::load(&parse(&[])).expect_err("both").to_string();
    assert!(
        m.contains("TERND_ADMIN_TOKEN is set too: give the secret one way"),
        "{m}"
    );
    unset("TERND_ADMIN_TOKEN");
    let m = Config::load(&parse(&["--admin-token", "0123456789abcdef0123"]))
        .expect_err("flag and file")
        .to_string();
    assert!(m.contains("--admin-token is set too"), "{m}");
    for name in [
        "TERND_ADMIN_TOKEN_FILE",
        "TERND_TOKEN_HS256_SECRET_FILE",
        "TERND_CLUSTER_REDIS_URL_FILE",
        "TERND_USER_FILE",
    ] {
        unset(name);
    }
    // TERND_SECRET_FILE stays --secret-file (one REST secret per line).
    unset("TERND_SECRET");
    let rest = file("rest", "rest-one\nrest-two\n");
    set("TERND_SECRET_FILE", &rest);
    let c = Config::load(&parse(&[]))
        .and_then(Config::load_files)
        .expect("secret file");
    assert_eq!(c.auth.secrets, ["rest-one", "rest-two"]);
    unset("TERND_SECRET_FILE");
    for name in ["admin", "hs", "redis", "users", "rest"] {
        let _ =
            std::fs::remove_file(dir.join(format!("ternd-secret-{}-{name}", std::process::id())));
    }
}

//! TURN over TLS, RFC 6062 TCP relaying, PROXY protocol, per-IP limits.

use super::*;

// ---------------------------------------------------------------------------
// TURN over TLS, RFC 6062 TCP relaying, PROXY protocol, per-IP limits

#[test]
fn connection_limits_and_tcp_relay() {
    let c = parse(
        "max_connections_per_ip = 1000000
tcp_relay = true
tls_handshake_timeout = \"2s\"",
    )
    .expect("file");
    assert_eq!(c.max_connections_per_ip, 1_000_000);
    assert!(c.tcp_relay);
    assert_eq!(c.tls_handshake_timeout, Duration::from_secs(2));
    assert!(parse("max_connections_per_ip = 1").is_ok());
    assert_eq!(
        parse("tls_handshake_timeout = 7")
            .expect("seconds")
            .tls_handshake_timeout,
        Duration::from_secs(7)
    );

    // The command line overrides; `--tcp-relay` alone means true, `=false` turns it off.
    let c = c
        .apply_cli(&cli(&[
            "--max-connections-per-ip",
            "3",
            "--tcp-relay=false",
            "--tls-handshake-timeout",
            "500ms",
        ]))
        .expect("cli");
    assert_eq!(c.max_connections_per_ip, 3);
    assert!(!c.tcp_relay);
    assert_eq!(c.tls_handshake_timeout, Duration::from_millis(500));
    let c = Config::default()
        .apply_cli(&cli(&["--tcp-relay"]))
        .expect("--tcp-relay");
    assert!(c.tcp_relay);
    let c = Config::default()
        .apply_cli(&cli(&["--tcp-relay", "yes"]))
        .expect("--tcp-relay yes");
    assert!(c.tcp_relay);
    // Absent flags keep the file's values.
    let file = parse("tcp_relay = true\nmax_connections_per_ip = 9").expect("file");
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);

    names(
        &err("max_connections_per_ip = 0"),
        "max_connections_per_ip",
        FILE,
    );
    names(
        &err("max_connections_per_ip = 1000001"),
        "max_connections_per_ip",
        FILE,
    );
    names(
        &err("max_connections_per_ip = -1"),
        "max_connections_per_ip",
        FILE,
    );
    names(
        &err("max_connections_per_ip = \"5\""),
        "max_connections_per_ip",
        FILE,
    );
    names(
        &cli_err(&["--max-connections-per-ip", "0"]),
        "--max-connections-per-ip",
        "command line",
    );
    names(
        &cli_err(&["--max-connections-per-ip", "many"]),
        "--max-connections-per-ip",
        "command line",
    );
    names(&err("tcp_relay = \"yes\""), "tcp_relay", FILE);
    names(
        &err("tls_handshake_timeout = 0"),
        "tls_handshake_timeout",
        FILE,
    );
    names(
        &err("tls_handshake_timeout = \"soon\""),
        "tls_handshake_timeout",
        FILE,
    );
    names(
        &cli_err(&["--tls-handshake-timeout", "0s"]),
        "--tls-handshake-timeout",
        "command line",
    );
    assert!(Cli::try_parse_from(["ternd", "--tcp-relay=maybe"]).is_err());
}

#[test]
fn drain_timeout_and_alternate_server() {
    // File forms: humantime strings, integer seconds, zero, empty = none.
    let c = parse("drain_timeout = \"2m\"\nalternate_server = \"203.0.113.8:3478\"").expect("file");
    assert_eq!(c.drain_timeout, Duration::from_secs(120));
    assert_eq!(c.alternate_server, Some(sa("203.0.113.8:3478")));
    let c = parse("drain_timeout = 45\nalternate_server = \"[2001:db8::8]:5349\"")
        .expect("seconds, IPv6");
    assert_eq!(c.drain_timeout, Duration::from_secs(45));
    assert_eq!(c.alternate_server, Some(sa("[2001:db8::8]:5349")));
    for zero in [
        "drain_timeout = 0",
        "drain_timeout = \"0\"",
        "drain_timeout = \"0s\"",
    ] {
        assert_eq!(
            parse(zero).expect(zero).drain_timeout,
            Duration::ZERO,
            "{zero}"
        );
    }
    assert_eq!(
        parse("alternate_server = \"\"")
            .expect("empty")
            .alternate_server,
        None
    );

    // Command-line forms override the file; absent flags keep it; an empty
    // value clears the alternate server.
    let file =
        parse("drain_timeout = \"1m\"\nalternate_server = \"192.0.2.9:3478\"").expect("file");
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);
    let c = file
        .clone()
        .apply_cli(&cli(&[
            "--drain-timeout",
            "1500ms",
            "--alternate-server",
            "[2001:db8::9]:3478",
        ]))
        .expect("cli");
    assert_eq!(c.drain_timeout, Duration::from_millis(1500));
    assert_eq!(c.alternate_server, Some(sa("[2001:db8::9]:3478")));
    let c = file
        .apply_cli(&cli(&["--drain-timeout", "0", "--alternate-server", ""]))
        .expect("zero, empty");
    assert_eq!(c.drain_timeout, Duration::ZERO);
    assert_eq!(c.alternate_server, None);
    let c = Config::load(&cli(&[
        "--drain-timeout=0s",
        "--alternate-server=10.1.2.3:443",
    ]))
    .expect("load");
    assert_eq!(c.drain_timeout, Duration::ZERO);
    assert_eq!(c.alternate_server, Some(sa("10.1.2.3:443")));

    // Bad durations name the key and the origin.
    for bad in [
        "drain_timeout = \"soon\"",
        "drain_timeout = -1",
        "drain_timeout = true",
        "drain_timeout = \"-5s\"",
    ] {
        names(&err(bad), "drain_timeout", FILE);
    }
    for bad in ["soon", "-1", "5 parsecs"] {
        names(
            &cli_err(&[&format!("--drain-timeout={bad}")]),
            "--drain-timeout",
            "command line",
        );
    }

    // Bad addresses name the key and the origin.
    for bad in [
        "alternate_server = \"203.0.113.8\"",
        "alternate_server = \"turn.example.com:3478\"",
        "alternate_server = \"0.0.0.0:3478\"",
        "alternate_server = \"[::]:3478\"",
        "alternate_server = \"203.0.113.8:0\"",
        "alternate_server = \"224.0.0.1:3478\"",
        "alternate_server = [\"203.0.113.8:3478\"]",
        "alternate_server = 3478",
    ] {
        names(&err(bad), "alternate_server", FILE);
    }
    for bad in ["nope", "203.0.113.8", "0.0.0.0:3478", "203.0.113.8:0"] {
        names(
            &cli_err(&["--alternate-server", bad]),
            "--alternate-server",
            "command line",
        );
    }
    let m = cli_err(&["--alternate-server", "nope"]);
    assert!(m.contains("nope"), "{m}");

    // Both show in the Cli's Debug output.
    let debug = format!(
        "{:?}",
        cli(&[
            "--drain-timeout",
            "7s",
            "--alternate-server",
            "192.0.2.1:3478"
        ])
    );
    assert!(debug.contains("drain_timeout: Some(\"7s\")"), "{debug}");
    assert!(debug.contains("192.0.2.1:3478"), "{debug}");
}

#[test]
fn tls_listen_needs_cert_and_key() {
    // No certificate: the error names tls_listen and where it came from.
    let m = err("tls_listen = [\"0.0.0.0:5349\"]");
    names(&m, "tls_listen", FILE);
    assert!(m.contains("tls_cert") && m.contains("--cert"), "{m}");
    let m = cli_err(&["--tls-listen", "0.0.0.0:5349"]);
    names(&m, "--tls-listen", "command line");

    // Only one of the pair.
    let dir = TempDir::new("tls-pair");
    let junk = dir.file("junk.pem", "not a certificate");
    let m = err(&format!(
        "tls_listen = [\"0.0.0.0:5349\"]\ntls_cert = \"{junk}\""
    ));
    names(&m, "tls_cert", FILE);
    assert!(m.contains("tls_key"), "{m}");
    let m = err(&format!("tls_key = \"{junk}\""));
    names(&m, "tls_key", FILE);
    assert!(m.contains("tls_cert"), "{m}");
    names(&cli_err(&["--cert", &junk]), "--cert", "command line");
    names(&cli_err(&["--key", &junk]), "--key", "command line");

    // Unreadable or unparsable files: the error names the key and the file.
    let m = err(&format!(
        "tls_listen = [\"0.0.0.0:5349\"]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"{junk}\""
    ));
    names(&m, "tls_cert", FILE);
    assert!(m.contains("/nonexistent/c.pem"), "{m}");
    let m = cli_err(&["--cert", &junk, "--key", &junk]);
    names(&m, "--cert", "command line");
    assert!(m.contains(&junk), "{m}");

    // Empty strings mean none: the shipped file's `tls_cert = ""` is fine.
    let c = parse("tls_cert = \"\"\ntls_key = \"\"\ntls_listen = []").expect("empty");
    assert_eq!(c, Config::default());
}

#[test]
fn tls_listen_with_certificate() {
    let Some(dir) = tls_files("tls-listen") else {
        return;
    };
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    let c = parse(&format!(
        "tls_listen = [\"0.0.0.0:5349\", \"[::]:5349\", \"127.0.0.1:0\"]\n\
         tls_cert = \"{cert}\"\ntls_key = \"{key}\""
    ))
    .expect("TLS config");
    assert_eq!(
        c.tls_listen,
        vec![sa("0.0.0.0:5349"), sa("[::]:5349"), sa("127.0.0.1:0")]
    );
    assert_eq!(c.tls_cert, Some(PathBuf::from(&cert)));
    assert_eq!(c.tls_key, Some(PathBuf::from(&key)));
    // Re-applying an empty command line keeps everything.
    assert_eq!(c.clone().apply_cli(&cli(&[])).expect("same"), c);

    // ":PORT" means every interface, both families.
    let c = Config::default()
        .apply_cli(&cli(&[
            "--tls-listen",
            ":443",
            "--cert",
            &cert,
            "--key",
            &key,
        ]))
        .expect("cli");
    assert_eq!(c.tls_listen, vec![sa("0.0.0.0:443"), sa("[::]:443")]);
    assert_eq!(c.tls_cert, Some(PathBuf::from(&cert)));
    // A comma-separated list (the environment's form) works too.
    let c = Config::default()
        .apply_cli(&cli(&[
            "--tls-listen=127.0.0.1:5349,[::1]:5349",
            "--cert",
            &cert,
            "--key",
            &key,
        ]))
        .expect("list");
    assert_eq!(c.tls_listen, vec![sa("127.0.0.1:5349"), sa("[::1]:5349")]);
    // An empty value on the command line clears the list (the certificate
    // and key are kept, and still checked).
    let c = c.apply_cli(&cli(&["--tls-listen", ""])).expect("clear");
    assert!(c.tls_listen.is_empty());

    // Certificate and key without listeners are checked but harmless.
    let c = parse(&format!("tls_cert = \"{cert}\"\ntls_key = \"{key}\"")).expect("no listeners");
    assert!(c.tls_listen.is_empty() && c.tls_cert.is_some());

    // A key that does not fit the certificate names the key and both files.
    let other = tls_files("tls-listen-other").expect("openssl worked once");
    let m = cli_err(&[
        "--tls-listen",
        "0.0.0.0:5349",
        "--cert",
        &cert,
        "--key",
        &other.path("key.pem"),
    ]);
    names(&m, "--key", "command line");
    assert!(m.contains(&other.path("key.pem")), "{m}");
    // A certificate file where the key belongs.
    let m = err(&format!(
        "tls_listen = [\":5349\"]\ntls_cert = \"{cert}\"\ntls_key = \"{cert}\""
    ));
    names(&m, "tls_key", FILE);
    assert!(m.contains(&cert), "{m}");

    // Bad addresses and duplicates.
    let tls = format!("tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n");
    names(
        &err(&format!("{tls}tls_listen = [\"localhost:5349\"]")),
        "tls_listen",
        FILE,
    );
    names(
        &err(&format!("{tls}tls_listen = [\":99999\"]")),
        "tls_listen",
        FILE,
    );
    names(
        &err(&format!(
            "{tls}tls_listen = [\"0.0.0.0:5349\", \"0.0.0.0:5349\"]"
        )),
        "tls_listen",
        FILE,
    );
    names(
        &err(&format!("{tls}tls_listen = [\":5349\", \"[::]:5349\"]")),
        "tls_listen",
        FILE,
    );
    names(&err("tls_listen = \"0.0.0.0:5349\""), "tls_listen", FILE);
}

#[test]
fn tls_listen_must_not_reuse_a_tcp_listener() {
    let Some(dir) = tls_files("tls-dup") else {
        return;
    };
    let tls = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.path("cert.pem"),
        dir.path("key.pem")
    );
    // The same address as a (default) TCP listener.
    let m = err(&format!("{tls}tls_listen = [\"0.0.0.0:3478\"]"));
    names(&m, "tls_listen", FILE);
    assert!(m.contains("0.0.0.0:3478"), "{m}");
    let m = err(&format!(
        "{tls}listen = [\"127.0.0.1:3478\"]\ntls_listen = [\"127.0.0.1:5349\", \"127.0.0.1:3478\"]"
    ));
    names(&m, "tls_listen", FILE);
    assert!(m.contains("`listen` from test.toml"), "{m}");
    // A specific address under a TCP wildcard on the same port (and vice versa).
    names(
        &err(&format!("{tls}tls_listen = [\"127.0.0.1:3478\"]")),
        "tls_listen",
        FILE,
    );
    names(
        &err(&format!(
            "{tls}listen = [\"127.0.0.1:3478\"]\ntls_listen = [\":3478\"]"
        )),
        "tls_listen",
        FILE,
    );
    // Other port, other family or port 0 (a free port each) are fine.
    let c = parse(&format!(
        "{tls}listen = [\"127.0.0.1:0\", \"0.0.0.0:3478\"]\n\
         tls_listen = [\"127.0.0.1:0\", \"[::1]:3478\", \"0.0.0.0:5349\"]"
    ))
    .expect("distinct");
    assert_eq!(c.tls_listen.len(), 3);

    // The command line's --tls-listen is blamed, with its origin...
    let base = parse(&format!("{tls}listen = [\"127.0.0.1:3478\"]")).expect("base");
    let m = base
        .apply_cli(&cli(&["--tls-listen", "127.0.0.1:3478"]))
        .expect_err("dup")
        .to_string();
    names(&m, "--tls-listen", "command line");
    // ...and a --listen that collides with the file's tls_listen too.
    let with_tls = parse(&format!(
        "{tls}listen = [\"127.0.0.1:3478\"]\ntls_listen = [\"127.0.0.1:5349\"]"
    ))
    .expect("tls");
    let m = with_tls
        .apply_cli(&cli(&["--listen", "127.0.0.1:5349"]))
        .expect_err("dup")
        .to_string();
    names(&m, "tls_listen", "configuration");
    assert!(m.contains("--listen"), "{m}");
}

#[test]
fn proxy_protocol_listeners() {
    let Some(dir) = tls_files("proxy") else {
        return;
    };
    let tls = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.path("cert.pem"),
        dir.path("key.pem")
    );
    let c = parse(&format!(
        "{tls}listen = [\"127.0.0.1:3478\", \"[::1]:3478\"]\ntls_listen = [\":443\"]\n\
         proxy_protocol = [\"127.0.0.1:3478\", \":443\"]"
    ))
    .expect("proxy on TCP and TLS listeners");
    assert_eq!(
        c.proxy_protocol,
        vec![sa("127.0.0.1:3478"), sa("0.0.0.0:443"), sa("[::]:443")]
    );
    // A PROXY listener on one default TCP address, from the command line.
    let c = Config::default()
        .apply_cli(&cli(&["--proxy-protocol", "0.0.0.0:3478"]))
        .expect("default listener");
    assert_eq!(c.proxy_protocol, vec![sa("0.0.0.0:3478")]);
    let c = c.apply_cli(&cli(&["--proxy-protocol", ""])).expect("clear");
    assert!(c.proxy_protocol.is_empty());

    // Not a listener: the error names the key and its origin.
    let m = err("proxy_protocol = [\"0.0.0.0:3479\"]");
    names(&m, "proxy_protocol", FILE);
    assert!(m.contains("0.0.0.0:3479"), "{m}");
    let m = cli_err(&["--proxy-protocol", "127.0.0.1:3478"]);
    names(&m, "--proxy-protocol", "command line");
    // Exact match only: a specific IP under a wildcard listener is not one.
    names(
        &err("proxy_protocol = [\"127.0.0.1:3478\"]"),
        "proxy_protocol",
        FILE,
    );
    // Moving the listener away on the command line invalidates the file's entry.
    let file = parse("proxy_protocol = [\"0.0.0.0:3478\"]").expect("file");
    let m = file
        .apply_cli(&cli(&["--listen", "0.0.0.0:3479"]))
        .expect_err("moved")
        .to_string();
    names(&m, "proxy_protocol", "configuration");
    assert!(m.contains("--listen"), "{m}");
    names(
        &err("proxy_protocol = [\"0.0.0.0:3478\", \"0.0.0.0:3478\"]"),
        "proxy_protocol",
        FILE,
    );
    names(&err("proxy_protocol = [\"x\"]"), "proxy_protocol", FILE);
    names(
        &cli_err(&["--proxy-protocol", "nope"]),
        "--proxy-protocol",
        "command line",
    );
}

#[test]
fn tls_flags_redact_nothing_and_show_in_debug() {
    let c = cli(&[
        "--tls-listen",
        ":5349",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
        "--tcp-relay",
        "--proxy-protocol",
        ":5349",
        "--max-connections-per-ip",
        "5",
        "--tls-handshake-timeout",
        "3s",
    ]);
    let debug = format!("{c:?}");
    for needle in [
        "tls_listen",
        "c.pem",
        "k.pem",
        "tcp_relay: Some(true)",
        "proxy_protocol",
    ] {
        assert!(debug.contains(needle), "{needle}: {debug}");
    }
}

#[test]
fn unauth_limits_and_ip_cap_from_file_and_flags() {
    let c =
        parse("[relay]\nmax_allocations_per_ip = 0\nunauth_rate_limit = 0\nunauth_rate_burst = 1")
            .expect("limits");
    assert_eq!(c.relay.limits.max_allocations_per_ip, 0);
    assert_eq!(c.relay.unauth_rate_limit, 0);
    assert_eq!(c.relay.unauth_rate_burst, 1);
    let err = parse("[relay]\nunauth_rate_burst = 0").expect_err("burst 0");
    assert!(err.to_string().contains("unauth_rate_burst"), "{err}");
    assert!(parse("[relay]\nunauth_rate_limit = -1").is_err());

    let c = Config::load(&cli(&[
        "--max-allocations-per-ip",
        "5",
        "--unauth-rate-limit",
        "10",
        "--unauth-rate-burst",
        "20",
    ]))
    .expect("flags");
    assert_eq!(c.relay.limits.max_allocations_per_ip, 5);
    assert_eq!(c.relay.unauth_rate_limit, 10);
    assert_eq!(c.relay.unauth_rate_burst, 20);
    assert!(Config::load(&cli(&["--unauth-rate-burst", "0"])).is_err());
}

//! File errors name the key and the file.

use super::*;

// ---------------------------------------------------------------------------
// File errors name the key and the file

#[test]
fn unknown_keys() {
    let m = err("[relay]\nportz = \"1-2\"");
    assert_eq!(
        m,
        "test.toml: unknown key `relay.portz`: did you mean `relay.ports`?"
    );
    names(&err("bogus = 1"), "bogus", FILE);
    names(&err("[logging]\nlevel = \"info\""), "logging", FILE);
    names(&err("[log]\nlevl = \"info\""), "log.levl", FILE);
    names(&err("[http]\nport = 1"), "http.port", FILE);
    names(&err("[auth]\nsecret = [\"x\"]"), "auth.secret", FILE);
    names(
        &err("[[auth.users]]\nname = \"a\"\npassword = \"b\"\nrole = \"admin\""),
        "auth.users[0].role",
        FILE,
    );
}

#[test]
fn wrong_types() {
    let m = err("realm = 5");
    names(&m, "realm", FILE);
    assert!(m.contains("expected a string, found an integer"), "{m}");
    names(&err("listen = \"0.0.0.0:3478\""), "listen", FILE);
    names(&err("listen = [3478]"), "listen[0]", FILE);
    names(&err("workers = \"4\""), "workers", FILE);
    names(
        &err("stun_backward_compatibility = \"yes\""),
        "stun_backward_compatibility",
        FILE,
    );
    names(&err("relay = 1"), "relay", FILE);
    names(&err("[relay]\nports = 49152"), "relay.ports", FILE);
    names(&err("[relay]\nuser_quota = -1"), "relay.user_quota", FILE);
    names(&err("[auth]\nusers = [\"alice\"]"), "auth.users[0]", FILE);
}

#[test]
fn syntax_error_names_file_and_line() {
    let m = err("realm = \"x\"\nlisten = [\n");
    assert!(m.starts_with("test.toml: invalid TOML at line "), "{m}");
    let m = err("realm = \"a\"\nrealm = \"b\"\n");
    assert!(m.starts_with("test.toml: invalid TOML at line 2"), "{m}");
    assert!(m.contains("realm"), "{m}");
}

#[test]
fn bad_addresses() {
    let m = err("listen = [\"foo\"]");
    names(&m, "listen", FILE);
    assert!(m.contains("invalid socket address `foo`"), "{m}");
    names(&err("listen = []"), "listen", FILE);
    names(
        &err("listen = [\"127.0.0.1:1\", \"127.0.0.1:1\"]"),
        "listen",
        FILE,
    );
    names(
        &err("[http]\nlisten = \"localhost:80\""),
        "http.listen",
        FILE,
    );
    names(
        &err("[relay]\nrelay_ips = [\"1.2.3\"]"),
        "relay.relay_ips",
        FILE,
    );
    names(
        &err("[relay]\nrelay_ips = [\"0.0.0.0\"]"),
        "relay.relay_ips",
        FILE,
    );

    let m = cli_err(&["--listen", "foo"]);
    assert_eq!(
        m,
        "command line: `--listen`: invalid socket address `foo` (expected IP:PORT, e.g. 0.0.0.0:3478 or [::]:3478)"
    );
    names(
        &cli_err(&["--http-listen", "8080"]),
        "--http-listen",
        "command line",
    );
    names(&cli_err(&["--relay-ip", "x"]), "--relay-ip", "command line");
}

#[test]
fn port_ranges() {
    let m = err("[relay]\nports = \"60000-50000\"");
    assert_eq!(
        m,
        "test.toml: `relay.ports`: port range inverted (60000-50000)"
    );
    names(&err("[relay]\nports = \"0-100\""), "relay.ports", FILE);
    names(&err("[relay]\nports = \"100-0\""), "relay.ports", FILE);
    names(&err("[relay]\nports = \"1000\""), "relay.ports", FILE);
    names(&err("[relay]\nports = \"1000-70000\""), "relay.ports", FILE);
    assert!(err("[relay]\nports = \"0-100\"").contains("port 0"));

    let m = cli_err(&["--relay-ports", "60000-50000"]);
    assert_eq!(
        m,
        "command line: `--relay-ports`: port range inverted (60000-50000)"
    );
    names(
        &cli_err(&["--relay-ports", "0-10"]),
        "--relay-ports",
        "command line",
    );

    let r: PortRange = "1-1".parse().expect("single port");
    assert_eq!(
        (r.len(), r.is_empty(), r.contains(1), r.contains(2)),
        (1, false, true, false)
    );
    let r: PortRange = " 10000-30000 ".parse().expect("range");
    assert_eq!(r.to_string(), "10000-30000");
    assert_eq!(r.len(), 20001);
    assert_eq!(PortRange::default().to_string(), "49152-65535");
}

#[test]
fn lifetimes_max_below_default() {
    let m = err("[relay]\ndefault_allocation_lifetime = \"1h\"\nmax_allocation_lifetime = \"30m\"");
    names(&m, "relay.max_allocation_lifetime", FILE);
    assert!(m.contains("relay.default_allocation_lifetime"), "{m}");

    // Only the default given, above the built-in maximum: the default is blamed.
    names(
        &err("[relay]\ndefault_allocation_lifetime = \"2h\""),
        "relay.default_allocation_lifetime",
        FILE,
    );

    // The command line value is blamed when it breaks a valid file.
    let m = parse("[relay]\ndefault_allocation_lifetime = \"20m\"")
        .expect("valid")
        .apply_cli(&cli(&["--max-allocation-lifetime", "15m"]))
        .expect_err("max < default");
    let m = m.to_string();
    names(&m, "--max-allocation-lifetime", "command line");

    // Equal is fine.
    let c = parse("[relay]\ndefault_allocation_lifetime = 600\nmax_allocation_lifetime = \"10m\"")
        .expect("equal");
    assert_eq!(
        c.relay.max_allocation_lifetime,
        c.relay.default_allocation_lifetime
    );
}

#[test]
fn bad_cidrs() {
    let m = err("[relay]\nallow_peer = [\"10.0.0.0/33\"]");
    names(&m, "relay.allow_peer", FILE);
    assert!(m.contains("10.0.0.0/33"), "{m}");
    names(
        &err("[relay]\ndeny_peer = [\"not-a-net\"]"),
        "relay.deny_peer",
        FILE,
    );
    names(
        &cli_err(&["--deny-peer", "10.0.0.0/8,bad"]),
        "--deny-peer",
        "command line",
    );
    names(
        &cli_err(&["--allow-peer", "::/129"]),
        "--allow-peer",
        "command line",
    );
}

#[test]
fn relay_ips_one_per_family() {
    let m = err("[relay]\nrelay_ips = [\"192.0.2.1\", \"192.0.2.2\"]");
    names(&m, "relay.relay_ips", FILE);
    assert!(m.contains("IPv4"), "{m}");
    names(
        &err("[relay]\nrelay_ips = [\"2001:db8::1\", \"::2\"]"),
        "relay.relay_ips",
        FILE,
    );
    names(
        &cli_err(&["--relay-ip", "192.0.2.1", "--relay-ip", "192.0.2.2"]),
        "--relay-ip",
        "command line",
    );
    let c = Config::default()
        .apply_cli(&cli(&["--relay-ip", "192.0.2.1,2001:db8::1"]))
        .expect("one per family");
    assert_eq!(c.relay.relay_ips.len(), 2);
}

#[test]
fn external_ips() {
    let m = err("[relay]\nexternal_ips = [\"203.0.113.1/fd00::1\"]");
    names(&m, "relay.external_ips", FILE);
    assert!(m.contains("same family"), "{m}");
    names(
        &err("[relay]\nexternal_ips = [\"203.0.113.1\", \"203.0.113.2\"]"),
        "relay.external_ips",
        FILE,
    );
    names(
        &err("[relay]\nexternal_ips = [\"203.0.113.1/\"]"),
        "relay.external_ips",
        FILE,
    );
    names(
        &cli_err(&["--external-ip", "2001:db8::1/10.0.0.1"]),
        "--external-ip",
        "command line",
    );

    let e: ExternalIp = "203.0.113.1/10.0.0.1".parse().expect("pair");
    assert_eq!(e.to_string(), "203.0.113.1/10.0.0.1");
    let e: ExternalIp = "2001:db8::1".parse().expect("single");
    assert_eq!(e.to_string(), "2001:db8::1");
}

#[test]
fn users_in_file() {
    let m = err(
        "[[auth.users]]\nname = \"a\"\npassword = \"p\"\nkey = \"0123456789abcdef0123456789abcdef\"",
    );
    names(&m, "auth.users[0]", FILE);
    assert!(m.contains("not both"), "{m}");
    names(&err("[[auth.users]]\nname = \"a\""), "auth.users[0]", FILE);
    let m = err("[[auth.users]]\nname = \"a\"\nkey = \"0123456789abcdef0123456789abcdeg\"");
    names(&m, "auth.users[0].key", FILE);
    assert!(m.contains("hexadecimal"), "{m}");
    names(
        &err("[[auth.users]]\nname = \"a\"\nkey = \"0123\""),
        "auth.users[0].key",
        FILE,
    );
    names(
        &err("[[auth.users]]\npassword = \"p\""),
        "auth.users[0].name",
        FILE,
    );
    names(
        &err("[[auth.users]]\nname = \"\"\npassword = \"p\""),
        "auth.users[0].name",
        FILE,
    );
    names(
        &err("[[auth.users]]\nname = \"a\"\npassword = \"\""),
        "auth.users[0].password",
        FILE,
    );
    names(
        &err(
            "[[auth.users]]\nname = \"a\"\npassword = \"p\"\n[[auth.users]]\nname = \"a\"\npassword = \"q\"",
        ),
        "auth.users",
        FILE,
    );
    // The second user is reported with its own index.
    names(
        &err(
            "[[auth.users]]\nname = \"a\"\npassword = \"p\"\n[[auth.users]]\nname = \"b\"\nkey = \"zz\"",
        ),
        "auth.users[1].key",
        FILE,
    );
}

#[test]
fn users_on_cli() {
    let c = Config::default()
        .apply_cli(&cli(&["--user", "alice:pa:ss", "--user", "bob:x"]))
        .expect("users");
    assert_eq!(c.auth.users.len(), 2);
    assert_eq!(c.auth.users[0].name, "alice");
    assert_eq!(
        c.auth.users[0].credential,
        UserCredential::Password("pa:ss".into())
    );

    let m = cli_err(&["--user", "alice"]);
    names(&m, "--user", "command line");
    assert!(m.contains("NAME:PASSWORD"), "{m}");
    names(&cli_err(&["--user", ":pw"]), "--user", "command line");
    names(&cli_err(&["--user", "alice:"]), "--user", "command line");
    names(
        &cli_err(&["--user", "a:1", "--user", "a:2"]),
        "--user",
        "command line",
    );

    // Passwords never appear in messages or Debug output.
    let m = cli_err(&["--user", "secretpw"]);
    assert!(!m.contains("secretpw"), "{m}");
    let dbg = format!(
        "{c:?} {:?}",
        cli(&["--user", "alice:hunter2", "--secret", "s3cr3t"])
    );
    assert!(!dbg.contains("hunter2") && !dbg.contains("s3cr3t"), "{dbg}");
}

#[test]
fn secrets_and_secret_file() {
    let f = TempFile::new(
        "secrets",
        "# current first\n  file-one  \n\n# old\nfile-two\n",
    );
    let text = format!(
        "[auth]\nsecrets = [\"inline\"]\nsecret_file = \"{}\"\n",
        f.path()
    );
    // Parsing reads no file; loading appends the file's secrets.
    let parsed = Config::from_toml_str(&text, FILE).expect("parse");
    assert_eq!(parsed.auth.secrets, vec!["inline"]);
    let c = parse(&text).expect("secret file");
    assert_eq!(c.auth.secrets, vec!["inline", "file-one", "file-two"]);
    assert_eq!(c.auth.secret_file.as_deref(), Some(f.0.as_path()));
    let apply = |args: &[&str]| {
        parsed
            .clone()
            .apply_cli(&cli(args))
            .and_then(Config::load_files)
    };

    // --secret replaces the inline secrets; the file's are still appended once.
    let c2 = apply(&["--secret", "cli1,cli2"]).expect("--secret");
    assert_eq!(
        c2.auth.secrets,
        vec!["cli1", "cli2", "file-one", "file-two"]
    );

    // --secret-file replaces the file.
    let g = TempFile::new("secrets2", "other\n");
    let c3 = apply(&["--secret-file", g.path()]).expect("--secret-file");
    assert_eq!(c3.auth.secrets, vec!["inline", "other"]);

    // Secrets nothing changes come out the same.
    let c4 = apply(&["--realm", "x"]).expect("realm");
    assert_eq!(c4.auth.secrets, c.auth.secrets);

    // Missing file: names key and path.
    let missing = std::env::temp_dir().join("ternd-config-definitely-missing-secrets");
    let m = err(&format!("[auth]\nsecret_file = \"{}\"", missing.display()));
    names(&m, "auth.secret_file", FILE);
    assert!(m.contains(&missing.display().to_string()), "{m}");
    let m = cli_err(&["--secret-file", &missing.display().to_string()]);
    names(&m, "--secret-file", "command line");

    // A file without secrets is an error.
    let empty = TempFile::new("secrets-empty", "# nothing\n\n");
    names(
        &err(&format!("[auth]\nsecret_file = \"{}\"", empty.path())),
        "auth.secret_file",
        FILE,
    );

    // Empty secret strings are errors.
    names(
        &err("[auth]\nsecrets = [\"a\", \"\"]"),
        "auth.secrets",
        FILE,
    );
    names(&cli_err(&["--secret", "a,,b"]), "--secret", "command line");
}

#[test]
fn realm_and_software_limits() {
    names(&err("realm = \"\""), "realm", FILE);
    names(
        &err(&format!("realm = \"{}\"", "x".repeat(128))),
        "realm",
        FILE,
    );
    assert!(parse(&format!("realm = \"{}\"", "x".repeat(127))).is_ok());
    // 127 four-byte characters = 508 bytes: fine by bytes, fine by chars.
    assert!(parse(&format!("realm = \"{}\"", "𝄞".repeat(127))).is_ok());
    names(
        &err(&format!("software = \"{}\"", "y".repeat(200))),
        "software",
        FILE,
    );
    names(&cli_err(&["--realm", ""]), "--realm", "command line");
    let c = Config::default()
        .apply_cli(&cli(&["--software", "ternd 0.1"]))
        .expect("software");
    assert_eq!(c.software.as_deref(), Some("ternd 0.1"));
}

#[test]
fn other_ranges() {
    names(&err("max_frame_size = 547"), "max_frame_size", FILE);
    names(&err("max_frame_size = 65541"), "max_frame_size", FILE);
    assert!(parse("max_frame_size = 548").is_ok());
    names(&err("max_tcp_connections = 0"), "max_tcp_connections", FILE);
    names(
        &err("[relay]\nuser_quota = 4294967296"),
        "relay.user_quota",
        FILE,
    );
    names(
        &err("[auth]\nrest_separator = \"::\""),
        "auth.rest_separator",
        FILE,
    );
    names(
        &err("[auth]\nrest_separator = \"a\""),
        "auth.rest_separator",
        FILE,
    );
    names(&err("[log]\nlevel = \"loud\""), "log.level", FILE);
    names(&err("[log]\nlevel = \"ternd=loud\""), "log.level", FILE);
    names(&err("[log]\nformat = \"xml\""), "log.format", FILE);
    names(
        &cli_err(&["--max-frame-size", "70000"]),
        "--max-frame-size",
        "command line",
    );
    names(
        &cli_err(&["--max-tcp-connections", "0"]),
        "--max-tcp-connections",
        "command line",
    );
    names(
        &cli_err(&["--user-quota=-1"]),
        "--user-quota",
        "command line",
    );
    names(
        &cli_err(&["--log-level", "verbose"]),
        "--log-level",
        "command line",
    );
    names(
        &cli_err(&["--log-format", "yaml"]),
        "--log-format",
        "command line",
    );
    for level in [
        "trace",
        "debug",
        "info",
        "warn",
        "error",
        "WARN",
        "off",
        "ternd=trace,info",
    ] {
        let c = Config::default()
            .apply_cli(&cli(&["--log-level", level]))
            .expect(level);
        assert_eq!(c.log.level, level);
    }
}

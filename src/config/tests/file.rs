//! Values from the file.

use super::*;

// ---------------------------------------------------------------------------
// Values from the file

#[test]
fn full_file() {
    let c = parse(
        r#"
listen = ["127.0.0.1:3478"]
realm = "example.org"
workers = 4
software = "ternd"
stun_backward_compatibility = true
max_frame_size = 1500
tcp_idle_timeout = 30
max_tcp_connections = 5
[relay]
relay_ips = ["192.0.2.1", "2001:db8::1"]
external_ips = ["203.0.113.7/10.0.0.7", "2001:db8::7"]
ports = "10000-30000"
allow_peer = ["10.0.0.0/8", "10.1.2.3"]
deny_peer = ["fd00::/8", "::1"]
rfc5766_channel_numbers = true
default_allocation_lifetime = "5m"
max_allocation_lifetime = "1h30m"
user_quota = 0
[auth]
secrets = ["s1", "s2"]
rest_separator = "|"
nonce_lifetime = "1h"
[[auth.users]]
name = "alice"
password = "pw"
[[auth.users]]
name = "bob"
key = "0123456789ABCDEF0123456789abcdef"
[log]
level = "info,ternd=debug"
format = "json"
"#,
    )
    .expect("valid file");
    assert_eq!(c.listen, vec![sa("127.0.0.1:3478")]);
    assert_eq!(c.realm, "example.org");
    assert_eq!(c.workers, 4);
    assert_eq!(c.software.as_deref(), Some("ternd"));
    assert!(c.stun_backward_compatibility);
    assert_eq!(c.max_frame_size, 1500);
    assert_eq!(c.tcp_idle_timeout, Duration::from_secs(30));
    assert_eq!(c.max_tcp_connections, 5);
    assert_eq!(c.relay.relay_ips, vec![ip("192.0.2.1"), ip("2001:db8::1")]);
    assert_eq!(
        c.relay.external_ips,
        vec![
            ExternalIp {
                public: ip("203.0.113.7"),
                private: Some(ip("10.0.0.7"))
            },
            ExternalIp {
                public: ip("2001:db8::7"),
                private: None
            },
        ]
    );
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 10000,
            hi: 30000
        }
    );
    let nets =
        |v: &[&str]| -> Vec<ipnet::IpNet> { v.iter().map(|s| s.parse().expect("net")).collect() };
    assert_eq!(c.relay.allow_peer, nets(&["10.0.0.0/8", "10.1.2.3/32"]));
    assert_eq!(c.relay.deny_peer, nets(&["fd00::/8", "::1/128"]));
    assert!(c.relay.rfc5766_channel_numbers);
    assert_eq!(
        c.relay.default_allocation_lifetime,
        Duration::from_secs(300)
    );
    assert_eq!(c.relay.max_allocation_lifetime, Duration::from_secs(5400));
    assert_eq!(c.relay.limits.user_quota, 0);
    assert_eq!(c.auth.secrets, vec!["s1", "s2"]);
    assert_eq!(c.auth.rest_separator, '|');
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(3600));
    assert_eq!(
        c.auth.users,
        vec![
            StaticUser {
                name: "alice".into(),
                credential: UserCredential::Password("pw".into())
            },
            StaticUser {
                name: "bob".into(),
                credential: UserCredential::Md5Key([
                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
                    0xab, 0xcd, 0xef
                ])
            },
        ]
    );
    assert_eq!(c.log.level, "info,ternd=debug");
    assert_eq!(c.log.format, LogFormat::Json);
    assert!(c.not_yet_supported.is_empty());
}

#[test]
fn durations() {
    for (text, secs) in [
        ("\"600s\"", 600),
        ("\"10m\"", 600),
        ("\"1h\"", 3600),
        ("600", 600),
        ("\"1h30m\"", 5400),
        ("\"90\"", 90),
    ] {
        let c = parse(&format!("[auth]\nnonce_lifetime = {text}\n")).expect(text);
        assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(secs), "{text}");
    }
    for flag in ["600s", "10m", "1h", "600"] {
        let c = Config::default()
            .apply_cli(&cli(&["--tcp-idle-timeout", flag]))
            .expect(flag);
        assert_eq!(c.tcp_idle_timeout.as_secs() % 600, 0, "{flag}");
    }
    let c = Config::default()
        .apply_cli(&cli(&["--tcp-idle-timeout", "45"]))
        .expect("45");
    assert_eq!(c.tcp_idle_timeout, Duration::from_secs(45));
}

#[test]
fn zero_and_bad_durations_are_errors() {
    names(&err("tcp_idle_timeout = 0"), "tcp_idle_timeout", FILE);
    names(
        &err("[auth]\nnonce_lifetime = \"0s\""),
        "auth.nonce_lifetime",
        FILE,
    );
    names(
        &err("[relay]\ndefault_allocation_lifetime = -5"),
        "relay.default_allocation_lifetime",
        FILE,
    );
    names(
        &err("[relay]\nmax_allocation_lifetime = \"forever\""),
        "relay.max_allocation_lifetime",
        FILE,
    );
    names(
        &err("[relay]\nmax_allocation_lifetime = 1.5"),
        "relay.max_allocation_lifetime",
        FILE,
    );
    names(
        &cli_err(&["--nonce-lifetime", "0"]),
        "--nonce-lifetime",
        "command line",
    );
    // Nonce age is counted in whole seconds: less than one would make every nonce stale
    // at once, a fraction would be dropped.
    for bad in ["500ms", "1s 500ms"] {
        let msg = cli_err(&["--nonce-lifetime", bad]);
        names(&msg, "--nonce-lifetime", "command line");
    }
    assert!(err("[auth]\nnonce_lifetime = \"999ms\"").contains("at least one second"));
    assert!(err("[auth]\nnonce_lifetime = \"1500ms\"").contains("whole number of seconds"));
    let c = Config::default()
        .apply_cli(&cli(&["--nonce-lifetime", "1s"]))
        .expect("1s");
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(1));
    names(
        &cli_err(&["--tcp-idle-timeout", "soon"]),
        "--tcp-idle-timeout",
        "command line",
    );
}

#[test]
fn workers_zero_resolves_to_available_parallelism() {
    let expected = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(1024);
    assert_eq!(parse("workers = 0").expect("workers 0").workers, expected);
    assert_eq!(parse("").expect("unset").workers, expected);
    assert_eq!(parse("workers = 3").expect("workers 3").workers, 3);
    let c = parse("workers = 3")
        .expect("workers 3")
        .apply_cli(&cli(&["--workers", "0"]));
    assert_eq!(c.expect("--workers 0").workers, expected);
    names(&err("workers = 1025"), "workers", FILE);
    names(&err("workers = -1"), "workers", FILE);
    names(
        &cli_err(&["--workers", "many"]),
        "--workers",
        "command line",
    );
}

#[test]
fn empty_strings_mean_off() {
    let c = parse(
        "software = \"\"\n[http]\nlisten = \"\"\ntls_cert = \"\"\ntls_key = \"\"\n\
         token_jwks_file = \"\"\ntoken_issuer = \"\"\ntoken_scope = \"\"\nadmin_token = \"\"\n\
         [auth]\nsecret_file = \"\"",
    )
    .expect("off");
    let mut expected = Config::default();
    expected.http.listen = None;
    assert_eq!(c, expected);
}

#[test]
fn http_listen_is_supported() {
    let c = parse("[http]\nlisten = \"127.0.0.1:8080\"").expect("http listen");
    assert_eq!(c.http.listen, Some(sa("127.0.0.1:8080")));
    assert!(c.not_yet_supported.is_empty());

    let c = Config::default()
        .apply_cli(&cli(&["--http-listen", "[::1]:8080"]))
        .expect("--http-listen");
    assert_eq!(c.http.listen, Some(sa("[::1]:8080")));
    assert!(c.not_yet_supported.is_empty());

    // Turning it off on the command line.
    let c = parse("[http]\nlisten = \"127.0.0.1:8080\"")
        .expect("http listen")
        .apply_cli(&cli(&["--http-listen", ""]))
        .expect("off");
    assert_eq!(c.http.listen, None);

    // Relay and auth keys are accepted.
    let c =
        parse("[relay]\nports = \"10000-30000\"\n[auth]\nsecrets = [\"x\"]").expect("relay/auth");
    assert!(c.not_yet_supported.is_empty());
}

#[test]
fn http_section() {
    let c = parse(
        r#"
[http]
listen = "0.0.0.0:9000"
public_hosts = ["turn.example.org", "2001:db8::1", "[2001:db8::2]", "turn.example.org"]
credential_ttl = "30m"
token_hs256_secrets = ["a", "b"]
token_audience = ""
token_issuer = "https://id.example"
token_scope = "turn"
token_leeway = 0
cors_origins = ["https://app.example.com", "http://localhost:3000"]
rate_limit = 0
rate_burst = 5
max_connections_per_ip = 0
admin_token = "0123456789abcdef0123"
"#,
    )
    .expect("http section");
    let h = &c.http;
    assert_eq!(h.listen, Some(sa("0.0.0.0:9000")));
    assert_eq!(
        h.public_hosts,
        vec!["turn.example.org", "2001:db8::1", "2001:db8::2"]
    );
    assert_eq!(h.credential_ttl, Duration::from_secs(1800));
    assert_eq!(h.token_hs256_secrets, vec!["a", "b"]);
    assert_eq!(h.token_audience, "");
    assert_eq!(h.token_issuer.as_deref(), Some("https://id.example"));
    assert_eq!(h.token_scope.as_deref(), Some("turn"));
    assert_eq!(h.token_leeway, Duration::ZERO);
    assert_eq!(
        h.cors_origins,
        vec!["https://app.example.com", "http://localhost:3000"]
    );
    assert_eq!((h.rate_limit, h.rate_burst), (0, 5));
    assert_eq!(h.max_connections_per_ip, 0);
    assert_eq!(h.admin_token.as_deref(), Some("0123456789abcdef0123"));
    let debug = format!("{c:?}");
    assert!(!debug.contains("0123456789abcdef0123"), "{debug}");
    assert!(!debug.contains("\"a\""), "{debug}");

    // The command line overrides, lists replace.
    let c = c
        .apply_cli(&cli(&[
            "--http-public-host",
            "192.0.2.1",
            "--http-credential-ttl",
            "2h",
            "--token-hs256-secret",
            "c",
            "--token-audience",
            "app",
            "--token-issuer",
            "",
            "--token-scope",
            "",
            "--token-leeway",
            "1m",
            "--http-cors-origin",
            "https://x.example",
            "--http-rate-limit",
            "7",
            "--http-rate-burst",
            "9",
            "--http-max-connections-per-ip",
            "1024",
            "--admin-token",
            "",
        ]))
        .expect("cli");
    let h = &c.http;
    assert_eq!(h.public_hosts, vec!["192.0.2.1"]);
    assert_eq!(h.credential_ttl, Duration::from_secs(7200));
    assert_eq!(h.token_hs256_secrets, vec!["c"]);
    assert_eq!(h.token_audience, "app");
    assert_eq!(
        (h.token_issuer.as_ref(), h.token_scope.as_ref()),
        (None, None)
    );
    assert_eq!(h.token_leeway, Duration::from_secs(60));
    assert_eq!(h.cors_origins, vec!["https://x.example"]);
    assert_eq!((h.rate_limit, h.rate_burst), (7, 9));
    assert_eq!(h.max_connections_per_ip, 1024);
    assert_eq!(h.admin_token, None);
    let debug = format!(
        "{:?}",
        cli(&[
            "--token-hs256-secret",
            "zzsecret",
            "--admin-token",
            "adminadminadminadmin"
        ])
    );
    assert!(
        !debug.contains("zzsecret") && !debug.contains("adminadmin"),
        "{debug}"
    );
}

#[test]
fn http_errors_name_the_key() {
    names(
        &err("[http]\npublic_hosts = [\"http://x\"]"),
        "http.public_hosts",
        FILE,
    );
    names(
        &err("[http]\npublic_hosts = [\"x:80\"]"),
        "http.public_hosts",
        FILE,
    );
    names(
        &err("[http]\ncors_origins = [\"https://a.example/\"]"),
        "http.cors_origins",
        FILE,
    );
    names(
        &err("[http]\ncors_origins = [\"*\"]"),
        "http.cors_origins",
        FILE,
    );
    names(
        &err("[http]\ncredential_ttl = 0"),
        "http.credential_ttl",
        FILE,
    );
    names(
        &err("[http]\ncredential_ttl = \"30d\""),
        "http.credential_ttl",
        FILE,
    );
    names(
        &err("[http]\ntoken_leeway = \"2h\""),
        "http.token_leeway",
        FILE,
    );
    names(&err("[http]\ntoken_leeway = -1"), "http.token_leeway", FILE);
    names(
        &err("[http]\ntoken_hs256_secrets = [\"\"]"),
        "http.token_hs256_secrets",
        FILE,
    );
    names(
        &err("[http]\ntoken_scope = \"a b\""),
        "http.token_scope",
        FILE,
    );
    names(&err("[http]\nrate_burst = 0"), "http.rate_burst", FILE);
    names(&err("[http]\nrate_limit = -1"), "http.rate_limit", FILE);
    names(
        &err("[http]\nmax_connections_per_ip = 1025"),
        "http.max_connections_per_ip",
        FILE,
    );
    names(
        &cli_err(&["--http-max-connections-per-ip", "5000"]),
        "--http-max-connections-per-ip",
        "command line",
    );
    names(
        &err("[http]\nadmin_token = \"short\""),
        "http.admin_token",
        FILE,
    );
    names(
        &err("[http]\nadmin_token = \"has space has space\""),
        "http.admin_token",
        FILE,
    );
    names(
        &cli_err(&["--http-rate-burst", "0"]),
        "--http-rate-burst",
        "command line",
    );
    names(
        &cli_err(&["--token-leeway", "soon"]),
        "--token-leeway",
        "command line",
    );
    names(
        &cli_err(&["--http-cors-origin", "app.example"]),
        "--http-cors-origin",
        "command line",
    );
    names(
        &cli_err(&["--admin-token", "x"]),
        "--admin-token",
        "command line",
    );

    let m = err("[http]\ntoken_public_keys = [\"/nonexistent/k.pem\"]");
    names(&m, "http.token_public_keys", FILE);
    assert!(m.contains("/nonexistent/k.pem"), "{m}");
    let m = cli_err(&["--token-jwks-file", "/nonexistent/jwks.json"]);
    names(&m, "--token-jwks-file", "command line");
    assert!(m.contains("/nonexistent/jwks.json"), "{m}");

    let dir = TempDir::new("http-keys");
    let junk = dir.file("junk.pem", "not a key");
    let m = err(&format!("[http]\ntoken_public_keys = [\"{junk}\"]"));
    names(&m, "http.token_public_keys", FILE);
    assert!(m.contains(&junk), "{m}");
    let jwks = dir.file("jwks.json", "{\"keys\": 5}");
    let m = err(&format!("[http]\ntoken_jwks_file = \"{jwks}\""));
    names(&m, "http.token_jwks_file", FILE);
    assert!(m.contains(&jwks), "{m}");

    // TLS files come in pairs and must parse.
    let m = err(&format!("[http]\ntls_cert = \"{junk}\""));
    names(&m, "http.tls_cert", FILE);
    let m = err(&format!("[http]\ntls_key = \"{junk}\""));
    names(&m, "http.tls_key", FILE);
    let m = err(&format!(
        "[http]\ntls_cert = \"{junk}\"\ntls_key = \"{junk}\""
    ));
    names(&m, "http.tls_cert", FILE);
    assert!(m.contains(&junk), "{m}");
}

#[test]
fn http_key_files_load() {
    let dir = TempDir::new("http-keyfiles");
    if !dir.openssl(&["genpkey", "-algorithm", "ed25519", "-out", "ed.key"])
        || !dir.openssl(&["pkey", "-in", "ed.key", "-pubout", "-out", "ed.pub"])
        || !dir.openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.key",
        ])
        || !dir.openssl(&["ec", "-in", "ec.key", "-pubout", "-out", "ec.pub"])
        || !dir.openssl(&[
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.key",
        ])
        || !dir.openssl(&["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"])
        || !dir.openssl(&[
            "req",
            "-x509",
            "-key",
            "ec.key",
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-out",
            "cert.pem",
        ])
    {
        eprintln!("openssl not available; skipping");
        return;
    }
    let (ed, ec, rsa) = (dir.path("ed.pub"), dir.path("ec.pub"), dir.path("rsa.pub"));
    let c = parse(&format!(
        "[http]\ntoken_public_keys = [\"{ed}\", \"{ec}\", \"{rsa}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.path("cert.pem"),
        dir.path("ec.key"),
    ))
    .expect("keys load");
    assert_eq!(c.http.token_public_keys.len(), 3);
    let v = crate::http::token::Verifier::from_config(&c.http).expect("verifier");
    let algs: Vec<_> = v
        .keys()
        .iter()
        .map(|k| format!("{:?}", k.algorithm()))
        .collect();
    assert_eq!(algs, vec!["EdDSA", "ES256", "RS256"]);

    // A private key where a public one belongs is refused with a hint.
    let m = err(&format!(
        "[http]\ntoken_public_keys = [\"{}\"]",
        dir.path("ed.key")
    ));
    assert!(m.contains("private key"), "{m}");
    // A key that does not fit the certificate.
    let m = err(&format!(
        "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.path("cert.pem"),
        dir.path("rsa.key"),
    ));
    names(&m, "http.tls_key", FILE);
}

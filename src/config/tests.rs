//! Unit tests for `ternd::config`. None of them touches the process
//! environment (see `tests/config_env.rs` for that).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::*;

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

// ---------------------------------------------------------------------------
// Defaults

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.listen, vec![sa("0.0.0.0:3478"), sa("[::]:3478")]);
    assert_eq!(c.realm, "ternd");
    assert_eq!(c.workers, default_workers());
    assert!((1..=1024).contains(&c.workers));
    assert_eq!(c.software, None);
    assert!(!c.stun_backward_compatibility);
    assert_eq!(c.max_frame_size, 65_540);
    assert_eq!(c.tcp_idle_timeout, Duration::from_secs(300));
    assert_eq!(c.max_tcp_connections, 10_000);
    assert!(c.tls_listen.is_empty());
    assert_eq!((c.tls_cert.as_ref(), c.tls_key.as_ref()), (None, None));
    assert_eq!(c.tls_handshake_timeout, Duration::from_secs(10));
    assert!(!c.tcp_relay);
    assert!(c.proxy_protocol.is_empty());
    assert_eq!(c.max_connections_per_ip, 100);
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.alternate_server, None);
    assert!(!c.rfc5780);
    assert_eq!(c.alt_ip, None);
    assert_eq!(c.alt_port, None);
    assert_eq!(c.rfc5780_primary(), None);
    assert_eq!(c.relay.relay_ips, Vec::<IpAddr>::new());
    assert!(c.relay.external_ips.is_empty());
    assert_eq!(
        c.relay.ports,
        PortRange {
            lo: 49152,
            hi: 65535
        }
    );
    assert!(c.relay.allow_peer.is_empty() && c.relay.deny_peer.is_empty());
    assert!(!c.relay.rfc5766_channel_numbers);
    assert_eq!(
        c.relay.default_allocation_lifetime,
        Duration::from_secs(600)
    );
    assert_eq!(c.relay.max_allocation_lifetime, Duration::from_secs(3600));
    assert_eq!(c.relay.limits.user_quota, 100);
    assert_eq!(c.relay.limits.total_quota, 0);
    assert_eq!(c.relay.limits.max_allocations_per_ip, 1000);
    assert_eq!(c.relay.unauth_rate_limit, 200);
    assert_eq!(c.relay.unauth_rate_burst, 1000);
    assert_eq!(c.relay.limits.max_permissions, 64);
    assert_eq!(c.relay.limits.max_channels, 64);
    assert_eq!(
        (c.relay.limits.max_permissions, c.relay.limits.max_channels),
        (
            crate::turn::DEFAULT_MAX_PERMISSIONS,
            crate::turn::DEFAULT_MAX_CHANNELS
        )
    );
    assert_eq!(c.relay.limits.max_bps, 0);
    assert!(c.auth.secrets.is_empty() && c.auth.users.is_empty());
    assert_eq!(c.auth.secret_file, None);
    assert_eq!(c.auth.rest_separator, ':');
    assert_eq!(c.auth.nonce_lifetime, Duration::from_secs(600));
    assert_eq!(c.http.listen, Some(sa("127.0.0.1:9641")));
    assert_eq!(c.http.tls_cert, None);
    assert_eq!(c.http.tls_key, None);
    assert!(c.http.public_hosts.is_empty());
    assert_eq!(c.http.credential_ttl, Duration::from_secs(3600));
    assert!(c.http.token_hs256_secrets.is_empty() && c.http.token_public_keys.is_empty());
    assert_eq!(c.http.token_jwks_file, None);
    assert_eq!(c.http.token_audience, "ternd");
    assert_eq!(c.http.token_issuer, None);
    assert_eq!(c.http.token_scope, None);
    assert_eq!(c.http.token_leeway, Duration::from_secs(30));
    assert!(c.http.cors_origins.is_empty());
    assert_eq!((c.http.rate_limit, c.http.rate_burst), (20, 40));
    assert_eq!(c.http.max_connections_per_ip, 32);
    assert_eq!(c.http.admin_token, None);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.not_yet_supported.is_empty());
}

#[test]
fn empty_file_and_empty_cli_are_defaults() {
    assert_eq!(parse("").expect("empty file"), Config::default());
    let c = Config::load(&cli(&[])).expect("no file, no flags");
    assert_eq!(c, Config::default());
}

#[test]
fn shipped_file_is_defaults() {
    let text = include_str!("../../config/ternd.toml");
    let c = Config::from_toml_str(text, "config/ternd.toml").expect("shipped file loads");
    assert_eq!(c, Config::default());
}

#[test]
fn shipped_file_mentions_every_flag() {
    let text = include_str!("../../config/ternd.toml");
    use clap::CommandFactory;
    for arg in Cli::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if ["config", "check-config"].contains(&long) {
            continue;
        }
        assert!(
            text.contains(&format!("--{long}")),
            "config/ternd.toml does not mention --{long}"
        );
        let env = arg
            .get_env()
            .and_then(|e| e.to_str())
            .expect("every flag has an env var");
        assert!(
            text.contains(env),
            "config/ternd.toml does not mention {env}"
        );
    }
}

#[test]
fn cli_definition_is_valid() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

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

// ---------------------------------------------------------------------------
// File errors name the key and the file

#[test]
fn unknown_keys() {
    let m = err("[relay]\nportz = \"1-2\"");
    assert_eq!(m, "test.toml: unknown key `relay.portz`");
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
    assert_eq!(m, format!("{}: unknown key `relay.portz`", bad.path()));

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

// ---------------------------------------------------------------------------
// TURN over TLS, RFC 6062 TCP relaying, PROXY protocol, per-IP limits

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

// ---------------------------------------------------------------------------
// RFC 5780 NAT behaviour discovery

#[test]
fn rfc5780_from_file() {
    let c = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    assert!(c.rfc5780);
    assert_eq!(c.alt_ip, Some(ip("127.0.0.2")));
    assert_eq!(c.alt_port, Some(3479));
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:3478")));

    // alt_port = 0 means "the primary port + 1" (None); IPv6 works too.
    let c = parse(
        "listen = [\"[2001:db8::1]:3478\"]\nrfc5780 = true\nalt_ip = \"2001:db8::2\"\nalt_port = 0",
    )
    .expect("IPv6, derived port");
    assert_eq!(c.alt_ip, Some(ip("2001:db8::2")));
    assert_eq!(c.alt_port, None);
    assert_eq!(c.rfc5780_primary(), Some(sa("[2001:db8::1]:3478")));

    // The shipped file's forms: off, empty and 0 are the defaults.
    assert_eq!(
        parse("rfc5780 = false\nalt_ip = \"\"\nalt_port = 0").expect("off"),
        Config::default()
    );

    // Port 0 on the primary (a free port at bind time): any alt_port goes.
    let c =
        parse("listen = [\"127.0.0.1:0\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 0")
            .expect("ephemeral primary");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:0")));
    assert!(
        parse("listen = [\"127.0.0.1:0\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 1")
            .is_ok()
    );
}

#[test]
fn rfc5780_primary_is_the_first_specific_listen_address_of_alt_ips_family() {
    let listen = "listen = [\"0.0.0.0:3478\", \"[::]:3478\", \"[2001:db8::1]:3478\", \
                  \"127.0.0.1:4000\", \"127.0.0.3:3478\"]\nrfc5780 = true\n";
    let c = parse(&format!("{listen}alt_ip = \"127.0.0.2\"")).expect("IPv4");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:4000")));
    let c = parse(&format!("{listen}alt_ip = \"2001:db8::2\"")).expect("IPv6");
    assert_eq!(c.rfc5780_primary(), Some(sa("[2001:db8::1]:3478")));
    // The primary may be another entry than the alternate IP's twin.
    let c = parse(&format!("{listen}alt_ip = \"127.0.0.3\"")).expect("127.0.0.3");
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:4000")));

    // Off: None, whatever else is set (hand-built configurations included).
    let mut c = parse(&format!("{listen}alt_ip = \"127.0.0.2\"")).expect("on");
    c.rfc5780 = false;
    assert_eq!(c.rfc5780_primary(), None);
    let c = Config {
        rfc5780: true,
        ..Config::default()
    };
    assert_eq!(c.rfc5780_primary(), None, "no alt_ip");
    let c = Config {
        rfc5780: true,
        alt_ip: Some(ip("192.0.2.2")),
        ..Config::default()
    };
    assert_eq!(
        c.rfc5780_primary(),
        None,
        "only unspecified listen addresses"
    );
}

#[test]
fn rfc5780_on_the_command_line() {
    let c = Config::load(&cli(&[
        "--listen",
        "127.0.0.1:3478",
        "--rfc5780",
        "--alt-ip",
        "127.0.0.2",
        "--alt-port",
        "4000",
    ]))
    .expect("flags");
    assert!(c.rfc5780);
    assert_eq!(c.alt_ip, Some(ip("127.0.0.2")));
    assert_eq!(c.alt_port, Some(4000));
    assert_eq!(c.rfc5780_primary(), Some(sa("127.0.0.1:3478")));
    // Re-applying an empty command line keeps everything.
    assert_eq!(c.clone().apply_cli(&cli(&[])).expect("same"), c);
    // `--alt-port 0` (or empty) goes back to the derived port.
    for zero in [["--alt-port", "0"], ["--alt-port", ""]] {
        let d = c.clone().apply_cli(&cli(&zero)).expect("derived");
        assert_eq!(d.alt_port, None, "{zero:?}");
        assert!(d.rfc5780);
    }
    // Everything off again: the alternate IP must be cleared with it.
    let d = c
        .clone()
        .apply_cli(&cli(&[
            "--rfc5780=false",
            "--alt-ip",
            "",
            "--alt-port",
            "0",
        ]))
        .expect("off");
    assert!(!d.rfc5780 && d.alt_ip.is_none() && d.alt_port.is_none());
    assert_eq!(d.rfc5780_primary(), None);

    // The command line beats the file.
    let file = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    let c = file
        .apply_cli(&cli(&[
            "--alt-ip=127.0.0.9",
            "--alt-port=5000",
            "--rfc5780",
            "yes",
        ]))
        .expect("override");
    assert_eq!((c.alt_ip, c.alt_port), (Some(ip("127.0.0.9")), Some(5000)));

    // All three show in the Cli's Debug output.
    let debug = format!(
        "{:?}",
        cli(&["--rfc5780", "--alt-ip", "192.0.2.7", "--alt-port", "3479"])
    );
    for needle in [
        "rfc5780: Some(true)",
        "alt_ip: Some(\"192.0.2.7\")",
        "alt_port: Some(\"3479\")",
    ] {
        assert!(debug.contains(needle), "{needle}: {debug}");
    }
    assert!(Cli::try_parse_from(["ternd", "--rfc5780=maybe"]).is_err());
}

#[test]
fn rfc5780_env_vars() {
    // The environment itself is exercised in tests/config_env.rs; here only
    // the flag <-> variable pairing (no test here touches the environment).
    use clap::CommandFactory;
    let cmd = Cli::command();
    for (flag, env) in [
        ("rfc5780", "TERND_RFC5780"),
        ("alt-ip", "TERND_ALT_IP"),
        ("alt-port", "TERND_ALT_PORT"),
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

#[test]
fn rfc5780_bad_values_name_the_key() {
    for bad in [
        "alt_ip = \"nope\"",
        "alt_ip = \"127.0.0.2:3478\"",
        "alt_ip = \"0.0.0.0\"",
        "alt_ip = \"::\"",
        "alt_ip = \"224.0.0.1\"",
        "alt_ip = \"ff02::1\"",
        "alt_ip = [\"127.0.0.2\"]",
        "alt_ip = 2130706434",
    ] {
        names(&err(bad), "alt_ip", FILE);
    }
    let m = err("alt_ip = \"0.0.0.0\"");
    assert!(m.contains("unspecified"), "{m}");
    let m = err("alt_ip = \"224.0.0.1\"");
    assert!(m.contains("multicast"), "{m}");
    for bad in ["alt_port = -1", "alt_port = 65536", "alt_port = \"3479\""] {
        names(&err(bad), "alt_port", FILE);
    }
    names(&err("rfc5780 = \"yes\""), "rfc5780", FILE);
    names(&err("rfc5780 = 1"), "rfc5780", FILE);

    for bad in ["nope", "0.0.0.0", "::", "239.1.2.3", "127.0.0.2:1"] {
        let m = cli_err(&["--rfc5780", "--alt-ip", bad]);
        names(&m, "--alt-ip", "command line");
    }
    for bad in ["x", "-1", "65536", "3479.0"] {
        let m = cli_err(&[&format!("--alt-port={bad}")]);
        names(&m, "--alt-port", "command line");
    }
}

#[test]
fn rfc5780_needs_alt_ip() {
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("alt_ip") && m.contains("--alt-ip"), "{m}");
    // An explicitly empty alt_ip is no better.
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"\"");
    names(&m, "rfc5780", FILE);
    let m = cli_err(&["--listen", "127.0.0.1:3478", "--rfc5780"]);
    names(&m, "--rfc5780", "command line");
}

#[test]
fn rfc5780_needs_a_specific_listen_address_of_alt_ips_family() {
    // The default listen addresses are unspecified.
    let m = err("rfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(
        m.contains("`--listen 127.0.0.1:3478 --alt-ip 127.0.0.2`"),
        "{m}"
    );
    assert!(m.contains("IPv4") && m.contains("built-in default"), "{m}");
    // Only the other family is specific.
    let m =
        err("listen = [\"0.0.0.0:3478\", \"[::1]:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("`listen` from test.toml"), "{m}");
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"2001:db8::2\"");
    names(&m, "rfc5780", FILE);
    assert!(
        m.contains("IPv6") && m.contains("--alt-ip 2001:db8::2"),
        "{m}"
    );
    let m = cli_err(&["--rfc5780", "--alt-ip", "127.0.0.2"]);
    names(&m, "--rfc5780", "command line");
}

#[test]
fn rfc5780_alternate_must_differ_from_primary() {
    // The same IP as the primary address.
    let m = err("listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.1\"");
    names(&m, "alt_ip", FILE);
    assert!(m.contains("127.0.0.1:3478"), "{m}");
    let m = cli_err(&[
        "--listen",
        "[2001:db8::1]:3478",
        "--rfc5780",
        "--alt-ip",
        "2001:db8::1",
    ]);
    names(&m, "--alt-ip", "command line");

    // The same port as the primary address.
    let m = err(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3478",
    );
    names(&m, "alt_port", FILE);
    assert!(m.contains("3478"), "{m}");
    // Only the primary's port counts, not another listen address's.
    let c = parse(
        "listen = [\"127.0.0.1:3478\", \"127.0.0.1:5000\"]\nrfc5780 = true\n\
         alt_ip = \"127.0.0.2\"\nalt_port = 5001",
    )
    .expect("other entry");
    assert_eq!(c.alt_port, Some(5001));
    let m = cli_err(&[
        "--listen",
        "127.0.0.1:3478",
        "--rfc5780",
        "--alt-ip",
        "127.0.0.2",
        "--alt-port",
        "3478",
    ]);
    names(&m, "--alt-port", "command line");

    // Port 65535 has no "+ 1": alt_port must be given.
    let m = err("listen = [\"127.0.0.1:65535\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"");
    names(&m, "rfc5780", FILE);
    assert!(m.contains("alt_port"), "{m}");
    assert!(
        parse(
            "listen = [\"127.0.0.1:65535\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3478"
        )
        .is_ok()
    );
}

#[test]
fn alt_ip_and_alt_port_need_rfc5780() {
    for (text, key) in [
        ("alt_ip = \"127.0.0.2\"", "alt_ip"),
        (
            "listen = [\"127.0.0.1:3478\"]\nalt_ip = \"127.0.0.2\"",
            "alt_ip",
        ),
        ("alt_port = 3479", "alt_port"),
        (
            "rfc5780 = false\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
            "alt_ip",
        ),
    ] {
        let m = err(text);
        names(&m, key, FILE);
        assert!(m.contains("rfc5780 = true"), "{m}");
    }
    names(
        &cli_err(&["--alt-ip", "127.0.0.2"]),
        "--alt-ip",
        "command line",
    );
    names(
        &cli_err(&["--alt-port", "4000"]),
        "--alt-port",
        "command line",
    );

    // Turning RFC 5780 off on the command line while the file (here: an
    // already loaded configuration) keeps an alternate IP is an error too.
    let file = parse(
        "listen = [\"127.0.0.1:3478\"]\nrfc5780 = true\nalt_ip = \"127.0.0.2\"\nalt_port = 3479",
    )
    .expect("file");
    let m = file
        .clone()
        .apply_cli(&cli(&["--rfc5780=false"]))
        .expect_err("leftover alt_ip")
        .to_string();
    names(&m, "alt_ip", "configuration");
    assert!(m.contains("--rfc5780"), "{m}");
    let m = file
        .apply_cli(&cli(&["--rfc5780=false", "--alt-ip="]))
        .expect_err("leftover alt_port")
        .to_string();
    names(&m, "alt_port", "configuration");
}

#[test]
fn udp_socket_buffers_default_file_cli_and_ranges() {
    let c = Config::default();
    assert_eq!((c.udp_recv_buffer, c.udp_send_buffer), (4 << 20, 4 << 20));
    let file = parse("udp_recv_buffer = 8388608\nudp_send_buffer = 0").expect("file");
    assert_eq!((file.udp_recv_buffer, file.udp_send_buffer), (8 << 20, 0));
    // Absent flags keep the file's values; given ones override them.
    assert_eq!(file.clone().apply_cli(&cli(&[])).expect("none"), file);
    let c = file
        .apply_cli(&cli(&[
            "--udp-recv-buffer",
            "0",
            "--udp-send-buffer=1048576",
        ]))
        .expect("flags");
    assert_eq!((c.udp_recv_buffer, c.udp_send_buffer), (0, 1 << 20));
    // 0 (the kernel default) or 4096..=1 GiB.
    assert!(parse("udp_recv_buffer = 4096").is_ok());
    assert!(parse("udp_send_buffer = 1073741824").is_ok());
    names(&err("udp_recv_buffer = 4095"), "udp_recv_buffer", FILE);
    names(
        &err("udp_send_buffer = 1073741825"),
        "udp_send_buffer",
        FILE,
    );
    names(&err("udp_recv_buffer = -1"), "udp_recv_buffer", FILE);
    names(&err("udp_recv_buffer = \"4M\""), "udp_recv_buffer", FILE);
    let e = cli_err(&["--udp-recv-buffer", "100"]);
    assert!(e.contains("--udp-recv-buffer"), "{e}");
    let e = cli_err(&["--udp-send-buffer", "lots"]);
    assert!(e.contains("--udp-send-buffer"), "{e}");
}

//! Defaults and the shipped file.

use super::*;

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
    let text = include_str!("../../../config/ternd.toml");
    let c = Config::from_toml_str(text, "config/ternd.toml").expect("shipped file loads");
    assert_eq!(c, Config::default());
}

#[test]
fn shipped_file_mentions_every_flag() {
    let text = include_str!("../../../config/ternd.toml");
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

#[test]
fn declaration_table_is_consistent() {
    use std::collections::HashSet;
    let (mut keys, mut flags, mut envs) = (HashSet::new(), HashSet::new(), HashSet::new());
    for s in schema_http::all() {
        assert!(keys.insert(s.key), "key {} declared twice", s.key);
        // Sections are one level deep.
        assert!(s.key.split('.').count() <= 2, "{}", s.key);
        if let Some(f) = &s.flag {
            assert!(flags.insert(f.long), "--{} declared twice", f.long);
            assert!(envs.insert(f.env), "{} declared twice", f.env);
            assert!(
                !f.help.is_empty() && !f.value_name.is_empty(),
                "--{}",
                f.long
            );
        }
    }
    // Every relay limit of the core has its entry (the generated default is a `Limits`).
    assert_eq!(
        RelayConfig::default().limits,
        Config::default().relay.limits
    );
    assert!(keys.contains("relay.max_bps") && keys.contains("relay.max_channels_per_allocation"));
}

#[test]
fn a_quoted_dotted_key_is_not_a_section_key() {
    names(&err("\"relay.ports\" = \"1-2\""), "relay.ports", FILE);
    assert!(matches!(
        parse("\"relay.ports\" = \"1-2\""),
        Err(ConfigError::UnknownKey { .. })
    ));
}

#[test]
fn parsing_reads_no_file_and_load_files_does() {
    let missing = "/nonexistent/ternd-config-test";
    let text = format!(
        "tls_cert = \"{missing}.crt\"\ntls_key = \"{missing}.key\"\n\
         [auth]\nsecret_file = \"{missing}.secrets\"\n\
         [http]\ntoken_public_keys = [\"{missing}.pem\"]\ntoken_jwks_file = \"{missing}.jwks\""
    );
    // Parsing is pure: the files are named, not read.
    let parsed = Config::from_toml_str(&text, FILE).expect("parse names files only");
    assert_eq!(
        parsed.auth.secret_file.as_deref(),
        Some(std::path::Path::new(
            "/nonexistent/ternd-config-test.secrets"
        ))
    );
    // Loading reads them; the first one that fails is named by its key and origin.
    let m = parsed
        .clone()
        .load_files()
        .expect_err("missing files")
        .to_string();
    names(&m, "auth.secret_file", FILE);
    let mut no_secrets = parsed;
    no_secrets.auth.secret_file = None;
    let e = no_secrets
        .clone()
        .load_files()
        .expect_err("missing certificate");
    assert_eq!(e.key(), Some("tls_cert"), "{e}");
    no_secrets.tls_cert = None;
    no_secrets.tls_key = None;
    let e = no_secrets.load_files().expect_err("missing token key");
    assert_eq!(e.key(), Some("http.token_public_keys"), "{e}");
}

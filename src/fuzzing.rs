//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes and must never panic. The protocol's
//! own entry points live in `ternd_proto::fuzzing` and are re-exported here; this module adds
//! the server's parsers (access tokens, the configuration file). Built only with the
//! `testing` feature.

pub use ternd_proto::fuzzing::*;

/// The HS256 secret [`access_token`] verifies with (the seeds are signed with it).
pub const FUZZ_TOKEN_SECRET: &str = "fuzz-hs256-secret";

/// Verifies `data` (lossy UTF-8) as an access token for `/v1/ice-servers`, with an HS256
/// secret and the audience `ternd` configured. A token that verifies has a usable `sub`.
pub fn access_token(data: &[u8]) {
    use crate::http::token::{MAX_SUB_BYTES, Verifier};
    use std::sync::OnceLock;

    static VERIFIER: OnceLock<Option<Verifier>> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        let config = crate::config::HttpConfig {
            token_hs256_secrets: vec![FUZZ_TOKEN_SECRET.into()],
            token_audience: "ternd".into(),
            ..crate::config::HttpConfig::default()
        };
        Verifier::from_config(&config).ok()
    });
    let Some(verifier) = verifier else {
        unreachable!("an HS256 secret alone always builds a verifier")
    };
    let token = String::from_utf8_lossy(data);
    if let Ok(v) = verifier.verify(&token) {
        assert!(!v.sub.is_empty() && v.sub.len() <= MAX_SUB_BYTES);
        assert!(!v.sub.chars().any(char::is_control));
    }
}

/// Configuration keys whose values name files that [`crate::config::Config::from_toml_str`]
/// (or later startup) reads: [`config_toml`] skips inputs that give them a value other than
/// `""` or `[]` (both mean unset), so it never touches the disk (`secret_file = "/dev/zero"`
/// would hang).
const FILE_KEYS: [&str; 5] = [
    "secret_file",
    "tls_cert",
    "tls_key",
    "token_public_keys",
    "token_jwks_file",
];

/// Whether a key at any depth of `value` is one of [`FILE_KEYS`] with a non-empty value.
fn names_a_file(value: &toml::Value) -> bool {
    let empty = |v: &toml::Value| match v {
        toml::Value::String(s) => s.is_empty(),
        toml::Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match value {
        toml::Value::Table(t) => t
            .iter()
            .any(|(k, v)| (FILE_KEYS.contains(&k.as_str()) && !empty(v)) || names_a_file(v)),
        toml::Value::Array(a) => a.iter().any(names_a_file),
        _ => false,
    }
}

/// Parses and validates `data` (UTF-8 only) as a configuration file, unless it gives a key
/// that names a file a value. The keys are checked after parsing with the same TOML parser,
/// so quoted or escaped spellings of a key (`"secret\u005ffile"`) are caught too.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(table) = toml::from_str::<toml::Table>(text)
        && names_a_file(&toml::Value::Table(table))
    {
        return;
    }
    let _ = crate::config::Config::from_toml_str(text, "fuzz");
}

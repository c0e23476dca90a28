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

/// Parses and checks `data` (UTF-8 only) as a configuration file. Parsing is pure (the
/// files a configuration names are read by [`crate::config::Config::load_files`], which
/// this does not call), so every input is tried, including those that name files.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::Config::from_toml_str(text, "fuzz");
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_inputs_that_name_files_are_parsed_not_read() {
        // The fuzz target parses such inputs too (it used to skip them): nothing is read,
        // so a secret file that never ends does not hang it.
        super::config_toml(b"[auth]\nsecret_file = \"/dev/zero\"\n");
    }
}

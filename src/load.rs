//! The load step: reading the files a configuration names. Parsing
//! ([`Config::load`], [`Config::from_toml_str`], [`Config::apply_cli`])
//! never touches them; [`Config::load_files`] does, at startup and on every
//! reload.

use std::path::Path;

use crate::config::{Config, ConfigError, FileError};

impl Config {
    /// Reads and checks the files this configuration names: appends the
    /// secrets of [`auth.secret_file`](super::AuthConfig::secret_file) to
    /// `auth.secrets`, and loads the TLS certificates and keys (`tls_cert` /
    /// `tls_key`, `http.tls_cert` / `http.tls_key`) and the access-token keys
    /// (`http.token_public_keys`, `http.token_jwks_file`) once, so that a bad
    /// file is reported with its key before anything starts. Errors name the
    /// key and where it came from. Call it once per parsed configuration
    /// (the server does, at startup and on every reload).
    pub fn load_files(mut self) -> Result<Config, ConfigError> {
        if let Some(path) = &self.auth.secret_file {
            let secrets = read_secret_file(&self, path)?;
            self.auth.secrets.extend(secrets);
        }
        tls_pair(
            &self,
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
        )?;
        tls_pair(
            &self,
            ("http.tls_cert", &self.http.tls_cert),
            ("http.tls_key", &self.http.tls_key),
        )?;
        for path in &self.http.token_public_keys {
            crate::http::token::load_pem_file(path).map_err(|m| {
                file_error(&self, "http.token_public_keys", FileError::TokenKeys(m))
            })?;
        }
        if let Some(path) = &self.http.token_jwks_file {
            crate::http::token::load_jwks_file(path)
                .map_err(|m| file_error(&self, "http.token_jwks_file", FileError::TokenKeys(m)))?;
        }
        Ok(self)
    }
}

fn file_error(c: &Config, key: &str, problem: FileError) -> ConfigError {
    let (origin, key) = c.origins.site(key);
    ConfigError::File {
        origin,
        key,
        problem: Box::new(problem),
    }
}

/// A certificate and its key, when both are set: the error blames the file
/// at fault.
fn tls_pair(
    c: &Config,
    (cert_key, cert): (&str, &Option<std::path::PathBuf>),
    (key_key, key): (&str, &Option<std::path::PathBuf>),
) -> Result<(), ConfigError> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(());
    };
    match crate::tls::server_config(cert, key) {
        Ok(_) => Ok(()),
        Err(e) => {
            let blamed = if e.is_certificate() {
                cert_key
            } else {
                key_key
            };
            Err(file_error(c, blamed, FileError::Tls(e)))
        }
    }
}

fn read_secret_file(c: &Config, path: &Path) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        let (origin, key) = c.origins.site("auth.secret_file");
        ConfigError::SecretFile {
            origin,
            key,
            path: path.to_owned(),
            source,
        }
    })?;
    let secrets = secret_file_contents(&text);
    if secrets.is_empty() {
        return Err(file_error(
            c,
            "auth.secret_file",
            FileError::NoSecrets(path.to_owned()),
        ));
    }
    Ok(secrets)
}

/// Parses the contents of a secret file: one secret per line, `#` comments
/// and blank lines ignored, surrounding whitespace trimmed.
fn secret_file_contents(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

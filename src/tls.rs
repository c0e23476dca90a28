//! TLS for the HTTP endpoint (rustls with the *ring* provider).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why [`server_config`] failed. Messages name the file; they never echo key
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file cannot be read or is not PEM.
    #[error("certificate file `{}`: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate file holds no certificate.
    #[error("certificate file `{}` holds no CERTIFICATE block", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The private key file cannot be read, is not PEM or holds no usable key.
    #[error("private key file `{}`: {reason}", path.display())]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "private key file `{}` does not fit the certificate `{}`: {reason}",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// Why.
        reason: String,
    },
}

impl TlsError {
    /// Whether the certificate (rather than the private key) is at fault.
    pub fn is_certificate(&self) -> bool {
        matches!(
            self,
            TlsError::Certificate { .. } | TlsError::NoCertificate { .. }
        )
    }
}

impl From<TlsError> for String {
    fn from(e: TlsError) -> String {
        e.to_string()
    }
}

/// Builds the server configuration from a PEM certificate chain and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_error = |e: &dyn std::fmt::Display| TlsError::PrivateKey {
        path: key.to_owned(),
        reason: e.to_string(),
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| key_error(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| TlsError::Mismatch {
            key: key.to_owned(),
            cert: cert.to_owned(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

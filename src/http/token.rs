//! Access-token (JWT) verification for `/v1/ice-servers`.
//!
//! Keys come from the configuration: HS256 shared secrets, PEM public keys
//! (Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384, RSA → RS256) and JWKS
//! files. Every key carries the one algorithm it may verify, so a token is
//! only ever checked with a key of its own `alg`: `alg: none` never parses,
//! and an HS256 token is never checked against a public key (the classic
//! algorithm-confusion attack).

use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::config::HttpConfig;

/// Longest `sub` accepted: the REST username `EXPIRY:SUB` must stay below
/// RFC 8489's 509-byte USERNAME limit.
pub const MAX_SUB_BYTES: usize = 480;

/// One verification key and the algorithm it verifies.
#[derive(Clone)]
pub struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
    kid: Option<String>,
}

impl VerifyKey {
    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id (`kid`), from a JWKS file.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

// DER encodings of the object identifiers that tell SubjectPublicKeyInfo
// key types apart.
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// PEM blocks of `text`: (label, whole block text, DER bytes).
fn pem_blocks(text: &str) -> Result<Vec<(String, String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(format!("unterminated PEM block `{label}`"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| format!("PEM block `{label}` is not valid base64"))?;
        let block = format!("-----BEGIN {label}-----\n{b64}\n{end}\n");
        out.push((label.to_owned(), block, der));
    }
    Ok(out)
}

/// Reads a PEM file of public keys (one or more `PUBLIC KEY` or `RSA PUBLIC
/// KEY` blocks). The error message names the file and never echoes key bytes.
pub fn load_pem_file(path: &Path) -> Result<Vec<VerifyKey>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read public key file `{shown}`: {e}"))?;
    let blocks = pem_blocks(&text).map_err(|m| format!("public key file `{shown}`: {m}"))?;
    if blocks.is_empty() {
        return Err(format!(
            "public key file `{shown}` holds no PEM block (expected -----BEGIN PUBLIC KEY-----)"
        ));
    }
    let mut keys = Vec::new();
    for (label, block, der) in blocks {
        let bad = |what: &str| format!("public key file `{shown}`: {what}");
        let (alg, key) = match label.as_str() {
            "PUBLIC KEY" => {
                // The AlgorithmIdentifier sits at the start of the structure.
                let head = &der[..der.len().min(32)];
                if contains(head, OID_ED25519) {
                    (Algorithm::EdDSA, DecodingKey::from_ed_pem(block.as_bytes()))
                } else if contains(head, OID_EC_PUBLIC_KEY) {
                    let alg = if contains(head, OID_P256) {
                        Algorithm::ES256
                    } else if contains(head, OID_P384) {
                        Algorithm::ES384
                    } else {
                        return Err(bad("unsupported elliptic curve (use P-256 or P-384)"));
                    };
                    (alg, DecodingKey::from_ec_pem(block.as_bytes()))
                } else if contains(head, OID_RSA) {
                    (
                        Algorithm::RS256,
                        DecodingKey::from_rsa_pem(block.as_bytes()),
                    )
                } else {
                    return Err(bad("unsupported key type (use Ed25519, P-256 or RSA)"));
                }
            }
            "RSA PUBLIC KEY" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(block.as_bytes()),
            ),
            l if l.contains("PRIVATE KEY") => {
                return Err(bad(
                    "holds a private key; give ternd only the public key (openssl pkey -pubout)",
                ));
            }
            "CERTIFICATE" => {
                return Err(bad(
                    "holds a certificate; extract its public key (openssl x509 -pubkey -noout)",
                ));
            }
            other => return Err(bad(&format!("unexpected PEM block `{other}`"))),
        };
        let key = key.map_err(|_| bad(&format!("cannot parse the {alg:?} public key")))?;
        keys.push(VerifyKey {
            alg,
            key,
            kid: None,
        });
    }
    Ok(keys)
}

/// Reads a JWKS file (`{"keys": [...]}`). Keys marked `"use": "enc"` are
/// skipped; symmetric (`oct`) keys are refused (use HS256 secrets instead).
pub fn load_jwks_file(path: &Path) -> Result<Vec<VerifyKey>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read JWKS file `{shown}`: {e}"))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("JWKS file `{shown}` is not a valid JWK set: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let bad = |what: &str| format!("JWKS file `{shown}`, key #{}: {what}", i + 1);
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let from_params = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(bad("unsupported elliptic curve (use P-256 or P-384)")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => Algorithm::EdDSA,
                _ => return Err(bad("unsupported OKP curve (use Ed25519)")),
            },
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::OctetKey(_) => {
                return Err(bad(
                    "symmetric (oct) keys are not accepted here; use token_hs256_secrets",
                ));
            }
            _ => return Err(bad("unsupported key type")),
        };
        let alg = match jwk.common.key_algorithm {
            None => from_params,
            Some(ka) => {
                let alg = match ka {
                    KeyAlgorithm::ES256 => Algorithm::ES256,
                    KeyAlgorithm::ES384 => Algorithm::ES384,
                    KeyAlgorithm::RS256 => Algorithm::RS256,
                    KeyAlgorithm::RS384 => Algorithm::RS384,
                    KeyAlgorithm::RS512 => Algorithm::RS512,
                    KeyAlgorithm::PS256 => Algorithm::PS256,
                    KeyAlgorithm::PS384 => Algorithm::PS384,
                    KeyAlgorithm::PS512 => Algorithm::PS512,
                    KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                    other => return Err(bad(&format!("algorithm {other:?} is not accepted"))),
                };
                if alg.family() != from_params.family() || (from_params != alg && !is_rsa(alg)) {
                    return Err(bad(&format!("`alg` {alg:?} does not match the key type")));
                }
                alg
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| bad("cannot parse the key"))?;
        keys.push(VerifyKey {
            alg,
            key,
            kid: jwk.common.key_id.clone(),
        });
    }
    if keys.is_empty() {
        return Err(format!("JWKS file `{shown}` holds no signature key"));
    }
    Ok(keys)
}

fn is_rsa(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

/// Why a token was refused (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// 401 `invalid_token`, with a fixed description that leaks no key
    /// material.
    Invalid(&'static str),
    /// 403 `insufficient_scope`: the token is valid but lacks the required
    /// scope or role.
    InsufficientScope,
}

/// The claims the endpoint uses from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `sub`: the user id.
    pub sub: String,
    /// `exp`, UNIX seconds.
    pub exp: u64,
}

/// Verifies access tokens against the configured keys and claims.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerifyKey>,
    audience: String,
    issuer: Option<String>,
    scope: Option<String>,
    leeway: u64,
}

impl Verifier {
    /// Builds the verifier: HS256 secrets, PEM files and the JWKS file of
    /// `config` (files are read now).
    pub fn from_config(config: &HttpConfig) -> Result<Verifier, String> {
        let mut keys = Vec::new();
        for secret in &config.token_hs256_secrets {
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|_| "unusable HS256 secret".to_owned())?;
            keys.push(VerifyKey {
                alg: Algorithm::HS256,
                key,
                kid: None,
            });
        }
        for path in &config.token_public_keys {
            keys.extend(load_pem_file(path)?);
        }
        if let Some(path) = &config.token_jwks_file {
            keys.extend(load_jwks_file(path)?);
        }
        Ok(Verifier {
            keys,
            audience: config.token_audience.clone(),
            issuer: config.token_issuer.clone(),
            scope: config.token_scope.clone(),
            leeway: config.token_leeway.as_secs(),
        })
    }

    /// Whether no key is configured (the endpoint is then off).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured keys.
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }

    /// The required scope, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Verifies `token` (compact JWS) against the current time.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token"))?;
        let candidates: Vec<&VerifyKey> = self
            .keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(TokenError::Invalid(
                "signing algorithm or key id not accepted",
            ));
        }
        let validation = self.validation(header.alg);
        let mut last = TokenError::Invalid("invalid signature");
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        return Err(TokenError::Invalid("token expired"));
                    }
                    ErrorKind::ImmatureSignature => {
                        return Err(TokenError::Invalid("token not yet valid"));
                    }
                    ErrorKind::InvalidAudience => {
                        return Err(TokenError::Invalid("wrong audience"));
                    }
                    ErrorKind::InvalidIssuer => return Err(TokenError::Invalid("wrong issuer")),
                    ErrorKind::MissingRequiredClaim(_) => {
                        return Err(TokenError::Invalid("missing required claim"));
                    }
                    ErrorKind::InvalidClaimFormat(_) | ErrorKind::InvalidSubject => {
                        return Err(TokenError::Invalid("invalid claim"));
                    }
                    ErrorKind::InvalidSignature => last = TokenError::Invalid("invalid signature"),
                    _ => last = TokenError::Invalid("malformed token"),
                },
            }
        }
        let claims = claims.ok_or(last)?;
        let sub = match claims.get("sub") {
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= MAX_SUB_BYTES
                    && !s.chars().any(char::is_control) =>
            {
                s.clone()
            }
            _ => return Err(TokenError::Invalid("unusable sub claim")),
        };
        let exp = match claims.get("exp") {
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            _ => None,
        }
        .ok_or(TokenError::Invalid("invalid claim"))?;
        if let Some(scope) = &self.scope
            && !has_scope(&claims, scope)
        {
            return Err(TokenError::InsufficientScope);
        }
        Ok(Verified { sub, exp })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&[&self.audience]);
            required.push("aud");
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

/// Whether `claims` grant `scope`: in a space-separated `scope` string, or
/// in a `scp` / `roles` claim (an array of strings, or a space-separated
/// string).
fn has_scope(claims: &Map<String, Value>, scope: &str) -> bool {
    ["scope", "scp", "roles"]
        .iter()
        .filter_map(|name| claims.get(*name))
        .any(|v| match v {
            Value::String(s) => s.split_ascii_whitespace().any(|x| x == scope),
            Value::Array(items) => items.iter().any(|x| x.as_str() == Some(scope)),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn config() -> HttpConfig {
        HttpConfig {
            token_hs256_secrets: vec!["k1".into(), "k2".into()],
            ..HttpConfig::default()
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs(secret: &str, claims: &Value) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes()).expect("key");
        encode(&Header::new(Algorithm::HS256), claims, &key).expect("encode")
    }

    #[test]
    fn hs256_rotation_and_claims() {
        let v = Verifier::from_config(&config()).expect("verifier");
        let exp = now() + 600;
        let ok = json!({"sub": "alice", "exp": exp, "aud": "ternd"});
        assert_eq!(
            v.verify(&hs("k2", &ok)),
            Ok(Verified {
                sub: "alice".into(),
                exp
            })
        );
        assert_eq!(
            v.verify(&hs("k3", &ok)),
            Err(TokenError::Invalid("invalid signature"))
        );
        let no_aud = json!({"sub": "alice", "exp": exp});
        assert_eq!(
            v.verify(&hs("k1", &no_aud)),
            Err(TokenError::Invalid("missing required claim"))
        );
        let no_sub = json!({"exp": exp, "aud": "ternd"});
        assert!(v.verify(&hs("k1", &no_sub)).is_err());
        let num_sub = json!({"sub": 5, "exp": exp, "aud": "ternd"});
        assert!(v.verify(&hs("k1", &num_sub)).is_err());
        let aud_list = json!({"sub": "a", "exp": exp, "aud": ["x", "ternd"]});
        assert!(v.verify(&hs("k1", &aud_list)).is_ok());

        let mut c = config();
        c.token_audience = String::new();
        let v = Verifier::from_config(&c).expect("verifier");
        assert!(v.verify(&hs("k1", &no_aud)).is_ok());
    }

    #[test]
    fn scopes() {
        let mut c = config();
        c.token_scope = Some("turn".into());
        let v = Verifier::from_config(&c).expect("verifier");
        let exp = now() + 600;
        for claims in [
            json!({"sub": "a", "exp": exp, "aud": "ternd", "scope": "read turn"}),
            json!({"sub": "a", "exp": exp, "aud": "ternd", "scp": ["turn"]}),
            json!({"sub": "a", "exp": exp, "aud": "ternd", "roles": ["x", "turn"]}),
        ] {
            assert!(v.verify(&hs("k1", &claims)).is_ok(), "{claims}");
        }
        for claims in [
            json!({"sub": "a", "exp": exp, "aud": "ternd"}),
            json!({"sub": "a", "exp": exp, "aud": "ternd", "scope": "turnx"}),
            json!({"sub": "a", "exp": exp, "aud": "ternd", "roles": "admin"}),
        ] {
            assert_eq!(
                v.verify(&hs("k1", &claims)),
                Err(TokenError::InsufficientScope),
                "{claims}"
            );
        }
    }

    #[test]
    fn bad_files() {
        let dir = std::env::temp_dir().join(format!("ternd-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("k.pem");
        std::fs::write(
            &f,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        assert!(load_pem_file(&f).unwrap_err().contains("private key"));
        std::fs::write(&f, "nothing").expect("write");
        assert!(load_pem_file(&f).unwrap_err().contains("no PEM block"));
        std::fs::write(
            &f,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .expect("write");
        assert!(load_pem_file(&f).is_err());
        assert!(load_pem_file(&dir.join("missing.pem")).is_err());
        std::fs::write(&f, r#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#).expect("write");
        assert!(load_jwks_file(&f).unwrap_err().contains("symmetric"));
        std::fs::write(&f, "{").expect("write");
        assert!(load_jwks_file(&f).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

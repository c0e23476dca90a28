//! `ternd token issue`: mint an HS256 access token for development.
//!
//! In production the application's identity service issues access tokens;
//! this command only lets you try the credentials endpoint by hand.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::config::TokenIssueArgs;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// The compact JWT (and a newline) `ternd token issue` prints for `args` at
/// `now_unix` (UNIX seconds).
pub fn run(args: &TokenIssueArgs, now_unix: u64) -> Result<String, String> {
    let secret = match args.token_hs256_secret.first() {
        Some(s) if !s.is_empty() => s,
        _ => return Err("the HS256 secret must not be empty".to_owned()),
    };
    if args.sub.is_empty() {
        return Err("the subject (--sub) must not be empty".to_owned());
    }
    if args.sub.len() > crate::http::token::MAX_SUB_BYTES || args.sub.chars().any(char::is_control)
    {
        return Err(format!(
            "the subject must be at most {} bytes without control characters",
            crate::http::token::MAX_SUB_BYTES
        ));
    }
    let ttl = args.ttl.as_secs();
    if ttl == 0 {
        return Err("the TTL must be at least one second".to_owned());
    }
    let exp = now_unix
        .checked_add(ttl)
        .ok_or_else(|| "the TTL is too long".to_owned())?;
    let claims = Claims {
        sub: &args.sub,
        iat: now_unix,
        exp,
        aud: Some(args.aud.as_str()).filter(|a| !a.is_empty()),
        iss: args.iss.as_deref().filter(|s| !s.is_empty()),
        scope: args.scope.as_deref().filter(|s| !s.is_empty()),
    };
    let key = EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?;
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| e.to_string())?;
    Ok(format!("{token}\n"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::{Cli, Command, TokenArgs, TokenCommand};

    fn args(argv: &[&str]) -> TokenIssueArgs {
        let mut v = vec!["ternd", "token", "issue"];
        v.extend_from_slice(argv);
        match Cli::try_parse_from(v) {
            Ok(Cli {
                command:
                    Some(Command::Token(TokenArgs {
                        command: TokenCommand::Issue(a),
                    })),
                ..
            }) => a,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    fn claims(token: &str) -> serde_json::Value {
        use base64::Engine as _;
        let payload = token.trim().split('.').nth(1).expect("payload");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn issues_a_token_the_verifier_accepts() {
        let a = args(&["--token-hs256-secret", "dev-secret", "--sub", "alice"]);
        let now = jsonwebtoken::get_current_timestamp();
        let out = run(&a, now).expect("token");
        assert!(
            out.ends_with('\n') && out.matches('.').count() == 2,
            "{out}"
        );
        let c = claims(&out);
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["aud"], "ternd");
        assert_eq!(c["exp"], now + 3600);
        assert!(c.get("iss").is_none() && c.get("scope").is_none());

        let config = crate::config::HttpConfig {
            token_hs256_secrets: vec!["dev-secret".into()],
            ..Default::default()
        };
        let v = crate::http::token::Verifier::from_config(&config).expect("verifier");
        let verified = v.verify(out.trim()).expect("verifies");
        assert_eq!(verified.sub, "alice");
        assert_eq!(verified.exp, now + 3600);
    }

    #[test]
    fn options() {
        let a = args(&[
            "--token-hs256-secret",
            "s1,s2",
            "--sub",
            "bob",
            "--ttl",
            "90",
            "--aud",
            "",
            "--iss",
            "https://id.example",
            "--scope",
            "turn",
        ]);
        let c = claims(&run(&a, 1000).expect("token"));
        assert_eq!(c["exp"], 1090);
        assert_eq!(c["iat"], 1000);
        assert!(c.get("aud").is_none());
        assert_eq!(c["iss"], "https://id.example");
        assert_eq!(c["scope"], "turn");
        assert!(!format!("{a:?}").contains("s1"));

        let mut a = args(&["--token-hs256-secret", "s", "--sub", "x"]);
        assert!(run(&a, u64::MAX).is_err());
        a.sub = String::new();
        assert!(run(&a, 0).is_err());
        a.sub = "x".into();
        a.token_hs256_secret = vec![String::new()];
        assert!(run(&a, 0).is_err());

        let parse = |argv: &[&str]| {
            let mut v = vec!["ternd", "token", "issue"];
            v.extend_from_slice(argv);
            Cli::try_parse_from(v)
        };
        assert!(
            parse(&["--sub", "a"]).is_err()
                || std::env::var_os("TERND_TOKEN_HS256_SECRET").is_some()
        );
        assert!(parse(&["--token-hs256-secret", "s"]).is_err());
        assert!(parse(&["--token-hs256-secret", "s", "--sub", "a", "--ttl", "0"]).is_err());
    }
}

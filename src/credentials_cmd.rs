//! `ternd credentials`: print TURN REST credentials for a shared secret.

use serde::Serialize;

use crate::auth::rest;
use crate::config::CredentialsArgs;

/// The URIs listed in the JSON output when no `--uri` is given.
pub const DEFAULT_URIS: [&str; 2] = [
    "turn:127.0.0.1:3478?transport=udp",
    "turn:127.0.0.1:3478?transport=tcp",
];

#[derive(Serialize)]
struct Output<'a> {
    username: &'a str,
    password: &'a str,
    ttl: u64,
    uris: Vec<&'a str>,
}

/// The text `ternd credentials` prints for `args` at `now_unix` (UNIX seconds): the lines
/// `username: …` and `password: …`, or with `--json` one JSON object
/// `{"username", "password", "ttl", "uris"}` and a newline.
pub fn run(args: &CredentialsArgs, now_unix: u64) -> Result<String, String> {
    let secret = match args.secret.first() {
        Some(s) if !s.is_empty() => s,
        _ => return Err("the secret must not be empty".to_owned()),
    };
    let ttl = args.ttl.as_secs();
    if ttl == 0 {
        return Err("the TTL must be at least one second".to_owned());
    }
    let expiry = now_unix
        .checked_add(ttl)
        .ok_or_else(|| "the TTL is too long".to_owned())?;
    let (username, password) =
        rest::credentials(secret, &args.user_id, expiry, args.rest_separator);
    if args.json {
        let uris = if args.uri.is_empty() {
            DEFAULT_URIS.to_vec()
        } else {
            args.uri.iter().map(String::as_str).collect()
        };
        let out = Output {
            username: &username,
            password: &password,
            ttl,
            uris,
        };
        let json = serde_json::to_string(&out).map_err(|e| e.to_string())?;
        Ok(format!("{json}\n"))
    } else {
        Ok(format!("username: {username}\npassword: {password}\n"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::config::{Cli, Command};

    fn args(argv: &[&str]) -> CredentialsArgs {
        let mut v = vec!["ternd", "credentials"];
        v.extend_from_slice(argv);
        match Cli::try_parse_from(v) {
            Ok(Cli {
                command: Some(Command::Credentials(a)),
                ..
            }) => a,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    #[test]
    fn text_output() {
        let a = args(&["--secret", "mysecret", "--user-id", "alice", "--ttl", "1h"]);
        let out = run(&a, 1_699_996_400).unwrap();
        // printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac mysecret -binary | base64
        assert_eq!(
            out,
            "username: 1700000000:alice\npassword: PSwWMIID0EkUrZ8pwY2wbdTQnTc=\n"
        );
        // Default TTL is one hour too; a rotation list uses its first secret.
        let a = args(&["--secret", "mysecret,old", "--user-id", "alice"]);
        assert_eq!(run(&a, 1_699_996_400).unwrap(), out);
    }

    #[test]
    fn json_output() {
        let a = args(&[
            "--secret",
            "mysecret",
            "--user-id",
            "alice",
            "--ttl",
            "90",
            "--json",
        ]);
        let out = run(&a, 1_699_999_910).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "username": "1700000000:alice",
                "password": "PSwWMIID0EkUrZ8pwY2wbdTQnTc=",
                "ttl": 90,
                "uris": [
                    "turn:127.0.0.1:3478?transport=udp",
                    "turn:127.0.0.1:3478?transport=tcp"
                ]
            })
        );
        assert!(out.starts_with("{\"username\":"), "{out}");
        assert!(out.ends_with("}\n"), "{out}");

        let a = args(&[
            "--secret",
            "s",
            "--user-id",
            "bob",
            "--json",
            "--rest-separator",
            "|",
            "--uri",
            "turn:turn.example.org:3478",
            "--uri",
            "turns:turn.example.org:5349?transport=tcp",
        ]);
        let v: serde_json::Value = serde_json::from_str(&run(&a, 100).unwrap()).unwrap();
        assert_eq!(v["username"], "3700|bob");
        assert_eq!(v["password"], rest::password("s", "3700|bob"));
        assert_eq!(v["ttl"], 3600);
        assert_eq!(
            v["uris"],
            serde_json::json!([
                "turn:turn.example.org:3478",
                "turns:turn.example.org:5349?transport=tcp"
            ])
        );
    }

    #[test]
    fn errors() {
        // The server splits at the first separator: a user id may contain it.
        let mut a = args(&["--secret", "s", "--user-id", "room:1"]);
        assert_eq!(
            run(&a, 0).unwrap(),
            format!(
                "username: 3600:room:1\npassword: {}\n",
                rest::password("s", "3600:room:1")
            )
        );
        assert!(run(&a, u64::MAX).unwrap_err().contains("too long"));
        a.secret = vec![String::new()];
        assert!(run(&a, 0).is_err());
        a.secret.clear();
        assert!(run(&a, 0).is_err());
        assert!(!format!("{a:?}").contains("\"s\""));

        let parse = |argv: &[&str]| {
            let mut v = vec!["ternd", "credentials"];
            v.extend_from_slice(argv);
            Cli::try_parse_from(v)
        };
        assert!(parse(&["--secret", "s", "--user-id", "a", "--ttl", "0"]).is_err());
        assert!(parse(&["--secret", "s", "--user-id", "a", "--ttl", "500ms"]).is_err());
        assert!(parse(&["--secret", "s", "--user-id", "a", "--ttl", "soon"]).is_err());
        assert!(parse(&["--secret", "s", "--user-id", "a", "--rest-separator", "ab"]).is_err());
        assert!(parse(&["--secret", "s", "--user-id", "a", "--rest-separator", "x"]).is_err());
        assert!(parse(&["--secret", "s"]).is_err());
    }

    #[test]
    fn server_flags_still_parse_without_subcommand() {
        let cli =
            Cli::try_parse_from(["ternd", "--listen", "127.0.0.1:3478", "--realm", "r"]).unwrap();
        assert_eq!(cli.command, None);
        let config = crate::config::Config::load(&cli).unwrap();
        assert_eq!(config.listen, vec!["127.0.0.1:3478".parse().unwrap()]);
        use clap::CommandFactory as _;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("credentials"), "{help}");
    }
}

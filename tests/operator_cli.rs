//! The operator commands against a real ternd (a child process on loopback):
//! `ternd sessions list|kill|revoke` through the admin API, their error messages (wrong
//! token, admin API off, no server, no cluster, bad input), `ternd config show` (origins,
//! redaction, the round trip through `--check-config`), completions and the man page.

mod common;
#[path = "common/process.rs"]
mod process;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::Client;
use process::{Setup, Ternd, free_port};

const TOKEN: &str = "operator-cli-admin-token-0123";

/// Runs `ternd ARGS` with only `envs` in its environment.
fn ternd(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ternd"))
        .env_clear()
        .envs(envs.iter().copied())
        .args(args)
        .output()
        .expect("run ternd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("ternd-opcli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sessions_list_kill_and_errors() {
    let server = Ternd::start(Setup {
        relay_ports: "47300-47399",
        extra: &["--admin-token", TOKEN],
        ..Setup::default()
    });
    let url = format!("http://{}", server.http);
    let mut alice = Client::new(server.addr, "alice");
    alice.allocate();

    // The table.
    let o = ternd(
        &["sessions", "list", "--url", &url, "--admin-token", TOKEN],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    println!("{table}");
    let header = table.lines().next().unwrap();
    for column in [
        "ID",
        "NODE",
        "USER",
        "CLIENT",
        "RELAY",
        "TRANSPORT",
        "STARTED",
        "AGE",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert_eq!(table.lines().count(), 2, "{table}");
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains(" alice ") && row.contains(" udp "), "{table}");

    // The JSON, the token from TERND_ADMIN_TOKEN.
    let o = ternd(
        &["sessions", "list", "--url", &url, "--json"],
        &[("TERND_ADMIN_TOKEN", TOKEN)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["user"], "alice");
    let id = list[0]["id"].as_u64().unwrap();
    assert!(row.trim_start().starts_with(&format!("{id} ")), "{table}");

    // The URL and the token from the configuration file; --user filters.
    let conf = TempFile::new(
        "client.toml",
        &format!(
            "[http]\nlisten = \"{}\"\nadmin_token = \"{TOKEN}\"\n",
            server.http
        ),
    );
    let o = ternd(
        &["sessions", "list", "-c", conf.path(), "--user", "bob"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no sessions\n");
    // The token from TERND_ADMIN_TOKEN_FILE, the URL from TERND_HTTP_LISTEN (0.0.0.0 is
    // loopback).
    let token_file = TempFile::new("token", &format!("{TOKEN}\n"));
    let any = format!("0.0.0.0:{}", server.http.port());
    let o = ternd(
        &["sessions", "list", "--user", "alice"],
        &[
            ("TERND_ADMIN_TOKEN_FILE", token_file.path()),
            ("TERND_HTTP_LISTEN", &any),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("alice"), "{}", stdout(&o));

    // A wrong token.
    let o = ternd(
        &[
            "sessions",
            "list",
            "--url",
            &url,
            "--admin-token",
            "not-the-token-at-all",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    println!("{e}");
    assert!(
        e.contains("refused the admin token (401 Unauthorized)"),
        "{e}"
    );

    // Revoking needs a cluster.
    let o = ternd(
        &[
            "sessions",
            "revoke",
            "alice",
            "--url",
            &url,
            "--admin-token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    println!("{e}");
    assert!(e.contains("revoking needs a cluster"), "{e}");
    assert!(e.contains("is a single node"), "{e}");

    // Kill: the client's next Refresh gets 437 (allocation mismatch).
    let id = id.to_string();
    let o = ternd(
        &[
            "sessions",
            "kill",
            &id,
            "--url",
            &url,
            "--admin-token",
            TOKEN,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("session {id} ended\n"));
    assert_eq!(alice.refresh_code(600), Some(437));
    // Again: no such session.
    let o = ternd(
        &[
            "sessions",
            "kill",
            &id,
            "--url",
            &url,
            "--admin-token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    println!("{e}");
    assert!(e.contains(&format!("no session {id} at {url}")), "{e}");
    // A node on a single server.
    let o = ternd(
        &[
            "sessions",
            "kill",
            &id,
            "--node",
            "relay-9",
            "--url",
            &url,
            "--admin-token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no cluster"), "{}", stderr(&o));

    // A user's sessions.
    let mut bob = Client::new(server.addr, "bob");
    bob.allocate();
    let o = ternd(
        &[
            "sessions",
            "kill",
            "--user",
            "bob",
            "--url",
            &url,
            "--admin-token",
            TOKEN,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ended 1 session(s) of bob\n");
    assert_eq!(bob.refresh_code(600), Some(437));
}

#[test]
fn admin_api_off() {
    let server = Ternd::start(Setup {
        relay_ports: "47400-47499",
        ..Setup::default()
    });
    let url = format!("http://{}", server.http);
    let o = ternd(
        &["sessions", "list", "--url", &url, "--admin-token", TOKEN],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    println!("{e}");
    assert!(e.contains("has no admin API (404 Not Found)"), "{e}");
    assert!(e.contains("admin_token is empty"), "{e}");
}

#[test]
fn no_server_and_bad_input() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = ternd(
        &["sessions", "list", "--url", &url, "--admin-token", TOKEN],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    println!("{e}");
    assert!(
        e.contains(&format!("no ternd answers at {url} (is http.listen set")),
        "{e}"
    );

    for (bad, expected) in [
        ("garbage", "is not an http:// URL"),
        ("http://", "names no valid host"),
        ("http://127.0.0.1:99999", "names no valid host"),
        ("https://127.0.0.1:9641", "https:// is not supported"),
    ] {
        let o = ternd(
            &["sessions", "list", "--url", bad, "--admin-token", TOKEN],
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(stderr(&o).contains(expected), "{bad}: {}", stderr(&o));
    }

    let o = ternd(&["sessions", "kill", "abc", "--url", &url], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a session id is a number"),
        "{}",
        stderr(&o)
    );

    // Nothing says where the token is.
    let o = ternd(&["sessions", "list", "--url", &url], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no admin token"), "{}", stderr(&o));
    // Nor where the server is.
    let o = ternd(
        &["sessions", "list", "--admin-token", TOKEN],
        &[("TERND_HTTP_LISTEN", "")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("http.listen is empty"),
        "{}",
        stderr(&o)
    );
}

/// The lines of `config show` output without comments (and without `workers`: "0", one
/// per CPU, when not given, and once given, the count it stands for here).
fn settings(shown: &str) -> Vec<String> {
    shown
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("workers = "))
        .map(|l| l.split("  # ").next().unwrap().to_owned())
        .collect()
}

#[test]
fn config_show_origins_redaction_round_trip() {
    let file = TempFile::new(
        "show.toml",
        "realm = \"example.org\"\n[relay]\nports = \"40000-40100\"\n[log]\nformat = \"json\"\n",
    );
    let secret = "s3cr3t-given-on-the-command-line";
    let o = ternd(
        &[
            "--max-bps",
            "125000",
            "--secret",
            secret,
            "config",
            "show",
            "-c",
            file.path(),
        ],
        &[("TERND_USER_QUOTA", "7")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = stdout(&o);
    println!("{shown}");
    let from_file = format!("  # from {}", file.path());
    for line in [
        format!("realm = \"example.org\"{from_file}"),
        format!("ports = \"40000-40100\"{from_file}"),
        "user_quota = 7  # from TERND_USER_QUOTA".to_owned(),
        "max_bps = 125000  # from --max-bps".to_owned(),
        "secrets = [\"<redacted>\"]  # from --secret".to_owned(),
        "listen = [\"0.0.0.0:3478\", \"[::]:3478\"]".to_owned(),
    ] {
        assert!(shown.lines().any(|l| l == line), "no `{line}` in\n{shown}");
    }
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("# Redacted: auth.secrets."), "{shown}");
    assert!(shown.contains("will not start as is"), "{shown}");
    // As is, it does not start.
    let redacted = TempFile::new("redacted.toml", &shown);
    let o = ternd(&["-c", redacted.path(), "--check-config"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`<redacted>` is the placeholder"),
        "{}",
        stderr(&o)
    );

    // Without secrets: accepted by --check-config, and it shows the same settings.
    let o = ternd(
        &["--max-bps", "125000", "config", "show", "-c", file.path()],
        &[("TERND_USER_QUOTA", "7")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o);
    assert!(!first.contains("Redacted"), "{first}");
    let copy = TempFile::new("copy.toml", &first);
    let o = ternd(&["-c", copy.path(), "--check-config"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ternd(&["config", "show", "-c", copy.path()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let second = stdout(&o);
    assert_eq!(settings(&second), settings(&first), "{second}");
    // Now every value came from the copy.
    assert!(
        second.contains(&format!("user_quota = 7  # from {}", copy.path())),
        "{second}"
    );

    // A bad configuration is a configuration error, exit status 2.
    let o = ternd(&["config", "show"], &[("TERND_RELAY_PORTS", "banana")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TERND_RELAY_PORTS"), "{}", stderr(&o));
}

#[test]
fn completions_and_man_page() {
    let o = ternd(&["completions", "bash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bash = stdout(&o);
    assert!(bash.contains("--relay-ports"), "{bash}");
    assert!(bash.contains("sessions"), "{bash}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = ternd(&["completions", shell], &[]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        assert!(stdout(&o).contains("relay-ports"), "{shell}");
    }
    let o = ternd(&["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2));

    for name in ["manpage", "man"] {
        let o = ternd(&[name], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let page = stdout(&o);
        assert!(page.contains(".TH ternd"), "{page}");
        assert!(page.contains("\\-\\-relay\\-ports"), "{page}");
        assert!(
            page.contains("ternd \\- a STUN/TURN relay server"),
            "{page}"
        );
    }
}

//! `ternd sessions list|kill|revoke`: the admin API of a running ternd, from the command
//! line. The URL and the token default to the local configuration's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::client::{Response, Url, encode, request};
use crate::config::cli_tools::{AdminApi, SessionsCommand};
use crate::config::{Cli, Config};

/// Runs `cmd`; what to print on success, the error message otherwise.
pub(crate) fn run(cmd: &SessionsCommand, cli: &Cli) -> Result<String, String> {
    match cmd {
        SessionsCommand::List(a) => {
            let (url, token) = target(&a.api, cli)?;
            let mut query = Vec::new();
            if let Some(u) = &a.user {
                query.push(format!("user={}", encode(u)));
            }
            if let Some(n) = &a.node {
                query.push(format!("node={}", encode(n)));
            }
            let path = match query.is_empty() {
                true => "/admin/sessions".to_owned(),
                false => format!("/admin/sessions?{}", query.join("&")),
            };
            let r = request(&url, "GET", &path, &token)?;
            if r.status != 200 {
                return Err(refused(&url, &r));
            }
            let list: Value = serde_json::from_str(&r.body)
                .map_err(|e| format!("{} answered JSON that does not parse: {e}", url.shown))?;
            let Some(sessions) = list.as_array() else {
                return Err(format!(
                    "{} answered something other than a list",
                    url.shown
                ));
            };
            Ok(if a.json {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                )
            } else {
                table(sessions, now_unix())
            })
        }
        SessionsCommand::Kill(a) => {
            let (url, token) = target(&a.api, cli)?;
            if let Some(user) = &a.user {
                let path = format!("/admin/users/{}/sessions", encode(user));
                let r = request(&url, "DELETE", &path, &token)?;
                if r.status != 200 {
                    return Err(refused(&url, &r));
                }
                let n = number(&r, "killed");
                return Ok(format!("ended {n} session(s) of {user}\n"));
            }
            let id = a.id.unwrap_or_default();
            let path = match &a.node {
                Some(node) => format!("/admin/sessions/{id}?node={}", encode(node)),
                None => format!("/admin/sessions/{id}"),
            };
            let r = request(&url, "DELETE", &path, &token)?;
            match r.status {
                200 => Ok(format!("session {id} ended\n")),
                202 => Ok(format!(
                    "session {id} on node {}: asked to end it (the node does so as soon as it \
                     reads the command)\n",
                    a.node.as_deref().unwrap_or("?")
                )),
                404 if r.description().as_deref() == Some("no such session") => Err(format!(
                    "no session {id} at {} (`ternd sessions list` shows the live ones)",
                    url.shown
                )),
                _ => Err(refused(&url, &r)),
            }
        }
        SessionsCommand::Revoke(a) => {
            let (url, token) = target(&a.api, cli)?;
            let path = format!("/admin/users/{}/revoke", encode(&a.user));
            let r = request(&url, "POST", &path, &token)?;
            let no_cluster = r
                .description()
                .is_some_and(|d| d.contains("needs a cluster"));
            match r.status {
                200 => Ok(format!(
                    "revoked {} on every node: their sessions end within milliseconds, and \
                     credentials issued before now are refused for cluster.revocation_ttl\n",
                    a.user
                )),
                404 if no_cluster => Err(format!(
                    "revoking needs a cluster, and the ternd at {} is a single node (no \
                     [cluster] redis_url). There, `ternd sessions kill --user {}` ends the \
                     user's sessions; their credentials stay valid until they expire",
                    url.shown, a.user
                )),
                _ => Err(refused(&url, &r)),
            }
        }
    }
}

/// The URL and the token: the flags, else the local configuration's.
fn target(api: &AdminApi, cli: &Cli) -> Result<(Url, String), String> {
    let url = api.url.as_deref().map(Url::parse).transpose()?;
    let token = api.admin_token.clone().filter(|t| !t.is_empty());
    if let (Some(url), Some(token)) = (&url, &token) {
        return Ok((url.clone(), token.clone()));
    }
    let mut cli = cli.clone();
    if api.config.is_some() {
        cli.config = api.config.clone();
    }
    let config = Config::load(&cli).map_err(|e| {
        format!("configuration error: {e} (it gives the URL and the token unless --url and --admin-token do)")
    })?;
    let url = match (url, config.http.listen) {
        (Some(url), _) => url,
        (None, None) => {
            return Err(
                "the configuration has no HTTP endpoint (http.listen is empty): give --url".into(),
            );
        }
        (None, Some(_)) if config.http.tls_cert.is_some() => {
            return Err(
                "the configuration serves HTTP over TLS (http.tls_cert), which this client does \
                 not speak: give --url of a plain http:// endpoint, or use curl"
                    .into(),
            );
        }
        (None, Some(addr)) => Url::of_listen(addr),
    };
    let token = token.or(config.http.admin_token).ok_or(
        "no admin token: give the server's http.admin_token with --admin-token, \
         TERND_ADMIN_TOKEN or TERND_ADMIN_TOKEN_FILE",
    )?;
    Ok((url, token))
}

/// The message for an answer other than success.
fn refused(url: &Url, r: &Response) -> String {
    let url = &url.shown;
    let description = r.description();
    match r.status {
        401 => format!(
            "{url} refused the admin token (401 Unauthorized): it is not the server's \
             http.admin_token. Give the right one with --admin-token, TERND_ADMIN_TOKEN or \
             TERND_ADMIN_TOKEN_FILE"
        ),
        404 if description.as_deref() == Some("no such resource") => format!(
            "{url} has no admin API (404 Not Found): the server's http.admin_token is empty, \
             which turns the admin API off; start it with --admin-token (at least 16 characters)"
        ),
        status => {
            let why = description.unwrap_or_else(|| r.body.trim().chars().take(200).collect());
            format!("{url} answered {status}: {why}")
        }
    }
}

fn number(r: &Response, field: &str) -> u64 {
    serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get(field)?.as_u64())
        .unwrap_or(0)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The sessions as a table: id, node, user, client, relay, transport, start (RFC 3339,
/// UTC) and age, bytes in and out.
pub(crate) fn table(sessions: &[Value], now: u64) -> String {
    if sessions.is_empty() {
        return "no sessions\n".to_owned();
    }
    let header = [
        "ID",
        "NODE",
        "USER",
        "CLIENT",
        "RELAY",
        "TRANSPORT",
        "STARTED",
        "AGE",
        "BYTES IN",
        "BYTES OUT",
    ];
    let mut rows = vec![header.map(str::to_owned)];
    for s in sessions {
        let text = |k: &str| match s.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "-".to_owned(),
        };
        let num = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
        let mut transport = text("transport");
        if text("relay_transport") == "tcp" {
            transport.push_str(" (tcp relay)");
        }
        let created = num("created_unix");
        let started = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(created));
        let age = humantime::format_duration(Duration::from_secs(now.saturating_sub(created)));
        rows.push([
            text("id"),
            text("node"),
            text("user"),
            text("client"),
            text("relay"),
            transport,
            started.to_string(),
            age.to_string(),
            bytes(num("bytes_in")),
            bytes(num("bytes_out")),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            // Numbers right-aligned, text left-aligned.
            if i == 0 || i >= 8 {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `512 B`, `1.5 KiB`, `3.0 MiB`, ...
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table() {
        let list: Value = serde_json::json!([{
            "id": 7, "user": "alice", "username": "1700000000:alice",
            "client": "127.0.0.1:50000", "relay": "127.0.0.1:49152",
            "transport": "udp", "relay_transport": "udp",
            "created_unix": 1_700_000_000u64, "expires_unix": 1_700_000_600u64,
            "bytes_in": 2048, "bytes_out": 100
        }]);
        let t = table(list.as_array().unwrap(), 1_700_000_065);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ID  NODE  USER "), "{t}");
        assert!(lines[1].contains("2023-11-14T22:13:20Z"), "{t}");
        assert!(lines[1].contains("1m 5s"), "{t}");
        assert!(lines[1].ends_with("2.0 KiB      100 B"), "{t}");
        assert_eq!(table(&[], 0), "no sessions\n");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}

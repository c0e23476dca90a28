//! Credentials (REST secrets, static users, realm, nonces) and limits (quotas,
//! bandwidth, lifetimes, the unauthenticated rate limit).

use toml::Value;

use super::{Line, Options, Translation, User, finding, int, number, strings, unsupported, value};

/// use-auth-secret, static-auth-secret, user, realm, rest-api-separator, stale-nonce.
pub(super) fn credentials(t: &mut Translation, o: &mut Options<'_>) {
    let realm = o.last(t, "realm");
    if let Some(l) = realm {
        t.set("realm", Value::String(value(l).to_owned()), &[l], &[]);
    }
    if let Some(l) = o.last(t, "rest-api-separator") {
        t.set(
            "auth.rest_separator",
            Value::String(value(l).to_owned()),
            &[l],
            &[],
        );
    }
    let rest = o.flag(t, "use-auth-secret");
    let secrets = o.all("static-auth-secret");
    match (rest, secrets.is_empty()) {
        (Some(l), true) => t.skip(
            l.no,
            &l.name,
            "no static-auth-secret: coturn read the secrets from its database; \
             give ternd auth.secrets (or auth.secret_file)",
        ),
        (Some(_), false) => {
            let values = secrets.iter().map(|l| value(l).to_owned());
            if t.set(
                "auth.secrets",
                strings(values),
                &secrets,
                &[
                    "REST (time-limited) credentials: the first secret is current.",
                    "Security: move the secrets out of this file, into auth.secret_file (one per",
                    "line, readable by ternd only) or TERND_SECRET_FILE, and delete them here.",
                ],
            ) {
                t.note(
                    secrets[0].no,
                    "static-auth-secret",
                    "the secret is copied into the output: move it to auth.secret_file or \
                     TERND_SECRET_FILE",
                );
            }
        }
        (None, _) => {
            for l in &secrets {
                t.skip(
                    l.no,
                    &l.name,
                    "coturn uses it only with use-auth-secret, which is off",
                );
            }
        }
    }
    users(t, o.all("user"), rest.is_some(), realm.is_some());
    if let Some(l) = o.last(t, "stale-nonce") {
        let secs = match &l.value {
            None => Some(600),
            Some(_) => number::<u64>(t, l),
        };
        if let Some(s) = secs {
            t.set("auth.nonce_lifetime", int(s), &[l], &["Seconds."]);
        }
    }
}

/// `user=NAME:PASSWORD` and `user=NAME:0xKEY`.
fn users(t: &mut Translation, lines: Vec<&Line>, rest: bool, realm: bool) {
    for l in lines {
        if rest {
            t.skip(
                l.no,
                &l.name,
                "coturn ignores static users while use-auth-secret is on, so ternd gets none",
            );
            continue;
        }
        let Some((name, cred)) = value(l).split_once(':') else {
            t.skip(l.no, &l.name, "expected NAME:PASSWORD or NAME:0xKEY");
            continue;
        };
        let cred = cred.trim_start_matches([' ', '\t']);
        let (field, v) = match cred.strip_prefix("0x") {
            Some(hex) => ("key", hex.to_ascii_lowercase()),
            None => ("password", cred.to_owned()),
        };
        let mut table = toml::Table::new();
        table.insert("name".to_owned(), Value::String(name.to_owned()));
        table.insert(field.to_owned(), Value::String(v.clone()));
        let one = Value::Array(vec![Value::Table(table)]);
        if let Err(e) = crate::config::Config::check_value("auth.users", &one, "-") {
            let e = e.to_string();
            let e = e
                .strip_prefix("-: ")
                .unwrap_or(&e)
                .replace("auth.users[0]", "user");
            t.skip(l.no, &l.name, format!("ternd does not take it: {e}"));
            continue;
        }
        if field == "key" && !realm {
            t.note(
                l.no,
                "user",
                "its key hashes coturn's realm, which is not set here: ternd's realm is \
                 \"ternd\", so set realm to the one the key was made for",
            );
        }
        if let Some(at) = t.users.iter().position(|u| u.name == name) {
            let before = t.users.remove(at);
            t.note(
                before.line,
                "user",
                format!("given again on line {}: the last one counts", l.no),
            );
        }
        t.users.push(User {
            name: name.to_owned(),
            field,
            value: v,
            line: l.no,
        });
    }
}

/// user-quota, total-quota, max-bps, max-allocate-lifetime, unauthorized-ratelimit.
pub(super) fn limits(t: &mut Translation, o: &mut Options<'_>) {
    for (name, key) in [
        ("user-quota", "relay.user_quota"),
        ("total-quota", "relay.total_quota"),
        ("max-bps", "relay.max_bps"),
    ] {
        if let Some(l) = o.last(t, name)
            && let Some(n) = number::<u64>(t, l)
        {
            let comment: &[&str] = if name == "max-bps" {
                &["Bytes per second per allocation and direction, as in coturn."]
            } else {
                &[]
            };
            t.set(key, int(n), &[l], comment);
        }
    }
    if let Some(l) = o.last(t, "max-allocate-lifetime") {
        let secs = match &l.value {
            None => Some(3600),
            Some(_) => number::<u64>(t, l),
        };
        if let Some(s) = secs {
            if s < 600 {
                t.set(
                    "relay.default_allocation_lifetime",
                    int(s),
                    &[l],
                    &["Seconds (under RFC 8656's 10-minute default, so the default follows)."],
                );
            }
            t.set("relay.max_allocation_lifetime", int(s), &[l], &["Seconds."]);
        }
    }
    let limited = o.flag(t, "unauthorized-ratelimit");
    if let Some(l) = o.last(t, "unauthorized-ratelimit-rps") {
        match limited {
            Some(_) => {
                if let Some(n) = number::<u64>(t, l) {
                    t.set("relay.unauth_rate_limit", int(n), &[l], &[]);
                }
            }
            None => t.skip(
                l.no,
                &l.name,
                "coturn applies it only with unauthorized-ratelimit",
            ),
        }
    }
    if let Some(l) = limited {
        t.implied.push(finding(
            l.no,
            &l.name,
            unsupported::implied(&l.name).unwrap_or(""),
        ));
    }
}

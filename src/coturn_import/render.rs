//! The translation as a commented ternd.toml.

use std::fmt::Write as _;

use toml::Value;

use super::translate::{Item, Translation};
use super::{Finding, report};

/// Sections in the order they are written; `""` is the top level.
const SECTIONS: [&str; 5] = ["", "relay", "auth", "http", "log"];

/// Most coturn lines named above one setting.
const MAX_FROM: usize = 8;

fn section(key: &str) -> (&str, &str) {
    key.split_once('.').unwrap_or(("", key))
}

fn value(v: &Value) -> String {
    match v {
        Value::Array(items) if items.len() > 2 => {
            let mut s = String::from("[\n");
            for i in items {
                let _ = writeln!(s, "    {i},");
            }
            s.push(']');
            s
        }
        other => other.to_string(),
    }
}

fn block(out: &mut String, title: &str, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "#\n# {title} ({}):", findings.len());
    for line in report(findings) {
        let _ = writeln!(out, "#   {line}");
    }
}

fn item(out: &mut String, key: &str, i: &Item) {
    for c in &i.comment {
        let _ = writeln!(out, "# {c}");
    }
    if !i.from.is_empty() {
        let mut from: Vec<String> = i
            .from
            .iter()
            .take(MAX_FROM)
            .map(|(no, name)| format!("{name} (line {no})"))
            .collect();
        if i.from.len() > MAX_FROM {
            from.push(format!("and {} more lines", i.from.len() - MAX_FROM));
        }
        let _ = writeln!(out, "# coturn: {}", from.join(", "));
    }
    let _ = writeln!(out, "{key} = {}", value(&i.value));
}

/// The ternd.toml text for `t`, translated from the file called `name`.
pub(super) fn render(t: &Translation, name: &str) -> String {
    let mut out = String::new();
    let shown = super::parse::shown(name);
    let _ = writeln!(
        out,
        "# ternd configuration translated by `ternd import-coturn` from {shown}.\n\
         # Check it:  ternd -c THIS_FILE --check-config\n\
         # ternd's defaults are stricter than coturn's (no peers on private or loopback\n\
         # addresses unless allow_peer lists them, no SOFTWARE, rate limits on\n\
         # unauthenticated requests) and it has no DTLS, telnet CLI or user database:\n\
         # see MIGRATING.md. config/ternd.toml documents every setting."
    );
    block(&mut out, "Not translated", &t.skipped);
    block(&mut out, "Translated, but read this", &t.notes);
    block(
        &mut out,
        "Nothing to set, ternd does this already",
        &t.implied,
    );
    for s in SECTIONS {
        let items: Vec<&Item> = t.items.iter().filter(|i| section(i.key).0 == s).collect();
        let users = s == "auth" && !t.users.is_empty();
        if items.is_empty() && !users {
            continue;
        }
        out.push('\n');
        if !s.is_empty() && !items.is_empty() {
            let _ = writeln!(out, "[{s}]");
        }
        for (n, i) in items.iter().enumerate() {
            if n > 0 {
                out.push('\n');
            }
            item(&mut out, section(i.key).1, i);
        }
        if users {
            let _ = writeln!(
                out,
                "\n# Static users (coturn's user=). Security: keep this file readable by ternd\n\
                 # only; a `key` is MD5(name:realm:password) and holds for this realm only."
            );
            for u in &t.users {
                let _ = writeln!(
                    out,
                    "\n[[auth.users]]\n# coturn: user (line {})\nname = {}\n{} = {}",
                    u.line,
                    Value::String(u.name.clone()),
                    u.field,
                    Value::String(u.value.clone())
                );
            }
        }
    }
    out
}

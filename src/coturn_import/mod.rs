//! `ternd import-coturn FILE`: a coturn `turnserver.conf` translated into a ternd.toml.
//!
//! The file is read as coturn reads it ([`parse`]): one option per line, `name=value`,
//! `name value` or a bare `name` (a flag), `#` comment lines, options that may repeat.
//! [`translate`] turns every option ternd has an equivalent for into settings; the peer
//! lists go through `translate::peers`, since coturn's allowed-peer-ip beats its denied-peer-ip
//! and ternd's deny_peer beats allow_peer. Each value is checked with ternd's own parser
//! before it is written, and the result with ternd's whole-configuration checks;
//! [`render`] writes the TOML with comments. What cannot be translated is listed with
//! its line number and the reason, on stderr and at the top of the output.

pub mod parse;
mod render;
mod translate;
mod unsupported;

use std::io::Read as _;
use std::path::Path;

/// The largest file read: a turnserver.conf is a few kilobytes (coturn's annotated
/// example is about 30).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Most lines reported one by one; beyond it, one line says how many more there were.
pub const MAX_REPORTED: usize = 200;

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The ternd.toml text.
    pub toml: String,
    /// Options (or lines) not translated, in line order.
    pub skipped: Vec<Finding>,
    /// Options translated with a caveat the operator should read.
    pub notes: Vec<Finding>,
}

/// One line's finding: what was not translated, or a caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line of the coturn file (0 for the file as a whole).
    pub line: usize,
    /// The coturn option (as written, shortened and escaped if it is garbage).
    pub option: String,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.option, self.why)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.option, self.why)
        }
    }
}

/// Reads `path` (at most [`MAX_FILE_BYTES`]) and translates it. Relative certificate
/// and key paths are taken relative to the file's directory, as coturn looks them up.
pub fn run(path: &Path) -> Result<Import, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "`{shown}` is larger than {MAX_FILE_BYTES} bytes: not a turnserver.conf"
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    Ok(import(&text, &shown.to_string(), dir))
}

/// Translates the text of a turnserver.conf called `name` (for the output's header);
/// `dir` is the directory relative file names are resolved against.
pub fn import(text: &str, name: &str, dir: Option<&Path>) -> Import {
    let lines = parse::lines(text);
    let mut t = translate::translate(&lines, dir);
    let toml = render::render(&t, name);
    if let Err(e) = crate::config::Config::from_toml_str(&toml, "the translation") {
        t.notes.push(Finding {
            line: 0,
            option: "the translation".to_owned(),
            why: format!("does not pass ternd's checks, edit it by hand: {e}"),
        });
        return Import {
            toml: render::render(&t, name),
            skipped: t.skipped,
            notes: t.notes,
        };
    }
    Import {
        toml,
        skipped: t.skipped,
        notes: t.notes,
    }
}

/// What coturn option `name` becomes in ternd when it has no ternd setting: why it is
/// not translated, or what ternd does instead. `None` for other names (and for the
/// options [`crate::config::hints::coturn`] names a setting for).
pub fn why_not(name: &str) -> Option<String> {
    parse::arg(name)?;
    if let Some(why) = unsupported::implied(name) {
        return Some(format!("nothing to set: {why}"));
    }
    unsupported::reason(name).map(|why| format!("ternd has no equivalent: {why}"))
}

/// The findings as report lines, at most [`MAX_REPORTED`] and then how many more.
pub fn report(findings: &[Finding]) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .take(MAX_REPORTED)
        .map(ToString::to_string)
        .collect();
    if findings.len() > MAX_REPORTED {
        out.push(format!("... and {} more", findings.len() - MAX_REPORTED));
    }
    out
}

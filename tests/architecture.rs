//! The workspace's walls, checked: which crates the protocol core may depend on, no import
//! cycle between the modules of any crate, and no source file over the size at which it is
//! usually two concerns. ARCHITECTURE.md describes the layout these checks hold.
//!
//! Import cycles: for every module, the graph of its child modules (an edge A → B when a
//! file under A names `crate::…::B` or `super::B`) must be acyclic. Items of a parent module
//! used from its children are fine (that is what a parent is for); siblings using each other
//! both ways are not. Unit-test modules (`tests`, and everything under one) are left out:
//! nothing imports them, and a test may reach across the walls it checks (a config test
//! verifying a key file with the HTTP endpoint's verifier). Run alone:
//! `cargo test --test architecture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates whose sources are checked, by source root.
const SOURCE_ROOTS: [&str; 5] = [
    "src",
    "crates/ternd-proto/src",
    "crates/ternd-io/src",
    "crates/ternd-bench/src",
    "crates/ternd-client/src",
];

/// Lines above which a file is usually two concerns (DESIGN.md: ~600–800).
const MAX_LINES: usize = 800;

/// Files allowed over [`MAX_LINES`], each with the reason.
const LONG_FILES: &[(&str, &str)] = &[];

/// Packages the protocol core must never depend on, directly or not: it does no I/O, reads
/// no clock, draws no randomness and knows no CLI, HTTP, TLS or metrics.
const PROTO_FORBIDDEN: [&str; 8] = [
    "tokio",
    "hyper",
    "rustls",
    "clap",
    "prometheus",
    "socket2",
    "libc",
    "getrandom",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its module path (`a/b.rs` and `a/b/mod.rs` → [a, b]).
fn modules(dir: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name.to_owned());
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                if !matches!(stem, "mod" | "lib" | "main") {
                    p.push(stem.to_owned());
                }
                out.insert(p, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &[], &mut out);
    out
}

/// The source without `//` comments (doc comments name paths in prose and links) and
/// without an inline unit-test module at its end (`#[cfg(test)] mod tests {`).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module paths the source `src` of module `me` names through `crate::`, `super::` and `self::`,
/// including `use x::{a, b::c}` groups, resolved to the longest module that exists.
fn references(
    me: &[String],
    src: &str,
    mods: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeSet<Vec<String>> {
    let resolve = |path: Vec<String>, out: &mut BTreeSet<Vec<String>>| {
        // `super::super::x`: each further `super` climbs one more level.
        let mut full: Vec<String> = Vec::new();
        for seg in path {
            if seg == "super" {
                full.pop();
            } else {
                full.push(seg);
            }
        }
        for k in (1..=full.len()).rev() {
            if mods.contains_key(&full[..k]) {
                out.insert(full[..k].to_vec());
                return;
            }
        }
    };
    // The module `super` and `self` name from this file.
    let own: Vec<String> = me.to_vec();
    let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
    let mut out = BTreeSet::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at_word = i == 0 || !is_ident_char(chars[i - 1]);
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        let (base, skip) = if at_word && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if at_word && rest.starts_with("super::") {
            (parent.clone(), 7)
        } else if at_word && rest.starts_with("self::") {
            (own.clone(), 6)
        } else {
            i += 1;
            continue;
        };
        i += skip;
        // The path: identifiers separated by `::`, maybe ending in a `{…}` group.
        let mut segs = Vec::new();
        loop {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            if i > start {
                segs.push(chars[start..i].iter().collect::<String>());
            }
            if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
                i += 2;
                if chars.get(i) == Some(&'{') {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .map_or(chars.len(), |p| i + p);
                    let group: String = chars[i + 1..end].iter().collect();
                    for item in group.split(',') {
                        let mut full = base.clone();
                        full.extend(segs.iter().cloned());
                        full.extend(
                            item.split("::")
                                .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
                                .filter(|s| !s.is_empty() && s.chars().all(is_ident_char)),
                        );
                        resolve(full, &mut out);
                    }
                    i = end;
                    segs.clear();
                    break;
                }
                continue;
            }
            break;
        }
        if !segs.is_empty() {
            let mut full = base;
            full.extend(segs);
            resolve(full, &mut out);
        }
    }
    out
}

/// Sibling-module cycles of the crate at `src_root`: (parent, the modules of one cycle).
fn sibling_cycles(src_root: &Path) -> Vec<(String, Vec<String>)> {
    let mods = modules(src_root);
    let edges: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = mods
        .iter()
        .filter(|(m, _)| !m.iter().any(|seg| seg == "tests"))
        .map(|(m, path)| (m, references(m, &code(path), &mods)))
        .collect();
    let parents: BTreeSet<Vec<String>> = mods
        .keys()
        .filter(|m| !m.is_empty())
        .map(|m| m[..m.len() - 1].to_vec())
        .collect();
    let mut cycles = Vec::new();
    for parent in parents {
        let depth = parent.len() + 1;
        let kids: Vec<Vec<String>> = mods
            .keys()
            .filter(|m| m.len() == depth && m.starts_with(&parent))
            .cloned()
            .collect();
        let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> =
            kids.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
        for (m, targets) in &edges {
            if m.len() < depth || !m.starts_with(&parent) {
                continue;
            }
            let from = m[..depth].to_vec();
            for t in targets {
                if t.len() >= depth && t.starts_with(&parent) {
                    let to = t[..depth].to_vec();
                    if to != from && graph.contains_key(&to) {
                        graph.get_mut(&from).expect("a kid").insert(to);
                    }
                }
            }
        }
        // A module is on a cycle when it reaches itself; group by the set it shares.
        let reach = |start: &Vec<String>| {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<Vec<String>> = graph[start].iter().cloned().collect();
            while let Some(n) = stack.pop() {
                if seen.insert(n.clone()) {
                    stack.extend(graph[&n].iter().cloned());
                }
            }
            seen
        };
        let mut reported = BTreeSet::new();
        for k in &kids {
            let r = reach(k);
            if r.contains(k) && !reported.contains(k) {
                let cycle: Vec<String> = kids
                    .iter()
                    .filter(|o| r.contains(*o) && reach(o).contains(k))
                    .map(|o| o.join("::"))
                    .collect();
                for o in &kids {
                    if cycle.contains(&o.join("::")) {
                        reported.insert(o.clone());
                    }
                }
                cycles.push((
                    if parent.is_empty() {
                        "crate".into()
                    } else {
                        parent.join("::")
                    },
                    cycle,
                ));
            }
        }
    }
    cycles
}

#[test]
fn no_import_cycle_between_sibling_modules() {
    let mut found = Vec::new();
    for r in SOURCE_ROOTS {
        let dir = root().join(r);
        if !dir.is_dir() {
            continue;
        }
        for (parent, cycle) in sibling_cycles(&dir) {
            found.push(format!("{r}: in {parent}: {}", cycle.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // The checker itself: two siblings naming each other are a cycle; a child naming its
    // parent's items is not.
    let dir = std::env::temp_dir().join(format!("ternd-arch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a; mod b; mod c; pub struct P;").unwrap();
    std::fs::write(
        dir.join("a/mod.rs"),
        "use crate::b::X; use super::P; mod inner;",
    )
    .unwrap();
    std::fs::write(dir.join("a/inner.rs"), "use super::super::c::{Y, z::W};").unwrap();
    std::fs::write(dir.join("b.rs"), "pub struct X; fn f() { crate::a::g() }").unwrap();
    std::fs::write(dir.join("c.rs"), "use crate::P;").unwrap();
    let cycles = sibling_cycles(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        cycles,
        vec![("crate".to_owned(), vec!["a".to_owned(), "b".to_owned()])]
    );
}

#[test]
fn no_source_file_is_two_concerns() {
    let mut long = Vec::new();
    for r in SOURCE_ROOTS {
        for path in modules(&root().join(r)).into_values() {
            let rel = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let lines = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
            if lines > MAX_LINES && !LONG_FILES.iter().any(|(f, _)| *f == rel) {
                long.push(format!("{rel}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them, or add them to LONG_FILES with the reason):\n{}",
        long.join("\n")
    );
}

/// `cargo tree` of one package's normal (not dev, not build) dependencies, names only.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    dependencies_with(package, &[])
}

/// The same, with more `cargo tree` arguments (features).
fn dependencies_with(package: &str, extra: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .args(extra)
        .args([
            "--manifest-path",
            root().join("Cargo.toml").to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_protocol_core_does_no_io() {
    let deps = normal_dependencies("ternd-proto");
    assert!(
        deps.contains("ternd-proto") && deps.contains("hmac"),
        "{deps:?}"
    );
    let bad: Vec<&str> = PROTO_FORBIDDEN
        .into_iter()
        .filter(|d| deps.contains(*d))
        .collect();
    assert!(bad.is_empty(), "ternd-proto depends on {bad:?}");
    assert!(
        !deps.contains("ternd") && !deps.contains("ternd-io"),
        "{deps:?}"
    );
}

#[test]
fn the_libraries_do_not_depend_on_the_server() {
    for package in ["ternd-proto", "ternd-io", "ternd-client", "ternd-bench"] {
        let deps = normal_dependencies(package);
        assert!(
            !deps.contains("ternd"),
            "{package} depends on the ternd server: {deps:?}"
        );
    }
    let io = normal_dependencies("ternd-io");
    assert!(!io.contains("ternd-proto"), "ternd-io knows TURN: {io:?}");
    // The client library without its tokio adapter (the `tokio` feature, on by default)
    // is as portable as the core it builds on.
    let client = dependencies_with("ternd-client", &["--no-default-features"]);
    let bad: Vec<&str> = PROTO_FORBIDDEN
        .into_iter()
        .filter(|d| client.contains(*d))
        .collect();
    assert!(bad.is_empty(), "ternd-client depends on {bad:?}");
}

#[test]
fn the_shipped_build_has_no_test_helpers() {
    // `cargo build` of the server (no dev-dependencies): the `testing` feature of no
    // workspace package is on, so no fake relay table or fuzz entry point is compiled in.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "ternd",
            "-e",
            "normal,features",
            "--prefix",
            "none",
        ])
        .args([
            "--manifest-path",
            root().join("Cargo.toml").to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("ternd-proto feature"), "{tree}");
    let on: Vec<&str> = tree
        .lines()
        .filter(|l| l.contains("feature \"testing\""))
        .collect();
    assert!(on.is_empty(), "test helpers in the shipped build: {on:?}");
}

//! Replays the committed fuzz inputs through the fuzz entry points, so every `cargo test`
//! checks that none of them panics: the seed corpora under `fuzz/corpus/<target>/` and the
//! minimised crash inputs under `fuzz/regressions/<target>/` (see `fuzz/README.md`).

use std::path::{Path, PathBuf};

/// A fuzz entry point.
type EntryPoint = fn(&[u8]);

/// The cargo-fuzz targets and the entry point each one calls.
const TARGETS: [(&str, EntryPoint); 11] = [
    ("stun_message", ternd::fuzzing::message),
    ("channel_data", ternd::fuzzing::channel_data),
    ("stream_framing", ternd::fuzzing::stream),
    ("proxy_header", ternd::fuzzing::proxy_header),
    ("rest_username", ternd::fuzzing::rest_username),
    ("access_token", ternd::fuzzing::access_token),
    ("config_toml", ternd::fuzzing::config_toml),
    ("turn_core", ternd::fuzzing::turn_core),
    ("ice_url", ternd_client::fuzzing::ice_url),
    ("ice_servers", ternd_client::fuzzing::ice_servers),
    ("client_input", ternd_client::fuzzing::client_input),
];

/// The regular files of `dir` other than dotfiles (`.gitkeep`) and READMEs, sorted; none
/// when the directory does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    files
}

/// Runs `f` on every input in `dir`, naming the file if it panics; returns the count.
fn replay(dir: &Path, f: EntryPoint) -> usize {
    let files = inputs(dir);
    for path in &files {
        let data = std::fs::read(path).expect("read fuzz input");
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(result.is_ok(), "fuzz input {} panics", path.display());
    }
    files.len()
}

#[test]
fn fuzz_corpora_and_regressions_replay_without_panicking() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for (target, f) in TARGETS {
        let corpus = fuzz.join("corpus").join(target);
        let seeds = replay(&corpus, f);
        assert!(seeds > 0, "no seed inputs in {}", corpus.display());
        let regressions_dir = fuzz.join("regressions").join(target);
        assert!(
            regressions_dir.is_dir(),
            "missing {}",
            regressions_dir.display()
        );
        let regressions = replay(&regressions_dir, f);
        println!("{target}: replayed {seeds} corpus inputs and {regressions} regression inputs");
        total += seeds + regressions;
    }
    println!("replayed {total} fuzz inputs in all");
}

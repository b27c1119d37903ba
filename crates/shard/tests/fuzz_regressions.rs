//! Replays every input kept under `fuzz/regressions/known_hosts/` (crashes the fuzzer found,
//! minimized, plus the seed inputs) through the same checks the fuzz target runs, so
//! `cargo test` guards each fix without libFuzzer. See docs/fuzzing.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "../../../fuzz/checks/known_hosts.rs"]
mod known_hosts;

/// A kept timeout must now run well inside the fuzzer's `-timeout`, even in a debug build.
const SLOW: Duration = Duration::from_secs(5);

#[test]
fn known_hosts_regressions() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/known_hosts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    files.retain(|p| p.is_file());
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    let scratch = tempfile::tempdir().expect("temp dir");
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| known_hosts::check(&data, scratch.path()));
        assert!(
            outcome.is_ok(),
            "{} fails its check (see the panic above)",
            file.display()
        );
        let took = started.elapsed();
        assert!(took < SLOW, "{} took {took:?}", file.display());
    }
}

//! The fuzzers' kept inputs (`fuzz/regressions/<target>/`: crashes and timeouts they found,
//! minimized, and the seed inputs) replayed through the same checks the fuzz targets run, so
//! that `cargo test` guards each fix without libFuzzer (docs/fuzzing.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A kept timeout must now run well inside the fuzzers' `-timeout`, even in a debug build.
pub const SLOW: Duration = Duration::from_secs(5);

/// The directory of `target`'s kept inputs.
pub fn regressions(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target)
}

/// Runs `check` on every file of `fuzz/regressions/<target>/`, in name order; fails naming the
/// file whose check panics or takes longer than [`SLOW`], and fails if there is no file.
#[track_caller]
pub fn replay(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = regressions(target);
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
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails its check (see the panic above)",
            file.display()
        );
        let took = started.elapsed();
        assert!(took < SLOW, "{} took {took:?}", file.display());
    }
}

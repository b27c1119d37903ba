//! Replays every input kept under `fuzz/regressions/{host_spec,hosts_file,config_toml,ssh_config}/` (crashes
//! and timeouts the fuzzers found, minimized, plus the seed inputs) through the same checks the
//! fuzz targets run, so `cargo test` guards each fix without libFuzzer. See docs/fuzzing.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "../../../fuzz/checks/host_spec.rs"]
mod host_spec;

#[path = "../../../fuzz/checks/hosts_file.rs"]
mod hosts_file;

#[path = "../../../fuzz/checks/config_toml.rs"]
mod config_toml;

#[path = "../../../fuzz/checks/ssh_config.rs"]
mod ssh_config;

/// A kept timeout must now run well inside the fuzzers' `-timeout`, even in a debug build.
const SLOW: Duration = Duration::from_secs(5);

/// Runs `check` on every file of `fuzz/regressions/<target>/`; fails if there is none.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
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

#[test]
fn host_spec_regressions() {
    replay("host_spec", host_spec::check);
}

#[test]
fn hosts_file_regressions() {
    replay("hosts_file", hosts_file::check);
}

#[test]
fn config_toml_regressions() {
    replay("config_toml", config_toml::check);
}

#[test]
fn ssh_config_regressions() {
    replay("ssh_config", ssh_config::check);
}

//! Fuzz target `known_hosts`; the checks live in `fuzz/checks/known_hosts.rs` (see
//! docs/fuzzing.md).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../checks/known_hosts.rs"]
mod checks;

/// The directory for the accept-new checks' known_hosts files (one per process, each removed
/// after every input).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("fleetsh-fuzz-known-hosts");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data, scratch()));

//! Integration tests of `fleetsh-shard`: every known_hosts input the fuzzer kept
//! (`fuzz/regressions/known_hosts/`: crashes it found, minimized, plus the seed inputs)
//! replayed through the fuzz target's checks, so `cargo test` guards each fix without
//! libFuzzer (docs/fuzzing.md).

use fleetsh_testkit::fuzz::replay;

#[path = "../../../../fuzz/checks/known_hosts.rs"]
mod known_hosts;

#[test]
fn known_hosts_regressions() {
    let scratch = tempfile::tempdir().expect("temp dir");
    replay("known_hosts", |data| {
        known_hosts::check(data, scratch.path())
    });
}

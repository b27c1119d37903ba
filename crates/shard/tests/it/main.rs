//! Integration tests of `fleetsh-shard`: every known_hosts input the fuzzer kept
//! (`fuzz/regressions/known_hosts/`: crashes it found, minimized, plus the seed inputs)
//! replayed through the fuzz target's checks, so `cargo test` guards each fix without
//! libFuzzer (docs/fuzzing.md).
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

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

//! Integration tests of `fleetsh-core`:
//! - `fuzz_regressions`: every input the fuzzers kept (`fuzz/regressions/`), replayed through
//!   the fuzz targets' checks (docs/fuzzing.md);
//! - `properties`: property tests of range expansion and folding.
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

mod fuzz_regressions;
mod properties;

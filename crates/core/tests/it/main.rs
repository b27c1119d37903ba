//! Integration tests of `fleetsh-core`:
//! - `fuzz_regressions`: every input the fuzzers kept (`fuzz/regressions/`), replayed through
//!   the fuzz targets' checks (docs/fuzzing.md);
//! - `properties`: property tests of range expansion and folding.

mod fuzz_regressions;
mod properties;

//! Fuzz target `host_spec`; the checks live in `fuzz/checks/host_spec.rs` (see docs/fuzzing.md).
#![no_main]

#[path = "../checks/host_spec.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

//! Fuzz target `hosts_file`; the checks live in `fuzz/checks/hosts_file.rs` (see docs/fuzzing.md).
#![no_main]

#[path = "../checks/hosts_file.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

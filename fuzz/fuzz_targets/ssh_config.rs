//! Fuzz target `ssh_config`; the checks live in `fuzz/checks/ssh_config.rs` (see docs/fuzzing.md).
#![no_main]

#[path = "../checks/ssh_config.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

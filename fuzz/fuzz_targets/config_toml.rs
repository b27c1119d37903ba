//! Fuzz target `config_toml`; the checks live in `fuzz/checks/config_toml.rs` (see docs/fuzzing.md).
#![no_main]

#[path = "../checks/config_toml.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));

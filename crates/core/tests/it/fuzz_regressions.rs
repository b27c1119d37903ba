//! Replays every input kept under `fuzz/regressions/{host_spec,hosts_file,config_toml,ssh_config}/`
//! (crashes and timeouts the fuzzers found, minimized, plus the seed inputs) through the same
//! checks the fuzz targets run, so `cargo test` guards each fix without libFuzzer.

use fleetsh_testkit::fuzz::replay;

#[path = "../../../../fuzz/checks/host_spec.rs"]
mod host_spec;

#[path = "../../../../fuzz/checks/hosts_file.rs"]
mod hosts_file;

#[path = "../../../../fuzz/checks/config_toml.rs"]
mod config_toml;

#[path = "../../../../fuzz/checks/ssh_config.rs"]
mod ssh_config;

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

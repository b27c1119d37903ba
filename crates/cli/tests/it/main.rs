//! End-to-end tests of the `fleetsh` binary against the embedded simulated fleet, a separate
//! `fleetsh sim` process (`SimProcess`) or OpenSSH's `sshd`; the helpers below run the binary
//! and read its output. One module per area.
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn fleetsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .output()
        .expect("run fleetsh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A separate `fleetsh sim`, so that two runs reach the same hosts.
#[derive(Debug)]
pub struct SimProcess {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
}

impl SimProcess {
    pub fn start(count: usize, base: &str) -> Self {
        Self::start_with(count, base, &[])
    }

    pub fn start_with(count: usize, base: &str, env: &[(&str, &str)]) -> Self {
        Self::start_full(count, base, env, &[])
    }

    /// With environment variables and extra `fleetsh sim` arguments (e.g. `--fault`).
    pub fn start_full(count: usize, base: &str, env: &[(&str, &str)], extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
            .args([
                "sim",
                "--count",
                &count.to_string(),
                "--port",
                "0",
                "--addr-base",
                base,
            ])
            .args(extra)
            .arg("--state-dir")
            .arg(dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("ready {count}"));
        SimProcess { child, dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    pub fn args<'a>(&'a self, owned: &'a mut Vec<String>) -> Vec<&'a str> {
        *owned = vec![
            "-i".into(),
            self.path("id_ed25519"),
            "--known-hosts".into(),
            self.path("known_hosts"),
        ];
        owned.iter().map(String::as_str).collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Only the process this test started, by PID.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

mod auth;
mod bench;
mod control;
mod far_network;
mod journal;
mod kubernetes;
mod merge;
mod output;
mod reliability;
mod run;
mod security;
mod shard;
mod signals;
mod sim_command;
mod slurm;
mod ssh_config;
mod transfer;
mod usage_errors;

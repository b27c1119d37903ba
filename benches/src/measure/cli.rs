//! A `fleetsh` binary as the client (`--engine LABEL=PATH`): `PATH run -o json` on the spec's
//! hosts in a child process, one host sample per JSON line.

use std::time::Duration;

use anyhow::{Context, Result};
use fleetsh::{HostTarget, Timings};

use super::child::{Watch, run_child_client};
use super::interval::Measured;
use super::spec::{Kex, Spec};
use crate::procfs;
use crate::sample::{HostSample, write_hosts_file};

/// The CLI as the client: `EXE run` on the spec's hosts with `-o json`, in a child process. Its
/// CPU is `cutime + cstime` of this process (the child is the only one it waits for), its peak
/// RSS the last `VmHWM` polled every 10 ms from `/proc/<pid>/status` (the peak of the last
/// 10 ms before it exits may be missed), its timings those of its JSON lines. The interval runs
/// from just before the spawn to the child's exit, so it includes the CLI's start-up (parsing
/// the key and the fleet's known_hosts: tens of ms) and the encoding of its output.
pub fn run_cli(
    spec: &Spec,
    exe: &std::path::Path,
    shards: usize,
    targets: &[HostTarget],
) -> Result<Measured> {
    use std::process::Command;

    let dir = tempfile::tempdir().context("temporary directory")?;
    let hosts = dir.path().join("hosts");
    write_hosts_file(&hosts, targets, true)?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("-H")
        .arg(&hosts)
        .args([
            "-l",
            "bench",
            "--no-agent",
            "--no-ssh-config",
            "--no-progress",
        ])
        .args(["--host-key-check", "strict", "-o", "json"])
        .arg("-i")
        .arg(&spec.identity)
        .arg("--known-hosts")
        .arg(&spec.known_hosts)
        .arg("-f")
        .arg(spec.fanout.to_string())
        .arg("-t")
        .arg(spec.connect_timeout_s.to_string())
        .arg("-u")
        .arg(spec.command_timeout_s.to_string())
        .arg("--kex")
        .arg(match spec.kex {
            Kex::Default => "default",
            Kex::Curve25519 => "curve25519",
        })
        // An empty config directory: no user config file, no groups.
        .env("XDG_CONFIG_HOME", dir.path());
    if shards > 0 {
        cmd.arg("--shards").arg(shards.to_string());
    }
    if let Some(rate) = spec.rate {
        cmd.arg("--rate").arg(rate.to_string());
    }
    cmd.arg("--").args(spec.command.split_ascii_whitespace());

    let threads = if shards > 0 { shards } else { procfs::nproc() };
    let mut samples = Vec::with_capacity(spec.hosts);
    let (mut m, status, _) = run_child_client(spec, cmd, threads, Watch::default(), |line| {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        samples.push(cli_sample(&v));
        true
    })?;
    anyhow::ensure!(
        samples.len() == spec.hosts,
        "{} results for {} hosts ({status})",
        samples.len(),
        spec.hosts
    );
    m.samples = samples;
    Ok(m)
}

/// One host's JSON line of `fleetsh run -o json`.
fn cli_sample(v: &serde_json::Value) -> HostSample {
    let t = &v["timings_ms"];
    let d = |k: &str| t[k].as_f64().map(|ms| Duration::from_secs_f64(ms / 1e3));
    let error = match (v["error"]["kind"].as_str(), v["exit_code"].as_u64()) {
        (Some(kind), _) => Some(kind.to_string()),
        (None, Some(0)) => None,
        (None, code) => Some(format!("exit {code:?}")),
    };
    let text = |k: &str| v[k].as_str().map_or(0, str::len);
    HostSample {
        error,
        output_bytes: text("stdout") + text("stderr"),
        timings: Timings {
            connect: d("connect"),
            handshake_auth: d("handshake_auth"),
            channel_open: d("channel_open"),
            exec: d("exec"),
            read: d("read"),
            close: d("close"),
            first_byte: d("first_byte"),
            total: d("total").unwrap_or_default(),
        },
    }
}

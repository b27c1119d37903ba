//! A `fleetsh` binary as the client (`--engine LABEL=PATH`): `PATH run -o json` on the spec's
//! hosts in a child process, one host sample per JSON line.

use anyhow::{Context, Result};
use fleetsh::HostTarget;

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
    // A new journal each run (an existing one would be resumed: nothing would run).
    let journal = match &spec.journal {
        Some(j) => Some(
            tempfile::Builder::new()
                .prefix("journal.")
                .tempfile_in(&j.dir)
                .with_context(|| format!("a journal file in {}", j.dir.display()))?,
        ),
        None => None,
    };
    if let (Some(file), Some(j)) = (&journal, &spec.journal) {
        cmd.arg("--journal").arg(file.path());
        if j.sync {
            cmd.arg("--journal-sync");
        }
    }
    cmd.arg("--").args(spec.command.split_ascii_whitespace());

    let threads = if shards > 0 { shards } else { procfs::nproc() };
    let mut samples = Vec::with_capacity(spec.hosts);
    let (mut m, status, _) = run_child_client(spec, cmd, threads, Watch::default(), |line| {
        let Ok(record) = fleetsh::record::parse_line(1, line) else {
            return false;
        };
        samples.push(cli_sample(&record));
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
fn cli_sample(r: &fleetsh::record::Record) -> HostSample {
    let error = match (&r.error, r.exit_code) {
        (Some(e), _) => Some(e.kind.as_str().to_string()),
        (None, Some(0)) => None,
        (None, code) => Some(format!("exit {code:?}")),
    };
    HostSample {
        error,
        output_bytes: r.stdout.len() + r.stderr.len(),
        timings: r.timings_ms.to_timings(),
    }
}

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
        .args(["-l", spec.user()])
        .args(["--no-agent", "--no-ssh-config", "--no-progress"])
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
                .tempdir_in(&j.dir)
                .with_context(|| format!("a journal directory in {}", j.dir.display()))?,
        ),
        None => None,
    };
    let mut watch = Watch::default();
    if let (Some(jdir), Some(j)) = (&journal, &spec.journal) {
        if j.sync {
            cmd.arg("--journal-sync");
        }
        cmd.arg("--").args(spec.command.split_ascii_whitespace());
        if j.controllers > 1 {
            cmd = split(&cmd, exe, jdir.path(), j.controllers);
            // The controllers' memory together (an upper bound: shared pages counted in each).
            watch.tree_rss = true;
        } else {
            cmd.arg("--journal").arg(jdir.path().join("journal"));
        }
    } else {
        cmd.arg("--").args(spec.command.split_ascii_whitespace());
    }

    let threads = if shards > 0 { shards } else { procfs::nproc() };
    let mut samples = Vec::with_capacity(spec.hosts);
    let (mut m, status, _) = run_child_client(spec, cmd, threads, watch, |line| {
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

/// Runs `controllers` controllers at once, each `run` (with `run`'s arguments) on its part of the
/// hosts with its own journal in `dir`, their own output discarded; then `fleetsh merge -o json`
/// of the journals, whose lines are the results. The controllers' CPU is printed on stderr
/// before the merge starts (the shell's `times`: its own, then its children's).
const SPLIT: &str = r#"dir=$1 exe=$2 n=$3; shift 3
i=0
while [ "$i" -lt "$n" ]; do
    "$exe" run --shard "$i/$n" --journal "$dir/journal.$i" "$@" >/dev/null &
    i=$((i + 1))
done
wait
echo "split: CPU before the merge (user, system: the shell's, then its controllers'):" >&2
times >&2
exec "$exe" merge -o json "$dir"/journal.*
"#;

/// `run`'s command `cmd` as `controllers` controllers and their merge ([`SPLIT`]).
fn split(
    cmd: &std::process::Command,
    exe: &std::path::Path,
    dir: &std::path::Path,
    controllers: usize,
) -> std::process::Command {
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg(SPLIT)
        .arg("sh")
        .arg(dir)
        .arg(exe)
        .arg(controllers.to_string())
        .args(cmd.get_args().skip(1));
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    sh
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

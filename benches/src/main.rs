//! `fleetsh-bench`: the fleetsh benchmark harness.
//!
//! ```text
//! cargo build --release -p fleetsh-cli -p fleetsh-bench
//! target/release/fleetsh-bench echo --hosts 1000,10000
//! target/release/fleetsh-bench all --json
//! ```
//!
//! Every scenario drives a simulated fleet that runs in separate processes (`fleetsh sim`, the
//! release binary next to this one, stopped by PID with SIGTERM), and every measurement runs in a
//! fresh child process of this binary (`fleetsh-bench measure SPEC`), so that its peak RSS
//! (`VmHWM`, process-lifetime) and CPU (`/proc/self/stat`) belong to that measurement alone. The
//! simulator's CPU is read from `/proc/<sim pid>/stat` over the same interval.
//!
//! Scenarios: `echo` (`echo hello` on 1,000 and 10,000 hosts), `read26k` (`cat` of a 26,000-byte
//! file with concurrency stepped over 1..200, per-phase medians), `idle` (RSS per authenticated
//! session held open), `scaling` (shards = 1..CPUs against plain-russh baselines on one
//! multi-thread and one current-thread runtime), `kex` (ML-KEM hybrid vs curve25519), `sweep`
//! (fanout and rate stepped), `peers` (fleetsh beside parallel-ssh, asyncssh, pdsh, pssh and
//! clush, which must be installed: `benches/src/peers.rs`), `python` (fleetsh's Python package,
//! native and through its parallel-ssh compatibility layer, beside parallel-ssh and asyncssh from
//! the same script shape), `rtt` (round trips per host against
//! OpenSSH's sshd behind an emulated far network, beside OpenSSH's ssh and the peers), `transfer` (one 256 MiB file to and
//! from one host against OpenSSH's `scp`/`sftp` on a private loopback `sshd`, then a 1 MiB file
//! to 1,000 simulated hosts), `all` (every scenario but `peers` and `python`).
//! Each prints a plain-text table, and with `--json` one JSON object per scenario. `echo` and
//! `idle` take `--engine LABEL=PATH` (repeatable) to run `fleetsh` binaries as the client
//! (`PATH run -o json` in a child of the measuring process) side by side, e.g. two builds.
//! `docs/benchmarks.md` explains the method and records results.
// A binary has no API: `pub` in its modules marks what they share within it.
#![allow(unreachable_pub)]

mod bench;
mod cli;
mod fleet;
mod floor;
mod measure;
mod peers;
mod plain;
mod print;
mod procfs;
mod report;
mod sample;
mod scenario;
mod sshd;
mod sshd_fleet;
mod stats;
mod table;
mod transfer;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use bench::Bench;
use cli::{Cli, Scenario, parse_engines};
use measure::Spec;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.scenario {
        Scenario::Measure { spec } => measure_here(spec),
        Scenario::TransferOnce { spec } => transfer_once_here(spec),
        _ => Bench::new(&cli).and_then(|b| run(&b, &cli.scenario)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("fleetsh-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The child side: one measurement, one JSON line on stdout.
fn measure_here(spec: &str) -> Result<()> {
    let spec: Spec = serde_json::from_str(spec).context("bad measurement spec")?;
    let sample = measure::run(&spec)?;
    println!("{}", serde_json::to_string(&sample)?);
    Ok(())
}

/// The child side of a single-file transfer: one JSON line on stdout.
fn transfer_once_here(spec: &str) -> Result<()> {
    let spec: transfer::OnceSpec = serde_json::from_str(spec).context("bad transfer spec")?;
    let r = transfer::run_once(&spec)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Runs the scenario `which` names (`all`: every scenario but `peers` and `python`, with their
/// defaults).
fn run(bench: &Bench, which: &Scenario) -> Result<()> {
    match which {
        Scenario::Echo {
            hosts,
            fanout,
            shards,
            engine,
        } => scenario::echo::run(bench, hosts, *fanout, *shards, &parse_engines(engine)?),
        Scenario::Journal {
            hosts,
            fanout,
            cli,
            dir,
        } => scenario::journal::run(bench, hosts, *fanout, cli.as_deref(), dir.as_deref()),
        Scenario::Split {
            hosts,
            controllers,
            fanout,
            divide_fanout,
            cli,
            dir,
        } => scenario::split::run(
            bench,
            &scenario::split::Options {
                hosts: *hosts,
                controllers: *controllers,
                fanout: *fanout,
                divide_fanout: *divide_fanout,
            },
            cli.as_deref(),
            dir.as_deref(),
        ),
        Scenario::Read26k {
            concurrency,
            min_hosts,
            shards,
        } => scenario::read26k::run(bench, concurrency, *min_hosts, *shards),
        Scenario::Idle {
            hosts,
            sleep,
            engine,
        } => scenario::idle::run(bench, *hosts, *sleep, &parse_engines(engine)?),
        Scenario::Scaling {
            hosts,
            fanout,
            shards,
        } => scenario::scaling::run(bench, *hosts, *fanout, shards),
        Scenario::Kex { hosts, fanout } => scenario::kex::run(bench, *hosts, *fanout),
        Scenario::Peers {
            hosts,
            fanout,
            peers,
            python,
            sshd,
        } => scenario::peers::run(bench, *hosts, *fanout, peers, python, *sshd),
        Scenario::Python {
            hosts,
            fanout,
            python,
            fleetsh_python,
            no_compat,
        } => scenario::python::run(
            bench,
            &scenario::python::Options {
                hosts: hosts.clone(),
                fanout: *fanout,
                python: python.clone(),
                fleetsh_python: fleetsh_python.clone(),
                no_compat: *no_compat,
            },
        ),
        Scenario::KeptClient {
            host,
            user,
            identity,
            known_hosts,
            runs,
            command,
        } => scenario::rtt::kept::client(host, user, identity, known_hosts, command, *runs),
        Scenario::Rtt {
            delays,
            runs,
            fleet_hosts,
            fleet_fanout,
            fleet_runs,
            python,
            capture,
            engine,
        } => {
            let python = python
                .clone()
                .or_else(|| std::env::var_os("FLEETSH_BENCH_PYTHON").map(Into::into))
                .unwrap_or_else(|| "python3".into());
            if let Some(dir) = capture {
                std::fs::create_dir_all(dir)?;
            }
            scenario::rtt::run(
                bench,
                &scenario::rtt::Options {
                    delays: delays.clone(),
                    runs: *runs,
                    fleet_hosts: *fleet_hosts,
                    fleet_fanout: *fleet_fanout,
                    fleet_runs: *fleet_runs,
                    python,
                    capture: capture.clone(),
                    engines: parse_engines(engine)?,
                },
            )
        }
        Scenario::Floor { iters } => scenario::floor::run(bench, *iters),
        Scenario::Sweep {
            hosts,
            fanouts,
            rates,
        } => scenario::sweep::run(bench, *hosts, fanouts, rates),
        Scenario::Transfer {
            size_mib,
            rounds,
            cipher,
            no_openssh,
            sweep_chunks,
            sweep_windows,
            channel_windows,
            engine,
            direction,
            fleet_hosts,
            fleet_file_kib,
            no_single,
        } => {
            if !no_single {
                let opts = scenario::transfer::SingleOpts {
                    size: size_mib << 20,
                    rounds: *rounds,
                    cipher: cipher.clone(),
                    openssh: !no_openssh,
                    sweep_chunks,
                    sweep_windows,
                    channel_windows,
                    engines: engine,
                    direction,
                };
                scenario::transfer::single_file(bench, &opts)?;
            }
            if *fleet_hosts > 0 {
                scenario::transfer::fleet_upload(bench, *fleet_hosts, fleet_file_kib << 10)?;
            }
            Ok(())
        }
        Scenario::All => {
            scenario::echo::run(bench, &[1000, 10_000], fleetsh::DEFAULT_FANOUT, 0, &[])?;
            scenario::read26k::run(bench, &[1, 10, 50, 100, 200], 200, 0)?;
            scenario::idle::run(bench, 10_000, None, &[])?;
            scenario::scaling::run(bench, 10_000, fleetsh::DEFAULT_FANOUT, &[])?;
            scenario::kex::run(bench, 2000, fleetsh::DEFAULT_FANOUT)?;
            scenario::sweep::run(bench, 2000, &[10, 50, 100, 250, 500, 1000, 2000], &[])?;
            scenario::journal::run(bench, &[2000], fleetsh::DEFAULT_FANOUT, None, None)?;
            scenario::split::run(
                bench,
                &scenario::split::Options {
                    hosts: 20_000,
                    controllers: 4,
                    fanout: fleetsh::DEFAULT_FANOUT,
                    divide_fanout: false,
                },
                None,
                None,
            )?;
            scenario::transfer::single_file(
                bench,
                &scenario::transfer::SingleOpts {
                    size: 256 << 20,
                    rounds: 3,
                    cipher: None,
                    openssh: true,
                    sweep_chunks: &[],
                    sweep_windows: &[],
                    channel_windows: &[],
                    engines: &[],
                    direction: "both",
                },
            )?;
            scenario::transfer::fleet_upload(bench, 1000, 1 << 20)
        }
        Scenario::Measure { .. } | Scenario::TransferOnce { .. } => Ok(()),
    }
}

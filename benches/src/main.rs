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
//! clush, which must be installed: `benches/src/peers.rs`), `transfer` (one 256 MiB file to and
//! from one host against OpenSSH's `scp`/`sftp` on a private loopback `sshd`, then a 1 MiB file
//! to 1,000 simulated hosts), `all` (every scenario but `peers`).
//! Each prints a plain-text table, and with `--json` one JSON object per scenario. `echo` and
//! `idle` take `--engine LABEL=PATH` (repeatable) to run `fleetsh` binaries as the client
//! (`PATH run -o json` in a child of the measuring process) side by side, e.g. two builds.
//! `docs/benchmarks.md` explains the method and records results.

mod fleet;
mod floor;
mod measure;
mod peers;
mod plain;
mod procfs;
mod sample;
mod sshd;
mod table;
mod transfer;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use fleet::Fleet;
use measure::{Client, Kex, Sample, Spec};
use table::{Table, num};

/// Calls per round when the crypto floor is measured (`floor::measure`): about a second.
const FLOOR_ITERS: usize = 1000;
/// The same, for the floor measured before each sample of `echo` and `kex`: about 0.3 s.
const FLOOR_ITERS_PER_SAMPLE: usize = 300;
/// Pause between measurements so the sim finishes closing the previous run's connections.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Parser)]
#[command(
    name = "fleetsh-bench",
    about = "fleetsh benchmarks against a simulated fleet"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Also print one JSON object per scenario (after its table).
    #[arg(long, global = true)]
    json: bool,
    /// The `fleetsh` binary that serves the simulated fleet [default: `fleetsh` next to this
    /// binary, i.e. target/release/fleetsh].
    #[arg(long, global = true, value_name = "PATH")]
    fleetsh: Option<PathBuf>,
    /// Server threads of each sim process.
    #[arg(long, global = true, default_value_t = 1)]
    sim_threads: usize,
    /// Emulated network latency of the sim, in ms (`fleetsh sim --latency`): every client
    /// request is answered that much later.
    #[arg(long, global = true, value_name = "MS")]
    sim_latency: Option<u64>,
    /// Repetitions of each measurement (interleaved); the row with the median wall time is shown.
    #[arg(long, global = true, default_value_t = 1)]
    reps: usize,
    /// Key exchange of every engine run except in the `kex` scenario.
    #[arg(long, global = true, value_enum, default_value_t = KexArg::Default)]
    kex: KexArg,
    /// Connect timeout per host (TCP + handshake + auth), seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Limit on each measurement process, seconds (it is killed after that).
    #[arg(long, global = true, default_value_t = 900)]
    child_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KexArg {
    /// russh's default order (mlkem768x25519-sha256 first).
    Default,
    /// curve25519-sha256 first.
    Curve25519,
}

impl From<KexArg> for Kex {
    fn from(k: KexArg) -> Kex {
        match k {
            KexArg::Default => Kex::Default,
            KexArg::Curve25519 => Kex::Curve25519,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
enum Scenario {
    /// `echo hello` on N hosts (the engine's defaults: shards = CPUs).
    Echo {
        /// Host counts.
        #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000])]
        hosts: Vec<usize>,
        /// Hosts in flight.
        #[arg(long, default_value_t = fleetsh::DEFAULT_FANOUT)]
        fanout: usize,
        /// Shards (0: one per CPU).
        #[arg(long, default_value_t = 0)]
        shards: usize,
        /// Instead of the engine in the measuring process, run these `fleetsh` binaries
        /// (`PATH run -H ... -o json`, LABEL=PATH, repeatable) side by side, interleaved: e.g.
        /// two builds of the CLI.
        #[arg(long, value_name = "LABEL=PATH")]
        engine: Vec<String>,
    },
    /// `cat /srv/data/26k.txt` (the 26,000-byte read of parallel-ssh's published client
    /// benchmark) with concurrency stepped: median time per phase.
    #[command(alias = "seeds")]
    Read26k {
        /// Concurrency (fanout) steps.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 50, 100, 200])]
        concurrency: Vec<usize>,
        /// Hosts per step: max(this, 4 × concurrency).
        #[arg(long, default_value_t = 200)]
        min_hosts: usize,
        /// Shards (0: min(CPUs, concurrency), so that in-flight never exceeds the fanout).
        #[arg(long, default_value_t = 0)]
        shards: usize,
    },
    /// N authenticated sessions held open at once (`sleep S`, fanout N): RSS per session.
    Idle {
        /// Sessions.
        #[arg(long, default_value_t = 10_000)]
        hosts: usize,
        /// Seconds each command sleeps [default: max(20, hosts / 200)], long enough for every
        /// session to open before the first one ends.
        #[arg(long)]
        sleep: Option<u64>,
        /// Instead of the engine in the measuring process, run these `fleetsh` binaries
        /// (LABEL=PATH, repeatable), interleaved.
        #[arg(long, value_name = "LABEL=PATH")]
        engine: Vec<String>,
    },
    /// `echo hello` on N hosts: shards 1..CPUs against a multi-thread and a current-thread
    /// plain-russh baseline.
    Scaling {
        /// Hosts.
        #[arg(long, default_value_t = 10_000)]
        hosts: usize,
        /// Hosts in flight.
        #[arg(long, default_value_t = fleetsh::DEFAULT_FANOUT)]
        fanout: usize,
        /// Shard counts [default: 1 up to the CPU count].
        #[arg(long, value_delimiter = ',')]
        shards: Vec<usize>,
    },
    /// `echo hello` with russh's default key exchange (ML-KEM hybrid) and with curve25519.
    Kex {
        /// Hosts.
        #[arg(long, default_value_t = 2000)]
        hosts: usize,
        /// Hosts in flight.
        #[arg(long, default_value_t = fleetsh::DEFAULT_FANOUT)]
        fanout: usize,
    },
    /// `echo hello` with fleetsh and with the tools it replaces (parallel-ssh, asyncssh, pdsh,
    /// pssh, clush), side by side on the same simulated fleet: client CPU per host and its ratio
    /// to fleetsh's with the same key exchange. Each tool must be installed (`--python` for the
    /// Python ones); a missing one is an error naming how to install it.
    Peers {
        /// Hosts.
        #[arg(long, default_value_t = 1000)]
        hosts: usize,
        /// Hosts in flight, for every tool (pdsh -f, pssh -p, clush -f, parallel-ssh's pool
        /// size, asyncssh's semaphore, fleetsh -f).
        #[arg(long, default_value_t = 100)]
        fanout: usize,
        /// The tools (repeatable; default: all).
        #[arg(long = "peer", value_enum)]
        peers: Vec<peers::Peer>,
        /// The Python interpreter that has parallel-ssh and asyncssh.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
    },
    /// `echo hello` on N hosts with the fanout (and optionally the connection rate) stepped:
    /// hosts/s and latency against concurrency, for choosing a fanout.
    Sweep {
        /// Hosts per step.
        #[arg(long, default_value_t = 2000)]
        hosts: usize,
        /// Fanout steps.
        #[arg(long, value_delimiter = ',', default_values_t = [10, 50, 100, 250, 500, 1000, 2000])]
        fanouts: Vec<usize>,
        /// Connection-rate steps (new connections per second), each run at the largest fanout.
        #[arg(long, value_delimiter = ',')]
        rates: Vec<f64>,
    },
    /// File transfers: one large file to and from one host, fleetsh against OpenSSH's
    /// scp, scp -O and sftp on a private loopback sshd; then a small file to many simulated hosts.
    Transfer {
        /// Size of the single file, MiB.
        #[arg(long, default_value_t = 256)]
        size_mib: u64,
        /// Rounds of the single-file runs (every client once per round, interleaved).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Force this cipher on every client (e.g. aes256-gcm@openssh.com) [default: each
        /// client's own preference].
        #[arg(long)]
        cipher: Option<String>,
        /// Leave out OpenSSH's clients.
        #[arg(long)]
        no_openssh: bool,
        /// Sweep: chunk sizes (KiB) of the plain pipelined client (with --sweep-windows).
        #[arg(long, value_delimiter = ',')]
        sweep_chunks: Vec<u32>,
        /// Sweep: requests in flight of the plain pipelined client.
        #[arg(long, value_delimiter = ',')]
        sweep_windows: Vec<usize>,
        /// Extra fleetsh rows with russh's channel window (`client::Config::window_size`) set to
        /// these sizes (KiB).
        #[arg(long, value_delimiter = ',')]
        channel_windows: Vec<u32>,
        /// Extra fleetsh rows from other builds of this harness: LABEL=PATH (e.g. other
        /// CHUNK/WINDOW constants).
        #[arg(long)]
        engine: Vec<String>,
        /// Directions: up, down or both.
        #[arg(long, default_value = "both")]
        direction: String,
        /// Simulated hosts for the fleet upload (0: skip it).
        #[arg(long, default_value_t = 1000)]
        fleet_hosts: usize,
        /// Size of the fleet upload's file, KiB.
        #[arg(long, default_value_t = 1024)]
        fleet_file_kib: u64,
        /// Skip the single-file runs.
        #[arg(long)]
        no_single: bool,
    },
    /// The client's crypto floor per handshake (x25519, ML-KEM-768, Ed25519 check and
    /// signature, hashes), measured in this process: no simulator.
    Floor {
        /// Calls per round (median of 5 rounds).
        #[arg(long, default_value_t = FLOOR_ITERS)]
        iters: usize,
    },
    /// Every scenario with its defaults (sweep included; not peers: their tools must be installed).
    All,
    /// Internal: run one measurement described by SPEC (JSON) and print its sample (JSON).
    #[command(hide = true)]
    Measure {
        /// The spec.
        spec: String,
    },
    /// Internal: one single-file transfer described by SPEC (JSON); prints its result (JSON).
    #[command(hide = true)]
    TransferOnce {
        /// The spec.
        spec: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.scenario {
        Scenario::Measure { spec } => measure_here(spec),
        Scenario::TransferOnce { spec } => transfer_once_here(spec),
        _ => Bench::new(&cli).and_then(|b| b.run(&cli.scenario)),
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

/// The machine, as recorded with every scenario.
#[derive(Debug, Clone, Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    clk_tck: u64,
    nofile_hard_limit: Option<u64>,
}

/// One scenario's output.
#[derive(Debug, Serialize)]
struct ScenarioReport {
    scenario: &'static str,
    date: String,
    machine: Machine,
    load_before: [f64; 3],
    load_after: [f64; 3],
    sim_processes: usize,
    sim_threads: usize,
    sim_latency_ms: Option<u64>,
    reps: usize,
    rows: Vec<Sample>,
    /// Per row: the range over the repetitions.
    spread: Vec<Spread>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ratios: Vec<Ratio>,
    /// Per row: each repetition's ratio to the multi-thread baseline of the same repetition
    /// (scaling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paired: Vec<Paired>,
    /// Per row: every repetition's sample, in order.
    #[serde(skip)]
    per_rep: Vec<Vec<Sample>>,
}

/// How much a row varied over its repetitions.
#[derive(Debug, Serialize)]
struct Spread {
    label: String,
    hosts_per_s: [f64; 2],
    client_cpu_us_per_host: [f64; 2],
    /// Client CPU over the floor measured beside each sample, when it was.
    x_floor: Option<[f64; 2]>,
}

impl Spread {
    fn of(v: &[Sample]) -> Option<Spread> {
        let first = v.first()?;
        let range = |f: fn(&Sample) -> f64| {
            v.iter()
                .map(f)
                .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], x| {
                    [lo.min(x), hi.max(x)]
                })
        };
        let x_floor = v
            .iter()
            .all(|s| s.floor_us.is_some())
            .then(|| range(|s| s.client_cpu_us_per_host / s.floor_us.unwrap_or(f64::NAN)));
        Some(Spread {
            label: first.label.clone(),
            hosts_per_s: range(|s| s.hosts_per_s),
            client_cpu_us_per_host: range(|s| s.client_cpu_us_per_host),
            x_floor,
        })
    }
}

/// A client compared with the multi-thread baseline (scaling).
#[derive(Debug, Serialize)]
struct Ratio {
    label: String,
    hosts_per_s_vs_mt: f64,
    p99_vs_mt: Option<f64>,
    cpu_per_host_vs_mt: f64,
}

/// A client against the multi-thread baseline, repetition by repetition: each ratio compares
/// two runs made one after the other (the machine's load moves between repetitions more than
/// the clients differ, so a ratio within one repetition is the steadier measure).
#[derive(Debug, Serialize)]
struct Paired {
    label: String,
    hosts_per_s_vs_mt: Vec<f64>,
    p99_vs_mt: Vec<f64>,
}

impl Paired {
    fn of(row: &[Sample], mt: &[Sample]) -> Option<Paired> {
        let label = row.first()?.label.clone();
        let pairs = || row.iter().zip(mt);
        Some(Paired {
            label,
            hosts_per_s_vs_mt: pairs()
                .map(|(r, m)| r.hosts_per_s / m.hosts_per_s)
                .collect(),
            p99_vs_mt: pairs()
                .filter_map(|(r, m)| {
                    r.phases
                        .total_p99_ms
                        .zip(m.phases.total_p99_ms)
                        .map(|(a, b)| a / b)
                })
                .collect(),
        })
    }

    /// `1.12 0.97 1.30 (median 1.12; > 1 in 2 of 3)`.
    fn describe(v: &[f64], better_above: bool) -> String {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let better = v
            .iter()
            .filter(|&&x| if better_above { x > 1.0 } else { x < 1.0 })
            .count();
        let each: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        format!(
            "{} (median {median:.2}; {} 1 in {better} of {})",
            each.join(" "),
            if better_above { ">" } else { "<" },
            v.len()
        )
    }
}

struct Bench {
    exe: PathBuf,
    fleetsh: PathBuf,
    json: bool,
    sim_threads: usize,
    sim_latency: Option<u64>,
    reps: usize,
    kex: Kex,
    connect_timeout: f64,
    child_timeout: Duration,
    machine: Machine,
}

impl Bench {
    fn new(cli: &Cli) -> Result<Bench> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let fleetsh = match &cli.fleetsh {
            Some(p) => p.clone(),
            None => exe.with_file_name("fleetsh"),
        };
        if !fleetsh.is_file() {
            bail!(
                "{} not found: build it with `cargo build --release -p fleetsh-cli` or pass --fleetsh",
                fleetsh.display()
            );
        }
        if cli.reps == 0 || cli.sim_threads == 0 {
            bail!("--reps and --sim-threads must be at least 1");
        }
        Ok(Bench {
            exe,
            fleetsh,
            json: cli.json,
            sim_threads: cli.sim_threads,
            sim_latency: cli.sim_latency,
            reps: cli.reps,
            kex: cli.kex.into(),
            connect_timeout: cli.connect_timeout,
            child_timeout: Duration::from_secs(cli.child_timeout),
            machine: Machine {
                nproc: procfs::nproc(),
                cpu_model: procfs::cpu_model(),
                clk_tck: procfs::clock_ticks_per_second(),
                nofile_hard_limit: procfs::nofile_hard_limit(),
            },
        })
    }

    fn run(&self, scenario: &Scenario) -> Result<()> {
        match scenario {
            Scenario::Echo {
                hosts,
                fanout,
                shards,
                engine,
            } => self.echo(hosts, *fanout, *shards, &parse_engines(engine)?),
            Scenario::Read26k {
                concurrency,
                min_hosts,
                shards,
            } => self.read26k(concurrency, *min_hosts, *shards),
            Scenario::Idle {
                hosts,
                sleep,
                engine,
            } => self.idle(*hosts, *sleep, &parse_engines(engine)?),
            Scenario::Scaling {
                hosts,
                fanout,
                shards,
            } => self.scaling(*hosts, *fanout, shards),
            Scenario::Kex { hosts, fanout } => self.kex(*hosts, *fanout),
            Scenario::Peers {
                hosts,
                fanout,
                peers,
                python,
            } => self.peers(*hosts, *fanout, peers, python),
            Scenario::Floor { iters } => self.floor(*iters),
            Scenario::Sweep {
                hosts,
                fanouts,
                rates,
            } => self.sweep(*hosts, fanouts, rates),
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
                    let opts = SingleOpts {
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
                    self.transfer_single(&opts)?;
                }
                if *fleet_hosts > 0 {
                    self.transfer_fleet(*fleet_hosts, fleet_file_kib << 10)?;
                }
                Ok(())
            }
            Scenario::All => {
                self.echo(&[1000, 10_000], fleetsh::DEFAULT_FANOUT, 0, &[])?;
                self.read26k(&[1, 10, 50, 100, 200], 200, 0)?;
                self.idle(10_000, None, &[])?;
                self.scaling(10_000, fleetsh::DEFAULT_FANOUT, &[])?;
                self.kex(2000, fleetsh::DEFAULT_FANOUT)?;
                self.sweep(2000, &[10, 50, 100, 250, 500, 1000, 2000], &[])?;
                self.transfer_single(&SingleOpts {
                    size: 256 << 20,
                    rounds: 3,
                    cipher: None,
                    openssh: true,
                    sweep_chunks: &[],
                    sweep_windows: &[],
                    channel_windows: &[],
                    engines: &[],
                    direction: "both",
                })?;
                self.transfer_fleet(1000, 1 << 20)
            }
            Scenario::Measure { .. } | Scenario::TransferOnce { .. } => Ok(()),
        }
    }

    /// A spec with this bench's defaults (paths are filled in once the fleet runs).
    fn spec(&self, label: String, client: Client, hosts: usize, fanout: usize, cmd: &str) -> Spec {
        Spec {
            label,
            client,
            kex: self.kex,
            hosts,
            fanout,
            rate: None,
            command: cmd.into(),
            connect_timeout_s: self.connect_timeout,
            command_timeout_s: 120.0,
            hosts_file: PathBuf::new(),
            known_hosts: PathBuf::new(),
            identity: PathBuf::new(),
            sim_pids: Vec::new(),
            sample_rss: false,
            put: None,
            cli: None,
            python: None,
        }
    }

    /// Starts a fleet big enough for `specs`, runs each spec `reps` times (interleaved) in a fresh
    /// process, and returns, per spec, the sample with the median wall time. With `floor_each`
    /// the crypto floor is measured again before every sample (`Sample::floor_us`), for the
    /// tables that divide by it.
    fn measure(
        &self,
        scenario: &'static str,
        mut specs: Vec<Spec>,
        floor_each: bool,
    ) -> Result<(Vec<Sample>, ScenarioReport)> {
        let hosts = specs.iter().map(|s| s.hosts).max().unwrap_or(1);
        let in_flight = specs
            .iter()
            .map(|s| s.fanout.min(s.hosts))
            .max()
            .unwrap_or(1);
        let limit = procfs::nofile_hard_limit().unwrap_or(1024);
        let processes = fleet::processes_needed(hosts, in_flight, limit);
        eprintln!(
            "fleetsh-bench {scenario}: starting {hosts} simulated hosts in {processes} process(es)"
        );
        let fleet = Fleet::start(
            &self.fleetsh,
            hosts,
            processes,
            self.sim_threads,
            self.sim_latency,
        )?;
        for s in &mut specs {
            s.hosts_file = fleet.hosts_file();
            s.known_hosts = fleet.known_hosts_file();
            s.identity = fleet.identity_file();
            s.sim_pids = fleet.pids();
        }
        let date = procfs::utc_now();
        let load_before = procfs::loadavg();
        let mut all: Vec<Vec<Sample>> = vec![Vec::new(); specs.len()];
        for rep in 0..self.reps {
            for (i, spec) in specs.iter().enumerate() {
                std::thread::sleep(SETTLE);
                eprintln!(
                    "fleetsh-bench {scenario}: {} (rep {}/{})",
                    spec.label,
                    rep + 1,
                    self.reps
                );
                // The floor beside each sample: this machine's speed moves by a third to a half
                // within minutes, and client and floor move together.
                let floor = if floor_each {
                    Some(floor::measure(FLOOR_ITERS_PER_SAMPLE)?.for_kex(spec.kex))
                } else {
                    None
                };
                let mut sample = self.run_child(spec)?;
                sample.floor_us = floor;
                eprintln!(
                    "fleetsh-bench {scenario}: {}: {:.0} hosts/s, {:.0} us/host client, {:.0} \
                     us/host sim, peak RSS {:.1} MiB, p99 {:.0} ms, others' cores {:.2}{}",
                    spec.label,
                    sample.hosts_per_s,
                    sample.client_cpu_us_per_host,
                    sample.sim_cpu_us_per_host,
                    sample.peak_rss_kib as f64 / 1024.0,
                    sample.phases.total_p99_ms.unwrap_or(f64::NAN),
                    sample.other_cores,
                    sample.plateau.as_ref().map_or(String::new(), |p| format!(
                        ", {:.1} KiB/session",
                        p.per_session_kib
                    )),
                );
                if sample.failures > 0 {
                    eprintln!(
                        "fleetsh-bench {scenario}: {}: {} failures {:?}",
                        spec.label, sample.failures, sample.errors
                    );
                }
                if let Some(v) = all.get_mut(i) {
                    v.push(sample);
                }
            }
        }
        let load_after = procfs::loadavg();
        let sim_processes = fleet.processes();
        fleet.stop();
        let spread = all.iter().filter_map(|v| Spread::of(v)).collect();
        let rows: Vec<Sample> = all
            .iter()
            .filter_map(|v| {
                let mut by_wall: Vec<&Sample> = v.iter().collect();
                by_wall.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
                by_wall.get(by_wall.len() / 2).map(|s| (*s).clone())
            })
            .collect();
        let report = ScenarioReport {
            scenario,
            date,
            machine: self.machine.clone(),
            load_before,
            load_after,
            sim_processes,
            sim_threads: self.sim_threads,
            sim_latency_ms: self.sim_latency,
            reps: self.reps,
            rows: rows.clone(),
            spread,
            ratios: Vec::new(),
            paired: Vec::new(),
            per_rep: all,
        };
        Ok((rows, report))
    }

    /// Runs `fleetsh-bench measure SPEC` and reads its one JSON line, within the child timeout.
    fn run_child(&self, spec: &Spec) -> Result<Sample> {
        let mut child = Command::new(&self.exe)
            .arg("measure")
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a measurement process")?;
        let Some(mut stdout) = child.stdout.take() else {
            bail!("measurement process without stdout");
        };
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + self.child_timeout;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if Instant::now() >= deadline {
                // Child::kill sends SIGKILL to this child's PID only.
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{}: no result within {:?} (raise --child-timeout)",
                    spec.label,
                    self.child_timeout
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = reader.join().unwrap_or_default();
        if !status.success() {
            bail!("{}: measurement process failed ({status})", spec.label);
        }
        let line = out.lines().last().unwrap_or_default();
        serde_json::from_str(line).with_context(|| format!("{}: bad sample {line:?}", spec.label))
    }

    fn emit(&self, title: &str, report: &ScenarioReport, table: &Table, notes: &[String]) {
        println!(
            "== {title} ({}; {} CPUs; load {:.2} -> {:.2}; sim: {} process(es) x {} thread(s){}; reps {}) ==",
            report.date,
            report.machine.nproc,
            report.load_before[0],
            report.load_after[0],
            report.sim_processes,
            report.sim_threads,
            report
                .sim_latency_ms
                .map_or(String::new(), |ms| format!(", latency {ms} ms")),
            report.reps,
        );
        print!("{}", table.render());
        for n in notes {
            println!("{n}");
        }
        if report.reps > 1 {
            let ranges: Vec<String> = report
                .spread
                .iter()
                .map(|s| {
                    format!(
                        "{}: {:.0}-{:.0} hosts/s, {:.0}-{:.0} us/host{}",
                        s.label,
                        s.hosts_per_s[0],
                        s.hosts_per_s[1],
                        s.client_cpu_us_per_host[0],
                        s.client_cpu_us_per_host[1],
                        s.x_floor.map_or(String::new(), |[lo, hi]| format!(
                            ", {lo:.2}-{hi:.2}x the floor beside it"
                        ))
                    )
                })
                .collect();
            println!(
                "rows: the repetition with the median wall time; range over {} reps: {}",
                report.reps,
                ranges.join("; ")
            );
        }
        println!();
        if self.json {
            match serde_json::to_string(report) {
                Ok(j) => println!("{j}"),
                Err(e) => eprintln!("fleetsh-bench: cannot encode JSON: {e}"),
            }
        }
    }

    fn echo(
        &self,
        hosts: &[usize],
        fanout: usize,
        shards: usize,
        engines: &[(String, PathBuf)],
    ) -> Result<()> {
        let mut specs = Vec::new();
        for &n in hosts {
            let spec = self.spec(
                format!("echo {n}"),
                Client::Engine { shards },
                n,
                fanout,
                "echo hello",
            );
            for (label, path) in engines {
                let mut s = spec.clone();
                s.label = format!("echo {n} {label}");
                s.cli = Some(path.clone());
                specs.push(s);
            }
            if engines.is_empty() {
                specs.push(spec);
            }
        }
        // Measured before the simulator starts, on the same machine in the same hour.
        let floor = floor::measure(FLOOR_ITERS)?;
        let (rows, report) = self.measure("echo", specs, true)?;
        let table = floor_table(&rows);
        self.emit(
            &format!("echo hello, fanout {fanout}"),
            &report,
            &table.table,
            &[floor_note(&floor), cpu_resolution_note(&rows)],
        );
        Ok(())
    }

    /// The client's crypto floor per handshake, measured in this process.
    fn floor(&self, iters: usize) -> Result<()> {
        let f = floor::measure(iters)?;
        let mut t = Table::new(&["part", "us per handshake"]);
        for (part, us) in [
            ("x25519 key pair + agreement (aws-lc-rs)", f.x25519),
            ("ML-KEM-768 key pair + decapsulation (aws-lc-rs)", f.mlkem),
            (
                "Ed25519 host signature check (ssh-key / ed25519-dalek)",
                f.host_sig_check,
            ),
            ("Ed25519 user signature (aws-lc-rs)", f.user_sig),
            ("SHA-256: exchange hash and key derivation", f.hash),
            ("floor, curve25519-sha256", f.curve25519()),
            ("floor, mlkem768x25519-sha256", f.mlkem768x25519()),
        ] {
            t.row(vec![part.to_string(), format!("{us:.1}")]);
        }
        println!(
            "== client crypto floor per handshake ({}; {} CPUs; median of 5 rounds of {iters}) ==",
            procfs::utc_now(),
            self.machine.nproc
        );
        print!("{}", t.render());
        Ok(())
    }

    fn read26k(&self, steps: &[usize], min_hosts: usize, shards: usize) -> Result<()> {
        let nproc = self.machine.nproc;
        let specs = steps
            .iter()
            .map(|&c| {
                let c = c.max(1);
                let s = if shards == 0 { nproc.min(c) } else { shards };
                self.spec(
                    format!("concurrency {c}"),
                    Client::Engine { shards: s },
                    min_hosts.max(4 * c),
                    c,
                    "cat /srv/data/26k.txt",
                )
            })
            .collect();
        let (rows, report) = self.measure("read26k", specs, false)?;
        let mut t = Table::new(&[
            "concurrency",
            "hosts",
            "shards",
            "connect+auth ms",
            "channel open ms",
            "execute ms",
            "read ms",
            "close+exit ms",
            "total/host ms",
            "p99 ms",
            "hosts/s",
            "CPU us/host",
            "bytes/host",
            "others' cores",
            "fail",
        ]);
        for r in &rows {
            let p = &r.phases;
            t.row(vec![
                r.fanout.to_string(),
                r.hosts.to_string(),
                r.threads.to_string(),
                num(p.connect_auth_ms, 2),
                num(p.channel_open_ms, 2),
                num(p.exec_ms, 2),
                num(p.read_ms, 2),
                num(p.close_ms, 2),
                num(p.total_p50_ms, 2),
                num(p.total_p99_ms, 2),
                num(Some(r.hosts_per_s), 0),
                num(Some(r.client_cpu_us_per_host), 0),
                num(Some(r.output_bytes_per_host), 0),
                num(Some(r.other_cores), 2),
                r.failures.to_string(),
            ]);
        }
        self.emit(
            "cat /srv/data/26k.txt (26,000 bytes), medians per phase",
            &report,
            &t,
            &["phases are medians over successful hosts; total/host is the median of timings.total".into()],
        );
        Ok(())
    }

    fn idle(&self, hosts: usize, sleep: Option<u64>, engines: &[(String, PathBuf)]) -> Result<()> {
        let sleep = sleep.unwrap_or_else(|| (hosts as u64 / 200).max(20));
        let mut spec = self.spec(
            format!("idle {hosts}"),
            Client::Engine { shards: 0 },
            hosts,
            hosts,
            &format!("sleep {sleep}"),
        );
        spec.sample_rss = true;
        // Every session connects at once: the handshakes queue behind each other.
        spec.connect_timeout_s = spec.connect_timeout_s.max(600.0);
        spec.command_timeout_s = sleep as f64 + 600.0;
        let specs = if engines.is_empty() {
            vec![spec]
        } else {
            engines
                .iter()
                .map(|(label, path)| {
                    let mut s = spec.clone();
                    s.label = format!("idle {hosts} {label}");
                    s.cli = Some(path.clone());
                    s
                })
                .collect()
        };
        let (rows, report) = self.measure("idle", specs, false)?;
        let mut t = Table::new(&[
            "client",
            "sessions",
            "all open",
            "last ready s",
            "first done s",
            "RSS before MiB",
            "plateau MiB",
            "KiB/session",
            "peak RSS MiB",
            "client CPU us/host",
            "sim CPU us/host",
            "fail",
        ]);
        for r in &rows {
            let p = r.plateau.as_ref();
            t.row(vec![
                r.label.clone(),
                r.hosts.to_string(),
                p.map_or("-".into(), |p| {
                    if p.all_open { "yes" } else { "NO" }.to_string()
                }),
                num(p.map(|p| p.last_ready_s), 1),
                num(p.map(|p| p.first_finish_s), 1),
                num(p.map(|p| p.before_kib as f64 / 1024.0), 1),
                num(p.map(|p| p.plateau_kib as f64 / 1024.0), 1),
                num(p.map(|p| p.per_session_kib), 1),
                num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
                num(Some(r.client_cpu_us_per_host), 0),
                num(Some(r.sim_cpu_us_per_host), 0),
                r.failures.to_string(),
            ]);
        }
        self.emit(
            &format!("{hosts} authenticated sessions held open (`sleep {sleep}`, fanout {hosts})"),
            &report,
            &t,
            &[
                "each session has one open channel with a running command; KiB/session = \
               (max VmRSS while all were open - VmRSS before) / sessions"
                    .into(),
            ],
        );
        Ok(())
    }

    fn scaling(&self, hosts: usize, fanout: usize, shards: &[usize]) -> Result<()> {
        let nproc = self.machine.nproc;
        let shards: Vec<usize> = if shards.is_empty() {
            (1..=nproc).collect()
        } else {
            shards.to_vec()
        };
        let cmd = "echo hello";
        let mut specs = vec![
            self.spec(
                format!("plain russh mt({nproc})"),
                Client::PlainMultiThread { workers: nproc },
                hosts,
                fanout,
                cmd,
            ),
            self.spec(
                "plain russh ct".into(),
                Client::PlainCurrentThread,
                hosts,
                fanout,
                cmd,
            ),
        ];
        for &s in &shards {
            specs.push(self.spec(
                format!("engine shards={s}"),
                Client::Engine { shards: s },
                hosts,
                fanout,
                cmd,
            ));
        }
        let (rows, mut report) = self.measure("scaling", specs, false)?;
        let mt = rows.first().cloned();
        let ratios: Vec<Ratio> = match &mt {
            Some(mt) => rows
                .iter()
                .map(|r| Ratio {
                    label: r.label.clone(),
                    hosts_per_s_vs_mt: r.hosts_per_s / mt.hosts_per_s,
                    p99_vs_mt: r
                        .phases
                        .total_p99_ms
                        .zip(mt.phases.total_p99_ms)
                        .map(|(a, b)| a / b),
                    cpu_per_host_vs_mt: r.client_cpu_us_per_host / mt.client_cpu_us_per_host,
                })
                .collect(),
            None => Vec::new(),
        };
        let extra: Vec<Vec<String>> = ratios
            .iter()
            .map(|q| {
                vec![
                    format!("{:.2}x", q.hosts_per_s_vs_mt),
                    q.p99_vs_mt.map_or("-".into(), |v| format!("{v:.2}x")),
                    format!("{:.2}x", q.cpu_per_host_vs_mt),
                ]
            })
            .collect();
        let table =
            generic_table(&rows, &[("hosts/s vs mt", "p99 vs mt", "CPU vs mt")]).with_extra(&extra);
        report.ratios = ratios;
        let mut notes = vec![
            "baselines: plain russh client (same russh config, known_hosts and key, no shards) \
             on one tokio runtime; the engine's transport (run_host) is pub(crate)"
                .to_string(),
        ];
        if let Some((mt, rest)) = report.per_rep.split_first() {
            report.paired = rest.iter().filter_map(|r| Paired::of(r, mt)).collect();
        }
        if self.reps > 1 {
            notes.push(
                "per repetition, against the multi-thread baseline run just before it:".into(),
            );
            for p in &report.paired {
                notes.push(format!(
                    "  {}: hosts/s {}; p99 {}",
                    p.label,
                    Paired::describe(&p.hosts_per_s_vs_mt, true),
                    Paired::describe(&p.p99_vs_mt, false),
                ));
            }
        }
        self.emit(
            &format!("scaling: echo hello on {hosts} hosts, fanout {fanout}"),
            &report,
            &table.table,
            &notes,
        );
        Ok(())
    }

    fn sweep(&self, hosts: usize, fanouts: &[usize], rates: &[f64]) -> Result<()> {
        let cmd = "echo hello";
        let mut specs: Vec<Spec> = fanouts
            .iter()
            .map(|&f| {
                self.spec(
                    format!("fanout {f}"),
                    Client::Engine { shards: 0 },
                    hosts,
                    f.max(1),
                    cmd,
                )
            })
            .collect();
        let top = fanouts
            .iter()
            .copied()
            .max()
            .unwrap_or(fleetsh::DEFAULT_FANOUT);
        for &r in rates {
            let mut s = self.spec(
                format!("fanout {top} rate {r}/s"),
                Client::Engine { shards: 0 },
                hosts,
                top,
                cmd,
            );
            s.rate = Some(r);
            specs.push(s);
        }
        let (rows, report) = self.measure("sweep", specs, false)?;
        let mut t = Table::new(&[
            "fanout",
            "rate/s",
            "hosts",
            "wall s",
            "hosts/s",
            "connect+auth ms",
            "p50 ms",
            "p99 ms",
            "client CPU us/host",
            "sim CPU us/host",
            "peak RSS MiB",
            "others' cores",
            "fail",
        ]);
        for r in &rows {
            t.row(vec![
                r.fanout.to_string(),
                num(r.rate, 0),
                r.hosts.to_string(),
                num(Some(r.wall_s), 2),
                num(Some(r.hosts_per_s), 0),
                num(r.phases.connect_auth_ms, 1),
                num(r.phases.total_p50_ms, 1),
                num(r.phases.total_p99_ms, 1),
                num(Some(r.client_cpu_us_per_host), 0),
                num(Some(r.sim_cpu_us_per_host), 0),
                num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
                num(Some(r.other_cores), 2),
                r.failures.to_string(),
            ]);
        }
        self.emit(
            &format!("fanout sweep: echo hello on {hosts} hosts"),
            &report,
            &t,
            &[cpu_resolution_note(&rows)],
        );
        Ok(())
    }

    fn kex(&self, hosts: usize, fanout: usize) -> Result<()> {
        let cmd = "echo hello";
        let mut specs = Vec::new();
        for kex in [Kex::Default, Kex::Curve25519] {
            let mut s = self.spec(
                format!("kex {}", kex.name()),
                Client::Engine { shards: 0 },
                hosts,
                fanout,
                cmd,
            );
            s.kex = kex;
            specs.push(s);
        }
        let floor = floor::measure(FLOOR_ITERS)?;
        let (rows, report) = self.measure("kex", specs, true)?;
        let table = floor_table(&rows);
        self.emit(
            &format!("key exchange: echo hello on {hosts} hosts, fanout {fanout}"),
            &report,
            &table.table,
            &[floor_note(&floor), cpu_resolution_note(&rows)],
        );
        Ok(())
    }
}

impl Bench {
    fn peers(
        &self,
        hosts: usize,
        fanout: usize,
        peers: &[peers::Peer],
        python: &std::path::Path,
    ) -> Result<()> {
        let peers = if peers.is_empty() {
            peers::Peer::ALL.to_vec()
        } else {
            peers.to_vec()
        };
        for &p in &peers {
            peers::check(p, python)?;
        }
        let cmd = "echo hello";
        let mut specs = Vec::new();
        // fleetsh as the peers run: a process started for the run (the CLI).
        for kex in [Kex::Default, Kex::Curve25519] {
            let mut s = self.spec(
                format!("fleetsh {}", kex.name()),
                Client::Engine { shards: 0 },
                hosts,
                fanout,
                cmd,
            );
            s.kex = kex;
            s.cli = Some(self.fleetsh.clone());
            specs.push(s);
        }
        for &p in &peers {
            let mut s = self.spec(
                p.name().into(),
                Client::Peer { peer: p },
                hosts,
                fanout,
                cmd,
            );
            s.python = Some(python.to_path_buf());
            specs.push(s);
        }
        let (rows, report) = self.measure("peers", specs, false)?;
        // Each row against fleetsh with the same key exchange, paired by repetition.
        let fleetsh_row = |kex: &str| {
            rows.iter()
                .position(|r| r.label == format!("fleetsh {kex}"))
        };
        let extra: Vec<Vec<String>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let ratio = fleetsh_row(&r.kex).and_then(|f| {
                    let (mine, base) = (report.per_rep.get(i)?, report.per_rep.get(f)?);
                    let v: Vec<f64> = mine
                        .iter()
                        .zip(base)
                        .map(|(a, b)| a.client_cpu_us_per_host / b.client_cpu_us_per_host)
                        .collect();
                    transfer::median(&v)
                });
                vec![num(ratio, 1)]
            })
            .collect();
        let table = generic_table(&rows, &[("CPU x fleetsh", "", "")]).with_extra(&extra);
        self.emit(
            &format!("peers: echo hello on {hosts} hosts, fanout {fanout}"),
            &report,
            &table.table,
            &[
                "CPU x fleetsh: client CPU per host over fleetsh's with the same key exchange, \
                 median of the per-repetition ratios. A peer's key exchange is the first of its \
                 offer the simulator has (docs/benchmarks.md, \"Peers\"). Client CPU includes \
                 the interpreter's or process's start, as fleetsh's rows include the CLI's; for \
                 pdsh, pssh and clush it includes their ssh processes, and peak RSS is their \
                 whole process tree's (sampled every 10 ms). Peers report no per-host latency."
                    .to_string(),
                cpu_resolution_note(&rows),
            ],
        );
        Ok(())
    }
}

/// The generic table with each row's crypto floor (measured just before its sample, for its
/// key exchange) and its distance to it.
fn floor_table(rows: &[Sample]) -> GenericTable {
    let extra: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                num(r.floor_us, 0),
                r.floor_us.map_or("-".into(), |f| {
                    format!("{:.2}x", r.client_cpu_us_per_host / f)
                }),
            ]
        })
        .collect();
    generic_table(rows, &[("floor us", "x floor", "")]).with_extra(&extra)
}

fn floor_note(f: &floor::Floor) -> String {
    format!(
        "floor: the client's crypto per handshake measured in this process before the run \
         (`fleetsh-bench floor`): {:.0} us curve25519 (x25519 {:.0}, host signature check {:.0}, \
         user signature {:.0}, hashes {:.0}), {:.0} us mlkem768x25519 (+ ML-KEM {:.0}). The \
         `floor us` column is the floor measured again just before the row's sample, the \
         machine's speed in that minute; `x floor` divides by it",
        f.curve25519(),
        f.x25519,
        f.host_sig_check,
        f.user_sig,
        f.hash,
        f.mlkem768x25519(),
        f.mlkem
    )
}

/// `--engine LABEL=PATH` values of `echo` and `idle`.
fn parse_engines(v: &[String]) -> Result<Vec<(String, PathBuf)>> {
    v.iter()
        .map(|e| match e.split_once('=') {
            Some((label, path)) if !label.is_empty() && std::path::Path::new(path).is_file() => {
                Ok((label.to_string(), PathBuf::from(path)))
            }
            _ => bail!("--engine takes LABEL=PATH of an existing fleetsh binary, not {e:?}"),
        })
        .collect()
}

/// Options of the single-file transfer runs.
struct SingleOpts<'a> {
    size: u64,
    rounds: usize,
    cipher: Option<String>,
    openssh: bool,
    sweep_chunks: &'a [u32],
    sweep_windows: &'a [usize],
    channel_windows: &'a [u32],
    engines: &'a [String],
    direction: &'a str,
}

/// The single-file runs' output.
#[derive(Debug, Serialize)]
struct TransferReport {
    scenario: &'static str,
    date: String,
    machine: Machine,
    load_before: [f64; 3],
    load_after: [f64; 3],
    bytes: u64,
    rounds: usize,
    cipher_forced: Option<String>,
    sftp_server: String,
    rows: Vec<TransferRowReport>,
}

/// One client in one direction, over the rounds.
#[derive(Debug, Serialize)]
struct TransferRowReport {
    label: String,
    direction: &'static str,
    cipher: String,
    median_mb_per_s: Option<f64>,
    median_wall_s: Option<f64>,
    median_client_cpu_s: Option<f64>,
    /// Median over the rounds of (this row's MB/s / scp's MB/s in the same round).
    vs_scp: Option<f64>,
    samples: Vec<transfer::XferSample>,
}

impl Bench {
    /// The clients of the single-file runs, in run order.
    fn transfer_rows(&self, o: &SingleOpts) -> Result<Vec<transfer::XferRow>> {
        use transfer::{XferClient, XferRow};
        let mut rows = vec![XferRow {
            label: "fleetsh".into(),
            client: XferClient::Engine {
                exe: None,
                channel_window: None,
            },
        }];
        for e in o.engines {
            let Some((label, path)) = e.split_once('=') else {
                bail!("--engine takes LABEL=PATH, not {e:?}");
            };
            rows.push(XferRow {
                label: format!("fleetsh {label}"),
                client: XferClient::Engine {
                    exe: Some(PathBuf::from(path)),
                    channel_window: None,
                },
            });
        }
        for &w in o.channel_windows {
            rows.push(XferRow {
                label: format!("fleetsh chan-window {w}K"),
                client: XferClient::Engine {
                    exe: None,
                    channel_window: Some(w.saturating_mul(1024)),
                },
            });
        }
        if o.openssh {
            rows.push(XferRow {
                label: "scp".into(),
                client: XferClient::Scp { legacy: false },
            });
            let legacy = Command::new("scp")
                .arg("-O")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stderr).contains("illegal option"))
                .unwrap_or(false);
            if legacy {
                rows.push(XferRow {
                    label: "scp -O".into(),
                    client: XferClient::Scp { legacy: true },
                });
            }
            rows.push(XferRow {
                label: "sftp -b".into(),
                client: XferClient::Sftp,
            });
        }
        for &c in o.sweep_chunks {
            for &w in o.sweep_windows {
                for &cw in std::iter::once(&0).chain(o.channel_windows) {
                    rows.push(XferRow {
                        label: if cw == 0 {
                            format!("plain {c}K x {w}")
                        } else {
                            format!("plain {c}K x {w} chan-window {cw}K")
                        },
                        client: XferClient::Plain {
                            chunk: c.saturating_mul(1024),
                            window: w.max(1),
                            channel_window: (cw > 0).then(|| cw.saturating_mul(1024)),
                        },
                    });
                }
            }
        }
        Ok(rows)
    }

    fn transfer_single(&self, o: &SingleOpts) -> Result<()> {
        let directions: Vec<bool> = match o.direction {
            "up" => vec![true],
            "down" => vec![false],
            "both" => vec![true, false],
            d => bail!("--direction takes up, down or both, not {d:?}"),
        };
        let rows = self.transfer_rows(o)?;
        eprintln!(
            "fleetsh-bench transfer: {} MiB file, {} clients, {} round(s)",
            o.size >> 20,
            rows.len(),
            o.rounds
        );
        let single = transfer::SingleFile::prepare(
            o.size,
            self.exe.clone(),
            o.cipher.clone(),
            self.child_timeout,
        )?;
        let date = procfs::utc_now();
        let load_before = procfs::loadavg();
        // samples[d][r]: direction d, row r, one per round.
        let mut samples: Vec<Vec<Vec<transfer::XferSample>>> =
            vec![vec![Vec::new(); rows.len()]; directions.len()];
        for round in 0..o.rounds.max(1) {
            for (d, &up) in directions.iter().enumerate() {
                for (r, row) in rows.iter().enumerate() {
                    let s = single.run(row, up)?;
                    eprintln!(
                        "  round {}/{} {} {}: {:.1} MB/s ({:.2} s, client CPU {:.2} s, {})",
                        round + 1,
                        o.rounds,
                        if up { "put" } else { "get" },
                        row.label,
                        s.mb_per_s,
                        s.wall_s,
                        s.client_cpu_s,
                        s.cipher
                    );
                    if let Some(v) = samples.get_mut(d).and_then(|v| v.get_mut(r)) {
                        v.push(s);
                    }
                }
            }
        }
        let load_after = procfs::loadavg();
        let scp = rows
            .iter()
            .position(|r| r.client == transfer::XferClient::Scp { legacy: false });
        let mut report = TransferReport {
            scenario: "transfer",
            date,
            machine: self.machine.clone(),
            load_before,
            load_after,
            bytes: o.size,
            rounds: o.rounds,
            cipher_forced: o.cipher.clone(),
            sftp_server: sshd::sftp_server(),
            rows: Vec::new(),
        };
        let mut t = Table::new(&[
            "direction",
            "client",
            "cipher",
            "MB/s median",
            "MB/s range",
            "wall s",
            "client CPU s",
            "CPU s/GB",
            "server+other cores",
            "vs scp",
        ]);
        for (d, &up) in directions.iter().enumerate() {
            let Some(per_row) = samples.get(d) else {
                continue;
            };
            for (r, row) in rows.iter().enumerate() {
                let Some(v) = per_row.get(r) else { continue };
                let col = |f: fn(&transfer::XferSample) -> f64| {
                    transfer::median(&v.iter().map(f).collect::<Vec<_>>())
                };
                let mbs = col(|s| s.mb_per_s);
                let lo = v.iter().map(|s| s.mb_per_s).fold(f64::INFINITY, f64::min);
                let hi = v.iter().map(|s| s.mb_per_s).fold(0.0, f64::max);
                let cpu = col(|s| s.client_cpu_s);
                let vs_scp = scp.and_then(|i| per_row.get(i)).and_then(|base| {
                    let ratios: Vec<f64> = v
                        .iter()
                        .zip(base)
                        .map(|(a, b)| a.mb_per_s / b.mb_per_s)
                        .collect();
                    transfer::median(&ratios)
                });
                let cipher = v.first().map_or("?".into(), |s| s.cipher.clone());
                t.row(vec![
                    if up { "put" } else { "get" }.into(),
                    row.label.clone(),
                    cipher.clone(),
                    num(mbs, 1),
                    format!("{lo:.0}-{hi:.0}"),
                    num(col(|s| s.wall_s), 2),
                    num(cpu, 2),
                    num(cpu.map(|c| c / (o.size as f64 / 1e9)), 2),
                    num(col(|s| s.server_and_other_cores), 2),
                    vs_scp.map_or("-".into(), |x| format!("{x:.2}x")),
                ]);
                report.rows.push(TransferRowReport {
                    label: row.label.clone(),
                    direction: if up { "put" } else { "get" },
                    cipher,
                    median_mb_per_s: mbs,
                    median_wall_s: col(|s| s.wall_s),
                    median_client_cpu_s: cpu,
                    vs_scp,
                    samples: v.clone(),
                });
            }
        }
        println!(
            "== transfer: one {} MiB file to/from one host (loopback OpenSSH sshd, {}) ==\n\
             date {}; machine {} x {}; load {:.2} -> {:.2}; {} round(s), interleaved",
            o.size >> 20,
            report.sftp_server,
            report.date,
            self.machine.nproc,
            self.machine.cpu_model,
            load_before[0],
            load_after[0],
            o.rounds,
        );
        print!("{}", t.render());
        println!(
            "MB = 10^6 bytes; wall = spawn to exit (process start, handshake, auth included); \
             vs scp = median over rounds of the per-round ratio to scp (SFTP protocol)"
        );
        println!();
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        Ok(())
    }

    fn transfer_fleet(&self, hosts: usize, size: u64) -> Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-put-")
            .tempdir()?;
        let local = dir.path().join("file.bin");
        std::fs::write(&local, transfer::pseudo_random(size))?;
        let fanout = fleetsh::DEFAULT_FANOUT;
        let mut spec = self.spec(
            format!("put {} KiB to {hosts}", size >> 10),
            Client::Engine { shards: 0 },
            hosts,
            fanout,
            "",
        );
        spec.put = Some(measure::PutSpec {
            local,
            remote: "/file.bin".into(),
        });
        let (rows, report) = self.measure("transfer-fleet", vec![spec], false)?;
        let mut t = Table::new(&[
            "hosts",
            "fanout",
            "shards",
            "wall s",
            "hosts/s",
            "MB/s",
            "client CPU us/host",
            "sim CPU us/host",
            "peak RSS MiB",
            "bytes/host",
            "p50 ms",
            "p99 ms",
            "others' cores",
            "fail",
        ]);
        for r in &rows {
            t.row(vec![
                r.hosts.to_string(),
                r.fanout.to_string(),
                r.threads.to_string(),
                num(Some(r.wall_s), 2),
                num(Some(r.hosts_per_s), 0),
                num(
                    Some(r.ok as f64 * size as f64 / 1e6 / r.wall_s.max(1e-9)),
                    1,
                ),
                num(Some(r.client_cpu_us_per_host), 0),
                num(Some(r.sim_cpu_us_per_host), 0),
                num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
                num(Some(r.output_bytes_per_host), 0),
                num(r.phases.total_p50_ms, 1),
                num(r.phases.total_p99_ms, 1),
                num(Some(r.other_cores), 2),
                r.failures.to_string(),
            ]);
        }
        self.emit(
            &format!(
                "put: one {} KiB file to {hosts} simulated hosts (copy_to, fanout {fanout})",
                size >> 10
            ),
            &report,
            &t,
            &[
                "MB/s = hosts that succeeded x file size / wall (10^6 bytes); bytes/host = bytes the \
                 engine reports moved per host"
                    .into(),
                cpu_resolution_note(&rows),
            ],
        );
        Ok(())
    }
}

/// A table of the columns every throughput run has, plus up to three extra headers.
struct GenericTable {
    table: Table,
    rows: usize,
}

fn generic_table(rows: &[Sample], extra: &[(&str, &str, &str)]) -> GenericTable {
    let mut headers = vec![
        "run",
        "kex",
        "hosts",
        "fanout",
        "threads",
        "wall s",
        "hosts/s",
        "client CPU us/host",
        "sim CPU us/host",
        "client/sim",
        "peak RSS MiB",
        "p50 ms",
        "p99 ms",
        "others' cores",
        "fail",
    ];
    for (a, b, c) in extra {
        headers.extend([*a, *b, *c].into_iter().filter(|h| !h.is_empty()));
    }
    let mut t = Table::new(&headers);
    for r in rows {
        t.row(vec![
            r.label.clone(),
            r.kex.clone(),
            r.hosts.to_string(),
            r.fanout.to_string(),
            r.threads.to_string(),
            num(Some(r.wall_s), 2),
            num(Some(r.hosts_per_s), 0),
            num(Some(r.client_cpu_us_per_host), 0),
            num(Some(r.sim_cpu_us_per_host), 0),
            num(r.client_sim_cpu_ratio, 2),
            num(Some(r.peak_rss_kib as f64 / 1024.0), 1),
            num(r.phases.total_p50_ms, 1),
            num(r.phases.total_p99_ms, 1),
            num(Some(r.other_cores), 2),
            r.failures.to_string(),
        ]);
    }
    GenericTable {
        table: t,
        rows: rows.len(),
    }
}

impl GenericTable {
    /// Appends `extra[i]` to data row `i`.
    fn with_extra(mut self, extra: &[Vec<String>]) -> Self {
        debug_assert!(extra.len() <= self.rows);
        self.table.extend_rows(extra);
        self
    }
}

/// Says how coarse the CPU counters are relative to the smallest measured CPU.
fn cpu_resolution_note(rows: &[Sample]) -> String {
    let tck = rows.first().map_or(100, |r| r.clk_tck);
    let min_cpu = rows
        .iter()
        .map(|r| r.client_cpu_s)
        .fold(f64::INFINITY, f64::min);
    let step = 1.0 / tck as f64;
    format!(
        "CPU counters tick at {tck} Hz ({:.0} ms); the smallest client CPU here is {:.2} s, so \
         per-host CPU is good to about {:.1}%",
        step * 1e3,
        min_cpu,
        if min_cpu > 0.0 {
            100.0 * step / min_cpu
        } else {
            100.0
        }
    )
}

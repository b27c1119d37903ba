//! The command line: the options every scenario shares, the scenarios with their own options,
//! and the check of `--engine LABEL=PATH` values.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::floor;
use crate::measure::Kex;
use crate::peers;

#[derive(Debug, Parser)]
#[command(
    name = "fleetsh-bench",
    about = "fleetsh benchmarks against a simulated fleet"
)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Also print one JSON object per scenario (after its table).
    #[arg(long, global = true)]
    pub json: bool,
    /// The `fleetsh` binary that serves the simulated fleet [default: `fleetsh` next to this
    /// binary, i.e. target/release/fleetsh].
    #[arg(long, global = true, value_name = "PATH")]
    pub fleetsh: Option<PathBuf>,
    /// Server threads of each sim process.
    #[arg(long, global = true, default_value_t = 1)]
    pub sim_threads: usize,
    /// Emulated network latency of the sim, in ms (`fleetsh sim --latency`): every client
    /// request is answered that much later.
    #[arg(long, global = true, value_name = "MS")]
    pub sim_latency: Option<u64>,
    /// Repetitions of each measurement (interleaved); the row with the median wall time is shown.
    #[arg(long, global = true, default_value_t = 1)]
    pub reps: usize,
    /// Key exchange of every engine run except in the `kex` scenario.
    #[arg(long, global = true, value_enum, default_value_t = KexArg::Default)]
    pub kex: KexArg,
    /// Connect timeout per host (TCP + handshake + auth), seconds.
    #[arg(long, global = true, default_value_t = 30.0)]
    pub connect_timeout: f64,
    /// Limit on each measurement process, seconds (it is killed after that).
    #[arg(long, global = true, default_value_t = 900)]
    pub child_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KexArg {
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
pub enum Scenario {
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
    /// `echo hello` on N hosts by the `fleetsh` CLI without a journal, with `--journal` and
    /// with `--journal --journal-sync`, side by side, interleaved: what a journal costs.
    Journal {
        /// Host counts.
        #[arg(long, value_delimiter = ',', default_values_t = [2000])]
        hosts: Vec<usize>,
        /// Hosts in flight.
        #[arg(long, default_value_t = fleetsh::DEFAULT_FANOUT)]
        fanout: usize,
        /// The `fleetsh` binary [default: `fleetsh` beside this one].
        #[arg(long, value_name = "PATH")]
        cli: Option<PathBuf>,
        /// Where the journals are written; must be on the disk a real run would use
        /// [default: target/bench-journals beside this binary's directory].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// `echo hello` on N hosts by one `fleetsh` controller and by several at once (`--shard
    /// I/N`, each with a journal) then merged: client CPU per host side by side.
    Split {
        /// Hosts.
        #[arg(long, default_value_t = 20_000)]
        hosts: usize,
        /// Controllers of the split run.
        #[arg(long, default_value_t = 4)]
        controllers: usize,
        /// Hosts in flight per controller.
        #[arg(long, default_value_t = fleetsh::DEFAULT_FANOUT)]
        fanout: usize,
        /// Give each of the split run's controllers FANOUT / N, so that both runs have as many
        /// hosts in flight.
        #[arg(long)]
        divide_fanout: bool,
        /// The `fleetsh` binary [default: `fleetsh` beside this one].
        #[arg(long, value_name = "PATH")]
        cli: Option<PathBuf>,
        /// Where the journals are written [default: target/bench-journals].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
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
        /// Real servers instead of the simulator: one OpenSSH sshd (/usr/sbin/sshd) in a
        /// network namespace made for the run answers every host (127.90.x.y), and every client
        /// runs in that namespace (needs root and ip). Default tools: parallel-ssh and asyncssh.
        #[arg(long)]
        sshd: bool,
    },
    /// `echo hello` from Python, the same script shape for each client: fleetsh's Python package
    /// (its native API, and its parallel-ssh compatibility layer running parallel-ssh's script),
    /// parallel-ssh and asyncssh, with the `fleetsh` CLI for reference, side by side on the same
    /// simulated fleet: client CPU per host against parallel-ssh's and fleetsh-python's.
    Python {
        /// Host counts (one fleet and one table each).
        #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000])]
        hosts: Vec<usize>,
        /// Hosts in flight, for every client (fleetsh's fanout, parallel-ssh's pool size,
        /// asyncssh's semaphore).
        #[arg(long, default_value_t = 100)]
        fanout: usize,
        /// The Python interpreter that has parallel-ssh and asyncssh [default:
        /// $FLEETSH_BENCH_PYTHON, else target/peers-venv/bin/python if it exists, else python3].
        #[arg(long)]
        python: Option<PathBuf>,
        /// The Python interpreter that has fleetsh's package (`pip install ./crates/python`)
        /// [default: $FLEETSH_BENCH_FLEETSH_PYTHON, else target/python-venv/bin/python if it
        /// exists, else python3].
        #[arg(long, value_name = "PATH")]
        fleetsh_python: Option<PathBuf>,
        /// Leave out the row of fleetsh's parallel-ssh compatibility layer
        /// (`fleetsh.compat.pssh`).
        #[arg(long)]
        no_compat: bool,
    },
    /// Round trips per host: `echo hello` against OpenSSH's sshd behind an emulated far network
    /// (two network namespaces joined by a link that delays every packet; needs root, ip,
    /// python3, /dev/net/tun, sshd), at each round trip, side by side: fleetsh (both key
    /// exchanges), OpenSSH's ssh, parallel-ssh and asyncssh on one host, then a fleet.
    Rtt {
        /// Round trips of the emulated link, ms; the first is the base of the differences.
        #[arg(long, value_delimiter = ',', default_values_t = [0, 100])]
        delays: Vec<u64>,
        /// Single-host runs per client and round trip (interleaved).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Hosts of the fleet runs (0: no fleet runs).
        #[arg(long, default_value_t = 200)]
        fleet_hosts: usize,
        /// Hosts in flight in the fleet runs.
        #[arg(long, default_value_t = 200)]
        fleet_fanout: usize,
        /// Runs per fleet client and round trip (interleaved).
        #[arg(long, default_value_t = 3)]
        fleet_runs: usize,
        /// The Python interpreter that has parallel-ssh and asyncssh [default:
        /// $FLEETSH_BENCH_PYTHON, else python3].
        #[arg(long)]
        python: Option<PathBuf>,
        /// Record the first single-host run of each client at each non-zero round trip with
        /// tcpdump (pcap files in DIR) and print its flights.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        /// More `fleetsh` binaries run beside the others (default key exchange), LABEL=PATH,
        /// repeatable: e.g. two builds.
        #[arg(long, value_name = "LABEL=PATH")]
        engine: Vec<String>,
    },
    /// `rtt`'s kept-connection client, run by `rtt` inside its near namespace: connects to one
    /// host, runs the command over the kept connection, prints the times as JSON.
    #[command(hide = true)]
    KeptClient {
        /// The host (port 22).
        #[arg(long)]
        host: String,
        /// The login user.
        #[arg(long)]
        user: String,
        /// The private key.
        #[arg(long)]
        identity: PathBuf,
        /// The known_hosts file.
        #[arg(long)]
        known_hosts: PathBuf,
        /// Later commands to run.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The command.
        #[arg(long)]
        command: String,
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
        #[arg(long, default_value_t = floor::ITERS)]
        iters: usize,
    },
    /// Every scenario with its defaults (sweep included; not peers and python: their tools must
    /// be installed).
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

/// `--engine LABEL=PATH` values of `echo` and `idle`.
pub fn parse_engines(v: &[String]) -> Result<Vec<(String, PathBuf)>> {
    v.iter()
        .map(|e| match e.split_once('=') {
            Some((label, path)) if !label.is_empty() && std::path::Path::new(path).is_file() => {
                Ok((label.to_string(), PathBuf::from(path)))
            }
            _ => bail!("--engine takes LABEL=PATH of an existing fleetsh binary, not {e:?}"),
        })
        .collect()
}

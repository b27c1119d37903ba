//! `python`: `echo hello` from Python with the same script shape for each client: fleetsh's
//! Python package (`fleetsh.Engine`, and `fleetsh.compat.pssh` running parallel-ssh's script
//! with only the imports changed), parallel-ssh and asyncssh, with the `fleetsh` CLI for
//! reference, on the same simulated fleet. Each row's client CPU per host against parallel-ssh's
//! and against fleetsh-python's, paired by repetition.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::{Client, Kex, Sample};
use crate::peers::{self, Peer};
use crate::print::{cpu_resolution_note, generic_table};
use crate::report::ScenarioReport;
use crate::stats;
use crate::table::num;

/// The scenario's options, as given on the command line.
pub struct Options {
    /// Host counts: one fleet and one table each.
    pub hosts: Vec<usize>,
    /// Hosts in flight, for every client.
    pub fanout: usize,
    /// The interpreter with parallel-ssh and asyncssh, if named.
    pub python: Option<PathBuf>,
    /// The interpreter with fleetsh's package, if named.
    pub fleetsh_python: Option<PathBuf>,
    /// Leave out the compatibility layer's row.
    pub no_compat: bool,
}

/// The Python rows, in table order.
const PYTHON_ROWS: [Peer; 4] = [
    Peer::FleetshPython,
    Peer::FleetshPssh,
    Peer::ParallelSsh,
    Peer::Asyncssh,
];

/// Runs `echo hello` on each of `opts.hosts` with every row, after checking that each Python
/// client can be imported by its interpreter.
pub fn run(bench: &Bench, opts: &Options) -> Result<()> {
    let python = interpreter(
        opts.python.as_deref(),
        "FLEETSH_BENCH_PYTHON",
        &bench.exe,
        "peers-venv",
    );
    let fleetsh_python = interpreter(
        opts.fleetsh_python.as_deref(),
        "FLEETSH_BENCH_FLEETSH_PYTHON",
        &bench.exe,
        "python-venv",
    );
    let rows: Vec<Peer> = PYTHON_ROWS
        .into_iter()
        .filter(|&p| !(opts.no_compat && p == Peer::FleetshPssh))
        .collect();
    let interpreter_of = |p: Peer| {
        if p.is_fleetsh() {
            fleetsh_python.clone()
        } else {
            python.clone()
        }
    };
    for &p in &rows {
        peers::check(p, &interpreter_of(p))?;
    }
    let package = peers::fleetsh_package(&fleetsh_python);
    let cmd = "echo hello";
    for &n in &opts.hosts {
        let mut specs = Vec::new();
        for &p in &rows {
            let mut s = bench.spec(
                p.name().into(),
                Client::Peer { peer: p },
                n,
                opts.fanout,
                cmd,
            );
            s.python = Some(interpreter_of(p));
            specs.push(s);
        }
        // The CLI as `peers` runs it, with both key exchanges: parallel-ssh negotiates
        // curve25519, fleetsh's Python package the engine's default.
        for kex in [Kex::Default, Kex::Curve25519] {
            let mut s = bench.spec(
                format!("fleetsh CLI {}", kex.name()),
                Client::Engine { shards: 0 },
                n,
                opts.fanout,
                cmd,
            );
            s.kex = kex;
            s.cli = Some(bench.fleetsh.clone());
            specs.push(s);
        }
        let (samples, report) = bench.measure("python", specs, false)?;
        let against = |label: &str| against_row(&samples, &report, label);
        let x_pssh = against(Peer::ParallelSsh.name());
        let x_native = against(Peer::FleetshPython.name());
        let extra: Vec<Vec<String>> = x_pssh
            .iter()
            .zip(&x_native)
            .map(|(a, b)| vec![num(a.median, 2), num(b.median, 2)])
            .collect();
        let table = generic_table(
            &samples,
            &[("CPU x parallel-ssh", "CPU x fleetsh-python", "")],
        )
        .with_extra(&extra);
        let mut notes = vec![less_than_parallel_ssh(&samples, &x_pssh)];
        notes.push(
            "CPU x parallel-ssh, CPU x fleetsh-python: client CPU per host over that row's, \
             median of the per-repetition ratios. Every client checks host keys (strict, the \
             fleet's known_hosts) except parallel-ssh (libssh2 leaves it to the caller). Key \
             exchange: the first of each client's offer the simulator has; fleetsh's Python \
             package offers the engine's default order (the scripts leave fleetsh.Engine's \
             kex unset), parallel-ssh curve25519, which costs less: the CLI rows show the \
             difference on fleetsh. Client CPU includes the interpreter's start and imports \
             (the CLI's start for its rows); the Python clients report no per-host latency."
                .to_string(),
        );
        notes.push(format!(
            "interpreters: {} (fleetsh-python rows: {}); {}",
            python.display(),
            fleetsh_python.display(),
            package
                .as_deref()
                .unwrap_or("fleetsh's package: version unknown")
        ));
        notes.push(cpu_resolution_note(&samples));
        bench.emit(
            &format!("python: echo hello on {n} hosts, fanout {}", opts.fanout),
            &report,
            &table.table,
            &notes,
        );
    }
    Ok(())
}

/// The interpreter `given`, else `$env`, else `VENV/bin/python` in the target directory of the
/// harness binary `exe` (or of this repository) if it exists, else `python3`.
fn interpreter(given: Option<&Path>, env: &str, exe: &Path, venv: &str) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join(venv).join("bin/python"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("target").join(venv).join("bin/python"));
    beside
        .into_iter()
        .chain(repo)
        .find(|p| p.is_file())
        .unwrap_or_else(|| "python3".into())
}

/// Each row's client CPU per host over the row labelled `label`'s in the same repetition: the
/// median and the range of those ratios (none when that row is absent).
struct Against {
    median: Option<f64>,
    range: Option<(f64, f64)>,
}

fn against_row(samples: &[Sample], report: &ScenarioReport, label: &str) -> Vec<Against> {
    let base = samples.iter().position(|r| r.label == label);
    (0..samples.len())
        .map(|i| {
            let ratios: Vec<f64> = base
                .and_then(|b| Some((report.per_rep.get(i)?, report.per_rep.get(b)?)))
                .map(|(mine, base)| {
                    mine.iter()
                        .zip(base)
                        .map(|(a, b)| a.client_cpu_us_per_host / b.client_cpu_us_per_host)
                        .collect()
                })
                .unwrap_or_default();
            Against {
                median: stats::median(&ratios),
                range: ratios
                    .iter()
                    .fold(None, |r: Option<(f64, f64)>, &x| match r {
                        None => Some((x, x)),
                        Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
                    }),
            }
        })
        .collect()
}

/// The note that answers the scenario's question: how many times less client CPU per host than
/// parallel-ssh each fleetsh Python row uses.
fn less_than_parallel_ssh(samples: &[Sample], x_pssh: &[Against]) -> String {
    let parts: Vec<String> = samples
        .iter()
        .zip(x_pssh)
        .filter(|(s, _)| s.label.starts_with("fleetsh-python"))
        .map(|(s, a)| {
            let times = |x: f64| 1.0 / x;
            let range = a.range.map_or(String::new(), |(lo, hi)| {
                format!(" ({:.1}-{:.1} over the repetitions)", times(hi), times(lo))
            });
            format!(
                "{}: {} times less client CPU per host than parallel-ssh{range}",
                s.label,
                num(a.median.map(times), 1)
            )
        })
        .collect();
    parts.join("; ")
}

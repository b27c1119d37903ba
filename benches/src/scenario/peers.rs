//! `peers`: `echo hello` with the `fleetsh` CLI and with the tools it replaces (`crate::peers`)
//! on the same simulated fleet, each row's client CPU against fleetsh's with the same key
//! exchange.

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::{Client, Kex};
use crate::peers;
use crate::print::{cpu_resolution_note, generic_table};
use crate::stats;
use crate::table::num;

/// Runs `echo hello` on `hosts` hosts with fleetsh (both key exchanges) and with each of `peers`
/// (default: all), after checking that each is installed.
pub fn run(
    bench: &Bench,
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
        let mut s = bench.spec(
            format!("fleetsh {}", kex.name()),
            Client::Engine { shards: 0 },
            hosts,
            fanout,
            cmd,
        );
        s.kex = kex;
        s.cli = Some(bench.fleetsh.clone());
        specs.push(s);
    }
    for &p in &peers {
        let mut s = bench.spec(
            p.name().into(),
            Client::Peer { peer: p },
            hosts,
            fanout,
            cmd,
        );
        s.python = Some(python.to_path_buf());
        specs.push(s);
    }
    let (rows, report) = bench.measure("peers", specs, false)?;
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
                stats::median(&v)
            });
            vec![num(ratio, 1)]
        })
        .collect();
    let table = generic_table(&rows, &[("CPU x fleetsh", "", "")]).with_extra(&extra);
    bench.emit(
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

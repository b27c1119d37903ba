//! `peers`: `echo hello` with the `fleetsh` CLI and with the tools it replaces (`crate::peers`)
//! on the same simulated fleet, each row's client CPU against fleetsh's with the same key
//! exchange. With `--sshd`, on real servers instead: one OpenSSH `sshd` answering every host in
//! a network namespace of the run's own (`crate::sshd_fleet`), every client run in it.

use anyhow::Result;

use crate::bench::{Bench, Servers};
use crate::measure::{Client, Kex};
use crate::peers;
use crate::print::{cpu_resolution_note, generic_table};
use crate::sshd_fleet::SshdFleet;
use crate::stats;
use crate::table::num;

/// Runs `echo hello` on `hosts` hosts with fleetsh (both key exchanges) and with each of `peers`
/// (default: all; with `sshd`, parallel-ssh and asyncssh), after checking that each is
/// installed. With `sshd`, the hosts are one OpenSSH `sshd`'s ([`SshdFleet`]).
pub fn run(
    bench: &Bench,
    hosts: usize,
    fanout: usize,
    peers: &[peers::Peer],
    python: &std::path::Path,
    sshd: bool,
) -> Result<()> {
    let peers = match (peers.is_empty(), sshd) {
        (false, _) => peers.to_vec(),
        (true, false) => peers::Peer::ALL.to_vec(),
        (true, true) => vec![peers::Peer::ParallelSsh, peers::Peer::Asyncssh],
    };
    for &p in &peers {
        peers::check(p, python)?;
    }
    let cmd = "echo hello";
    let mut specs = Vec::new();
    // fleetsh as the peers run: a process started for the run (the CLI).
    for kex in [Kex::Default, Kex::Curve25519] {
        // Against sshd the label says what fleetsh offers first; the kex column what it got.
        let offered = match (sshd, kex) {
            (true, Kex::Default) => "default",
            _ => kex.name(),
        };
        let mut s = bench.spec(
            format!("fleetsh {offered}"),
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
    let servers = if sshd {
        eprintln!("fleetsh-bench peers: starting one sshd for {hosts} hosts");
        Some(SshdFleet::start(hosts)?)
    } else {
        None
    };
    let (mut rows, mut report) = match &servers {
        Some(f) => bench.measure_on("peers", specs, false, Servers::Sshd(f))?,
        None => bench.measure("peers", specs, false)?,
    };
    // Against sshd, the key exchange each client got from it.
    if let Some(f) = &servers {
        for r in rows.iter_mut().chain(report.rows.iter_mut()) {
            r.kex = f.negotiated_kex(&r.kex);
        }
        for r in report.per_rep.iter_mut().flatten() {
            r.kex = f.negotiated_kex(&r.kex);
        }
    }
    // Each row against fleetsh with the same key exchange, paired by repetition.
    let fleetsh_row = |kex: &str| {
        rows.iter()
            .position(|r| r.label == format!("fleetsh {kex}"))
            .or_else(|| {
                rows.iter()
                    .position(|r| r.label.starts_with("fleetsh ") && r.kex == kex)
            })
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
    let title = match &servers {
        Some(_) => format!(
            "peers --sshd: echo hello on {hosts} hosts of one sshd ({}), fanout {fanout}",
            SshdFleet::version()
        ),
        None => format!("peers: echo hello on {hosts} hosts, fanout {fanout}"),
    };
    let mut notes = Vec::new();
    if servers.is_some() {
        notes.push(
            "--sshd: one OpenSSH sshd in a network namespace of the run's own answers every \
             host (127.90.x.y:22, listening on 0.0.0.0, a process per connection); every \
             client and its measurement process run in that namespace. The sim column is \
             sshd's CPU (the listener's and its reaped sessions'). kex: what each client \
             negotiated with it."
                .to_string(),
        );
    }
    drop(servers);
    notes.push(
        "CPU x fleetsh: client CPU per host over fleetsh's with the same key exchange, \
         median of the per-repetition ratios. A peer's key exchange is the first of its \
         offer the simulator has (docs/benchmarks.md, \"Peers\"). Client CPU includes \
         the interpreter's or process's start, as fleetsh's rows include the CLI's; for \
         pdsh, pssh and clush it includes their ssh processes, and peak RSS is their \
         whole process tree's (sampled every 10 ms). Peers report no per-host latency."
            .to_string(),
    );
    notes.push(cpu_resolution_note(&rows));
    bench.emit(&title, &report, &table.table, &notes);
    Ok(())
}

//! `sweep`: `echo hello` on N hosts with the fanout stepped, and optionally the connection rate
//! at the largest fanout: throughput and latency against concurrency.

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::{Client, Spec};
use crate::print::cpu_resolution_note;
use crate::table::{Table, num};

/// Runs `echo hello` on `hosts` hosts at each of `fanouts`, then at each of `rates` with the
/// largest fanout.
pub fn run(bench: &Bench, hosts: usize, fanouts: &[usize], rates: &[f64]) -> Result<()> {
    let cmd = "echo hello";
    let mut specs: Vec<Spec> = fanouts
        .iter()
        .map(|&f| {
            bench.spec(
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
        let mut s = bench.spec(
            format!("fanout {top} rate {r}/s"),
            Client::Engine { shards: 0 },
            hosts,
            top,
            cmd,
        );
        s.rate = Some(r);
        specs.push(s);
    }
    let (rows, report) = bench.measure("sweep", specs, false)?;
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
    bench.emit(
        &format!("fanout sweep: echo hello on {hosts} hosts"),
        &report,
        &t,
        &[cpu_resolution_note(&rows)],
    );
    Ok(())
}

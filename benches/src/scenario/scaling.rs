//! `scaling`: `echo hello` on N hosts with the shard count stepped, against a plain-russh client
//! on one multi-thread and on one current-thread runtime.

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::Client;
use crate::print::generic_table;
use crate::report::{Paired, Ratio};

/// Runs the two baselines and then the engine with each shard count of `shards` (default: 1 up
/// to the CPU count), each compared with the multi-thread baseline.
pub fn run(bench: &Bench, hosts: usize, fanout: usize, shards: &[usize]) -> Result<()> {
    let nproc = bench.machine.nproc;
    let shards: Vec<usize> = if shards.is_empty() {
        (1..=nproc).collect()
    } else {
        shards.to_vec()
    };
    let cmd = "echo hello";
    let mut specs = vec![
        bench.spec(
            format!("plain russh mt({nproc})"),
            Client::PlainMultiThread { workers: nproc },
            hosts,
            fanout,
            cmd,
        ),
        bench.spec(
            "plain russh ct".into(),
            Client::PlainCurrentThread,
            hosts,
            fanout,
            cmd,
        ),
    ];
    for &s in &shards {
        specs.push(bench.spec(
            format!("engine shards={s}"),
            Client::Engine { shards: s },
            hosts,
            fanout,
            cmd,
        ));
    }
    let (rows, mut report) = bench.measure("scaling", specs, false)?;
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
         on one tokio runtime; the engine's per-host code (host::run_host) is private to it"
            .to_string(),
    ];
    if let Some((mt, rest)) = report.per_rep.split_first() {
        report.paired = rest.iter().filter_map(|r| Paired::of(r, mt)).collect();
    }
    if bench.reps > 1 {
        notes.push("per repetition, against the multi-thread baseline run just before it:".into());
        for p in &report.paired {
            notes.push(format!(
                "  {}: hosts/s {}; p99 {}",
                p.label,
                Paired::describe(&p.hosts_per_s_vs_mt, true),
                Paired::describe(&p.p99_vs_mt, false),
            ));
        }
    }
    bench.emit(
        &format!("scaling: echo hello on {hosts} hosts, fanout {fanout}"),
        &report,
        &table.table,
        &notes,
    );
    Ok(())
}

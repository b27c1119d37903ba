//! `idle`: N authenticated sessions held open at once (`sleep S`), the client's RSS per session
//! while all of them are open.

use std::path::PathBuf;

use anyhow::Result;

use crate::bench::Bench;
use crate::measure::Client;
use crate::table::{Table, num};

/// Holds `hosts` sessions open, each running `sleep` (default: max(20, hosts / 200) seconds),
/// with the engine or with each of `engines`.
pub fn run(
    bench: &Bench,
    hosts: usize,
    sleep: Option<u64>,
    engines: &[(String, PathBuf)],
) -> Result<()> {
    let sleep = sleep.unwrap_or_else(|| (hosts as u64 / 200).max(20));
    let mut spec = bench.spec(
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
    let (rows, report) = bench.measure("idle", specs, false)?;
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
    bench.emit(
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

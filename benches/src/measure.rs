//! One measurement, run in a fresh process (peak RSS is process-lifetime): the client under
//! test, its CPU and memory, the simulator's CPU over the same interval, and per-host timings.
//! This module runs the client the spec names and turns what it measured into a [`Sample`].

mod child;
mod cli;
mod engine;
mod interval;
mod outcome;
mod peer;
mod plain;
mod spec;

use std::collections::BTreeMap;

use anyhow::Result;
use fleetsh::{HostList, HostTarget};

pub use outcome::Sample;
pub use spec::{Client, JournalSpec, Kex, PutSpec, Spec};

use cli::run_cli;
use engine::run_engine;
use interval::Measured;
use peer::run_peer;
use plain::run_plain;

use crate::plain::Flavor;
use crate::procfs;
use crate::stats;

/// Runs one measurement in this process and returns its sample.
pub fn run(spec: &Spec) -> Result<Sample> {
    let _ = fleetsh::limits::raise_nofile_limit();
    let targets = load_targets(spec)?;
    let measured = match spec.client {
        Client::Engine { shards } => match &spec.cli {
            Some(exe) => run_cli(spec, exe, shards, &targets)?,
            None => run_engine(spec, shards, targets)?,
        },
        Client::PlainMultiThread { workers } => {
            run_plain(spec, Flavor::MultiThread(workers), workers, targets)?
        }
        Client::PlainCurrentThread => run_plain(spec, Flavor::CurrentThread, 1, targets)?,
        Client::Peer { peer } => run_peer(spec, peer, &targets)?,
    };
    summarize(spec, measured)
}

fn load_targets(spec: &Spec) -> Result<Vec<HostTarget>> {
    let mut list = HostList::new();
    list.include_file(&spec.hosts_file)?;
    let mut v = list.build()?;
    anyhow::ensure!(
        v.len() >= spec.hosts,
        "the fleet has {} hosts, {} asked",
        v.len(),
        spec.hosts
    );
    v.truncate(spec.hosts);
    Ok(v)
}

fn summarize(spec: &Spec, m: Measured) -> Result<Sample> {
    let clk_tck = procfs::clock_ticks_per_second();
    let n = m.samples.len().max(1) as f64;
    let mut errors = BTreeMap::new();
    for s in &m.samples {
        if let Some(e) = &s.error {
            *errors.entry(e.clone()).or_insert(0) += 1;
        }
    }
    let failures = errors.values().sum();
    let client_cpu_s = m.cpu_ticks as f64 / clk_tck as f64;
    let sim_cpu_s = m.sim_ticks as f64 / clk_tck as f64;
    let plateau = m
        .rss
        .map(|(before, rss)| stats::plateau(before, &rss, &m.samples, m.first_finish));
    Ok(Sample {
        label: spec.label.clone(),
        client: spec.client.name(),
        threads: m.threads,
        kex: match spec.client {
            Client::Peer { peer } => peer.kex().into(),
            _ => spec.kex.name().into(),
        },
        command: spec.command.clone(),
        hosts: m.samples.len(),
        fanout: spec.fanout,
        rate: spec.rate,
        ok: m.samples.len() - failures,
        failures,
        output_bytes_per_host: m.samples.iter().map(|s| s.output_bytes as f64).sum::<f64>() / n,
        errors,
        wall_s: m.wall.as_secs_f64(),
        hosts_per_s: n / m.wall.as_secs_f64().max(1e-9),
        clk_tck,
        client_cpu_s,
        client_cpu_us_per_host: client_cpu_s * 1e6 / n,
        sim_cpu_s,
        sim_cpu_us_per_host: sim_cpu_s * 1e6 / n,
        other_cores: (m.machine_ticks.0 as f64 - m.cpu_ticks as f64 - m.sim_ticks as f64).max(0.0)
            / clk_tck as f64
            / m.wall.as_secs_f64().max(1e-9),
        steal_cores: m.machine_ticks.1 as f64 / clk_tck as f64 / m.wall.as_secs_f64().max(1e-9),
        client_sim_cpu_ratio: (sim_cpu_s > 0.0).then(|| client_cpu_s / sim_cpu_s),
        setup_ms: stats::ms(m.setup),
        peak_rss_kib: match m.peak_rss_kib {
            Some(k) => k,
            None => procfs::status_kib("VmHWM")?,
        },
        phases: stats::phases(&m.samples),
        plateau,
        floor_us: None,
    })
}

//! The fleetsh engine as the client, in the measuring process: `run` (or `copy_to` for an
//! upload) on the spec's hosts, one host sample per `Finished` event.

use std::time::Instant;

use anyhow::{Context, Result};
use fleetsh::{Engine, Event, HostKeyCheck, HostTarget, Job, PutPlan};

use super::interval::{Interval, Measured};
use super::spec::{Kex, Spec, job_limits};
use crate::sample::HostSample;

/// Runs the spec's command (or upload) with the engine in this process on `shards` shards.
pub fn run_engine(spec: &Spec, shards: usize, targets: Vec<HostTarget>) -> Result<Measured> {
    let (connect_timeout, command_timeout) = job_limits(spec);
    let setup = Instant::now();
    let mut builder = Engine::builder();
    if let Some(rate) = spec.rate {
        builder = builder.rate(rate);
    }
    let engine = builder
        .shards(shards)
        .fanout(spec.fanout)
        .identity_file(&spec.identity)
        .known_hosts(&spec.known_hosts)
        .host_key_check(HostKeyCheck::Strict)
        .no_agent()
        .user("bench")
        .kex(match spec.kex {
            Kex::Default => fleetsh::Kex::Default,
            Kex::Curve25519 => fleetsh::Kex::Curve25519,
        })
        .build()
        .context("building the engine")?;
    let mut job = Job::new(spec.command.clone());
    job.connect_timeout = connect_timeout;
    job.command_timeout = Some(command_timeout);
    // The file is read once, before the measured interval (as `fleetsh put` reads it once for
    // every host).
    let plan = match &spec.put {
        Some(p) => Some(
            PutPlan::from_local(std::slice::from_ref(&p.local), &p.remote, false, false)
                .context("reading the file to upload")?,
        ),
        None => None,
    };
    let setup = setup.elapsed();

    let interval = Interval::begin(spec)?;
    let t0 = interval.t0;
    let mut handle = match plan {
        Some(plan) => engine.copy_to(targets, plan, &job),
        None => engine.run(targets, job),
    }
    .context("starting the run")?;
    let mut samples = Vec::with_capacity(spec.hosts);
    let mut first = None;
    while let Some(ev) = handle.next_event() {
        if let Event::Finished(r) = ev {
            first.get_or_insert_with(|| t0.elapsed());
            let error = match (&r.error, r.is_ok()) {
                (_, true) => None,
                (Some(e), false) => Some(e.kind.as_str().to_string()),
                (None, false) => Some(format!("{:?}", r.outcome()).to_lowercase()),
            };
            samples.push(HostSample {
                error,
                output_bytes: r.stdout.len()
                    + r.stderr.len()
                    + r.transfer
                        .map_or(0, |t| usize::try_from(t.bytes).unwrap_or(usize::MAX)),
                timings: r.timings,
            });
        }
    }
    let shards = handle.shards();
    let report = handle.join();
    anyhow::ensure!(
        report.results.len() == spec.hosts,
        "{} results for {} hosts",
        report.results.len(),
        spec.hosts
    );
    interval.end(shards, setup, samples, first)
}

//! `fleetsh bench`: a command reading a small file (26,000 bytes by default, the workload of
//! parallel-ssh's published client benchmark) on any fleet, concurrency stepped, with the
//! median time of each operation per step in the table form of parallel-ssh's published
//! benchmark.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use fleetsh::config::Flags;
use fleetsh::{Engine, HostResult, HostTarget, Job, Timings};

use crate::args::BenchArgs;
use crate::error::usage;
use crate::settings::setup;

/// `fleetsh bench -w HOSTS`: the table of every step on stdout; exit status 1 when a host
/// failed in some step.
pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let s = setup(
        &a.common,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let mut job = s.job.stream_output(false);
    job.command = a.command.clone();
    job.template = true;
    job.validate().map_err(usage)?;
    let engine = s.engine;
    eprintln!(
        "fleetsh bench: {} hosts, steps {:?}",
        s.hosts.len(),
        a.steps
    );
    let rows = run_steps(&|c| Ok(engine.with_fanout(c)), &s.hosts, &job, &a.steps)?;
    let mut out = io::stdout().lock();
    print(&rows, &a.command, &mut out)?;
    drop(s.fleet);
    let failed = rows.iter().any(|r| r.ok < r.hosts);
    Ok(ExitCode::from(u8::from(failed)))
}

/// One step's measurements.
struct Row {
    pub concurrency: usize,
    pub hosts: usize,
    pub ok: usize,
    pub wall: Duration,
    pub cpu: Option<Duration>,
    pub connect_auth: Option<f64>,
    pub channel_open: Option<f64>,
    pub exec: Option<f64>,
    pub read: Option<f64>,
    pub close: Option<f64>,
    pub total_p50: Option<f64>,
    pub total_p99: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median (nearest rank) of the values `f` gives for the successful results.
fn median(results: &[&HostResult], f: impl Fn(&Timings) -> Option<Duration>) -> Option<f64> {
    let mut v: Vec<f64> = results
        .iter()
        .filter_map(|r| f(&r.timings))
        .map(ms)
        .collect();
    percentile(&mut v, 50)
}

fn percentile(v: &mut [f64], p: usize) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (v.len() * p).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

/// Runs `job` on `hosts` once per concurrency step (the engine's fanout).
fn run_steps(
    engine_for: &dyn Fn(usize) -> anyhow::Result<Engine>,
    hosts: &[HostTarget],
    job: &Job,
    steps: &[usize],
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &c in steps {
        let engine = engine_for(c)?;
        let cpu0 = fleetsh::limits::cpu_time();
        let t0 = Instant::now();
        let report = engine.run(hosts.to_vec(), job.clone())?.join();
        let wall = t0.elapsed();
        let cpu = fleetsh::limits::cpu_time()
            .zip(cpu0)
            .map(|(b, a)| b.saturating_sub(a));
        let ok: Vec<&HostResult> = report
            .results
            .iter()
            .map(AsRef::as_ref)
            .filter(|r| r.is_ok())
            .collect();
        let mut totals: Vec<f64> = ok.iter().map(|r| ms(r.timings.total)).collect();
        rows.push(Row {
            concurrency: c,
            hosts: report.results.len(),
            ok: ok.len(),
            wall,
            cpu,
            connect_auth: median(&ok, |t| Some(t.connect? + t.handshake_auth?)),
            channel_open: median(&ok, |t| t.channel_open),
            exec: median(&ok, |t| t.exec),
            read: median(&ok, |t| t.read),
            close: median(&ok, |t| t.close),
            total_p50: percentile(&mut totals, 50),
            total_p99: percentile(&mut totals, 99),
        });
    }
    Ok(rows)
}

/// Prints the table (Markdown, so it pastes into docs as is).
fn print(rows: &[Row], command: &str, w: &mut impl Write) -> std::io::Result<()> {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    writeln!(
        w,
        "`{command}`, medians per operation (ms) over the hosts that succeeded\n"
    )?;
    writeln!(
        w,
        "| concurrency | hosts | ok | connect+auth | channel open | execute | channel read | close+exit | total p50 | total p99 | hosts/s | client CPU us/host |"
    )?;
    writeln!(
        w,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for r in rows {
        let rate = r.hosts as f64 / r.wall.as_secs_f64().max(1e-9);
        let cpu = r.cpu.map_or_else(
            || "-".to_string(),
            |c| format!("{:.0}", c.as_secs_f64() * 1e6 / r.hosts.max(1) as f64),
        );
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            r.concurrency,
            r.hosts,
            r.ok,
            f(r.connect_auth),
            f(r.channel_open),
            f(r.exec),
            f(r.read),
            f(r.close),
            f(r.total_p50),
            f(r.total_p99),
            rate,
            cpu
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 50), Some(3.0));
        assert_eq!(percentile(&mut v, 99), Some(5.0));
        assert_eq!(percentile(&mut [], 50), None);
    }
}

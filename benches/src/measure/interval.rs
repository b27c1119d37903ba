//! The measured interval of a run: the CPU counters of this process, of the simulator and of the
//! machine at its start and end, the RSS before it and, for idle sessions, sampled during it;
//! and what the run produced ([`Measured`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::spec::Spec;
use crate::procfs;
use crate::sample::HostSample;

/// The servers' CPU: each process's own and that of the children it reaped (none for the
/// simulator; a forking `sshd`'s sessions once they ended).
fn sim_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| procfs::cpu_ticks_with_children(&p.to_string()).ok())
        .sum()
}

/// Polls VmRSS every 20 ms until stopped (or 1 hour of samples), with the time of each sample.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Duration, u64)>>,
}

impl RssSampler {
    fn start(t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut v = Vec::new();
            while !flag.load(Ordering::Relaxed) && v.len() < 180_000 {
                if let Ok(kib) = procfs::status_kib("VmRSS") {
                    v.push((t0.elapsed(), kib));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            v
        });
        RssSampler { stop, thread }
    }

    fn finish(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// What a run produced, before the statistics.
pub struct Measured {
    pub threads: usize,
    pub setup: Duration,
    pub samples: Vec<HostSample>,
    pub cpu_ticks: u64,
    pub sim_ticks: u64,
    pub machine_ticks: (u64, u64),
    pub wall: Duration,
    pub rss: Option<(u64, Vec<(Duration, u64)>)>,
    pub first_finish: Duration,
    /// Peak RSS of the client when it is not this process.
    pub peak_rss_kib: Option<u64>,
}

/// The measured interval: RSS before, CPU counters, the optional RSS sampler.
pub struct Interval<'a> {
    spec: &'a Spec,
    before_kib: u64,
    cpu0: u64,
    sim0: u64,
    machine0: (u64, u64),
    pub t0: Instant,
    sampler: Option<RssSampler>,
}

impl<'a> Interval<'a> {
    /// Starts the interval for `spec`: RSS and CPU counters now, and the RSS sampler when the
    /// spec asks for it.
    pub fn begin(spec: &'a Spec) -> Result<Self> {
        let before_kib = procfs::status_kib("VmRSS")?;
        let cpu0 = procfs::cpu_ticks("self")?;
        let sim0 = sim_ticks(&spec.sim_pids);
        let machine0 = procfs::machine_ticks()?;
        let t0 = Instant::now();
        Ok(Interval {
            spec,
            before_kib,
            cpu0,
            sim0,
            machine0,
            t0,
            sampler: spec.sample_rss.then(|| RssSampler::start(t0)),
        })
    }

    /// Ends the interval and returns what the run produced over it.
    pub fn end(
        self,
        threads: usize,
        setup: Duration,
        samples: Vec<HostSample>,
        first_finish: Option<Duration>,
    ) -> Result<Measured> {
        let wall = self.t0.elapsed();
        let cpu_ticks = procfs::cpu_ticks("self")?.saturating_sub(self.cpu0);
        let sim_ticks = sim_ticks(&self.spec.sim_pids).saturating_sub(self.sim0);
        let (busy, steal) = procfs::machine_ticks()?;
        Ok(Measured {
            machine_ticks: (
                busy.saturating_sub(self.machine0.0),
                steal.saturating_sub(self.machine0.1),
            ),
            threads,
            setup,
            samples,
            cpu_ticks,
            sim_ticks,
            wall,
            rss: self.sampler.map(|s| (self.before_kib, s.finish())),
            first_finish: first_finish.unwrap_or(wall),
            peak_rss_kib: None,
        })
    }
}

//! Statistics: nearest-rank percentiles, the medians of a run's connection phases over its
//! hosts, the RSS plateau while every session is open, and the median of a row's repetitions or
//! rounds.

use std::time::Duration;

use fleetsh::Timings;
use serde::{Deserialize, Serialize};

use crate::sample::HostSample;

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Median of `f` over the hosts where it is known, in milliseconds.
fn median_of(samples: &[&HostSample], f: impl Fn(&Timings) -> Option<Duration>) -> Option<f64> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter_map(|s| f(&s.timings))
        .map(ms)
        .collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

/// Medians and percentiles of the per-host timings, in milliseconds (successful hosts only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Median of connect + handshake_auth.
    pub connect_auth_ms: Option<f64>,
    /// Median channel open.
    pub channel_open_ms: Option<f64>,
    /// Median exec (request to confirmation).
    pub exec_ms: Option<f64>,
    /// Median read (confirmation to end of output).
    pub read_ms: Option<f64>,
    /// Median close (end of output to channel close).
    pub close_ms: Option<f64>,
    /// Median total.
    pub total_p50_ms: Option<f64>,
    /// 99th percentile of total.
    pub total_p99_ms: Option<f64>,
    /// Largest total.
    pub total_max_ms: Option<f64>,
}

/// Phase statistics over the successful hosts.
pub fn phases(samples: &[HostSample]) -> Phases {
    // Peers report no per-host timings (total zero): they have no latencies to show.
    let ok: Vec<&HostSample> = samples
        .iter()
        .filter(|s| s.error.is_none() && !s.timings.total.is_zero())
        .collect();
    let mut totals: Vec<f64> = ok.iter().map(|s| ms(s.timings.total)).collect();
    totals.sort_by(f64::total_cmp);
    Phases {
        connect_auth_ms: median_of(&ok, |t| Some(t.connect? + t.handshake_auth?)),
        channel_open_ms: median_of(&ok, |t| t.channel_open),
        exec_ms: median_of(&ok, |t| t.exec),
        read_ms: median_of(&ok, |t| t.read),
        close_ms: median_of(&ok, |t| t.close),
        total_p50_ms: percentile(&totals, 50.0),
        total_p99_ms: percentile(&totals, 99.0),
        total_max_ms: totals.last().copied(),
    }
}

/// The RSS plateau while every session is open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plateau {
    /// RSS before the run.
    pub before_kib: u64,
    /// Highest RSS sampled while every session was open (or, if they never all were, before the
    /// first host finished).
    pub plateau_kib: u64,
    /// (plateau - before) / hosts.
    pub per_session_kib: f64,
    /// When the last host had its command running (seconds after the run started).
    pub last_ready_s: f64,
    /// When the first host finished.
    pub first_finish_s: f64,
    /// Whether every session was open at once (the last ready before the first finished).
    pub all_open: bool,
    /// Samples in the plateau window.
    pub window_samples: usize,
}

/// The RSS plateau of a run of idle sessions: the highest of `samples` while every session was
/// open (or, if they never all were, before the first host finished) against `before_kib`.
pub fn plateau(
    before_kib: u64,
    samples: &[(Duration, u64)],
    hosts: &[HostSample],
    first_finish: Duration,
) -> Plateau {
    let last_ready = hosts
        .iter()
        .filter_map(|h| {
            let t = h.timings;
            Some(t.connect? + t.handshake_auth? + t.channel_open? + t.exec?)
        })
        .max()
        .unwrap_or_default();
    let all_open = hosts.iter().all(|h| h.timings.exec.is_some()) && last_ready < first_finish;
    let window: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t < first_finish && (!all_open || *t >= last_ready))
        .map(|&(_, k)| k)
        .collect();
    let plateau_kib = window.iter().copied().max().unwrap_or(before_kib);
    Plateau {
        before_kib,
        plateau_kib,
        per_session_kib: plateau_kib.saturating_sub(before_kib) as f64 / hosts.len().max(1) as f64,
        last_ready_s: last_ready.as_secs_f64(),
        first_finish_s: first_finish.as_secs_f64(),
        all_open,
        window_samples: window.len(),
    }
}

/// Median of `v` (upper median for even lengths); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}

//! What a scenario reports: the machine, the rows (the repetition with the median wall time),
//! how each row varied over the repetitions, and the ratios of `scaling` to its baseline.

use serde::Serialize;

use crate::measure::Sample;

/// The machine, as recorded with every scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub clk_tck: u64,
    pub nofile_hard_limit: Option<u64>,
}

/// One scenario's output.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: &'static str,
    pub date: String,
    pub machine: Machine,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    pub sim_processes: usize,
    pub sim_threads: usize,
    pub sim_latency_ms: Option<u64>,
    pub reps: usize,
    pub rows: Vec<Sample>,
    /// Per row: the range over the repetitions.
    pub spread: Vec<Spread>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Per row: each repetition's ratio to the multi-thread baseline of the same repetition
    /// (scaling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paired: Vec<Paired>,
    /// Per row: every repetition's sample, in order.
    #[serde(skip)]
    pub per_rep: Vec<Vec<Sample>>,
}

/// How much a row varied over its repetitions.
#[derive(Debug, Serialize)]
pub struct Spread {
    pub label: String,
    pub hosts_per_s: [f64; 2],
    pub client_cpu_us_per_host: [f64; 2],
    /// Client CPU over the floor measured beside each sample, when it was.
    pub x_floor: Option<[f64; 2]>,
}

impl Spread {
    pub fn of(v: &[Sample]) -> Option<Spread> {
        let first = v.first()?;
        let range = |f: fn(&Sample) -> f64| {
            v.iter()
                .map(f)
                .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], x| {
                    [lo.min(x), hi.max(x)]
                })
        };
        let x_floor = v
            .iter()
            .all(|s| s.floor_us.is_some())
            .then(|| range(|s| s.client_cpu_us_per_host / s.floor_us.unwrap_or(f64::NAN)));
        Some(Spread {
            label: first.label.clone(),
            hosts_per_s: range(|s| s.hosts_per_s),
            client_cpu_us_per_host: range(|s| s.client_cpu_us_per_host),
            x_floor,
        })
    }
}

/// A client compared with the multi-thread baseline (scaling).
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub label: String,
    pub hosts_per_s_vs_mt: f64,
    pub p99_vs_mt: Option<f64>,
    pub cpu_per_host_vs_mt: f64,
}

/// A client against the multi-thread baseline, repetition by repetition: each ratio compares
/// two runs made one after the other (the machine's load moves between repetitions more than
/// the clients differ, so a ratio within one repetition is the steadier measure).
#[derive(Debug, Serialize)]
pub struct Paired {
    pub label: String,
    pub hosts_per_s_vs_mt: Vec<f64>,
    pub p99_vs_mt: Vec<f64>,
}

impl Paired {
    pub fn of(row: &[Sample], mt: &[Sample]) -> Option<Paired> {
        let label = row.first()?.label.clone();
        let pairs = || row.iter().zip(mt);
        Some(Paired {
            label,
            hosts_per_s_vs_mt: pairs()
                .map(|(r, m)| r.hosts_per_s / m.hosts_per_s)
                .collect(),
            p99_vs_mt: pairs()
                .filter_map(|(r, m)| {
                    r.phases
                        .total_p99_ms
                        .zip(m.phases.total_p99_ms)
                        .map(|(a, b)| a / b)
                })
                .collect(),
        })
    }

    /// `1.12 0.97 1.30 (median 1.12; > 1 in 2 of 3)`.
    pub fn describe(v: &[f64], better_above: bool) -> String {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let better = v
            .iter()
            .filter(|&&x| if better_above { x > 1.0 } else { x < 1.0 })
            .count();
        let each: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
        format!(
            "{} (median {median:.2}; {} 1 in {better} of {})",
            each.join(" "),
            if better_above { ">" } else { "<" },
            v.len()
        )
    }
}

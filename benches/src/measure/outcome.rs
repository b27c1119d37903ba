//! What a measurement process reports: the [`Sample`] of one run, sent back as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{Phases, Plateau};

/// The outcome of one measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Row label.
    pub label: String,
    /// Client (table name).
    pub client: String,
    /// Shards (engine) or worker threads (baseline); 1 for a current-thread baseline.
    pub threads: usize,
    /// Key exchange.
    pub kex: String,
    /// Command.
    pub command: String,
    /// Hosts.
    pub hosts: usize,
    /// Hosts in flight.
    pub fanout: usize,
    /// Connection rate limit, if any.
    pub rate: Option<f64>,
    /// Hosts that exited 0.
    pub ok: usize,
    /// Hosts that did not.
    pub failures: usize,
    /// Mean bytes of output received per host (checks that output was read in full).
    pub output_bytes_per_host: f64,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// Wall time of the run.
    pub wall_s: f64,
    /// hosts / wall.
    pub hosts_per_s: f64,
    /// Clock ticks per second of the CPU counters.
    pub clk_tck: u64,
    /// Client user+system CPU over the run.
    pub client_cpu_s: f64,
    /// client_cpu / hosts.
    pub client_cpu_us_per_host: f64,
    /// Simulator user+system CPU over the run (all sim processes).
    pub sim_cpu_s: f64,
    /// sim_cpu / hosts.
    pub sim_cpu_us_per_host: f64,
    /// CPU used by every other process on the machine over the run, in cores
    /// (machine busy time from `/proc/stat` minus client and sim, divided by wall time).
    pub other_cores: f64,
    /// CPU time stolen by the hypervisor over the run, in cores.
    pub steal_cores: f64,
    /// client_cpu / sim_cpu (none if the sim used no measurable CPU).
    pub client_sim_cpu_ratio: Option<f64>,
    /// Client engine build (keys, known_hosts) time, outside the measured interval.
    pub setup_ms: f64,
    /// VmHWM at the end (process lifetime: this process did nothing else).
    pub peak_rss_kib: u64,
    /// Timings.
    pub phases: Phases,
    /// Idle-session plateau, when sampled.
    pub plateau: Option<Plateau>,
    /// The client's crypto floor per handshake for this sample's key exchange, measured by the
    /// harness just before this sample (`echo`, `kex`): the machine's speed at that minute.
    #[serde(default)]
    pub floor_us: Option<f64>,
}

//! One measurement, run in a fresh process (peak RSS is process-lifetime): the client under
//! test, its CPU and memory, the simulator's CPU over the same interval, and per-host timings.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fleetsh::{Engine, Event, HostKeyCheck, HostList, HostTarget, Job, PutPlan, Timings};
use serde::{Deserialize, Serialize};

use crate::peers::{self, Peer};
use crate::plain::{self, Flavor, Plain};
use crate::procfs;
use crate::sample::HostSample;
use crate::sample::write_hosts_file;

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Client {
    /// The fleetsh engine with this many shards.
    Engine {
        /// Shard threads.
        shards: usize,
    },
    /// Plain russh, one multi-thread tokio runtime, a task per host.
    PlainMultiThread {
        /// Worker threads.
        workers: usize,
    },
    /// Plain russh, one current-thread tokio runtime.
    PlainCurrentThread,
    /// A tool fleetsh replaces, in a child process (`crate::peers`).
    Peer {
        /// Which.
        peer: Peer,
    },
}

impl Client {
    /// A short name for tables.
    pub fn name(self) -> String {
        match self {
            Client::Engine { shards } => format!("engine shards={shards}"),
            Client::PlainMultiThread { workers } => format!("plain russh mt({workers})"),
            Client::PlainCurrentThread => "plain russh ct".into(),
            Client::Peer { peer } => peer.name().into(),
        }
    }
}

/// Key-exchange preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kex {
    /// russh's default order: `mlkem768x25519-sha256` first.
    Default,
    /// `curve25519-sha256` first, the rest of russh's order after it.
    Curve25519,
}

impl Kex {
    /// The name of the algorithm this preference negotiates with the sim.
    pub fn name(self) -> &'static str {
        match self {
            Kex::Default => "mlkem768x25519",
            Kex::Curve25519 => "curve25519",
        }
    }
}

/// What a measurement process is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Row label.
    pub label: String,
    /// Client under test.
    pub client: Client,
    /// Key exchange.
    pub kex: Kex,
    /// Hosts (the first N of the hosts file).
    pub hosts: usize,
    /// Hosts in flight.
    pub fanout: usize,
    /// New connections per second across all shards (engine only), if limited.
    pub rate: Option<f64>,
    /// The command.
    pub command: String,
    /// Connect timeout (engine: TCP + handshake + auth per attempt).
    pub connect_timeout_s: f64,
    /// Command timeout.
    pub command_timeout_s: f64,
    /// Merged hosts file.
    pub hosts_file: PathBuf,
    /// Merged known_hosts.
    pub known_hosts: PathBuf,
    /// Client key.
    pub identity: PathBuf,
    /// The sims' PIDs (their CPU is read over the same interval).
    pub sim_pids: Vec<u32>,
    /// Poll RSS during the run and report the plateau (idle sessions).
    pub sample_rss: bool,
    /// Upload this file instead of running `command` (engine only).
    #[serde(default)]
    pub put: Option<PutSpec>,
    /// Run this `fleetsh` binary (`fleetsh run -H ... -o json`) as the client, in a child
    /// process, instead of the engine in this process (engine clients only): compares builds of
    /// the CLI, e.g. with another global allocator.
    #[serde(default)]
    pub cli: Option<PathBuf>,
    /// The Python interpreter of the Python peers (default `python3`).
    #[serde(default)]
    pub python: Option<PathBuf>,
}

/// An upload in place of the command: `local` to `remote` on every host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutSpec {
    /// The local file.
    pub local: PathBuf,
    /// The remote path.
    pub remote: String,
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

/// The russh client configuration for `kex` (always with `nodelay`): the engine's default
/// with, for curve25519, the key exchanges as `--kex curve25519` orders them (everything else,
/// the ciphers included, stays the engine's).
pub fn client_config(kex: Kex) -> russh::client::Config {
    let mut config = fleetsh_shard::default_client_config();
    if kex == Kex::Curve25519 {
        config.preferred.kex = fleetsh_shard::curve25519_first(&config.preferred.kex).into();
    }
    config
}

fn ms(d: Duration) -> f64 {
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

fn median_of(samples: &[&HostSample], f: impl Fn(&Timings) -> Option<Duration>) -> Option<f64> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter_map(|s| f(&s.timings))
        .map(ms)
        .collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
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

fn sim_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| procfs::cpu_ticks(&p.to_string()).ok())
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

fn plateau(
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

/// What a run produced, before the statistics.
struct Measured {
    threads: usize,
    setup: Duration,
    samples: Vec<HostSample>,
    cpu_ticks: u64,
    sim_ticks: u64,
    machine_ticks: (u64, u64),
    wall: Duration,
    rss: Option<(u64, Vec<(Duration, u64)>)>,
    first_finish: Duration,
    /// Peak RSS of the client when it is not this process.
    peak_rss_kib: Option<u64>,
}

/// The measured interval: RSS before, CPU counters, the optional RSS sampler.
struct Interval<'a> {
    spec: &'a Spec,
    before_kib: u64,
    cpu0: u64,
    sim0: u64,
    machine0: (u64, u64),
    t0: Instant,
    sampler: Option<RssSampler>,
}

impl<'a> Interval<'a> {
    fn begin(spec: &'a Spec) -> Result<Self> {
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

    fn end(
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

fn job_limits(spec: &Spec) -> (Duration, Duration) {
    (
        Duration::from_secs_f64(spec.connect_timeout_s),
        Duration::from_secs_f64(spec.command_timeout_s),
    )
}

fn run_engine(spec: &Spec, shards: usize, targets: Vec<HostTarget>) -> Result<Measured> {
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

/// The CLI as the client: `EXE run` on the spec's hosts with `-o json`, in a child process. Its
/// CPU is `cutime + cstime` of this process (the child is the only one it waits for), its peak
/// RSS the last `VmHWM` polled every 10 ms from `/proc/<pid>/status` (the peak of the last
/// 10 ms before it exits may be missed), its timings those of its JSON lines. The interval runs
/// from just before the spawn to the child's exit, so it includes the CLI's start-up (parsing
/// the key and the fleet's known_hosts: tens of ms) and the encoding of its output.
fn run_cli(
    spec: &Spec,
    exe: &std::path::Path,
    shards: usize,
    targets: &[HostTarget],
) -> Result<Measured> {
    use std::process::Command;

    let dir = tempfile::tempdir().context("temporary directory")?;
    let hosts = dir.path().join("hosts");
    write_hosts_file(&hosts, targets, true)?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("-H")
        .arg(&hosts)
        .args([
            "-l",
            "bench",
            "--no-agent",
            "--no-ssh-config",
            "--no-progress",
        ])
        .args(["--host-key-check", "strict", "-o", "json"])
        .arg("-i")
        .arg(&spec.identity)
        .arg("--known-hosts")
        .arg(&spec.known_hosts)
        .arg("-f")
        .arg(spec.fanout.to_string())
        .arg("-t")
        .arg(spec.connect_timeout_s.to_string())
        .arg("-u")
        .arg(spec.command_timeout_s.to_string())
        .arg("--kex")
        .arg(match spec.kex {
            Kex::Default => "default",
            Kex::Curve25519 => "curve25519",
        })
        // An empty config directory: no user config file, no groups.
        .env("XDG_CONFIG_HOME", dir.path());
    if shards > 0 {
        cmd.arg("--shards").arg(shards.to_string());
    }
    if let Some(rate) = spec.rate {
        cmd.arg("--rate").arg(rate.to_string());
    }
    cmd.arg("--").args(spec.command.split_ascii_whitespace());

    let threads = if shards > 0 { shards } else { procfs::nproc() };
    let mut samples = Vec::with_capacity(spec.hosts);
    let (mut m, status, _) = run_child_client(spec, cmd, threads, Watch::default(), |line| {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return false;
        };
        samples.push(cli_sample(&v));
        true
    })?;
    anyhow::ensure!(
        samples.len() == spec.hosts,
        "{} results for {} hosts ({status})",
        samples.len(),
        spec.hosts
    );
    m.samples = samples;
    Ok(m)
}

/// How [`run_child_client`] watches its child beyond CPU and stdout.
#[derive(Debug, Clone, Copy, Default)]
struct Watch {
    /// Also sample the summed RSS of the child's process tree (tools that spawn `ssh`).
    tree_rss: bool,
    /// Collect the child's stderr lines (still echoed to ours) instead of inheriting it.
    stderr: bool,
}

/// Runs `cmd` as the client over the measured interval and hands each line of its stdout
/// (decoded lossily) to `line`, which says whether the line was a host's result: the first one
/// sets the first finish. The client's CPU is the child's and that of its children it waited
/// for (the `ssh` processes of pdsh, pssh and clush); its peak RSS the child's own `VmHWM`, or
/// with `watch.tree_rss` the larger of that and the peak of its process tree's summed `VmRSS`
/// (shared pages counted in each process: an upper bound), sampled every 10 ms. Returns the
/// stderr lines when `watch.stderr`.
fn run_child_client(
    spec: &Spec,
    mut cmd: std::process::Command,
    threads: usize,
    watch: Watch,
    mut line: impl FnMut(&str) -> bool,
) -> Result<(Measured, std::process::ExitStatus, Vec<String>)> {
    use std::io::Write;
    use std::process::Stdio;

    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if watch.stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let cpu0 = procfs::children_cpu_ticks()?;
    let interval = Interval::begin(spec)?;
    let t0 = interval.t0;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let sample_rss = spec.sample_rss;
    let hwm = std::thread::spawn(move || {
        let mut peak = 0;
        let mut rss = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match procfs::pid_status_kib(pid, "VmHWM") {
                Some(k) => peak = peak.max(k),
                None if peak > 0 => break,
                None => {}
            }
            if watch.tree_rss {
                peak = peak.max(procfs::tree_rss_kib(pid));
            }
            if sample_rss && let Some(k) = procfs::pid_status_kib(pid, "VmRSS") {
                rss.push((t0.elapsed(), k));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (peak, rss)
    });
    let errors = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for l in lossy_lines(e) {
                let _ = writeln!(std::io::stderr(), "{l}");
                lines.push(l);
            }
            lines
        })
    });
    let stdout = child.stdout.take().context("no stdout")?;
    let mut first = None;
    for l in lossy_lines(stdout) {
        if line(&l) {
            first.get_or_insert_with(|| t0.elapsed());
        }
    }
    let status = child.wait()?;
    stop.store(true, Ordering::Relaxed);
    let (peak, rss) = hwm.join().unwrap_or_default();
    let errors = errors
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let cpu = procfs::children_cpu_ticks()?.saturating_sub(cpu0);
    let mut m = interval.end(threads, Duration::ZERO, Vec::new(), first)?;
    // This process only waited; the client's CPU is the child's.
    m.cpu_ticks = cpu;
    m.peak_rss_kib = Some(peak);
    // RSS before the run: the child's first sample (its start-up, before any session).
    m.rss = spec
        .sample_rss
        .then(|| (rss.first().map_or(0, |&(_, k)| k), rss));
    Ok((m, status, errors))
}

/// The lines of `r`, each decoded lossily (a client's output need not be UTF-8), until the end
/// or a read error.
fn lossy_lines(r: impl std::io::Read) -> impl Iterator<Item = String> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(r);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    })
}

/// Runs a tool fleetsh replaces (`crate::peers`) as the client: one outcome per host, in the
/// order of `targets`; a host the tool said nothing about failed.
fn run_peer(spec: &Spec, peer: Peer, targets: &[HostTarget]) -> Result<Measured> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let python = spec.python.clone().unwrap_or_else(|| "python3".into());
    let inv = peers::Invocation {
        user: "bench",
        identity: &spec.identity,
        known_hosts: &spec.known_hosts,
        fanout: spec.fanout,
        connect_timeout_s: spec.connect_timeout_s,
        command_timeout_s: spec.command_timeout_s,
        command: &spec.command,
        python: &python,
    };
    let cmd = peers::command(peer, targets, dir.path(), &inv)?;
    let mut seen = HashMap::new();
    let threads = if peer.spawns_ssh() { spec.fanout } else { 1 };
    let watch = Watch {
        tree_rss: peer.spawns_ssh(),
        stderr: true,
    };
    let (mut m, status, errors) = run_child_client(spec, cmd, threads, watch, |line| {
        let before = seen.len();
        peers::parse_line(peer, line, &mut seen);
        seen.len() > before
    })?;
    // Failures the tool reports on stderr override output a host printed first.
    for l in &errors {
        peers::parse_error_line(peer, l, &mut seen);
    }
    m.samples = targets
        .iter()
        .map(|t| match seen.remove(&t.host) {
            Some(peers::Outcome::Ok(bytes)) => HostSample {
                error: None,
                output_bytes: bytes,
                timings: Timings::default(),
            },
            Some(peers::Outcome::Failed(why)) => HostSample::failed(why),
            None => HostSample::failed(format!("no result from {} ({status})", peer.name())),
        })
        .collect();
    Ok(m)
}

/// One host's JSON line of `fleetsh run -o json`.
fn cli_sample(v: &serde_json::Value) -> HostSample {
    let t = &v["timings_ms"];
    let d = |k: &str| t[k].as_f64().map(|ms| Duration::from_secs_f64(ms / 1e3));
    let error = match (v["error"]["kind"].as_str(), v["exit_code"].as_u64()) {
        (Some(kind), _) => Some(kind.to_string()),
        (None, Some(0)) => None,
        (None, code) => Some(format!("exit {code:?}")),
    };
    let text = |k: &str| v[k].as_str().map_or(0, str::len);
    HostSample {
        error,
        output_bytes: text("stdout") + text("stderr"),
        timings: Timings {
            connect: d("connect"),
            handshake_auth: d("handshake_auth"),
            channel_open: d("channel_open"),
            exec: d("exec"),
            read: d("read"),
            close: d("close"),
            first_byte: d("first_byte"),
            total: d("total").unwrap_or_default(),
        },
    }
}

fn run_plain(
    spec: &Spec,
    flavor: Flavor,
    threads: usize,
    targets: Vec<HostTarget>,
) -> Result<Measured> {
    let (connect_timeout, command_timeout) = job_limits(spec);
    let setup = Instant::now();
    let known = fleetsh_shard::KnownHosts::load(&spec.known_hosts, HostKeyCheck::Strict)?;
    let key =
        fleetsh_shard::AuthMaterial::load_keys(std::slice::from_ref(&spec.identity), true, None)?
            .into_iter()
            .next()
            .context("no client key")?;
    let plain = Arc::new(Plain {
        config: Arc::new(client_config(spec.kex)),
        known: Arc::new(known),
        key,
        user: "bench".into(),
        host_timeout: connect_timeout + command_timeout,
    });
    let rt = plain::runtime(flavor)?;
    let setup = setup.elapsed();

    let interval = Interval::begin(spec)?;
    let t0 = interval.t0;
    let mut first = None;
    let samples = plain::run(&rt, plain, targets, &spec.command, spec.fanout, || {
        first.get_or_insert_with(|| t0.elapsed());
    });
    let measured = interval.end(threads, setup, samples, first);
    drop(rt);
    measured
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
        .map(|(before, rss)| plateau(before, &rss, &m.samples, m.first_finish));
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
        setup_ms: ms(m.setup),
        peak_rss_kib: match m.peak_rss_kib {
            Some(k) => k,
            None => procfs::status_kib("VmHWM")?,
        },
        phases: phases(&m.samples),
        plateau,
        floor_us: None,
    })
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

    #[test]
    fn curve25519_first_keeps_the_extension_markers() {
        let c = client_config(Kex::Curve25519);
        assert_eq!(c.preferred.kex.first(), Some(&russh::kex::CURVE25519));
        assert!(
            c.preferred
                .kex
                .contains(&russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT)
        );
        assert!(c.nodelay);
        let d = client_config(Kex::Default);
        assert_eq!(
            d.preferred.kex.first(),
            Some(&russh::kex::MLKEM768X25519_SHA256)
        );
    }
}

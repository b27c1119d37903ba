//! The harness side of a scenario: its settings, a simulated fleet started for a list of
//! measurement specs, each spec measured in a fresh child process (`fleetsh-bench measure`), and
//! the scenario's report printed.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::Cli;
use crate::fleet::{self, Fleet};
use crate::floor;
use crate::measure::{Client, Kex, Sample, Spec};
use crate::procfs;
use crate::report::{Machine, ScenarioReport, Spread};
use crate::sshd_fleet::SshdFleet;
use crate::table::Table;

/// Where the hosts of a measurement are.
#[derive(Clone, Copy)]
pub enum Servers<'a> {
    /// A simulated fleet started for the measurement (`fleetsh sim`).
    Sim,
    /// One OpenSSH `sshd` in a network namespace; the measurement processes run in it.
    Sshd(&'a SshdFleet),
}

/// Pause between measurements so the sim finishes closing the previous run's connections.
const SETTLE: Duration = Duration::from_secs(2);
/// The pause before a measurement of fewer than [`SMALL_RUN`] hosts (the tests' runs).
const SETTLE_SMALL: Duration = Duration::from_millis(200);
/// Below this many hosts a run leaves few connections to close.
const SMALL_RUN: usize = 100;

/// A run of the harness: the options every scenario shares, the binaries it starts, and the
/// machine it runs on.
pub struct Bench {
    /// This binary (each measurement runs in a child process of it).
    pub exe: PathBuf,
    /// The `fleetsh` binary that serves the simulated fleet.
    pub fleetsh: PathBuf,
    /// Also print one JSON object per scenario.
    pub json: bool,
    sim_threads: usize,
    sim_latency: Option<u64>,
    /// Repetitions of each measurement.
    pub reps: usize,
    kex: Kex,
    connect_timeout: f64,
    /// Limit on each measurement process.
    pub child_timeout: Duration,
    /// The machine, as recorded with every scenario.
    pub machine: Machine,
}

impl Bench {
    /// The harness for `cli`'s options; fails when the `fleetsh` binary is missing.
    pub fn new(cli: &Cli) -> Result<Bench> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let fleetsh = match &cli.fleetsh {
            Some(p) => p.clone(),
            None => exe.with_file_name("fleetsh"),
        };
        if !fleetsh.is_file() {
            bail!(
                "{} not found: build it with `cargo build --release -p fleetsh-cli` or pass --fleetsh",
                fleetsh.display()
            );
        }
        if cli.reps == 0 || cli.sim_threads == 0 {
            bail!("--reps and --sim-threads must be at least 1");
        }
        Ok(Bench {
            exe,
            fleetsh,
            json: cli.json,
            sim_threads: cli.sim_threads,
            sim_latency: cli.sim_latency,
            reps: cli.reps,
            kex: cli.kex.into(),
            connect_timeout: cli.connect_timeout,
            child_timeout: Duration::from_secs(cli.child_timeout),
            machine: Machine {
                nproc: procfs::nproc(),
                cpu_model: procfs::cpu_model(),
                clk_tck: procfs::clock_ticks_per_second(),
                nofile_hard_limit: procfs::nofile_hard_limit(),
            },
        })
    }

    /// A spec with this bench's defaults (paths are filled in once the fleet runs).
    pub fn spec(
        &self,
        label: String,
        client: Client,
        hosts: usize,
        fanout: usize,
        cmd: &str,
    ) -> Spec {
        Spec {
            label,
            client,
            kex: self.kex,
            hosts,
            fanout,
            rate: None,
            command: cmd.into(),
            connect_timeout_s: self.connect_timeout,
            command_timeout_s: 120.0,
            hosts_file: PathBuf::new(),
            known_hosts: PathBuf::new(),
            identity: PathBuf::new(),
            sim_pids: Vec::new(),
            sample_rss: false,
            put: None,
            cli: None,
            python: None,
            journal: None,
            user: None,
        }
    }

    /// Starts a fleet big enough for `specs`, runs each spec `reps` times (interleaved) in a fresh
    /// process, and returns, per spec, the sample with the median wall time. With `floor_each`
    /// the crypto floor is measured again before every sample (`Sample::floor_us`), for the
    /// tables that divide by it.
    pub fn measure(
        &self,
        scenario: &'static str,
        specs: Vec<Spec>,
        floor_each: bool,
    ) -> Result<(Vec<Sample>, ScenarioReport)> {
        self.measure_on(scenario, specs, floor_each, Servers::Sim)
    }

    /// [`Bench::measure`] on `servers`: with [`Servers::Sshd`] no simulator is started, the
    /// specs get that fleet's files and user, its listener's PID for the server's CPU, and each
    /// measurement process runs in its namespace.
    pub fn measure_on(
        &self,
        scenario: &'static str,
        mut specs: Vec<Spec>,
        floor_each: bool,
        servers: Servers,
    ) -> Result<(Vec<Sample>, ScenarioReport)> {
        if let Servers::Sshd(sshd) = servers {
            for s in &mut specs {
                s.hosts_file = sshd.hosts_file();
                s.known_hosts = sshd.known_hosts_file();
                s.identity = sshd.identity_file();
                s.sim_pids = sshd.pids();
                s.user = Some(sshd.user().to_string());
            }
            return self.measure_specs(scenario, &specs, floor_each, servers, None);
        }
        let hosts = specs.iter().map(|s| s.hosts).max().unwrap_or(1);
        let in_flight = specs
            .iter()
            .map(|s| {
                let controllers = s.journal.as_ref().map_or(1, |j| j.controllers.max(1));
                (s.fanout * controllers).min(s.hosts)
            })
            .max()
            .unwrap_or(1);
        let limit = procfs::nofile_hard_limit().unwrap_or(1024);
        let processes = fleet::processes_needed(hosts, in_flight, limit);
        eprintln!(
            "fleetsh-bench {scenario}: starting {hosts} simulated hosts in {processes} process(es)"
        );
        let fleet = Fleet::start(
            &self.fleetsh,
            hosts,
            processes,
            self.sim_threads,
            self.sim_latency,
        )?;
        for s in &mut specs {
            s.hosts_file = fleet.hosts_file();
            s.known_hosts = fleet.known_hosts_file();
            s.identity = fleet.identity_file();
            s.sim_pids = fleet.pids();
        }
        self.measure_specs(scenario, &specs, floor_each, servers, Some(fleet))
    }

    /// Runs each of `specs` `reps` times, interleaved, against the running servers (`fleet`,
    /// stopped at the end, or the `sshd` of `servers`).
    fn measure_specs(
        &self,
        scenario: &'static str,
        specs: &[Spec],
        floor_each: bool,
        servers: Servers,
        fleet: Option<Fleet>,
    ) -> Result<(Vec<Sample>, ScenarioReport)> {
        let date = procfs::utc_now();
        let load_before = procfs::loadavg();
        let mut all: Vec<Vec<Sample>> = vec![Vec::new(); specs.len()];
        for rep in 0..self.reps {
            for (i, spec) in specs.iter().enumerate() {
                std::thread::sleep(if spec.hosts < SMALL_RUN {
                    SETTLE_SMALL
                } else {
                    SETTLE
                });
                eprintln!(
                    "fleetsh-bench {scenario}: {} (rep {}/{})",
                    spec.label,
                    rep + 1,
                    self.reps
                );
                // The floor beside each sample: this machine's speed moves by a third to a half
                // within minutes, and client and floor move together.
                let floor = if floor_each {
                    Some(floor::measure(floor::ITERS_PER_SAMPLE)?.for_kex(spec.kex))
                } else {
                    None
                };
                let mut sample = self.run_child(spec, servers)?;
                sample.floor_us = floor;
                eprintln!(
                    "fleetsh-bench {scenario}: {}: {:.0} hosts/s, {:.0} us/host client, {:.0} \
                     us/host sim, peak RSS {:.1} MiB, p99 {:.0} ms, others' cores {:.2}{}",
                    spec.label,
                    sample.hosts_per_s,
                    sample.client_cpu_us_per_host,
                    sample.sim_cpu_us_per_host,
                    sample.peak_rss_kib as f64 / 1024.0,
                    sample.phases.total_p99_ms.unwrap_or(f64::NAN),
                    sample.other_cores,
                    sample.plateau.as_ref().map_or(String::new(), |p| format!(
                        ", {:.1} KiB/session",
                        p.per_session_kib
                    )),
                );
                if sample.failures > 0 {
                    eprintln!(
                        "fleetsh-bench {scenario}: {}: {} failures {:?}",
                        spec.label, sample.failures, sample.errors
                    );
                }
                if let Some(v) = all.get_mut(i) {
                    v.push(sample);
                }
            }
        }
        let load_after = procfs::loadavg();
        let sim_processes = fleet.as_ref().map_or(1, Fleet::processes);
        if let Some(fleet) = fleet {
            fleet.stop();
        }
        let spread = all.iter().filter_map(|v| Spread::of(v)).collect();
        let rows: Vec<Sample> = all
            .iter()
            .filter_map(|v| {
                let mut by_wall: Vec<&Sample> = v.iter().collect();
                by_wall.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
                by_wall.get(by_wall.len() / 2).map(|s| (*s).clone())
            })
            .collect();
        let report = ScenarioReport {
            scenario,
            date,
            machine: self.machine.clone(),
            load_before,
            load_after,
            sim_processes,
            sim_threads: self.sim_threads,
            sim_latency_ms: self.sim_latency,
            reps: self.reps,
            rows: rows.clone(),
            spread,
            ratios: Vec::new(),
            paired: Vec::new(),
            per_rep: all,
        };
        Ok((rows, report))
    }

    /// Runs `fleetsh-bench measure SPEC` and reads its one JSON line, within the child timeout.
    fn run_child(&self, spec: &Spec, servers: Servers) -> Result<Sample> {
        let mut cmd = match servers {
            Servers::Sim => Command::new(&self.exe),
            Servers::Sshd(sshd) => sshd.command(&self.exe),
        };
        let mut child = cmd
            .arg("measure")
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a measurement process")?;
        let Some(mut stdout) = child.stdout.take() else {
            bail!("measurement process without stdout");
        };
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + self.child_timeout;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if Instant::now() >= deadline {
                // Child::kill sends SIGKILL to this child's PID only.
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{}: no result within {:?} (raise --child-timeout)",
                    spec.label,
                    self.child_timeout
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = reader.join().unwrap_or_default();
        if !status.success() {
            bail!("{}: measurement process failed ({status})", spec.label);
        }
        let line = out.lines().last().unwrap_or_default();
        serde_json::from_str(line).with_context(|| format!("{}: bad sample {line:?}", spec.label))
    }

    /// Prints `report` as a table under `title` with `notes` below it, and its JSON with `--json`.
    pub fn emit(&self, title: &str, report: &ScenarioReport, table: &Table, notes: &[String]) {
        println!(
            "== {title} ({}; {} CPUs; load {:.2} -> {:.2}; sim: {} process(es) x {} thread(s){}; reps {}) ==",
            report.date,
            report.machine.nproc,
            report.load_before[0],
            report.load_after[0],
            report.sim_processes,
            report.sim_threads,
            report
                .sim_latency_ms
                .map_or(String::new(), |ms| format!(", latency {ms} ms")),
            report.reps,
        );
        print!("{}", table.render());
        for n in notes {
            println!("{n}");
        }
        if report.reps > 1 {
            let ranges: Vec<String> = report
                .spread
                .iter()
                .map(|s| {
                    format!(
                        "{}: {:.0}-{:.0} hosts/s, {:.0}-{:.0} us/host{}",
                        s.label,
                        s.hosts_per_s[0],
                        s.hosts_per_s[1],
                        s.client_cpu_us_per_host[0],
                        s.client_cpu_us_per_host[1],
                        s.x_floor.map_or(String::new(), |[lo, hi]| format!(
                            ", {lo:.2}-{hi:.2}x the floor beside it"
                        ))
                    )
                })
                .collect();
            println!(
                "rows: the repetition with the median wall time; range over {} reps: {}",
                report.reps,
                ranges.join("; ")
            );
        }
        println!();
        if self.json {
            match serde_json::to_string(report) {
                Ok(j) => println!("{j}"),
                Err(e) => eprintln!("fleetsh-bench: cannot encode JSON: {e}"),
            }
        }
    }
}

//! Flags onto settings: the flags of `run`, `put`, `get`, `bench` and `config show` as the
//! settings layers take them (flags over the fleetsh config file over built-in defaults), and
//! what `run`, `put`, `get` and `bench` build from those layers: the job's limits, the engine,
//! the targets and the embedded simulated fleet.

mod engine;
pub mod targets;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use fleetsh::config::{Flags, Layers};
use fleetsh::{Engine, HostKeyCheck, Job, RunConfig};
use fleetsh_sim::{SimConfig, SimFleet};

use crate::args::{CommonArgs, ConnArgs, HostKeyCheckArg};
use crate::error::usage;
use crate::output;

pub use engine::{connection, expand_tilde, file_connection_options};

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        bail!(
            "--{name}: {} is not a number of seconds greater than 0 and at most 1e9",
            fleetsh::config::short_number(v)
        );
    }
    Ok(Duration::from_secs_f64(v))
}

/// What `run`, `put` and `get` build the same way from the shared flags.
pub struct Setup {
    pub engine: Engine,
    pub hosts: Vec<fleetsh::HostTarget>,
    /// This controller's part of the host list (`--shard`), if the run is split.
    pub split: Option<fleetsh::journal::Split>,
    /// Limits (timeouts, retries, output cap) from the config file and the flags.
    pub job: Job,
    /// The embedded simulated fleet (`--sim`), stopped when dropped.
    pub fleet: Option<SimFleet>,
}

/// The shared flags of `run`, `put`, `get` and `bench`, added to `command`'s own (the port;
/// `run`'s pseudo-terminal, environment and sudo), as the settings layers take them.
fn common_flags(a: &CommonArgs, command: Flags) -> Result<Flags> {
    let mut flags = conn_flags(&a.conn, command)?;
    flags.command_timeout = a
        .command_timeout
        .map(|v| secs("command-timeout", v))
        .transpose()
        .map_err(usage)?;
    flags.idle_timeout = a
        .idle_timeout
        .map(|v| secs("idle-timeout", v))
        .transpose()
        .map_err(usage)?;
    if let Some(v) = a.retry_delay {
        if !v.is_finite() || !(0.0..=1e9).contains(&v) {
            return Err(usage(anyhow::anyhow!(
                "--retry-delay: {} is not a number of seconds from 0 to 1e9",
                fleetsh::config::short_number(v)
            )));
        }
        flags.retry_delay = Some(Duration::from_secs_f64(v));
    }
    flags.retries = a.retries;
    flags.output_cap = a.output_cap;
    flags.fanout = a.fanout.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
    flags.shards = a.shards;
    flags.pin = a.pin;
    flags.batch = a.batch;
    flags.max_fail = a.max_fail;
    flags.rate = a.rate;
    flags.max_hosts = a.max_hosts;
    flags.kex = a.kex;
    flags.cipher = a.cipher;
    flags.no_kex_guess = a.no_kex_guess;
    Ok(flags)
}

/// The connection flags `run`, `put`, `get`, `bench` and `config show` share, added to
/// `command`'s own.
pub fn conn_flags(c: &ConnArgs, command: Flags) -> Result<Flags> {
    Ok(Flags {
        user: c.user.clone(),
        identity_files: c.identity.clone(),
        certificate_files: c.certificate.clone(),
        connect_timeout: c
            .connect_timeout
            .map(|v| secs("connect-timeout", v))
            .transpose()
            .map_err(usage)?,
        host_key_check: c.host_key_check.map(|m| match m {
            HostKeyCheckArg::Strict => HostKeyCheck::Strict,
            HostKeyCheckArg::AcceptNew => HostKeyCheck::AcceptNew,
            HostKeyCheckArg::Off => HostKeyCheck::Off,
        }),
        known_hosts: c.known_hosts.clone(),
        jump: c.jump.clone(),
        ..command
    })
}

/// The engine, targets, job limits and simulated fleet of `run`, `put`, `get` and `bench`, from
/// the shared flags `a` and `command`'s own.
pub fn setup(a: &CommonArgs, command: Flags) -> Result<Setup> {
    let mut layers = Layers::read(a.config.as_deref()).map_err(usage)?;
    layers.flags = common_flags(a, command)?;

    // Job limits and the run config: built-in defaults < config file < flags.
    let mut job = layers.job();
    job.stream_output = a.out.output == output::OutputMode::Inline;
    let mut run_cfg = layers.run_config();
    run_cfg.validate().map_err(usage)?;

    if let Some(n) = a.sim {
        fit_fanout_beside_sim(&mut run_cfg, n)?;
    }
    let fleet = start_sim(a.sim)?;
    let (hosts, split) = targets::select(a, layers.max_hosts(), fleet.as_ref())?;
    let engine = engine::build(a, &layers.connection(), run_cfg, fleet.as_ref())?;
    Ok(Setup {
        engine,
        hosts,
        split,
        job,
        fleet,
    })
}

/// Open files: the engine raises the soft limit and lowers the fanout to fit it when a run
/// starts (one descriptor per host in flight, with a warning). The simulated fleet of `n` hosts
/// runs in this process: its listeners and its side of each connection need room too.
fn fit_fanout_beside_sim(run_cfg: &mut RunConfig, n: usize) -> Result<()> {
    let limit_error = |e: fleetsh::EngineError| usage(anyhow::Error::new(e));
    let fit = fleetsh::limits::fit_fanout(run_cfg.fanout, 2, n as u64).map_err(limit_error)?;
    if fit.used == 0 {
        return Err(usage(anyhow::anyhow!(
            "the open-files limit ({}) is too low to run anything next to the simulated fleet",
            fit.limit
        )));
    }
    if run_cfg.fanout > fit.used {
        eprintln!(
            "fleetsh: lowering fanout from {} to {} to fit the open-files limit ({})",
            run_cfg.fanout, fit.used, fit.limit
        );
        run_cfg.fanout = fit.used;
    }
    Ok(())
}

/// The embedded simulated fleet, if asked for (`--sim N`).
fn start_sim(sim: Option<usize>) -> Result<Option<SimFleet>> {
    match sim {
        Some(0) => Err(usage(anyhow::anyhow!("--sim: needs at least 1 host"))),
        Some(n) => {
            let dir = std::env::temp_dir().join(format!("fleetsh-sim-{}", std::process::id()));
            let f = SimFleet::start(SimConfig {
                count: n,
                port: 0,
                state_dir: dir,
                ..SimConfig::default()
            })
            .context("cannot start the simulated fleet")?;
            Ok(Some(f))
        }
        None => Ok(None),
    }
}

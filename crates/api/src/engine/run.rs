//! The engine: runs, copies and connected fleets started on the settings it loaded once, with
//! the fanout fitted to the open-files limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fleetsh_core::{Action, GetPlan, HostKeyCheck, HostTarget, Job, PutPlan, RunConfig};
use fleetsh_shard::executor::{CancelToken, OutputBudget, RunParts};
use fleetsh_shard::ssh::jump::Jumps;
use fleetsh_shard::{Pool, RunShared, ShardConfig, SshSettings};
use tokio::sync::Notify;

use super::builder::EngineBuilder;
use super::kex_guesses::KexGuesses;
use crate::resolve::Resolver;
use crate::run::Starter;
use crate::{ConnectedFleet, Error, RunHandle};

/// A configured engine: auth material and known_hosts loaded once, reused by every run.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(super) settings: Arc<SshSettings>,
    pub(super) resolver: Option<Arc<Resolver>>,
    pub(super) connect_timeout: Option<std::time::Duration>,
    pub(super) run: RunConfig,
    pub(super) shard: ShardConfig,
    /// Whether the fanout was already lowered to fit the open-files limit (warned once).
    pub(super) fanout_lowered: Arc<AtomicBool>,
    /// Whether some hosts may be reached through a `ProxyCommand` (two pipes each).
    pub(super) proxy_commands: bool,
}

impl Engine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Starts `job` on `hosts` and returns at once; results arrive through the handle. Fails only
    /// on a bad job, an empty host list, an open-files limit with no room for a host, or when
    /// the shards cannot start; host failures are results. The fanout may be lowered to fit
    /// the open-files limit (see [`EngineBuilder::fanout`]).
    pub fn run(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        job: Job,
    ) -> Result<RunHandle, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        let shard = self.fit_open_files(targets.len())?;
        self.start_run(targets, job, Starter::Fresh(shard), self.jumps(), None)
    }

    /// As [`Engine::run`], recording each host's start (before its command or transfer
    /// leaves) and final result in `journal` (see [`crate::journal`]). The caller chooses which
    /// hosts to run from the journal's [`Replay`](crate::journal::Replay); result indices are
    /// positions in `hosts`, as the journal's are.
    pub fn run_journaled(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        subset: &[usize],
        job: Job,
        journal: Arc<crate::journal::JournalFile>,
    ) -> Result<RunHandle, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() || subset.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        if let Some(&bad) = subset.iter().find(|&&i| i >= targets.len()) {
            return Err(fleetsh_core::Error::InvalidSetting {
                setting: "subset",
                reason: format!("host {bad} is not one of the {} hosts", targets.len()),
            }
            .into());
        }
        let shard = self.fit_open_files(subset.len())?;
        self.start_run_on(
            targets,
            subset,
            job,
            Starter::Fresh(shard),
            self.jumps(),
            Some(journal),
        )
    }

    /// The shard configuration with the fanout lowered, if needed, so that the hosts in
    /// flight (one socket each) and the bastion connections fit the open-files limit, after
    /// raising its soft value to the hard one. Warns once per engine when it lowers.
    fn fit_open_files(&self, hosts: usize) -> Result<ShardConfig, Error> {
        let mut shard = self.shard.clone();
        let asked = shard.fanout.min(hosts).max(1);
        let bastions = self.settings.jump.len() as u64;
        // A host reached through a ProxyCommand holds two pipes to its process, not a socket.
        let per_host = if self.proxy_commands { 2 } else { 1 };
        let fit = match fleetsh_shard::limits::fit_fanout(asked, per_host, bastions) {
            Ok(fit) => fit,
            Err(e) => {
                tracing::debug!("open-files limit not checked: {e}");
                return Ok(shard);
            }
        };
        if fit.used == 0 {
            return Err(fleetsh_shard::Error::NoFiles {
                limit: fit.limit,
                open: fit.open,
                reserve: fleetsh_shard::limits::FD_RESERVE + bastions,
            }
            .into());
        }
        if fit.used < asked {
            if !self.fanout_lowered.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = fit.limit,
                    fanout_asked = asked,
                    fanout_used = fit.used,
                    "lowering fanout from {asked} to {} to fit the open-files limit ({}; {} descriptors already open, one per host in flight, {} kept in reserve)",
                    fit.used,
                    fit.limit,
                    fit.open,
                    fleetsh_shard::limits::FD_RESERVE + bastions,
                );
            } else {
                tracing::debug!(
                    "fanout {asked} lowered to {} for the open-files limit ({})",
                    fit.used,
                    fit.limit
                );
            }
            shard.fanout = fit.used;
        }
        Ok(shard)
    }

    /// A connected fleet keeps one connection, one descriptor, per host, whatever the fanout:
    /// warns when `hosts` of them would not fit in the open-files limit (raised to the hard
    /// limit where allowed), naming the numbers and what to do.
    pub(crate) fn check_kept_connections(&self, hosts: usize) {
        let bastions = self.settings.jump.len() as u64;
        match fleetsh_shard::limits::fit_fanout(hosts.max(1), 1, bastions) {
            Ok(fit) if fit.used < hosts => tracing::warn!(
                limit = fit.limit,
                hosts,
                "a connected fleet of {hosts} hosts keeps {hosts} connections, and the \
                 open-files limit ({}; {} descriptors already open, {} kept in reserve) leaves \
                 room for {}: hosts beyond will fail with 'Too many open files'; raise the hard \
                 limit (ulimit -Hn, LimitNOFILE=) or connect the fleet in parts",
                fit.limit,
                fit.open,
                fleetsh_shard::limits::FD_RESERVE + bastions,
                fit.used,
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!("open-files limit not checked: {e}"),
        }
    }

    /// Starts shard threads that keep `hosts`' connections open between runs: the returned
    /// [`ConnectedFleet`] runs several jobs in turn on the same authenticated connections, one
    /// channel per command, as parallel-ssh's client does between `run_command` calls.
    /// Connections are made by the first run that reaches a host and kept, or at once by
    /// [`ConnectedFleet::connect_all`]; a kept connection found closed is re-established once
    /// before the host is failed.
    pub fn connect(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
    ) -> Result<ConnectedFleet, Error> {
        let targets: Arc<[HostTarget]> = hosts.into_iter().collect();
        if targets.is_empty() {
            return Err(fleetsh_core::Error::NoHosts.into());
        }
        self.check_kept_connections(targets.len());
        let pool = Pool::start(targets.len(), &self.fit_open_files(targets.len())?)?;
        Ok(ConnectedFleet::new(
            self.clone(),
            targets,
            pool,
            self.jumps(),
        ))
    }

    /// Bastion connections for a run or a connected fleet (nothing starts without jump hosts).
    pub(crate) fn jumps(&self) -> Arc<Jumps> {
        let jumps = Jumps::new(self.settings.jump.clone(), self.settings.jump_fanout);
        Arc::new(match &self.resolver {
            Some(r) => jumps.with_plans(Arc::new(crate::resolve::BastionResolver {
                resolver: r.clone(),
                connect_timeout: self
                    .connect_timeout
                    .unwrap_or(fleetsh_core::config::DEFAULT_CONNECT_TIMEOUT),
            })),
            None => jumps,
        })
    }

    pub(crate) fn start_run(
        &self,
        targets: Arc<[HostTarget]>,
        job: Job,
        starter: Starter,
        jumps: Arc<Jumps>,
        journal: Option<Arc<dyn fleetsh_shard::executor::Journal>>,
    ) -> Result<RunHandle, Error> {
        let all: Vec<usize> = (0..targets.len()).collect();
        self.start_run_on(targets, &all, job, starter, jumps, journal)
    }

    /// Starts `job` on the hosts `subset` (indices into `targets`, each at most once; results
    /// carry these indices).
    pub(crate) fn start_run_on(
        &self,
        targets: Arc<[HostTarget]>,
        subset: &[usize],
        job: Job,
        starter: Starter,
        jumps: Arc<Jumps>,
        journal: Option<Arc<dyn fleetsh_shard::executor::Journal>>,
    ) -> Result<RunHandle, Error> {
        let mut job = job;
        if let Some(t) = self.connect_timeout {
            job.connect_timeout = t;
        }
        job.validate()?;
        let plans = match &self.resolver {
            Some(r) => Some(r.plans(&targets, job.connect_timeout)?),
            None => None,
        };
        crate::per_host::resolve(&mut job, &targets, subset, &self.settings, plans.as_ref())?;
        let n = subset.len();
        let size = self.run.batch.map_or(n, |b| b.ceil_of(n)).max(1);
        let batches = subset.chunks(size).map(Arc::from).collect();
        let parts = RunParts {
            targets,
            job: Arc::new(job),
            settings: self.settings.clone(),
            plans,
            shared: Arc::new(RunShared::new(
                self.run.max_fail.map(|m| m.floor_of(n)),
                self.run.rate,
            )),
            cancel: CancelToken::new(),
            notify: Arc::new(Notify::new()),
            budget: OutputBudget::default(),
            jumps,
            journal,
        };
        if self.settings.known_hosts.mode() == HostKeyCheck::Off {
            tracing::warn!(
                "host key checking is off: connections are open to man-in-the-middle attacks"
            );
        }
        Ok(RunHandle::start(parts, batches, starter)?)
    }

    /// Uploads `plan` to every host over SFTP (see [`fleetsh_core::transfer`] for where files
    /// land). Each local file was read once into the plan and is shared by every host; each
    /// file is written under a temporary name and renamed into place, so a failed or
    /// cancelled upload never leaves a partial target. Results carry
    /// [`HostResult::transfer`](crate::HostResult::transfer) counts;
    /// [`Event::Transferred`] reports progress.
    ///
    /// `template` gives the limits (connect/command timeouts, retries); its command and
    /// action are ignored. Use `Job::new("")` for the defaults.
    ///
    /// [`Event::Transferred`]: fleetsh_core::Event::Transferred
    pub fn copy_to(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        plan: PutPlan,
        template: &Job,
    ) -> Result<RunHandle, Error> {
        let job = template.clone().action(Action::Put(Arc::new(plan)));
        self.run(hosts, job)
    }

    /// Downloads `plan.remotes` from every host over SFTP into `plan.local_dir/HOST/`, where
    /// `HOST` is the host as given (so hosts never overwrite each other's files). Names the
    /// server sends are checked: nothing is ever written outside that directory. Files are
    /// written under a temporary name and renamed into place.
    pub fn copy_from(
        &self,
        hosts: impl IntoIterator<Item = HostTarget>,
        plan: GetPlan,
        template: &Job,
    ) -> Result<RunHandle, Error> {
        let job = template.clone().action(Action::Get(Arc::new(plan)));
        self.run(hosts, job)
    }

    /// The same engine (keys, known_hosts, settings shared) with another fanout: for runs
    /// that step their concurrency, such as `fleetsh bench`.
    pub fn with_fanout(&self, fanout: usize) -> Engine {
        let mut e = self.clone();
        e.run.fanout = fanout.max(1);
        e.shard.fanout = fanout.max(1);
        e
    }

    /// The number of shard threads a run of `hosts` hosts would use.
    pub fn shards_for(&self, hosts: usize) -> usize {
        self.shard.effective_shards(hosts)
    }

    /// The configured fanout.
    pub fn fanout(&self) -> usize {
        self.shard.fanout
    }

    /// The user for targets that name none.
    pub fn default_user(&self) -> &str {
        &self.settings.default_user
    }

    /// The port for targets that name none.
    pub fn default_port(&self) -> u16 {
        self.settings.default_port
    }

    /// How the key exchange guesses of this engine's handshakes so far went (every run and
    /// connected fleet of this engine and its [`with_fanout`](Self::with_fanout) copies), or
    /// `None` when it does not guess ([`EngineBuilder::kex_guess`]).
    pub fn kex_guesses(&self) -> Option<KexGuesses> {
        let hint = self.settings.client.kex_guess.as_ref()?;
        Some(KexGuesses {
            right: hint.right(),
            wrong: hint.wrong(),
        })
    }
}

//! A connected fleet: jobs run in turn on kept, authenticated connections.

use std::collections::HashMap;
use std::sync::Arc;

use fleetsh_core::{Action, GetPlan, HostTarget, Job, PutPlan};
use fleetsh_shard::Pool;
use parking_lot::Mutex;

use crate::run::Starter;
use crate::{Engine, Error, RunHandle};

/// Hosts whose connections stay open between runs ([`Engine::connect`]).
///
/// # Connections
///
/// Each host belongs to one shard thread for the fleet's life; the shard keeps the host's
/// authenticated connection after a job and opens a new channel on it for the next one.
/// Connections are made by the first job that reaches a host, or all at once, before any
/// command, by [`connect_all`](Self::connect_all) (one result per host: which hosts are
/// unreachable, and why). A connection the server closed in between is re-established once
/// (the host's result then shows connect timings again); a host that could not connect is
/// tried again by the next job.
///
/// # Host indices
///
/// Every host has a fleet index: its position in [`hosts`](Self::hosts). Indices are stable:
/// hosts added later ([`add_hosts`](Self::add_hosts)) get the next ones, and a removed host
/// ([`remove_hosts`](Self::remove_hosts)) keeps its slot in `hosts()` while its index is
/// never given to another host. Results and events of every job on the fleet name hosts by
/// their fleet index, also for a job on a part of the fleet ([`run_on`](Self::run_on)), so
/// an index taken from one job's results selects the same host in the next.
///
/// # Jobs in turn
///
/// Jobs run one after another: a job started while another runs (from another thread, or
/// before the previous [`RunHandle`] was consumed) waits for it on each shard thread. The
/// fleet's methods take `&self` and may be called from several threads. Starting a job holds
/// the fleet's lock while it chooses the job's hosts and works out per-host commands: a
/// [`Job::per_host`](crate::Job::per_host) function given to a fleet's job must not call that
/// fleet's methods (it would wait for itself).
///
/// Each host keeps one connection, one open file, for the fleet's life whatever the fanout:
/// [`Engine::connect`] and [`add_hosts`](Self::add_hosts) warn when the fleet's hosts would
/// not fit in the open-files limit.
///
/// Adding and removing hosts never disturbs a job already started: a job runs on the
/// hosts that were in the fleet when it started. A removed host's kept connection is closed
/// once the jobs started before the removal are done with it (at once when none runs); jobs
/// started after the removal do not include it.
///
/// # Closing
///
/// Dropping the fleet (or [`close`](Self::close)) disconnects every host and stops the shard
/// threads; on a thread that drives a tokio runtime it returns at once and the threads are
/// joined in the background. A job still running then is not cancelled and the drop does not wait for it: its
/// [`RunHandle`] keeps the shard threads and connections it needs, the job completes with
/// one result per host as usual, and the hosts are disconnected when that handle is
/// consumed or dropped (dropping it before the end cancels the job, as for every run).
///
/// The shard threads are started for the hosts the fleet was connected with (as many as
/// [`Engine::run`] would use for them); hosts added later share those threads.
#[derive(Debug)]
pub struct ConnectedFleet {
    pub(crate) engine: Engine,
    pub(crate) members: Mutex<Members>,
    pub(crate) pool: Arc<Pool>,
    /// Bastion connections, kept as long as the fleet (its tunnels carry kept connections).
    pub(crate) jumps: Arc<fleetsh_shard::ssh::jump::Jumps>,
}

/// The fleet's host table and which of its hosts are still in the fleet.
#[derive(Debug)]
pub(crate) struct Members {
    /// Every host ever in the fleet, by fleet index (removed ones keep their slot).
    targets: Arc<[HostTarget]>,
    /// Parallel to `targets`: whether the host is still in the fleet.
    live: Vec<bool>,
}

impl Members {
    pub(crate) fn new(targets: Arc<[HostTarget]>) -> Self {
        let live = vec![true; targets.len()];
        Members { targets, live }
    }

    /// The indices of the hosts still in the fleet, ascending.
    fn indices(&self) -> Vec<usize> {
        (0..self.live.len())
            .filter(|&i| self.live.get(i).copied().unwrap_or(false))
            .collect()
    }

    /// Checks a selection: every index names a host still in the fleet, once.
    fn check(&self, indices: &[usize]) -> Result<(), FleetError> {
        let mut seen = vec![false; self.targets.len()];
        for &index in indices {
            let Some(target) = self.targets.get(index) else {
                return Err(FleetError::NoSuchIndex {
                    index,
                    len: self.targets.len(),
                });
            };
            if !self.live.get(index).copied().unwrap_or(false) {
                return Err(FleetError::Removed {
                    index,
                    host: target.to_string(),
                });
            }
            match seen.get_mut(index) {
                Some(s) if *s => return Err(FleetError::Duplicate { index }),
                Some(s) => *s = true,
                None => {}
            }
        }
        Ok(())
    }

    /// The index of the first host still in the fleet equal to each target, for lookups of
    /// many hosts at once (one pass over the table, not one per host).
    fn live_index(&self) -> HashMap<&HostTarget, usize> {
        let mut index = HashMap::with_capacity(self.targets.len());
        for (i, t) in self.targets.iter().enumerate() {
            if self.live.get(i).copied().unwrap_or(false) {
                index.entry(t).or_insert(i);
            }
        }
        index
    }
}

/// A selection of a connected fleet's hosts that cannot be used (no job starts, nothing
/// changes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The index names no host of the fleet.
    #[error(
        "host index {index} is not in the connected fleet (its indices are 0 to {len} excluded)"
    )]
    NoSuchIndex {
        /// The index given.
        index: usize,
        /// How many hosts the fleet has had (removed ones included): valid indices are below.
        len: usize,
    },
    /// The index names a host that was removed from the fleet.
    #[error("host index {index} ({host}) was removed from the connected fleet")]
    Removed {
        /// The index given.
        index: usize,
        /// The host it named.
        host: String,
    },
    /// The host is not in the fleet (never added, or removed).
    #[error("host {host} is not in the connected fleet")]
    NotInFleet {
        /// The host given.
        host: String,
    },
    /// The same host is selected more than once.
    #[error("host index {index} is selected more than once")]
    Duplicate {
        /// The index given twice.
        index: usize,
    },
    /// No host to run on: the selection is empty, or every host was removed.
    #[error("no hosts selected in the connected fleet{}", every_host_removed(.fleet_empty))]
    NoHosts {
        /// Every host of the fleet was removed.
        fleet_empty: bool,
    },
}

/// The end of [`FleetError::NoHosts`]'s message.
fn every_host_removed(fleet_empty: &bool) -> &'static str {
    if *fleet_empty {
        " (every host was removed)"
    } else {
        ""
    }
}

impl ConnectedFleet {
    pub(crate) fn new(
        engine: Engine,
        targets: Arc<[HostTarget]>,
        pool: Pool,
        jumps: Arc<fleetsh_shard::ssh::jump::Jumps>,
    ) -> Self {
        ConnectedFleet {
            engine,
            members: Mutex::new(Members::new(targets)),
            pool: Arc::new(pool),
            jumps,
        }
    }

    /// Runs `job` on every host of the fleet (see [`Engine::run`]).
    ///
    /// Fails with [`FleetError::NoHosts`] when every host was removed.
    pub fn run(&self, job: Job) -> Result<RunHandle, Error> {
        let m = self.members.lock();
        let indices = m.indices();
        if indices.is_empty() {
            return Err(FleetError::NoHosts { fleet_empty: true }.into());
        }
        self.start(&m, &indices, job)
    }

    /// Runs `job` on the hosts `hosts` of the fleet only (fleet indices, as in
    /// [`hosts`](Self::hosts); [`indices_of`](Self::indices_of) finds them from targets), over
    /// their kept connections. The other hosts are not touched.
    ///
    /// Results carry the hosts' fleet indices (not their positions in `hosts`); the
    /// [`Report`](crate::Report) has one result per selected host, in index order, and
    /// [`RunHandle::hosts`] is the fleet's whole host table.
    ///
    /// Refused, with nothing started, when the selection is empty ([`FleetError::NoHosts`]),
    /// names an index the fleet never had ([`FleetError::NoSuchIndex`]) or a removed host
    /// ([`FleetError::Removed`]), or names a host twice ([`FleetError::Duplicate`]).
    pub fn run_on(&self, hosts: &[usize], job: Job) -> Result<RunHandle, Error> {
        let m = self.members.lock();
        m.check(hosts)?;
        if hosts.is_empty() {
            return Err(FleetError::NoHosts { fleet_empty: false }.into());
        }
        self.start(&m, hosts, job)
    }

    /// Connects and authenticates every host of the fleet that has no kept connection, and
    /// runs nothing (parallel-ssh's `connect_auth`): one result per host, through a
    /// [`RunHandle`] like any job's, so the caller learns which hosts are unreachable before
    /// running anything.
    ///
    /// A host that connected is OK ([`HostResult::is_ok`](crate::HostResult::is_ok), with
    /// [`HostResult::connect_only`](crate::HostResult::connect_only) set and no exit status),
    /// its connection kept for the next jobs; a host that did not has the typed error of its
    /// failure (`connect`, `connect_timeout`, `handshake`, `auth`, `hostkey`, ...) and its
    /// timings. A host whose connection is already kept reports OK without connecting again
    /// (its timings show no connect phase). The engine's connect timeout applies
    /// ([`EngineBuilder::connect_timeout`](crate::EngineBuilder::connect_timeout), else the
    /// default); it waits for a job running on the fleet, as every job does.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fleetsh::{Engine, HostList, Job};
    ///
    /// // A simulated fleet of 3 hosts on loopback.
    /// let dir = tempfile::tempdir()?;
    /// let sim = fleetsh_sim::SimFleet::start(fleetsh_sim::SimConfig {
    ///     count: 3,
    ///     port: 0,
    ///     state_dir: dir.path().to_path_buf(),
    ///     ..Default::default()
    /// })?;
    /// let engine = Engine::builder()
    ///     .no_agent()
    ///     .identity_file(sim.client_key_file())
    ///     .known_hosts(sim.known_hosts_file())
    ///     .build()?;
    /// let hosts = HostList::new().include_file(&sim.hosts_file())?.build()?;
    ///
    /// let fleet = engine.connect(hosts)?;
    /// let report = fleet.connect_all()?.join();
    /// for r in report.failures() {
    ///     eprintln!("{} is unreachable: {:?}", r.target, r.error);
    /// }
    /// assert!(report.all_ok());
    /// // The job runs over the connections made above.
    /// let echo = fleet.run(Job::new("echo up"))?.join();
    /// assert!(echo.results.iter().all(|r| r.timings.connect.is_none()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_all(&self) -> Result<RunHandle, Error> {
        self.run(Job::connect_only())
    }

    /// Uploads `plan` to every host over the kept connections (see [`Engine::copy_to`]).
    pub fn copy_to(&self, plan: PutPlan, template: &Job) -> Result<RunHandle, Error> {
        self.run(template.clone().action(Action::Put(Arc::new(plan))))
    }

    /// Downloads `plan` from every host over the kept connections (see [`Engine::copy_from`]).
    pub fn copy_from(&self, plan: GetPlan, template: &Job) -> Result<RunHandle, Error> {
        self.run(template.clone().action(Action::Get(Arc::new(plan))))
    }

    /// Adds hosts to the fleet and returns the fleet index of each, in the order given.
    ///
    /// A new host gets the next free index (after every host the fleet has had) and is
    /// connected by the next job that includes it (or by [`connect_all`](Self::connect_all));
    /// the hosts already there keep their indices and connections. A host equal to one
    /// already in the fleet (same [`HostTarget`]: user, host and port as written) is not added
    /// again: its existing index is returned, so adding is idempotent. A host that was
    /// removed comes back under a new index, with a new connection.
    ///
    /// A job already running is not affected: it runs on the hosts it started with.
    pub fn add_hosts(&self, hosts: impl IntoIterator<Item = HostTarget>) -> Vec<usize> {
        let mut m = self.members.lock();
        let mut table: Vec<HostTarget> = m.targets.to_vec();
        let mut added = Vec::new();
        {
            let live = m.live_index();
            let mut new: HashMap<HostTarget, usize> = HashMap::new();
            for host in hosts {
                if let Some(&i) = live.get(&host).or_else(|| new.get(&host)) {
                    added.push(i);
                    continue;
                }
                added.push(table.len());
                new.insert(host.clone(), table.len());
                table.push(host);
            }
        }
        let len = table.len();
        m.targets = table.into();
        m.live.resize(len, true);
        let live = m.live.iter().filter(|l| **l).count();
        drop(m);
        self.engine.check_kept_connections(live);
        added
    }

    /// Removes the hosts `hosts` (fleet indices) from the fleet: jobs started afterwards do
    /// not include them, and their kept connections are closed (at once when no job runs;
    /// else once the jobs started before the removal are done with them, without waiting
    /// here). Their indices are not given to other hosts, and stay in
    /// [`hosts`](Self::hosts).
    ///
    /// All or nothing: refused, with nothing removed, when the selection names an index the
    /// fleet never had ([`FleetError::NoSuchIndex`]), a host already removed
    /// ([`FleetError::Removed`]), or a host twice ([`FleetError::Duplicate`]). Removing
    /// every host is allowed; jobs are then refused until hosts are added.
    pub fn remove_hosts(&self, hosts: &[usize]) -> Result<(), Error> {
        let mut m = self.members.lock();
        m.check(hosts)?;
        for &i in hosts {
            if let Some(live) = m.live.get_mut(i) {
                *live = false;
            }
        }
        // Under the lock: a job started after this returns cannot be queued before it.
        self.pool.forget(hosts);
        Ok(())
    }

    /// The fleet index of each of `targets` (compared as [`HostTarget`]s: user, host and
    /// port as written), for [`run_on`](Self::run_on) and
    /// [`remove_hosts`](Self::remove_hosts). Fails with [`FleetError::NotInFleet`], naming
    /// the first host that is not in the fleet (never added, or removed).
    pub fn indices_of<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a HostTarget>,
    ) -> Result<Vec<usize>, Error> {
        let m = self.members.lock();
        let live = m.live_index();
        targets
            .into_iter()
            .map(|t| {
                live.get(t).copied().ok_or_else(|| {
                    FleetError::NotInFleet {
                        host: t.to_string(),
                    }
                    .into()
                })
            })
            .collect()
    }

    /// The fleet's host table: host `i` is `hosts()[i]`. Results of the fleet's jobs name
    /// hosts by their index here. Removed hosts keep their slot (see
    /// [`indices`](Self::indices) for the hosts in the fleet now); a snapshot, which hosts
    /// added later do not change.
    pub fn hosts(&self) -> Arc<[HostTarget]> {
        self.members.lock().targets.clone()
    }

    /// The fleet indices of the hosts in the fleet now (not removed), ascending.
    pub fn indices(&self) -> Vec<usize> {
        self.members.lock().indices()
    }

    /// Whether fleet index `index` names a host in the fleet now (not removed).
    pub fn contains(&self, index: usize) -> bool {
        self.members
            .lock()
            .live
            .get(index)
            .copied()
            .unwrap_or(false)
    }

    /// How many hosts are in the fleet now (removed ones not counted).
    pub fn len(&self) -> usize {
        self.members.lock().live.iter().filter(|&&l| l).count()
    }

    /// Whether every host was removed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of shard threads.
    pub fn shards(&self) -> usize {
        self.pool.shards()
    }

    /// Disconnects every host and stops the shard threads. A job still running is not
    /// cancelled and not waited for: it completes, and its hosts are disconnected when its
    /// [`RunHandle`] is consumed or dropped (see [`ConnectedFleet`], "Closing").
    pub fn close(self) {
        drop(self);
    }

    /// Starts `job` on `hosts`. Called with the members locked, so that a removal cannot
    /// slip between the choice of the hosts and the job's place in the shards' queues (the
    /// removed hosts' connections are closed in that order).
    fn start(&self, members: &Members, hosts: &[usize], job: Job) -> Result<RunHandle, Error> {
        self.engine.start_run_on(
            members.targets.clone(),
            hosts,
            job,
            Starter::Pool(self.pool.clone()),
            self.jumps.clone(),
            None,
        )
    }
}

//! A connected fleet: jobs run in turn on kept, authenticated connections.

use std::sync::Arc;

use fleetsh_core::{Action, GetPlan, HostTarget, Job, PutPlan};
use fleetsh_shard::Pool;

use crate::run::Starter;
use crate::{Engine, Error, RunHandle};

/// Hosts whose connections stay open between runs ([`Engine::connect`]).
///
/// Each host belongs to one shard thread for the fleet's life; the shard keeps the host's
/// authenticated connection after a job and opens a new channel on it for the next one. Jobs
/// run one after another: a job started while another runs waits for it on each shard. A
/// connection the server closed in between is re-established once (the host's result then
/// shows connect timings again); a host that could not connect is tried again by the next job.
/// Dropping the fleet (or [`ConnectedFleet::close`]) disconnects every host.
#[derive(Debug)]
pub struct ConnectedFleet {
    pub(crate) engine: Engine,
    pub(crate) targets: Arc<[HostTarget]>,
    pub(crate) pool: Arc<Pool>,
    /// Bastion connections, kept as long as the fleet (its tunnels carry kept connections).
    pub(crate) jumps: Arc<fleetsh_shard::jump::Jumps>,
}

impl ConnectedFleet {
    /// Runs `job` on every host of the fleet (see [`Engine::run`]).
    pub fn run(&self, job: Job) -> Result<RunHandle, Error> {
        self.engine.start_run(
            self.targets.clone(),
            job,
            Starter::Pool(self.pool.clone()),
            self.jumps.clone(),
        )
    }

    /// Uploads `plan` to every host over the kept connections (see [`Engine::copy_to`]).
    pub fn copy_to(&self, plan: PutPlan, template: &Job) -> Result<RunHandle, Error> {
        self.run(template.clone().action(Action::Put(Arc::new(plan))))
    }

    /// Downloads `plan` from every host over the kept connections (see [`Engine::copy_from`]).
    pub fn copy_from(&self, plan: GetPlan, template: &Job) -> Result<RunHandle, Error> {
        self.run(template.clone().action(Action::Get(Arc::new(plan))))
    }

    /// The fleet's hosts; results name hosts by their index here.
    pub fn hosts(&self) -> &[HostTarget] {
        &self.targets
    }

    /// Number of shard threads.
    pub fn shards(&self) -> usize {
        self.pool.shards()
    }

    /// Disconnects every host and stops the shard threads (after any job still running).
    pub fn close(self) {
        drop(self);
    }
}

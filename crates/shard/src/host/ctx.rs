//! What a host task gets from its shard.

use std::collections::HashMap;
use std::sync::Arc;

use fleetsh_core::Job;
use tokio_util::sync::CancellationToken;

use crate::shared::RunShared;
use crate::sink::{EventSink, Journal};
use crate::ssh::connect::{Connection, Connector};
use crate::ssh::settings::HostPlan;

/// Everything a host task needs from its shard.
#[derive(Debug)]
pub(crate) struct HostCtx {
    /// How hosts are connected: settings, agent connections, bastions.
    pub ssh: Connector,
    /// Per-host settings from ssh_config, parallel to the run's targets.
    pub plans: Option<Arc<[HostPlan]>>,
    pub job: Arc<Job>,
    pub sink: EventSink,
    pub cancel: CancellationToken,
    pub shared: Arc<RunShared>,
    /// A connected fleet's kept connections (see [`crate::executor::Pool`]).
    pub cache: Option<ConnCache>,
    /// The run's journal, if it keeps one.
    pub journal: Option<Arc<dyn Journal>>,
}

/// Authenticated connections a pool shard keeps between runs, by host index.
#[derive(Clone, Default)]
pub(crate) struct ConnCache(Arc<parking_lot::Mutex<HashMap<usize, Connection>>>);

impl ConnCache {
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<usize, Connection>> {
        self.0.lock()
    }
}

impl std::fmt::Debug for ConnCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.try_lock() {
            Some(g) => write!(f, "ConnCache({} kept)", g.len()),
            None => f.write_str("ConnCache(busy)"),
        }
    }
}

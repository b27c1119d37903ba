//! One shard's part of a run: it takes hosts (the batch's next one, or its own by index in a
//! connected fleet) while its share of the fanout has room, runs each as a task on its
//! runtime, and sends every host's one result, also for hosts it could not start.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;
use fleetsh_core::{ErrorKind, Event, HostError, HostResult, HostTarget, Job};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::{ShardConfig, shard_of};
use crate::host::{ConnCache, HostCtx, run_host};
use crate::shared::RunShared;
use crate::sink::{EventSink, Journal, OutputBudget};
use crate::ssh::auth::agent::AgentPool;
use crate::ssh::connect::Connector;
use crate::ssh::jump::Jumps;
use crate::ssh::settings::{HostPlan, SshSettings, effective_target};

/// What every batch of a run shares.
#[derive(Debug, Clone)]
pub struct RunParts {
    /// All the run's hosts; events and results name hosts by their index here.
    pub targets: Arc<[HostTarget]>,
    /// The job.
    pub job: Arc<Job>,
    /// SSH settings.
    pub settings: Arc<SshSettings>,
    /// Per-host settings from ssh_config, parallel to `targets` (`None`: every host uses
    /// `settings` as is).
    pub plans: Option<Arc<[HostPlan]>>,
    /// Failure count and rate limiter.
    pub shared: Arc<RunShared>,
    /// Cancels the whole run.
    pub cancel: CancellationToken,
    /// Woken after every event and at every shard's end.
    pub notify: Arc<Notify>,
    /// Room for streamed output in flight to the caller.
    pub budget: OutputBudget,
    /// Bastion connections shared by every shard (inactive without jump hosts).
    pub jumps: Arc<Jumps>,
    /// Where the run records each host's start and final result, if it keeps a journal.
    pub journal: Option<Arc<dyn Journal>>,
}

impl RunParts {
    /// Host `index` with the user and port it connects with (from the target, its ssh_config
    /// profile or the engine's defaults), as every result names it, also for hosts that never
    /// started.
    pub fn resolved_target(&self, index: usize) -> Option<HostTarget> {
        let target = self.targets.get(index)?;
        let default_plan = HostPlan::default();
        let plan = self
            .plans
            .as_ref()
            .and_then(|p| p.get(index))
            .unwrap_or(&default_plan);
        Some(effective_target(&self.settings, plan, target))
    }
}

/// One shard's part of a run: its share of the fanout, the hosts it may take, and where its
/// events go.
pub(super) struct Shard {
    pub(super) index: usize,
    shards: usize,
    fanout: usize,
    run: RunParts,
    subset: Arc<[usize]>,
    pub(super) sink: EventSink,
    panic: bool,
    /// A pool shard's kept connections (None: connect and disconnect each host per run).
    pub(super) cache: Option<ConnCache>,
    /// A run's shards take the batch's hosts from this shared cursor, one host each time a
    /// slot of their fanout frees: a shard that falls behind (its thread descheduled, slow
    /// hosts) takes fewer, and no host waits in one shard's backlog while another has room.
    /// `None` for pool shards: they own their hosts by index (`shard_of`), for their kept
    /// connections.
    claims: Option<Arc<AtomicUsize>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("index", &self.index)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Shard `i` of `shards` for the hosts `subset` of `run`, sending on `tx`.
    pub(super) fn new(
        run: &RunParts,
        subset: &Arc<[usize]>,
        claims: Option<&Arc<AtomicUsize>>,
        config: &ShardConfig,
        (i, shards): (usize, usize),
        tx: &Sender<Event>,
    ) -> Shard {
        Shard {
            index: i,
            shards,
            fanout: config.shard_fanout(i, shards),
            run: run.clone(),
            subset: subset.clone(),
            sink: EventSink::new(tx.clone(), run.notify.clone(), run.budget.clone()),
            panic: config.panics(i),
            cache: None,
            claims: claims.cloned(),
        }
    }

    /// Runs this shard's part on `rt` (the thread of a run's shard), then wakes the consumer.
    /// A panic in the shard's own code must not lose the other shards' results: it is caught,
    /// the runtime dropped (and with it every sender this shard holds), and the consumer fills
    /// in `internal` results for this shard's unfinished hosts.
    pub(super) fn run_on(self, rt: tokio::runtime::Runtime) {
        let index = self.index;
        let notify = self.sink.notify().clone();
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(self.run())));
        if run.is_err() {
            tracing::error!(
                shard = index,
                "shard panicked; its unfinished hosts end as internal errors"
            );
        }
        drop(rt);
        // Wake an async consumer after this shard's senders are gone, so it sees the disconnect.
        notify.notify_one();
    }
}

impl Shard {
    /// Runs hosts while the fanout share has room, until this shard's hosts are taken, then
    /// reports the ones it could not start (cancelled, or skipped by max-fail).
    pub(super) async fn run(self) {
        let run = &self.run;
        let settings = run.settings.clone();
        let agent = settings
            .auth
            .agent
            .clone()
            .map(|p| Arc::new(AgentPool::new(p, settings.auth.agent_concurrency)));
        let ctx = Arc::new(HostCtx {
            ssh: Connector {
                settings,
                agent,
                // Always there: ssh_config may give some hosts a ProxyJump even without -J
                // (nothing starts until a host needs a bastion).
                jumps: Some(run.jumps.clone()),
            },
            plans: run.plans.clone(),
            job: run.job.clone(),
            sink: self.sink.clone(),
            cancel: run.cancel.clone(),
            shared: run.shared.clone(),
            cache: self.cache.clone(),
            journal: run.journal.clone(),
        });
        let permits = Arc::new(Semaphore::new(self.fanout));
        let mut tasks = JoinSet::new();
        let mut owner = HashMap::new();
        // A run's shards take the batch's next host when they have room; a pool shard owns
        // its hosts for the fleet's life (the connections it keeps), so hosts go by index.
        let (shards, me) = (self.shards, self.index);
        let mut own = self
            .subset
            .iter()
            .copied()
            .filter(move |&i| shard_of(i, shards) == me);
        let mut claim = || match &self.claims {
            Some(cursor) => self
                .subset
                .get(cursor.fetch_add(1, Ordering::Relaxed))
                .copied(),
            None => own.next(),
        };
        let mut not_started: Vec<(usize, ErrorKind)> = Vec::new();
        let mut stopped: Option<ErrorKind> = None;
        loop {
            if let Some(why) = stopped {
                // Cancelled or tripped: this shard's remaining hosts (for a run, whatever is
                // left of the batch; the other shards take their share) end unstarted.
                let Some(index) = claim() else { break };
                not_started.push((index, why));
                continue;
            }
            let permit = tokio::select! {
                biased;
                _ = run.cancel.cancelled() => None,
                p = permits.clone().acquire_owned() => p.ok(),
            };
            let Some(permit) = permit else {
                stopped = Some(ErrorKind::Cancelled);
                continue;
            };
            // A host is taken only with a free slot to run it.
            let Some(index) = claim() else { break };
            // Test hook: the shard dies holding a host it took (which must end `internal`).
            if self.panic {
                test_panic(self.index);
            }
            // Checked after the permit: a host that frees a permit may just have failed.
            if run.shared.tripped() {
                not_started.push((index, ErrorKind::Skipped));
                stopped = Some(ErrorKind::Skipped);
                continue;
            }
            let ctx = ctx.clone();
            let targets = run.targets.clone();
            let handle = tasks.spawn(async move {
                if let Some(target) = targets.get(index) {
                    let result = run_host(&ctx, index, target).await;
                    if let Some(journal) = &ctx.journal {
                        journal.finished(&result);
                    }
                    ctx.shared.record(&result);
                    ctx.sink.send(Event::Finished(Arc::new(result)));
                }
                drop(permit);
            });
            owner.insert(handle.id(), index);
            while let Some(done) = tasks.try_join_next_with_id() {
                self.reap(done, &mut owner);
            }
        }
        for (index, why) in not_started {
            if let Some(t) = run.resolved_target(index) {
                let message = match why {
                    ErrorKind::Skipped => format!(
                        "not started: more than {} hosts failed (max-fail)",
                        run.shared.max_fail().unwrap_or_default()
                    ),
                    _ => "run cancelled before this host started".to_string(),
                };
                self.sink.send(Event::Finished(Arc::new(HostResult::failed(
                    index,
                    t,
                    HostError::new(why, message),
                ))));
            }
        }
        while let Some(done) = tasks.join_next_with_id().await {
            self.reap(done, &mut owner);
        }
    }

    fn reap(
        &self,
        done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        owner: &mut HashMap<tokio::task::Id, usize>,
    ) {
        // Only tasks still running stay in the map (it would otherwise grow with the batch).
        let id = match &done {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let index = owner.remove(&id);
        if let Err(e) = done {
            let Some(index) = index else {
                return;
            };
            let Some(t) = self.run.targets.get(index) else {
                return;
            };
            let what = if e.is_panic() {
                "the host's task panicked (a bug; please report it)"
            } else {
                "the host's task was aborted"
            };
            tracing::error!(host = %t, "{what}");
            self.sink.send(Event::Finished(Arc::new(HostResult::failed(
                index,
                t.clone(),
                HostError::new(ErrorKind::Internal, what),
            ))));
        }
    }
}

#[allow(clippy::panic)]
fn test_panic(index: usize) {
    panic!("test hook: shard {index} panics on purpose");
}

//! Shard threads: start all-or-nothing, hand out hosts (a run's shards take the next host of the
//! batch when they have room; a connected fleet's own theirs by index), keep each shard's share of
//! the fanout in flight, send events back through a crossbeam channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use fleetsh_core::{ErrorKind, Event, HostError, HostResult, HostTarget, Job};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken as CancelToken;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::RunShared;
use crate::auth::AgentPool;
use crate::transport::{HostCtx, HostPlan, SshSettings, run_host};

/// How a run is spread over shard threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// Shard threads; `0` means one per CPU. Never more than the number of hosts.
    pub shards: usize,
    /// Hosts in flight across all shards.
    pub fanout: usize,
    /// Pin shard `i` to core `i % cores`.
    pub pin: bool,
    /// Test hook: make this shard panic right after it starts, before it runs any host.
    #[doc(hidden)]
    pub panic_shard: Option<usize>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            shards: 0,
            fanout: fleetsh_core::config::DEFAULT_FANOUT,
            pin: false,
            panic_shard: None,
        }
    }
}

impl ShardConfig {
    /// The number of shard threads a run of `hosts` hosts uses.
    pub fn effective_shards(&self, hosts: usize) -> usize {
        let s = if self.shards == 0 {
            num_cpus::get()
        } else {
            self.shards
        };
        // Never more shards than hosts, nor than the fanout (each shard keeps at least one host
        // in flight, so more shards than the fanout would exceed it).
        s.clamp(1, hosts.max(1).min(self.fanout.max(1)))
    }

    /// The share of the fanout shard `i` of `shards` keeps in flight (at least 1).
    pub fn shard_fanout(&self, i: usize, shards: usize) -> usize {
        let base = self.fanout / shards;
        let extra = usize::from(i < self.fanout % shards);
        (base + extra).max(1)
    }
}

/// The shard that owns host `index` in a run with `shards` shards (round-robin, so that slow
/// hosts clustered in a range spread over all shards).
pub fn shard_of(index: usize, shards: usize) -> usize {
    index % shards.max(1)
}

/// The sending side of a run's event channel, held by every host task of a shard.
///
/// Sending never blocks: the channel is unbounded (a blocking send inside a shard would stall
/// its whole event loop). The `Notify` wakes an async consumer. Streamed output is bounded
/// instead by a byte budget ([`OutputBudget`]): a host task waits (asynchronously, without
/// blocking its shard) for budget before it sends an output chunk, and the consumer gives the
/// budget back as it receives chunks. While a host waits it does not read its channel, so the
/// SSH flow control window pushes back on the server: backpressure, not buffering.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Sender<Event>,
    notify: Arc<Notify>,
    budget: OutputBudget,
}

impl EventSink {
    /// Sends one event. A closed channel (the caller dropped the run) is ignored.
    pub fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
        self.notify.notify_one();
    }

    /// The output budget.
    pub fn budget(&self) -> &OutputBudget {
        &self.budget
    }
}

/// Bytes of streamed output that may be in the event channel, not yet received by the caller.
pub const OUTPUT_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// The byte budget of streamed output between the shards and the caller.
#[derive(Debug, Clone)]
pub struct OutputBudget(Arc<Semaphore>);

impl Default for OutputBudget {
    fn default() -> Self {
        OutputBudget(Arc::new(Semaphore::new(OUTPUT_BUDGET_BYTES)))
    }
}

impl OutputBudget {
    /// The units a chunk of `len` bytes takes (a chunk larger than the budget takes all of it).
    pub fn units(len: usize) -> u32 {
        u32::try_from(len.min(OUTPUT_BUDGET_BYTES)).unwrap_or(u32::MAX)
    }

    /// Waits for room for `len` bytes; `false` if the budget is closed.
    pub async fn take(&self, len: usize) -> bool {
        match self.0.acquire_many(Self::units(len)).await {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back the room of a received chunk of `len` bytes.
    pub fn give(&self, len: usize) {
        self.0.add_permits(Self::units(len) as usize);
    }

    /// Bytes of room left.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// A running set of shards. Dropping it cancels the run and joins the threads.
#[derive(Debug)]
#[must_use = "a run's events must be consumed; dropping the executor cancels the run"]
pub struct Executor {
    events: Receiver<Event>,
    notify: Arc<Notify>,
    cancel: CancellationToken,
    waiters: Vec<Waiter>,
    shards: usize,
}

/// How the end of one shard's part of a run is awaited.
#[derive(Debug)]
enum Waiter {
    /// A shard thread of this run alone: it exits when done.
    Thread(JoinHandle<()>),
    /// A long-lived [`Pool`] thread: it says when it is done (and whether it panicked).
    Done(Receiver<bool>),
}

impl Executor {
    /// The receiving side of the event channel. It disconnects once every shard has finished.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Woken after every event; for async consumers.
    pub fn notify(&self) -> &Arc<Notify> {
        &self.notify
    }

    /// Number of shard threads.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Cancels the run: no new host starts; hosts in flight end as `cancelled` with their output
    /// so far. Idempotent.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A token that is cancelled when the run is.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits for every shard to finish its part, returning how many panicked.
    pub fn join(&mut self) -> usize {
        join_waiters(std::mem::take(&mut self.waiters))
    }
}

fn join_waiters(waiters: Vec<Waiter>) -> usize {
    let mut panicked = 0;
    for w in waiters {
        let failed = match w {
            Waiter::Thread(t) => t.join().is_err(),
            Waiter::Done(rx) => rx.recv().unwrap_or(true),
        };
        if failed {
            panicked += 1;
        }
    }
    panicked
}

/// Dropping an executor whose shards still run cancels the run. On a thread that drives an
/// async runtime the shards are joined by a detached thread (`fleetsh-reaper`), which ends
/// when they do (their hosts end at their next await point): the runtime's thread is never
/// blocked. Elsewhere they are joined before `drop` returns, so that every thread of the run
/// has ended by then.
impl Drop for Executor {
    fn drop(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        self.cancel.cancel();
        let waiters = std::mem::take(&mut self.waiters);
        join_off_runtime("the cancelled shards", move || {
            join_waiters(waiters);
        });
    }
}

/// Runs `join` (which waits for threads to end) on this thread, or, on a thread that drives a
/// tokio runtime, on a detached thread of its own: a drop there must not stall the runtime's
/// other tasks. The threads it waits for end on their own either way.
fn join_off_runtime(what: &str, join: impl FnOnce() + Send + 'static) {
    if tokio::runtime::Handle::try_current().is_err() {
        join();
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("fleetsh-reaper".into())
        .spawn(join);
    if let Err(e) = spawned {
        // The join handles went with the closure: the threads are detached and still end on
        // their own.
        tracing::debug!("cannot start a thread to join {what}: {e}");
    }
}

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
    pub jumps: Arc<crate::jump::Jumps>,
}

impl RunParts {
    /// Host `index` with the user and port it connects with (from the target, its ssh_config
    /// profile or the engine's defaults), as every result names it, also for hosts that never
    /// started.
    pub fn resolved_target(&self, index: usize) -> Option<HostTarget> {
        let target = self.targets.get(index)?;
        let default_plan = crate::transport::HostPlan::default();
        let plan = self
            .plans
            .as_ref()
            .and_then(|p| p.get(index))
            .unwrap_or(&default_plan);
        Some(crate::transport::effective_target(
            &self.settings,
            plan,
            target,
        ))
    }
}

/// Starts the shards of a run (or of one batch of a run): the hosts `subset` (indices into
/// `targets`; results carry these indices).
///
/// Start protocol (all-or-nothing):
/// 1. spawn every shard thread; each pins itself (if asked) and builds its current-thread
///    runtime, then reports ready (or its error) and waits for a go/abort word;
/// 2. once all have reported, send go to all, or, if any spawn or runtime build failed, abort to
///    all, join them, and return one [`Error::ShardStart`].
pub fn start(
    run: &RunParts,
    subset: Arc<[usize]>,
    config: &ShardConfig,
) -> Result<Executor, Error> {
    let (cancel, notify) = (run.cancel.clone(), run.notify.clone());
    let n_hosts = subset.len();
    let shards = config.effective_shards(n_hosts);
    let (tx, rx) = crossbeam_channel::unbounded();
    let claims = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(shards);
    let cores = pin_cores(config);

    let mut threads = Vec::with_capacity(shards);
    let mut gos = Vec::with_capacity(shards);
    let mut spawn_error = None;
    for i in 0..shards {
        let (go_tx, go_rx) = crossbeam_channel::bounded::<bool>(1);
        let shard = Shard::new(run, &subset, Some(&claims), config, i, shards, &tx);
        let core = core_for(&cores, i);
        let ready = ready_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fleetsh-shard-{i}"))
            .spawn(move || shard_thread(shard, core, ready, go_rx));
        match spawned {
            Ok(t) => {
                threads.push(t);
                gos.push(go_tx);
            }
            Err(e) => {
                spawn_error = Some(format!("cannot spawn shard thread {i}: {e}"));
                break;
            }
        }
    }
    drop(ready_tx);
    drop(tx);

    let mut failure = spawn_error;
    await_ready(&ready_rx, threads.len(), &mut failure);
    let go = failure.is_none();
    for g in &gos {
        let _ = g.send(go);
    }
    if let Some(reason) = failure {
        cancel.cancel();
        for t in threads {
            let _ = t.join();
        }
        return Err(Error::ShardStart { reason });
    }
    Ok(Executor {
        events: rx,
        notify,
        cancel,
        waiters: threads.into_iter().map(Waiter::Thread).collect(),
        shards,
    })
}

/// The CPU cores shard threads are pinned to: none unless `config.pin`; when pinning is
/// asked for but the cores are unknown, says so once and pins nothing.
fn pin_cores(config: &ShardConfig) -> Vec<core_affinity::CoreId> {
    if !config.pin {
        return Vec::new();
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.is_empty() {
        tracing::warn!("pinning requested but the CPU cores are unknown; not pinning");
    }
    cores
}

/// The core of shard `i` (round robin), if any.
fn core_for(cores: &[core_affinity::CoreId], i: usize) -> Option<core_affinity::CoreId> {
    (!cores.is_empty())
        .then(|| cores.get(i % cores.len()).copied())
        .flatten()
}

/// Waits for `started` shard threads to report ready; the first problem goes to `failure`.
fn await_ready(
    ready_rx: &Receiver<Result<(), String>>,
    started: usize,
    failure: &mut Option<String>,
) {
    for _ in 0..started {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(_) => {
                failure.get_or_insert("a shard thread exited before reporting ready".into());
                break;
            }
        }
    }
}

struct Shard {
    index: usize,
    shards: usize,
    fanout: usize,
    targets: Arc<[HostTarget]>,
    subset: Arc<[usize]>,
    shared: Arc<RunShared>,
    ctx_parts: (Arc<Job>, Arc<SshSettings>, Option<Arc<[HostPlan]>>),
    sink: EventSink,
    cancel: CancellationToken,
    panic: bool,
    /// A pool shard's kept connections (None: connect and disconnect each host per run).
    cache: Option<ConnCache>,
    jumps: Arc<crate::jump::Jumps>,
    /// A run's shards take the batch's hosts from this shared cursor, one host each time a
    /// slot of their fanout frees: a shard that falls behind (its thread descheduled, slow
    /// hosts) takes fewer, and no host waits in one shard's backlog while another has room.
    /// `None` for pool shards: they own their hosts by index (`shard_of`), for their kept
    /// connections.
    claims: Option<Arc<AtomicUsize>>,
}

impl Shard {
    /// Shard `i` of `shards` for the hosts `subset` of `run`, sending on `tx`.
    fn new(
        run: &RunParts,
        subset: &Arc<[usize]>,
        claims: Option<&Arc<AtomicUsize>>,
        config: &ShardConfig,
        i: usize,
        shards: usize,
        tx: &Sender<Event>,
    ) -> Shard {
        Shard {
            index: i,
            shards,
            fanout: config.shard_fanout(i, shards),
            targets: run.targets.clone(),
            subset: subset.clone(),
            shared: run.shared.clone(),
            ctx_parts: (run.job.clone(), run.settings.clone(), run.plans.clone()),
            sink: EventSink {
                tx: tx.clone(),
                notify: run.notify.clone(),
                budget: run.budget.clone(),
            },
            cancel: run.cancel.clone(),
            panic: config.panic_shard == Some(i),
            cache: None,
            jumps: run.jumps.clone(),
            claims: claims.cloned(),
        }
    }
}

fn shard_thread(
    shard: Shard,
    core: Option<core_affinity::CoreId>,
    ready: Sender<Result<(), String>>,
    go: Receiver<bool>,
) {
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        tracing::warn!(shard = shard.index, "cannot pin shard to core {}", core.id);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "shard {}: cannot build its runtime: {e}",
                shard.index
            )));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    if go.recv() != Ok(true) {
        return;
    }
    let index = shard.index;
    let notify = shard.sink.notify.clone();
    // A panic in the shard's own code must not lose the other shards' results: catch it, drop the
    // runtime (and with it every sender this shard holds), and let the merger fill in `internal`
    // results for this shard's unfinished hosts.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(shard.run())));
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

impl Shard {
    async fn run(self) {
        let (job, settings, plans) = self.ctx_parts.clone();
        let agent = settings
            .auth
            .agent
            .clone()
            .map(|p| Arc::new(AgentPool::new(p, settings.auth.agent_concurrency)));
        let ctx = Arc::new(HostCtx {
            settings,
            plans,
            agent,
            job,
            sink: self.sink.clone(),
            cancel: self.cancel.clone(),
            shared: self.shared.clone(),
            cache: self.cache.clone(),
            // Always there: ssh_config may give some hosts a ProxyJump even without -J
            // (nothing starts until a host needs a bastion).
            jumps: Some(self.jumps.clone()),
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
                _ = self.cancel.cancelled() => None,
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
            if self.shared.tripped() {
                not_started.push((index, ErrorKind::Skipped));
                stopped = Some(ErrorKind::Skipped);
                continue;
            }
            let ctx = ctx.clone();
            let targets = self.targets.clone();
            let handle = tasks.spawn(async move {
                if let Some(target) = targets.get(index) {
                    let result = run_host(&ctx, index, target).await;
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
            if let Some(t) = self.targets.get(index) {
                let default_plan = crate::transport::HostPlan::default();
                let plan = ctx
                    .plans
                    .as_ref()
                    .and_then(|p| p.get(index))
                    .unwrap_or(&default_plan);
                let t = crate::transport::effective_target(&ctx.settings, plan, t);
                let message = match why {
                    ErrorKind::Skipped => format!(
                        "not started: more than {} hosts failed (max-fail)",
                        self.shared.max_fail().unwrap_or_default()
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
            let Some(t) = self.targets.get(index) else {
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

/// Authenticated connections a pool shard keeps between runs, by host index.
#[derive(Clone, Default)]
pub(crate) struct ConnCache(Arc<parking_lot::Mutex<HashMap<usize, crate::transport::Connection>>>);

impl ConnCache {
    pub(crate) fn lock(
        &self,
    ) -> parking_lot::MutexGuard<'_, HashMap<usize, crate::transport::Connection>> {
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

/// Long-lived shard threads for a connected fleet: each keeps the authenticated connections
/// of its hosts (host `i` always on shard `i % shards`, for any `i`: hosts added later get
/// higher indices and spread over the same threads) between runs, and runs one job at a
/// time (jobs sent while one runs wait their turn). [`Pool::forget`] disconnects hosts that
/// left the fleet, in turn with the jobs. Dropping the pool disconnects every kept
/// connection and joins the threads.
#[derive(Debug)]
pub struct Pool {
    workers: Vec<Worker>,
    config: ShardConfig,
}

#[derive(Debug)]
struct Worker {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Work>>,
    thread: Option<JoinHandle<()>>,
}

/// What a pool thread is asked to do, in the order asked.
#[derive(Debug)]
enum Work {
    /// Run its share of a job, then say it is done (and whether it panicked).
    Job(Shard, Sender<bool>),
    /// Disconnect the kept connections of these hosts (they left the fleet).
    Forget(Vec<usize>),
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("index", &self.index)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts the shard threads for a fleet of `hosts` hosts (all-or-nothing).
    pub fn start(hosts: usize, config: &ShardConfig) -> Result<Pool, Error> {
        let shards = config.effective_shards(hosts);
        let cores = pin_cores(config);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(shards);
        let mut workers = Vec::with_capacity(shards);
        let mut failure = None;
        for i in 0..shards {
            // A tokio channel: the pool thread waits for work inside its runtime, so the
            // kept connections stay serviced between jobs.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let core = core_for(&cores, i);
            let ready = ready_tx.clone();
            match std::thread::Builder::new()
                .name(format!("fleetsh-pool-{i}"))
                .spawn(move || pool_thread(i, core, ready, rx))
            {
                Ok(t) => workers.push(Worker {
                    tx: Some(tx),
                    thread: Some(t),
                }),
                Err(e) => {
                    failure = Some(format!("cannot spawn shard thread {i}: {e}"));
                    break;
                }
            }
        }
        drop(ready_tx);
        await_ready(&ready_rx, workers.len(), &mut failure);
        let pool = Pool {
            workers,
            config: config.clone(),
        };
        match failure {
            Some(reason) => Err(Error::ShardStart { reason }),
            None => Ok(pool),
        }
    }

    /// Number of shard threads.
    pub fn shards(&self) -> usize {
        self.workers.len()
    }

    /// Runs the hosts `subset` of `run` on the pool's shards, reusing kept connections.
    pub fn run(&self, run: &RunParts, subset: Arc<[usize]>) -> Result<Executor, Error> {
        let shards = self.workers.len();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut waiters = Vec::with_capacity(shards);
        for (i, w) in self.workers.iter().enumerate() {
            // Pool shards own their hosts by index (no shared cursor).
            let shard = Shard::new(run, &subset, None, &self.config, i, shards, &tx);
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            let sent =
                w.tx.as_ref()
                    .is_some_and(|t| t.send(Work::Job(shard, done_tx)).is_ok());
            if !sent {
                run.cancel.cancel();
                return Err(Error::ShardStart {
                    reason: format!("shard thread {i} of the connected fleet has exited"),
                });
            }
            waiters.push(Waiter::Done(done_rx));
        }
        Ok(Executor {
            events: rx,
            notify: run.notify.clone(),
            cancel: run.cancel.clone(),
            waiters,
            shards,
        })
    }
    /// Disconnects the kept connections of the hosts `indices` (they left the fleet). Returns
    /// at once: each thread does it after the jobs already sent to it, so a job that already
    /// started on one of these hosts finishes there first; jobs sent afterwards must not
    /// include them (a host run again would be connected anew).
    pub fn forget(&self, indices: &[usize]) {
        let shards = self.workers.len();
        for (i, w) in self.workers.iter().enumerate() {
            let mine: Vec<usize> = indices
                .iter()
                .copied()
                .filter(|&h| shard_of(h, shards) == i)
                .collect();
            if mine.is_empty() {
                continue;
            }
            // A thread that has exited has dropped its connections already.
            if let Some(t) = &w.tx {
                let _ = t.send(Work::Forget(mine));
            }
        }
    }
}

impl Drop for Pool {
    /// Closes every pool thread's queue (each ends once the jobs already queued are done and
    /// its connections are closed) and joins them, off the runtime's thread when dropped on
    /// one (the last reference may be a job's handle dropped in async code).
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.tx = None;
        }
        let threads: Vec<JoinHandle<()>> = self
            .workers
            .iter_mut()
            .filter_map(|w| w.thread.take())
            .collect();
        join_off_runtime("the connected fleet's shards", move || {
            for t in threads {
                let _ = t.join();
            }
        });
    }
}

fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// What ended a pool runtime's `block_on`: the fleet was closed, or a job's shard panicked.
enum PoolStop {
    Closed,
    Panicked(Sender<bool>, Arc<Notify>),
}

fn pool_thread(
    index: usize,
    core: Option<core_affinity::CoreId>,
    ready: Sender<Result<(), String>>,
    mut work: tokio::sync::mpsc::UnboundedReceiver<Work>,
) {
    use futures_util::FutureExt;
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        tracing::warn!(shard = index, "cannot pin shard to core {}", core.id);
    }
    let mut rt = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {index}: cannot build its runtime: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    let cache = ConnCache::default();
    loop {
        // The runtime runs while the thread waits for the next job: the kept connections'
        // session tasks keep reading (keepalive replies, late messages). A session left
        // unread between jobs could fill its channel queue and, through a shared bastion,
        // stall every tunnel of that bastion.
        let stop = rt.block_on(async {
            while let Some(next) = work.recv().await {
                let (mut shard, done) = match next {
                    Work::Job(shard, done) => (shard, done),
                    Work::Forget(hosts) => {
                        let gone: Vec<_> = {
                            let mut kept = cache.lock();
                            hosts.iter().filter_map(|h| kept.remove(h)).collect()
                        };
                        say_goodbye_all(gone).await;
                        continue;
                    }
                };
                shard.cache = Some(cache.clone());
                let notify = shard.sink.notify.clone();
                let run = std::panic::AssertUnwindSafe(shard.run())
                    .catch_unwind()
                    .await;
                if run.is_err() {
                    return PoolStop::Panicked(done, notify);
                }
                let _ = done.send(false);
                notify.notify_one();
            }
            PoolStop::Closed
        });
        let PoolStop::Panicked(done, notify) = stop else {
            break;
        };
        tracing::error!(
            shard = index,
            "shard panicked; its unfinished hosts end as internal errors and its connections are dropped"
        );
        // Dropping the runtime drops the aborted host tasks (and their event senders) now,
        // and with them the connections; start afresh.
        cache.lock().clear();
        rt = match build_runtime() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(shard = index, "cannot rebuild the shard's runtime: {e}");
                let _ = done.send(true);
                notify.notify_one();
                return;
            }
        };
        let _ = done.send(true);
        notify.notify_one();
    }
    // The fleet is closed: say goodbye to every server, briefly.
    let kept: Vec<_> = cache.lock().drain().map(|(_, c)| c).collect();
    rt.block_on(say_goodbye_all(kept));
}

/// Disconnects `conns`, telling each server goodbye (given 2 s in all), then drops them.
async fn say_goodbye_all(conns: Vec<crate::transport::Connection>) {
    if conns.is_empty() {
        return;
    }
    let bye = conns.iter().map(crate::transport::say_goodbye);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        futures_util::future::join_all(bye),
    )
    .await;
}

#[allow(clippy::panic)]
fn test_panic(index: usize) {
    panic!("test hook: shard {index} panics on purpose");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_is_split_evenly_and_never_zero() {
        let c = ShardConfig {
            fanout: 10,
            ..Default::default()
        };
        let parts: Vec<usize> = (0..3).map(|i| c.shard_fanout(i, 3)).collect();
        assert_eq!(parts, [4, 3, 3]);
        let c = ShardConfig {
            fanout: 1,
            ..Default::default()
        };
        assert_eq!(c.shard_fanout(1, 2), 1);
    }

    #[test]
    fn shards_never_exceed_hosts() {
        let c = ShardConfig {
            shards: 8,
            ..Default::default()
        };
        assert_eq!(c.effective_shards(3), 3);
        assert_eq!(c.effective_shards(0), 1);
        assert_eq!(c.effective_shards(100), 8);
        let c = ShardConfig {
            shards: 2,
            fanout: 1,
            ..Default::default()
        };
        assert_eq!(
            c.effective_shards(100),
            1,
            "fanout 1 means one host in flight"
        );
    }

    #[test]
    fn round_robin_partition_covers_every_host_once() {
        let shards = 3;
        let mut seen = [0; 10];
        for s in 0..shards {
            for i in (s..10).step_by(shards) {
                assert_eq!(shard_of(i, shards), s);
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}

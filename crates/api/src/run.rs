//! A running job: events as they arrive, the final report, cancellation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TryRecvError};
use fleetsh_core::{ErrorKind, Event, HostError, HostResult, HostTarget, Outcome};
use fleetsh_shard::executor::CancelToken as Token;
use fleetsh_shard::executor::{OutputBudget, RunParts};
use fleetsh_shard::{Executor, Pool, ShardConfig};
use tokio::sync::futures::OwnedNotified;

/// The merger: owns the receiving end, records one result per host, and fills in an `internal`
/// result for any host whose shard stopped without reporting it.
#[derive(Debug)]
struct Merger {
    targets: Arc<[HostTarget]>,
    /// Which hosts have their result.
    seen: Vec<bool>,
    /// The results, when kept for the report (else empty: [`RunHandle::discard_results`]).
    results: Vec<Option<Arc<HostResult>>>,
    /// Counts of the results not kept.
    counts: Option<Counts>,
    remaining: usize,
    pending: VecDeque<Event>,
    finalized: bool,
}

impl Merger {
    fn accept(&mut self, ev: Event, budget: &OutputBudget) -> Option<Event> {
        if let Event::Output { data, .. } = &ev {
            budget.give(data.len());
        }
        if let Event::Finished(r) = &ev
            && !self.record(r)
        {
            tracing::error!(index = r.index, "duplicate or out-of-range result dropped");
            return None;
        }
        Some(ev)
    }

    /// Records host `r.index`'s result: false if it already has one or is not a host of the
    /// run.
    fn record(&mut self, r: &Arc<HostResult>) -> bool {
        match self.seen.get_mut(r.index) {
            Some(seen @ false) => *seen = true,
            _ => return false,
        }
        self.remaining -= 1;
        match &mut self.counts {
            Some(counts) => counts.add(r),
            None => {
                if let Some(slot) = self.results.get_mut(r.index) {
                    *slot = Some(r.clone());
                }
            }
        }
        true
    }

    /// Ends hosts of `batch` that have no result with `kind` and `message(position in batch)`.
    fn fill(
        &mut self,
        parts: &RunParts,
        batch: &[usize],
        kind: ErrorKind,
        message: impl Fn(usize) -> String,
    ) {
        for (pos, &index) in batch.iter().enumerate() {
            if self.seen.get(index) != Some(&false) {
                continue;
            }
            let target = parts
                .resolved_target(index)
                .or_else(|| self.targets.get(index).cloned())
                .unwrap_or_else(|| HostTarget::new("?"));
            let r = Arc::new(HostResult::failed(
                index,
                target,
                HostError::new(kind, message(pos)),
            ));
            self.record(&r);
            self.pending.push_back(Event::Finished(r));
        }
    }
}

/// Where a run's batches execute: fresh shard threads per batch, or a connected fleet's pool.
#[derive(Debug, Clone)]
pub(crate) enum Starter {
    Fresh(ShardConfig),
    Pool(Arc<Pool>),
}

impl Starter {
    fn start(
        &self,
        parts: &RunParts,
        subset: Arc<[usize]>,
    ) -> Result<Executor, fleetsh_shard::Error> {
        match self {
            Starter::Fresh(config) => fleetsh_shard::executor::start(parts, subset, config),
            Starter::Pool(pool) => pool.run(parts, subset),
        }
    }
}

/// A running job. Iterate it (blocking) or turn it into an async [`EventStream`]; [`join`]
/// waits for the end and returns the [`Report`], [`join_timeout`] at most until a deadline.
///
/// Dropping it (or its [`EventStream`]) cancels the run: hosts in flight end at their next
/// await point and their connections are closed. The drop never blocks an async runtime: on
/// a thread that drives a tokio runtime the run's shard threads are joined by a detached
/// thread that ends when they do; elsewhere the drop joins them before it returns. Results
/// already taken from the handle stay with whoever holds them.
///
/// The iterator, [`next_event`], [`join`] and [`join_timeout`] block the calling thread: in
/// async code use [`stream`](RunHandle::stream).
///
/// [`join`]: RunHandle::join
/// [`join_timeout`]: RunHandle::join_timeout
/// [`next_event`]: RunHandle::next_event
#[derive(Debug)]
#[must_use = "dropping a RunHandle cancels the run"]
pub struct RunHandle {
    exec: Option<Executor>,
    current: Arc<[usize]>,
    batches: VecDeque<Arc<[usize]>>,
    parts: RunParts,
    starter: Starter,
    merger: Merger,
    started: Instant,
    max_shards: usize,
    /// Set when a deadline ([`RunHandle::join_timeout`], [`EventStream::join_timeout`])
    /// cancelled the run.
    deadline_hit: bool,
    /// Whether this handle already warned about a blocking call on an async runtime's thread.
    warned_blocking: bool,
}

impl RunHandle {
    pub(crate) fn start(
        parts: RunParts,
        mut batches: VecDeque<Arc<[usize]>>,
        starter: Starter,
    ) -> Result<Self, fleetsh_shard::Error> {
        let n = parts.targets.len();
        // A connected fleet's job may run on a part of its hosts: only those get a result.
        let running = batches.iter().map(|b| b.len()).sum();
        let first = batches.pop_front().unwrap_or_else(|| Arc::from(Vec::new()));
        let exec = starter.start(&parts, first.clone())?;
        let max_shards = exec.shards();
        Ok(RunHandle {
            exec: Some(exec),
            current: first,
            batches,
            merger: Merger {
                targets: parts.targets.clone(),
                seen: vec![false; n],
                results: vec![None; n],
                counts: None,
                remaining: running,
                pending: VecDeque::new(),
                finalized: false,
            },
            parts,
            starter,
            started: Instant::now(),
            max_shards,
            deadline_hit: false,
            warned_blocking: false,
        })
    }

    /// The current batch's shards have all exited: join them, give any host of the batch without
    /// a result an `internal` one, then start the next batch (or end its hosts as cancelled or
    /// skipped).
    fn batch_done(&mut self) {
        if let Some(mut exec) = self.exec.take() {
            exec.join();
            self.merger.fill(
                &self.parts,
                &self.current.clone(),
                ErrorKind::Internal,
                |_| "the shard running this host stopped without a result for it".into(),
            );
        }
        while let Some(next) = self.batches.pop_front() {
            if self.parts.cancel.is_cancelled() {
                self.merger
                    .fill(&self.parts, &next, ErrorKind::Cancelled, |_| {
                        "run cancelled before this host's batch started".into()
                    });
                continue;
            }
            if self.parts.shared.tripped() {
                let m = self.parts.shared.max_fail().unwrap_or_default();
                self.merger
                    .fill(&self.parts, &next, ErrorKind::Skipped, |_| {
                        format!("not started: more than {m} hosts failed (max-fail)")
                    });
                continue;
            }
            match self.starter.start(&self.parts, next.clone()) {
                Ok(exec) => {
                    self.max_shards = self.max_shards.max(exec.shards());
                    self.exec = Some(exec);
                    self.current = next;
                    return;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.merger
                        .fill(&self.parts, &next, ErrorKind::Internal, |_| msg.clone());
                }
            }
        }
        self.merger.finalized = true;
    }

    /// The next event for the caller, waiting for one as `wait` says: events the merger holds
    /// first, then the current batch's channel; a batch whose shards have all gone is joined
    /// and the next one started.
    fn advance(&mut self, wait: Wait) -> Next {
        loop {
            if let Some(ev) = self.merger.pending.pop_front() {
                return Next::Event(ev);
            }
            if self.merger.finalized {
                return Next::Done;
            }
            let received = match (&self.exec, wait) {
                (Some(exec), Wait::Block) => exec.events().recv().ok(),
                (Some(exec), Wait::Until(deadline)) => {
                    match exec.events().recv_deadline(deadline) {
                        Ok(ev) => Some(ev),
                        Err(RecvTimeoutError::Timeout) => return Next::NotReady,
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
                (Some(exec), Wait::No) => match exec.events().try_recv() {
                    Ok(ev) => Some(ev),
                    Err(TryRecvError::Empty) => return Next::NotReady,
                    Err(TryRecvError::Disconnected) => None,
                },
                (None, _) => None,
            };
            match received {
                Some(ev) => {
                    if let Some(ev) = self.merger.accept(ev, &self.parts.budget) {
                        return Next::Event(ev);
                    }
                }
                None => self.batch_done(),
            }
        }
    }

    /// Warns (once per handle) when a blocking call is made on a thread that drives an async
    /// runtime: it would stall every task of that thread until the run ends.
    fn check_blocking(&mut self, call: &str) {
        if !self.warned_blocking && tokio::runtime::Handle::try_current().is_ok() {
            self.warned_blocking = true;
            tracing::warn!(
                "RunHandle::{call} blocks, and was called on a thread that drives a tokio runtime: \
                 that runtime's other tasks stall until it returns; use RunHandle::stream() \
                 (EventStream) inside async code"
            );
        }
    }

    /// The run's hosts, in order; events name hosts by their index here. For a job on a
    /// [`ConnectedFleet`](crate::ConnectedFleet) this is the fleet's whole host table
    /// ([`ConnectedFleet::hosts`](crate::ConnectedFleet::hosts)) when the job started, of
    /// which the job may run only a part ([`ConnectedFleet::run_on`](crate::ConnectedFleet::run_on),
    /// removed hosts): only those hosts get a result.
    pub fn hosts(&self) -> &[HostTarget] {
        &self.merger.targets
    }

    /// The same table as [`hosts`](Self::hosts), shared rather than borrowed (no copy), for a
    /// consumer that outlives its borrow of the handle.
    pub fn shared_hosts(&self) -> Arc<[HostTarget]> {
        self.merger.targets.clone()
    }

    /// The job this run runs.
    pub(crate) fn job(&self) -> &fleetsh_core::Job {
        &self.parts.job
    }

    /// Hosts without a result yet.
    pub fn remaining(&self) -> usize {
        self.merger.remaining
    }

    /// Number of shard threads (the most used by any batch).
    pub fn shards(&self) -> usize {
        self.max_shards
    }

    /// Cancels the run: no new host starts, hosts in flight end as `cancelled` with the output
    /// they had sent. Events keep arriving until every host has its result.
    pub fn cancel(&self) {
        self.parts.cancel.cancel();
    }

    /// A cloneable handle that cancels this run from any thread (e.g. a signal handler's).
    pub fn canceller(&self) -> Canceller {
        Canceller(self.parts.cancel.clone())
    }

    /// Blocks for the next event; `None` once every host has its result.
    ///
    /// This blocks the calling thread: inside async code (on a thread that drives a tokio
    /// or other async runtime) use [`RunHandle::stream`] instead, or every other task of that
    /// thread stalls until an event arrives. Called on a tokio runtime's thread it logs a
    /// warning (`tracing`, once per handle). The same holds for the [`Iterator`]
    /// implementation, [`join`](Self::join) and [`join_timeout`](Self::join_timeout).
    pub fn next_event(&mut self) -> Option<Event> {
        self.check_blocking("next_event");
        self.advance(Wait::Block).event()
    }

    /// The next event if one is ready now, without blocking; `None` if none is ready yet or
    /// the run is over ([`RunHandle::next_event`] blocks and tells the two apart). A consumer
    /// that writes events out can take what is ready, then flush once.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.advance(Wait::No).event()
    }

    /// Stops keeping each host's result for the report: for a consumer that takes every result
    /// from the events (the iterator, [`next_event`](Self::next_event), the stream) and keeps
    /// what it needs itself, so that a run's memory does not grow with its hosts. The
    /// [`Report`] then has no [`results`](Report::results) but their
    /// [`counts`](Report::counts), from which its totals come. Results already kept are
    /// counted and dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let sim = fleetsh_sim::SimFleet::start(fleetsh_sim::SimConfig {
    /// #     count: 3, port: 0, state_dir: dir.path().to_path_buf(), ..Default::default()
    /// # })?;
    /// # let hosts: Vec<fleetsh::HostTarget> = sim.hosts().iter()
    /// #     .map(|h| fleetsh::HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
    /// #     .collect();
    /// use fleetsh::{Engine, Event, Job};
    ///
    /// let engine = Engine::builder()
    ///     .no_agent()
    ///     .identity_file(sim.client_key_file())
    ///     .known_hosts(sim.known_hosts_file())
    ///     .build()?;
    /// let mut run = engine.run(hosts, Job::new("echo hello"))?.discard_results();
    /// let mut hello = 0;
    /// while let Some(ev) = run.next_event() {
    ///     if let Event::Finished(r) = ev {
    ///         hello += usize::from(r.stdout == b"hello\n");
    ///     }
    /// }
    /// let report = run.join();
    /// assert!(report.results.is_empty());
    /// assert_eq!((report.ok_count(), hello), (3, 3));
    /// assert!(report.all_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn discard_results(mut self) -> Self {
        let mut counts = Counts::default();
        for r in std::mem::take(&mut self.merger.results)
            .into_iter()
            .flatten()
        {
            counts.add(&r);
        }
        self.merger.counts = Some(counts);
        self
    }

    /// Waits for every host and returns the report (results of hosts already seen through the
    /// iterator or stream included).
    ///
    /// Blocks the calling thread until the run ends: inside async code use
    /// [`EventStream::join`] ([`RunHandle::stream`]); called on a tokio runtime's thread this
    /// logs a warning (see [`next_event`](Self::next_event)).
    pub fn join(mut self) -> Report {
        self.check_blocking("join");
        while self.advance(Wait::Block).event().is_some() {}
        self.into_report()
    }

    /// As [`join`](Self::join), but for at most `timeout` (parallel-ssh's
    /// `join(output, timeout=...)`): when the deadline comes first, the run is cancelled,
    /// hosts still running end `cancelled` with the output they had sent, hosts not started
    /// end `cancelled` too, and [`Report::deadline_hit`] is set. Every host still has exactly
    /// one result. The return follows the deadline closely: hosts in flight end at their next
    /// await point, and their connections are dropped.
    ///
    /// A blocking call, like [`join`](Self::join); for async code see
    /// [`EventStream::join_timeout`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let sim = fleetsh_sim::SimFleet::start(fleetsh_sim::SimConfig {
    /// #     count: 3, port: 0, state_dir: dir.path().to_path_buf(), ..Default::default()
    /// # })?;
    /// # let hosts: Vec<fleetsh::HostTarget> = sim.hosts().iter()
    /// #     .map(|h| fleetsh::HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
    /// #     .collect();
    /// use std::time::Duration;
    /// use fleetsh::{Engine, ErrorKind, Job};
    ///
    /// let engine = Engine::builder()
    ///     .no_agent()
    ///     .identity_file(sim.client_key_file())
    ///     .known_hosts(sim.known_hosts_file())
    ///     .build()?;
    /// let report = engine
    ///     .run(hosts, Job::new("echo started; sleep 30"))?
    ///     .join_timeout(Duration::from_secs(2));
    /// assert!(report.deadline_hit);
    /// for r in &report.results {
    ///     assert_eq!(r.error.as_ref().map(|e| e.kind), Some(ErrorKind::Cancelled));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(mut self, timeout: Duration) -> Report {
        self.check_blocking("join_timeout");
        // A timeout too far to represent is no timeout.
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.join();
        };
        while Instant::now() < deadline {
            if let Next::Done = self.advance(Wait::Until(deadline)) {
                return self.into_report();
            }
        }
        // The deadline passed; hosts whose results were already in do not make it a hit.
        if self.remaining() > 0 {
            self.deadline_hit = true;
            self.cancel();
        }
        while self.advance(Wait::Block).event().is_some() {}
        self.into_report()
    }

    fn into_report(mut self) -> Report {
        let results = std::mem::take(&mut self.merger.results)
            .into_iter()
            .flatten()
            .collect();
        Report {
            results,
            counts: self.merger.counts.take(),
            wall: self.started.elapsed(),
            shards: self.max_shards,
            deadline_hit: self.deadline_hit,
        }
    }

    /// An async stream of the events (for use inside any async runtime).
    pub fn stream(self) -> EventStream {
        EventStream {
            handle: self,
            waiter: None,
        }
    }
}

impl Iterator for RunHandle {
    type Item = Event;
    /// Blocks: see [`RunHandle::next_event`].
    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }
}

/// How long [`RunHandle::advance`] may wait for an event.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Until one arrives.
    Block,
    /// Not at all.
    No,
    /// Until this instant.
    Until(Instant),
}

/// What [`RunHandle::advance`] found.
enum Next {
    /// An event for the caller.
    Event(Event),
    /// Every host has its result.
    Done,
    /// Nothing ready yet (only when not waiting, or at the deadline).
    NotReady,
}

impl Next {
    /// The event, if this is one.
    fn event(self) -> Option<Event> {
        match self {
            Next::Event(ev) => Some(ev),
            Next::Done | Next::NotReady => None,
        }
    }
}

/// The async form of a [`RunHandle`]: a `futures_core::Stream` of [`Event`]s, for use on any
/// async runtime. Dropping it cancels the run without blocking (see [`RunHandle`]).
#[must_use = "streams do nothing unless polled"]
pub struct EventStream {
    handle: RunHandle,
    waiter: Option<Pin<Box<OwnedNotified>>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// Cancels the run (see [`RunHandle::cancel`]).
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// The run's hosts.
    pub fn hosts(&self) -> &[HostTarget] {
        self.handle.hosts()
    }

    /// The job this run runs.
    pub(crate) fn job(&self) -> &fleetsh_core::Job {
        self.handle.job()
    }

    /// A cloneable handle that cancels this run from any thread or task.
    pub fn canceller(&self) -> Canceller {
        self.handle.canceller()
    }

    /// Consumes the rest of the stream and returns the report (results of hosts already seen
    /// through the stream included). Does not block the runtime's thread.
    pub async fn join(mut self) -> Report {
        while std::future::poll_fn(|cx| Pin::new(&mut self).poll_next_event(cx))
            .await
            .is_some()
        {}
        self.handle.into_report()
    }

    /// As [`join`](Self::join), but for at most `timeout`: at the deadline the run is
    /// cancelled, hosts that have not finished end `cancelled` (with the output they had
    /// sent), and [`Report::deadline_hit`] is set; every host still has exactly one result
    /// (see [`RunHandle::join_timeout`]). Works on any async runtime: the deadline is kept by
    /// a small helper thread that ends with the join. A `tokio::time::timeout` around
    /// [`join`](Self::join) would instead drop the stream at the deadline, and with it the
    /// results received so far; to keep them with your own timer, cancel through a
    /// [`canceller`](Self::canceller) and keep awaiting `join`.
    pub async fn join_timeout(mut self, timeout: Duration) -> Report {
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let notify = self.handle.parts.notify.clone();
        // 0: running, 1: the join saw the end, 2: the deadline came first. The timer only
        // says so and wakes the stream; the stream cancels, if any host is still running.
        let state = Arc::new(AtomicU8::new(0));
        let timer_state = state.clone();
        let timer = std::thread::Builder::new()
            .name("fleetsh-deadline".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout)
                    && timer_state
                        .compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    notify.notify_one();
                }
            });
        if let Err(e) = timer {
            tracing::warn!(
                "join_timeout: cannot start the deadline thread ({e}); joining without a deadline"
            );
        }
        let mut deadline_seen = false;
        loop {
            let next = std::future::poll_fn(|cx| {
                if !deadline_seen && state.load(Ordering::SeqCst) == 2 {
                    deadline_seen = true;
                    if self.handle.remaining() > 0 {
                        self.handle.deadline_hit = true;
                        self.handle.cancel();
                    }
                }
                Pin::new(&mut self).poll_next_event(cx)
            })
            .await;
            if next.is_none() {
                break;
            }
        }
        // The end came first: the timer stops without a word.
        let _ = state.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
        drop(done_tx);
        self.handle.into_report()
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match self.handle.advance(Wait::No) {
                Next::Event(ev) => return Poll::Ready(Some(ev)),
                Next::Done => return Poll::Ready(None),
                Next::NotReady => {
                    let notify = self.handle.parts.notify.clone();
                    let waiter = self
                        .waiter
                        .get_or_insert_with(|| Box::pin(notify.notified_owned()));
                    match waiter.as_mut().poll(cx) {
                        // A permit: something was sent (or a shard ended) since we last looked.
                        Poll::Ready(()) => self.waiter = None,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_next_event(cx)
    }
}

/// Cancels a run from any thread.
#[derive(Debug, Clone)]
pub struct Canceller(Token);

impl Canceller {
    /// Cancels the run (idempotent).
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// The end of a run: exactly one result per host, in host order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One result per host of the run, in index order. For [`Engine::run`](crate::Engine::run)
    /// and a whole connected fleet, `results[i]` is host `i` of the run's host list; a job on
    /// a part of a connected fleet ([`ConnectedFleet::run_on`](crate::ConnectedFleet::run_on),
    /// a fleet with removed hosts) has results for its hosts only: use each result's
    /// [`index`](HostResult::index), the host's fleet index.
    pub results: Vec<Arc<HostResult>>,
    /// The counts of the results by outcome and error kind, when the run did not keep them
    /// ([`RunHandle::discard_results`]): the totals below come from here; `None` when
    /// `results` holds every host.
    pub counts: Option<Counts>,
    /// Wall time from the start of the run to the last result.
    pub wall: Duration,
    /// Shard threads used.
    pub shards: usize,
    /// Whether the deadline of [`RunHandle::join_timeout`] or [`EventStream::join_timeout`]
    /// came before the end of the run, which was then cancelled: hosts that had not finished
    /// by then ended `cancelled`.
    pub deadline_hit: bool,
}

impl Report {
    /// Hosts in the report.
    pub fn hosts(&self) -> usize {
        match &self.counts {
            Some(c) => c.hosts,
            None => self.results.len(),
        }
    }

    /// Hosts whose command exited 0.
    pub fn ok_count(&self) -> usize {
        match &self.counts {
            Some(c) => c.ok,
            None => self.results.iter().filter(|r| r.is_ok()).count(),
        }
    }

    /// Whether every host ran its command and exited 0.
    pub fn all_ok(&self) -> bool {
        self.ok_count() == self.hosts()
    }

    /// Results that are not OK (none when the results were not kept: see
    /// [`Report::counts`]).
    pub fn failures(&self) -> impl Iterator<Item = &Arc<HostResult>> {
        self.results.iter().filter(|r| !r.is_ok())
    }

    /// Counts by outcome, sorted.
    pub fn outcome_counts(&self) -> Vec<(Outcome, usize)> {
        if let Some(c) = &self.counts {
            return c.outcomes.iter().map(|(o, n)| (o.clone(), *n)).collect();
        }
        let mut c = Counts::default();
        for r in &self.results {
            c.add(r);
        }
        c.outcomes.into_iter().collect()
    }

    /// Counts of failed hosts by error kind.
    pub fn error_counts(&self) -> Vec<(ErrorKind, usize)> {
        if let Some(c) = &self.counts {
            return c.errors.iter().map(|(k, n)| (*k, *n)).collect();
        }
        let mut c = Counts::default();
        for r in &self.results {
            c.add(r);
        }
        c.errors.into_iter().collect()
    }
}

/// Results counted rather than kept ([`RunHandle::discard_results`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Hosts counted.
    pub hosts: usize,
    /// Of them, OK ([`HostResult::is_ok`]).
    pub ok: usize,
    /// By outcome.
    pub outcomes: std::collections::BTreeMap<Outcome, usize>,
    /// Failed hosts by error kind.
    pub errors: std::collections::BTreeMap<ErrorKind, usize>,
}

impl Counts {
    /// Counts `r`.
    pub fn add(&mut self, r: &HostResult) {
        self.hosts += 1;
        self.ok += usize::from(r.is_ok());
        *self.outcomes.entry(r.outcome()).or_insert(0) += 1;
        if let Some(e) = &r.error {
            *self.errors.entry(e.kind).or_insert(0) += 1;
        }
    }
}

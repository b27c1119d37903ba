//! `fleetsh.Run`: a running job as a blocking iterator and an asyncio async iterator of its
//! hosts' results, with `join` and `cancel`; `Run.events()` and `Run.lines()`, the same run
//! read as output events or as lines ([`Stream`]).
//!
//! # How results reach Python
//!
//! Each run has one *feeder* thread of its own that owns the [`RunHandle`] and never touches
//! Python, started when the run is first read (which fixes how it is read: results, events
//! or lines): it blocks for the next item, then takes every item already waiting without
//! blocking, and appends that whole batch to the run's queue under one lock. A Python consumer takes results from the queue without waiting
//! while it has any, and releases the GIL only when it is empty:
//!
//! - `for r in run` waits on a condition variable with the GIL released, in slices of
//!   [`SIGNAL_CHECK`] so that Ctrl-C (any Python signal handler) is seen while it waits;
//! - `async for r in run` registers an asyncio future as a waiter. When the feeder appends a
//!   batch and finds waiters, it attaches to the interpreter once for the whole batch and
//!   wakes each waiter's event loop with `loop.call_soon_threadsafe`. The loop never blocks
//!   and nothing polls: a waiting task costs nothing until results arrive, and results that
//!   arrive while the task is busy are all taken by its next iterations without any wake-up.
//!
//! The engine's results are shared, not copied: each crosses into Python as one small object
//! whose fields are converted when read (see [`crate::result`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::{PyRuntimeError, PyStopAsyncIteration, PyStopIteration, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

use fleetsh::{Canceller, Event, HostTarget, LineEvent, Lines, RunHandle};

use crate::errors;
use crate::output::{self, Item};
use crate::result::Report;

/// How long a blocking wait goes without looking at Python's signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The most events the feeder takes in one batch before handing it over.
const MAX_BATCH: usize = 4096;

/// What the feeder and the consumers share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever results are appended or the run ends.
    changed: Condvar,
}

/// The queue of items not yet taken by Python, and the end of the run.
#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Item>,
    /// asyncio futures to complete when results arrive or the run ends.
    waiters: Vec<Waiter>,
    /// Set once every host has its result and the run has ended.
    end: Option<End>,
    /// Results queued so far (every host has its result once it reaches the run's hosts).
    results: usize,
}

/// How the run ended.
#[derive(Debug, Clone)]
enum End {
    /// Every host has its result.
    Report(Arc<fleetsh::Report>),
    /// The feeder thread stopped without the report (it never does unless it panics).
    Lost,
}

/// An asyncio future waiting for results, with its event loop.
#[derive(Debug)]
struct Waiter {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
}

impl Shared {
    /// Changes the state under the lock, wakes blocked consumers, and completes the asyncio
    /// waiters (attached to the interpreter once for all of them).
    fn publish(&self, change: impl FnOnce(&mut State)) {
        let waiters = {
            let mut s = self.state.lock();
            change(&mut s);
            std::mem::take(&mut s.waiters)
        };
        self.changed.notify_all();
        if waiters.is_empty() {
            return;
        }
        // None when the interpreter is shutting down: nobody is waiting any more.
        let _ = Python::try_attach(|py| {
            let wake = match wake_function(py) {
                Ok(f) => f,
                Err(e) => {
                    e.write_unraisable(py, None);
                    return;
                }
            };
            for w in waiters {
                // A closed event loop refuses the call: its task is gone.
                let _ = w.event_loop.call_method1(
                    py,
                    pyo3::intern!(py, "call_soon_threadsafe"),
                    (wake, w.future),
                );
            }
        });
    }

    /// Up to `max` (at least 1) queued items, or the end, without waiting.
    fn take(&self, max: usize) -> Taken {
        let mut s = self.state.lock();
        if s.queue.is_empty() {
            return match &s.end {
                Some(end) => Taken::End(end.clone()),
                None => Taken::Empty,
            };
        }
        let n = s.queue.len().min(max.max(1));
        Taken::Items(s.queue.drain(..n).collect())
    }

    /// Waits (without the GIL) until results are queued, the run ends, or `limit` passes.
    fn wait(&self, limit: Duration) {
        let mut s = self.state.lock();
        if s.queue.is_empty() && s.end.is_none() {
            self.changed.wait_for(&mut s, limit);
        }
    }

    /// Waits (without the GIL) until the run ends or `limit` passes.
    fn wait_end(&self, limit: Duration) -> Option<End> {
        let mut s = self.state.lock();
        if s.end.is_none() {
            self.changed.wait_for(&mut s, limit);
        }
        s.end.clone()
    }
}

/// What [`Shared::take`] found.
enum Taken {
    Items(Vec<Item>),
    End(End),
    Empty,
}

/// Ends the run's state as lost if the feeder stops without the report.
struct FeederGuard(Arc<Shared>);

impl Drop for FeederGuard {
    fn drop(&mut self) {
        if self.0.state.lock().end.is_none() {
            self.0.publish(|s| s.end = Some(End::Lost));
        }
    }
}

/// How a run is read: each mode queues different items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each host's result (`for r in run`).
    Results,
    /// Output as received, transfer progress and results (`run.events()`).
    Events,
    /// Each host's lines, then its result (`run.lines()`).
    Lines,
}

impl Mode {
    /// How the mode is asked for in Python, for errors.
    fn name(self) -> &'static str {
        match self {
            Mode::Results => "its results (for r in run)",
            Mode::Events => "events()",
            Mode::Lines => "lines()",
        }
    }
}

/// Where the feeder takes items from.
enum Source {
    /// Events of the run, kept as `mode` asks (results only, or every event).
    Events(RunHandle, Mode),
    /// The run's lines.
    Lines(Lines),
}

impl Source {
    fn new(handle: RunHandle, mode: Mode) -> Source {
        match mode {
            Mode::Lines => Source::Lines(handle.lines()),
            Mode::Results | Mode::Events => Source::Events(handle, mode),
        }
    }

    /// The next item: waiting for it with `block` (then `None` is the end), else only if one
    /// is ready (then `None` is "nothing now").
    fn next(&mut self, block: bool) -> Option<Item> {
        match self {
            Source::Events(handle, mode) => loop {
                let event = if block {
                    handle.next_event()?
                } else {
                    handle.try_next_event()?
                };
                match (event, *mode) {
                    (Event::Finished(r), _) => return Some(Item::Result(r)),
                    (Event::Output { host, stream, data }, Mode::Events) => {
                        return Some(Item::Output {
                            index: host,
                            stream,
                            data,
                        });
                    }
                    (Event::Transferred { host, files, bytes }, Mode::Events) => {
                        return Some(Item::Transferred {
                            index: host,
                            files,
                            bytes,
                        });
                    }
                    _ => {}
                }
            },
            Source::Lines(lines) => loop {
                let event = if block {
                    lines.next()?
                } else {
                    lines.try_next()?
                };
                match event {
                    LineEvent::Line(l) => return Some(Item::Line(l)),
                    LineEvent::Finished(r) => return Some(Item::Result(r)),
                    _ => {}
                }
            },
        }
    }

    fn join(self) -> fleetsh::Report {
        match self {
            Source::Events(handle, _) => handle.join(),
            Source::Lines(lines) => lines.join(),
        }
    }
}

/// The feeder thread: batches of items from the run into the queue, then the report.
fn feed(mut source: Source, shared: Arc<Shared>) {
    let guard = FeederGuard(shared.clone());
    let mut batch = Vec::new();
    while let Some(first) = source.next(true) {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match source.next(false) {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        let results = batch
            .iter()
            .filter(|item| matches!(item, Item::Result(_)))
            .count();
        shared.publish(|s| {
            s.results += results;
            s.queue.extend(batch.drain(..));
        });
    }
    let report = Arc::new(source.join());
    shared.publish(|s| s.end = Some(End::Report(report)));
    drop(guard);
}

/// `_wake(future)`: completes an asyncio future unless it is already done (cancelled).
#[pyfunction]
fn _wake(future: &Bound<'_, PyAny>) -> PyResult<()> {
    if !future.call_method0("done")?.is_truthy()? {
        future.call_method1("set_result", (future.py().None(),))?;
    }
    Ok(())
}

/// The `_wake` function object, made once.
fn wake_function(py: Python<'_>) -> PyResult<&Bound<'_, PyCFunction>> {
    static WAKE: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();
    WAKE.get_or_try_init(py, || pyo3::wrap_pyfunction!(_wake, py).map(Bound::unbind))
        .map(|f| f.bind(py))
}

/// A running job: iterate it (`for r in run`, or `async for r in run` in asyncio code) for
/// each host's result as it finishes, `join()` for the report, `cancel()` to stop it;
/// `events()` or `lines()` to read its output as it arrives instead.
#[pyclass(frozen, module = "fleetsh", name = "Run")]
pub(crate) struct Run {
    shared: Arc<Shared>,
    canceller: Canceller,
    /// The host table results' indices refer to.
    table: Arc<[HostTarget]>,
    /// The number of hosts the run runs on.
    hosts: usize,
    /// The run until it is first read, and then how it is read.
    reading: Mutex<Reading>,
    /// Set when `join(timeout)` reached its deadline with hosts still running.
    deadline_hit: AtomicBool,
    report: PyOnceLock<Py<Report>>,
}

/// A run not read yet, or how it is read.
enum Reading {
    NotYet(Box<RunHandle>),
    As(Mode),
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("hosts", &self.hosts)
            .field("canceller", &self.canceller)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// A run of `hosts` hosts, read once Python reads it.
    pub(crate) fn new(handle: RunHandle, hosts: usize) -> Run {
        Run {
            shared: Arc::new(Shared::default()),
            canceller: handle.canceller(),
            table: handle.shared_hosts(),
            hosts,
            reading: Mutex::new(Reading::NotYet(Box::new(handle))),
            deadline_hit: AtomicBool::new(false),
            report: PyOnceLock::new(),
        }
    }

    /// Starts reading the run as `wanted` (`None`: as results unless it is read already);
    /// fails when it is read another way.
    fn read_as(&self, py: Python<'_>, wanted: Option<Mode>) -> PyResult<()> {
        let mut reading = self.reading.lock();
        match &*reading {
            Reading::As(mode) => match wanted {
                Some(w) if w != *mode => Err(PyRuntimeError::new_err(format!(
                    "this run is read through {}: a run is read one way, its results (for r \
                     in run), events() or lines()",
                    mode.name()
                ))),
                _ => Ok(()),
            },
            Reading::NotYet(_) => {
                let mode = wanted.unwrap_or(Mode::Results);
                let Reading::NotYet(handle) = std::mem::replace(&mut *reading, Reading::As(mode))
                else {
                    return Ok(());
                };
                let feeder = self.shared.clone();
                std::thread::Builder::new()
                    .name("fleetsh-results".into())
                    .spawn(move || feed(Source::new(*handle, mode), feeder))
                    // The handle went with the closure, and cancelled the run as it was
                    // dropped: every host ends cancelled, and the run as lost.
                    .map(drop)
                    .map_err(|e| {
                        self.shared.publish(|s| s.end = Some(End::Lost));
                        errors::raise::<errors::StartError>(
                            py,
                            None,
                            &format!(
                                "cannot start the thread that receives the run's results: {e}"
                            ),
                        )
                    })
            }
        }
    }

    /// The next items (at most `max`, at least one), waiting for them with the GIL released;
    /// `None` at the end, a `TimeoutError` when `limit` passes first (`Some(0)`: no wait). A
    /// signal handler's exception (Ctrl-C's KeyboardInterrupt) while waiting cancels the run.
    fn next_blocking(
        &self,
        py: Python<'_>,
        mode: Mode,
        limit: Option<Duration>,
        max: usize,
    ) -> PyResult<Option<Vec<Item>>> {
        self.read_as(py, Some(mode))?;
        let deadline = limit.and_then(|d| Instant::now().checked_add(d));
        loop {
            match self.shared.take(max) {
                Taken::Items(items) => return Ok(Some(items)),
                Taken::End(End::Report(_)) => return Ok(None),
                Taken::End(End::Lost) => return Err(lost()),
                Taken::Empty => {}
            }
            let slice = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(PyTimeoutError::new_err(format!(
                            "nothing arrived from the run within {:.3} s",
                            limit.map_or(0.0, |l| l.as_secs_f64())
                        )));
                    }
                    left.min(SIGNAL_CHECK)
                }
                None => SIGNAL_CHECK,
            };
            let shared = &self.shared;
            py.detach(|| shared.wait(slice));
            if let Err(e) = py.check_signals() {
                self.canceller.cancel();
                return Err(e);
            }
        }
    }

    /// The next item as a Python object ([`Run::next_blocking`] of one).
    fn next_one(
        &self,
        py: Python<'_>,
        mode: Mode,
        limit: Option<Duration>,
    ) -> PyResult<Option<Py<PyAny>>> {
        match self.next_blocking(py, mode, limit, 1)? {
            Some(items) => match items.into_iter().next() {
                Some(item) => output::to_python(py, item, &self.table).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The report of an ended run (the same object for every call).
    fn report(&self, py: Python<'_>, report: Arc<fleetsh::Report>) -> PyResult<Py<Report>> {
        let deadline_hit = self.deadline_hit.load(Ordering::SeqCst);
        self.report
            .get_or_try_init(py, || Py::new(py, Report::new(report, deadline_hit)))
            .map(|r| r.clone_ref(py))
    }

    /// The awaitable of the next item, for `async for`; `None` at the end.
    fn next_async(slf: Py<Self>, py: Python<'_>, mode: Mode) -> PyResult<Option<NextResult>> {
        slf.get().read_as(py, Some(mode))?;
        if let Taken::End(End::Report(_)) = slf.get().shared.peek_end() {
            return Ok(None);
        }
        Ok(Some(NextResult {
            run: slf,
            future: Mutex::new(None),
        }))
    }
}

/// The error for a run whose results were lost.
fn lost() -> PyErr {
    PyRuntimeError::new_err("the thread receiving this run's results stopped without its report")
}

impl Drop for Run {
    /// A run nobody can reach any more is cancelled, as dropping a Rust `RunHandle` is. A run
    /// never read still holds its handle, whose drop waits for the shard threads to stop:
    /// other Python threads run meanwhile.
    fn drop(&mut self) {
        self.canceller.cancel();
        let reading = std::mem::replace(self.reading.get_mut(), Reading::As(Mode::Results));
        if let Reading::NotYet(handle) = reading {
            // The GIL is held here (unless the interpreter is going away: then the handle is
            // dropped with the closure, unrun).
            let _ = Python::try_attach(move |py| py.detach(move || drop(handle)));
        }
    }
}

#[pymethods]
impl Run {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next host's result, in the order hosts finish (blocks with the GIL released).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next_one(py, Mode::Results, None)
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next host's result (for `async for`), which never blocks the event
    /// loop. Cancelling the task that awaits it cancels the run.
    fn __anext__(slf: Py<Self>, py: Python<'_>) -> PyResult<Option<NextResult>> {
        Run::next_async(slf, py, Mode::Results)
    }

    /// This run read as events as they happen: a `Stream` (blocking and async iterator) of
    /// `Output` (bytes a host sent, as received), `Transferred` (file transfer progress) and
    /// `HostResult` (a host finished, after all of its output). Output arrives while hosts
    /// run when the run was started with `stream=True`; otherwise there is none, and each
    /// host's output is in its result.
    fn events(slf: Py<Self>, py: Python<'_>) -> PyResult<Stream> {
        slf.get().read_as(py, Some(Mode::Events))?;
        Ok(Stream {
            run: slf,
            mode: Mode::Events,
        })
    }

    /// This run read as lines: a `Stream` (blocking and async iterator) of `Line` (one line
    /// of a host's stdout or stderr, without its newline) and `HostResult` (a host finished,
    /// after all of its lines). With `stream=True` lines arrive while hosts run; otherwise
    /// each host's lines come from its output when it finishes.
    fn lines(slf: Py<Self>, py: Python<'_>) -> PyResult<Stream> {
        slf.get().read_as(py, Some(Mode::Lines))?;
        Ok(Stream {
            run: slf,
            mode: Mode::Lines,
        })
    }

    /// Waits for every host and returns the Report (results already iterated included). With
    /// `timeout` (seconds), waits at most that long: at the deadline the run is cancelled,
    /// hosts still running end `cancelled` with the output they had sent, and the report's
    /// `deadline_hit` is set. Blocks with the GIL released; Ctrl-C while it waits cancels the
    /// run.
    #[pyo3(signature = (timeout = None))]
    fn join(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Py<Report>> {
        let limit = crate::args::opt_seconds("timeout", timeout)?;
        self.read_as(py, None)?;
        let deadline = limit.and_then(|d| Instant::now().checked_add(d));
        loop {
            // Past the deadline the run is cancelled: wait for its end in whole slices.
            let slice = match deadline {
                Some(d) if !self.deadline_hit.load(Ordering::SeqCst) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_CHECK),
                _ => SIGNAL_CHECK,
            };
            let shared = &self.shared;
            match py.detach(|| shared.wait_end(slice)) {
                Some(End::Report(report)) => return self.report(py, report),
                Some(End::Lost) => return Err(lost()),
                None => {}
            }
            if let Err(e) = py.check_signals() {
                self.canceller.cancel();
                return Err(e);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) && !self.canceller.is_cancelled() {
                self.deadline_hit.store(true, Ordering::SeqCst);
                self.canceller.cancel();
            }
        }
    }

    /// Cancels the run: no new host starts, hosts in flight end `cancelled` with the output
    /// they had sent. Every host still gets its result; iterate or join to see them.
    fn cancel(&self) {
        self.canceller.cancel();
    }

    /// Whether the run was cancelled.
    #[getter]
    fn cancelled(&self) -> bool {
        self.canceller.is_cancelled()
    }

    /// Whether every host has its result (and the run was read: a run nobody reads stays
    /// not done).
    #[getter]
    fn done(&self) -> bool {
        let s = self.shared.state.lock();
        s.end.is_some() || s.results >= self.hosts
    }

    /// The number of hosts in the run.
    fn __len__(&self) -> usize {
        self.hosts
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block cancels the run if it is still going.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        if !self.done() {
            self.canceller.cancel();
        }
        false
    }

    fn __aenter__(slf: Py<Self>) -> Ready {
        Ready {
            value: Mutex::new(Some(slf.into_any())),
        }
    }

    /// Leaving an `async with` block cancels the run if it is still going.
    #[pyo3(signature = (*_exc))]
    fn __aexit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> Ready {
        if !self.done() {
            self.canceller.cancel();
        }
        Ready {
            value: Mutex::new(Some(
                pyo3::types::PyBool::new(py, false)
                    .to_owned()
                    .into_any()
                    .unbind(),
            )),
        }
    }

    fn __repr__(&self) -> String {
        let s = self.shared.state.lock();
        let state = match (&s.end, self.canceller.is_cancelled()) {
            (Some(_), _) => "done",
            (None, true) => "cancelling",
            (None, false) => "running",
        };
        format!("<fleetsh.Run {} hosts, {state}>", self.hosts)
    }
}

impl Shared {
    /// The end of the run, if it ended and every result was taken.
    fn peek_end(&self) -> Taken {
        let s = self.state.lock();
        match (&s.end, s.queue.is_empty()) {
            (Some(end), true) => Taken::End(end.clone()),
            _ => Taken::Empty,
        }
    }
}

/// An awaitable that is ready at once with its value (`__aenter__`, `__aexit__`).
#[pyclass(frozen, module = "fleetsh", name = "_Ready")]
#[derive(Debug)]
pub(crate) struct Ready {
    value: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let value = self.value.lock().take().unwrap_or_else(|| py.None());
        Err(PyStopIteration::new_err((value,)))
    }
}

/// The awaitable of `Run.__anext__`: ready at once when a result is queued; otherwise it
/// yields an asyncio future that the run's feeder completes when results arrive, and tries
/// again. Thrown into (the awaiting task was cancelled) or closed, it cancels the run.
#[pyclass(frozen, module = "fleetsh", name = "_NextResult")]
#[derive(Debug)]
pub(crate) struct NextResult {
    run: Py<Run>,
    /// The asyncio future yielded last, if any.
    future: Mutex<Option<Py<PyAny>>>,
}

impl NextResult {
    /// One step: the result (as `StopIteration`), the end (`StopAsyncIteration`), or a future
    /// to wait on.
    fn step(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let run = self.run.get();
        let previous = self.future.lock().take();
        drop(previous);
        loop {
            match run.shared.take(1) {
                Taken::Items(items) => {
                    let Some(item) = items.into_iter().next() else {
                        continue;
                    };
                    let item = output::to_python(py, item, &run.table)?;
                    return Err(PyStopIteration::new_err((item,)));
                }
                Taken::End(End::Report(_)) => return Err(PyStopAsyncIteration::new_err(())),
                Taken::End(End::Lost) => return Err(lost()),
                Taken::Empty => {}
            }
            let event_loop = running_loop(py)?;
            let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
            {
                let mut s = run.shared.state.lock();
                if !s.queue.is_empty() || s.end.is_some() {
                    continue;
                }
                s.waiters.push(Waiter {
                    event_loop: event_loop.unbind(),
                    future: future.clone().unbind(),
                });
            }
            // What `await future` does: tells the task to wait for this future.
            future.setattr(pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
            *self.future.lock() = Some(future.clone().unbind());
            return Ok(future.unbind());
        }
    }

    /// The awaiting task is gone or cancelled: cancel the run and the future.
    fn abandon(&self, py: Python<'_>) {
        self.run.get().canceller.cancel();
        let future = self.future.lock().take();
        if let Some(f) = future {
            let _ = f.call_method0(py, pyo3::intern!(py, "cancel"));
        }
    }
}

/// `asyncio.get_running_loop()`.
fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()
}

#[pymethods]
impl NextResult {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// As `__next__` (the value sent is not used).
    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.step(py)
    }

    /// An exception thrown into the awaiting coroutine (asyncio's CancelledError when its
    /// task is cancelled): the run is cancelled and the exception raised.
    #[pyo3(signature = (typ, val = None, _tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: &Bound<'_, PyAny>,
        val: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.abandon(py);
        Err(match val.filter(|v| !v.is_none()) {
            Some(v) => PyErr::from_value(v.clone()),
            None => PyErr::from_value(typ.clone()),
        })
    }

    /// The awaiting coroutine was closed: the run is cancelled.
    fn close(&self, py: Python<'_>) {
        self.abandon(py);
    }
}

/// A run read as events (`Run.events()`) or lines (`Run.lines()`): a blocking iterator (the
/// GIL released while it waits), an asyncio async iterator, and `next(timeout)`.
#[pyclass(frozen, module = "fleetsh", name = "Stream")]
#[derive(Debug)]
pub(crate) struct Stream {
    run: Py<Run>,
    mode: Mode,
}

#[pymethods]
impl Stream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next item (blocks with the GIL released).
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.run.get().next_one(py, self.mode, None)
    }

    /// The next item, waiting at most `timeout` seconds (`None`: as long as it takes; `0`:
    /// not at all): raises `TimeoutError` when nothing arrives in time (the run goes on; call
    /// again), `StopIteration` at the end.
    #[pyo3(signature = (timeout = None))]
    fn next(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let limit = wait_limit(timeout)?;
        self.run
            .get()
            .next_one(py, self.mode, limit)?
            .ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Every item that has arrived, up to `max` (at least one: waits for the first as
    /// `next` does, at most `timeout` seconds), as a list: one call for a whole batch of a
    /// large run's items. Raises `TimeoutError` and `StopIteration` as `next`.
    #[pyo3(signature = (timeout = None, max = 4096))]
    fn next_batch(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
        max: usize,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let limit = wait_limit(timeout)?;
        let run = self.run.get();
        let items = run
            .next_blocking(py, self.mode, limit, max)?
            .ok_or_else(|| PyStopIteration::new_err(()))?;
        items
            .into_iter()
            .map(|item| output::to_python(py, item, &run.table))
            .collect()
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next item (for `async for`); cancelling the task that awaits it
    /// cancels the run.
    fn __anext__(&self, py: Python<'_>) -> PyResult<Option<NextResult>> {
        Run::next_async(self.run.clone_ref(py), py, self.mode)
    }

    /// The run this stream reads.
    #[getter]
    fn run(&self, py: Python<'_>) -> Py<Run> {
        self.run.clone_ref(py)
    }

    fn __repr__(&self) -> String {
        let what = match self.mode {
            Mode::Events => "events",
            Mode::Lines | Mode::Results => "lines",
        };
        format!("<fleetsh.Stream of {what}, {} hosts>", self.run.get().hosts)
    }
}

/// A wait's `timeout` argument: `None` (no limit), or seconds from 0 (no wait) up.
fn wait_limit(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match timeout.filter(|t| !t.is_none()) {
        None => Ok(None),
        Some(t) if t.is_instance_of::<pyo3::types::PyBool>() => {
            Err(errors::wrong_type("timeout", "a number of seconds", t))
        }
        Some(t) => match t.extract::<f64>() {
            Ok(0.0) => Ok(Some(Duration::ZERO)),
            _ => crate::args::seconds("timeout", t).map(Some),
        },
    }
}

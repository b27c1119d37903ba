//! Starting shard threads, the same way for a run's shards and a connected fleet's: each thread
//! pins itself to its core when asked, builds its current-thread tokio runtime, reports ready,
//! and runs only once every thread of the set is ready (all-or-nothing).

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::runtime::Runtime;

use crate::Error;

/// What one shard thread runs on its runtime, once the whole set has started.
pub(super) type Body = Box<dyn FnOnce(Runtime) + Send + 'static>;

/// A current-thread runtime with I/O and timers, as every shard runs.
pub(super) fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Starts one thread per body, named `{name}-{i}`, pinned to a core each (round robin) when
/// `pin`.
///
/// Start protocol (all-or-nothing):
/// 1. spawn every thread; each pins itself (if asked) and builds its runtime, then reports
///    ready (or its error) and waits for a go/abort word;
/// 2. once all have reported, send go to all and return their handles; or, if any spawn or
///    runtime build failed, send abort to all, join them, and return one
///    [`Error::ShardStart`] (no body has run).
pub(super) fn launch(
    name: &str,
    pin: bool,
    bodies: Vec<Body>,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let cores = pin_cores(pin);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(bodies.len());
    let mut threads = Vec::with_capacity(bodies.len());
    let mut gos = Vec::with_capacity(bodies.len());
    let mut failure = None;
    for (i, body) in bodies.into_iter().enumerate() {
        let (go_tx, go_rx) = crossbeam_channel::bounded::<bool>(1);
        let core = core_for(&cores, i);
        let ready = ready_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || shard_thread(i, core, ready, go_rx, body));
        match spawned {
            Ok(t) => {
                threads.push(t);
                gos.push(go_tx);
            }
            Err(e) => {
                failure = Some(format!("cannot spawn shard thread {i}: {e}"));
                break;
            }
        }
    }
    drop(ready_tx);
    await_ready(&ready_rx, threads.len(), &mut failure);
    let go = failure.is_none();
    for g in &gos {
        let _ = g.send(go);
    }
    match failure {
        None => Ok(threads),
        Some(reason) => {
            for t in threads {
                let _ = t.join();
            }
            Err(Error::ShardStart { reason })
        }
    }
}

/// One shard thread: pin, build the runtime, report, wait for the word, run.
fn shard_thread(
    index: usize,
    core: Option<core_affinity::CoreId>,
    ready: Sender<Result<(), String>>,
    go: Receiver<bool>,
    body: Body,
) {
    if let Some(core) = core
        && !core_affinity::set_for_current(core)
    {
        tracing::warn!(shard = index, "cannot pin shard to core {}", core.id);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {index}: cannot build its runtime: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    if go.recv() == Ok(true) {
        body(rt);
    }
}

/// The CPU cores shard threads are pinned to: none unless `pin`; when pinning is asked for
/// but the cores are unknown, says so once and pins nothing.
fn pin_cores(pin: bool) -> Vec<core_affinity::CoreId> {
    if !pin {
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

//! A run's shards ([`start`]: threads of their own for one run or batch) and the handle every
//! run is consumed through ([`Executor`]), whichever threads it runs on.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use fleetsh_core::Event;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::ShardConfig;
use super::launcher::{Body, launch};
use super::shard::{RunParts, Shard};
use crate::Error;

/// A running set of shards. Dropping it cancels the run and joins the threads.
#[derive(Debug)]
#[must_use = "a run's events must be consumed; dropping the executor cancels the run"]
pub struct Executor {
    pub(super) events: Receiver<Event>,
    pub(super) notify: Arc<Notify>,
    pub(super) cancel: CancellationToken,
    pub(super) waiters: Vec<Waiter>,
    pub(super) shards: usize,
}

/// How the end of one shard's part of a run is awaited.
#[derive(Debug)]
pub(super) enum Waiter {
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
pub(super) fn join_off_runtime(what: &str, join: impl FnOnce() + Send + 'static) {
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

/// Starts the shards of a run (or of one batch of a run): the hosts `subset` (indices into
/// `targets`; results carry these indices).
///
/// All-or-nothing: if any shard thread cannot start, none runs a host, the run is cancelled
/// and one [`Error::ShardStart`] says why.
pub fn start(
    run: &RunParts,
    subset: Arc<[usize]>,
    config: &ShardConfig,
) -> Result<Executor, Error> {
    let shards = config.effective_shards(subset.len());
    let (tx, rx) = crossbeam_channel::unbounded();
    let claims = Arc::new(AtomicUsize::new(0));
    let bodies: Vec<Body> = (0..shards)
        .map(|i| {
            let shard = Shard::new(run, &subset, Some(&claims), config, (i, shards), &tx);
            Box::new(move |rt| shard.run_on(rt)) as Body
        })
        .collect();
    // The shards hold the only senders: the channel disconnects when the last one ends.
    drop(tx);
    let threads =
        launch("fleetsh-shard", config.pin, bodies).inspect_err(|_| run.cancel.cancel())?;
    Ok(Executor {
        events: rx,
        notify: run.notify.clone(),
        cancel: run.cancel.clone(),
        waiters: threads.into_iter().map(Waiter::Thread).collect(),
        shards,
    })
}

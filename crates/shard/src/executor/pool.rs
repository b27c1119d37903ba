//! A connected fleet's shard threads ([`Pool`]): long-lived, each keeping its hosts'
//! authenticated connections between runs.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use tokio::sync::Notify;

use super::config::{ShardConfig, shard_of};
use super::launcher::{Body, launch, runtime};
use super::run::{Executor, Waiter, join_off_runtime};
use super::shard::{RunParts, Shard};
use crate::Error;
use crate::host::ConnCache;
use crate::ssh::connect::{Connection, say_goodbye};

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

impl Pool {
    /// Starts the shard threads for a fleet of `hosts` hosts (all-or-nothing).
    pub fn start(hosts: usize, config: &ShardConfig) -> Result<Pool, Error> {
        let shards = config.effective_shards(hosts);
        let mut senders = Vec::with_capacity(shards);
        let bodies: Vec<Body> = (0..shards)
            .map(|i| {
                // A tokio channel: the pool thread waits for work inside its runtime, so the
                // kept connections stay serviced between jobs.
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                senders.push(tx);
                Box::new(move |rt| pool_thread(i, rt, rx)) as Body
            })
            .collect();
        let threads = launch("fleetsh-pool", config.pin, bodies)?;
        let workers = senders
            .into_iter()
            .zip(threads)
            .map(|(tx, thread)| Worker {
                tx: Some(tx),
                thread: Some(thread),
            })
            .collect();
        Ok(Pool {
            workers,
            config: config.clone(),
        })
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
            let shard = Shard::new(run, &subset, None, &self.config, (i, shards), &tx);
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

/// What ended a pool runtime's `block_on`: the fleet was closed, or a job's shard panicked.
enum PoolStop {
    Closed,
    Panicked(Sender<bool>, Arc<Notify>),
}

/// A pool thread: runs the jobs and forgets sent to it, in order, on runtime `rt`, keeping its
/// hosts' connections between jobs; a job whose shard panics drops them and starts afresh.
fn pool_thread(
    index: usize,
    mut rt: tokio::runtime::Runtime,
    mut work: tokio::sync::mpsc::UnboundedReceiver<Work>,
) {
    use futures_util::FutureExt;
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
                let notify = shard.sink.notify().clone();
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
        rt = match runtime() {
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
async fn say_goodbye_all(conns: Vec<Connection>) {
    if conns.is_empty() {
        return;
    }
    let bye = conns.iter().map(say_goodbye);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        futures_util::future::join_all(bye),
    )
    .await;
}

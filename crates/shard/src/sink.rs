//! Where a shard's hosts send their events: the run's channel to the caller, the byte budget
//! that bounds streamed output in flight, and the run's journal, if it keeps one.

use std::sync::Arc;

use crossbeam_channel::Sender;
use fleetsh_core::{Event, HostResult};
use tokio::sync::{Notify, Semaphore};

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
    /// A sink sending on `tx`, waking `notify`, with streamed output bounded by `budget`.
    pub fn new(tx: Sender<Event>, notify: Arc<Notify>, budget: OutputBudget) -> Self {
        EventSink { tx, notify, budget }
    }

    /// Woken after every event.
    pub fn notify(&self) -> &Arc<Notify> {
        &self.notify
    }

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

/// Where a run records, host by host, that its command is about to be sent and its final
/// result (a journal: `fleetsh_core::journal`), so that a re-run of the same run never sends
/// a command twice. Called on the shard threads; each call writes before it returns.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Records that host `index`'s command (or transfer) is about to be sent. `Err` says why
    /// it could not be recorded: the command is then not sent, and the host fails.
    fn started(&self, index: usize) -> Result<(), String>;

    /// Records host `result.index`'s final result.
    fn finished(&self, result: &HostResult);
}

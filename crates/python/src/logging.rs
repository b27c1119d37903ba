//! The engine's warnings into Python's `logging`: a `tracing` layer that hands every warning
//! and error of the engine (host key checking turned off, ssh_config options it ignores, a
//! fanout lowered to fit the open-files limit, ...) to the logger `fleetsh`, where a program's
//! logging configuration shows, files or silences them like any other library's.
//!
//! Only warnings and errors cross: they are rare. Debug output (per-packet detail of the SSH
//! library) never reaches Python. Secrets are never in the engine's messages, whatever their
//! level.
//!
//! The thread that logs never waits for the GIL: it may hold a lock that the thread holding the
//! GIL is waiting for (a connected fleet's members, a run being dropped and joining its shard
//! threads). Records go through a bounded channel to one delivery thread of their own, which
//! attaches to the interpreter and holds nothing else; a record that finds the channel full is
//! dropped and counted, and the count is logged with the next record delivered.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The name of the Python logger the engine's messages go to.
const LOGGER: &str = "fleetsh";

/// Records waiting for the delivery thread at most: a burst beyond it is counted, not kept.
const QUEUE: usize = 1024;

/// Records dropped because the queue was full, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the layer as the process's `tracing` subscriber, unless the process already has
/// one (a program embedding Python in Rust keeps its own), and starts the delivery thread.
pub(crate) fn install() {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let subscriber =
        tracing_subscriber::registry().with(ToPython { tx }.with_filter(LevelFilter::WARN));
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        // Without its thread the layer's records are dropped and counted: nothing blocks.
        let _ = std::thread::Builder::new()
            .name("fleetsh-logging".into())
            .spawn(move || deliver(&rx));
    }
}

/// One record: its `logging` level and message.
struct Record {
    level: u8,
    message: String,
}

/// The delivery thread: each record to the logger `fleetsh`, for as long as the process runs.
fn deliver(rx: &Receiver<Record>) {
    for record in rx {
        // None while the interpreter shuts down: nobody is listening any more.
        let _ = Python::try_attach(|py| {
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let note =
                    format!("{dropped} more engine messages were dropped (too many at once)");
                if let Err(e) = log(py, 30, &note) {
                    e.write_unraisable(py, None);
                }
            }
            if let Err(e) = log(py, record.level, &record.message) {
                e.write_unraisable(py, None);
            }
        });
    }
}

/// The layer: each event becomes one `logging` record, handed to the delivery thread.
struct ToPython {
    tx: Sender<Record>,
}

impl<S: Subscriber> Layer<S> for ToPython {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let level = match *event.metadata().level() {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG => 10,
            Level::TRACE => 5,
        };
        let record = Record {
            level,
            message: text.0,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record)
        {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `logging.getLogger("fleetsh").log(level, "%s", message)`.
fn log(py: Python<'_>, level: u8, message: &str) -> PyResult<()> {
    static LOGGER_OBJECT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logger = LOGGER_OBJECT.get_or_try_init(py, || {
        py.import("logging")?
            .call_method1("getLogger", (LOGGER,))
            .map(Bound::unbind)
    })?;
    logger.call_method1(py, "log", (level, "%s", message))?;
    Ok(())
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, format_args!("{value:?}"));
    }
}

impl Text {
    fn add(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() != "message" {
            let _ = write!(self.0, "{}=", field.name());
        }
        let _ = self.0.write_fmt(value);
    }
}

//! The engine's warnings into Python's `logging`: a `tracing` layer that hands every warning
//! and error of the engine (host key checking turned off, ssh_config options it ignores, a
//! fanout lowered to fit the open-files limit, ...) to the logger `fleetsh`, where a program's
//! logging configuration shows, files or silences them like any other library's.
//!
//! Only warnings and errors cross: they are rare, and each takes the GIL once. Debug output
//! (per-packet detail of the SSH library) never reaches Python. Secrets are never in the
//! engine's messages, whatever their level.

use std::fmt::Write as _;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The name of the Python logger the engine's messages go to.
const LOGGER: &str = "fleetsh";

/// Installs the layer as the process's `tracing` subscriber, unless the process already has
/// one (a program embedding Python in Rust keeps its own).
pub(crate) fn install() {
    let subscriber = tracing_subscriber::registry().with(ToPython.with_filter(LevelFilter::WARN));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The layer: each event becomes one `logging` record.
struct ToPython;

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
        // None while the interpreter shuts down: nobody is listening any more.
        let _ = Python::try_attach(|py| {
            if let Err(e) = log(py, level, &text.0) {
                e.write_unraisable(py, None);
            }
        });
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

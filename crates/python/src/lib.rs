//! fleetsh for Python: the extension module `fleetsh._native` of the Python package `fleetsh`
//! (`python/fleetsh`), built with maturin (`pip install ./crates/python`).
//!
//! - `engine`: `fleetsh.Engine` (the settings of [`fleetsh::EngineBuilder`] as keyword
//!   arguments), `Engine.run`, the copies, `Engine.connect`;
//! - `job`: a job's keyword arguments and the command's forms (one per host too);
//! - `fleet`: `fleetsh.ConnectedFleet`, connections kept between commands;
//! - `transfer`: the copies' arguments;
//! - `run`: `fleetsh.Run`, a blocking and an asyncio iterator of results, `join`, `cancel`;
//!   `fleetsh.Stream` (`events()`, `lines()`); how results reach Python in batches;
//! - `output`: `fleetsh.Output`, `fleetsh.Transferred`, `fleetsh.Line`;
//! - `result`: `fleetsh.HostResult`, `fleetsh.Report`, `fleetsh.ErrorKind`;
//! - `sim`: `fleetsh.sim.Fleet`, a simulated fleet in the Python process;
//! - `logging`: the engine's warnings into Python's `logging` (logger `fleetsh`);
//! - `errors`: the exception classes and the mapping of fleetsh's errors onto them;
//! - `hosts`, `args`: the `hosts` argument and the checks of every other argument.
//!
//! `docs/python.md` is the guide; `tests/` holds the pytest suite that runs against a
//! simulated fleet.

mod args;
mod engine;
mod errors;
mod fleet;
mod hosts;
mod job;
mod logging;
mod output;
mod result;
mod run;
mod sim;
mod transfer;

use pyo3::prelude::*;

/// The module: every class, exception and the `ErrorKind` enum, and the package version.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    logging::install();
    m.add_class::<engine::Engine>()?;
    m.add_class::<run::Run>()?;
    m.add_class::<run::Stream>()?;
    m.add_class::<fleet::ConnectedFleet>()?;
    m.add_class::<output::Output>()?;
    m.add_class::<output::Transferred>()?;
    m.add_class::<output::Line>()?;
    m.add_function(pyo3::wrap_pyfunction!(transfer::host_dir_name, m)?)?;
    m.add_class::<result::HostResult>()?;
    m.add_class::<result::Report>()?;
    m.add_class::<sim::Fleet>()?;
    result::register_error_kind(m)?;
    errors::register(m)?;
    Ok(())
}

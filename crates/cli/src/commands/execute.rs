//! Running a job with its events printed as they come: how `run`, `put` and `get` end.

use std::process::ExitCode;

use anyhow::Result;
use fleetsh::{Engine, Job};
use fleetsh_sim::SimFleet;

use crate::args::CommonArgs;
use crate::output;
use crate::signals;

/// Most events already waiting that are printed before a flush.
const READY_EVENTS_PER_WRITE: usize = 256;

/// Runs `job`, printing events as they come, and returns the exit status. A closed or failing
/// standard output does not end the run: its output is discarded from then on and every host
/// still runs (as pdsh); the summary goes to stderr and the status is the one the run earned.
pub fn execute(
    a: &CommonArgs,
    engine: &Engine,
    hosts: Vec<fleetsh::HostTarget>,
    job: Job,
    fleet: Option<SimFleet>,
    signals: &signals::Signals,
) -> Result<ExitCode> {
    // This controller's part of a split run holds no host (said on stderr): nothing failed.
    if hosts.is_empty() && a.shard.is_some() {
        drop(fleet);
        return Ok(ExitCode::SUCCESS);
    }
    let mut handle = engine.run(hosts, job)?;
    signals.attach(handle.canceller());

    let mut printer = output::Printer::new(&a.output_options(), handle.hosts());
    while let Some(ev) = handle.next_event() {
        printer.event(&ev);
        // Events that are already waiting go out in the same write (one write per host
        // costs a syscall and a wakeup of the reader each); the bound keeps output flowing
        // while events arrive faster than they are printed.
        for _ in 0..READY_EVENTS_PER_WRITE {
            let Some(ev) = handle.try_next_event() else {
                break;
            };
            printer.event(&ev);
        }
        printer.flush();
    }
    let report = handle.join();
    let signal = signals.received();
    printer.finish(&report, signal, engine.kex_guesses());
    drop(fleet);
    Ok(ExitCode::from(printer.exit_status(&report, signal)))
}

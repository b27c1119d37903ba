//! Running a job with its events printed as they come: how `run`, `put` and `get` end.

use std::process::ExitCode;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use fleetsh::journal::{Header, HostState, JournalFile, Split};
use fleetsh::{Engine, ErrorKind, HostError, HostResult, Report};
use fleetsh_sim::SimFleet;

use crate::args::CommonArgs;
use crate::error::usage;
use crate::output;
use crate::settings::Setup;
use crate::signals;

/// Most events already waiting that are printed before a flush.
const READY_EVENTS_PER_WRITE: usize = 256;

/// Runs `job` (the command or transfer written as `what`), printing events as they come, and
/// returns the exit status. A closed or failing standard output does not end the run: its
/// output is discarded from then on and every host still runs (as pdsh); the summary goes to
/// stderr and the status is the one the run earned. With a journal, hosts it already holds a
/// result for are reported from it, not run.
pub fn execute(
    a: &CommonArgs,
    setup: Setup,
    signals: &signals::Signals,
    what: &str,
) -> Result<ExitCode> {
    let Setup {
        engine,
        hosts,
        split,
        job,
        fleet,
    } = setup;
    let engine = &engine;
    // This controller's part of a split run holds no host (said on stderr): nothing failed. Its
    // journal says so, so that a merge finds every part.
    if hosts.is_empty() && a.shard.is_some() {
        if let Some(path) = &a.journal {
            resume(a, path, &hosts, split.as_ref(), what)?;
        }
        drop(fleet);
        return Ok(ExitCode::SUCCESS);
    }
    // The printer keeps what the summary needs of each result as it passes: the run keeps none.
    let (mut handle, earlier) = match &a.journal {
        None => (engine.run(hosts, job)?.discard_results(), Vec::new()),
        Some(path) => {
            let resumed = resume(a, path, &hosts, split.as_ref(), what)?;
            let earlier: Vec<Earlier> = resumed
                .earlier
                .into_iter()
                .map(|(r, lossy)| (Arc::new(r), lossy))
                .collect();
            if resumed.to_run.is_empty() {
                // Every host already has its result in the journal.
                let mut printer = output::Printer::new(&a.out.output_options(), &hosts);
                print_earlier(&mut printer, earlier);
                return Ok(finish(printer, &Report::default(), engine, signals, fleet));
            }
            let journal = Arc::new(resumed.journal.sync(a.journal_sync));
            let handle = engine
                .run_journaled(hosts, &resumed.to_run, job, journal)?
                .discard_results();
            (handle, earlier)
        }
    };
    signals.attach(handle.canceller());

    let mut printer = output::Printer::new(&a.out.output_options(), handle.hosts());
    print_earlier(&mut printer, earlier);
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
    Ok(finish(printer, &report, engine, signals, fleet))
}

/// A result a journal holds, and whether its output was recorded lossy.
type Earlier = (Arc<HostResult>, bool);

/// Prints `earlier` (results a journal holds) as events of this run: output, then result.
fn print_earlier(printer: &mut output::Printer, earlier: Vec<Earlier>) {
    for (r, lossy) in earlier {
        printer.recorded(&r, lossy);
        printer.flush();
    }
}

/// The run's end: the summary of every result printed (the journal's and the run's), the
/// simulated fleet stopped; the exit status is the whole run's.
fn finish(
    mut printer: output::Printer,
    report: &Report,
    engine: &Engine,
    signals: &signals::Signals,
    fleet: Option<SimFleet>,
) -> ExitCode {
    let signal = signals.received();
    printer.finish(report, signal, engine.kex_guesses());
    drop(fleet);
    ExitCode::from(printer.exit_status(signal))
}

/// A run resumed from its journal: the journal open for the hosts still to run, and the
/// results of the others.
struct Resumed {
    journal: JournalFile,
    to_run: Vec<usize>,
    /// Results the journal holds, each with whether its output was recorded lossy.
    earlier: Vec<(HostResult, bool)>,
}

/// Opens the journal at `path` for this run (`what` on `hosts`, this part): hosts never
/// started are to run, hosts with a result keep it, hosts started without one are `unknown`
/// (to run again with `--rerun-unknown`).
fn resume(
    a: &CommonArgs,
    path: &Path,
    hosts: &[fleetsh::HostTarget],
    split: Option<&Split>,
    what: &str,
) -> Result<Resumed> {
    let header = Header::new(what, split, hosts);
    let (journal, replay) = JournalFile::open(path, &header).map_err(usage)?;
    let mut to_run = Vec::new();
    let mut earlier = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let state = replay
            .as_ref()
            .map_or(HostState::NotStarted, |r| r.state(i));
        match (state, replay.as_ref().and_then(|r| r.results.get(&i))) {
            (HostState::Done, Some(record)) => {
                earlier.push((record.clone().into_host_result(i), record.lossy));
            }
            (HostState::Unknown, _) if !a.rerun_unknown => earlier.push((
                HostResult::failed(
                    i,
                    host.clone(),
                    HostError::new(
                        ErrorKind::Unknown,
                        "an earlier run kept in this journal sent the command and stopped before \
                         its result was recorded: it may have run (--rerun-unknown runs it again)",
                    ),
                ),
                false,
            )),
            _ => to_run.push(i),
        }
    }
    if !earlier.is_empty() {
        eprintln!(
            "fleetsh: journal {}: {} of {} hosts are reported from it, {} run now",
            path.display(),
            earlier.len(),
            hosts.len(),
            to_run.len()
        );
    }
    Ok(Resumed {
        journal,
        to_run,
        earlier,
    })
}

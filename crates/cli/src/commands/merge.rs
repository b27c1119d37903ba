//! `fleetsh merge JOURNAL...`: the journals of a split run's parts (`--shard`, `--journal`)
//! printed as the one run a single controller would have made, with the exit status that
//! whole run earned.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use fleetsh::journal::{self, Found, Merged, Replay};
use fleetsh::{ErrorKind, HostError, HostResult, HostTarget, Report};

use crate::args::MergeArgs;
use crate::error::usage;
use crate::output::{self, summary};
use crate::settings::targets::{Selection, whole_list};

/// Results printed before a flush.
const RESULTS_PER_WRITE: usize = 256;

/// `fleetsh merge [-w HOSTS | -H FILE] [output options] JOURNAL...`.
pub fn merge(a: MergeArgs) -> Result<ExitCode> {
    let named = read_all(&a.journals)?;
    let list = if a.hosts.is_empty() && a.hostfile.is_empty() {
        None
    } else {
        let selection = Selection {
            hosts: &a.hosts,
            hostfile: &a.hostfile,
            exclude: &a.exclude,
            retry_failed: None,
        };
        Some(whole_list(
            &selection,
            fleetsh::hosts::DEFAULT_MAX_HOSTS,
            None,
        )?)
    };
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let journals = named.len();
    let mut merged = journal::merge(named, list.as_deref()).map_err(|e| usage(anyhow!(e)))?;
    let notes = notes(&merged, &names, list.is_some());
    // Hosts of the list in no journal, or run by two, make the whole run fail.
    let incomplete = merged.hosts_missing() > 0 || merged.run_twice() > 0;
    let found = std::mem::take(&mut merged.found);

    let mut options = a.out.output_options();
    options.no_progress = true;
    let mut printer = output::Printer::new(&options, &merged.hosts);
    printer.set_merged(journals);
    for (i, (target, found)) in merged.hosts.iter().zip(found).enumerate() {
        let (r, lossy) = result(i, target, found, &names);
        let r = Arc::new(r);
        printer.recorded(&r, lossy);
        if i % RESULTS_PER_WRITE == RESULTS_PER_WRITE - 1 {
            printer.flush();
        }
    }
    printer.note(&notes);
    // The printer keeps what the summary needs of each result printed.
    printer.finish(&Report::default(), None, None);
    let status = printer.exit_status(None);
    Ok(ExitCode::from(if status == 0 && incomplete {
        1
    } else {
        status
    }))
}

/// Reads every journal, named by its path; a torn last line is said on stderr.
fn read_all(paths: &[std::path::PathBuf]) -> Result<Vec<(String, Replay)>> {
    let mut named: Vec<(String, Replay)> = Vec::with_capacity(paths.len());
    let mut seen = std::collections::HashMap::new();
    for path in paths {
        let name = path.display().to_string();
        let bad = |what: String| usage(anyhow!("journal {name}: {what}"));
        let canonical = std::fs::canonicalize(path).map_err(|e| bad(format!("{e}")))?;
        if let Some(first) = seen.insert(canonical, name.clone()) {
            return Err(bad(format!("given twice (also as {first})")));
        }
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let replay = journal::read_from(std::io::BufReader::with_capacity(1 << 16, file))
            .map_err(|e| bad(e.to_string()))?;
        if let Some(line) = replay.torn {
            eprintln!(
                "fleetsh: journal {name}: its last line (line {line}) was cut short, by a controller \
                 killed while writing it, and is ignored"
            );
        }
        named.push((name, replay));
    }
    Ok(named)
}

/// Host `i`'s result in the merged run, and whether its output was recorded lossy.
fn result(i: usize, target: &HostTarget, found: Found, names: &[&str]) -> (HostResult, bool) {
    let name = |j: usize| names.get(j).copied().unwrap_or("?");
    let failed = |kind, message: String| {
        (
            HostResult::failed(i, target.clone(), HostError::new(kind, message)),
            false,
        )
    };
    match found {
        Found::Done { record, .. } => {
            let lossy = record.lossy;
            (record.into_host_result(i), lossy)
        }
        Found::Unknown { journal } => failed(
            ErrorKind::Unknown,
            format!(
                "journal {} says its command was sent and holds no result: it may have run \
                 (its part run again with this journal and --rerun-unknown runs it again)",
                name(journal)
            ),
        ),
        Found::NotStarted { journal } => failed(
            ErrorKind::Missing,
            format!(
                "never started: the run kept in journal {} stopped before it (its part run again \
                 with this journal runs it)",
                name(journal)
            ),
        ),
        Found::Missing => failed(
            ErrorKind::Missing,
            "in no journal: the journal of its part was not given".to_string(),
        ),
    }
}

/// What the merge says on stderr before the summary: parts without a journal, hosts in none,
/// hosts in more than one.
fn notes(m: &Merged, names: &[&str], listed: bool) -> String {
    let mut text = String::new();
    if !m.missing_parts.is_empty() {
        let parts: Vec<String> = m
            .missing_parts
            .iter()
            .map(|p| format!("{p}/{}", m.parts))
            .collect();
        let hosts = m.hosts_missing();
        let named = if listed || hosts == 0 {
            String::new()
        } else {
            " (give the run's host list, -w or -H, to name them)".to_string()
        };
        text.push_str(&format!(
            "fleetsh: no journal of part {}: {} of the {} in the run {} in no journal{named}\n",
            parts.join(", "),
            summary::count(hosts, "host"),
            m.list_hosts,
            if hosts == 1 { "is" } else { "are" },
        ));
    }
    if !m.duplicates.is_empty() {
        let hosts: Vec<String> = m
            .duplicates
            .iter()
            .filter_map(|d| m.hosts.get(d.host))
            .map(ToString::to_string)
            .collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let mut journals: Vec<usize> = m
            .duplicates
            .iter()
            .flat_map(|d| d.journals.iter().copied())
            .collect();
        journals.sort_unstable();
        journals.dedup();
        let journals: Vec<&str> = journals
            .iter()
            .map(|&j| names.get(j).copied().unwrap_or("?"))
            .collect();
        let n = hosts.len();
        text.push_str(&format!(
            "fleetsh: {} {} in more than one journal ({}): {}; each is reported once, from the \
             journal that says most about it\n",
            summary::count(n, "host"),
            if n == 1 { "is" } else { "are" },
            journals.join(", "),
            summary::folded_list(&hosts, 2000),
        ));
        let twice = m.run_twice();
        if twice > 0 {
            text.push_str(&format!(
                "fleetsh: {} {} started by more than one journal: their command may have run \
                 more than once\n",
                summary::count(twice, "host"),
                if twice == 1 { "was" } else { "were" },
            ));
        }
    }
    text
}

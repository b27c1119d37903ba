//! The targets a run selects: host specs and `@group` expressions (`-w`), host files (`-H`),
//! the embedded simulated fleet (`--sim`), the failed hosts of an earlier run
//! (`--retry-failed`), then the exclusions (`-x`), and of those this controller's part
//! (`--shard`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fleetsh::journal::Split;
use fleetsh::{Groups, HostList, HostTarget, Part};
use fleetsh_sim::SimFleet;

use crate::args::CommonArgs;
use crate::error::usage;

/// The hosts the shared flags `a` select, at most `max_hosts`, and with `--shard` which part of
/// the whole list they are; `fleet` is the embedded simulated fleet, if any.
pub fn select(
    a: &CommonArgs,
    max_hosts: usize,
    fleet: Option<&SimFleet>,
) -> Result<(Vec<HostTarget>, Option<Split>)> {
    let hosts = whole_list(
        &Selection {
            hosts: &a.hosts,
            hostfile: &a.hostfile,
            exclude: &a.exclude,
            retry_failed: a.retry_failed.as_deref(),
        },
        max_hosts,
        fleet,
    )?;
    let Some(spec) = &a.shard else {
        return Ok((hosts, None));
    };
    let part = Part::from_spec(spec, |name| std::env::var(name).ok()).map_err(usage)?;
    let mine = part.select(&hosts);
    if mine.is_empty() {
        eprintln!(
            "fleetsh: shard {part} holds none of the {} hosts: nothing to run",
            hosts.len()
        );
    }
    Ok((mine, Some(Split::new(part, &hosts))))
}

/// The host options: `-w`, `-H`, `-x` and `--retry-failed`.
pub struct Selection<'a> {
    pub hosts: &'a [String],
    pub hostfile: &'a [PathBuf],
    pub exclude: &'a [String],
    pub retry_failed: Option<&'a Path>,
}

/// The whole host list `a` selects (before `--shard` takes a part of it), at most `max_hosts`.
pub fn whole_list(
    a: &Selection<'_>,
    max_hosts: usize,
    fleet: Option<&SimFleet>,
) -> Result<Vec<HostTarget>> {
    let mut list = HostList::new().limit(max_hosts);
    let groups = match Groups::default_path().filter(|p| p.exists()) {
        Some(p) => Groups::load(&p).map_err(usage)?,
        None => Groups::new(),
    };
    for spec in a.hosts {
        if Groups::is_expression(spec) {
            for t in groups.evaluate(spec, max_hosts).map_err(usage)? {
                list.include_target(t);
            }
        } else {
            list.include_spec(spec).map_err(usage)?;
        }
    }
    for f in a.hostfile {
        list.include_file(f).map_err(usage)?;
    }
    if let Some(f) = fleet {
        list.include_file(&f.hosts_file()).map_err(usage)?;
    }
    // `--retry-failed`: exactly the failed hosts of the file, with the user and port recorded
    // there, each once; host options beside it narrow them down (an intersection).
    if let Some(f) = a.retry_failed {
        let failed = failed_hosts(f).map_err(usage)?;
        let selected = if a.hosts.is_empty() && a.hostfile.is_empty() && fleet.is_none() {
            failed
        } else {
            let selection = list.build().map_err(usage)?;
            let kept: Vec<HostTarget> = failed
                .into_iter()
                .filter(|t| selection.iter().any(|s| selects(s, t)))
                .collect();
            if kept.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "--retry-failed: none of the failed hosts in {} is among the hosts selected beside it (-w, -H, --sim narrow the retry down)",
                    f.display()
                )));
            }
            kept
        };
        list = HostList::new().limit(max_hosts);
        for t in selected {
            list.include_target(t);
        }
    }
    for spec in a.exclude {
        if Groups::is_expression(spec) {
            for t in groups.evaluate(spec, max_hosts).map_err(usage)? {
                list.exclude_target(t);
            }
        } else {
            list.exclude_spec(spec).map_err(usage)?;
        }
    }
    list.build().map_err(usage)
}

/// Whether a selected target `s` (as typed beside `--retry-failed`) selects the recorded
/// target `t`: same host, and the same user and port where `s` names them.
fn selects(s: &HostTarget, t: &HostTarget) -> bool {
    s.host == t.host
        && s.user.as_ref().is_none_or(|u| t.user.as_ref() == Some(u))
        && s.port.is_none_or(|p| t.port == Some(p))
}

/// The hosts that failed in an earlier `-o json` output: an error, a non-zero exit or a signal.
fn failed_hosts(path: &std::path::Path) -> Result<Vec<HostTarget>> {
    use std::io::BufRead;
    let cannot = || format!("--retry-failed: cannot read {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let mut out = Vec::new();
    // Line by line: the file is never held whole, only the failed hosts.
    for (i, line) in std::io::BufReader::with_capacity(1 << 16, file)
        .lines()
        .enumerate()
    {
        let line = line.with_context(cannot)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = fleetsh::record::parse_line(i + 1, &line)
            .map_err(|e| anyhow::anyhow!("--retry-failed: {}:{e}", path.display()))?;
        if record.failed() {
            out.push(record.target());
        }
    }
    if out.is_empty() {
        bail!("--retry-failed: no failed host in {}", path.display());
    }
    Ok(out)
}

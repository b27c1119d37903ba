//! `fleetsh put` and `fleetsh get`: files to and from every host over SFTP.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use fleetsh::config::Flags;

use super::execute::execute;
use crate::args::{CommonArgs, GetArgs, PutArgs};
use crate::error::usage;
use crate::settings::{expand_tilde, setup};
use crate::signals;

/// `fleetsh put -w HOSTS LOCAL... REMOTE`.
pub fn put(a: PutArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    preserve_not_port("put", a.preserve, &a.paths)?;
    let Some((remote, locals)) = a.paths.split_last() else {
        return Err(usage(anyhow::anyhow!("put: needs LOCAL... REMOTE")));
    };
    let locals: Vec<PathBuf> = locals.iter().map(PathBuf::from).collect();
    // Read the local files once (before connecting anywhere): bad input fails fast.
    let plan =
        fleetsh::PutPlan::from_local(&locals, remote, a.recursive, a.preserve).map_err(usage)?;
    let action = fleetsh::Action::Put(std::sync::Arc::new(plan));
    let what = format!("put {}", a.paths.join(" "));
    transfer(&a.common, a.port, action, &signals, &what)
}

/// `fleetsh get -w HOSTS REMOTE... LOCALDIR`.
pub fn get(a: GetArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    preserve_not_port("get", a.preserve, &a.paths)?;
    let Some((local, remotes)) = a.paths.split_last() else {
        return Err(usage(anyhow::anyhow!("get: needs REMOTE... LOCALDIR")));
    };
    let plan = fleetsh::GetPlan::new(
        remotes.to_vec(),
        expand_tilde(PathBuf::from(local)),
        a.recursive,
        a.preserve,
    )
    .map_err(usage)?;
    let action = fleetsh::Action::Get(std::sync::Arc::new(plan));
    let what = format!("get {}", a.paths.join(" "));
    transfer(&a.common, a.port, action, &signals, &what)
}

/// Runs the transfer `action` (written as `what`) on the hosts the shared flags select, `port`
/// (`-P`) their default port.
fn transfer(
    common: &CommonArgs,
    port: Option<u16>,
    action: fleetsh::Action,
    signals: &signals::Signals,
    what: &str,
) -> Result<ExitCode> {
    let mut s = setup(
        common,
        Flags {
            port,
            ..Flags::default()
        },
    )?;
    s.job = s.job.action(action);
    s.job.validate().map_err(usage)?;
    execute(common, s, signals, what)
}

/// `put -p 2299 ...`: scp's `-p` (preserve) took no value, so the port became a path. Names
/// the slip instead of failing on a file called `2299`.
fn preserve_not_port(verb: &str, preserve: bool, paths: &[String]) -> Result<()> {
    if let Some(first) = paths.first()
        && preserve
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_digit())
        && !std::path::Path::new(first).exists()
    {
        return Err(usage(anyhow::anyhow!(
            "{verb}: {first:?} is not a file: in {verb}, -p preserves modes and times (as scp's -p); the port is -P {first}"
        )));
    }
    Ok(())
}

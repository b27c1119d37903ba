//! The copies' arguments (`copy_to`, `copy_from` of `Engine` and `ConnectedFleet`) into jobs:
//! the local files read once into a [`fleetsh::PutPlan`], the download's [`fleetsh::GetPlan`].

use pyo3::prelude::*;

use fleetsh::{GetPlan, Job, PutPlan};

use crate::job::{self, JobDefaults, Options};
use crate::{args, errors};

/// The upload job of `local` (a path or a list of paths) to `remote`.
pub(crate) fn put(
    py: Python<'_>,
    local: &Bound<'_, PyAny>,
    remote: &Bound<'_, PyAny>,
    recursive: bool,
    preserve: bool,
    o: &Options<'_>,
    d: &JobDefaults,
) -> PyResult<Job> {
    let sources = args::paths("local", Some(local))?;
    if sources.is_empty() {
        return Err(errors::config(py, "local", "names no file to upload"));
    }
    let remote = remote_path("remote", remote)?;
    // Reading the files can take a while: other Python threads run meanwhile.
    let plan = py
        .detach(|| PutPlan::from_local(&sources, &remote, recursive, preserve))
        .map_err(|e| errors::from_fleetsh(py, &e.into(), Some("local")))?;
    job::limits(Job::put(plan), o, d)
}

/// The download job of `remote` (a path or a list of paths) into `local_dir/HOST/`.
pub(crate) fn get(
    py: Python<'_>,
    remote: &Bound<'_, PyAny>,
    local_dir: &Bound<'_, PyAny>,
    recursive: bool,
    preserve: bool,
    o: &Options<'_>,
    d: &JobDefaults,
) -> PyResult<Job> {
    let remotes = args::texts("remote", remote)?;
    if remotes.is_empty() {
        return Err(errors::config(
            py,
            "remote",
            "names no remote path to download",
        ));
    }
    let local_dir = args::path("local_dir", local_dir)?;
    let plan = GetPlan::new(remotes, local_dir, recursive, preserve)
        .map_err(|e| errors::from_fleetsh(py, &e.into(), Some("local_dir")))?;
    job::limits(Job::get(plan), o, d)
}

/// A remote path: a `str` (or `os.PathLike`) as the host will read it.
fn remote_path(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let p = args::path(argument, value)?;
    p.into_os_string()
        .into_string()
        .map_err(|_| errors::config(value.py(), argument, "is not valid UTF-8"))
}

/// The directory `copy_from` writes a host's files in, under its `local_dir`: the host as
/// written in the host list (`user@host:port`), made safe as a file name.
#[pyfunction]
pub(crate) fn host_dir_name(host: &str) -> String {
    fleetsh::transfer::host_dir_name(host)
}

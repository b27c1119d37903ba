//! `fleetsh.ConnectedFleet`: hosts whose connections stay open between commands
//! ([`fleetsh::ConnectedFleet`]), for programs that run several commands in turn on the same
//! hosts, as parallel-ssh's client does between `run_command` calls.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use fleetsh::{HostTarget, Job, RunHandle};

use crate::job::{self, JobDefaults, Options};
use crate::run::Run;
use crate::{errors, hosts, transfer};

/// Hosts whose SSH connections stay open between commands: each command (`run`) and copy
/// runs over the connections the first one made, one channel per command.
#[pyclass(frozen, module = "fleetsh", name = "ConnectedFleet")]
#[derive(Debug)]
pub(crate) struct ConnectedFleet {
    /// `None` once closed.
    fleet: Mutex<Option<Arc<fleetsh::ConnectedFleet>>>,
    defaults: JobDefaults,
}

impl ConnectedFleet {
    pub(crate) fn new(fleet: fleetsh::ConnectedFleet, defaults: JobDefaults) -> Self {
        ConnectedFleet {
            fleet: Mutex::new(Some(Arc::new(fleet))),
            defaults,
        }
    }

    /// The open fleet, or the error of a closed one.
    fn open(&self) -> PyResult<Arc<fleetsh::ConnectedFleet>> {
        self.fleet
            .lock()
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("this connected fleet is closed"))
    }

    /// The fleet indices `selection` names (`None`: every host of the fleet now).
    fn selection(
        fleet: &fleetsh::ConnectedFleet,
        selection: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<usize>> {
        let Some(sel) = selection.filter(|s| !s.is_none()) else {
            return Ok(fleet.indices());
        };
        let py = sel.py();
        let items: Vec<Bound<'_, PyAny>> = if sel.is_instance_of::<PyString>() {
            vec![sel.clone()]
        } else {
            sel.try_iter()
                .map_err(|_| {
                    errors::wrong_type("hosts", "a list of hosts (str) or host indices", sel)
                })?
                .collect::<PyResult<_>>()?
        };
        let mut indices = Vec::with_capacity(items.len());
        let mut named = Vec::new();
        for item in &items {
            if item.is_instance_of::<PyInt>() {
                indices.push(crate::args::integer("hosts", item, 0, usize::MAX as u64)? as usize);
            } else {
                named.extend(hosts::parse(item)?);
            }
        }
        let found = fleet
            .indices_of(named.iter())
            .map_err(|e| errors::from_fleetsh(py, &e, None))?;
        indices.extend(found);
        Ok(indices)
    }

    /// Starts `job` on `indices` and wraps its handle.
    fn start(
        py: Python<'_>,
        fleet: Arc<fleetsh::ConnectedFleet>,
        indices: Vec<usize>,
        job: Job,
    ) -> PyResult<Run> {
        let hosts = indices.len();
        let handle: Result<RunHandle, fleetsh::Error> =
            py.detach(move || fleet.run_on(&indices, job));
        let handle = handle.map_err(|e| errors::from_fleetsh(py, &e, None))?;
        Ok(Run::new(handle, hosts))
    }
}

impl Drop for ConnectedFleet {
    /// A fleet nobody can reach any more is closed: stopping its threads waits for them, so
    /// other Python threads run meanwhile.
    fn drop(&mut self) {
        if let Some(fleet) = self.fleet.get_mut().take() {
            let _ = Python::try_attach(move |py| py.detach(move || drop(fleet)));
        }
    }
}

#[pymethods]
impl ConnectedFleet {
    /// Connects and authenticates every host that has no open connection, running nothing:
    /// a `Run` whose results say which hosts are reachable (ok) and why the others are not.
    /// `retries` and `retry_delay` as for `run` (default: the engine's).
    #[pyo3(signature = (**options))]
    fn connect_all(&self, py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Run> {
        let fleet = self.open()?;
        let indices = fleet.indices();
        let job = Options::read("connect_all", options, |o| {
            job::retries(Job::connect_only(), o, &self.defaults)
        })?;
        Self::start(py, fleet, indices, job)
    }

    /// Starts `command` on the fleet's hosts (or on `hosts`, a list of hosts as written or of
    /// their indices) over their open connections; same keyword arguments as `Engine.run`.
    #[pyo3(signature = (command, *, hosts = None, **options))]
    fn run(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        hosts: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let fleet = self.open()?;
        let indices = Self::selection(&fleet, hosts)?;
        let table = fleet.hosts();
        let job = Options::read("run", options, |o| {
            job::exec(command, o, &self.defaults, &table, &indices)
        })?;
        Self::start(py, fleet, indices, job)
    }

    /// Uploads `local` to `remote` on the fleet's hosts (or on `hosts`) over SFTP.
    #[pyo3(signature = (local, remote, *, hosts = None, recursive = false, preserve = false, **options))]
    #[allow(clippy::too_many_arguments)] // The copy's arguments, as Python callers write them.
    fn copy_to(
        &self,
        py: Python<'_>,
        local: &Bound<'_, PyAny>,
        remote: &Bound<'_, PyAny>,
        hosts: Option<&Bound<'_, PyAny>>,
        recursive: bool,
        preserve: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let fleet = self.open()?;
        let indices = Self::selection(&fleet, hosts)?;
        let job = Options::read("copy_to", options, |o| {
            transfer::put(py, local, remote, recursive, preserve, o, &self.defaults)
        })?;
        Self::start(py, fleet, indices, job)
    }

    /// Downloads `remote` from the fleet's hosts (or from `hosts`) into `local_dir/HOST/`.
    #[pyo3(signature = (remote, local_dir, *, hosts = None, recursive = false, preserve = false, **options))]
    #[allow(clippy::too_many_arguments)] // The copy's arguments, as Python callers write them.
    fn copy_from(
        &self,
        py: Python<'_>,
        remote: &Bound<'_, PyAny>,
        local_dir: &Bound<'_, PyAny>,
        hosts: Option<&Bound<'_, PyAny>>,
        recursive: bool,
        preserve: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let fleet = self.open()?;
        let indices = Self::selection(&fleet, hosts)?;
        let job = Options::read("copy_from", options, |o| {
            transfer::get(
                py,
                remote,
                local_dir,
                recursive,
                preserve,
                o,
                &self.defaults,
            )
        })?;
        Self::start(py, fleet, indices, job)
    }

    /// The fleet's hosts as written (results' `index` is the position here).
    #[getter]
    fn hosts(&self) -> PyResult<Vec<String>> {
        Ok(self
            .open()?
            .hosts()
            .iter()
            .map(HostTarget::to_string)
            .collect())
    }

    /// Whether the fleet was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.fleet.lock().is_none()
    }

    /// Disconnects every host and stops the fleet's threads. A run still going completes
    /// first (its hosts are disconnected as it ends). Closing twice does nothing.
    fn close(&self, py: Python<'_>) {
        let fleet = self.fleet.lock().take();
        // Stopping shard threads waits for them: other Python threads run meanwhile.
        py.detach(move || drop(fleet));
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.open()?.len())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block closes the fleet.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        match self.fleet.lock().as_ref() {
            Some(f) => format!("<fleetsh.ConnectedFleet {} hosts>", f.len()),
            None => "<fleetsh.ConnectedFleet closed>".into(),
        }
    }
}

//! `fleetsh.sim.Fleet`: a simulated fleet ([`fleetsh_sim::SimFleet`]) in the Python process,
//! real SSH servers on loopback addresses, for trying fleetsh and testing programs that use it.

use std::path::PathBuf;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use fleetsh_sim::{SimConfig, SimFleet};

use crate::{args, errors};

/// A simulated fleet of SSH hosts on loopback addresses (127.1.0.1, 127.1.0.2, ...), served by
/// threads of this process until `stop()` or the end of its `with` block.
#[pyclass(frozen, module = "fleetsh.sim", name = "Fleet")]
#[derive(Debug)]
pub(crate) struct Fleet {
    fleet: Mutex<Option<SimFleet>>,
    hosts: Vec<String>,
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    hosts_file: PathBuf,
    state_dir: PathBuf,
}

impl Fleet {
    /// Runs `f` on the fleet, or fails if it was stopped.
    fn with<T>(&self, py: Python<'_>, f: impl FnOnce(&SimFleet) -> T) -> PyResult<T> {
        match self.fleet.lock().as_ref() {
            Some(fleet) => Ok(f(fleet)),
            None => Err(errors::raise::<errors::SimError>(
                py,
                None,
                "the simulated fleet was stopped",
            )),
        }
    }
}

/// The fault spec of `faults`: a string as the command line's `--fault` takes it
/// (`"refuse=5,exit:3=10"`), or a mapping of fault to percentage (`{"exit:3": 10}`).
fn fault_spec(faults: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = faults.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    let Ok(map) = faults.cast::<PyDict>() else {
        return Err(errors::wrong_type(
            "faults",
            "a fault spec string or a dict of fault to percentage",
            faults,
        ));
    };
    let mut items = Vec::new();
    for (k, v) in map.iter() {
        let kind: String = k.extract().map_err(|_| {
            errors::wrong_type("faults", "fault names (str) as the dict's keys", &k)
        })?;
        let share: f64 = v.extract().map_err(|_| {
            errors::wrong_type("faults", "percentages (numbers) as the dict's values", &v)
        })?;
        items.push(format!("{kind}={share}"));
    }
    Ok(items.join(","))
}

#[pymethods]
impl Fleet {
    #[new]
    #[pyo3(
        signature = (count = None, faults = None, *, seed = None, threads = None, latency = None, password = None, sudo_password = None),
        text_signature = "(count=1000, faults=None, *, seed=0, threads=1, latency=None, password=None, sudo_password=None)"
    )]
    #[allow(clippy::too_many_arguments)] // One keyword argument per setting, as Python callers write them.
    fn new(
        py: Python<'_>,
        count: Option<&Bound<'_, PyAny>>,
        faults: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        threads: Option<&Bound<'_, PyAny>>,
        latency: Option<&Bound<'_, PyAny>>,
        password: Option<&Bound<'_, PyAny>>,
        sudo_password: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let count = args::opt_integer("count", count, 1, 1_000_000)?.unwrap_or(1000);
        let seed = args::opt_integer("seed", seed, 0, u64::MAX)?.unwrap_or(0);
        let threads = args::opt_integer("threads", threads, 1, 1024)?.unwrap_or(1);
        let faults = match faults.filter(|f| !f.is_none()) {
            Some(f) => fleetsh_sim::parse_faults(&fault_spec(f)?)
                .map_err(|e| errors::config(py, "faults", &e.to_string()))?,
            None => Vec::new(),
        };
        let config = SimConfig {
            count: usize::try_from(count).unwrap_or(usize::MAX),
            port: 0,
            seed,
            threads: usize::try_from(threads).unwrap_or(1),
            faults,
            latency: args::opt_seconds("latency", latency)?,
            password: args::opt_text("password", password)?,
            sudo_password: args::opt_text("sudo_password", sudo_password)?,
            ..SimConfig::default()
        };
        // Deriving thousands of host keys and binding their sockets: other threads run.
        let fleet = py
            .detach(move || SimFleet::start_temp(config))
            .map_err(|e| {
                errors::raise::<errors::SimError>(
                    py,
                    None,
                    &format!("cannot start the simulated fleet: {e}"),
                )
            })?;
        Ok(Fleet {
            hosts: fleet.hosts().iter().map(|h| h.addr.to_string()).collect(),
            port: fleet.port(),
            key: fleet.client_key_file(),
            known_hosts: fleet.known_hosts_file(),
            hosts_file: fleet.hosts_file(),
            state_dir: fleet.state_dir().to_path_buf(),
            fleet: Mutex::new(Some(fleet)),
        })
    }

    /// The hosts as `"address:port"` strings, in index order (a new list each time).
    #[getter]
    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    /// The port every host listens on.
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The client key the fleet accepts (Ed25519, OpenSSH format), for `Engine(identity=...)`.
    #[getter]
    fn key(&self) -> PathBuf {
        self.key.clone()
    }

    /// A known_hosts file with every host's key, for `Engine(known_hosts=...)`.
    #[getter]
    fn known_hosts(&self) -> PathBuf {
        self.known_hosts.clone()
    }

    /// A hosts file, one `address:port` per line (for `fleetsh run -H`).
    #[getter]
    fn hosts_file(&self) -> PathBuf {
        self.hosts_file.clone()
    }

    /// The directory of the fleet's files, removed when the fleet stops.
    #[getter]
    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    /// The directory host `index` serves as `/` over SFTP (what copies to it wrote), made
    /// on the host's first SFTP session.
    fn host_root(&self, py: Python<'_>, index: usize) -> PyResult<PathBuf> {
        self.with(py, |f| f.host_root(index))
    }

    /// How many commands host `index` has been sent so far.
    fn commands_run(&self, py: Python<'_>, index: usize) -> PyResult<u64> {
        self.with(py, |f| f.commands_run(index))
    }

    /// How many TCP connections host `index` has accepted so far.
    fn connections_accepted(&self, py: Python<'_>, index: usize) -> PyResult<u64> {
        self.with(py, |f| f.connections_accepted(index))
    }

    /// The fault given to host `index` (`"refuse"`, `"exit"`, ...), or None for a healthy
    /// host.
    fn fault_of(&self, py: Python<'_>, index: usize) -> PyResult<Option<&'static str>> {
        self.with(py, |f| f.fault_of(index).map(fleetsh_sim::Fault::kind))
    }

    /// Stops the fleet: listeners close, sessions are disconnected, its files are removed.
    /// Stopping a stopped fleet does nothing.
    fn stop(&self, py: Python<'_>) {
        let fleet = self.fleet.lock().take();
        if let Some(fleet) = fleet {
            py.detach(move || fleet.stop());
        }
    }

    /// Whether the fleet is serving.
    #[getter]
    fn running(&self) -> bool {
        self.fleet.lock().is_some()
    }

    fn __len__(&self) -> usize {
        self.hosts.len()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving the `with` block stops the fleet.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "<fleetsh.sim.Fleet {} hosts from {} {}>",
            self.hosts.len(),
            self.hosts.first().map_or("-", String::as_str),
            if self.running() { "running" } else { "stopped" }
        )
    }
}

//! `fleetsh.Engine`: the settings of [`fleetsh::EngineBuilder`] as keyword arguments;
//! `Engine.run` and the copies, which start a job and return its [`Run`]; `Engine.connect`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use fleetsh::{HostKeyCheck, HostTarget, Job, Kex, Secret};

use crate::args::narrow;
use crate::fleet::ConnectedFleet;
use crate::job::{self, JobDefaults, Options};
use crate::run::Run;
use crate::{args, errors, hosts, transfer};

/// The environment variable a password comes from, as for the `fleetsh` command line.
const PASSWORD_VAR: &str = "FLEETSH_PASSWORD";
/// The environment variable a key passphrase comes from, as for the `fleetsh` command line.
const PASSPHRASE_VAR: &str = "FLEETSH_PASSPHRASE";

/// Runs commands on many hosts over SSH. Build it once (keys and known_hosts are loaded once)
/// and start any number of runs with `run`.
#[pyclass(frozen, module = "fleetsh", name = "Engine")]
#[derive(Debug)]
pub(crate) struct Engine {
    engine: fleetsh::Engine,
    defaults: JobDefaults,
}

impl Engine {
    /// Starts `job` on `targets` and wraps its handle.
    fn start(&self, py: Python<'_>, targets: Vec<HostTarget>, job: Job) -> PyResult<Run> {
        let engine = self.engine.clone();
        let hosts = targets.len();
        // Starting a run starts its shard threads: other Python threads run meanwhile.
        let handle = py
            .detach(move || engine.run(targets, job))
            .map_err(|e| errors::from_fleetsh(py, &e, None))?;
        Ok(Run::new(handle, hosts))
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        *,
        user = None,
        port = None,
        identity = None,
        certificate = None,
        agent = None,
        known_hosts = None,
        host_key_check = None,
        ssh_config = None,
        jump = None,
        shards = None,
        fanout = None,
        rate = None,
        batch = None,
        max_fail = None,
        connect_timeout = None,
        command_timeout = None,
        idle_timeout = None,
        retries = None,
        output_cap = None,
        keepalive_interval = None,
        keepalive_count = None,
        forward_agent = false,
        password = None,
        passphrase = None,
        kex = None,
    ))]
    #[allow(clippy::too_many_arguments)] // One keyword argument per setting, as Python callers write them.
    fn new(
        py: Python<'_>,
        user: Option<&Bound<'_, PyAny>>,
        port: Option<&Bound<'_, PyAny>>,
        identity: Option<&Bound<'_, PyAny>>,
        certificate: Option<&Bound<'_, PyAny>>,
        agent: Option<&Bound<'_, PyAny>>,
        known_hosts: Option<&Bound<'_, PyAny>>,
        host_key_check: Option<&Bound<'_, PyAny>>,
        ssh_config: Option<&Bound<'_, PyAny>>,
        jump: Option<&Bound<'_, PyAny>>,
        shards: Option<&Bound<'_, PyAny>>,
        fanout: Option<&Bound<'_, PyAny>>,
        rate: Option<&Bound<'_, PyAny>>,
        batch: Option<&Bound<'_, PyAny>>,
        max_fail: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        command_timeout: Option<&Bound<'_, PyAny>>,
        idle_timeout: Option<&Bound<'_, PyAny>>,
        retries: Option<&Bound<'_, PyAny>>,
        output_cap: Option<&Bound<'_, PyAny>>,
        keepalive_interval: Option<&Bound<'_, PyAny>>,
        keepalive_count: Option<&Bound<'_, PyAny>>,
        forward_agent: bool,
        password: Option<&Bound<'_, PyAny>>,
        passphrase: Option<&Bound<'_, PyAny>>,
        kex: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut b = fleetsh::Engine::builder();
        if let Some(u) = args::opt_text("user", user)? {
            b = b.user(u);
        }
        if let Some(p) = args::opt_integer("port", port, 1, u16::MAX.into())? {
            b = b.port(narrow(p));
        }
        for key in args::paths("identity", identity)? {
            b = b.identity_file(key);
        }
        for cert in args::paths("certificate", certificate)? {
            b = b.certificate_file(cert);
        }
        match agent.filter(|a| !a.is_none()) {
            None => {}
            Some(a) if a.is_instance_of::<PyBool>() && !a.is_truthy()? => b = b.no_agent(),
            Some(a) if a.is_instance_of::<PyBool>() => {}
            Some(a) => b = b.agent_socket(args::path("agent", a)?),
        }
        if let Some(k) = args::opt_path("known_hosts", known_hosts)? {
            b = b.known_hosts(k);
        }
        if let Some(mode) = args::opt_text("host_key_check", host_key_check)? {
            let mode = mode.parse::<HostKeyCheck>().map_err(|_| {
                errors::config(
                    py,
                    "host_key_check",
                    &format!("{mode:?} is not one of \"strict\", \"accept-new\", \"off\""),
                )
            })?;
            b = b.host_key_check(mode);
        }
        if let Some(p) = args::opt_path("ssh_config", ssh_config)? {
            if !p.is_file() {
                return Err(errors::config(
                    py,
                    "ssh_config",
                    &format!("{} is not a readable file", p.display()),
                ));
            }
            b = b.ssh_config_file(p);
        }
        if let Some(j) = jump.filter(|j| !j.is_none()) {
            let spec = args::texts("jump", j)?.join(",");
            b = b
                .jump_spec(&spec)
                .map_err(|e| errors::from_fleetsh(py, &e, Some("jump")))?;
        }
        if let Some(n) = args::opt_integer("shards", shards, 0, 1024)? {
            b = b.shards(narrow(n));
        }
        if let Some(n) = args::opt_integer("fanout", fanout, 1, u32::MAX.into())? {
            b = b.fanout(narrow(n));
        }
        if let Some(r) = rate.filter(|r| !r.is_none()) {
            if r.is_instance_of::<PyBool>() {
                return Err(errors::wrong_type("rate", "connections per second", r));
            }
            let per_second: f64 = r
                .extract()
                .map_err(|_| errors::wrong_type("rate", "connections per second", r))?;
            b = b.rate(per_second);
        }
        if let Some(a) = batch.filter(|a| !a.is_none()) {
            b = b.batch(args::amount("batch", a)?);
        }
        if let Some(a) = max_fail.filter(|a| !a.is_none()) {
            b = b.max_fail(args::amount("max_fail", a)?);
        }
        if let Some(d) = args::opt_seconds("connect_timeout", connect_timeout)? {
            b = b.connect_timeout(d);
        }
        if let Some(d) = args::opt_seconds("keepalive_interval", keepalive_interval)? {
            b = b.keepalive_interval(d);
        }
        if let Some(n) = args::opt_integer("keepalive_count", keepalive_count, 1, u32::MAX.into())?
        {
            b = b.keepalive_count(narrow(n));
        }
        if forward_agent {
            b = b.forward_agent(true);
        }
        let from_env = |var: &str| std::env::var(var).ok().filter(|p| !p.is_empty());
        if let Some(pw) = args::opt_text("password", password)?.or_else(|| from_env(PASSWORD_VAR)) {
            b = b.password(Secret::new(pw));
        }
        if let Some(pp) =
            args::opt_text("passphrase", passphrase)?.or_else(|| from_env(PASSPHRASE_VAR))
        {
            b = b.passphrase(Secret::new(pp));
        }
        if let Some(k) = args::opt_text("kex", kex)? {
            let k = k.parse::<Kex>().map_err(|_| {
                errors::config(
                    py,
                    "kex",
                    &format!("{k:?} is not one of \"default\", \"curve25519\""),
                )
            })?;
            b = b.kex(k);
        }
        let defaults = JobDefaults {
            command_timeout: args::opt_seconds("command_timeout", command_timeout)?,
            idle_timeout: args::opt_seconds("idle_timeout", idle_timeout)?,
            retries: args::opt_integer("retries", retries, 0, u32::MAX.into())?.map(narrow),
            output_cap: args::opt_integer("output_cap", output_cap, 0, usize::MAX as u64)?
                .map(narrow),
        };
        // Loading keys and known_hosts reads files: other Python threads run meanwhile.
        let engine = py
            .detach(move || b.build())
            .map_err(|e| errors::from_fleetsh(py, &e, Some("ssh_config")))?;
        Ok(Engine { engine, defaults })
    }

    /// Starts `command` on `hosts` and returns at once: the `Run` yields each host's result as
    /// it finishes. The keyword arguments are in `fleetsh/_native.pyi` and docs/python.md.
    #[pyo3(signature = (command, hosts, **options))]
    fn run(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        hosts: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let targets = hosts::parse(hosts)?;
        let all: Vec<usize> = (0..targets.len()).collect();
        let job = Options::read("run", options, |o| {
            job::exec(command, o, &self.defaults, &targets, &all)
        })?;
        self.start(py, targets, job)
    }

    /// Uploads the local file(s) `local` to `remote` on every host of `hosts` over SFTP.
    #[pyo3(signature = (hosts, local, remote, *, recursive = false, preserve = false, **options))]
    #[allow(clippy::too_many_arguments)] // The copy's arguments, as Python callers write them.
    fn copy_to(
        &self,
        py: Python<'_>,
        hosts: &Bound<'_, PyAny>,
        local: &Bound<'_, PyAny>,
        remote: &Bound<'_, PyAny>,
        recursive: bool,
        preserve: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let targets = hosts::parse(hosts)?;
        let job = Options::read("copy_to", options, |o| {
            transfer::put(py, local, remote, recursive, preserve, o, &self.defaults)
        })?;
        self.start(py, targets, job)
    }

    /// Downloads `remote` (a path or a list of them) from every host of `hosts` over SFTP
    /// into `local_dir/HOST/`.
    #[pyo3(signature = (hosts, remote, local_dir, *, recursive = false, preserve = false, **options))]
    #[allow(clippy::too_many_arguments)] // The copy's arguments, as Python callers write them.
    fn copy_from(
        &self,
        py: Python<'_>,
        hosts: &Bound<'_, PyAny>,
        remote: &Bound<'_, PyAny>,
        local_dir: &Bound<'_, PyAny>,
        recursive: bool,
        preserve: bool,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Run> {
        let targets = hosts::parse(hosts)?;
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
        self.start(py, targets, job)
    }

    /// Opens a connected fleet of `hosts`: connections kept between its commands.
    fn connect(&self, py: Python<'_>, hosts: &Bound<'_, PyAny>) -> PyResult<ConnectedFleet> {
        let targets = hosts::parse(hosts)?;
        let engine = self.engine.clone();
        let fleet = py
            .detach(move || engine.connect(targets))
            .map_err(|e| errors::from_fleetsh(py, &e, None))?;
        Ok(ConnectedFleet::new(fleet, self.defaults.clone()))
    }

    /// The user for hosts that name none.
    #[getter]
    fn user(&self) -> &str {
        self.engine.default_user()
    }

    /// The port for hosts that name none.
    #[getter]
    fn port(&self) -> u16 {
        self.engine.default_port()
    }

    /// Hosts in flight at once across every shard.
    #[getter]
    fn fanout(&self) -> usize {
        self.engine.fanout()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<fleetsh.Engine user={} port={} fanout={}>",
            PyString::new(py, self.engine.default_user()).repr()?,
            self.engine.default_port(),
            self.engine.fanout()
        ))
    }
}

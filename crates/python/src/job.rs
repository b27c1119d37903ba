//! The keyword arguments of a job (`Engine.run`, `ConnectedFleet.run`, the copies) into a
//! [`Job`], each checked and named in the error when it is wrong, and the command in each of
//! its forms: one string, a template, one per host (list, dict or function).

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};

use fleetsh::{HostTarget, Job, Secret, Sudo};

use crate::{args, errors};

/// The environment variable a sudo password comes from, as for the `fleetsh` command line.
const SUDO_PASSWORD_VAR: &str = "FLEETSH_SUDO_PASSWORD";

/// The job settings an engine gives every run unless the run sets its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobDefaults {
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    pub(crate) output_cap: Option<usize>,
}

/// A call's keyword arguments, taken one by one; any left at the end is an unexpected one.
pub(crate) struct Options<'py> {
    call: &'static str,
    dict: Option<Bound<'py, PyDict>>,
}

impl<'py> Options<'py> {
    /// The keyword arguments `kwargs` of the method `call` (a copy: the caller's dict is
    /// untouched).
    fn new(call: &'static str, kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<Self> {
        Ok(Options {
            call,
            dict: kwargs.map(|d| d.copy()).transpose()?,
        })
    }

    /// The argument `name` unless it is absent or `None`.
    pub(crate) fn take(&self, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(d) = &self.dict else {
            return Ok(None);
        };
        let value = d.get_item(name)?;
        if value.is_some() {
            d.del_item(name)?;
        }
        Ok(value.filter(|v| !v.is_none()))
    }

    /// A `bool` argument (absent: `false`).
    pub(crate) fn flag(&self, name: &str) -> PyResult<bool> {
        match self.take(name)? {
            None => Ok(false),
            Some(v) if v.is_instance_of::<PyBool>() => v.is_truthy(),
            Some(v) => Err(errors::wrong_type(name, "True or False", &v)),
        }
    }

    /// `read(options)` over the keyword arguments `kwargs` of the method `call`, then fails
    /// on any argument it did not take.
    pub(crate) fn read<T>(
        call: &'static str,
        kwargs: Option<&Bound<'py, PyDict>>,
        read: impl FnOnce(&Options<'py>) -> PyResult<T>,
    ) -> PyResult<T> {
        let options = Options::new(call, kwargs)?;
        let value = read(&options)?;
        options.finish()?;
        Ok(value)
    }

    /// Fails on the first argument nobody took, as Python does for an unknown keyword.
    fn finish(self) -> PyResult<()> {
        if let Some(d) = &self.dict
            && let Some((k, _)) = d.iter().next()
        {
            return Err(PyTypeError::new_err(format!(
                "{}() got an unexpected keyword argument {}",
                self.call,
                k.repr()?
            )));
        }
        Ok(())
    }
}

/// The limits every job takes: `timeout` (the command's, or the whole transfer's), and
/// [`retries`]'s.
pub(crate) fn limits(mut job: Job, o: &Options<'_>, d: &JobDefaults) -> PyResult<Job> {
    let timeout = o.take("timeout")?;
    if let Some(t) = args::opt_seconds("timeout", timeout.as_ref())?.or(d.command_timeout) {
        job = job.command_timeout(t);
    }
    retries(job, o, d)
}

/// `retries` (connection attempts after a failed connect; default the engine's) and
/// `retry_delay`.
pub(crate) fn retries(mut job: Job, o: &Options<'_>, d: &JobDefaults) -> PyResult<Job> {
    let retries = o.take("retries")?;
    let retries = args::opt_integer("retries", retries.as_ref(), 0, u32::MAX.into())?;
    if let Some(n) = retries.map(args::narrow).or(d.retries) {
        job = job.retries(n);
    }
    let delay = o.take("retry_delay")?;
    if let Some(t) = args::opt_seconds("retry_delay", delay.as_ref())? {
        job = job.retry_delay(t);
    }
    Ok(job)
}

/// A command's job: `command` in its forms (see [`command`]) and every keyword argument of
/// `run`. `table` is the host table the run's indices refer to, `run` the indices it runs on.
pub(crate) fn exec(
    command: &Bound<'_, PyAny>,
    o: &Options<'_>,
    d: &JobDefaults,
    table: &[HostTarget],
    run: &[usize],
) -> PyResult<Job> {
    let template = o.flag("template")?;
    let mut job = self::command(command, template, table, run)?;
    job = limits(job, o, d)?;
    let idle = o.take("idle_timeout")?;
    if let Some(t) = args::opt_seconds("idle_timeout", idle.as_ref())?.or(d.idle_timeout) {
        job = job.idle_timeout(t);
    }
    let cap = o.take("output_cap")?;
    let cap = args::opt_integer("output_cap", cap.as_ref(), 0, usize::MAX as u64)?;
    if let Some(n) = cap.map(args::narrow).or(d.output_cap) {
        job = job.output_cap(n);
    }
    if let Some(env) = o.take("env")? {
        let env = env
            .cast::<PyDict>()
            .map_err(|_| errors::wrong_type("env", "a dict of str to str", &env))?;
        for (k, v) in env.iter() {
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                return Err(errors::wrong_type(
                    "env",
                    "a dict of str to str",
                    env.as_any(),
                ));
            };
            job = job.env(k, v);
        }
    }
    if let Some(data) = o.take("stdin")? {
        if let Ok(b) = data.cast::<PyBytes>() {
            job = job.stdin(b.as_bytes());
        } else if let Ok(s) = data.cast::<PyString>() {
            job = job.stdin(s.to_cow()?.as_ref());
        } else {
            return Err(errors::wrong_type("stdin", "bytes or str", &data));
        }
    }
    job = job.pty(o.flag("pty")?);
    job = job.stream_output(o.flag("stream")?);
    let password = args::opt_text("sudo_password", o.take("sudo_password")?.as_ref())?;
    let sudo = match o.take("sudo")? {
        None => None,
        Some(s) if s.is_instance_of::<PyBool>() => s.is_truthy()?.then_some(None),
        Some(s) => Some(args::opt_text("sudo", Some(&s))?),
    };
    match sudo {
        None if password.is_some() => {
            return Err(errors::config(
                command.py(),
                "sudo_password",
                "is given without sudo (sudo=True, or sudo=\"user\")",
            ));
        }
        None => {}
        Some(user) => {
            let password = password.or_else(|| {
                std::env::var(SUDO_PASSWORD_VAR)
                    .ok()
                    .filter(|p| !p.is_empty())
            });
            job = job.sudo(Sudo {
                user,
                password: password.map(Secret::new),
            });
        }
    }
    Ok(job)
}

/// The job of `command`: one string (sent as it is, or with `{host}` and `{index}` replaced
/// when `template`), a list or tuple with one command per host of the run in order, a dict
/// from host (as written, or its bare name) to command, or a function of the host (as
/// written) and its index, called here once per host of the run.
fn command(
    command: &Bound<'_, PyAny>,
    template: bool,
    table: &[HostTarget],
    run: &[usize],
) -> PyResult<Job> {
    let py = command.py();
    if let Ok(s) = command.cast::<PyString>() {
        let s = s.to_cow()?;
        return Ok(if template {
            Job::template(s.as_ref())
        } else {
            Job::new(s.as_ref())
        });
    }
    if template {
        return Err(errors::config(
            py,
            "template",
            "applies to one command string ({host} and {index} in it); a list, dict or function already gives each host its command",
        ));
    }
    const WHAT: &str = "a string, a list of strings (one per host), a dict from host to string, or a function (host, index) -> str";
    if command.is_instance_of::<PyList>() || command.is_instance_of::<PyTuple>() {
        let list: Vec<String> = command
            .extract()
            .map_err(|_| errors::wrong_type("command", WHAT, command))?;
        return Ok(Job::per_host_list(list));
    }
    if let Ok(map) = command.cast::<PyDict>() {
        let mut pairs = Vec::with_capacity(map.len());
        for (k, v) in map.iter() {
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                return Err(errors::wrong_type("command", WHAT, command));
            };
            pairs.push((k, v));
        }
        return Ok(Job::per_host_map(pairs));
    }
    if command.is_callable() {
        let mut list = Vec::with_capacity(run.len());
        for &i in run {
            let host = table.get(i).map(ToString::to_string).unwrap_or_default();
            let out = command.call1((host.as_str(), i))?;
            let line: String = out.extract().map_err(|_| {
                errors::wrong_type(
                    "command",
                    "a function returning a string for every host",
                    &out,
                )
            })?;
            list.push(line);
        }
        return Ok(Job::per_host_list(list));
    }
    Err(errors::wrong_type("command", WHAT, command))
}

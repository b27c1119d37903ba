//! The exceptions of the `fleetsh` package, one class per kind of error that stops an engine
//! from being built or a run from starting, and the mapping from fleetsh's Rust errors onto them.
//!
//! ```text
//! Error                    every error fleetsh raises (a host's failure is never one)
//! ├── InputError           fleetsh::Error::Input: what the program gave
//! │   ├── HostSpecError    host specs and host lists
//! │   └── ConfigError      settings: Engine and run arguments, ssh_config, jump hosts
//! ├── EngineError          fleetsh::Error::Engine: keys, known_hosts, starting the run
//! │   ├── CredentialsError key and certificate files, no credentials at all
//! │   ├── KnownHostsError  a known_hosts file that cannot be read or does not exist
//! │   └── StartError       shard threads, the open-files limit
//! └── SimError             a simulated fleet that cannot start (fleetsh.sim)
//! ```
//!
//! Every instance has an `argument` attribute: the name of the Python argument at fault, or
//! `None` when no one argument is.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use fleetsh::{EngineError as EngineFault, InputError as InputFault};

pyo3::create_exception!(
    fleetsh,
    Error,
    PyException,
    "Every error fleetsh raises: a bad argument, a key or known_hosts file that cannot be used, \
     a run that cannot start. A host's failure is never an exception: it is data in that host's \
     HostResult. `argument` names the Python argument at fault, or is None."
);
pyo3::create_exception!(
    fleetsh,
    InputError,
    Error,
    "Bad input: a host spec, a setting, an ssh_config file."
);
pyo3::create_exception!(
    fleetsh,
    HostSpecError,
    InputError,
    "A host spec that cannot be parsed (`web[01-`), a range too large, or no hosts at all."
);
pyo3::create_exception!(
    fleetsh,
    ConfigError,
    InputError,
    "A setting with a value that cannot work (a port of 0, an unknown host_key_check mode, a bad \
     jump spec, an ssh_config file that cannot be read or parsed); `argument` names it."
);
pyo3::create_exception!(
    fleetsh,
    EngineError,
    Error,
    "The engine cannot work: keys, known_hosts, starting the run's threads."
);
pyo3::create_exception!(
    fleetsh,
    CredentialsError,
    EngineError,
    "A key or certificate file that cannot be used, or no credentials at all (no key file, no \
     ssh-agent, no FLEETSH_PASSWORD): every host would fail authentication."
);
pyo3::create_exception!(
    fleetsh,
    KnownHostsError,
    EngineError,
    "A known_hosts file that cannot be read, or strict host-key checking with a known_hosts file \
     that does not exist (every host would fail its host-key check)."
);
pyo3::create_exception!(
    fleetsh,
    StartError,
    EngineError,
    "The run cannot start: its threads cannot be started, or the open-files limit leaves no room \
     for a single host."
);
pyo3::create_exception!(
    fleetsh,
    SimError,
    Error,
    "A simulated fleet (fleetsh.sim.Fleet) that cannot start, or that was already stopped."
);

/// Adds the exception classes to the module, each with `argument = None` on the base class.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    py.get_type::<Error>().setattr("argument", py.None())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("HostSpecError", py.get_type::<HostSpecError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("CredentialsError", py.get_type::<CredentialsError>())?;
    m.add("KnownHostsError", py.get_type::<KnownHostsError>())?;
    m.add("StartError", py.get_type::<StartError>())?;
    m.add("SimError", py.get_type::<SimError>())?;
    Ok(())
}

/// An exception of class `T` whose message is `message`, prefixed with the argument's name
/// when there is one and the message does not name it already, and whose `argument` attribute
/// is that name.
pub(crate) fn raise<T: pyo3::PyTypeInfo>(
    py: Python<'_>,
    argument: Option<&str>,
    message: &str,
) -> PyErr {
    let text = match argument {
        Some(a) if !message.contains(a) => format!("{a}: {message}"),
        _ => message.to_string(),
    };
    let err = PyErr::new::<T, _>(text);
    if let Some(a) = argument
        && let Err(e) = err.value(py).setattr("argument", a)
    {
        return e;
    }
    err
}

/// A [`ConfigError`] naming `argument`.
pub(crate) fn config(py: Python<'_>, argument: &str, message: &str) -> PyErr {
    raise::<ConfigError>(py, Some(argument), message)
}

/// A `TypeError` naming `argument`, for a value of the wrong type.
pub(crate) fn wrong_type(argument: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let type_name = got
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    pyo3::exceptions::PyTypeError::new_err(format!(
        "{argument}: expected {expected}, got {type_name}"
    ))
}

/// The message of an error with its causes (`cannot read /x: No such file or directory`).
fn message(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The exception for a fleetsh error of building an engine or starting a run. `io_argument`
/// names the argument whose file an [`InputFault::Io`] is about (`ssh_config` while building).
pub(crate) fn from_fleetsh(py: Python<'_>, e: &fleetsh::Error, io_argument: Option<&str>) -> PyErr {
    let text = message(e);
    match e {
        fleetsh::Error::Input(input) => match input {
            InputFault::HostSpec { .. }
            | InputFault::HostsFile { .. }
            | InputFault::TooManyHosts { .. }
            | InputFault::NoHosts => raise::<HostSpecError>(py, Some("hosts"), &text),
            // A host without its command, or with an empty one: the command argument's.
            InputFault::InvalidSetting {
                setting: "per_host",
                reason,
            } => raise::<ConfigError>(py, Some("command"), reason),
            InputFault::InvalidSetting { setting, .. } => {
                raise::<ConfigError>(py, Some(setting), &text)
            }
            InputFault::SshConfig { .. } => raise::<ConfigError>(py, Some("ssh_config"), &text),
            InputFault::Io { .. } | InputFault::Config { .. } | InputFault::Transfer { .. } => {
                raise::<ConfigError>(py, io_argument, &text)
            }
            _ => raise::<InputError>(py, None, &text),
        },
        fleetsh::Error::Engine(engine) => match engine {
            EngineFault::Key { .. } => raise::<CredentialsError>(py, Some("identity"), &text),
            EngineFault::Certificate { .. } => {
                raise::<CredentialsError>(py, Some("certificate"), &text)
            }
            EngineFault::NoCredentials { .. } => raise::<CredentialsError>(py, None, &text),
            EngineFault::KnownHosts { .. } | EngineFault::NoKnownHosts { .. } => {
                raise::<KnownHostsError>(py, Some("known_hosts"), &text)
            }
            _ => raise::<StartError>(py, None, &text),
        },
        // A connected fleet's selection of hosts that cannot be used.
        fleetsh::Error::Fleet(_) => raise::<HostSpecError>(py, Some("hosts"), &text),
        _ => raise::<Error>(py, None, &text),
    }
}

/// The exception for a host spec that cannot be parsed.
pub(crate) fn from_hosts(py: Python<'_>, e: &InputFault) -> PyErr {
    raise::<HostSpecError>(py, Some("hosts"), &message(e))
}

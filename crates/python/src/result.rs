//! `fleetsh.HostResult`, `fleetsh.Report` and the `fleetsh.ErrorKind` enum.
//!
//! A `HostResult` wraps the engine's own result (shared, never copied): its fields become Python
//! values only when they are read, so handing 10,000 results to Python costs one small object
//! each.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use fleetsh::ErrorKind;

/// The members of `fleetsh.ErrorKind`, in the order of [`ErrorKind::ALL`].
static ERROR_KINDS: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();

/// What `fleetsh.ErrorKind` says of itself.
const ERROR_KIND_DOC: &str = "Why a host failed (HostResult.error_kind). A str enum: each value \
is fleetsh's stable name of the kind, the same as in the command line's JSON output \
(\"connect\", \"auth\", \"command_timeout\", \"cancelled\", ...).";

/// Creates `fleetsh.ErrorKind`, a `str` enum with one member per [`ErrorKind`], named as its
/// stable name in capitals (`CONNECT_TIMEOUT = "connect_timeout"`), and adds it to `m`.
pub(crate) fn register_error_kind(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let members: Vec<(String, &str)> = ErrorKind::ALL
        .iter()
        .map(|k| (k.as_str().to_uppercase(), k.as_str()))
        .collect();
    let kwargs = PyDict::new(py);
    kwargs.set_item("module", "fleetsh")?;
    kwargs.set_item("type", py.get_type::<PyString>())?;
    let class = py
        .import("enum")?
        .getattr("Enum")?
        .call(("ErrorKind", members), Some(&kwargs))?;
    class.setattr("__doc__", ERROR_KIND_DOC)?;
    let objects = ErrorKind::ALL
        .iter()
        .map(|k| class.call1((k.as_str(),)).map(Bound::unbind))
        .collect::<PyResult<Vec<_>>>()?;
    // A second import of the module (a sub-interpreter) keeps the first one's members.
    let _ = ERROR_KINDS.set(py, objects);
    m.add("ErrorKind", class)?;
    Ok(())
}

/// The `fleetsh.ErrorKind` member of `kind`.
fn error_kind(py: Python<'_>, kind: ErrorKind) -> Option<Py<PyAny>> {
    let position = ErrorKind::ALL.iter().position(|k| *k == kind)?;
    ERROR_KINDS
        .get(py)
        .and_then(|members| members.get(position))
        .map(|m| m.clone_ref(py))
}

/// Seconds as a Python float.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One host's result: how its command ended, its output, why it failed, its timings. Every
/// host of a run ends with exactly one.
#[pyclass(frozen, module = "fleetsh", name = "HostResult")]
#[derive(Debug)]
pub(crate) struct HostResult {
    inner: Arc<fleetsh::HostResult>,
}

impl HostResult {
    /// Wraps the engine's result.
    pub(crate) fn new(inner: Arc<fleetsh::HostResult>) -> Self {
        HostResult { inner }
    }
}

#[pymethods]
impl HostResult {
    /// The host's name or address, as given (without user and port).
    #[getter]
    fn host(&self) -> &str {
        &self.inner.target.host
    }

    /// The SSH port used.
    #[getter]
    fn port(&self) -> Option<u16> {
        self.inner.target.port
    }

    /// The login user.
    #[getter]
    fn user(&self) -> Option<&str> {
        self.inner.target.user.as_deref()
    }

    /// The host as `user@host:port`.
    #[getter]
    fn target(&self) -> String {
        self.inner.target.to_string()
    }

    /// The host's position in the run's host list.
    #[getter]
    fn index(&self) -> usize {
        self.inner.index
    }

    /// The command's exit status, if the server sent one.
    #[getter]
    fn exit_code(&self) -> Option<u32> {
        self.inner.exit_code
    }

    /// The signal that killed the command (`"KILL"`, without `SIG`), if one did.
    #[getter]
    fn signal(&self) -> Option<&str> {
        self.inner.signal.as_deref()
    }

    /// The command's standard output (at most the run's output_cap bytes).
    #[getter]
    fn stdout<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.stdout)
    }

    /// The command's standard error (at most the run's output_cap bytes).
    #[getter]
    fn stderr<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.stderr)
    }

    /// stdout decoded as UTF-8, each invalid sequence replaced by U+FFFD.
    #[getter]
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.inner.stdout).into_owned()
    }

    /// stderr decoded as UTF-8, each invalid sequence replaced by U+FFFD.
    #[getter]
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.inner.stderr).into_owned()
    }

    /// Whether output beyond output_cap was dropped.
    #[getter]
    fn truncated(&self) -> bool {
        self.inner.truncated
    }

    /// Why the host failed (an ErrorKind), or None. A command that ran and exited non-zero
    /// has no error: see exit_code.
    #[getter]
    fn error_kind(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.inner
            .error
            .as_ref()
            .and_then(|e| error_kind(py, e.kind))
    }

    /// What happened, when the host failed (`"connection refused"`, ...), or None.
    #[getter]
    fn error_message(&self) -> Option<&str> {
        self.inner.error.as_ref().map(|e| e.message.as_str())
    }

    /// Connection attempts made (1 + retries used; 0 for a host never started).
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Seconds spent in each phase (None for a phase the host did not reach): connect,
    /// handshake_auth, channel_open, exec, read, close, first_byte, and total.
    #[getter]
    fn timings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = &self.inner.timings;
        let d = PyDict::new(py);
        d.set_item("connect", t.connect.map(secs))?;
        d.set_item("handshake_auth", t.handshake_auth.map(secs))?;
        d.set_item("channel_open", t.channel_open.map(secs))?;
        d.set_item("exec", t.exec.map(secs))?;
        d.set_item("read", t.read.map(secs))?;
        d.set_item("close", t.close.map(secs))?;
        d.set_item("first_byte", t.first_byte.map(secs))?;
        d.set_item("total", secs(t.total))?;
        Ok(d)
    }

    /// What the server is and what the connection negotiated, once the key exchange was done
    /// (also for a host that then failed): a dict with `version` (the server's
    /// identification line), `kex`, `host_key` and `cipher`; None for a host whose handshake
    /// did not get that far.
    #[getter]
    fn server<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(s) = &self.inner.server else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("version", &s.version)?;
        d.set_item("kex", &s.kex)?;
        d.set_item("host_key", &s.host_key)?;
        d.set_item("cipher", &s.cipher)?;
        Ok(Some(d))
    }

    /// Whether stdout or stderr is not valid UTF-8, so that `stdout_text` or `stderr_text`
    /// replaced some bytes (U+FFFD); the bytes themselves are in `stdout` and `stderr`.
    #[getter]
    fn lossy(&self) -> bool {
        std::str::from_utf8(&self.inner.stdout).is_err()
            || std::str::from_utf8(&self.inner.stderr).is_err()
    }

    /// Files a copy moved to or from the host (also when it later failed); `None` for a
    /// command.
    #[getter]
    fn files(&self) -> Option<u64> {
        self.inner.transfer.map(|t| t.files)
    }

    /// Bytes of file data a copy moved; `None` for a command.
    #[getter]
    fn bytes(&self) -> Option<u64> {
        self.inner.transfer.map(|t| t.bytes)
    }

    /// True when the command ran and exited 0 (for a copy: every file moved; for
    /// `connect_all`: the host is connected).
    #[getter]
    fn ok(&self) -> bool {
        self.inner.is_ok()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.inner;
        let mut text = format!("<HostResult {}", r.target);
        if let Some(e) = &r.error {
            text.push_str(&format!(" error={} {:?}", e.kind.as_str(), e.message));
        }
        if let Some(code) = r.exit_code {
            text.push_str(&format!(" exit_code={code}"));
        }
        if let Some(sig) = &r.signal {
            text.push_str(&format!(" signal={sig}"));
        }
        for (name, data) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            if data.is_empty() && name == "stderr" {
                continue;
            }
            const SHOWN: usize = 40;
            let shown = PyBytes::new(py, data.get(..SHOWN).unwrap_or(data)).repr()?;
            let more = if data.len() > SHOWN { "..." } else { "" };
            text.push_str(&format!(" {name}={shown}{more}"));
        }
        text.push('>');
        Ok(text)
    }
}

/// The end of a run: one result per host, in the order of the run's host list.
#[pyclass(frozen, module = "fleetsh", name = "Report")]
pub(crate) struct Report {
    inner: Arc<fleetsh::Report>,
    deadline_hit: bool,
    results: PyOnceLock<Py<PyList>>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("inner", &self.inner)
            .field("deadline_hit", &self.deadline_hit)
            .finish_non_exhaustive()
    }
}

impl Report {
    /// Wraps the engine's report; `deadline_hit` when `join(timeout)` cancelled the run.
    pub(crate) fn new(inner: Arc<fleetsh::Report>, deadline_hit: bool) -> Self {
        Report {
            inner,
            deadline_hit,
            results: PyOnceLock::new(),
        }
    }

    fn results_list<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyList>> {
        self.results
            .get_or_try_init(py, || {
                let items = self
                    .inner
                    .results
                    .iter()
                    .map(|r| Py::new(py, HostResult::new(r.clone())))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok::<_, PyErr>(PyList::new(py, items)?.unbind())
            })
            .map(|l| l.bind(py))
    }
}

#[pymethods]
impl Report {
    /// Every host's result, in host order (a new list each time, of the same results).
    #[getter]
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let all = self.results_list(py)?;
        PyList::new(py, all.iter())
    }

    /// How many hosts ran their command and exited 0.
    #[getter]
    fn ok_count(&self) -> usize {
        self.inner.ok_count()
    }

    /// Whether every host ran its command and exited 0.
    #[getter]
    fn all_ok(&self) -> bool {
        self.inner.all_ok()
    }

    /// The results that are not ok, in host order.
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut out = Vec::new();
        for (item, r) in self.results_list(py)?.iter().zip(self.inner.results.iter()) {
            if !r.is_ok() {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Seconds from the start of the run to its last result.
    #[getter]
    fn wall(&self) -> f64 {
        self.inner.wall.as_secs_f64()
    }

    /// Shard threads the run used.
    #[getter]
    fn shards(&self) -> usize {
        self.inner.shards
    }

    /// Whether join(timeout) reached its deadline first and cancelled the run.
    #[getter]
    fn deadline_hit(&self) -> bool {
        self.deadline_hit || self.inner.deadline_hit
    }

    fn __len__(&self) -> usize {
        self.inner.results.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.results_list(py)?.try_iter()?.into_any())
    }

    fn __repr__(&self) -> String {
        let n = self.inner.results.len();
        let ok = self.inner.ok_count();
        format!(
            "<Report {n} hosts: {ok} ok, {} not ok, wall {:.3}s{}>",
            n.saturating_sub(ok),
            self.inner.wall.as_secs_f64(),
            if self.deadline_hit() {
                ", deadline hit"
            } else {
                ""
            }
        )
    }
}

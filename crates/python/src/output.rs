//! What a run hands to Python besides results: `fleetsh.Output` (bytes a host sent, as
//! received), `fleetsh.Transferred` (file transfer progress) and `fleetsh.Line` (one line of a
//! host's output), and the queue's [`Item`] that becomes one of them or a `HostResult`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use fleetsh::{HostTarget, LineEnd, StreamKind};

use crate::result::HostResult;

/// One thing a run delivers, as queued for Python.
#[derive(Debug)]
pub(crate) enum Item {
    /// A host finished.
    Result(Arc<fleetsh::HostResult>),
    /// Bytes of a host's output, as received.
    Output {
        index: usize,
        stream: StreamKind,
        data: Vec<u8>,
    },
    /// Files and bytes a host's transfer completed since its previous progress.
    Transferred {
        index: usize,
        files: u64,
        bytes: u64,
    },
    /// One line of a host's output.
    Line(fleetsh::Line),
}

/// The Python object of `item`; `table` is the run's host table (items name hosts by index).
pub(crate) fn to_python(
    py: Python<'_>,
    item: Item,
    table: &Arc<[HostTarget]>,
) -> PyResult<Py<PyAny>> {
    let host = |index| HostRef {
        table: table.clone(),
        index,
    };
    Ok(match item {
        Item::Result(r) => Py::new(py, HostResult::new(r))?.into_any(),
        Item::Output {
            index,
            stream,
            data,
        } => Py::new(
            py,
            Output {
                host: host(index),
                stream,
                data,
            },
        )?
        .into_any(),
        Item::Transferred {
            index,
            files,
            bytes,
        } => Py::new(
            py,
            Transferred {
                host: host(index),
                files,
                bytes,
            },
        )?
        .into_any(),
        Item::Line(line) => Py::new(
            py,
            Line {
                host: host(line.index),
                line,
            },
        )?
        .into_any(),
    })
}

/// A host of a run's table, by index.
#[derive(Debug)]
struct HostRef {
    table: Arc<[HostTarget]>,
    index: usize,
}

impl HostRef {
    /// The host's name (without user and port), as `HostResult.host`.
    fn host(&self) -> &str {
        self.table.get(self.index).map_or("", |t| t.host.as_str())
    }

    /// The host as written in the host list (`user@host:port`), for reprs.
    fn target(&self) -> String {
        self.table
            .get(self.index)
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

/// The Python name of a stream.
fn stream_name(stream: StreamKind) -> &'static str {
    match stream {
        StreamKind::Stdout => "stdout",
        StreamKind::Stderr => "stderr",
    }
}

/// Bytes a host sent on its stdout or stderr, exactly as they arrived (not split into lines).
#[pyclass(frozen, module = "fleetsh", name = "Output")]
#[derive(Debug)]
pub(crate) struct Output {
    host: HostRef,
    stream: StreamKind,
    data: Vec<u8>,
}

#[pymethods]
impl Output {
    /// The host's position in the run's host list (as `HostResult.index`).
    #[getter]
    fn index(&self) -> usize {
        self.host.index
    }

    /// The host's name, without user and port.
    #[getter]
    fn host(&self) -> &str {
        self.host.host()
    }

    /// `"stdout"` or `"stderr"`.
    #[getter]
    fn stream(&self) -> &'static str {
        stream_name(self.stream)
    }

    /// The bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The bytes as text (invalid UTF-8 replaced by U+FFFD; a character split between two
    /// pieces of output shows as replacement characters: read lines() for text).
    #[getter]
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "<fleetsh.Output {} {} {} bytes>",
            self.host.target(),
            self.stream(),
            self.data.len()
        )
    }
}

/// Progress of a host's file transfer: files and bytes completed since its previous
/// `Transferred`.
#[pyclass(frozen, module = "fleetsh", name = "Transferred")]
#[derive(Debug)]
pub(crate) struct Transferred {
    host: HostRef,
    files: u64,
    bytes: u64,
}

#[pymethods]
impl Transferred {
    /// The host's position in the run's host list.
    #[getter]
    fn index(&self) -> usize {
        self.host.index
    }

    /// The host's name, without user and port.
    #[getter]
    fn host(&self) -> &str {
        self.host.host()
    }

    /// Files completed since the host's previous progress.
    #[getter]
    fn files(&self) -> u64 {
        self.files
    }

    /// Bytes moved since the host's previous progress.
    #[getter]
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn __repr__(&self) -> String {
        format!(
            "<fleetsh.Transferred {} files={} bytes={}>",
            self.host.target(),
            self.files,
            self.bytes
        )
    }
}

/// One line of a host's stdout or stderr, without its newline (`\n` or `\r\n`).
#[pyclass(frozen, module = "fleetsh", name = "Line")]
#[derive(Debug)]
pub(crate) struct Line {
    host: HostRef,
    line: fleetsh::Line,
}

#[pymethods]
impl Line {
    /// The host's position in the run's host list.
    #[getter]
    fn index(&self) -> usize {
        self.host.index
    }

    /// The host's name, without user and port.
    #[getter]
    fn host(&self) -> &str {
        self.host.host()
    }

    /// `"stdout"` or `"stderr"`.
    #[getter]
    fn stream(&self) -> &'static str {
        stream_name(self.line.stream)
    }

    /// The line's bytes exactly as the host sent them.
    #[getter]
    fn bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.line.bytes)
    }

    /// The line as text (invalid UTF-8 replaced by U+FFFD).
    #[getter]
    fn text(&self) -> String {
        self.line.text().into_owned()
    }

    /// How the line ended: `"newline"`; `"split"` for a piece of a line longer than 64 KiB
    /// (the next line of the same host and stream continues it); `"eof"` for the stream's
    /// last bytes, which had no newline.
    #[getter]
    fn end(&self) -> &'static str {
        match self.line.end {
            LineEnd::Newline => "newline",
            LineEnd::Split => "split",
            _ => "eof",
        }
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!(
            "<fleetsh.Line {} {} {:?}>",
            self.host.target(),
            self.stream(),
            self.line.text()
        )
    }
}

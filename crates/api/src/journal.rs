//! A run's journal on disk ([`JournalFile`]): every host's start, written before its command
//! leaves, and its final result, so that running the same run again with the same journal
//! never sends a command twice (the format: [`fleetsh_core::journal`]).
//!
//! Durability: each line is one `write` to a file opened for appending, so the kernel has it
//! when the call returns and a controller killed at any instant leaves a journal that reads back
//! (at most its last line torn, which is dropped when the journal is opened again). By default
//! lines are not `fsync`ed: a crash or reboot of the machine itself may lose the last lines.
//! [`JournalFile::sync`] makes every line durable before the run goes on (`fdatasync` after each
//! write, so a host's start is on disk before its command leaves), at a cost measured in
//! `docs/benchmarks.md`.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use fleetsh_core::ErrorKind;
pub use fleetsh_core::journal::{
    Duplicate, Found, Header, HostState, JournalError, MergeError, Merged, Replay, Split,
    list_digest, merge, read, read_from,
};
use parking_lot::Mutex;

use crate::{HostResult, InputError};

/// A journal file open for appending, for one run.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// Hosts whose start was written (a cancelled host that never started gets no result line:
    /// a re-run runs it).
    started: Mutex<HashSet<usize>>,
    /// `fdatasync` after every line.
    sync: bool,
}

impl JournalFile {
    /// Opens `path` for the run `header` describes. A missing or empty file becomes a new
    /// journal (its header written first). An existing journal is read back and returned: it
    /// must have been written for the same run (command, part, host list), else the error says
    /// what differs; a torn last line is dropped from the file.
    pub fn open(path: &Path, header: &Header) -> Result<(JournalFile, Option<Replay>), InputError> {
        let io = |e: std::io::Error| InputError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let bad = |message: String| InputError::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| bad("not a journal (not UTF-8 text)".into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let replay = if text.trim().is_empty() {
            None
        } else {
            let replay = read(&text).map_err(|e| bad(format!("journal {e}")))?;
            if let Some(why) = replay.header.mismatch(header) {
                return Err(bad(format!(
                    "journal of another run, not resumed: {why} (name a new journal file)"
                )));
            }
            Some(replay)
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        match &replay {
            None => {
                file.set_len(0).map_err(io)?;
                file.write_all(&header.line()).map_err(io)?;
            }
            Some(r) if r.torn.is_some() => {
                // Keep the complete lines only: new lines must not be glued to the torn one.
                let keep = text.rfind('\n').map_or(0, |i| i + 1);
                file.set_len(keep as u64).map_err(io)?;
                tracing::warn!(
                    "journal {}: its last line was cut short (the run was stopped while writing it) and is dropped",
                    path.display()
                );
            }
            Some(_) => {}
        }
        let started = replay
            .as_ref()
            .map(|r| r.started.iter().copied().collect())
            .unwrap_or_default();
        Ok((
            JournalFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
                started: Mutex::new(started),
                sync: false,
            },
            replay,
        ))
    }

    /// With `sync`, every line is on disk (`fdatasync`) before the run goes on: a host's start
    /// before its command leaves, its result before the next host's line. The journal then
    /// survives a crash or reboot of the machine, not only of the controller; each line costs a
    /// disk flush, taken on the shard's thread.
    pub fn sync(mut self, sync: bool) -> JournalFile {
        self.sync = sync;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        let mut file = self.file.lock();
        file.write_all(line)?;
        if self.sync {
            file.sync_data()?;
        }
        Ok(())
    }
}

impl fleetsh_shard::executor::Journal for JournalFile {
    fn started(&self, index: usize) -> Result<(), String> {
        self.write(&fleetsh_core::journal::started_line(index))
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.started.lock().insert(index);
        Ok(())
    }

    fn finished(&self, result: &HostResult) {
        let never_started = !self.started.lock().contains(&result.index);
        let stopped_before = matches!(
            result.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Cancelled | ErrorKind::Skipped)
        );
        if never_started && stopped_before {
            return;
        }
        if let Err(e) = self.write(&fleetsh_core::journal::result_line(result)) {
            tracing::warn!(
                "journal {}: cannot record {}'s result: {e}",
                self.path.display(),
                result.target
            );
        }
    }
}

//! A session's open files and directories ([`Handles`]), by the handle strings the client
//! holds, at most [`MAX_HANDLES`] at once.

use std::collections::HashMap;
use std::fs::File;

use russh_sftp::protocol::{Handle, StatusCode};

use super::evil::EvilEntry;
use super::listing::Listing;
use super::status::{Reply, bad_handle};

/// Most handles open at once in one session.
pub(super) const MAX_HANDLES: usize = 1024;

/// What a handle stands for.
#[derive(Debug)]
pub(super) enum Open {
    File(File),
    Dir(Listing),
    /// A hostile entry of an `sftp-evil` host, open for reading.
    Evil(&'static EvilEntry),
}

/// The open handles of one session.
#[derive(Debug, Default)]
pub(super) struct Handles {
    open: HashMap<String, Open>,
    next: u64,
}

impl Handles {
    /// Registers an open file or directory.
    pub(super) fn add(&mut self, id: u32, open: Open) -> Reply<Handle> {
        if self.open.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure
                .with_message(format!("too many open handles (at most {MAX_HANDLES})")));
        }
        let handle = self.next.to_string();
        self.next += 1;
        self.open.insert(handle.clone(), open);
        Ok(Handle { id, handle })
    }

    /// Forgets a handle (`close`); what it stood for, if it was open.
    pub(super) fn remove(&mut self, handle: &str) -> Option<Open> {
        self.open.remove(handle)
    }

    pub(super) fn get(&self, handle: &str) -> Reply<&Open> {
        self.open.get(handle).ok_or_else(|| bad_handle(handle))
    }

    /// The file a handle stands for (refused for directories and read-only hostile entries).
    pub(super) fn file(&self, handle: &str) -> Reply<&File> {
        match self.get(handle)? {
            Open::File(file) => Ok(file),
            Open::Dir(_) => Err(StatusCode::Failure.with_message("handle is a directory")),
            Open::Evil(_) => Err(StatusCode::PermissionDenied.with_message("read-only file")),
        }
    }

    /// The directory listing a handle stands for.
    pub(super) fn dir(&mut self, handle: &str) -> Reply<&mut Listing> {
        match self.open.get_mut(handle) {
            Some(Open::Dir(dir)) => Ok(dir),
            Some(_) => Err(StatusCode::Failure.with_message("handle is not a directory")),
            None => Err(bad_handle(handle)),
        }
    }
}

//! SFTP attributes of files: read from file metadata ([`attributes`]) and applied by
//! `setstat` ([`set_path_attrs`]) and `fsetstat` ([`set_file_attrs`]).

use std::fs::{self, File, FileTimes, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use russh_sftp::protocol::FileAttributes;

/// SFTP attributes of a file (seconds clamped to what the protocol carries).
pub(super) fn attributes(meta: &Metadata) -> FileAttributes {
    let secs = |s: i64| u32::try_from(s.max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        size: Some(meta.len()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        permissions: Some(meta.mode()),
        atime: Some(secs(meta.atime())),
        mtime: Some(secs(meta.mtime())),
        ..FileAttributes::empty()
    }
}

/// The times in `attrs`, if any.
fn file_times(attrs: &FileAttributes) -> Option<FileTimes> {
    let at = |s: u32| UNIX_EPOCH + Duration::from_secs(u64::from(s));
    if attrs.atime.is_none() && attrs.mtime.is_none() {
        return None;
    }
    let mut times = FileTimes::new();
    if let Some(a) = attrs.atime {
        times = times.set_accessed(at(a));
    }
    if let Some(m) = attrs.mtime {
        times = times.set_modified(at(m));
    }
    Some(times)
}

/// `setstat`: size, times, then permissions (last, so that they cannot keep the times
/// from being set). Ownership is ignored: the sim runs as one user.
pub(super) fn set_path_attrs(real: &Path, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(size) = attrs.size {
        OpenOptions::new().write(true).open(real)?.set_len(size)?;
    }
    if let Some(times) = file_times(attrs) {
        File::open(real)?.set_times(times)?;
    }
    if let Some(mode) = attrs.permissions {
        fs::set_permissions(real, Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(())
}

/// `fsetstat`: as [`set_path_attrs`], on an open file.
pub(super) fn set_file_attrs(file: &File, attrs: &FileAttributes) -> io::Result<()> {
    if let Some(size) = attrs.size {
        file.set_len(size)?;
    }
    if let Some(times) = file_times(attrs) {
        file.set_times(times)?;
    }
    if let Some(mode) = attrs.permissions {
        file.set_permissions(Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(())
}

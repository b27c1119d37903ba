//! The `sftp` subsystem: an SFTP version 3 server (russh-sftp's request loop around this
//! crate's [`SftpServer`] handler) backed by one real directory per host,
//! `state_dir/root/<host name>/`, created when the host's first SFTP session starts.
//!
//! # Paths
//!
//! The host sees its root directory as `/`, which is also the current directory (so
//! `realpath(".")` is `/`). A client path is mapped in three steps:
//!
//! 1. it is normalised lexically, whether absolute or relative: empty and `.` components
//!    are dropped, `..` drops the component before it and stays at `/` at the top, so
//!    `../../x`, `/x` and `a/../../x` all name `ROOT/x`;
//! 2. the directory part is resolved on the real filesystem, following symlinks
//!    (`canonicalize`), and must stay inside the root: otherwise the request fails with
//!    `PermissionDenied` (a symlink in the root pointing elsewhere is never followed);
//! 3. the last component is used as it is by the requests that act on a directory entry
//!    itself (`lstat`, `remove`, `rename`, `mkdir`, `rmdir`, `readlink`, `symlink`); the
//!    others (`open`, `stat`, `setstat`, `opendir`, `realpath`) follow it if it is a
//!    symlink, and refuse when its target is outside the root (`PermissionDenied`) or
//!    missing (`NoSuchFile`).
//!
//! A `symlink` request stores an absolute target as the real path under the root (and
//! `readlink` maps it back), and refuses a relative target that climbs above the root.
//!
//! # Faults
//!
//! - `sftp-evil` ([`Fault::SftpEvil`](crate::Fault::SftpEvil)): every directory listing
//!   also holds the names of [`EVIL`](evil::EVIL) (`../escape`, `/etc/evil`,
//!   `a/../../b`, ...), each claiming to be a regular file; opening one of them for reading
//!   (a client path that is the name or ends with `/` and the name) returns data, and
//!   `realpath` of anything answers `/../../outside`. The real files of the root still
//!   work.
//! - `sftp-cut:BYTES` ([`Fault::SftpCut`](crate::Fault::SftpCut)): once a connection has
//!   carried more than `BYTES` bytes of write data (over all its SFTP sessions and files),
//!   the write that crosses the line stores its bytes up to the line, then the whole TCP
//!   connection is shut down, with no reply.
//!
//! # Modules
//!
//! - [`handler`]: the session ([`SftpServer`]) and its answer to every request.
//! - [`paths`]: client paths mapped onto the host's root.
//! - [`handles`]: a session's open files and directories.
//! - [`listing`]: directory listings in batches, with `ls -l` long names.
//! - [`attrs`]: SFTP attributes read from and applied to files.
//! - [`status`]: status replies.
//! - [`evil`] and [`cut`]: the two SFTP faults.

mod attrs;
mod cut;
mod evil;
mod handler;
mod handles;
mod listing;
mod paths;
mod status;

pub(crate) use cut::SftpCut;
pub(crate) use handler::SftpServer;

//! The `sftp` subsystem: an SFTP version 3 server (russh-sftp's request loop around this
//! module's [`SftpServer`] handler) backed by one real directory per host,
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
//!   also holds the names of [`EVIL`] (`../escape`, `/etc/evil`, `a/../../b`, ...), each
//!   claiming to be a regular file; opening one of them for reading (a client path that is
//!   the name or ends with `/` and the name) returns data, and `realpath` of anything
//!   answers `/../../outside`. The real files of the root still work.
//! - `sftp-cut:BYTES` ([`Fault::SftpCut`](crate::Fault::SftpCut)): once a connection has
//!   carried more than `BYTES` bytes of write data (over all its SFTP sessions and files),
//!   the write that crosses the line stores its bytes up to the line, then the whole TCP
//!   connection is shut down, with no reply.

use std::collections::HashMap;
use std::fs::{self, File, FileTimes, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File as Entry, FileAttributes, Handle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use crate::stream::CutSwitch;

/// Largest packet a client may send (russh-sftp's server limit).
const MAX_PACKET: u64 = 256 * 1024;
/// Most data one read returns, and most one write may carry (as OpenSSH: 1 KiB under
/// the packet limit, room for the header).
const MAX_DATA: u32 = 256 * 1024 - 1024;
/// Most handles open at once in one session.
const MAX_HANDLES: usize = 1024;
/// Entries per `readdir` answer.
const READDIR_BATCH: usize = 100;

/// The extension that renames over an existing target.
const POSIX_RENAME: &str = "posix-rename@openssh.com";
/// The extension that tells the server's limits.
const LIMITS: &str = "limits@openssh.com";

/// What `sftp-evil` hosts answer to every `realpath`.
const EVIL_REALPATH: &str = "/../../outside";

/// Content of the hostile entries of `sftp-evil` hosts.
const EVIL_DATA: &[u8] = b"fleetsh-sim sftp-evil: hostile content, not a file of the host\n";

/// Content of [`EVIL`]'s `size-lie` entry: far more than its attributes say.
static SIZE_LIE_DATA: [u8; 16 * 1024] = [b'!'; 16 * 1024];

/// One hostile directory entry of an `sftp-evil` host.
#[derive(Debug)]
pub(crate) struct EvilEntry {
    /// The name as listed.
    pub(crate) name: &'static str,
    /// The size its attributes claim.
    pub(crate) size: u64,
    /// What reading it returns.
    pub(crate) data: &'static [u8],
}

/// The hostile entries every `readdir` of an `sftp-evil` host adds, after the real ones.
/// All claim to be regular files (mode `0644`); `size-lie` claims 4 bytes and reads 16 KiB.
pub(crate) static EVIL: [EvilEntry; 8] = [
    evil("../escape"),
    evil("/etc/evil"),
    evil("a/../../b"),
    evil("..."),
    evil("..evil"),
    evil("..\\..\\evil"),
    evil("../../../../../../../../tmp/fleetsh-sim-evil"),
    EvilEntry {
        name: "size-lie",
        size: 4,
        data: &SIZE_LIE_DATA,
    },
];

/// An [`EvilEntry`] that reads [`EVIL_DATA`] and says so.
const fn evil(name: &'static str) -> EvilEntry {
    EvilEntry {
        name,
        size: EVIL_DATA.len() as u64,
        data: EVIL_DATA,
    }
}

impl EvilEntry {
    fn attrs(&self) -> FileAttributes {
        FileAttributes {
            size: Some(self.size),
            uid: Some(0),
            gid: Some(0),
            permissions: Some(0o100_644),
            atime: Some(0),
            mtime: Some(0),
            ..FileAttributes::empty()
        }
    }
}

/// The `sftp-cut` fault of a connection: the switch, the line and the bytes so far.
#[derive(Debug)]
pub(crate) struct SftpCut {
    switch: Arc<CutSwitch>,
    limit: u64,
    /// Shared by the connection's SFTP sessions.
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl SftpCut {
    /// A cut of the connection behind `switch` after `limit` bytes of write data.
    pub(crate) fn new(switch: Arc<CutSwitch>, limit: u64) -> SftpCut {
        SftpCut {
            switch,
            limit,
            received: Arc::default(),
        }
    }

    /// Another session's view of the same connection's count.
    pub(crate) fn share(&self) -> SftpCut {
        SftpCut {
            switch: self.switch.clone(),
            limit: self.limit,
            received: self.received.clone(),
        }
    }

    /// Counts `len` bytes received; how many of them may still be stored, and whether
    /// the connection must be cut after storing them.
    fn admit(&self, len: usize) -> (usize, bool) {
        let len = len as u64;
        let before = self
            .received
            .fetch_add(len, std::sync::atomic::Ordering::SeqCst);
        let room = self.limit.saturating_sub(before).min(len);
        (room as usize, before.saturating_add(len) > self.limit)
    }
}

/// Whether a request acts on the last component itself or on what a symlink there names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Follow a symlink (`open`, `stat`, ...).
    Follow,
    /// The entry itself (`lstat`, `remove`, ...).
    Entry,
}

/// What a handle stands for.
#[derive(Debug)]
enum Open {
    File(File),
    Dir(Listing),
    /// A hostile entry of an `sftp-evil` host, open for reading.
    Evil(&'static EvilEntry),
}

/// An open directory, listed in batches.
#[derive(Debug)]
struct Listing {
    /// Its real (canonical) path.
    path: PathBuf,
    entries: fs::ReadDir,
    /// `.` and `..` are listed already.
    dots_sent: bool,
    /// The hostile entries are still to be listed (`sftp-evil` hosts).
    evil_pending: bool,
}

/// One SFTP session of one host: the russh-sftp [`Handler`](russh_sftp::server::Handler).
#[derive(Debug)]
pub(crate) struct SftpServer {
    /// The host's root, canonical.
    root: PathBuf,
    evil: bool,
    cut: Option<SftpCut>,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

type Reply<T> = Result<T, StatusReply>;

impl SftpServer {
    /// A session on the host whose root is `root` (created if missing).
    pub(crate) fn new(root: &Path, evil: bool, cut: Option<SftpCut>) -> io::Result<SftpServer> {
        fs::create_dir_all(root)?;
        Ok(SftpServer {
            root: fs::canonicalize(root)?,
            evil,
            cut,
            handles: HashMap::new(),
            next_handle: 0,
        })
    }

    /// Maps a client path to a real path under the root; see the [module docs](self#paths).
    fn resolve(&self, path: &str, last: Last) -> Reply<PathBuf> {
        let parts = normalise(path);
        let Some((name, dirs)) = parts.split_last() else {
            return Ok(self.root.clone());
        };
        let mut parent = self.root.clone();
        parent.extend(dirs);
        let parent = fs::canonicalize(&parent).map_err(|e| io_status(&e, path))?;
        self.check_inside(&parent, path)?;
        let target = parent.join(name);
        if last == Last::Entry {
            return Ok(target);
        }
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let real = fs::canonicalize(&target).map_err(|_| {
                    StatusCode::NoSuchFile.with_message(format!("{path}: dangling symbolic link"))
                })?;
                self.check_inside(&real, path)?;
                Ok(real)
            }
            _ => Ok(target),
        }
    }

    /// Like [`resolve`](Self::resolve) with [`Last::Entry`], refusing the root itself.
    fn resolve_entry(&self, path: &str) -> Reply<PathBuf> {
        let real = self.resolve(path, Last::Entry)?;
        if real == self.root {
            return Err(StatusCode::PermissionDenied
                .with_message(format!("{path}: the root directory cannot be changed")));
        }
        Ok(real)
    }

    fn check_inside(&self, real: &Path, path: &str) -> Reply<()> {
        if real.starts_with(&self.root) {
            Ok(())
        } else {
            Err(StatusCode::PermissionDenied
                .with_message(format!("{path}: leads outside the host's root")))
        }
    }

    /// The host's view of a real path under the root: `/` and the rest.
    fn host_path(&self, real: &Path) -> String {
        let rest = real.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut out = String::new();
        for part in rest.components() {
            out.push('/');
            out.push_str(&part.as_os_str().to_string_lossy());
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The hostile entry a client path names, on an `sftp-evil` host.
    fn evil_entry(&self, path: &str) -> Option<&'static EvilEntry> {
        if !self.evil {
            return None;
        }
        EVIL.iter().find(|e| {
            path == e.name
                || path
                    .strip_suffix(e.name)
                    .is_some_and(|head| head.ends_with('/'))
        })
    }

    /// Registers an open file or directory.
    fn add(&mut self, id: u32, open: Open) -> Reply<Handle> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure
                .with_message(format!("too many open handles (at most {MAX_HANDLES})")));
        }
        let handle = self.next_handle.to_string();
        self.next_handle += 1;
        self.handles.insert(handle.clone(), open);
        Ok(Handle { id, handle })
    }

    fn get(&self, handle: &str) -> Reply<&Open> {
        self.handles.get(handle).ok_or_else(|| bad_handle(handle))
    }

    fn file(&self, handle: &str) -> Reply<&File> {
        match self.get(handle)? {
            Open::File(file) => Ok(file),
            Open::Dir(_) => Err(StatusCode::Failure.with_message("handle is a directory")),
            Open::Evil(_) => Err(StatusCode::PermissionDenied.with_message("read-only file")),
        }
    }

    /// Renames `from` to `to`; `overwrite: false` is SFTPv3's rename, which fails if the
    /// target exists.
    fn rename_paths(&self, from: &str, to: &str, overwrite: bool) -> Reply<()> {
        let real_from = self.resolve_entry(from)?;
        let real_to = self.resolve_entry(to)?;
        if !overwrite && fs::symlink_metadata(&real_to).is_ok() {
            return Err(StatusCode::Failure.with_message(format!("{to}: file exists")));
        }
        fs::rename(&real_from, &real_to).map_err(|e| io_status(&e, from))
    }

    /// One `readdir` answer for `handle`: the next batch, or `Eof`.
    fn next_batch(&mut self, handle: &str) -> Reply<Vec<Entry>> {
        let root = self.root.clone();
        let Some(Open::Dir(dir)) = self.handles.get_mut(handle) else {
            return Err(match self.handles.get(handle) {
                Some(_) => StatusCode::Failure.with_message("handle is not a directory"),
                None => bad_handle(handle),
            });
        };
        let mut files = Vec::new();
        if !dir.dots_sent {
            dir.dots_sent = true;
            // `..` of the root is the root itself, as on a real `/`.
            let parent = if dir.path == root {
                dir.path.as_path()
            } else {
                dir.path.parent().unwrap_or(&dir.path)
            };
            for (name, path) in [(".", dir.path.as_path()), ("..", parent)] {
                if let Ok(meta) = fs::metadata(path) {
                    files.push(entry(name, &meta));
                }
            }
        }
        while files.len() < READDIR_BATCH {
            match dir.entries.next() {
                Some(Ok(found)) => {
                    // Vanished since listed: skip it.
                    if let Ok(meta) = found.metadata() {
                        files.push(entry(&found.file_name().to_string_lossy(), &meta));
                    }
                }
                Some(Err(e)) => return Err(io_status(&e, "readdir")),
                None => break,
            }
        }
        if files.len() < READDIR_BATCH && dir.evil_pending {
            dir.evil_pending = false;
            for evil in &EVIL {
                let attrs = evil.attrs();
                files.push(Entry {
                    filename: evil.name.to_owned(),
                    longname: longname(evil.name, &attrs, 1),
                    attrs,
                });
            }
        }
        if files.is_empty() {
            return Err(StatusCode::Eof.with_message("end of directory"));
        }
        Ok(files)
    }
}

impl russh_sftp::server::Handler for SftpServer {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.with_message("operation not supported")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Reply<Version> {
        let mut version = Version::new();
        version.extensions.insert(POSIX_RENAME.into(), "1".into());
        version.extensions.insert(LIMITS.into(), "1".into());
        Ok(version)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Reply<Handle> {
        let writes = OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        if let Some(evil) = self.evil_entry(&filename)
            && !pflags.intersects(writes)
        {
            return self.add(id, Open::Evil(evil));
        }
        let real = self.resolve(&filename, Last::Follow)?;
        let mut options = OpenOptions::new();
        options
            .read(pflags.contains(OpenFlags::READ))
            .write(pflags.contains(OpenFlags::WRITE))
            .append(pflags.contains(OpenFlags::APPEND))
            .truncate(pflags.contains(OpenFlags::TRUNCATE));
        if pflags.contains(OpenFlags::CREATE) {
            if pflags.contains(OpenFlags::EXCLUDE) {
                options.create_new(true);
            } else {
                options.create(true);
            }
        }
        let mode = attrs.permissions.map(|p| p & 0o7777);
        if let Some(mode) = mode {
            options.mode(mode);
        }
        let created = pflags.contains(OpenFlags::CREATE) && fs::symlink_metadata(&real).is_err();
        let file = options.open(&real).map_err(|e| io_status(&e, &filename))?;
        // The mode as asked, whatever the umask.
        if created && let Some(mode) = mode {
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(|e| io_status(&e, &filename))?;
        }
        self.add(id, Open::File(file))
    }

    async fn close(&mut self, id: u32, handle: String) -> Reply<Status> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(bad_handle(&handle)),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        let len = len.min(MAX_DATA) as usize;
        let data = match self.get(&handle)? {
            Open::File(file) => read_at(file, offset, len).map_err(|e| io_status(&e, "read"))?,
            Open::Evil(evil) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let rest = evil.data.get(start..).unwrap_or_default();
                rest.get(..len.min(rest.len())).unwrap_or_default().to_vec()
            }
            Open::Dir(_) => {
                return Err(StatusCode::Failure.with_message("handle is a directory"));
            }
        };
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof.with_message("end of file"));
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        let (room, cut) = match &self.cut {
            Some(fault) => fault.admit(data.len()),
            None => (data.len(), false),
        };
        let written = self.file(&handle).and_then(|file| {
            file.write_all_at(data.get(..room).unwrap_or_default(), offset)
                .map_err(|e| io_status(&e, "write"))
        });
        if cut && let Some(fault) = &self.cut {
            tracing::debug!(limit = fault.limit, "sftp-cut: cutting the connection");
            fault.switch.cut_now();
            return Err(StatusCode::Failure.with_message("connection cut (sftp-cut fault)"));
        }
        written.map(|()| ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        if let Some(evil) = self.evil_entry(&path) {
            return Ok(Attrs {
                id,
                attrs: evil.attrs(),
            });
        }
        let real = self.resolve(&path, Last::Entry)?;
        let meta = fs::symlink_metadata(&real).map_err(|e| io_status(&e, &path))?;
        Ok(Attrs {
            id,
            attrs: attributes(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Reply<Attrs> {
        let meta = match self.get(&handle)? {
            Open::File(file) => file.metadata(),
            Open::Dir(dir) => fs::metadata(&dir.path),
            Open::Evil(evil) => {
                return Ok(Attrs {
                    id,
                    attrs: evil.attrs(),
                });
            }
        };
        let meta = meta.map_err(|e| io_status(&e, "fstat"))?;
        Ok(Attrs {
            id,
            attrs: attributes(&meta),
        })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        let real = self.resolve(&path, Last::Follow)?;
        set_path_attrs(&real, &attrs).map_err(|e| io_status(&e, &path))?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        let set = match self.get(&handle)? {
            Open::File(file) => set_file_attrs(file, &attrs),
            Open::Dir(dir) => set_path_attrs(&dir.path, &attrs),
            Open::Evil(_) => {
                return Err(StatusCode::PermissionDenied.with_message("read-only file"));
            }
        };
        set.map_err(|e| io_status(&e, "fsetstat"))?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Reply<Handle> {
        let real = self.resolve(&path, Last::Follow)?;
        let entries = fs::read_dir(&real).map_err(|e| io_status(&e, &path))?;
        let evil_pending = self.evil;
        self.add(
            id,
            Open::Dir(Listing {
                path: real,
                entries,
                dots_sent: false,
                evil_pending,
            }),
        )
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Reply<Name> {
        let files = self.next_batch(&handle)?;
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Reply<Status> {
        let real = self.resolve_entry(&filename)?;
        fs::remove_file(&real).map_err(|e| io_status(&e, &filename))?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        let real = self.resolve_entry(&path)?;
        fs::create_dir(&real).map_err(|e| io_status(&e, &path))?;
        if let Some(mode) = attrs.permissions {
            fs::set_permissions(&real, Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_status(&e, &path))?;
        }
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Reply<Status> {
        let real = self.resolve_entry(&path)?;
        fs::remove_dir(&real).map_err(|e| io_status(&e, &path))?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Reply<Name> {
        let name = if self.evil {
            EVIL_REALPATH.to_owned()
        } else {
            let real = self.resolve(&path, Last::Follow)?;
            self.host_path(&real)
        };
        Ok(Name {
            id,
            files: vec![Entry::dummy(name)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        if let Some(evil) = self.evil_entry(&path) {
            return Ok(Attrs {
                id,
                attrs: evil.attrs(),
            });
        }
        let real = self.resolve(&path, Last::Follow)?;
        let meta = fs::metadata(&real).map_err(|e| io_status(&e, &path))?;
        Ok(Attrs {
            id,
            attrs: attributes(&meta),
        })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Reply<Status> {
        self.rename_paths(&oldpath, &newpath, false)?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Reply<Name> {
        let real = self.resolve(&path, Last::Entry)?;
        let target = fs::read_link(&real).map_err(|e| io_status(&e, &path))?;
        let target = if target.is_absolute() && target.starts_with(&self.root) {
            self.host_path(&target)
        } else {
            target.to_string_lossy().into_owned()
        };
        Ok(Name {
            id,
            files: vec![Entry {
                filename: target.clone(),
                longname: target,
                attrs: FileAttributes::empty(),
            }],
        })
    }

    async fn symlink(&mut self, id: u32, linkpath: String, targetpath: String) -> Reply<Status> {
        let link = self.resolve_entry(&linkpath)?;
        let target = if targetpath.starts_with('/') {
            let mut real = self.root.clone();
            real.extend(normalise(&targetpath));
            real
        } else {
            // The link's directory, as a depth below the root.
            let mut depth = link
                .parent()
                .and_then(|dir| dir.strip_prefix(&self.root).ok())
                .map_or(0, |rest| rest.components().count());
            for part in targetpath.split('/') {
                match part {
                    "" | "." => {}
                    ".." if depth == 0 => {
                        return Err(StatusCode::PermissionDenied.with_message(format!(
                            "{targetpath}: symlink target leads outside the host's root"
                        )));
                    }
                    ".." => depth -= 1,
                    _ => depth += 1,
                }
            }
            PathBuf::from(&targetpath)
        };
        std::os::unix::fs::symlink(&target, &link).map_err(|e| io_status(&e, &linkpath))?;
        Ok(ok(id))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Reply<Packet> {
        match request.as_str() {
            POSIX_RENAME => {
                let Some((from, to)) = two_strings(&data) else {
                    return Err(StatusCode::BadMessage
                        .with_message(format!("{POSIX_RENAME}: expected two paths")));
                };
                self.rename_paths(&from, &to, true)?;
                Ok(Packet::Status(ok(id)))
            }
            LIMITS => {
                let mut data = Vec::with_capacity(32);
                for limit in [
                    MAX_PACKET,
                    u64::from(MAX_DATA),
                    u64::from(MAX_DATA),
                    MAX_HANDLES as u64,
                ] {
                    data.extend_from_slice(&limit.to_be_bytes());
                }
                Ok(Packet::ExtendedReply(ExtendedReply { id, data }))
            }
            other => Err(StatusCode::OpUnsupported
                .with_message(format!("extension `{other}` not supported"))),
        }
    }
}

/// The components of a client path after lexical normalisation (`..` stops at the top).
fn normalise(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts
}

/// The status for a failed file system call on `path`.
fn io_status(e: &io::Error, path: &str) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(format!("{path}: {e}"))
}

fn bad_handle(handle: &str) -> StatusReply {
    StatusCode::Failure.with_message(format!("invalid handle `{handle}`"))
}

/// An `Ok` status.
fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

/// Two SSH strings (`u32` length, bytes), as in a `posix-rename` request.
fn two_strings(data: &[u8]) -> Option<(String, String)> {
    fn take(data: &[u8]) -> Option<(String, &[u8])> {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let text = rest.get(..len)?;
        Some((String::from_utf8_lossy(text).into_owned(), rest.get(len..)?))
    }
    let (first, rest) = take(data)?;
    let (second, _) = take(rest)?;
    Some((first, second))
}

/// Up to `len` bytes of `file` from `offset` (fewer only at the end of the file).
fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..)
        && !rest.is_empty()
    {
        match file.read_at(rest, offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// SFTP attributes of a file (seconds clamped to what the protocol carries).
fn attributes(meta: &Metadata) -> FileAttributes {
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
fn set_path_attrs(real: &Path, attrs: &FileAttributes) -> io::Result<()> {
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
fn set_file_attrs(file: &File, attrs: &FileAttributes) -> io::Result<()> {
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

/// A `readdir` entry, with an `ls -l` style long name.
fn entry(name: &str, meta: &Metadata) -> Entry {
    let attrs = attributes(meta);
    Entry {
        filename: name.to_owned(),
        longname: longname(name, &attrs, meta.nlink()),
        attrs,
    }
}

/// The `ls -l` line OpenSSH's server sends: mode, links, owner, group, size, date, name
/// (numeric owner and group: the sim does not look names up).
fn longname(name: &str, attrs: &FileAttributes, nlink: u64) -> String {
    let mode = attrs.permissions.unwrap_or(0);
    let kind = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o120_000 => 'l',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o140_000 => 's',
        _ => '-',
    };
    let mut text = String::with_capacity(64 + name.len());
    text.push(kind);
    for (bit, c) in [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ] {
        text.push(if mode & bit != 0 { c } else { '-' });
    }
    let mtime = attrs.mtime.unwrap_or(0);
    text.push_str(&format!(
        " {nlink:>4} {:<8} {:<8} {:>8} {} {name}",
        attrs.uid.unwrap_or(0),
        attrs.gid.unwrap_or(0),
        attrs.size.unwrap_or(0),
        ls_date(mtime, SystemTime::now()),
    ));
    text
}

/// `ls -l`'s date: `Mon dd HH:MM` within six months of `now`, else `Mon dd  YYYY` (UTC).
fn ls_date(mtime: u32, now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = i64::from(mtime);
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (year, month, day) = fleetsh_core::clock::civil_from_days(secs.div_euclid(86_400));
    let month = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .unwrap_or(&"Jan");
    let recent = (now - secs).abs() < 182 * 86_400;
    if recent {
        let in_day = secs.rem_euclid(86_400);
        format!(
            "{month} {day:>2} {:02}:{:02}",
            in_day / 3600,
            in_day % 3600 / 60
        )
    } else {
        format!("{month} {day:>2}  {year}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_inside_the_root() {
        assert_eq!(normalise("/a/b"), ["a", "b"]);
        assert_eq!(normalise("a//./b/"), ["a", "b"]);
        assert_eq!(normalise("../../x"), ["x"]);
        assert_eq!(normalise("a/../../b"), ["b"]);
        assert_eq!(normalise("/.."), Vec::<&str>::new());
        assert_eq!(normalise("."), Vec::<&str>::new());
        assert_eq!(normalise(""), Vec::<&str>::new());
    }

    #[test]
    fn resolve_maps_and_confines() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let server = SftpServer::new(&dir.path().join("root/h"), false, None).unwrap();
        let root = server.root.clone();
        assert_eq!(server.resolve("/", Last::Follow).unwrap(), root);
        assert_eq!(
            server.resolve("../../x", Last::Follow).unwrap(),
            root.join("x")
        );
        assert_eq!(server.host_path(&root.join("x")), "/x");
        assert_eq!(server.host_path(&root), "/");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let denied = server.resolve("out/file", Last::Follow).unwrap_err();
        assert_eq!(denied.status_code, StatusCode::PermissionDenied);
        let denied = server.resolve("out", Last::Follow).unwrap_err();
        assert_eq!(denied.status_code, StatusCode::PermissionDenied);
        // The link itself can be looked at and removed.
        assert_eq!(
            server.resolve("out", Last::Entry).unwrap(),
            root.join("out")
        );
        let missing = server.resolve("nodir/file", Last::Follow).unwrap_err();
        assert_eq!(missing.status_code, StatusCode::NoSuchFile);
        assert!(server.resolve_entry("/").is_err());
    }

    #[test]
    fn evil_names_match_joined_paths() {
        let dir = tempfile::tempdir().unwrap();
        let server = SftpServer::new(dir.path(), true, None).unwrap();
        assert_eq!(server.evil_entry("/d/../escape").unwrap().name, "../escape");
        assert_eq!(server.evil_entry("..evil").unwrap().name, "..evil");
        assert_eq!(server.evil_entry("d//etc/evil").unwrap().name, "/etc/evil");
        assert!(server.evil_entry("/d/xescape").is_none());
        assert!(server.evil_entry("/d/file").is_none());
        let healthy = SftpServer::new(dir.path(), false, None).unwrap();
        assert!(healthy.evil_entry("/d/../escape").is_none());
    }

    #[test]
    fn posix_rename_payload() {
        let mut data = Vec::new();
        for s in ["/a", "/bc"] {
            data.extend_from_slice(&(s.len() as u32).to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        assert_eq!(two_strings(&data), Some(("/a".into(), "/bc".into())));
        assert_eq!(two_strings(&data[..7]), None);
        assert_eq!(two_strings(&[0, 0, 0]), None);
    }

    #[test]
    fn long_names_look_like_ls() {
        let attrs = FileAttributes {
            size: Some(1234),
            uid: Some(1000),
            gid: Some(100),
            permissions: Some(0o100_640),
            mtime: Some(0),
            ..FileAttributes::empty()
        };
        assert_eq!(
            longname("f", &attrs, 1),
            "-rw-r-----    1 1000     100          1234 Jan  1  1970 f"
        );
        let dir = FileAttributes {
            permissions: Some(0o040_755),
            ..attrs
        };
        assert!(longname("d", &dir, 2).starts_with("drwxr-xr-x    2 "));
        // 2024-02-29 12:34 UTC, shown with the time when recent.
        let t = 1_709_210_040;
        let now = UNIX_EPOCH + Duration::from_secs(t as u64 + 86_400);
        assert_eq!(ls_date(t, now), "Feb 29 12:34");
        assert_eq!(fleetsh_core::clock::civil_from_days(0), (1970, 1, 1));
        assert_eq!(fleetsh_core::clock::civil_from_days(19_782), (2024, 2, 29));
    }
}

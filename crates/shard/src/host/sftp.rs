//! File transfers over SFTP on an authenticated connection: `put` (atomic per file: written
//! under a temporary name, then renamed) and `get` (into `LOCALDIR/HOST/`, refusing any name
//! that could leave it), with many requests in flight per file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use fleetsh_core::transfer::{
    GetPlan, PutKind, PutPlan, TransferStats, host_dir_name, is_safe_component, remote_base_name,
};
use fleetsh_core::{Action, ErrorKind, Event, HostError, HostResult};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use parking_lot::Mutex;
use russh::ChannelMsg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use super::ctx::HostCtx;
use crate::ssh::handler::Handle;

/// Bytes per read or write request, unless the server's `limits@openssh.com` says less.
pub(crate) const CHUNK: u32 = 64 * 1024;
/// Requests in flight per file (read or write).
pub(crate) const WINDOW: usize = 32;
/// A `Transferred` progress event is sent at least every this many bytes (and per file).
const PROGRESS_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries one host's `get -r` may list (a hostile server could list forever).
const MAX_GET_ENTRIES: usize = 1_000_000;
/// Deepest directory nesting `get -r` follows.
const MAX_GET_DEPTH: usize = 64;

/// An SFTP session and what the server supports.
struct Sftp {
    raw: RawSftpSession,
    posix_rename: bool,
    read_chunk: u32,
    write_chunk: u32,
}

/// What survives the transfer future being dropped (cancel, timeout): counts and the
/// temporary files to clean up.
#[derive(Debug, Default)]
struct State {
    stats: TransferStats,
    unsent: TransferStats,
    remote_tmp: Option<String>,
    local_tmp: Option<PathBuf>,
}

struct Progress<'a> {
    ctx: &'a HostCtx,
    index: usize,
    state: Arc<Mutex<State>>,
}

impl Progress<'_> {
    fn bytes(&self, n: u64) {
        let mut st = self.state.lock();
        st.stats.bytes += n;
        st.unsent.bytes += n;
        if st.unsent.bytes >= PROGRESS_BYTES {
            self.flush(&mut st);
        }
    }

    fn file_done(&self) {
        let mut st = self.state.lock();
        st.stats.files += 1;
        st.unsent.files += 1;
        self.flush(&mut st);
    }

    fn flush(&self, st: &mut State) {
        if st.unsent == TransferStats::default() {
            return;
        }
        let u = std::mem::take(&mut st.unsent);
        self.ctx.sink.send(Event::Transferred {
            host: self.index,
            files: u.files,
            bytes: u.bytes,
        });
    }

    fn budget(&self) -> &tokio::sync::Semaphore {
        self.ctx.shared.upload_budget()
    }

    fn set_remote_tmp(&self, tmp: Option<String>) {
        self.state.lock().remote_tmp = tmp;
    }

    fn set_local_tmp(&self, tmp: Option<PathBuf>) {
        self.state.lock().local_tmp = tmp;
    }
}

/// Runs the job's transfer on an authenticated connection. `typed` is the host as the user
/// typed it (names the host's download directory).
pub(super) async fn run_transfer(
    ctx: &HostCtx,
    handle: &Handle,
    result: &mut HostResult,
    start: Instant,
    typed: &str,
) {
    let job = &ctx.job;
    let t_open = start.elapsed();
    let state = Arc::new(Mutex::new(State::default()));
    result.transfer = Some(TransferStats::default());
    let opened = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled before the transfer started")),
        r = tokio::time::timeout(job.connect_timeout, open(handle, job.connect_timeout)) => match r {
            Ok(r) => r,
            Err(_) => Err(HostError::new(
                ErrorKind::Transfer,
                format!("the server did not start its SFTP subsystem within {:?}", job.connect_timeout),
            )),
        },
    };
    let sftp = match opened {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(lost_or(handle, e));
            return;
        }
    };
    // A journal records the start before the first file moves.
    if let Some(journal) = &ctx.journal
        && let Err(e) = journal.started(result.index)
    {
        result.error = Some(HostError::new(
            ErrorKind::Internal,
            format!("cannot write the journal ({e}): nothing was transferred"),
        ));
        return;
    }
    let t_xfer = start.elapsed();
    result.timings.channel_open = Some(t_xfer.saturating_sub(t_open));
    let progress = Progress {
        ctx,
        index: result.index,
        state: state.clone(),
    };
    let work = async {
        match &job.action {
            Action::Put(plan) => put(&sftp, plan, &progress).await,
            Action::Get(plan) => get(&sftp, plan, typed, &progress).await,
            Action::Exec | Action::Connect => Err(HostError::new(
                ErrorKind::Internal,
                "a command or connect-only job reached the transfer code",
            )),
        }
    };
    let deadline = job.command_timeout.map(|d| tokio::time::Instant::now() + d);
    let sleep = tokio::time::sleep_until(
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365)),
    );
    let outcome = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled during the transfer")),
        _ = sleep, if deadline.is_some() => Err(HostError::new(
            ErrorKind::CommandTimeout,
            format!("transfer did not finish within {:?}", job.command_timeout.unwrap_or_default()),
        )),
        r = work => r,
    };
    // Clean up what an interrupted transfer left: the remote temporary file (if the
    // connection still works) and the local one. Targets are never partial: they are only
    // ever replaced by a rename of a complete file.
    let (remote_tmp, local_tmp) = {
        let mut st = state.lock();
        (st.remote_tmp.take(), st.local_tmp.take())
    };
    if let Some(tmp) = remote_tmp
        && !handle.is_closed()
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), sftp.raw.remove(tmp)).await;
    }
    if let Some(tmp) = local_tmp {
        let _ = std::fs::remove_file(tmp);
    }
    {
        let mut st = state.lock();
        progress.flush(&mut st);
        result.transfer = Some(st.stats);
    }
    let _ = sftp.raw.close_session();
    result.timings.read = Some(start.elapsed().saturating_sub(t_xfer));
    if let Err(e) = outcome {
        result.error = Some(lost_or(handle, e));
    }
}

/// A transfer error on a connection that is gone is a lost connection.
fn lost_or(handle: &Handle, e: HostError) -> HostError {
    if e.kind == ErrorKind::Transfer && handle.is_closed() {
        HostError::new(
            ErrorKind::Disconnected,
            format!("connection lost during the transfer ({})", e.message),
        )
    } else {
        e
    }
}

fn xfer(msg: impl Into<String>) -> HostError {
    HostError::new(ErrorKind::Transfer, msg)
}

fn sftp_err(what: &str, path: &str, e: &SftpError) -> HostError {
    let why = match e {
        SftpError::Status(s) => {
            let code = match s.status_code {
                StatusCode::NoSuchFile => "no such file or directory".to_string(),
                StatusCode::PermissionDenied => "permission denied".to_string(),
                StatusCode::Eof => "end of file".to_string(),
                other => other.to_string().to_lowercase(),
            };
            // Some servers name the path in their message again: said once.
            let message = s
                .error_message
                .strip_prefix(path)
                .map_or(s.error_message.as_str(), |m| {
                    m.trim_start_matches([':', ' '])
                });
            if message.is_empty() {
                code
            } else if message.to_lowercase().contains(&code) {
                message.to_string()
            } else {
                format!("{code} ({message})")
            }
        }
        SftpError::Timeout => "the server did not answer in time".into(),
        other => other.to_string(),
    };
    xfer(format!("{what} {path}: {why}"))
}

fn local_err(what: &str, path: &Path, e: &std::io::Error) -> HostError {
    xfer(format!("{what} {} (local): {e}", path.display()))
}

fn is_status(e: &SftpError, code: StatusCode) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == code)
}

async fn open(handle: &Handle, timeout: Duration) -> Result<Sftp, HostError> {
    let mut ch = handle.channel_open_session().await.map_err(|e| {
        HostError::new(
            ErrorKind::Channel,
            format!("cannot open a session channel: {e}"),
        )
    })?;
    ch.request_subsystem(true, "sftp").await.map_err(|e| {
        HostError::new(ErrorKind::Channel, format!("subsystem request failed: {e}"))
    })?;
    loop {
        match ch.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) => {
                return Err(xfer(
                    "the server refused the sftp subsystem (is SFTP enabled?)",
                ));
            }
            Some(ChannelMsg::Close) | None => {
                return Err(HostError::new(
                    ErrorKind::Disconnected,
                    "channel closed before the sftp subsystem started",
                ));
            }
            Some(_) => {}
        }
    }
    let cfg = russh_sftp::client::Config {
        // Room for a full read reply of the largest chunk we ask for.
        max_packet_len: 512 * 1024,
        ..Default::default()
    };
    let mut raw = RawSftpSession::new_with_config(ch.into_stream(), cfg);
    // One request may wait behind a full window of others on a slow link.
    raw.set_timeout((timeout.as_secs() * 6).max(60));
    let version = raw
        .init()
        .await
        .map_err(|e| xfer(format!("sftp handshake failed: {e}")))?;
    let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
    let (mut read_chunk, mut write_chunk) = (CHUNK, CHUNK);
    if version.extensions.contains_key("limits@openssh.com")
        && let Ok(l) = raw.limits().await
    {
        let cap = |limit: u64, cur: u32| {
            if limit == 0 {
                cur
            } else {
                cur.min(u32::try_from(limit).unwrap_or(u32::MAX)).max(1024)
            }
        };
        read_chunk = cap(l.max_read_len, read_chunk);
        write_chunk = cap(l.max_write_len, write_chunk);
        raw.set_limits(l.into());
    }
    Ok(Sftp {
        raw,
        posix_rename,
        read_chunk,
        write_chunk,
    })
}

impl Sftp {
    /// `stat`, with "no such file" as `None`.
    async fn stat_opt(&self, path: &str) -> Result<Option<FileAttributes>, HostError> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(None),
            Err(e) => Err(sftp_err("cannot stat", path, &e)),
        }
    }

    async fn rename_over(&self, from: &str, to: &str) -> Result<(), HostError> {
        if self.posix_rename {
            let mut data = Vec::with_capacity(8 + from.len() + to.len());
            for s in [from, to] {
                data.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
                data.extend_from_slice(s.as_bytes());
            }
            return match self.raw.extended("posix-rename@openssh.com", data).await {
                Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(s)) => Err(sftp_err(
                    "cannot rename into place",
                    to,
                    &SftpError::Status(s),
                )),
                Ok(_) => Err(xfer(format!(
                    "cannot rename into place {to}: unexpected reply"
                ))),
                Err(e) => Err(sftp_err("cannot rename into place", to, &e)),
            };
        }
        // SFTPv3 rename fails when the target exists: remove it first (not atomic on
        // servers without posix-rename).
        match self.raw.rename(from, to).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let _ = self.raw.remove(to).await;
                self.raw
                    .rename(from, to)
                    .await
                    .map(|_| ())
                    .map_err(|e| sftp_err("cannot rename into place", to, &e))
            }
        }
    }
}

fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// A unique temporary name beside `path`: `DIR/.NAME.fleetsh-XXXX.tmp`.
fn tmp_name(path: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag = format!("{:x}{:x}{:x}", std::process::id(), n, nanos);
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}.fleetsh-{tag}.tmp"),
        None => format!(".{path}.fleetsh-{tag}.tmp"),
    }
}

async fn put(s: &Sftp, plan: &PutPlan, p: &Progress<'_>) -> Result<(), HostError> {
    let remote = plan.remote.as_str();
    let info = s.stat_opt(remote).await?;
    let is_dir = info.as_ref().is_some_and(FileAttributes::is_dir);
    let into = if plan.sources > 1 || remote.ends_with('/') {
        if !is_dir {
            return Err(xfer(format!(
                "{remote} is not a directory on the host{}",
                if info.is_none() {
                    " (it does not exist)"
                } else {
                    ""
                }
            )));
        }
        true
    } else {
        is_dir
    };
    if !into
        && info.is_some()
        && plan
            .entries
            .first()
            .is_some_and(|e| matches!(e.kind, PutKind::Dir))
    {
        return Err(xfer(format!("{remote} exists and is not a directory")));
    }
    let dest = |rel: &str| -> String {
        if into {
            join(remote, rel)
        } else {
            match rel.split_once('/') {
                Some((_, rest)) => join(remote, rest),
                None => remote.to_string(),
            }
        }
    };
    let mut dirs_to_fix = Vec::new();
    for entry in &plan.entries {
        let path = dest(&entry.rel);
        match &entry.kind {
            PutKind::Dir => {
                let attrs = FileAttributes {
                    // Writable by us while we fill it; the final mode is set afterwards.
                    permissions: Some((entry.mode & 0o777) | 0o700),
                    ..FileAttributes::empty()
                };
                if let Err(e) = s.raw.mkdir(path.as_str(), attrs).await {
                    match s.stat_opt(&path).await? {
                        Some(a) if a.is_dir() => {}
                        _ => return Err(sftp_err("cannot create directory", &path, &e)),
                    }
                }
                if plan.preserve || entry.mode & 0o700 != 0o700 {
                    dirs_to_fix.push((path, entry));
                }
            }
            PutKind::File(data) => {
                upload_file(s, &path, &data.0, entry, plan.preserve, p).await?;
            }
        }
    }
    // Directory modes and times last (adding files changes a directory's mtime).
    for (path, entry) in dirs_to_fix.into_iter().rev() {
        s.raw
            .setstat(path.as_str(), final_attrs(entry, plan.preserve))
            .await
            .map_err(|e| sftp_err("cannot set mode/times of", &path, &e))?;
    }
    Ok(())
}

/// The mode (with setuid/setgid/sticky only when preserving) and, when preserving, the times
/// an uploaded file or directory ends with.
fn final_attrs(entry: &fleetsh_core::transfer::PutEntry, preserve: bool) -> FileAttributes {
    let mut attrs = FileAttributes {
        permissions: Some(entry.mode & if preserve { 0o7777 } else { 0o777 }),
        ..FileAttributes::empty()
    };
    if preserve {
        attrs.atime = Some(entry.atime);
        attrs.mtime = Some(entry.mtime);
    }
    attrs
}

async fn upload_file(
    s: &Sftp,
    path: &str,
    data: &[u8],
    entry: &fleetsh_core::transfer::PutEntry,
    preserve: bool,
    p: &Progress<'_>,
) -> Result<(), HostError> {
    let tmp = tmp_name(path);
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
    let attrs = FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    };
    let handle = s
        .raw
        .open(tmp.as_str(), flags, attrs)
        .await
        .map_err(|e| {
            sftp_err(
                &format!("cannot create {path} through the temporary file"),
                &tmp,
                &e,
            )
        })?
        .handle;
    p.set_remote_tmp(Some(tmp.clone()));
    let chunk = s.write_chunk as usize;
    let mut inflight = FuturesUnordered::new();
    let mut off = 0usize;
    loop {
        while inflight.len() < WINDOW && off < data.len() {
            let end = (off + chunk).min(data.len());
            let n = end - off;
            // A copy per request (russh-sftp's write takes a Vec), bounded across the run.
            let permit = if inflight.is_empty() {
                // Never wait with nothing in flight of our own: progress is guaranteed.
                p.budget().acquire_many(n as u32).await
            } else {
                match p.budget().try_acquire_many(n as u32) {
                    Ok(permit) => Ok(permit),
                    Err(_) => break,
                }
            };
            let Ok(permit) = permit else {
                return Err(xfer("the upload budget was closed"));
            };
            let piece = data.get(off..end).unwrap_or_default().to_vec();
            let (at, h) = (off as u64, handle.clone());
            inflight.push(async move {
                let r = s.raw.write(h, at, piece).await.map(|_| n);
                drop(permit);
                r
            });
            off = end;
        }
        match inflight.next().await {
            None => break,
            Some(Ok(n)) => p.bytes(n as u64),
            Some(Err(e)) => return Err(sftp_err("cannot write", &tmp, &e)),
        }
    }
    s.raw
        .fsetstat(handle.as_str(), final_attrs(entry, preserve))
        .await
        .map_err(|e| sftp_err("cannot set mode/times of", &tmp, &e))?;
    s.raw
        .close(handle)
        .await
        .map_err(|e| sftp_err("cannot close", &tmp, &e))?;
    s.rename_over(&tmp, path).await?;
    p.set_remote_tmp(None);
    p.file_done();
    Ok(())
}

async fn get(s: &Sftp, plan: &GetPlan, typed: &str, p: &Progress<'_>) -> Result<(), HostError> {
    let host_dir = plan.local_dir.join(host_dir_name(typed));
    ensure_local_dir(&host_dir)?;
    let mut listed = 0usize;
    for remote in &plan.remotes {
        // `/` or `.`: the directory's contents land in the host's directory itself.
        let whole = matches!(remote.trim_end_matches('/'), "" | ".");
        let name = match remote_base_name(remote) {
            Some(n) => Some(n),
            None if whole => None,
            None => {
                return Err(xfer(format!(
                    "{remote:?} has no file name to save it under"
                )));
            }
        };
        let attrs = s
            .raw
            .stat(remote.as_str())
            .await
            .map_err(|e| sftp_err("cannot stat", remote, &e))?
            .attrs;
        let local = name.map_or_else(|| host_dir.clone(), |n| host_dir.join(n));
        if attrs.is_dir() {
            if !plan.recursive {
                return Err(xfer(format!("{remote} is a directory (use -r to copy it)")));
            }
            get_tree(s, remote, &local, &attrs, plan.preserve, p, &mut listed).await?;
        } else if attrs.is_regular() {
            fetch_file(s, remote, &local, &attrs, plan.preserve, p).await?;
        } else {
            return Err(xfer(format!("{remote} is not a regular file or directory")));
        }
    }
    Ok(())
}

/// Downloads the directory `remote` into `local`, breadth first, without recursion.
async fn get_tree(
    s: &Sftp,
    remote: &str,
    local: &Path,
    attrs: &FileAttributes,
    preserve: bool,
    p: &Progress<'_>,
    listed: &mut usize,
) -> Result<(), HostError> {
    let mut queue = std::collections::VecDeque::new();
    queue.push_back((
        remote.to_string(),
        local.to_path_buf(),
        attrs.clone(),
        0usize,
    ));
    let mut dirs = Vec::new();
    while let Some((rdir, ldir, dattrs, depth)) = queue.pop_front() {
        ensure_local_dir(&ldir)?;
        let handle = s
            .raw
            .opendir(rdir.as_str())
            .await
            .map_err(|e| sftp_err("cannot open directory", &rdir, &e))?
            .handle;
        let mut entries = Vec::new();
        loop {
            match s.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    *listed += name.files.len();
                    if *listed > MAX_GET_ENTRIES {
                        let _ = s.raw.close(handle.as_str()).await;
                        return Err(xfer(format!(
                            "more than {MAX_GET_ENTRIES} entries listed under {remote}; stopped"
                        )));
                    }
                    entries.extend(name.files);
                }
                Err(e) if is_status(&e, StatusCode::Eof) => break,
                Err(e) => {
                    let _ = s.raw.close(handle.as_str()).await;
                    return Err(sftp_err("cannot list directory", &rdir, &e));
                }
            }
        }
        let _ = s.raw.close(handle).await;
        entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        for ent in entries {
            let name = ent.filename.as_str();
            if name == "." || name == ".." {
                continue;
            }
            if !is_safe_component(name) {
                return Err(xfer(format!(
                    "the server listed an unsafe name {name:?} in {rdir}; refused (nothing is written outside the download directory)"
                )));
            }
            let rpath = join(&rdir, name);
            let lpath = ldir.join(name);
            let mut a = ent.attrs;
            if a.is_symlink() {
                // Symlinks are followed to files only (never to directories: no loops, no
                // escaping the tree being copied).
                match s.raw.stat(rpath.as_str()).await {
                    Ok(t) if t.attrs.is_regular() => a = t.attrs,
                    _ => {
                        tracing::debug!("skipping symlink {rpath}");
                        continue;
                    }
                }
            }
            if a.is_dir() {
                if depth + 1 > MAX_GET_DEPTH {
                    return Err(xfer(format!(
                        "{rpath} is nested more than {MAX_GET_DEPTH} directories deep; stopped"
                    )));
                }
                queue.push_back((rpath, lpath, a, depth + 1));
            } else if a.is_regular() {
                fetch_file(s, &rpath, &lpath, &a, preserve, p).await?;
            } else {
                tracing::debug!("skipping {rpath}: not a regular file or directory");
            }
        }
        dirs.push((ldir, dattrs));
    }
    for (dir, a) in dirs.into_iter().rev() {
        set_local_attrs(&dir, &a, preserve, true)?;
    }
    Ok(())
}

/// Creates `dir` (its parent exists), or accepts it if it is already a real directory.
/// Refuses a symlink: nothing is written through a link that could point elsewhere.
fn ensure_local_dir(dir: &Path) -> Result<(), HostError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(xfer(format!(
            "{} (local) is a symlink; refusing to write through it",
            dir.display()
        ))),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(xfer(format!(
            "{} (local) exists and is not a directory",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => ensure_local_dir(dir),
            Err(e) => Err(local_err("cannot create directory", dir, &e)),
        },
        Err(e) => Err(local_err("cannot inspect", dir, &e)),
    }
}

fn set_local_attrs(
    path: &Path,
    a: &FileAttributes,
    preserve: bool,
    is_dir: bool,
) -> Result<(), HostError> {
    use std::os::unix::fs::PermissionsExt;
    let default = if is_dir { 0o755 } else { 0o644 };
    let mode = a.permissions.map_or(default, |m| m & 0o777);
    // A directory must stay usable by us even if the remote one is not.
    let mode = if is_dir { mode | 0o700 } else { mode };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| local_err("cannot set the mode of", path, &e))?;
    if preserve && let Some(m) = a.mtime {
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(m));
        let atime = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(a.atime.unwrap_or(m)));
        let times = std::fs::FileTimes::new()
            .set_modified(mtime)
            .set_accessed(atime);
        let f = std::fs::File::open(path).map_err(|e| local_err("cannot open", path, &e))?;
        f.set_times(times)
            .map_err(|e| local_err("cannot set the times of", path, &e))?;
    }
    Ok(())
}

fn local_tmp(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tmp_name(&name);
    path.with_file_name(tmp)
}

async fn fetch_file(
    s: &Sftp,
    remote: &str,
    local: &Path,
    attrs: &FileAttributes,
    preserve: bool,
    p: &Progress<'_>,
) -> Result<(), HostError> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let handle = s
        .raw
        .open(remote, OpenFlags::READ, FileAttributes::empty())
        .await
        .map_err(|e| sftp_err("cannot open", remote, &e))?
        .handle;
    let tmp = local_tmp(local);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| local_err("cannot create", &tmp, &e))?;
    p.set_local_tmp(Some(tmp.clone()));
    let chunk = s.read_chunk;
    let mut inflight = FuturesUnordered::new();
    let read =
        |at: u64, len: u32, h: String| async move { (at, len, s.raw.read(h, at, len).await) };
    let mut next = 0u64;
    let mut eof_at: Option<u64> = None;
    // Reads are issued up to the size `stat` gave (plus the one that sees EOF); a file that
    // grew is read on until EOF.
    let mut limit = attrs.size.unwrap_or(u64::MAX);
    loop {
        while inflight.len() < WINDOW && next <= limit && eof_at.is_none_or(|e| next < e) {
            inflight.push(read(next, chunk, handle.clone()));
            next += u64::from(chunk);
        }
        let Some((at, len, r)) = inflight.next().await else {
            break;
        };
        match r {
            Ok(d) if d.data.is_empty() => {
                eof_at = Some(eof_at.map_or(at, |e| e.min(at)));
            }
            Ok(d) => {
                file.write_at(&d.data, at)
                    .map_err(|e| local_err("cannot write", &tmp, &e))?;
                p.bytes(d.data.len() as u64);
                limit = limit.max(at + d.data.len() as u64);
                let got = u32::try_from(d.data.len()).unwrap_or(u32::MAX);
                if got < len {
                    // Short read: ask for the rest of this range.
                    inflight.push(read(at + u64::from(got), len - got, handle.clone()));
                }
            }
            Err(e) if is_status(&e, StatusCode::Eof) => {
                eof_at = Some(eof_at.map_or(at, |e| e.min(at)));
            }
            Err(e) => return Err(sftp_err("cannot read", remote, &e)),
        }
        if eof_at.is_some() && inflight.is_empty() {
            break;
        }
    }
    let _ = s.raw.close(handle).await;
    drop(file);
    set_local_attrs(&tmp, attrs, preserve, false)?;
    std::fs::rename(&tmp, local).map_err(|e| local_err("cannot rename into place", local, &e))?;
    p.set_local_tmp(None);
    p.file_done();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_temporary_names() {
        assert_eq!(join("/tmp", "a/b"), "/tmp/a/b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("dst/", "a"), "dst/a");
        let t = tmp_name("/srv/app.conf");
        assert!(
            t.starts_with("/srv/.app.conf.fleetsh-") && t.ends_with(".tmp"),
            "{t}"
        );
        let t = tmp_name("app.conf");
        assert!(t.starts_with(".app.conf.fleetsh-"), "{t}");
        assert_ne!(tmp_name("x"), tmp_name("x"));
    }

    #[test]
    fn local_directories_refuse_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        ensure_local_dir(&real).unwrap();
        ensure_local_dir(&real).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = ensure_local_dir(&link).unwrap_err();
        assert!(e.message.contains("symlink"), "{e:?}");
        let file = d.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure_local_dir(&file).is_err());
    }
}

//! File transfers: what `put` sends to every host ([`PutPlan`], read once and shared by all
//! hosts) and what `get` fetches from every host ([`GetPlan`]).
//!
//! Semantics follow `scp`/`pscp`:
//! - `put FILE REMOTE`: if `REMOTE` is a directory on the host (or ends with `/`), the file
//!   lands in it under its own name; otherwise `REMOTE` is the file's new path.
//! - `put -r DIR REMOTE`: if `REMOTE` is a directory, `DIR` is copied into it
//!   (`REMOTE/DIR/...`); if `REMOTE` does not exist it is created as the copy of `DIR`.
//! - several sources: `REMOTE` must be an existing directory.
//! - `get REMOTE... LOCALDIR`: each host's files land in `LOCALDIR/HOST/`, under their base
//!   names (with `-r`, whole trees), so no host can overwrite another's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::Error;

/// Largest total size of the files of one `put` (every file is held in memory once, shared
/// by all hosts).
pub const MAX_PUT_BYTES: u64 = 4 << 30;
/// Most files and directories one `put` may send.
pub const MAX_PUT_ENTRIES: usize = 100_000;
/// Deepest directory nesting `put -r` follows (also stops symlink loops).
pub const MAX_PUT_DEPTH: usize = 64;

/// What a job does on each host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Action {
    /// Run the job's command.
    #[default]
    Exec,
    /// Upload files over SFTP.
    Put(Arc<PutPlan>),
    /// Download files over SFTP.
    Get(Arc<GetPlan>),
    /// Only connect and authenticate (host-key check included); run nothing. A connected
    /// fleet keeps the connection for its next jobs (`ConnectedFleet::connect_all`); a
    /// one-off run disconnects again, so it checks that every host is reachable. The
    /// result of a host that connected is OK with no exit status
    /// ([`HostResult::connect_only`](crate::HostResult::connect_only)).
    Connect,
}

/// The content of one local file, read once and shared by every host's upload (a cheap,
/// reference-counted buffer: cloning or slicing it never copies the bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct FileData(pub bytes::Bytes);

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileData({} bytes)", self.0.len())
    }
}

/// What one entry of a [`PutPlan`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutKind {
    /// A directory (created before its contents).
    Dir,
    /// A regular file and its bytes.
    File(FileData),
}

/// One file or directory to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    /// Path relative to the destination, `/`-separated; the first component is the source's
    /// base name. Components are never empty, `.` or `..`.
    pub rel: String,
    /// Directory or file.
    pub kind: PutKind,
    /// Permission bits of the local file (`0o7777` mask).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Access time, seconds since the epoch.
    pub atime: u32,
}

impl PutEntry {
    /// True for a top-level entry (one of the sources itself).
    pub fn is_top(&self) -> bool {
        !self.rel.contains('/')
    }
}

/// Everything a `put` sends: the entries in creation order (each directory before its
/// contents) and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutPlan {
    /// Files and directories, parents first.
    pub entries: Vec<PutEntry>,
    /// Number of sources given (each is one top-level entry).
    pub sources: usize,
    /// The remote destination as given.
    pub remote: String,
    /// Keep mode and modification time (`-p`). Without it, files get the local permission
    /// bits (like `scp`) and the remote's current time.
    pub preserve: bool,
    /// Sum of the files' sizes.
    pub total_bytes: u64,
}

impl PutPlan {
    /// Reads the local `sources` once (recursively with `recursive`) into a plan for `remote`.
    ///
    /// Errors name the offending path: missing file, a directory without `recursive`, a
    /// special file (socket, device, fifo), too many entries, too many bytes, or a nesting
    /// deeper than [`MAX_PUT_DEPTH`].
    pub fn from_local(
        sources: &[PathBuf],
        remote: &str,
        recursive: bool,
        preserve: bool,
    ) -> Result<PutPlan, Error> {
        if sources.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "put",
                reason: "no local file to upload".into(),
            });
        }
        if remote.is_empty() || remote.contains('\0') {
            return Err(Error::InvalidSetting {
                setting: "put",
                reason: format!("{remote:?} is not a remote path"),
            });
        }
        let mut plan = PutPlan {
            entries: Vec::new(),
            sources: sources.len(),
            remote: remote.to_string(),
            preserve,
            total_bytes: 0,
        };
        let mut seen = std::collections::HashSet::new();
        for src in sources {
            let name = base_name(src)?;
            if !seen.insert(name.clone()) {
                return Err(transfer_error(
                    src,
                    format!(
                        "two sources have the same name {name:?}; they would overwrite each other"
                    ),
                ));
            }
            plan.add(src, name, recursive, &mut Vec::new())?;
        }
        Ok(plan)
    }

    /// Adds `path` as `rel`; `ancestors` are the (device, inode) of the directories above it,
    /// to refuse symlink loops.
    fn add(
        &mut self,
        path: &Path,
        rel: String,
        recursive: bool,
        ancestors: &mut Vec<(u64, u64)>,
    ) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        if ancestors.len() > MAX_PUT_DEPTH {
            return Err(transfer_error(
                path,
                format!("nested more than {MAX_PUT_DEPTH} directories deep (a symlink loop?)"),
            ));
        }
        if self.entries.len() >= MAX_PUT_ENTRIES {
            return Err(transfer_error(
                path,
                format!("more than {MAX_PUT_ENTRIES} files and directories to upload"),
            ));
        }
        // Follows symlinks, as scp does.
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        let (mode, mtime, atime) = stat_fields(&meta);
        if meta.is_dir() {
            if !recursive {
                return Err(transfer_error(
                    path,
                    "is a directory (use -r to copy it)".into(),
                ));
            }
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(transfer_error(
                    path,
                    "is a symlink to a directory above it (a loop)".into(),
                ));
            }
            self.entries.push(PutEntry {
                rel: rel.clone(),
                kind: PutKind::Dir,
                mode,
                mtime,
                atime,
            });
            let mut children: Vec<(String, PathBuf)> = Vec::new();
            for ent in std::fs::read_dir(path).map_err(|e| io_error(path, e))? {
                let ent = ent.map_err(|e| io_error(path, e))?;
                let child = ent.path();
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    return Err(transfer_error(&child, "the name is not valid UTF-8".into()));
                };
                children.push((name, child));
            }
            children.sort();
            ancestors.push(id);
            for (name, child) in children {
                self.add(&child, format!("{rel}/{name}"), recursive, ancestors)?;
            }
            ancestors.pop();
            Ok(())
        } else if meta.is_file() {
            let data = std::fs::read(path).map_err(|e| io_error(path, e))?;
            self.total_bytes += data.len() as u64;
            if self.total_bytes > MAX_PUT_BYTES {
                return Err(transfer_error(
                    path,
                    format!(
                        "the files to upload exceed {} GiB (they are held in memory once for all hosts)",
                        MAX_PUT_BYTES >> 30
                    ),
                ));
            }
            self.entries.push(PutEntry {
                rel,
                // Bytes takes the Vec as is: the file's bytes are in memory once.
                kind: PutKind::File(FileData(bytes::Bytes::from(data))),
                mode,
                mtime,
                atime,
            });
            Ok(())
        } else {
            Err(transfer_error(
                path,
                "is not a regular file or directory (socket, device or fifo)".into(),
            ))
        }
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, PutKind::File(_)))
            .count()
    }
}

/// Everything a `get` fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPlan {
    /// Remote paths (files, or directories with `recursive`).
    pub remotes: Vec<String>,
    /// Local directory; each host's files go to `local_dir/<host>/`.
    pub local_dir: PathBuf,
    /// Copy directories recursively.
    pub recursive: bool,
    /// Keep mode and modification time.
    pub preserve: bool,
}

impl GetPlan {
    /// A plan, checked: at least one remote path, none empty; `local_dir` exists or can be
    /// created.
    pub fn new(
        remotes: Vec<String>,
        local_dir: PathBuf,
        recursive: bool,
        preserve: bool,
    ) -> Result<GetPlan, Error> {
        if remotes.is_empty() {
            return Err(Error::InvalidSetting {
                setting: "get",
                reason: "no remote path to download".into(),
            });
        }
        for r in &remotes {
            if r.is_empty() || r.contains('\0') {
                return Err(Error::InvalidSetting {
                    setting: "get",
                    reason: format!("{r:?} is not a remote path"),
                });
            }
        }
        if local_dir.exists() && !local_dir.is_dir() {
            return Err(transfer_error(
                &local_dir,
                "this is a file; get's last argument is the local directory (each host's files go to LOCALDIR/HOST/)".into(),
            ));
        }
        std::fs::create_dir_all(&local_dir).map_err(|e| io_error(&local_dir, e))?;
        if !std::fs::metadata(&local_dir)
            .map_err(|e| io_error(&local_dir, e))?
            .is_dir()
        {
            return Err(transfer_error(&local_dir, "is not a directory".into()));
        }
        Ok(GetPlan {
            remotes,
            local_dir,
            recursive,
            preserve,
        })
    }
}

/// The local directory name of a host's downloads: the host as typed, with `/` and NUL
/// replaced (the same rule as `--out-dir` file names).
pub fn host_dir_name(target_as_typed: &str) -> String {
    let s = target_as_typed.replace(['/', '\0'], "_");
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

/// Whether `name`, sent by a server as a directory entry, is one plain path component that
/// is safe to create locally: not empty, not `.`/`..`, no `/`, no NUL.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The last component of a remote path (`/a/b/` → `b`), if it is a safe name.
pub fn remote_base_name(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    is_safe_component(name).then_some(name)
}

/// What a transfer moved on one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Regular files completely transferred (and renamed into place).
    pub files: u64,
    /// Bytes of file data transferred.
    pub bytes: u64,
}

fn base_name(path: &Path) -> Result<String, Error> {
    // `dir/.` and `dir/..` have no useful base name: use the canonical path's.
    let canon;
    let p = if matches!(
        path.file_name().and_then(|n| n.to_str()),
        None | Some(".") | Some("..")
    ) {
        canon = std::fs::canonicalize(path).map_err(|e| io_error(path, e))?;
        canon.as_path()
    } else {
        path
    };
    match p.file_name().map(|n| n.to_str()) {
        Some(Some(n)) if is_safe_component(n) => Ok(n.to_string()),
        Some(None) => Err(transfer_error(path, "the name is not valid UTF-8".into())),
        _ => Err(transfer_error(
            path,
            "has no file name to copy under".into(),
        )),
    }
}

fn stat_fields(meta: &std::fs::Metadata) -> (u32, u32, u32) {
    use std::os::unix::fs::PermissionsExt;
    let secs = |t: std::io::Result<SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
    };
    (
        meta.permissions().mode() & 0o7777,
        secs(meta.modified()),
        secs(meta.accessed()),
    )
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn transfer_error(path: &Path, reason: String) -> Error {
    Error::Transfer {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_file_is_read_once_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile_dir();
        let f = d.join("a.txt");
        std::fs::write(&f, b"hello").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let plan = PutPlan::from_local(std::slice::from_ref(&f), "/tmp/", false, true).unwrap();
        assert_eq!(plan.entries.len(), 1);
        assert_eq!(plan.entries[0].rel, "a.txt");
        assert_eq!(plan.entries[0].mode, 0o640);
        assert_eq!(plan.total_bytes, 5);
        assert!(matches!(&plan.entries[0].kind, PutKind::File(d) if &*d.0 == b"hello"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn directories_need_recursive_and_list_parents_first() {
        let d = tempfile_dir();
        let tree = d.join("tree");
        std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        std::fs::write(tree.join("sub/deeper/f"), b"x").unwrap();
        std::fs::write(tree.join("top"), b"yy").unwrap();
        let e = PutPlan::from_local(std::slice::from_ref(&tree), "dst", false, false).unwrap_err();
        assert!(e.to_string().contains("use -r"), "{e}");
        let plan = PutPlan::from_local(&[tree], "dst", true, false).unwrap();
        let rels: Vec<&str> = plan.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                "tree",
                "tree/sub",
                "tree/sub/deeper",
                "tree/sub/deeper/f",
                "tree/top"
            ]
        );
        assert_eq!(plan.total_bytes, 3);
        assert_eq!(plan.file_count(), 2);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_sources_are_named() {
        let d = tempfile_dir();
        let missing = d.join("nope");
        let e = PutPlan::from_local(std::slice::from_ref(&missing), "x", false, false).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let a = d.join("a");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("same"), b"1").unwrap();
        std::fs::write(d.join("same"), b"2").unwrap();
        let e =
            PutPlan::from_local(&[a.join("same"), d.join("same")], "x", false, false).unwrap_err();
        assert!(e.to_string().contains("same name"), "{e}");
        assert!(PutPlan::from_local(&[], "x", false, false).is_err());
        assert!(PutPlan::from_local(&[d.join("same")], "", false, false).is_err());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn symlink_loops_are_refused() {
        let d = tempfile_dir();
        let tree = d.join("loop");
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink(&tree, tree.join("again")).unwrap();
        let e = PutPlan::from_local(&[tree], "x", true, false).unwrap_err();
        assert!(e.to_string().contains("loop"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn unsafe_components_are_recognised() {
        for bad in ["", ".", "..", "../x", "/etc", "a/b", "a\0b"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        for ok in ["a", ".hidden", "..a", "a..", "x y"] {
            assert!(is_safe_component(ok), "{ok:?}");
        }
        assert_eq!(remote_base_name("/var/log/"), Some("log"));
        assert_eq!(remote_base_name("file"), Some("file"));
        assert_eq!(remote_base_name("/"), None);
        assert_eq!(remote_base_name("a/.."), None);
        assert_eq!(host_dir_name("root@[::1]:22"), "root@[::1]:22");
        assert_eq!(host_dir_name(".."), "_..");
    }

    fn tempfile_dir() -> PathBuf {
        // Kept for the test's lifetime; removed by each test.
        tempfile::tempdir().unwrap().keep()
    }
}

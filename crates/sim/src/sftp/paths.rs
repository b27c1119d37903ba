//! Client paths mapped onto a host's root directory ([`Root`]), as the
//! [module docs](super#paths) describe: lexical normalisation, symlinks followed only
//! inside the root, and symlink targets stored and shown relative to it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use russh_sftp::protocol::StatusCode;

use super::status::{Reply, io_status};

/// Whether a request acts on the last component itself or on what a symlink there names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Last {
    /// Follow a symlink (`open`, `stat`, ...).
    Follow,
    /// The entry itself (`lstat`, `remove`, ...).
    Entry,
}

/// A host's root directory, canonical.
#[derive(Debug)]
pub(super) struct Root(PathBuf);

impl Root {
    /// The root at `root` (created if missing).
    pub(super) fn new(root: &Path) -> io::Result<Root> {
        fs::create_dir_all(root)?;
        Ok(Root(fs::canonicalize(root)?))
    }

    /// Its real (canonical) path.
    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    /// Maps a client path to a real path under the root; see the [module docs](super#paths).
    pub(super) fn resolve(&self, path: &str, last: Last) -> Reply<PathBuf> {
        let parts = normalise(path);
        let Some((name, dirs)) = parts.split_last() else {
            return Ok(self.0.clone());
        };
        let mut parent = self.0.clone();
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
    pub(super) fn resolve_entry(&self, path: &str) -> Reply<PathBuf> {
        let real = self.resolve(path, Last::Entry)?;
        if real == self.0 {
            return Err(StatusCode::PermissionDenied
                .with_message(format!("{path}: the root directory cannot be changed")));
        }
        Ok(real)
    }

    fn check_inside(&self, real: &Path, path: &str) -> Reply<()> {
        if real.starts_with(&self.0) {
            Ok(())
        } else {
            Err(StatusCode::PermissionDenied
                .with_message(format!("{path}: leads outside the host's root")))
        }
    }

    /// The host's view of a real path under the root: `/` and the rest.
    pub(super) fn host_path(&self, real: &Path) -> String {
        let rest = real.strip_prefix(&self.0).unwrap_or(Path::new(""));
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

    /// What `readlink` answers for a symlink's stored `target`: an absolute target under
    /// the root as the host sees it, any other as it is.
    pub(super) fn shown_target(&self, target: &Path) -> String {
        if target.is_absolute() && target.starts_with(&self.0) {
            self.host_path(target)
        } else {
            target.to_string_lossy().into_owned()
        }
    }

    /// What a `symlink` request at the real path `link` stores as its target: an absolute
    /// `targetpath` as the real path under the root, a relative one as it is, unless it
    /// climbs above the root (`PermissionDenied`).
    pub(super) fn stored_target(&self, link: &Path, targetpath: &str) -> Reply<PathBuf> {
        if targetpath.starts_with('/') {
            let mut real = self.0.clone();
            real.extend(normalise(targetpath));
            return Ok(real);
        }
        // The link's directory, as a depth below the root.
        let mut depth = link
            .parent()
            .and_then(|dir| dir.strip_prefix(&self.0).ok())
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
        Ok(PathBuf::from(targetpath))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        let host = Root::new(&dir.path().join("root/h")).unwrap();
        let root = host.path().to_path_buf();
        assert_eq!(host.resolve("/", Last::Follow).unwrap(), root);
        assert_eq!(
            host.resolve("../../x", Last::Follow).unwrap(),
            root.join("x")
        );
        assert_eq!(host.host_path(&root.join("x")), "/x");
        assert_eq!(host.host_path(&root), "/");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let denied = host.resolve("out/file", Last::Follow).unwrap_err();
        assert_eq!(denied.status_code, StatusCode::PermissionDenied);
        let denied = host.resolve("out", Last::Follow).unwrap_err();
        assert_eq!(denied.status_code, StatusCode::PermissionDenied);
        // The link itself can be looked at and removed.
        assert_eq!(host.resolve("out", Last::Entry).unwrap(), root.join("out"));
        let missing = host.resolve("nodir/file", Last::Follow).unwrap_err();
        assert_eq!(missing.status_code, StatusCode::NoSuchFile);
        assert!(host.resolve_entry("/").is_err());
    }
}

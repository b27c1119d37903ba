//! One SFTP session of a host ([`SftpServer`]): its russh-sftp
//! [`Handler`](russh_sftp::server::Handler), which answers every request on the host's
//! [`Root`] with the session's open [`Handles`], the `posix-rename@openssh.com` and
//! `limits@openssh.com` extensions, and the faults of an `sftp-evil` or `sftp-cut` host.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File as Entry, FileAttributes, Handle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

use super::attrs::{attributes, set_file_attrs, set_path_attrs};
use super::cut::SftpCut;
use super::evil::{EVIL_REALPATH, EvilEntry};
use super::handles::{Handles, MAX_HANDLES, Open};
use super::listing::Listing;
use super::paths::{Last, Root};
use super::status::{Reply, bad_handle, io_status, ok};

/// Largest packet a client may send (russh-sftp's server limit).
const MAX_PACKET: u64 = 256 * 1024;
/// Most data one read returns, and most one write may carry (as OpenSSH: 1 KiB under
/// the packet limit, room for the header).
const MAX_DATA: u32 = 256 * 1024 - 1024;

/// The extension that renames over an existing target.
const POSIX_RENAME: &str = "posix-rename@openssh.com";
/// The extension that tells the server's limits.
const LIMITS: &str = "limits@openssh.com";

/// One SFTP session of one host: the russh-sftp [`Handler`](russh_sftp::server::Handler).
#[derive(Debug)]
pub(crate) struct SftpServer {
    /// The host's root.
    root: Root,
    evil: bool,
    cut: Option<SftpCut>,
    handles: Handles,
}

impl SftpServer {
    /// A session on the host whose root is `root` (created if missing).
    pub(crate) fn new(root: &Path, evil: bool, cut: Option<SftpCut>) -> io::Result<SftpServer> {
        Ok(SftpServer {
            root: Root::new(root)?,
            evil,
            cut,
            handles: Handles::default(),
        })
    }

    /// The hostile entry a client path names, on an `sftp-evil` host.
    fn evil_entry(&self, path: &str) -> Option<&'static EvilEntry> {
        if !self.evil {
            return None;
        }
        EvilEntry::named(path)
    }

    /// Renames `from` to `to`; `overwrite: false` is SFTPv3's rename, which fails if the
    /// target exists.
    fn rename_paths(&self, from: &str, to: &str, overwrite: bool) -> Reply<()> {
        let real_from = self.root.resolve_entry(from)?;
        let real_to = self.root.resolve_entry(to)?;
        if !overwrite && fs::symlink_metadata(&real_to).is_ok() {
            return Err(StatusCode::Failure.with_message(format!("{to}: file exists")));
        }
        fs::rename(&real_from, &real_to).map_err(|e| io_status(&e, from))
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
            return self.handles.add(id, Open::Evil(evil));
        }
        let real = self.root.resolve(&filename, Last::Follow)?;
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
        self.handles.add(id, Open::File(file))
    }

    async fn close(&mut self, id: u32, handle: String) -> Reply<Status> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(bad_handle(&handle)),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        let len = len.min(MAX_DATA) as usize;
        let data = match self.handles.get(&handle)? {
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
        let written = self.handles.file(&handle).and_then(|file| {
            file.write_all_at(data.get(..room).unwrap_or_default(), offset)
                .map_err(|e| io_status(&e, "write"))
        });
        if cut && let Some(fault) = &self.cut {
            fault.cut_now();
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
        let real = self.root.resolve(&path, Last::Entry)?;
        let meta = fs::symlink_metadata(&real).map_err(|e| io_status(&e, &path))?;
        Ok(Attrs {
            id,
            attrs: attributes(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Reply<Attrs> {
        let meta = match self.handles.get(&handle)? {
            Open::File(file) => file.metadata(),
            Open::Dir(dir) => fs::metadata(dir.path()),
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
        let real = self.root.resolve(&path, Last::Follow)?;
        set_path_attrs(&real, &attrs).map_err(|e| io_status(&e, &path))?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        let set = match self.handles.get(&handle)? {
            Open::File(file) => set_file_attrs(file, &attrs),
            Open::Dir(dir) => set_path_attrs(dir.path(), &attrs),
            Open::Evil(_) => {
                return Err(StatusCode::PermissionDenied.with_message("read-only file"));
            }
        };
        set.map_err(|e| io_status(&e, "fsetstat"))?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Reply<Handle> {
        let real = self.root.resolve(&path, Last::Follow)?;
        let entries = fs::read_dir(&real).map_err(|e| io_status(&e, &path))?;
        self.handles
            .add(id, Open::Dir(Listing::new(real, entries, self.evil)))
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Reply<Name> {
        let files = self.handles.dir(&handle)?.next_batch(self.root.path())?;
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Reply<Status> {
        let real = self.root.resolve_entry(&filename)?;
        fs::remove_file(&real).map_err(|e| io_status(&e, &filename))?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        let real = self.root.resolve_entry(&path)?;
        fs::create_dir(&real).map_err(|e| io_status(&e, &path))?;
        if let Some(mode) = attrs.permissions {
            fs::set_permissions(&real, Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_status(&e, &path))?;
        }
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Reply<Status> {
        let real = self.root.resolve_entry(&path)?;
        fs::remove_dir(&real).map_err(|e| io_status(&e, &path))?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Reply<Name> {
        let name = if self.evil {
            EVIL_REALPATH.to_owned()
        } else {
            let real = self.root.resolve(&path, Last::Follow)?;
            self.root.host_path(&real)
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
        let real = self.root.resolve(&path, Last::Follow)?;
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
        let real = self.root.resolve(&path, Last::Entry)?;
        let target = fs::read_link(&real).map_err(|e| io_status(&e, &path))?;
        let target = self.root.shown_target(&target);
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
        let link = self.root.resolve_entry(&linkpath)?;
        let target = self.root.stored_target(&link, &targetpath)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
}

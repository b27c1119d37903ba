//! The `sftp-evil` fault: the hostile entries ([`EVIL`]) every directory listing of such a
//! host adds, what reading them returns, and the `realpath` answer ([`EVIL_REALPATH`]).

use russh_sftp::protocol::FileAttributes;

/// What `sftp-evil` hosts answer to every `realpath`.
pub(super) const EVIL_REALPATH: &str = "/../../outside";

/// Content of the hostile entries of `sftp-evil` hosts.
const EVIL_DATA: &[u8] = b"fleetsh-sim sftp-evil: hostile content, not a file of the host\n";

/// Content of [`EVIL`]'s `size-lie` entry: far more than its attributes say.
static SIZE_LIE_DATA: [u8; 16 * 1024] = [b'!'; 16 * 1024];

/// One hostile directory entry of an `sftp-evil` host.
#[derive(Debug)]
pub(super) struct EvilEntry {
    /// The name as listed.
    pub(super) name: &'static str,
    /// The size its attributes claim.
    pub(super) size: u64,
    /// What reading it returns.
    pub(super) data: &'static [u8],
}

/// The hostile entries every `readdir` of an `sftp-evil` host adds, after the real ones.
/// All claim to be regular files (mode `0644`); `size-lie` claims 4 bytes and reads 16 KiB.
pub(super) static EVIL: [EvilEntry; 8] = [
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
    /// The hostile entry a client path names: the name itself, or a path ending with `/`
    /// and the name.
    pub(super) fn named(path: &str) -> Option<&'static EvilEntry> {
        EVIL.iter().find(|e| {
            path == e.name
                || path
                    .strip_suffix(e.name)
                    .is_some_and(|head| head.ends_with('/'))
        })
    }

    /// The attributes it claims: a regular file of its claimed size.
    pub(super) fn attrs(&self) -> FileAttributes {
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

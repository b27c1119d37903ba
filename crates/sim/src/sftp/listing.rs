//! Directory listings: an open directory ([`Listing`]) answers `readdir` in batches of
//! [`READDIR_BATCH`], `.` and `..` first, then its entries, then (on `sftp-evil` hosts) the
//! hostile ones, each with the `ls -l` long name OpenSSH's server sends.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use russh_sftp::protocol::{File as Entry, FileAttributes, StatusCode};

use super::attrs::attributes;
use super::evil::EVIL;
use super::status::{Reply, io_status};

/// Entries per `readdir` answer.
pub(super) const READDIR_BATCH: usize = 100;

/// An open directory, listed in batches.
#[derive(Debug)]
pub(super) struct Listing {
    /// Its real (canonical) path.
    path: PathBuf,
    entries: fs::ReadDir,
    /// `.` and `..` are listed already.
    dots_sent: bool,
    /// The hostile entries are still to be listed (`sftp-evil` hosts).
    evil_pending: bool,
}

impl Listing {
    /// A listing of the directory at the real path `path`, whose entries are `entries`,
    /// with the hostile entries of an `sftp-evil` host if `evil`.
    pub(super) fn new(path: PathBuf, entries: fs::ReadDir, evil: bool) -> Listing {
        Listing {
            path,
            entries,
            dots_sent: false,
            evil_pending: evil,
        }
    }

    /// Its real (canonical) path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// One `readdir` answer: the next batch, or `Eof`. `root` is the host's root, whose
    /// `..` is itself.
    pub(super) fn next_batch(&mut self, root: &Path) -> Reply<Vec<Entry>> {
        let mut files = Vec::new();
        if !self.dots_sent {
            self.dots_sent = true;
            // `..` of the root is the root itself, as on a real `/`.
            let parent = if self.path == root {
                self.path.as_path()
            } else {
                self.path.parent().unwrap_or(&self.path)
            };
            for (name, path) in [(".", self.path.as_path()), ("..", parent)] {
                if let Ok(meta) = fs::metadata(path) {
                    files.push(entry(name, &meta));
                }
            }
        }
        while files.len() < READDIR_BATCH {
            match self.entries.next() {
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
        if files.len() < READDIR_BATCH && self.evil_pending {
            self.evil_pending = false;
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
mod tests {
    use super::*;
    use std::time::Duration;

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

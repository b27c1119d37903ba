//! `--out-dir DIR` (pssh -o/-e): as each host finishes, its stdout, stderr and status in
//! `DIR/HOST.out`, `DIR/HOST.err` and `DIR/HOST.status`.
//!
//! Each file is written to a temporary file in DIR and renamed over the old one, so a reader
//! sees the old file or the new one, never a part. `.status` is written last: once it is there,
//! the host's other two files are complete.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fleetsh::{HostResult, Outcome};

/// How many write errors are printed one by one; the rest are counted in the summary.
const SHOWN_ERRORS: usize = 10;

/// Parses `--out-dir`: creates DIR (and its parents) and checks that a file can be created in
/// it, so that a bad DIR is a usage error (exit status 2) before any host is contacted.
pub fn out_dir_arg(s: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(s);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create directory {s}: {e}"))?;
    let probe = dir.join(format!(".fleetsh-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot write in directory {s}: {e}"))?;
    // The probe proved the point; failing to remove it changes nothing.
    let _ = std::fs::remove_file(&probe);
    Ok(dir)
}

/// The files of one run.
pub struct OutDir {
    dir: PathBuf,
    /// Hosts whose files could not all be written.
    failed_hosts: usize,
}

impl OutDir {
    pub fn new(dir: PathBuf) -> Self {
        OutDir {
            dir,
            failed_hosts: 0,
        }
    }

    /// Writes a host's three files; a failure is reported on `err` (the first few) and the run
    /// goes on.
    pub fn write(&mut self, name: &str, r: &HostResult, err: &mut Vec<u8>) {
        let base = file_name(name);
        let status = status_text(r);
        let files: [(&str, &[u8]); 3] = [
            ("out", &r.stdout),
            ("err", &r.stderr),
            ("status", status.as_bytes()),
        ];
        for (ext, data) in files {
            let file = format!("{base}.{ext}");
            if let Err(e) = write_atomic(&self.dir, &file, data) {
                self.failed_hosts += 1;
                if self.failed_hosts <= SHOWN_ERRORS {
                    // Writing to a Vec cannot fail.
                    let _ = writeln!(
                        err,
                        "fleetsh: --out-dir: cannot write {}: {e}",
                        self.dir.join(&file).display()
                    );
                }
                return;
            }
        }
    }

    /// Whether any host's files could not be written.
    pub fn failed(&self) -> bool {
        self.failed_hosts > 0
    }

    /// The end-of-run line about write failures, if there were any.
    pub fn write_summary(&self, w: &mut impl Write) -> io::Result<()> {
        if self.failed_hosts > 0 {
            writeln!(
                w,
                "fleetsh: --out-dir: the files of {} hosts could not be written in {}",
                self.failed_hosts,
                self.dir.display()
            )?;
        }
        Ok(())
    }
}

/// A host's file name: its displayed target with `/` (possible in a user name) made `_`.
pub fn file_name(name: &str) -> String {
    name.replace(['/', '\0'], "_")
}

/// The content of `HOST.status`: the exit status (`0`, `3`), `signal NAME`, or the error kind
/// and message (`connect_timeout: no connection within 10s`), then a newline.
pub fn status_text(r: &HostResult) -> String {
    match r.outcome() {
        Outcome::Ok => "0\n".to_string(),
        Outcome::Exit(code) => format!("{code}\n"),
        Outcome::Signal(sig) => format!("signal {sig}\n"),
        Outcome::Failed(kind) => match &r.error {
            Some(e) => format!("{kind}: {}\n", e.message),
            None => format!("{kind}: no exit status\n"),
        },
    }
}

/// Writes `dir/file` by writing a temporary file in `dir` and renaming it over `file`.
fn write_atomic(dir: &Path, file: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, dir.join(file)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use fleetsh::{ErrorKind, HostError, HostTarget};

    #[test]
    fn status_texts() {
        let mut r = HostResult::failed(
            0,
            HostTarget::new("h"),
            HostError::new(ErrorKind::ConnectTimeout, "no connection within 1s"),
        );
        assert_eq!(
            status_text(&r),
            "connect_timeout: no connection within 1s\n"
        );
        r.error = None;
        r.exit_code = Some(0);
        assert_eq!(status_text(&r), "0\n");
        r.exit_code = Some(3);
        assert_eq!(status_text(&r), "3\n");
        r.exit_code = None;
        r.signal = Some("KILL".into());
        assert_eq!(status_text(&r), "signal KILL\n");
    }

    #[test]
    fn file_names_have_no_slash() {
        assert_eq!(file_name("root@[::1]:22"), "root@[::1]:22");
        assert_eq!(file_name("a/b@web1"), "a_b@web1");
    }

    #[test]
    fn bad_directories_are_reported_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let under_file = file.join("sub");
        let e = out_dir_arg(under_file.to_str().unwrap()).unwrap_err();
        assert!(
            e.contains("cannot create directory") && e.contains("sub"),
            "{e}"
        );

        // A directory that disappears during the run: errors are printed, then counted.
        let gone = tmp.path().join("gone");
        let mut d = OutDir::new(out_dir_arg(gone.to_str().unwrap()).unwrap());
        std::fs::remove_dir(&gone).unwrap();
        let mut r =
            HostResult::failed(0, HostTarget::new("h"), HostError::new(ErrorKind::Auth, ""));
        r.error = None;
        r.exit_code = Some(0);
        let mut err = Vec::new();
        for _ in 0..12 {
            d.write("web1", &r, &mut err);
        }
        let err = String::from_utf8(err).unwrap();
        assert_eq!(err.lines().count(), SHOWN_ERRORS, "{err}");
        assert!(err.contains("gone/web1.out"), "{err}");
        assert!(d.failed());
        let mut summary = Vec::new();
        d.write_summary(&mut summary).unwrap();
        assert!(
            String::from_utf8(summary)
                .unwrap()
                .contains("the files of 12 hosts")
        );
    }

    #[test]
    fn files_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = OutDir::new(tmp.path().to_path_buf());
        let mut r =
            HostResult::failed(0, HostTarget::new("h"), HostError::new(ErrorKind::Auth, ""));
        r.error = None;
        r.exit_code = Some(1);
        r.stdout = b"first\n".to_vec();
        let mut err = Vec::new();
        d.write("web1:22", &r, &mut err);
        r.stdout = b"second\n".to_vec();
        r.exit_code = Some(0);
        d.write("web1:22", &r, &mut err);
        assert!(err.is_empty());
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
        assert_eq!(read("web1:22.out"), "second\n");
        assert_eq!(read("web1:22.err"), "");
        assert_eq!(read("web1:22.status"), "0\n");
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
    }
}

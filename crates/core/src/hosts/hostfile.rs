//! Hosts files ([`parse_hosts_file_text`], [`read_hosts_file`]): one target or range spec per
//! line, `#` comments, errors naming the file and line.

use std::path::Path;

use super::expand::expand_targets;
use super::target::{HostTarget, column};
use crate::Error;

/// Removes a `#` comment: one at the start of the line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_ws = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_ws {
            return &line[..i];
        }
        prev_ws = c.is_whitespace();
    }
    line
}

/// Parses the text of a hosts file: one target or range spec per line.
///
/// `#` starts a comment at the beginning of a line or after whitespace (`web1  # old`); blank
/// lines are ignored. Each line is expanded like [`expand`](fn@super::expand) (so `web[1-3]`
/// and `a,b` work) and each host is parsed as a [`HostTarget`]. `path` is only used in errors.
/// Order is kept and duplicates are not removed.
///
/// ```
/// use std::path::Path;
///
/// let text = "# rack 1\nweb[1-2]  # front\n\nroot@db1:2222\n";
/// let hosts = fleetsh_core::hosts::parse_hosts_file_text(text, Path::new("hosts.txt"), 100)?;
/// let names: Vec<String> = hosts.iter().map(|t| t.to_string()).collect();
/// assert_eq!(names, ["web1", "web2", "root@db1:2222"]);
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
///
/// # Errors
///
/// - [`Error::HostsFile`] naming the path, the 1-based line and the bad spec;
/// - [`Error::TooManyHosts`] (`what` is `path:line`) when the file gives more than `limit` hosts.
pub fn parse_hosts_file_text(
    text: &str,
    path: &Path,
    limit: usize,
) -> Result<Vec<HostTarget>, Error> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = strip_comment(line);
        let token = content.trim();
        if token.is_empty() {
            continue;
        }
        let lead = column(content, content.len() - content.trim_start().len()) - 1;
        let remaining = limit.saturating_sub(out.len());
        let hosts = expand_targets(token, remaining).map_err(|err| match err {
            Error::TooManyHosts { .. } => Error::TooManyHosts {
                what: format!("{}:{line_no}", path.display()),
                limit,
            },
            Error::HostSpec {
                spec,
                column,
                reason,
            } => {
                let column = if spec == token { column + lead } else { column };
                Error::HostsFile {
                    path: path.to_owned(),
                    line: line_no,
                    reason: format!("bad host spec {spec:?} at column {column}: {reason}"),
                }
            }
            other => other,
        })?;
        out.extend(hosts);
    }
    Ok(out)
}

/// Reads and parses a hosts file; see [`parse_hosts_file_text`].
///
/// # Errors
///
/// [`Error::Io`] naming the path when the file cannot be read (or is not UTF-8), and the errors
/// of [`parse_hosts_file_text`].
pub fn read_hosts_file(path: &Path, limit: usize) -> Result<Vec<HostTarget>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_hosts_file_text(&text, path, limit)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::hosts::assertions::{assert_too_many, names};

    fn file_err(result: Result<Vec<HostTarget>, Error>) -> (PathBuf, usize, String) {
        match result {
            Err(Error::HostsFile { path, line, reason }) => (path, line, reason),
            other => panic!("expected a HostsFile error, got {other:?}"),
        }
    }

    #[test]
    fn hosts_file_comments_blanks_ranges() {
        let text = "# whole-line comment\n\
                    \n\
                    web[1-2]   # trailing comment\n\
                    \t  # indented comment\n\
                    root@db1:2222\n\
                    h#1\n\
                    [::1]:22,x\n\
                    \x20\x20\n\
                    web1\n";
        let hosts = parse_hosts_file_text(text, Path::new("h.txt"), 100).expect("parses");
        assert_eq!(
            names(&hosts),
            [
                "web1",
                "web2",
                "root@db1:2222",
                "h#1",
                "[::1]:22",
                "x",
                "web1"
            ]
        );
    }

    #[test]
    fn hosts_file_crlf_lines() {
        let hosts = parse_hosts_file_text("a\r\nb\r\n", Path::new("h"), 10).expect("parses");
        assert_eq!(names(&hosts), ["a", "b"]);
    }

    #[test]
    fn hosts_file_error_names_file_line_and_token() {
        let text = "web1\n# ok\n  web[3-1]  # bad\nweb2\n";
        let (path, line, reason) = file_err(parse_hosts_file_text(text, Path::new("f.txt"), 10));
        assert_eq!(path, Path::new("f.txt"));
        assert_eq!(line, 3);
        assert_eq!(
            reason,
            "bad host spec \"web[3-1]\" at column 7: reversed range 3-1 (write 1-3)"
        );

        let (_, line, reason) = file_err(parse_hosts_file_text(
            "a\nb\nroot@web[1-2]:99999\n",
            Path::new("f.txt"),
            10,
        ));
        assert_eq!(line, 3);
        assert!(reason.contains("\"root@web1:99999\""), "{reason}");
        assert!(reason.contains("root@web[1-2]:99999"), "{reason}");
        assert!(reason.contains("port 99999 is out of range"), "{reason}");

        let err = parse_hosts_file_text("a b\n", Path::new("/etc/f"), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/f:1: bad host spec \"a b\" at column 2: whitespace inside a host spec"
        );
    }

    #[test]
    fn hosts_file_limit() {
        let path = Path::new("big.txt");
        let ok = parse_hosts_file_text("a\nh[1-9]\n", path, 10).map(|v| v.len());
        assert_eq!(ok.ok(), Some(10));
        assert_too_many(
            parse_hosts_file_text("a\nb\nh[1-9]\n", path, 10),
            "big.txt:3",
            10,
        );
    }

    #[test]
    fn hosts_file_read_from_disk_and_io_error() {
        let dir = std::env::temp_dir().join(format!("fleetsh-hosts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("hosts");
        std::fs::write(&file, "web[1-2]\n").expect("write");
        let hosts = read_hosts_file(&file, 10).expect("reads");
        assert_eq!(names(&hosts), ["web1", "web2"]);

        let missing = dir.join("missing");
        match read_hosts_file(&missing, 10) {
            Err(e @ Error::Io { .. }) => {
                assert!(e.to_string().contains("missing"), "{e}");
            }
            other => panic!("expected Io, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

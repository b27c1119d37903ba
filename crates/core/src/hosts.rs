//! Host targets, pdsh/clush host ranges, hosts files and the final host list.
//!
//! - [`HostTarget`] is one `[user@]host[:port]`, with IPv6 literals written `[::1]:2222`
//!   (or bare `::1` when there is no port).
//! - [`expand`] turns a range spec such as `root@web[01-12,20].dc[1-2]:2222` into host strings.
//!   The number of hosts is computed with checked arithmetic *before* anything is allocated, so a
//!   spec like `h[1-99999999][1-99999999]` fails at once with [`Error::TooManyHosts`].
//! - [`parse_hosts_file_text`] and [`read_hosts_file`] read one target or spec per line.
//! - [`HostList`] combines includes (specs, files, targets) and exclusions, removes duplicates
//!   (keeping the first occurrence) and enforces a size limit.
//!
//! ```
//! use fleetsh_core::hosts::HostList;
//!
//! let mut list = HostList::new().limit(10_000);
//! list.include_spec("web[01-04],root@db1:2222")?
//!     .exclude_spec("web03")?;
//! let hosts = list.build()?;
//! let names: Vec<String> = hosts.iter().map(|t| t.to_string()).collect();
//! assert_eq!(names, ["web01", "web02", "web04", "root@db1:2222"]);
//! # Ok::<(), fleetsh_core::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::Path;
use std::str::FromStr;

use crate::Error;

/// The default upper bound on the number of hosts a [`HostList`] may hold (before de-duplication).
pub const DEFAULT_MAX_HOSTS: usize = 1_000_000;

/// One SSH destination: `[user@]host[:port]`.
///
/// `user` and `port` are `None` when not given, so that the run configuration (or the SSH
/// defaults) can fill them in later. `host` is a name or an address; an IPv6 literal is stored
/// without brackets (`::1`, `fe80::1%eth0`).
///
/// The [`Display`](fmt::Display) form round-trips through [`HostTarget::parse`]:
/// `user@host:port`, with an IPv6 host bracketed when a port follows (`user@[::1]:2222`) and bare
/// otherwise (`::1`).
///
/// ```
/// use fleetsh_core::HostTarget;
///
/// let t: HostTarget = "deploy@[2001:db8::7]:2222".parse()?;
/// assert_eq!(t.user.as_deref(), Some("deploy"));
/// assert_eq!(t.host, "2001:db8::7");
/// assert_eq!(t.port, Some(2222));
/// assert!(t.is_ipv6());
/// assert_eq!(t.to_string(), "deploy@[2001:db8::7]:2222");
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HostTarget {
    /// The login user, if given (`root` in `root@web1`).
    pub user: Option<String>,
    /// The host name or address, without brackets.
    pub host: String,
    /// The SSH port, if given.
    pub port: Option<u16>,
}

impl HostTarget {
    /// Parses `[user@]host[:port]`.
    ///
    /// Rules:
    /// 1. The user is everything before the **last** `@`; it must be non-empty and contain no
    ///    whitespace.
    /// 2. `[addr]` or `[addr]:port` is an IPv6 address (an optional `%zone` suffix is allowed).
    /// 3. A host with two or more `:` and no brackets is a bare IPv6 address with no port
    ///    (so `fe80::1:22` is an address, not port 22: write `[fe80::1]:22`).
    /// 4. Otherwise `host:port`; the port must be in `1..=65535`.
    ///
    /// The host must be non-empty and may not contain whitespace, control characters, `/`, `,`
    /// or brackets. No trimming is done.
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] with the 1-based column (in characters) of the problem.
    pub fn parse(s: &str) -> Result<HostTarget, Error> {
        let (user, rest, rest_at) = match s.rfind('@') {
            Some(at) => {
                let user = &s[..at];
                if user.is_empty() {
                    return Err(spec_error(s, at, "empty user before '@'"));
                }
                if let Some((i, _)) = user.char_indices().find(|(_, c)| c.is_whitespace()) {
                    return Err(spec_error(s, i, "whitespace in user name"));
                }
                (Some(user.to_owned()), &s[at + 1..], at + 1)
            }
            None => (None, s, 0),
        };

        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                return Err(spec_error(s, rest_at, "unclosed '['"));
            };
            let addr = &inner[..close];
            let addr_at = rest_at + 1;
            check_ipv6(s, addr, addr_at, true)?;
            let after = &inner[close + 1..];
            let after_at = addr_at + close + 1;
            let port = match after.strip_prefix(':') {
                None if after.is_empty() => None,
                None => {
                    return Err(spec_error(
                        s,
                        after_at,
                        "expected ':port' or the end after ']'",
                    ));
                }
                Some(port) => Some(parse_port(s, port, after_at + 1)?),
            };
            (addr, port)
        } else if rest.matches(':').nth(1).is_some() {
            check_ipv6(s, rest, rest_at, false)?;
            (rest, None)
        } else if let Some((host, port)) = rest.split_once(':') {
            let port = parse_port(s, port, rest_at + host.len() + 1)?;
            (host, Some(port))
        } else {
            (rest, None)
        };

        check_host(s, host, rest_at + usize::from(rest.starts_with('[')))?;
        Ok(HostTarget {
            user,
            host: host.to_owned(),
            port,
        })
    }

    /// A target for `host` with no user and no port. The name is not validated.
    pub fn new(host: impl Into<String>) -> Self {
        HostTarget {
            user: None,
            host: host.into(),
            port: None,
        }
    }

    /// Sets the login user.
    pub fn with_user(self, user: impl Into<String>) -> Self {
        HostTarget {
            user: Some(user.into()),
            ..self
        }
    }

    /// Sets the SSH port.
    pub fn with_port(self, port: u16) -> Self {
        HostTarget {
            port: Some(port),
            ..self
        }
    }

    /// Whether the host is an IPv6 literal (contains `:`), which must be bracketed before a port.
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

impl FromStr for HostTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostTarget::parse(s)
    }
}

impl fmt::Display for HostTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.port {
            Some(port) if self.is_ipv6() => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// 1-based character column of byte offset `at` in `s`.
fn column(s: &str, at: usize) -> usize {
    s.get(..at).map_or(at, |head| head.chars().count()) + 1
}

fn spec_error(spec: &str, at: usize, reason: impl Into<String>) -> Error {
    Error::HostSpec {
        spec: spec.to_owned(),
        column: column(spec, at),
        reason: reason.into(),
    }
}

/// Parses the port text that starts at byte `at` of `s`.
fn parse_port(s: &str, port: &str, at: usize) -> Result<u16, Error> {
    if port.is_empty() {
        return Err(spec_error(s, at, "missing port after ':'"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(spec_error(s, at, format!("port {port:?} is not a number")));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(spec_error(
            s,
            at,
            format!("port {port} is out of range 1-65535"),
        )),
    }
}

/// Checks an IPv6 literal (with an optional `%zone`) that starts at byte `at` of `s`.
fn check_ipv6(s: &str, addr: &str, at: usize, bracketed: bool) -> Result<(), Error> {
    if bracketed && addr.is_empty() {
        return Err(spec_error(
            s,
            at,
            "empty brackets: expected an ipv6 address",
        ));
    }
    if bracketed && !addr.contains(':') {
        return Err(spec_error(
            s,
            at,
            format!("brackets must hold an ipv6 address, found {addr:?}"),
        ));
    }
    let (ip, zone) = match addr.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (addr, None),
    };
    if ip.parse::<Ipv6Addr>().is_err() {
        let hint = if bracketed {
            ""
        } else {
            " (a host with several ':' is read as ipv6; write [addr]:port for a port)"
        };
        return Err(spec_error(
            s,
            at,
            format!("{ip:?} is not a valid ipv6 address{hint}"),
        ));
    }
    if zone.is_some_and(str::is_empty) {
        return Err(spec_error(s, at + ip.len(), "empty ipv6 zone after '%'"));
    }
    Ok(())
}

/// Checks a host name (or address) that starts at byte `at` of `s`.
fn check_host(s: &str, host: &str, at: usize) -> Result<(), Error> {
    if host.is_empty() {
        return Err(spec_error(s, at, "empty host name"));
    }
    for (i, c) in host.char_indices() {
        let reason = match c {
            c if c.is_whitespace() => "whitespace in host name".to_owned(),
            c if c.is_control() => format!("control character {c:?} in host name"),
            '/' | '[' | ']' | ',' => format!("{c:?} is not allowed in a host name"),
            _ => continue,
        };
        return Err(spec_error(s, at + i, reason));
    }
    Ok(())
}

/// One `N` or `A-B` element of a bracket; numbers are printed zero-padded to `width`.
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: u64,
    hi: u64,
    width: usize,
}

/// A piece of one item of a spec: literal text, or a numeric bracket.
#[derive(Debug)]
enum Segment<'a> {
    Text(&'a str),
    Range(Vec<Span>),
}

/// Expands a pdsh/clush host spec into host strings, keeping order, without de-duplication.
///
/// 1. Top-level `,` separates items; surrounding whitespace of an item is trimmed, empty items
///    (`a,,b`) and whitespace inside an item are errors.
/// 2. A bracket holds comma-separated numbers and `A-B` ranges: `web[01-12,20]` gives
///    `web01`..`web12`, `web20`. A lower bound with a leading zero sets the padding width
///    (`[08-10]` gives `08`, `09`, `10`); `[1-3]` gives `1`, `2`, `3`.
/// 3. Several brackets give the cartesian product, leftmost slowest:
///    `web[01-02].dc[1-2]` gives `web01.dc1`, `web01.dc2`, `web02.dc1`, `web02.dc2`.
/// 4. A bracket whose content contains `:` is an IPv6 literal and is kept as is, so
///    `root@[::1]:22` and `root@web[1-3]:2222` both work.
///
/// The result is not validated as [`HostTarget`]s; [`HostList`] and the hosts-file functions
/// do that.
///
/// ```
/// let hosts = fleetsh_core::hosts::expand("root@web[08-10]:2222,[::1]:22", 100)?;
/// assert_eq!(
///     hosts,
///     ["root@web08:2222", "root@web09:2222", "root@web10:2222", "[::1]:22"]
/// );
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
///
/// # Errors
///
/// - [`Error::HostSpec`] (with the column) for unbalanced or nested brackets, empty items or
///   elements, non-numeric or reversed ranges;
/// - [`Error::TooManyHosts`] when the spec would give more than `limit` hosts. The count is
///   computed before any host string is built.
pub fn expand(spec: &str, limit: usize) -> Result<Vec<String>, Error> {
    let mut items = Vec::new();
    let mut total: usize = 0;
    for (start, end) in split_items(spec)? {
        let (segments, count) = parse_item(spec, start, end)?;
        total = count
            .and_then(|count| total.checked_add(count))
            .filter(|&t| t <= limit)
            .ok_or_else(|| too_many(spec, limit))?;
        items.push(segments);
    }

    let mut out = Vec::with_capacity(total);
    for segments in &items {
        materialize(segments, &mut out);
    }
    Ok(out)
}

fn too_many(spec: &str, limit: usize) -> Error {
    Error::TooManyHosts {
        what: spec.to_owned(),
        limit,
    }
}

/// Splits `spec` at top-level commas into byte ranges, checking that brackets balance and do not
/// nest.
fn split_items(spec: &str) -> Result<Vec<(usize, usize)>, Error> {
    let mut items = Vec::new();
    let mut open: Option<usize> = None;
    let mut start = 0;
    for (i, c) in spec.char_indices() {
        match c {
            '[' if open.is_some() => return Err(spec_error(spec, i, "nested '['")),
            '[' => open = Some(i),
            ']' if open.is_none() => {
                return Err(spec_error(spec, i, "']' without a matching '['"));
            }
            ']' => open = None,
            ',' if open.is_none() => {
                items.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(i) = open {
        return Err(spec_error(spec, i, "unclosed '['"));
    }
    items.push((start, spec.len()));
    Ok(items)
}

/// Parses the item `spec[start..end]` (balanced, un-nested brackets) into segments and counts
/// the hosts it gives (`None` if the count overflows `usize`).
fn parse_item(
    spec: &str,
    start: usize,
    end: usize,
) -> Result<(Vec<Segment<'_>>, Option<usize>), Error> {
    let raw = &spec[start..end];
    let trimmed = raw.trim_start();
    let start = start + (raw.len() - trimmed.len());
    let end = start + trimmed.trim_end().len();
    if start == end {
        return Err(spec_error(spec, start, "empty item"));
    }

    let mut segments = Vec::new();
    let mut count = Some(1_usize);
    let mut text_start = start;
    let mut pos = start;
    while pos < end {
        let rest = &spec[pos..end];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            return Err(spec_error(spec, pos, "whitespace inside a host spec"));
        }
        if c != '[' {
            pos += c.len_utf8();
            continue;
        }
        // split_items guarantees a matching ']' in this item.
        let close = pos + rest.find(']').unwrap_or(rest.len());
        let content = &spec[pos + 1..close];
        if content.contains(':') {
            // An IPv6 literal such as `[::1]`: kept as text.
            if let Some(comma) = content.find(',') {
                return Err(spec_error(
                    spec,
                    pos + 1 + comma,
                    "a bracketed ipv6 address cannot hold a list",
                ));
            }
            pos = close + 1;
            continue;
        }
        if text_start < pos {
            segments.push(Segment::Text(&spec[text_start..pos]));
        }
        let (spans, n) = parse_bracket(spec, pos, content)?;
        count = count.zip(n).and_then(|(c, n)| c.checked_mul(n));
        segments.push(Segment::Range(spans));
        pos = close + 1;
        text_start = pos;
    }
    if text_start < end {
        segments.push(Segment::Text(&spec[text_start..end]));
    }
    Ok((segments, count))
}

/// Parses the content of the bracket opened at byte `open` of `spec`, and counts its numbers
/// (`None` if the count overflows `usize`).
fn parse_bracket(
    spec: &str,
    open: usize,
    content: &str,
) -> Result<(Vec<Span>, Option<usize>), Error> {
    if content.is_empty() {
        return Err(spec_error(spec, open, "empty brackets"));
    }
    let mut spans = Vec::new();
    let mut count = Some(0_usize);
    let mut at = open + 1;
    for elem in content.split(',') {
        let span = parse_element(spec, at, elem)?;
        let n = span
            .hi
            .checked_sub(span.lo)
            .and_then(|d| d.checked_add(1))
            .and_then(|d| usize::try_from(d).ok());
        count = count.zip(n).and_then(|(c, n)| c.checked_add(n));
        spans.push(span);
        at += elem.len() + 1;
    }
    Ok((spans, count))
}

/// Parses one bracket element (`N` or `A-B`) that starts at byte `at` of `spec`.
fn parse_element(spec: &str, at: usize, elem: &str) -> Result<Span, Error> {
    if elem.is_empty() {
        return Err(spec_error(spec, at, "empty range element"));
    }
    let number = |text: &str, text_at: usize| -> Result<u64, Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(spec_error(
                spec,
                text_at,
                format!("range element {elem:?} is not a number or a range like 1-10"),
            ));
        }
        text.parse::<u64>()
            .map_err(|_| spec_error(spec, text_at, format!("number {text} is too large")))
    };
    match elem.split_once('-') {
        None => {
            let n = number(elem, at)?;
            Ok(Span {
                lo: n,
                hi: n,
                width: elem.len(),
            })
        }
        Some((a, b)) => {
            let lo = number(a, at)?;
            let hi = number(b, at + a.len() + 1)?;
            if lo > hi {
                return Err(spec_error(
                    spec,
                    at,
                    format!("reversed range {elem} (write {b}-{a})"),
                ));
            }
            let width = if a.starts_with('0') { a.len() } else { 0 };
            Ok(Span { lo, hi, width })
        }
    }
}

/// Appends the hosts of one item to `out`, leftmost bracket slowest.
fn materialize(segments: &[Segment<'_>], out: &mut Vec<String>) {
    let mut acc = vec![String::new()];
    for segment in segments {
        match segment {
            Segment::Text(text) => acc.iter_mut().for_each(|s| s.push_str(text)),
            Segment::Range(spans) => {
                let mut next = Vec::new();
                for prefix in &acc {
                    for span in spans {
                        for n in span.lo..=span.hi {
                            let mut s = prefix.clone();
                            // Writing to a String cannot fail.
                            let _ = write!(s, "{n:0width$}", width = span.width);
                            next.push(s);
                        }
                    }
                }
                acc = next;
            }
        }
    }
    out.append(&mut acc);
}

/// Expands `spec` and parses each host as a [`HostTarget`].
///
/// A parse error of an expanded host names that host and the spec it came from.
pub(crate) fn expand_targets(spec: &str, limit: usize) -> Result<Vec<HostTarget>, Error> {
    expand(spec, limit)?
        .into_iter()
        .map(|host| {
            HostTarget::parse(&host).map_err(|err| match err {
                Error::HostSpec {
                    spec: bad,
                    column,
                    reason,
                } if bad != spec => Error::HostSpec {
                    reason: format!("{reason} (expanded from {spec:?})"),
                    spec: bad,
                    column,
                },
                other => other,
            })
        })
        .collect()
}

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
/// lines are ignored. Each line is expanded like [`expand`] (so `web[1-3]` and `a,b` work) and
/// each host is parsed as a [`HostTarget`]. `path` is only used in errors. Order is kept and
/// duplicates are not removed.
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

/// A builder for the final host list.
///
/// Includes (range specs, hosts files, plain targets) are expanded and parsed as they are added,
/// so errors point at the argument that caused them. [`build`](HostList::build) then:
///
/// 1. removes excluded targets (like `pdsh -x`): an exclusion with neither user nor port removes
///    every target with that host name; one with a user and/or a port removes only the targets
///    whose user and/or port are equal to the ones given (`root@web1` does not remove a plain
///    `web1`, whose user is left to the configuration);
/// 2. removes duplicate `(user, host, port)` targets, keeping the first occurrence and the order.
///
/// Names are compared exactly (case-sensitively), as pdsh does.
///
/// The limit (default [`DEFAULT_MAX_HOSTS`]) bounds the number of included hosts after
/// expansion and before de-duplication, and separately the number of excluded hosts; it is
/// checked before each spec or file is expanded, so no more than `limit` targets are ever built.
///
/// ```
/// use fleetsh_core::{HostList, HostTarget};
///
/// let mut list = HostList::new();
/// list.include_spec("web[1-3],web1")?
///     .include_target(HostTarget::new("db1").with_port(2222))
///     .exclude_spec("web2")?;
/// let hosts = list.build()?;
/// let names: Vec<String> = hosts.iter().map(|t| t.to_string()).collect();
/// assert_eq!(names, ["web1", "web3", "db1:2222"]);
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HostList {
    /// `None` means [`DEFAULT_MAX_HOSTS`] (so that the derived `Default` equals `new()`).
    limit: Option<usize>,
    includes: Vec<HostTarget>,
    excludes: Vec<HostTarget>,
}

impl HostList {
    /// An empty list with the default limit, [`DEFAULT_MAX_HOSTS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the maximum number of hosts (see the type's documentation).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    fn max(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_MAX_HOSTS)
    }

    /// Adds the hosts of a range spec (see [`expand`]); each may carry a user and a port.
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] for a bad spec or host, [`Error::TooManyHosts`] if the list would
    /// exceed the limit. The list is unchanged on error.
    pub fn include_spec(&mut self, spec: &str) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.includes.len());
        let targets = expand_targets(spec, remaining).map_err(|e| relimit(e, limit))?;
        self.includes.extend(targets);
        Ok(self)
    }

    /// Adds the hosts of a hosts file (see [`read_hosts_file`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`], [`Error::HostsFile`] or [`Error::TooManyHosts`]. The list is unchanged
    /// on error.
    pub fn include_file(&mut self, path: &Path) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.includes.len());
        let targets = read_hosts_file(path, remaining).map_err(|e| relimit(e, limit))?;
        self.includes.extend(targets);
        Ok(self)
    }

    /// Excludes one target (a target without user and port excludes that host on any).
    pub fn exclude_target(&mut self, t: HostTarget) -> &mut Self {
        self.excludes.push(t);
        self
    }

    /// Adds one target. The limit is checked by [`build`](HostList::build).
    pub fn include_target(&mut self, t: HostTarget) -> &mut Self {
        self.includes.push(t);
        self
    }

    /// Excludes the hosts of a range spec (see the type's documentation for the matching rules).
    ///
    /// # Errors
    ///
    /// [`Error::HostSpec`] for a bad spec or host, [`Error::TooManyHosts`] if the exclusions
    /// would exceed the limit. The list is unchanged on error.
    pub fn exclude_spec(&mut self, spec: &str) -> Result<&mut Self, Error> {
        let limit = self.max();
        let remaining = limit.saturating_sub(self.excludes.len());
        let targets = expand_targets(spec, remaining).map_err(|e| relimit(e, limit))?;
        self.excludes.extend(targets);
        Ok(self)
    }

    /// Applies exclusions and de-duplication and returns the targets in first-seen order.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyHosts`] if the includes exceed the limit (possible only through
    /// [`include_target`](HostList::include_target) or a limit lowered after including),
    /// [`Error::NoHosts`] if nothing is left.
    pub fn build(&self) -> Result<Vec<HostTarget>, Error> {
        let limit = self.max();
        if self.includes.len() > limit {
            return Err(too_many("(all includes)", limit));
        }

        let mut by_host: HashSet<&str> = HashSet::new();
        let mut by_user: HashSet<(&str, &str)> = HashSet::new();
        let mut by_port: HashSet<(&str, u16)> = HashSet::new();
        let mut by_both: HashSet<(&str, &str, u16)> = HashSet::new();
        for x in &self.excludes {
            let host = x.host.as_str();
            match (x.user.as_deref(), x.port) {
                (None, None) => by_host.insert(host),
                (Some(user), None) => by_user.insert((user, host)),
                (None, Some(port)) => by_port.insert((host, port)),
                (Some(user), Some(port)) => by_both.insert((user, host, port)),
            };
        }
        let excluded = |t: &HostTarget| {
            let host = t.host.as_str();
            by_host.contains(host)
                || t.user
                    .as_deref()
                    .is_some_and(|u| by_user.contains(&(u, host)))
                || t.port.is_some_and(|p| by_port.contains(&(host, p)))
                || t.user
                    .as_deref()
                    .zip(t.port)
                    .is_some_and(|(u, p)| by_both.contains(&(u, host, p)))
        };

        let mut seen: HashSet<&HostTarget> = HashSet::with_capacity(self.includes.len());
        let out: Vec<HostTarget> = self
            .includes
            .iter()
            .filter(|t| !excluded(t) && seen.insert(t))
            .cloned()
            .collect();
        if out.is_empty() {
            return Err(Error::NoHosts);
        }
        Ok(out)
    }
}

/// Reports the list's limit rather than the remaining room that was passed down.
fn relimit(err: Error, limit: usize) -> Error {
    match err {
        Error::TooManyHosts { what, .. } => Error::TooManyHosts { what, limit },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    /// Asserts a `HostSpec` error and returns `(column, reason)`.
    fn spec_err(result: Result<impl fmt::Debug, Error>) -> (usize, String) {
        match result {
            Err(Error::HostSpec { column, reason, .. }) => (column, reason),
            other => panic!("expected a HostSpec error, got {other:?}"),
        }
    }

    fn t(s: &str) -> HostTarget {
        HostTarget::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn names(targets: &[HostTarget]) -> Vec<String> {
        targets.iter().map(ToString::to_string).collect()
    }

    fn ex(spec: &str) -> Vec<String> {
        expand(spec, 1000).unwrap_or_else(|e| panic!("{spec:?}: {e}"))
    }

    // ---- targets -------------------------------------------------------------------------

    #[test]
    fn target_plain_user_port() {
        assert_eq!(t("web1"), HostTarget::new("web1"));
        assert_eq!(
            t("root@web1:2222"),
            HostTarget {
                user: Some("root".into()),
                host: "web1".into(),
                port: Some(2222),
            }
        );
        assert_eq!(t("web1:22"), HostTarget::new("web1").with_port(22));
        assert_eq!(t("root@web1"), HostTarget::new("web1").with_user("root"));
        assert_eq!(t("web1:65535").port, Some(65535));
        assert_eq!(t("web1:1").port, Some(1));
    }

    #[test]
    fn target_user_is_up_to_last_at() {
        let target = t("a@b@host:22");
        assert_eq!(target.user.as_deref(), Some("a@b"));
        assert_eq!(target.host, "host");
        assert_eq!(target.port, Some(22));
    }

    #[test]
    fn target_ipv6() {
        let bracketed = t("root@[2001:db8::1]:2222");
        assert_eq!(bracketed.user.as_deref(), Some("root"));
        assert_eq!(bracketed.host, "2001:db8::1");
        assert_eq!(bracketed.port, Some(2222));
        assert!(bracketed.is_ipv6());

        assert_eq!(t("[::1]"), HostTarget::new("::1"));
        assert_eq!(t("::1"), HostTarget::new("::1"));
        // Several ':' without brackets: an address, never a port.
        assert_eq!(t("fe80::1:22"), HostTarget::new("fe80::1:22"));
        assert_eq!(t("[fe80::1%eth0]:22").host, "fe80::1%eth0");
        assert!(!t("web1:22").is_ipv6());
    }

    #[test]
    fn target_display_round_trips() {
        let cases = [
            ("web1", "web1"),
            ("root@web1", "root@web1"),
            ("web1:2222", "web1:2222"),
            ("root@web1:2222", "root@web1:2222"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[::1]:2222", "[::1]:2222"),
            ("user@[::1]:2222", "user@[::1]:2222"),
            ("user@::1", "user@::1"),
            ("a@b@h:1", "a@b@h:1"),
        ];
        for (input, shown) in cases {
            let target = t(input);
            assert_eq!(target.to_string(), shown, "display of {input:?}");
            assert_eq!(t(shown), target, "round trip of {input:?}");
        }
        let built = HostTarget::new("::1").with_user("u").with_port(2222);
        assert_eq!(built.to_string(), "u@[::1]:2222");
        assert_eq!("u@[::1]:2222".parse::<HostTarget>().ok(), Some(built));
    }

    #[test]
    fn target_errors_have_column_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty host name"),
            ("@web1", 1, "empty user before '@'"),
            ("ro ot@web1", 3, "whitespace in user name"),
            ("root@", 6, "empty host name"),
            (":22", 1, "empty host name"),
            ("web1:", 6, "missing port after ':'"),
            ("web1:70000", 6, "port 70000 is out of range 1-65535"),
            ("web1:0", 6, "port 0 is out of range 1-65535"),
            ("web1:99999999999999999999", 6, "out of range 1-65535"),
            ("web1:ssh", 6, "port \"ssh\" is not a number"),
            ("web1:-1", 6, "is not a number"),
            ("web 1", 4, "whitespace in host name"),
            ("web1/24", 5, "'/' is not allowed"),
            ("web1]", 5, "']' is not allowed"),
            ("web[1-2]", 4, "'[' is not allowed"),
            ("a,b", 2, "',' is not allowed"),
            ("[::1", 1, "unclosed '['"),
            ("u@[::1", 3, "unclosed '['"),
            ("[]", 2, "empty brackets"),
            ("[web1]:22", 2, "brackets must hold an ipv6 address"),
            ("[::1]22", 6, "expected ':port' or the end after ']'"),
            ("[::1]:0", 7, "port 0 is out of range"),
            ("[::g]", 2, "\"::g\" is not a valid ipv6 address"),
            ("host:22:33", 1, "write [addr]:port"),
            ("[fe80::1%]", 9, "empty ipv6 zone"),
        ];
        for &(input, column, reason) in cases {
            let (got_column, got_reason) = spec_err(HostTarget::parse(input));
            assert_eq!(got_column, column, "column for {input:?} ({got_reason})");
            assert!(
                got_reason.contains(reason),
                "reason for {input:?}: {got_reason:?} lacks {reason:?}"
            );
            assert_eq!(got_reason, got_reason.to_lowercase(), "lowercase {input:?}");
        }
    }

    #[test]
    fn target_error_column_counts_characters() {
        let (column, _) = spec_err(HostTarget::parse("jöhn@wéb 1"));
        assert_eq!(column, 9);
    }

    #[test]
    fn target_error_names_the_spec() {
        match HostTarget::parse("web1:70000") {
            Err(e @ Error::HostSpec { .. }) => assert_eq!(
                e.to_string(),
                "bad host spec \"web1:70000\" at column 6: port 70000 is out of range 1-65535"
            ),
            other => panic!("{other:?}"),
        }
    }

    // ---- ranges --------------------------------------------------------------------------

    #[test]
    fn expand_plain_and_lists() {
        assert_eq!(ex("web1"), ["web1"]);
        assert_eq!(ex("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(ex("  web1  "), ["web1"]);
        // Order kept, no de-duplication.
        assert_eq!(ex("b,a,b"), ["b", "a", "b"]);
    }

    #[test]
    fn expand_padding() {
        assert_eq!(ex("[1-3]"), ["1", "2", "3"]);
        assert_eq!(ex("n[08-10]"), ["n08", "n09", "n10"]);
        assert_eq!(ex("n[8-10]"), ["n8", "n9", "n10"]);
        assert_eq!(ex("n[001-002]"), ["n001", "n002"]);
        assert_eq!(ex("n[0-2]"), ["n0", "n1", "n2"]);
        assert_eq!(ex("n[007]"), ["n007"]);
        let web = ex("web[01-12,20]");
        assert_eq!(web.len(), 13);
        assert_eq!(web[0], "web01");
        assert_eq!(web[8], "web09");
        assert_eq!(web[11], "web12");
        assert_eq!(web[12], "web20");
    }

    #[test]
    fn expand_mixed_elements_keep_order() {
        assert_eq!(ex("h[5,1-2,9]"), ["h5", "h1", "h2", "h9"]);
        assert_eq!(ex("h[3],x[1-2]y,z"), ["h3", "x1y", "x2y", "z"]);
    }

    #[test]
    fn expand_product_leftmost_slowest() {
        assert_eq!(
            ex("web[01-02].dc[1-2]"),
            ["web01.dc1", "web01.dc2", "web02.dc1", "web02.dc2"]
        );
        assert_eq!(
            ex("r[1-2]n[1-3]"),
            ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"]
        );
        // A later bracket with several elements still varies fastest as a whole.
        assert_eq!(
            ex("r[1-2]n[5,1-2]"),
            ["r1n5", "r1n1", "r1n2", "r2n5", "r2n1", "r2n2"]
        );
    }

    #[test]
    fn expand_user_port_around_ranges() {
        assert_eq!(
            ex("root@web[1-3]:2222"),
            ["root@web1:2222", "root@web2:2222", "root@web3:2222"]
        );
        assert_eq!(ex("u[1-2]@h"), ["u1@h", "u2@h"]);
        assert_eq!(ex("h:[22,2222]"), ["h:22", "h:2222"]);
    }

    #[test]
    fn expand_ipv6_items() {
        assert_eq!(ex("[::1]:22"), ["[::1]:22"]);
        assert_eq!(
            ex("root@[::1]:22,web[1-2]"),
            ["root@[::1]:22", "web1", "web2"]
        );
        assert_eq!(ex("[fe80::1]:[22-23]"), ["[fe80::1]:22", "[fe80::1]:23"]);
        assert_eq!(ex("fe80::[1-2]"), ["fe80::1", "fe80::2"]);
        let (column, reason) = spec_err(expand("[::1,::2]", 10));
        assert_eq!(column, 5);
        assert!(reason.contains("ipv6"), "{reason}");
    }

    #[test]
    fn expand_errors_have_column_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty item"),
            ("   ", 4, "empty item"),
            ("a,,b", 3, "empty item"),
            ("a,", 3, "empty item"),
            (",a", 1, "empty item"),
            ("a, ,b", 4, "empty item"),
            ("web[5-1]", 5, "reversed range 5-1"),
            ("web[1-3,09-02]", 9, "reversed range 09-02"),
            ("web[1-3", 4, "unclosed '['"),
            ("web1-3]", 7, "']' without a matching '['"),
            ("a,web[1,[2]]", 9, "nested '['"),
            ("web[]", 4, "empty brackets"),
            ("web[1,,2]", 7, "empty range element"),
            ("web[1,]", 7, "empty range element"),
            ("web[a-c]", 5, "range element \"a-c\" is not a number"),
            ("web[1-c]", 7, "range element \"1-c\" is not a number"),
            ("web[-1]", 5, "is not a number"),
            ("web[1-2-3]", 7, "is not a number"),
            ("web[x]", 5, "range element \"x\""),
            ("web[ 1]", 5, "is not a number"),
            (
                "web[99999999999999999999]",
                5,
                "number 99999999999999999999 is too large",
            ),
            ("web 1", 4, "whitespace inside a host spec"),
        ];
        for &(input, column, reason) in cases {
            let (got_column, got_reason) = spec_err(expand(input, 1000));
            assert_eq!(got_column, column, "column for {input:?} ({got_reason})");
            assert!(
                got_reason.contains(reason),
                "reason for {input:?}: {got_reason:?} lacks {reason:?}"
            );
        }
    }

    // ---- limit ---------------------------------------------------------------------------

    fn assert_too_many(result: Result<impl fmt::Debug, Error>, what: &str, limit: usize) {
        match result {
            Err(Error::TooManyHosts {
                what: got_what,
                limit: got_limit,
            }) => {
                assert_eq!(got_what, what);
                assert_eq!(got_limit, limit);
            }
            other => panic!("expected TooManyHosts, got {other:?}"),
        }
    }

    #[test]
    fn limit_huge_product_fails_instantly() {
        let started = Instant::now();
        let spec = "h[1-99999999][1-99999999]";
        assert_too_many(expand(spec, DEFAULT_MAX_HOSTS), spec, DEFAULT_MAX_HOSTS);
        // A product overflowing usize, and a range spanning all of u64.
        let spec = "h[0-18446744073709551615]";
        assert_too_many(expand(spec, usize::MAX), spec, usize::MAX);
        let spec = "h[1-4294967295][1-4294967295][1-4294967295]";
        assert_too_many(expand(spec, usize::MAX), spec, usize::MAX);
        // Materializing any of these would take minutes and gigabytes; the bound is loose so a
        // busy CI machine cannot fail it.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn limit_exactly_at_limit_is_ok() {
        assert_eq!(expand("h[1-10]", 10).map(|v| v.len()).ok(), Some(10));
        assert_too_many(expand("h[1-10]", 9), "h[1-10]", 9);
        // The limit counts all items together.
        assert_eq!(expand("h[1-5],g[1-5]", 10).map(|v| v.len()).ok(), Some(10));
        assert_too_many(expand("h[1-5],g[1-5],x", 10), "h[1-5],g[1-5],x", 10);
        assert_too_many(expand("h", 0), "h", 0);
    }

    // ---- hosts files ---------------------------------------------------------------------

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

    // ---- host list -----------------------------------------------------------------------

    #[test]
    fn list_dedup_keeps_first_order() {
        let mut list = HostList::new();
        list.include_spec("c,a,b")
            .and_then(|l| l.include_spec("a,d,c"))
            .expect("specs");
        list.include_target(HostTarget::new("b"))
            .include_target(HostTarget::new("b").with_port(22))
            .include_target(HostTarget::new("b").with_user("root"));
        let hosts = list.build().expect("build");
        assert_eq!(names(&hosts), ["c", "a", "b", "d", "b:22", "root@b"]);
    }

    #[test]
    fn list_exclude_by_name_removes_every_user_and_port() {
        let mut list = HostList::new();
        list.include_spec("web[1-4],root@web2:2222,web2:22,x@web3")
            .and_then(|l| l.exclude_spec("web[2-3]"))
            .expect("specs");
        assert_eq!(names(&list.build().expect("build")), ["web1", "web4"]);
    }

    #[test]
    fn list_exclude_by_user_and_port_matches_given_parts() {
        let mut list = HostList::new();
        list.include_spec("h,root@h,root@h:22,bob@h:22,h:22,root@h:2222")
            .expect("spec");

        let build_without = |spec: &str| {
            let mut l = list.clone();
            l.exclude_spec(spec).expect("exclude");
            names(&l.build().expect("build"))
        };
        assert_eq!(
            build_without("root@h"),
            ["h", "bob@h:22", "h:22"],
            "user only: every port of root@h"
        );
        assert_eq!(
            build_without("h:22"),
            ["h", "root@h", "root@h:2222"],
            "port only: every user of h:22"
        );
        assert_eq!(
            build_without("root@h:22"),
            ["h", "root@h", "bob@h:22", "h:22", "root@h:2222"],
            "user and port: exactly one"
        );
        assert_eq!(
            build_without("root@other,other:22"),
            [
                "h",
                "root@h",
                "root@h:22",
                "bob@h:22",
                "h:22",
                "root@h:2222"
            ],
            "other hosts: nothing"
        );
    }

    #[test]
    fn list_no_hosts() {
        assert!(matches!(HostList::new().build(), Err(Error::NoHosts)));
        let mut list = HostList::new();
        list.include_spec("a,b")
            .and_then(|l| l.exclude_spec("a,b"))
            .expect("specs");
        assert!(matches!(list.build(), Err(Error::NoHosts)));
    }

    #[test]
    fn list_errors_are_reported_and_leave_list_unchanged() {
        let mut list = HostList::new().limit(5);
        list.include_spec("a").expect("a");
        let (column, reason) = spec_err(list.include_spec("web[1-2]:0"));
        assert_eq!(column, 6);
        assert!(reason.contains("expanded from \"web[1-2]:0\""), "{reason}");
        assert_too_many(list.include_spec("h[1-5]"), "h[1-5]", 5);
        assert!(matches!(
            list.exclude_spec("[1-"),
            Err(Error::HostSpec { .. })
        ));
        assert_eq!(names(&list.build().expect("build")), ["a"]);
    }

    #[test]
    fn list_limit() {
        let mut list = HostList::new().limit(4);
        list.include_spec("h[1-2]")
            .and_then(|l| l.include_spec("g[1-2]"))
            .expect("exactly at the limit");
        assert_eq!(list.build().map(|v| v.len()).ok(), Some(4));
        assert_too_many(list.include_spec("x"), "x", 4);

        list.include_target(HostTarget::new("y"));
        assert_too_many(list.build(), "(all includes)", 4);

        assert_too_many(
            HostList::new().include_spec("h[1-99999999][1-99999999]"),
            "h[1-99999999][1-99999999]",
            DEFAULT_MAX_HOSTS,
        );
        assert_eq!(HostList::new().max(), DEFAULT_MAX_HOSTS);
        assert_eq!(HostList::default().max(), DEFAULT_MAX_HOSTS);
    }

    #[test]
    fn list_include_file() {
        let dir =
            std::env::temp_dir().join(format!("fleetsh-hostlist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("hosts");
        std::fs::write(&file, "web[1-3]\n# c\nweb1\n").expect("write");
        let mut list = HostList::new().limit(5);
        list.include_spec("db1")
            .and_then(|l| l.include_file(&file))
            .and_then(|l| l.exclude_spec("web2"))
            .expect("includes");
        assert_eq!(
            names(&list.build().expect("build")),
            ["db1", "web1", "web3"]
        );
        assert_too_many(
            list.include_file(&file),
            &format!("{}:1", file.display()),
            5,
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn list_of_100k_hosts_with_exclusions() {
        // Speed is a benchmark's claim; this checks the result at that size.
        let mut list = HostList::new();
        list.include_spec("rack[000-099]-node[0000-0999]")
            .and_then(|l| l.include_spec("rack[000-009]-node[0000-0999]"))
            .and_then(|l| l.exclude_spec("rack[050-059]-node[0000-0999]"))
            .expect("specs");
        let hosts = list.build().expect("build");
        assert_eq!(hosts.len(), 90_000);
        assert_eq!(hosts[0].host, "rack000-node0000");
        assert_eq!(hosts[89_999].host, "rack099-node0999");
    }
}

//! OpenSSH client configuration (`~/.ssh/config`, `ssh_config(5)`): parsing and per-host
//! resolution.
//!
//! [`SshConfig::load`] reads a file and its `Include`s once; [`SshConfig::resolve`] gives the
//! effective settings for one host as typed ([`Resolved`]), each with the file and line it came
//! from, so `fleetsh config show HOST` can say where a value was set.
//!
//! Why not a crate: `ssh2-config` resolves to a struct without the file and line of each value
//! (which `config show` prints) and pulls dependencies `fleetsh-core` may not have;
//! `russh-config` depends on tokio and knows no `Match`. The subset fleetsh honours is small and
//! its rules are few, so they are written out here:
//!
//! 1. Lines are `Keyword value...` or `Keyword=value`; keywords are case-insensitive; arguments may
//!    be quoted (`"a b"`); `#` starts a comment at the start of a line or of an argument.
//! 2. `Host PATTERN...` starts a block that applies when the name as typed matches one pattern and
//!    no `!pattern` (`*` and `?` wildcards, case-insensitive). Lines before any `Host` apply to
//!    every host.
//! 3. `Match` starts a block with criteria that must all hold: `all`, `host` (the `HostName` set
//!    so far, else the name as typed), `originalhost` (the name as typed), `user` (the remote user
//!    known so far: typed, flag, or an earlier `User`), `localuser`; each may be negated with `!`.
//!    Other criteria (`exec`, `canonical`, `final`, `tagged`, `localnetwork`) are not evaluated:
//!    such a block never applies, and is reported as ignored.
//! 4. `Include FILE...` reads files in place (relative paths from `~/.ssh`, `~` expanded, `*`/`?`
//!    globs in the last component, files in lexical order; a pattern matching nothing is not an
//!    error). Inside a block, the included lines apply only when the block does. At most
//!    [`MAX_INCLUDE_DEPTH`] levels and [`MAX_FILES`] files: a cycle is an error, not a hang.
//! 5. The first value obtained for a directive wins; `IdentityFile` and `CertificateFile`
//!    accumulate (all of them are tried, in order), as in OpenSSH.
//! 6. Directives fleetsh does not use are kept as ignored (with file and line), never an error;
//!    a bad value of a directive fleetsh uses is an error naming the file, line and directive.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::HostKeyCheck;
use crate::error::Error;

/// Most nested `Include` levels (OpenSSH's limit too).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most files one configuration may read, includes counted.
pub const MAX_FILES: usize = 256;

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value with where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub source: Source,
}

/// One directive's parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    CertificateFile(String),
    IdentitiesOnly(bool),
    ProxyJump(String),
    /// The command line as written (the rest of the line; `none` included).
    ProxyCommand(String),
    ConnectTimeout(Duration),
    StrictHostKeyChecking(HostKeyCheck),
    UserKnownHostsFile(String),
    ServerAliveInterval(Duration),
    ServerAliveCountMax(u32),
    HashKnownHosts(bool),
    /// A directive fleetsh does not use (its keyword as written).
    Ignored(String),
}

#[derive(Debug, Clone)]
struct Setting {
    value: Value,
    source: Source,
}

/// A pattern list item: `pattern` or `!pattern`.
#[derive(Debug, Clone)]
struct Pattern {
    negated: bool,
    glob: String,
}

#[derive(Debug, Clone)]
enum Criterion {
    All,
    Host(Vec<Pattern>),
    OriginalHost(Vec<Pattern>),
    User(Vec<Pattern>),
    LocalUser(Vec<Pattern>),
    /// Not evaluated: the block never applies.
    Unsupported(String),
}

#[derive(Debug, Clone)]
enum Condition {
    /// `Host` line: any positive pattern matches the name as typed and no negated one does.
    Host(Vec<Pattern>),
    /// `Match` line: every criterion holds (each possibly negated).
    Match(Vec<(bool, Criterion)>),
}

#[derive(Debug, Clone)]
struct Block {
    /// All must hold (an `Include` inside a block adds the block's condition to the included
    /// blocks).
    conditions: Vec<Condition>,
    settings: Vec<Setting>,
}

/// A parsed OpenSSH client configuration.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
    files: Vec<PathBuf>,
    home: Option<PathBuf>,
    local_user: String,
}

/// The effective settings of one host (`None`/empty: not set by the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// `HostName`, with `%h` expanded.
    pub hostname: Option<Sourced<String>>,
    /// `User`.
    pub user: Option<Sourced<String>>,
    /// `Port`.
    pub port: Option<Sourced<u16>>,
    /// `IdentityFile`s, in order, `~` and `%` tokens expanded.
    pub identity_files: Vec<Sourced<PathBuf>>,
    /// `CertificateFile`s, in order, expanded.
    pub certificate_files: Vec<Sourced<PathBuf>>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<Sourced<bool>>,
    /// `ProxyJump` as written (`none` included). As in OpenSSH, `ProxyJump` and
    /// `ProxyCommand` compete: the first one that applies wins, the other is not set.
    pub proxy_jump: Option<Sourced<String>>,
    /// `ProxyCommand` as written, tokens unexpanded (`none` included).
    pub proxy_command: Option<Sourced<String>>,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Sourced<Duration>>,
    /// `StrictHostKeyChecking`, mapped (see [`parse_strict`]).
    pub host_key_check: Option<Sourced<HostKeyCheck>>,
    /// The first `UserKnownHostsFile`, expanded.
    pub known_hosts_file: Option<Sourced<PathBuf>>,
    /// `ServerAliveInterval` (zero: off).
    pub server_alive_interval: Option<Sourced<Duration>>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<Sourced<u32>>,
    /// `HashKnownHosts`.
    pub hash_known_hosts: Option<Sourced<bool>>,
    /// Directives of the applying blocks that fleetsh does not use.
    pub ignored: Vec<Sourced<String>>,
}

/// What a host is resolved for.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The host name as typed (what `Host` patterns match).
    pub host: &'a str,
    /// The remote user given for this host (`user@host` or a flag), if any.
    pub user: Option<&'a str>,
}

impl SshConfig {
    /// Reads `path` and its includes. `home` is the local home directory (`~`, `%d`, relative
    /// `Include`s), `local_user` the local user name (`%u`, `Match localuser`).
    pub fn load(path: &Path, home: Option<&Path>, local_user: &str) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_text(&text, path, home, local_user)
    }

    /// Parses `text` as the contents of `path` (named in errors and sources; its `Include`s are
    /// read from disk).
    pub fn parse_text(
        text: &str,
        path: &Path,
        home: Option<&Path>,
        local_user: &str,
    ) -> Result<Self, Error> {
        let mut cfg = SshConfig {
            blocks: Vec::new(),
            files: Vec::new(),
            home: home.map(Path::to_path_buf),
            local_user: local_user.to_string(),
        };
        let mut parser = Parser { cfg: &mut cfg };
        parser.file(text, path, 0, &[])?;
        Ok(cfg)
    }

    /// The files read, includes included, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether any block sets a `ProxyCommand` other than `none` (each host reached through
    /// one runs a process of its own, with two pipes to this one).
    pub fn has_proxy_command(&self) -> bool {
        self.blocks
            .iter()
            .flat_map(|b| &b.settings)
            .any(|s| matches!(&s.value, Value::ProxyCommand(c) if !c.eq_ignore_ascii_case("none")))
    }

    /// Every directive fleetsh does not use, wherever it is (reported once per run).
    pub fn ignored(&self) -> Vec<Sourced<String>> {
        self.blocks
            .iter()
            .flat_map(|b| &b.settings)
            .filter_map(|s| match &s.value {
                Value::Ignored(k) => Some(Sourced {
                    value: k.clone(),
                    source: s.source.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The effective settings for `query`: first value wins, file order.
    pub fn resolve(&self, query: Query<'_>) -> Resolved {
        let mut r = Resolved::default();
        for block in &self.blocks {
            if !block.conditions.iter().all(|c| self.holds(c, query, &r)) {
                continue;
            }
            for s in &block.settings {
                self.apply(&mut r, s, query);
            }
        }
        r
    }

    fn holds(&self, c: &Condition, q: Query<'_>, so_far: &Resolved) -> bool {
        match c {
            Condition::Host(patterns) => list_matches(patterns, q.host),
            Condition::Match(criteria) => criteria.iter().all(|(negated, c)| {
                let hit = match c {
                    Criterion::All => true,
                    Criterion::Host(p) => list_matches(
                        p,
                        so_far
                            .hostname
                            .as_ref()
                            .map_or(q.host, |h| h.value.as_str()),
                    ),
                    Criterion::OriginalHost(p) => list_matches(p, q.host),
                    Criterion::User(p) => {
                        let user = q
                            .user
                            .or(so_far.user.as_ref().map(|u| u.value.as_str()))
                            .unwrap_or(&self.local_user);
                        list_matches(p, user)
                    }
                    Criterion::LocalUser(p) => list_matches(p, &self.local_user),
                    Criterion::Unsupported(_) => return false,
                };
                hit != *negated
            }),
        }
    }

    fn apply(&self, r: &mut Resolved, s: &Setting, q: Query<'_>) {
        let src = || s.source.clone();
        fn first<T>(slot: &mut Option<Sourced<T>>, value: T, source: Source) {
            if slot.is_none() {
                *slot = Some(Sourced { value, source });
            }
        }
        match &s.value {
            Value::HostName(h) => {
                let v = expand_tokens(h, &[('h', q.host)]);
                first(&mut r.hostname, v, src());
            }
            Value::User(u) => first(&mut r.user, u.clone(), src()),
            Value::Port(p) => first(&mut r.port, *p, src()),
            Value::IdentityFile(f) => {
                let v = self.expand_path(f, q, r);
                if !r.identity_files.iter().any(|x| x.value == v) {
                    r.identity_files.push(Sourced {
                        value: v,
                        source: src(),
                    });
                }
            }
            Value::CertificateFile(f) => {
                let v = self.expand_path(f, q, r);
                if !r.certificate_files.iter().any(|x| x.value == v) {
                    r.certificate_files.push(Sourced {
                        value: v,
                        source: src(),
                    });
                }
            }
            Value::IdentitiesOnly(b) => first(&mut r.identities_only, *b, src()),
            Value::ProxyJump(j) if r.proxy_command.is_none() => {
                first(&mut r.proxy_jump, j.clone(), src());
            }
            Value::ProxyCommand(c) if r.proxy_jump.is_none() => {
                first(&mut r.proxy_command, c.clone(), src());
            }
            Value::ProxyJump(_) | Value::ProxyCommand(_) => {}
            Value::ConnectTimeout(d) => first(&mut r.connect_timeout, *d, src()),
            Value::StrictHostKeyChecking(m) => first(&mut r.host_key_check, *m, src()),
            Value::UserKnownHostsFile(f) => {
                let v = self.expand_path(f, q, r);
                first(&mut r.known_hosts_file, v, src());
            }
            Value::ServerAliveInterval(d) => first(&mut r.server_alive_interval, *d, src()),
            Value::ServerAliveCountMax(n) => first(&mut r.server_alive_count_max, *n, src()),
            Value::HashKnownHosts(b) => first(&mut r.hash_known_hosts, *b, src()),
            Value::Ignored(k) => r.ignored.push(Sourced {
                value: k.clone(),
                source: src(),
            }),
        }
    }

    /// `~`, `%d` (local home), `%u` (local user), `%h` (remote host name), `%r` (remote user),
    /// `%%`. The host name and user are those known when the directive is applied.
    fn expand_path(&self, raw: &str, q: Query<'_>, r: &Resolved) -> PathBuf {
        let home = self
            .home
            .as_deref()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = r.hostname.as_ref().map_or(q.host, |h| h.value.as_str());
        let user = q
            .user
            .or(r.user.as_ref().map(|u| u.value.as_str()))
            .unwrap_or(&self.local_user);
        let tilde = match raw.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
            _ => raw.to_string(),
        };
        PathBuf::from(expand_tokens(
            &tilde,
            &[
                ('d', home.as_str()),
                ('u', self.local_user.as_str()),
                ('h', host),
                ('r', user),
            ],
        ))
    }
}

/// Replaces `%c` tokens from `table` and `%%`; unknown tokens are left as written.
fn expand_tokens(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match table.iter().find(|(k, _)| *k == t) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

fn list_matches(patterns: &[Pattern], name: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        if glob(p.glob.as_bytes(), name.as_bytes()) {
            if p.negated {
                return false;
            }
            hit = true;
        }
    }
    hit
}

/// `*` and `?` glob, case-insensitive, one backtrack point (no recursion, linear-ish).
pub fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&ch) = s.get(i) {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&ch) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// Splits a line into words: whitespace-separated, `"..."` or `'...'` quoting, `#` at the start
/// of an unquoted word ends the line. `None` for an unterminated quote.
fn words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else {
            return Some(out);
        };
        if c == '#' {
            return Some(out);
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if chars.peek() == Some(&c) || chars.peek() == Some(&'\\') => {
                            word.extend(chars.next());
                        }
                        Some(x) => word.push(x),
                        None => return None,
                    }
                }
            } else {
                word.push(c);
            }
        }
        out.push(word);
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// `StrictHostKeyChecking`: `yes` and `ask` (fleetsh never prompts) → strict; `accept-new` →
/// accept-new; `no` and `off` → accept-new as well: OpenSSH's `no` learns unknown keys but, unlike
/// fleetsh's `off`, still does not trust a changed key blindly, and fleetsh refuses changed keys
/// outright rather than connect with authentication limited.
pub fn parse_strict(v: &str) -> Option<HostKeyCheck> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "ask" => Some(HostKeyCheck::Strict),
        "accept-new" | "no" | "false" | "off" => Some(HostKeyCheck::AcceptNew),
        _ => None,
    }
}

/// OpenSSH time format: `90`, `90s`, `1m30s`, `1h`, units s/m/h/d/w (case-insensitive).
pub fn parse_time(v: &str) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse().ok()?)?;
    } else if !v.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(Duration::from_secs(total))
}

struct Parser<'a> {
    cfg: &'a mut SshConfig,
}

impl Parser<'_> {
    fn file(
        &mut self,
        text: &str,
        path: &Path,
        depth: usize,
        outer: &[Condition],
    ) -> Result<(), Error> {
        if self.cfg.files.len() >= MAX_FILES {
            return Err(Error::SshConfig {
                path: path.to_path_buf(),
                line: 0,
                message: format!("more than {MAX_FILES} files read through Include"),
            });
        }
        self.cfg.files.push(path.to_path_buf());
        let file: Arc<Path> = Arc::from(path);
        let mut block = Block {
            conditions: outer.to_vec(),
            settings: Vec::new(),
        };
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |message: String| Error::SshConfig {
                path: path.to_path_buf(),
                line,
                message,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            // `Keyword value`, `Keyword=value`, `Keyword = value`.
            let split = trimmed
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(trimmed.len());
            let (keyword, rest) = trimmed.split_at(split);
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let args = words(rest).ok_or_else(|| err(format!("{keyword}: unterminated quote")))?;
            let lower = keyword.to_ascii_lowercase();
            let source = Source {
                file: file.clone(),
                line,
            };
            match lower.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(err("Host: needs at least one pattern".into()));
                    }
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: with(outer, Condition::Host(patterns(&args))),
                            settings: Vec::new(),
                        },
                    ));
                }
                "match" => {
                    let criteria = parse_match(&args).map_err(|m| err(format!("Match: {m}")))?;
                    let unsupported: Vec<&str> = criteria
                        .iter()
                        .filter_map(|(_, c)| match c {
                            Criterion::Unsupported(k) => Some(k.as_str()),
                            _ => None,
                        })
                        .collect();
                    let mut settings = Vec::new();
                    if !unsupported.is_empty() {
                        settings.push(Setting {
                            value: Value::Ignored(format!("Match {}", unsupported.join(" "))),
                            source: source.clone(),
                        });
                    }
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: with(outer, Condition::Match(criteria)),
                            settings,
                        },
                    ));
                }
                "include" => {
                    if args.is_empty() {
                        return Err(err("Include: needs a file".into()));
                    }
                    if depth + 1 >= MAX_INCLUDE_DEPTH {
                        return Err(err(format!(
                            "Include nested more than {MAX_INCLUDE_DEPTH} levels deep (an include cycle?)"
                        )));
                    }
                    let conditions = block.conditions.clone();
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: conditions.clone(),
                            settings: Vec::new(),
                        },
                    ));
                    for pattern in &args {
                        for included in self.include_files(pattern) {
                            let text = std::fs::read_to_string(&included).map_err(|e| {
                                err(format!("Include: cannot read {}: {e}", included.display()))
                            })?;
                            self.file(&text, &included, depth + 1, &conditions)?;
                        }
                    }
                }
                // The command is the rest of the line as written, quotes and all: it is run
                // by the shell.
                "proxycommand" if !rest.trim().is_empty() => {
                    block.settings.push(Setting {
                        value: Value::ProxyCommand(rest.trim().to_string()),
                        source,
                    });
                }
                _ => {
                    let value = parse_directive(&lower, keyword, &args).map_err(err)?;
                    block.settings.push(Setting { value, source });
                }
            }
        }
        self.push(block);
        Ok(())
    }

    fn push(&mut self, block: Block) {
        if !block.settings.is_empty() {
            self.cfg.blocks.push(block);
        }
    }

    /// The files an `Include` argument names, in lexical order.
    fn include_files(&self, pattern: &str) -> Vec<PathBuf> {
        let home = self.cfg.home.clone().unwrap_or_default();
        let expanded = match pattern.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(pattern),
        };
        let full = if expanded.is_absolute() {
            expanded
        } else {
            home.join(".ssh").join(expanded)
        };
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            return if full.is_file() {
                vec![full]
            } else {
                Vec::new()
            };
        }
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        // As glob(3): a leading dot is matched only by a leading dot.
                        (!n.starts_with('.') || name.starts_with('.'))
                            && glob(name.as_bytes(), n.as_bytes())
                    })
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }
}

fn with(outer: &[Condition], c: Condition) -> Vec<Condition> {
    let mut v = outer.to_vec();
    v.push(c);
    v
}

/// `Host` arguments and `Match` pattern lists: `!` negates.
fn patterns(items: &[String]) -> Vec<Pattern> {
    items
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('!') {
            Some(rest) => Pattern {
                negated: true,
                glob: rest.to_string(),
            },
            None => Pattern {
                negated: false,
                glob: p.to_string(),
            },
        })
        .collect()
}

fn parse_match(args: &[String]) -> Result<Vec<(bool, Criterion)>, String> {
    if args.is_empty() {
        return Err("needs criteria (all, host, user, ...)".into());
    }
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(word) = it.next() {
        let (negated, name) = match word.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, word.as_str()),
        };
        let lower = name.to_ascii_lowercase();
        let mut arg = || {
            it.next()
                .map(|a| patterns(std::slice::from_ref(a)))
                .ok_or_else(|| format!("{name} needs an argument"))
        };
        let c = match lower.as_str() {
            "all" => Criterion::All,
            "canonical" | "final" => Criterion::Unsupported(lower),
            "host" => Criterion::Host(arg()?),
            "originalhost" => Criterion::OriginalHost(arg()?),
            "user" => Criterion::User(arg()?),
            "localuser" => Criterion::LocalUser(arg()?),
            "exec" | "localnetwork" | "tagged" => {
                arg()?;
                Criterion::Unsupported(lower)
            }
            other => return Err(format!("unknown criterion {other:?}")),
        };
        out.push((negated, c));
    }
    Ok(out)
}

/// Whether an ssh_config directive fleetsh does not implement changes where or how `ssh` would
/// connect (so ignoring it is worth a warning): `keyword` as [`SshConfig::ignored`] reports it
/// (`Match exec` for unsupported `Match` criteria).
pub fn changes_connection(keyword: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "addressfamily",
        "bindaddress",
        "bindinterface",
        "canonicaldomains",
        "canonicalizefallbacklocal",
        "canonicalizehostname",
        "canonicalizemaxdots",
        "canonicalizepermittedcnames",
        "casignaturealgorithms",
        "checkhostip",
        "ciphers",
        "connectionattempts",
        "controlmaster",
        "controlpath",
        "controlpersist",
        "dynamicforward",
        "forwardagent",
        "globalknownhostsfile",
        "gssapiauthentication",
        "hostbasedauthentication",
        "hostkeyalgorithms",
        "hostkeyalias",
        "identityagent",
        "kexalgorithms",
        "knownhostscommand",
        "localcommand",
        "localforward",
        "macs",
        "passwordauthentication",
        "pkcs11provider",
        "preferredauthentications",
        "proxyusefdpass",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
        "pubkeyauthentication",
        "remotecommand",
        "remoteforward",
        "requesttty",
        "securitykeyprovider",
        "sendenv",
        "sessiontype",
        "setenv",
        "tunnel",
        "tunneldevice",
        "verifyhostkeydns",
    ];
    let lower = keyword.to_ascii_lowercase();
    lower.starts_with("match ") || KEYWORDS.contains(&lower.as_str())
}

/// One directive's value, or an error message naming the directive.
fn parse_directive(lower: &str, keyword: &str, args: &[String]) -> Result<Value, String> {
    let one = || -> Result<&str, String> {
        match args {
            [v] => Ok(v.as_str()),
            [] => Err(format!("{keyword}: missing value")),
            _ => Err(format!("{keyword}: expects one value, got {}", args.len())),
        }
    };
    let bad = |v: &str, what: &str| format!("{keyword}: {v:?} is not {what}");
    let boolean = || -> Result<bool, String> {
        let v = one()?;
        parse_bool(v).ok_or_else(|| bad(v, "yes or no"))
    };
    let time = || -> Result<Duration, String> {
        let v = one()?;
        parse_time(v).ok_or_else(|| bad(v, "a time (seconds, or e.g. 1m30s)"))
    };
    Ok(match lower {
        "hostname" => Value::HostName(one()?.to_string()),
        "user" => Value::User(one()?.to_string()),
        "port" => {
            let v = one()?;
            match v.parse::<u16>() {
                Ok(p) if p > 0 => Value::Port(p),
                _ => return Err(bad(v, "a port number (1-65535)")),
            }
        }
        "identityfile" => Value::IdentityFile(one()?.to_string()),
        "certificatefile" => Value::CertificateFile(one()?.to_string()),
        "identitiesonly" => Value::IdentitiesOnly(boolean()?),
        "proxyjump" => Value::ProxyJump(one()?.to_string()),
        "connecttimeout" => {
            let d = time()?;
            if d.is_zero() {
                return Err(format!("{keyword}: must be greater than zero"));
            }
            Value::ConnectTimeout(d)
        }
        "stricthostkeychecking" => {
            let v = one()?;
            Value::StrictHostKeyChecking(
                parse_strict(v).ok_or_else(|| bad(v, "yes, no, ask, accept-new or off"))?,
            )
        }
        "userknownhostsfile" => match args.first() {
            // Several files: the first is used (see docs/connecting.md).
            Some(f) => Value::UserKnownHostsFile(f.clone()),
            None => return Err(format!("{keyword}: missing value")),
        },
        "serveraliveinterval" => Value::ServerAliveInterval(time()?),
        "serveralivecountmax" => {
            let v = one()?;
            Value::ServerAliveCountMax(v.parse().map_err(|_| bad(v, "a number"))?)
        }
        "hashknownhosts" => Value::HashKnownHosts(boolean()?),
        "proxycommand" => return Err(format!("{keyword}: missing value")),
        _ => Value::Ignored(keyword.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SshConfig {
        SshConfig::parse_text(text, Path::new("/cfg"), Some(Path::new("/home/me")), "me").unwrap()
    }

    fn q(host: &str) -> Query<'_> {
        Query { host, user: None }
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = parse(
            "Host web*\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/web\n\
             Host *\n  User root\n  Port 22\n  IdentityFile %d/.ssh/%u-%r@%h\n",
        );
        let r = c.resolve(q("web1"));
        assert_eq!(r.user.as_ref().unwrap().value, "deploy");
        assert_eq!(r.user.as_ref().unwrap().source.to_string(), "/cfg:2");
        assert_eq!(r.port.as_ref().unwrap().value, 2222);
        let ids: Vec<_> = r.identity_files.iter().map(|s| s.value.clone()).collect();
        assert_eq!(
            ids,
            [
                PathBuf::from("/home/me/.ssh/web"),
                PathBuf::from("/home/me/.ssh/me-deploy@web1")
            ]
        );
        let r = c.resolve(q("db1"));
        assert_eq!(r.user.unwrap().value, "root");
        assert_eq!(r.port.unwrap().value, 22);
    }

    #[test]
    fn host_patterns_with_negation_and_hostname_token() {
        let c = parse(
            "Host *.dc1 !bastion.dc1\n  HostName %h.example.com\n  ProxyJump bastion.dc1\n\
             Host alias\n  HostName 10.0.0.5\n",
        );
        let r = c.resolve(q("web1.dc1"));
        assert_eq!(r.hostname.unwrap().value, "web1.dc1.example.com");
        assert_eq!(r.proxy_jump.unwrap().value, "bastion.dc1");
        let r = c.resolve(q("bastion.dc1"));
        assert!(r.hostname.is_none() && r.proxy_jump.is_none());
        assert_eq!(c.resolve(q("ALIAS")).hostname.unwrap().value, "10.0.0.5");
        // Lines before any Host apply to every host; `=` separators and quotes.
        let c = parse("ConnectTimeout=1m30s\nUser = \"a b\"  # comment\n");
        let r = c.resolve(q("x"));
        assert_eq!(r.connect_timeout.unwrap().value, Duration::from_secs(90));
        assert_eq!(r.user.unwrap().value, "a b");
    }

    #[test]
    fn match_host_user_all_and_unsupported() {
        let c = parse(
            "Host short\n  HostName long.example.com\n\
             Match host *.example.com !user root\n  Port 2200\n\
             Match originalhost short\n  ServerAliveInterval 15\n\
             Match exec \"true\"\n  User never\n\
             Match all\n  ServerAliveCountMax 5\n  StrictHostKeyChecking accept-new\n",
        );
        let r = c.resolve(q("short"));
        assert_eq!(r.port.unwrap().value, 2200);
        assert_eq!(
            r.server_alive_interval.unwrap().value,
            Duration::from_secs(15)
        );
        assert_eq!(r.server_alive_count_max.unwrap().value, 5);
        assert_eq!(r.host_key_check.unwrap().value, HostKeyCheck::AcceptNew);
        assert!(r.user.is_none(), "Match exec is never evaluated");
        assert!(c.ignored().iter().any(|i| i.value == "Match exec"));
        let root = c.resolve(Query {
            host: "short",
            user: Some("root"),
        });
        assert!(root.port.is_none(), "!user root excludes root");
    }

    #[test]
    fn bad_values_name_file_line_and_directive() {
        for (text, want) in [
            (
                "Host a\n  Port 70000\n",
                "/cfg:2: Port: \"70000\" is not a port number",
            ),
            (
                "ConnectTimeout soon\n",
                "/cfg:1: ConnectTimeout: \"soon\" is not a time",
            ),
            (
                "IdentitiesOnly maybe\n",
                "/cfg:1: IdentitiesOnly: \"maybe\" is not yes or no",
            ),
            ("\n\nUser a b\n", "/cfg:3: User: expects one value, got 2"),
            (
                "Match bogus x\n",
                "/cfg:1: Match: unknown criterion \"bogus\"",
            ),
            ("User \"open\n", "/cfg:1: User: unterminated quote"),
            ("Host\n", "/cfg:1: Host: needs at least one pattern"),
        ] {
            let e = SshConfig::parse_text(text, Path::new("/cfg"), None, "me").unwrap_err();
            assert!(e.to_string().starts_with(want), "{e} / {want}");
        }
    }

    #[test]
    fn proxy_command_and_proxy_jump_compete_first_wins() {
        let c = parse(
            "Host a\n  ProxyCommand ssh -W '%h:%p' gw # kept as written\n  ProxyJump j1\n\
             Host b\n  ProxyJump j2\n  ProxyCommand nc %h %p\n\
             Host *\n  ProxyCommand none\n",
        );
        let a = c.resolve(Query {
            host: "a",
            user: None,
        });
        assert_eq!(
            a.proxy_command.unwrap().value,
            "ssh -W '%h:%p' gw # kept as written"
        );
        assert_eq!(a.proxy_jump, None);
        let b = c.resolve(Query {
            host: "b",
            user: None,
        });
        assert_eq!(b.proxy_jump.unwrap().value, "j2");
        assert_eq!(b.proxy_command, None);
        assert!(c.has_proxy_command());
        assert!(changes_connection("CanonicalizeHostname"));
        assert!(changes_connection("Match exec"));
        assert!(!changes_connection("LogLevel"));
    }

    #[test]
    fn unknown_directives_are_ignored_with_their_line() {
        let c = parse("ForwardAgent yes\nHost a\n  ControlMaster auto\n  User u\n");
        let ignored: Vec<String> = c
            .ignored()
            .iter()
            .map(|i| format!("{} {}", i.value, i.source))
            .collect();
        assert_eq!(ignored, ["ForwardAgent /cfg:1", "ControlMaster /cfg:3"]);
        let r = c.resolve(q("b"));
        assert_eq!(r.ignored.len(), 1);
    }

    #[test]
    fn include_relative_globbed_inside_blocks_and_cycles_bounded() {
        let dir = tempfile_dir();
        let ssh = dir.join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/b.conf"), "User from-b\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/a.conf"),
            "Port 1001\nHost other\n  User o\n",
        )
        .unwrap();
        std::fs::write(ssh.join("conf.d/.hidden.conf"), "Port 9\n").unwrap();
        let main = ssh.join("config");
        std::fs::write(
            &main,
            "Host web\n  Include conf.d/*.conf\n  HostName after-include\nHost *\n  User last\n",
        )
        .unwrap();
        let c = SshConfig::load(&main, Some(&dir), "me").unwrap();
        assert_eq!(c.files().len(), 3);
        let r = c.resolve(q("web"));
        assert_eq!(r.port.unwrap().value, 1001);
        assert_eq!(r.user.as_ref().unwrap().value, "from-b");
        assert!(r.user.unwrap().source.file.ends_with("conf.d/b.conf"));
        assert_eq!(r.hostname.unwrap().value, "after-include");
        // The included lines apply only inside the including block.
        let r = c.resolve(q("db"));
        assert!(r.port.is_none());
        assert_eq!(r.user.unwrap().value, "last");
        // A file including itself: an error naming the depth, not a hang.
        std::fs::write(&main, "Include config\n").unwrap();
        let e = SshConfig::load(&main, Some(&dir), "me").unwrap_err();
        assert!(e.to_string().contains("nested more than 16"), "{e}");
        // A missing include is not an error (as OpenSSH).
        std::fs::write(&main, "Include nothing-here*\nUser u\n").unwrap();
        assert!(SshConfig::load(&main, Some(&dir), "me").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "fleetsh-ssh-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn times_and_strict_modes() {
        assert_eq!(parse_time("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_time("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_time("5M"), Some(Duration::from_secs(300)));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("1x"), None);
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_strict("ask"), Some(HostKeyCheck::Strict));
        assert_eq!(parse_strict("no"), Some(HostKeyCheck::AcceptNew));
        assert_eq!(parse_strict("maybe"), None);
    }
}

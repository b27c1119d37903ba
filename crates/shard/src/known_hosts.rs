//! known_hosts, parsed once per run and shared by every shard.
//!
//! russh's own helpers re-read and re-parse the whole file on every lookup (1.5 ms per lookup on a
//! 10,000-line file, minutes of CPU for a fleet run), compare key comments, and know neither
//! wildcards nor `@revoked`. This store parses the file once into:
//! - a hash map from the lookup name (`host` for port 22, `[host]:port` otherwise) to its keys,
//! - a list of hashed (`|1|salt|hash`) entries, checked with HMAC-SHA1 only when no plain entry
//!   names the host,
//! - a list of wildcard patterns (`*`, `?`, `!` negation),
//! - the set of revoked keys (`@revoked`), which fail a host whatever else says.
//!
//! Keys are compared by key data, never by comment. `accept-new` appends one line per newly
//! learned host under a lock, after recording it in the map, so 10,000 hosts learned at once give
//! exactly 10,000 lines, none lost or duplicated.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;
use sha1::Sha1;

use crate::Error;
use fleetsh_core::HostKeyCheck;

/// The outcome of checking a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is known for this host.
    Trusted,
    /// The host was unknown and its key was accepted and recorded (accept-new).
    Learned,
    /// Checking is off.
    Unchecked,
    /// The host is unknown (strict mode).
    Unknown,
    /// The host is known with different keys of the same type: possible man-in-the-middle.
    Changed {
        /// Line of the known_hosts file holding the other key.
        line: usize,
    },
    /// The key is marked `@revoked`.
    Revoked,
}

impl Verdict {
    /// Whether the connection may proceed.
    pub fn accepted(&self) -> bool {
        matches!(
            self,
            Verdict::Trusted | Verdict::Learned | Verdict::Unchecked
        )
    }

    /// A message for a refused verdict.
    pub fn message(&self, name: &str, path: &Path, algo: &str) -> String {
        match self {
            Verdict::Unknown => format!(
                "host key for {name} ({algo}) is not in {} (strict checking; use --host-key-check accept-new to learn it)",
                path.display()
            ),
            Verdict::Changed { line } => format!(
                "host key for {name} ({algo}) does not match the one at {}:{line}: possible man-in-the-middle attack",
                path.display()
            ),
            Verdict::Revoked => format!("host key for {name} ({algo}) is marked @revoked"),
            _ => String::new(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: KeyData,
    line: usize,
}

#[derive(Debug)]
struct Hashed {
    salt: Vec<u8>,
    hash: Vec<u8>,
    entry: Entry,
}

#[derive(Debug)]
struct Pattern {
    patterns: Vec<String>,
    entry: Entry,
}

#[derive(Debug, Default)]
struct Parsed {
    plain: HashMap<String, Vec<Entry>>,
    hashed: Vec<Hashed>,
    patterns: Vec<Pattern>,
    revoked: HashSet<KeyData>,
    lines: usize,
}

/// A parsed known_hosts file shared by all shards of a run.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    mode: HostKeyCheck,
    state: Mutex<Parsed>,
}

/// The name OpenSSH looks a host up by: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

impl KnownHosts {
    /// Loads `path`. A missing file is an empty store (and is created on the first learned host in
    /// accept-new mode). Unparsable lines are skipped with a warning naming the line, as OpenSSH
    /// does.
    pub fn load(path: &Path, mode: HostKeyCheck) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(Error::KnownHosts {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Self::parse_text(&text, path, mode))
    }

    /// A store parsed from `text`, the contents of the known_hosts file at `path` (which is
    /// named in warnings and receives learned hosts in accept-new mode). Unparsable lines are
    /// skipped as in [`load`](Self::load).
    pub fn parse_text(text: &str, path: &Path, mode: HostKeyCheck) -> Self {
        KnownHosts {
            path: path.to_path_buf(),
            mode,
            state: Mutex::new(parse(text, path)),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checking mode.
    pub fn mode(&self) -> HostKeyCheck {
        self.mode
    }

    /// Checks `key` for `host:port` under the store's mode, learning it in accept-new mode.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        if self.mode == HostKeyCheck::Off {
            return Verdict::Unchecked;
        }
        let name = lookup_name(host, port);
        let data = key.key_data();
        let mut state = self.state.lock();
        let verdict = state.lookup(&name, data);
        if verdict == Verdict::Unknown && self.mode == HostKeyCheck::AcceptNew {
            return match self.learn(&mut state, name, key) {
                Ok(()) => Verdict::Learned,
                Err(e) => {
                    tracing::warn!("cannot record a new host key: {e}");
                    // The key was accepted for this run; failing the host would not make the
                    // file writable.
                    Verdict::Learned
                }
            };
        }
        verdict
    }

    fn learn(&self, state: &mut Parsed, name: String, key: &PublicKey) -> std::io::Result<()> {
        state.lines += 1;
        let line_no = state.lines;
        let encoded = key.to_openssh().map_err(std::io::Error::other)?;
        // Drop any comment: `algo base64`.
        let mut parts = encoded.split_whitespace();
        let algo = parts.next().unwrap_or_default();
        let b64 = parts.next().unwrap_or_default();
        let line = format!("{name} {algo} {b64}\n");
        let plain = is_plain_name(&name);
        state.plain.entry(name).or_default().push(Entry {
            key: key.key_data().clone(),
            line: line_no,
        });
        if !plain {
            // Written as is, the name would read back as a pattern (`*`, `?`, `!`), a list
            // (`,`), a marker, a comment or several fields, and trust the key for other hosts.
            return Err(std::io::Error::other(format!(
                "{line:?} would not read back as one host name; trusted for this run only"
            )));
        }
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        // A hand-edited file may end without a newline: appending there would glue the new
        // entry onto its last line and garble both.
        let len = f.metadata()?.len();
        let mut line = line;
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last != [b'\n'] {
                line.insert(0, '\n');
            }
        }
        // One write per line on an O_APPEND file: lines never interleave.
        f.write_all(line.as_bytes())
    }
}

impl Parsed {
    fn lookup(&self, name: &str, data: &KeyData) -> Verdict {
        if self.revoked.contains(data) {
            return Verdict::Revoked;
        }
        let algo = data.algorithm();
        let mut changed = None;
        let mut consider = |e: &Entry| -> bool {
            if &e.key == data {
                return true;
            }
            if e.key.algorithm() == algo && changed.is_none() {
                changed = Some(e.line);
            }
            false
        };
        if let Some(entries) = self.plain.get(name) {
            for e in entries {
                if consider(e) {
                    return Verdict::Trusted;
                }
            }
        }
        for h in &self.hashed {
            if hashed_matches(&h.salt, &h.hash, name) && consider(&h.entry) {
                return Verdict::Trusted;
            }
        }
        for p in &self.patterns {
            if patterns_match(&p.patterns, name) && consider(&p.entry) {
                return Verdict::Trusted;
            }
        }
        // Known hosts with other key types only: OpenSSH would negotiate the known type; here the
        // server's offered type is unknown for this host.
        match changed {
            Some(line) => Verdict::Changed { line },
            None => Verdict::Unknown,
        }
    }
}

/// Whether `name`, written as the first field of a known_hosts line, reads back as exactly this
/// one plain host name (see `parse`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['@', '#', '|'])
        && !name.contains(|c: char| c.is_whitespace() || c.is_control() || ",*?!".contains(c))
}

fn hashed_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok()
}

/// OpenSSH-style pattern list: a name matches when some positive pattern matches and no negated
/// (`!`) pattern does.
fn patterns_match(patterns: &[String], name: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` glob, iterative with single backtrack point (linear-ish, no recursion).
fn glob(pat: &[u8], s: &[u8]) -> bool {
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

fn parse(text: &str, path: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        parsed.lines = line_no;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first);
            first = fields.next().unwrap_or_default();
        }
        let (Some(algo), Some(b64)) = (fields.next(), fields.next()) else {
            tracing::warn!(
                "{}:{line_no}: malformed known_hosts line skipped",
                path.display()
            );
            continue;
        };
        let key = match russh::keys::parse_public_key_base64(b64) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(
                    "{}:{line_no}: unreadable {algo} key skipped: {e}",
                    path.display()
                );
                continue;
            }
        };
        let data = key.key_data().clone();
        match marker {
            Some("@revoked") => {
                parsed.revoked.insert(data);
                continue;
            }
            Some(other) => {
                // @cert-authority: host certificates are not supported yet.
                tracing::debug!("{}:{line_no}: {other} entry ignored", path.display());
                continue;
            }
            None => {}
        }
        let entry = || Entry {
            key: data.clone(),
            line: line_no,
        };
        if first.starts_with("|1|") {
            let mut parts = first.split('|').skip(2);
            let salt = parts.next().and_then(|s| BASE64.decode(s.as_bytes()).ok());
            let hash = parts.next().and_then(|s| BASE64.decode(s.as_bytes()).ok());
            match (salt, hash) {
                (Some(salt), Some(hash)) => parsed.hashed.push(Hashed {
                    salt,
                    hash,
                    entry: entry(),
                }),
                _ => tracing::warn!(
                    "{}:{line_no}: malformed hashed host skipped",
                    path.display()
                ),
            }
            continue;
        }
        let names: Vec<&str> = first.split(',').collect();
        if names.iter().any(|n| n.contains(['*', '?', '!'])) {
            parsed.patterns.push(Pattern {
                patterns: names.iter().map(|s| s.to_string()).collect(),
                entry: entry(),
            });
        } else {
            for n in names {
                parsed.plain.entry(n.to_string()).or_default().push(entry());
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    fn b64(k: &PublicKey) -> String {
        k.to_openssh().unwrap()
    }

    fn hashed_name(name: &str, salt: &[u8]) -> String {
        let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt)
            .unwrap()
            .chain_update(name.as_bytes())
            .finalize()
            .into_bytes();
        format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(&mac))
    }

    fn store(text: &str, mode: HostKeyCheck) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        let kh = KnownHosts::load(&p, mode).unwrap();
        (dir, kh)
    }

    #[test]
    fn plain_port_hashed_and_pattern_entries() {
        let (k1, k2, k3, k4) = (key(1), key(2), key(3), key(4));
        let text = format!(
            "# comment\n\nweb1,10.0.0.1 {}\n[web2]:2222 {} some comment\n{} {}\n*.dc1,!bad.dc1 {}\n",
            b64(&k1),
            b64(&k2),
            hashed_name("[web3]:2200", b"0123456789abcdefghij"),
            b64(&k3),
            b64(&k4)
        );
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        assert_eq!(kh.check("web1", 22, &k1), Verdict::Trusted);
        assert_eq!(kh.check("10.0.0.1", 22, &k1), Verdict::Trusted);
        assert_eq!(kh.check("web2", 2222, &k2), Verdict::Trusted);
        assert_eq!(kh.check("web2", 22, &k2), Verdict::Unknown);
        assert_eq!(kh.check("web3", 2200, &k3), Verdict::Trusted);
        assert_eq!(kh.check("a.dc1", 22, &k4), Verdict::Trusted);
        assert_eq!(kh.check("bad.dc1", 22, &k4), Verdict::Unknown);
        // Same type, other key: changed, with the line of the recorded key.
        assert_eq!(kh.check("web1", 22, &k2), Verdict::Changed { line: 3 });
    }

    #[test]
    fn revoked_key_fails_even_when_listed() {
        let k1 = key(1);
        let text = format!("web1 {}\n@revoked * {}\n", b64(&k1), b64(&k1));
        let (_d, kh) = store(&text, HostKeyCheck::AcceptNew);
        assert_eq!(kh.check("web1", 22, &k1), Verdict::Revoked);
    }

    #[test]
    fn accept_new_learns_once_and_still_refuses_changed_keys() {
        let (k1, k2) = (key(1), key(2));
        let (_d, kh) = store("", HostKeyCheck::AcceptNew);
        assert_eq!(kh.check("h", 2222, &k1), Verdict::Learned);
        assert_eq!(kh.check("h", 2222, &k1), Verdict::Trusted);
        assert!(matches!(kh.check("h", 2222, &k2), Verdict::Changed { .. }));
        let text = std::fs::read_to_string(kh.path()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("[h]:2222 ssh-ed25519 "), "{text}");
        // The written file is read back the same way.
        let again = KnownHosts::load(kh.path(), HostKeyCheck::Strict).unwrap();
        assert_eq!(again.check("h", 2222, &k1), Verdict::Trusted);
    }

    #[test]
    fn strict_refuses_unknown_and_off_accepts_anything() {
        let (_d, kh) = store("", HostKeyCheck::Strict);
        assert_eq!(kh.check("h", 22, &key(1)), Verdict::Unknown);
        assert!(std::fs::read_to_string(kh.path()).unwrap().is_empty());
        let (_d2, off) = store("", HostKeyCheck::Off);
        assert_eq!(off.check("h", 22, &key(1)), Verdict::Unchecked);
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let k1 = key(1);
        let text = format!(
            "garbage\nweb1 ssh-ed25519 !!!notbase64\nweb1 {}\n",
            b64(&k1)
        );
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        assert_eq!(kh.check("web1", 22, &k1), Verdict::Trusted);
    }

    #[test]
    fn glob_matches_like_openssh() {
        assert!(glob(b"*.example.com", b"a.example.com"));
        assert!(!glob(b"*.example.com", b"example.com"));
        assert!(glob(b"web?", b"web1"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*b*c", b"aXbY"));
        assert!(glob(b"a*b*c", b"aXbYc"));
    }
}

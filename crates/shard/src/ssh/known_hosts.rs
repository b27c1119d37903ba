//! known_hosts, parsed once per run and shared by every shard.
//!
//! russh's own helpers re-read and re-parse the whole file on every lookup (1.5 ms per lookup on a
//! 10,000-line file, minutes of CPU for a fleet run), compare key comments, and know neither
//! wildcards, `@cert-authority` nor `@revoked`. This store reads the file once into:
//! - an index of the plain-name lines: for every name, a hash of its lookup name (`host` for
//!   port 22, `[host]:port` otherwise) and where its line is, sorted by hash. Nothing of such a
//!   line is copied or decoded until a host it names is looked up (a 100,000-line file costs
//!   ≈ 22 ms of start-up, where decoding every key cost ≈ 170 ms); a line is found again by
//!   hash, its name compared, its key decoded then,
//! - a list of hashed (`|1|salt|hash`) entries, checked with HMAC-SHA1,
//! - a list of wildcard patterns (`*`, `?`, `!` negation),
//! - the `@cert-authority` lines (CA keys with the names they vouch for),
//! - the set of revoked keys (`@revoked`), which fail a host whatever else says.
//!
//! The parsed file is immutable and read without a lock. A host is checked in two steps:
//! 1. Before connecting, [`KnownHosts::host_keys`] collects every entry naming the host (one scan
//!    of the hashed and pattern entries per host); [`HostKeys::preferences`] says which host-key
//!    types to ask the server for first, as OpenSSH does, so that a host known by its RSA key is
//!    not failed because the server would rather show its Ed25519 key.
//! 2. During the handshake, [`KnownHosts::verify_key`] or [`KnownHosts::verify_cert`] checks the key or certificate the server
//!    presented against that snapshot.
//!
//! Several keys per host: the host is trusted when any of them is the server's key; a key of the
//! same type that differs is a changed key. Keys are compared by key data, never by comment.
//!
//! Host certificates (`@cert-authority`): accepted when signed by a CA key of a line naming the
//! host, of host type, valid now, with the host among its principals (or no principals), and no
//! critical option; as OpenSSH, a certificate that fails this is checked again as a plain key.
//!
//! `accept-new` appends one line per newly learned host under a lock, after recording it in the
//! map, so 10,000 hosts learned at once give exactly 10,000 lines, none lost or duplicated. With
//! hashing on ([`KnownHosts::with_hashing`], `HashKnownHosts yes`), the line's name is written
//! hashed (`|1|salt|hash`) as `ssh-keygen -H` would.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey};
use sha1::Sha1;

use crate::Error;
use fleetsh_core::HostKeyCheck;

/// The outcome of checking a server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is known for this host, or its certificate is signed by a trusted CA.
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
    /// The host certificate's CA key is marked `@revoked`.
    CaRevoked,
    /// The server presented a host certificate that is not acceptable (see `reason`), and its
    /// key is not known as a plain key either.
    CertRejected {
        /// What failed: unknown CA, expired, wrong principal, ...
        reason: String,
    },
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
            Verdict::CaRevoked => format!(
                "host certificate for {name} ({algo}) is signed by a CA key marked @revoked in {}",
                path.display()
            ),
            Verdict::CertRejected { reason } => format!(
                "host certificate for {name} ({algo}) refused: {reason}; its key is not in {} either",
                path.display()
            ),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: KeyData,
    line: usize,
}

/// How a line names its hosts.
#[derive(Debug)]
enum Names {
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// A comma-separated pattern list (plain names included).
    List(Vec<String>),
}

impl Names {
    fn matches(&self, name: &str) -> bool {
        match self {
            Names::Hashed { salt, hash } => hashed_matches(salt, hash, name),
            Names::List(patterns) => patterns_match(patterns, name),
        }
    }
}

/// The file as read: never changed after parsing.
#[derive(Default)]
struct Parsed {
    /// The file's text: the plain-name lines are read from it on lookup.
    text: String,
    /// One slot per name of a plain-name line, sorted by the name's hash (stable: a name's lines
    /// stay in file order).
    plain: Vec<Slot>,
    /// Hashed and wildcard entries: matched one by one.
    scanned: Vec<(Names, Entry)>,
    /// `@cert-authority` lines.
    cas: Vec<(Names, Entry)>,
    revoked: HashSet<KeyData>,
    lines: usize,
}

impl std::fmt::Debug for Parsed {
    /// Counts, not contents: the file's text can be megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("lines", &self.lines)
            .field("plain_names", &self.plain.len())
            .field("scanned", &self.scanned.len())
            .field("cas", &self.cas.len())
            .field("revoked", &self.revoked.len())
            .finish()
    }
}

/// A name of a plain-name line: the name's [`name_hash`], the byte offset of its line in
/// [`Parsed::text`] and its line number.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    offset: usize,
    line: usize,
}

/// FNV-1a: the index's hash of a lookup name (a match is confirmed by comparing the name).
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fields of a known_hosts line: its marker, its names and its key.
struct Fields<'a> {
    marker: Option<&'a str>,
    names: &'a str,
    algo: &'a str,
    b64: &'a str,
}

/// Splits a trimmed, non-comment line at spaces and tabs (ASCII whitespace, as OpenSSH); `None`
/// when it has too few fields.
fn fields(line: &str) -> Option<Fields<'_>> {
    let mut fields = line.split_ascii_whitespace();
    let mut names = fields.next()?;
    let mut marker = None;
    if names.starts_with('@') {
        marker = Some(names);
        names = fields.next()?;
    }
    Some(Fields {
        marker,
        names,
        algo: fields.next()?,
        b64: fields.next()?,
    })
}

impl Fields<'_> {
    /// The line's key as an entry of line `line`; `None`, with a warning naming the file and
    /// line, when the key cannot be read.
    fn entry(&self, line: usize, path: &Path) -> Option<Entry> {
        match russh::keys::parse_public_key_base64(self.b64) {
            Ok(k) => Some(Entry {
                key: k.key_data().clone(),
                line,
            }),
            Err(e) => {
                tracing::warn!(
                    "{}:{line}: unreadable {} key skipped: {e}",
                    path.display(),
                    self.algo
                );
                None
            }
        }
    }
}

/// Whether the names field of a line lists only plain names (no pattern, no hash).
fn all_plain(names: &str) -> bool {
    !names.starts_with("|1|") && !names.contains(['*', '?', '!'])
}

impl Parsed {
    /// The entries of the plain-name lines naming `name`, in file order, their keys decoded now.
    fn plain_entries(&self, name: &str, path: &Path) -> Vec<Entry> {
        let hash = name_hash(name);
        let first = self.plain.partition_point(|s| s.hash < hash);
        let mut out = Vec::new();
        for slot in self.plain.iter().skip(first).take_while(|s| s.hash == hash) {
            let line = self
                .text
                .get(slot.offset..)
                .and_then(|rest| rest.lines().next())
                .unwrap_or_default()
                .trim_ascii();
            let Some(f) = fields(line) else { continue };
            if !f.names.split(',').any(|n| n == name) {
                continue;
            }
            out.extend(f.entry(slot.line, path));
        }
        out
    }
}

/// Hosts learned during this engine's life (accept-new).
#[derive(Debug, Default)]
struct Learned {
    plain: HashMap<String, Vec<Entry>>,
    lines: usize,
    /// A write already failed (warned once per file, not once per host).
    write_failed: bool,
}

/// A parsed known_hosts file shared by all shards of a run.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    mode: HostKeyCheck,
    hash: bool,
    parsed: Parsed,
    learned: Mutex<Learned>,
}

/// The known_hosts entries naming one host: taken before connecting, used to order the host-key
/// algorithms and to check the server's key.
#[derive(Debug, Clone, Default)]
pub struct HostKeys {
    name: String,
    keys: Vec<Entry>,
    cas: Vec<Entry>,
}

/// Host-key algorithm preferences for one host, from its known_hosts entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KeyPrefs {
    /// Bit set of the key families known for the host (see [`family`]).
    pub known: u8,
    /// A `@cert-authority` line names the host: ask for certificates first.
    pub certificates: bool,
}

impl KeyPrefs {
    /// Whether these preferences need no change to the client's algorithm list.
    pub fn is_default(&self) -> bool {
        self.known == 0 && !self.certificates
    }

    /// `list` reordered: the algorithms of known families first (each group in `list`'s order).
    pub fn order(&self, list: &[Algorithm]) -> Vec<Algorithm> {
        let known = |a: &Algorithm| family(a).is_some_and(|f| self.known & f != 0);
        list.iter()
            .filter(|a| known(a))
            .chain(list.iter().filter(|a| !known(a)))
            .cloned()
            .collect()
    }
}

/// A one-bit family of a host-key algorithm: RSA keys serve every RSA signature hash.
pub fn family(a: &Algorithm) -> Option<u8> {
    match a {
        Algorithm::Ed25519 => Some(1),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        } => Some(2),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        } => Some(4),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        } => Some(8),
        Algorithm::Rsa { .. } => Some(16),
        _ => None,
    }
}

impl HostKeys {
    /// Which key types to ask the server for first.
    pub fn preferences(&self) -> KeyPrefs {
        KeyPrefs {
            known: self
                .keys
                .iter()
                .filter_map(|e| family(&e.key.algorithm()))
                .fold(0, |a, b| a | b),
            certificates: !self.cas.is_empty(),
        }
    }
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
        Ok(Self::from_parsed(parse(text, path), path, mode))
    }

    /// A store parsed from `text`, the contents of the known_hosts file at `path` (which is
    /// named in warnings and receives learned hosts in accept-new mode). Unparsable lines are
    /// skipped as in [`load`](Self::load).
    pub fn parse_text(text: &str, path: &Path, mode: HostKeyCheck) -> Self {
        Self::from_parsed(parse(text.to_owned(), path), path, mode)
    }

    fn from_parsed(parsed: Parsed, path: &Path, mode: HostKeyCheck) -> Self {
        let lines = parsed.lines;
        KnownHosts {
            path: path.to_path_buf(),
            mode,
            hash: false,
            parsed,
            learned: Mutex::new(Learned {
                plain: HashMap::new(),
                lines,
                write_failed: false,
            }),
        }
    }

    /// Whether learned hosts are written hashed (`|1|salt|hash`, OpenSSH's `HashKnownHosts`).
    pub fn with_hashing(mut self, hash: bool) -> Self {
        self.hash = hash;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checking mode.
    pub fn mode(&self) -> HostKeyCheck {
        self.mode
    }

    /// Every entry naming `host:port` (nothing when checking is off).
    pub fn host_keys(&self, host: &str, port: u16) -> HostKeys {
        let name = lookup_name(host, port);
        if self.mode == HostKeyCheck::Off {
            return HostKeys {
                name,
                ..HostKeys::default()
            };
        }
        let p = &self.parsed;
        let mut keys = p.plain_entries(&name, &self.path);
        // A hashed entry costs one HMAC per host: with thousands of them, scanning them all for
        // every host of a fleet run is minutes of CPU. A host that plain entries name is not
        // looked for among the hashed ones (wildcard patterns are cheap and always scanned).
        let skip_hashed = !keys.is_empty();
        keys.extend(
            p.scanned
                .iter()
                .filter(|(n, _)| !(skip_hashed && matches!(n, Names::Hashed { .. })))
                .filter(|(n, _)| n.matches(&name))
                .map(|(_, e)| e.clone()),
        );
        if let Some(learned) = self.learned.lock().plain.get(&name) {
            keys.extend(learned.iter().cloned());
        }
        let cas = p
            .cas
            .iter()
            .filter(|(n, _)| n.matches(&name))
            .map(|(_, e)| e.clone())
            .collect();
        HostKeys { name, keys, cas }
    }

    /// Checks `key` for `host:port` under the store's mode, learning it in accept-new mode.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let known = self.host_keys(host, port);
        self.verify_key(&known, key.key_data())
    }

    /// Checks the plain key the server presented against the host's entries, learning it in
    /// accept-new mode.
    pub fn verify_key(&self, known: &HostKeys, data: &KeyData) -> Verdict {
        if self.mode == HostKeyCheck::Off {
            return Verdict::Unchecked;
        }
        if self.parsed.revoked.contains(data) {
            return Verdict::Revoked;
        }
        match compare(&known.keys, data) {
            Verdict::Unknown => self.unknown(&known.name, data),
            v => v,
        }
    }

    /// Checks a host certificate presented by `host` (the name connected to, without port).
    pub fn verify_cert(&self, known: &HostKeys, host: &str, cert: &Certificate) -> Verdict {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_cert_at(known, host, cert, now)
    }

    /// [`verify_cert`](Self::verify_cert) at `now` (Unix seconds).
    pub fn verify_cert_at(
        &self,
        known: &HostKeys,
        host: &str,
        cert: &Certificate,
        now: u64,
    ) -> Verdict {
        if self.mode == HostKeyCheck::Off {
            return Verdict::Unchecked;
        }
        if self.parsed.revoked.contains(cert.signature_key()) {
            return Verdict::CaRevoked;
        }
        if self.parsed.revoked.contains(cert.public_key()) {
            return Verdict::Revoked;
        }
        let reason = match cert_problem(known, host, cert, now) {
            None => return Verdict::Trusted,
            Some(r) => r,
        };
        // As OpenSSH: a certificate that does not pass is checked again as its plain key.
        match compare(&known.keys, cert.public_key()) {
            Verdict::Unknown if known.cas.is_empty() => {
                // No CA vouches for this host: its certificate is as good as its bare key.
                match self.unknown(&known.name, cert.public_key()) {
                    Verdict::Unknown => Verdict::CertRejected { reason },
                    v => v,
                }
            }
            Verdict::Unknown => Verdict::CertRejected { reason },
            v => v,
        }
    }

    /// A key no snapshot entry knows: maybe learned meanwhile by another connection to the same
    /// name; learned now in accept-new mode.
    fn unknown(&self, name: &str, data: &KeyData) -> Verdict {
        let mut learned = self.learned.lock();
        if let Some(entries) = learned.plain.get(name) {
            match compare(entries, data) {
                Verdict::Unknown => {}
                v => return v,
            }
        }
        if self.mode != HostKeyCheck::AcceptNew {
            return Verdict::Unknown;
        }
        if let Err(e) = self.learn(&mut learned, name.to_string(), data)
            && !std::mem::replace(&mut learned.write_failed, true)
        {
            // The key was accepted for this run; failing the host would not make the file
            // writable. Said once per file.
            tracing::warn!(
                "cannot record new host keys in {} (first: {name}): {e}; the keys are accepted for this run only",
                self.path.display()
            );
        }
        Verdict::Learned
    }

    fn learn(&self, state: &mut Learned, name: String, key: &KeyData) -> std::io::Result<()> {
        state.lines += 1;
        let line_no = state.lines;
        let encoded = PublicKey::new(key.clone(), "")
            .to_openssh()
            .map_err(std::io::Error::other)?;
        // Drop any comment: `algo base64`.
        let mut parts = encoded.split_whitespace();
        let algo = parts.next().unwrap_or_default();
        let b64 = parts.next().unwrap_or_default();
        let written = if self.hash {
            hash_name(&name)?
        } else {
            name.clone()
        };
        let line = format!("{written} {algo} {b64}\n");
        let plain = is_plain_name(&name);
        state.plain.entry(name).or_default().push(Entry {
            key: key.clone(),
            line: line_no,
        });
        if !plain && !self.hash {
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

/// Trusted when some entry holds `data`; else changed when one holds another key of its type.
fn compare(entries: &[Entry], data: &KeyData) -> Verdict {
    let algo = data.algorithm();
    let mut changed = None;
    for e in entries {
        if &e.key == data {
            return Verdict::Trusted;
        }
        if changed.is_none() && e.key.algorithm() == algo {
            changed = Some(e.line);
        }
    }
    match changed {
        Some(line) => Verdict::Changed { line },
        None => Verdict::Unknown,
    }
}

/// Why `cert` is not an acceptable host certificate for `host`, in OpenSSH's order of checks;
/// `None` when it is.
fn cert_problem(known: &HostKeys, host: &str, cert: &Certificate, now: u64) -> Option<String> {
    let ca = cert.signature_key();
    let fingerprint = || ca.fingerprint(HashAlg::Sha256).to_string();
    if !known.cas.iter().any(|e| &e.key == ca) {
        return Some(if known.cas.is_empty() {
            format!(
                "signed by an unknown CA ({}): no @cert-authority line names {}",
                fingerprint(),
                known.name
            )
        } else {
            format!(
                "signed by an unknown CA ({}): not the @cert-authority key for {}",
                fingerprint(),
                known.name
            )
        });
    }
    if cert.cert_type() != CertType::Host {
        return Some("it is a user certificate, not a host certificate".into());
    }
    if cert.verify_signature().is_err() {
        return Some(format!(
            "its CA signature ({}) does not verify",
            fingerprint()
        ));
    }
    if now < cert.valid_after() {
        return Some(format!(
            "not valid yet (valid from {})",
            utc(cert.valid_after())
        ));
    }
    if now >= cert.valid_before() {
        return Some(format!(
            "expired (valid until {})",
            utc(cert.valid_before())
        ));
    }
    let principals = cert.valid_principals();
    if !principals.is_empty()
        && !principals
            .iter()
            .any(|p| glob(p.as_bytes(), host.as_bytes()))
    {
        return Some(format!(
            "wrong principal: valid for {}, not for {host}",
            principals.join(",")
        ));
    }
    if !cert.critical_options().is_empty() {
        let names: Vec<&str> = cert.critical_options().keys().map(String::as_str).collect();
        return Some(format!("unsupported critical options: {}", names.join(",")));
    }
    None
}

/// `YYYY-MM-DD hh:mm:ss UTC` for Unix seconds (certificate validity in messages).
fn utc(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    fleetsh_core::clock::utc_text(secs)
}

/// `|1|salt|hash` for `name`, with a fresh random salt (as `ssh-keygen -H`).
fn hash_name(name: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt)
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .chain_update(name.as_bytes())
        .finalize()
        .into_bytes();
    Ok(format!(
        "|1|{}|{}",
        BASE64.encode(&salt),
        BASE64.encode(&mac)
    ))
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

/// `*` and `?` glob, case-insensitive: the same matcher as ssh_config's `Host` patterns.
pub(crate) use fleetsh_core::ssh_config::glob;

fn parse(text: String, path: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    let mut offset = 0;
    for (idx, chunk) in text.split_inclusive('\n').enumerate() {
        let line_no = idx + 1;
        let at = offset;
        offset += chunk.len();
        parsed.lines = line_no;
        let line = chunk.trim_ascii();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(f) = fields(line) else {
            tracing::warn!(
                "{}:{line_no}: malformed known_hosts line skipped",
                path.display()
            );
            continue;
        };
        if f.marker.is_none() && all_plain(f.names) {
            // Indexed only: read again, and its key decoded, when a host it names is looked up.
            parsed.plain.extend(f.names.split(',').map(|n| Slot {
                hash: name_hash(n),
                offset: at,
                line: line_no,
            }));
            continue;
        }
        let Some(entry) = f.entry(line_no, path) else {
            continue;
        };
        if f.marker == Some("@revoked") {
            parsed.revoked.insert(entry.key);
            continue;
        }
        let names = if let Some(hashed) = f.names.strip_prefix("|1|") {
            let mut parts = hashed.split('|');
            let salt = parts.next().and_then(|s| BASE64.decode(s.as_bytes()).ok());
            let hash = parts.next().and_then(|s| BASE64.decode(s.as_bytes()).ok());
            match (salt, hash) {
                (Some(salt), Some(hash)) => Names::Hashed { salt, hash },
                _ => {
                    tracing::warn!(
                        "{}:{line_no}: malformed hashed host skipped",
                        path.display()
                    );
                    continue;
                }
            }
        } else {
            Names::List(f.names.split(',').map(str::to_string).collect())
        };
        match f.marker {
            None => parsed.scanned.push((names, entry)),
            Some("@cert-authority") => parsed.cas.push((names, entry)),
            Some(other) => tracing::warn!(
                "{}:{line_no}: unknown marker {other}: line skipped",
                path.display()
            ),
        }
    }
    parsed.plain.sort_by_key(|s| s.hash);
    parsed.text = text;
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
    fn plain_lines_are_found_by_exact_name_in_file_order() {
        let (k1, k2, k3) = (key(1), key(2), key(3));
        // Names that are prefixes of each other, a list, CRLF endings, a name on two lines, a
        // bad key on one host's line, and a last line without a newline.
        let text = format!(
            "web1 {}\r\nweb10,web11,[web1]:2222 {}\r\nweb11 {}\nbad ssh-ed25519 !!!\nweb12 {}",
            b64(&k1),
            b64(&k2),
            b64(&k3),
            b64(&k3)
        );
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        assert_eq!(kh.check("web1", 22, &k1), Verdict::Trusted);
        assert_eq!(kh.check("web1", 22, &k2), Verdict::Changed { line: 1 });
        assert_eq!(kh.check("web10", 22, &k2), Verdict::Trusted);
        assert_eq!(kh.check("web1", 2222, &k2), Verdict::Trusted);
        assert_eq!(kh.check("web11", 22, &k2), Verdict::Trusted);
        assert_eq!(kh.check("web11", 22, &k3), Verdict::Trusted);
        // The first recorded line of the type is the one a changed key names.
        assert_eq!(kh.check("web11", 22, &k1), Verdict::Changed { line: 2 });
        assert_eq!(kh.check("web", 22, &k1), Verdict::Unknown);
        assert_eq!(kh.check("bad", 22, &k1), Verdict::Unknown);
        assert_eq!(kh.check("web12", 22, &k3), Verdict::Trusted);
        // Learned lines are numbered after the file's last line.
        assert_eq!(kh.parsed.lines, 5);
    }

    #[test]
    fn every_host_of_a_large_file_is_found_with_its_line() {
        let keys: Vec<PublicKey> = (0..4).map(key).collect();
        let text: String = (0..20_000)
            .map(|i| {
                format!(
                    "10.{}.{}.{} {}\n",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255,
                    b64(&keys[i % 4])
                )
            })
            .collect();
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        for i in (0..20_000).step_by(7) {
            let host = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            assert_eq!(
                kh.check(&host, 22, &keys[i % 4]),
                Verdict::Trusted,
                "{host}"
            );
            assert_eq!(
                kh.check(&host, 22, &keys[(i + 1) % 4]),
                Verdict::Changed { line: i + 1 },
                "{host}"
            );
        }
        assert_eq!(kh.check("10.1.0.0", 22, &keys[0]), Verdict::Unknown);
    }

    fn rsa_key() -> PublicKey {
        // A fixed 2048-bit RSA public key (generating one in a test is slow).
        PublicKey::from_openssh(RSA_PUB).unwrap()
    }

    const RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDUCItXmJEC/fGBig4SoL10qkI3R8/j/XnEnIZRM/o9T4m4uhKsY2n6vmrZU0nhOqsiFj9lFtjnUq/Q6tBm54DFPer8IyFnIcq1jXL+rOvHe+ecRzf1txBWEshLUCSBGj1EORG6nAHRvUS7iY/KCKyuc6C9yR69MRz04pHtP5RCCO6Tr63Kb5FImvsxUz/HMyZVW5VPm59aeBGRoflJPoBcaTDMtTSREAtGHkzHkgCwrWJRTTXXZdGWva58KmLNq3hnROSpAm17zNRzAzTM0uLHs709LPHXflwdl74XjF3iD0TbWgRPFiW9rVcQW916d4Eo/cpks8oa+nRBAmPfyUXt fixed";

    #[test]
    fn several_key_types_per_host_any_match_is_trusted() {
        let (ed, ed_other) = (key(1), key(2));
        let rsa = rsa_key();
        let text = format!("web1 {}\nweb1 {}\n", b64(&rsa), b64(&ed));
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        assert_eq!(kh.check("web1", 22, &rsa), Verdict::Trusted);
        assert_eq!(kh.check("web1", 22, &ed), Verdict::Trusted);
        // Another key of a known type is a changed key, whatever the other types say.
        assert_eq!(
            kh.check("web1", 22, &ed_other),
            Verdict::Changed { line: 2 }
        );
        // Known by RSA only: RSA algorithms are asked for first, Ed25519 later.
        let (_d2, kh) = store(&format!("web1 {}\n", b64(&rsa)), HostKeyCheck::Strict);
        let prefs = kh.host_keys("web1", 22).preferences();
        assert!(!prefs.is_default());
        let order = prefs.order(&russh::Preferred::DEFAULT.key);
        assert!(matches!(order[0], Algorithm::Rsa { .. }), "{order:?}");
        assert!(matches!(order[3], Algorithm::Ed25519), "{order:?}");
        assert_eq!(order.len(), russh::Preferred::DEFAULT.key.len());
        // A host known by nothing, or Ed25519 first, keeps the default order.
        assert!(kh.host_keys("web9", 22).preferences().is_default());
    }

    const NOW: u64 = 1_800_000_000;

    fn cert(
        ca_seed: u8,
        host_seed: u8,
        kind: CertType,
        principals: &[&str],
        valid: (u64, u64),
    ) -> Certificate {
        use russh::keys::ssh_key::certificate::Builder;
        let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[ca_seed; 32]));
        let mut b = Builder::new(
            [7u8; 16],
            key(host_seed).key_data().clone(),
            valid.0,
            valid.1,
        )
        .unwrap();
        b.cert_type(kind).unwrap();
        b.key_id("test").unwrap();
        if principals.is_empty() {
            b.all_principals_valid().unwrap();
        }
        for p in principals {
            b.valid_principal(*p).unwrap();
        }
        b.sign(&ca).unwrap()
    }

    fn verify(kh: &KnownHosts, host: &str, port: u16, c: &Certificate) -> Verdict {
        kh.verify_cert_at(&kh.host_keys(host, port), host, c, NOW)
    }

    #[test]
    fn host_certificates_signed_by_a_listed_ca() {
        let ca = key(10);
        let text = format!("@cert-authority *.dc1,[10.0.0.*]:2222 {}\n", b64(&ca));
        let (_d, kh) = store(&text, HostKeyCheck::Strict);
        let window = (NOW - 100, NOW + 100);
        let good = cert(10, 1, CertType::Host, &["web1.dc1", "10.0.0.5"], window);
        assert_eq!(verify(&kh, "web1.dc1", 22, &good), Verdict::Trusted);
        assert_eq!(verify(&kh, "10.0.0.5", 2222, &good), Verdict::Trusted);
        // Certificate types come first for hosts a CA vouches for.
        assert!(kh.host_keys("web1.dc1", 22).preferences().certificates);
        assert!(!kh.host_keys("web1.dc2", 22).preferences().certificates);
        let reason = |v: Verdict| match v {
            Verdict::CertRejected { reason } => reason,
            other => format!("not rejected: {other:?}"),
        };
        // Wrong principal.
        let r = reason(verify(&kh, "web2.dc1", 22, &good));
        assert!(
            r.contains("wrong principal") && r.contains("web2.dc1"),
            "{r}"
        );
        // Expired, and not yet valid.
        let old = cert(10, 1, CertType::Host, &["web1.dc1"], (NOW - 200, NOW - 100));
        let r = reason(verify(&kh, "web1.dc1", 22, &old));
        assert!(r.contains("expired"), "{r}");
        let early = cert(10, 1, CertType::Host, &["web1.dc1"], (NOW + 100, NOW + 200));
        assert!(reason(verify(&kh, "web1.dc1", 22, &early)).contains("not valid yet"));
        // Signed by another CA; a CA for other names only.
        let other = cert(11, 1, CertType::Host, &["web1.dc1"], window);
        let r = reason(verify(&kh, "web1.dc1", 22, &other));
        assert!(r.contains("unknown CA") && r.contains("SHA256:"), "{r}");
        let r = reason(verify(&kh, "web1.dc2", 22, &good));
        assert!(r.contains("no @cert-authority line names web1.dc2"), "{r}");
        // A user certificate is not a host certificate.
        let user = cert(10, 1, CertType::User, &["web1.dc1"], window);
        assert!(reason(verify(&kh, "web1.dc1", 22, &user)).contains("user certificate"));
        // No principals: valid for any host the CA line names.
        let any = cert(10, 1, CertType::Host, &[], window);
        assert_eq!(verify(&kh, "web7.dc1", 22, &any), Verdict::Trusted);
        // The message names the host, what failed and the file.
        let msg = verify(&kh, "web1.dc1", 22, &old).message(
            "web1.dc1",
            kh.path(),
            "ssh-ed25519-cert-v01@openssh.com",
        );
        assert!(msg.contains("host certificate for web1.dc1"), "{msg}");
        assert!(
            msg.contains("expired (valid until 2027-01-15 07:58:20 UTC)"),
            "{msg}"
        );
    }

    #[test]
    fn revoked_ca_or_host_key_refuses_a_valid_certificate() {
        let ca = key(10);
        let window = (NOW - 100, NOW + 100);
        let good = cert(10, 1, CertType::Host, &["web1"], window);
        let text = format!("@cert-authority * {}\n@revoked * {}\n", b64(&ca), b64(&ca));
        let (_d, kh) = store(&text, HostKeyCheck::AcceptNew);
        assert_eq!(verify(&kh, "web1", 22, &good), Verdict::CaRevoked);
        let text = format!(
            "@cert-authority * {}\n@revoked * {}\n",
            b64(&ca),
            b64(&key(1))
        );
        let (_d, kh) = store(&text, HostKeyCheck::AcceptNew);
        assert_eq!(verify(&kh, "web1", 22, &good), Verdict::Revoked);
    }

    #[test]
    fn rejected_certificate_falls_back_to_its_plain_key() {
        let window = (NOW - 200, NOW - 100);
        let expired = cert(10, 1, CertType::Host, &["web1"], window);
        // No CA names the host, but its key is known: trusted, as OpenSSH.
        let (_d, kh) = store(&format!("web1 {}\n", b64(&key(1))), HostKeyCheck::Strict);
        assert_eq!(verify(&kh, "web1", 22, &expired), Verdict::Trusted);
        // A CA names the host and the certificate failed: never learned in accept-new.
        let text = format!("@cert-authority * {}\n", b64(&key(10)));
        let (_d, kh) = store(&text, HostKeyCheck::AcceptNew);
        assert!(matches!(
            verify(&kh, "web1", 22, &expired),
            Verdict::CertRejected { .. }
        ));
        assert_eq!(std::fs::read_to_string(kh.path()).unwrap(), text);
    }

    #[test]
    fn accept_new_can_write_hashed_names() {
        let k1 = key(1);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        let kh = KnownHosts::load(&p, HostKeyCheck::AcceptNew)
            .unwrap()
            .with_hashing(true);
        assert_eq!(kh.check("web1", 2222, &k1), Verdict::Learned);
        assert_eq!(kh.check("web1", 2222, &k1), Verdict::Trusted);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("|1|") && !text.contains("web1"), "{text}");
        assert_eq!(text.lines().count(), 1);
        let again = KnownHosts::load(&p, HostKeyCheck::Strict).unwrap();
        assert_eq!(again.check("web1", 2222, &k1), Verdict::Trusted);
        assert_eq!(again.check("web1", 22, &k1), Verdict::Unknown);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(u64::MAX), "forever");
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

//! A real OpenSSH `sshd` that a test or benchmark starts on loopback.
//!
//! [`Builder::start`] runs `/usr/sbin/sshd -D -e -f <config>` as a child process listening on one
//! port of each of its addresses (by default 127.0.0.1 to 127.0.0.4: one server is four
//! distinct hosts to the engine). Its temporary directory holds the host key, the client key
//! and its `authorized_keys`, a user CA the server trusts, a matching known_hosts, and a second
//! host key (`forged_known_hosts` names it) and client key that no one trusts, for failure
//! tests. The server is stopped by its PID (the child this process started) when dropped.
//!
//! [`shared`] hands out one server to every test running at the same time: it starts one only
//! when no test holds one, and the last holder's drop stops it. So tests share a server when
//! they overlap, do not depend on each other, and never leave an `sshd` behind when one of them
//! panics. (A `static` server would never be dropped: its `sshd` would outlive the test binary.)
//!
//! The server logs in as the user running the tests (`id -un`): as root it may log in anyone,
//! as another user it can only log in that same user.
//!
//! Remote shell start-up files: `sshd` runs each command with the user's login shell, and
//! Debian's bash sources `~/.bashrc` for commands run by sshd (it sees `SSH_CLIENT`). An rc file
//! that prints would break output assertions, and a heavy one slows every session. The config
//! sets `SetEnv HOME=<empty dir>`, so the shell looks for its rc files in an empty directory;
//! the commands run unchanged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use fleetsh::{Engine, EngineBuilder, HostResult, HostTarget};

/// The loopback addresses a server listens on by default: four hosts for the engine.
pub const ADDRS: [&str; 4] = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];

const SSHD_MISSING: &str =
    "OpenSSH sshd not found: install openssh-server (apt-get install -y openssh-server)";

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// A running OpenSSH server and the files that go with it.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    /// Its port, the same on every address.
    pub port: u16,
    /// The login user: the user running the tests.
    pub user: String,
    addrs: Vec<String>,
    /// sshd's stderr (`-e`), drained by a thread so a full pipe never blocks the server.
    log: Arc<Mutex<Vec<u8>>>,
    dir: tempfile::TempDir,
}

/// The shared server: started on first use, stopped when the last test holding it ends;
/// panics if it cannot start.
pub fn shared() -> Arc<Sshd> {
    static SHARED: Mutex<Weak<Sshd>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(running) = shared.upgrade() {
        return running;
    }
    let started = Arc::new(Builder::default().start().unwrap_or_else(|e| panic!("{e}")));
    *shared = Arc::downgrade(&started);
    started
}

/// How a server is started: its addresses, log level and extra configuration.
pub struct Builder<'a> {
    addrs: Vec<String>,
    log_level: String,
    extra: Box<dyn FnOnce(&Path) -> String + 'a>,
}

impl Default for Builder<'_> {
    fn default() -> Self {
        Builder {
            addrs: ADDRS.iter().map(ToString::to_string).collect(),
            log_level: "ERROR".into(),
            extra: Box::new(|_| String::new()),
        }
    }
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("addrs", &self.addrs)
            .field("log_level", &self.log_level)
            .finish_non_exhaustive()
    }
}

impl<'a> Builder<'a> {
    /// Listen on these addresses (loopback ones).
    pub fn addrs(mut self, addrs: &[&str]) -> Self {
        self.addrs = addrs.iter().map(ToString::to_string).collect();
        self
    }

    /// sshd's `LogLevel` (default `ERROR`; `DEBUG1` logs each connection's algorithms).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// `extra` is called once the common keys exist in the server's directory: it may create
    /// more files there, and returns lines for sshd_config (more `HostKey`s,
    /// `HostCertificate`, options). sshd keeps the first value of a directive; a `LogLevel`
    /// here replaces the builder's.
    pub fn config(mut self, extra: impl FnOnce(&Path) -> String + 'a) -> Self {
        self.extra = Box::new(extra);
        self
    }

    /// Creates the keys and config and starts `sshd`, waiting until every address answers
    /// with an SSH banner.
    pub fn start(self) -> Result<Sshd, Error> {
        let program = find_sshd()?;
        let dir =
            tempfile::tempdir().map_err(|e| Error(format!("cannot create a temp dir: {e}")))?;
        let p = dir.path();
        for key in [
            "host_ed25519",
            "client_ed25519",
            "other_host_ed25519",
            "other_client_ed25519",
            "user_ca",
        ] {
            try_keygen(&p.join(key), "ed25519")?;
        }
        let io = |what: &str, e: std::io::Error| Error(format!("{what}: {e}"));
        std::fs::copy(p.join("client_ed25519.pub"), p.join("authorized_keys"))
            .map_err(|e| io("write authorized_keys", e))?;
        std::fs::create_dir(p.join("home")).map_err(|e| io("create the empty remote HOME", e))?;
        let (user, root) = login_user()?;
        // Privilege separation: sshd started as root refuses to run without this directory.
        let privsep = Path::new("/run/sshd");
        if root && !privsep.is_dir() {
            std::fs::create_dir_all(privsep).map_err(|e| io("create /run/sshd", e))?;
        }
        let mut extra = penalties_off(&program, p)?.to_string() + &(self.extra)(p);
        if !extra.contains("LogLevel ") {
            extra += &format!("LogLevel {}\n", self.log_level);
        }
        let host_pub = read_public_key(&p.join("host_ed25519.pub"))?;
        let other_pub = read_public_key(&p.join("other_host_ed25519.pub"))?;

        // A port that is free on the first address may be taken on another, or be taken by
        // someone else before sshd binds it: try a few ports.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port(&self.addrs)?;
            let config = p.join("sshd_config");
            std::fs::write(&config, sshd_config(p, &self.addrs, port, &extra))
                .map_err(|e| io("write sshd_config", e))?;
            std::fs::write(
                p.join("known_hosts"),
                known_hosts(&self.addrs, port, &host_pub),
            )
            .map_err(|e| io("write known_hosts", e))?;
            std::fs::write(
                p.join("forged_known_hosts"),
                known_hosts(&self.addrs, port, &other_pub),
            )
            .map_err(|e| io("write forged_known_hosts", e))?;

            let mut child = Command::new(&program)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error(format!("cannot run {}: {e}", program.display())))?;
            let log = Arc::new(Mutex::new(Vec::new()));
            if let Some(mut stderr) = child.stderr.take() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = stderr.read(&mut buf) {
                        lock(&log).extend_from_slice(buf.get(..n).unwrap_or_default());
                    }
                });
            }
            match wait_until_listening(&mut child, &self.addrs, port, &log) {
                Ready::Yes => {
                    return Ok(Sshd {
                        child,
                        port,
                        user,
                        addrs: self.addrs,
                        log,
                        dir,
                    });
                }
                Ready::PortTaken => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("port {port}: {}", text(&log, 0)));
                }
                Ready::No(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    // Let the drain thread collect the last lines.
                    std::thread::sleep(Duration::from_millis(50));
                    return Err(Error(format!(
                        "{} did not start ({why}); its stderr:\n{}",
                        program.display(),
                        text(&log, 0)
                    )));
                }
            }
        }
        Err(Error(format!(
            "sshd found no free port; its stderr:\n{}",
            failures.join("\n")
        )))
    }
}

impl Sshd {
    /// A server of one's own on the default addresses, with `extra` as in
    /// [`Builder::config`]; panics if it cannot start.
    #[track_caller]
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> Sshd {
        Sshd::builder()
            .config(extra)
            .start()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// How to start a server.
    pub fn builder<'a>() -> Builder<'a> {
        Builder::default()
    }

    /// The first address it listens on.
    pub fn addr(&self) -> &str {
        self.addrs.first().map_or("127.0.0.1", String::as_str)
    }

    /// One target per listen address, without port or user (the engine fills them in).
    pub fn targets(&self) -> Vec<HostTarget> {
        self.addrs.iter().map(HostTarget::new).collect()
    }

    /// An engine builder with `shards` shards that trusts this server and logs in with the
    /// authorized key.
    pub fn engine(&self, shards: usize) -> EngineBuilder {
        self.engine_as(&self.path("client_ed25519")).shards(shards)
    }

    /// An engine builder that trusts this server and logs in with `key` only (no agent).
    pub fn engine_as(&self, key: &Path) -> EngineBuilder {
        Engine::builder()
            .user(&self.user)
            .port(self.port)
            .no_agent()
            .identity_file(key)
            .known_hosts(self.path("known_hosts"))
    }

    /// A file of the server's directory (`client_ed25519`, `known_hosts`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What sshd has logged so far, for failure messages.
    pub fn log(&self) -> String {
        text(&self.log, 0)
    }

    /// Bytes logged so far (a mark for [`Sshd::log_since`] and [`Sshd::ciphers_since`]).
    pub fn log_len(&self) -> usize {
        lock(&self.log).len()
    }

    /// What sshd has logged after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        text(&self.log, mark)
    }

    /// The ciphers negotiated by the connections logged after `mark` (with `LogLevel
    /// DEBUG1`), e.g. `chacha20-poly1305@openssh.com`, both directions when they differ; `?`
    /// when none was logged.
    pub fn ciphers_since(&self, mark: usize) -> String {
        let log = text(&self.log, mark);
        let mut seen: Vec<String> = Vec::new();
        for line in log.lines() {
            if let Some((_, rest)) = line.split_once("cipher: ")
                && line.contains("kex: ")
                && let Some(name) = rest.split_whitespace().next()
                && !seen.iter().any(|s| s == name)
            {
                seen.push(name.to_string());
            }
        }
        if seen.is_empty() {
            "?".into()
        } else {
            seen.join("/")
        }
    }

    /// OpenSSH client options for this server: no user config, only the client key, strict
    /// host-key check against the server's known_hosts; `cipher` forces one cipher.
    pub fn ssh_options(&self, cipher: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            self.path("client_ed25519").display().to_string(),
        ];
        for o in [
            "IdentitiesOnly=yes".to_string(),
            "IdentityAgent=none".into(),
            "BatchMode=yes".into(),
            "StrictHostKeyChecking=yes".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            format!("UserKnownHostsFile={}", self.path("known_hosts").display()),
        ] {
            v.push("-o".into());
            v.push(o);
        }
        if let Some(c) = cipher {
            v.push("-c".into());
            v.push(c.into());
        }
        v
    }

    /// Asserts that `r` ran and exited 0, with sshd's log in the failure message.
    #[track_caller]
    pub fn assert_ok(&self, r: &HostResult) {
        assert!(r.is_ok(), "{r:?}\nsshd log:\n{}", self.log());
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Only the listener this process started; sessions still open end with their
        // connections.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(dir: &Path, addrs: &[String], port: u16, extra: &str) -> String {
    let mut c = format!("Port {port}\n");
    for a in addrs {
        c += &format!("ListenAddress {a}:{port}\n");
    }
    let path = |name: &str| dir.join(name).display().to_string();
    c += &format!(
        "HostKey \"{}\"\n\
         AuthorizedKeysFile \"{}\"\n\
         TrustedUserCAKeys \"{}\"\n\
         PidFile \"{}\"\n\
         SetEnv \"HOME={}\"\n",
        path("host_ed25519"),
        path("authorized_keys"),
        path("user_ca.pub"),
        path("sshd.pid"),
        path("home"),
    );
    // MaxStartups: sshd drops new unauthenticated connections at random once the first number
    // are in flight. Tests with many sessions have up to 50 in flight each and may overlap, so
    // that number is 200 rather than 100.
    c += "UsePAM no\n\
          StrictModes no\n\
          PubkeyAuthentication yes\n\
          PasswordAuthentication no\n\
          KbdInteractiveAuthentication no\n\
          PermitRootLogin yes\n\
          MaxStartups 200:30:400\n\
          PrintMotd no\n";
    // File transfers: OpenSSH's own sftp-server binary when installed.
    c += &format!("Subsystem sftp {}\n", sftp_server());
    c += extra;
    c
}

/// OpenSSH's `sftp-server` (Debian: /usr/lib/openssh/sftp-server), else sshd's built-in
/// `internal-sftp` (the same server code, linked into sshd).
pub fn sftp_server() -> String {
    for p in [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
        "/usr/lib/ssh/sftp-server",
    ] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    "internal-sftp".to_string()
}

/// `PerSourcePenalties no` if this sshd knows the option, else nothing.
///
/// OpenSSH 9.8 and later penalise a source address whose connections fail to authenticate, and
/// refuse it for a while once the penalties add up. Every test connects from 127.0.0.1, so the
/// wrong-key tests would lock the other tests out of a shared server. Older servers (Debian's
/// 9.2) reject the option: `sshd -t` tells.
fn penalties_off(program: &Path, dir: &Path) -> Result<&'static str, Error> {
    let option = "PerSourcePenalties no\n";
    let probe = dir.join("probe_config");
    let config = format!(
        "HostKey \"{}\"\n{option}",
        dir.join("host_ed25519").display()
    );
    std::fs::write(&probe, config).map_err(|e| Error(format!("write probe_config: {e}")))?;
    let known = Command::new(program)
        .arg("-t")
        .arg("-f")
        .arg(&probe)
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    Ok(if known { option } else { "" })
}

/// known_hosts lines naming every listen address with `key` (`ssh-ed25519 AAAA...`).
fn known_hosts(addrs: &[String], port: u16, key: &str) -> String {
    addrs
        .iter()
        .map(|a| format!("[{a}]:{port} {key}\n"))
        .collect()
}

/// The type and base64 fields of an OpenSSH public key file, without the comment; panics if
/// it cannot be read.
#[track_caller]
pub fn public_key(path: &Path) -> String {
    read_public_key(path).unwrap_or_else(|e| panic!("{e}"))
}

fn read_public_key(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error(format!("cannot read {}: {e}", path.display())))?;
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

fn find_sshd() -> Result<PathBuf, Error> {
    let default = Path::new("/usr/sbin/sshd");
    if default.is_file() {
        return Ok(default.to_path_buf());
    }
    // sshd re-executes itself and requires an absolute path.
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("sshd"))
                .find(|p| p.is_absolute() && p.is_file())
        })
        .ok_or_else(|| Error(SSHD_MISSING.into()))
}

/// Writes a new Ed25519 key pair without passphrase to `path` and `path.pub`; panics if it
/// cannot.
#[track_caller]
pub fn keygen(path: &Path) {
    keygen_type(path, "ed25519");
}

/// Writes a new key pair of type `kind` (`ed25519`, `rsa`, `ecdsa`) without passphrase to
/// `path` and `path.pub`; panics if it cannot.
#[track_caller]
pub fn keygen_type(path: &Path, kind: &str) {
    try_keygen(path, kind).unwrap_or_else(|e| panic!("{e}"));
}

fn try_keygen(path: &Path, kind: &str) -> Result<(), Error> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "fleetsh-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error(format!(
                "ssh-keygen not found ({e}): install openssh-client (apt-get install -y openssh-client)"
            ))
        })?;
    if !out.status.success() {
        return Err(Error(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The name of the user running the tests, and whether it is root.
fn login_user() -> Result<(String, bool), Error> {
    let id = |flag: &str| {
        Command::new("id")
            .arg(flag)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let user = id("-un")
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .ok_or_else(|| {
            Error("cannot tell the current user's name (`id -un` failed and $USER is unset)".into())
        })?;
    let root = id("-u").as_deref() == Some("0");
    Ok((user, root))
}

/// A port free on the first of `addrs` (a moment ago).
fn free_port(addrs: &[String]) -> Result<u16, Error> {
    let first = addrs.first().map_or("127.0.0.1", String::as_str);
    let l = std::net::TcpListener::bind((first, 0))
        .map_err(|e| Error(format!("cannot bind {first}:0: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error(format!("cannot read a bound port: {e}")))
}

enum Ready {
    Yes,
    PortTaken,
    No(String),
}

/// Waits (at most 100 × 50 ms) until every listen address answers with an SSH banner.
fn wait_until_listening(
    child: &mut Child,
    addrs: &[String],
    port: u16,
    log: &Mutex<Vec<u8>>,
) -> Ready {
    let mut pending: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        match a.parse() {
            Ok(ip) => pending.push(SocketAddr::new(ip, port)),
            Err(_) => return Ready::No(format!("{a} is not an IP address")),
        }
    }
    for _ in 0..100 {
        if text(log, 0).contains("Address already in use") {
            return Ready::PortTaken;
        }
        match child.try_wait() {
            Ok(Some(status)) => return Ready::No(format!("it exited with {status}")),
            Ok(None) => {}
            Err(e) => return Ready::No(format!("cannot wait for it: {e}")),
        }
        pending.retain(|addr| !answers_ssh(addr));
        if pending.is_empty() {
            return Ready::Yes;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ready::No(format!("no SSH banner within 5 s on {pending:?}"))
}

fn answers_ssh(addr: &SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    // Sending a version line first keeps sshd from logging an error for the probe.
    if (&stream).write_all(b"SSH-2.0-probe\r\n").is_err() {
        return false;
    }
    let mut banner = String::new();
    BufReader::new(stream).read_line(&mut banner).is_ok() && banner.starts_with("SSH-2.0-")
}

fn lock(log: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn text(log: &Mutex<Vec<u8>>, from: usize) -> String {
    String::from_utf8_lossy(lock(log).get(from..).unwrap_or_default()).into_owned()
}

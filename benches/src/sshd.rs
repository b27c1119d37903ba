//! A private OpenSSH `sshd` on 127.0.0.1 for the single-file transfer runs: its own host key,
//! client key, `authorized_keys` and known_hosts, `Subsystem sftp` = OpenSSH's `sftp-server`.
//! The approach of the interop tests (`crates/api/tests/it/openssh.rs`), reduced to one address.
//!
//! `LogLevel DEBUG1` makes sshd log the negotiated ciphers of every connection
//! (`kex: client->server cipher: ...`), which is how the tables name the cipher each client
//! used. The server is stopped by its PID (the child this process started) when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};

const SSHD: &str = "/usr/sbin/sshd";
const ADDR: &str = "127.0.0.1";

/// A running `sshd` and its files.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The login user (the user running the harness).
    pub user: String,
    log: Arc<Mutex<Vec<u8>>>,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Creates keys and config and starts `sshd -D -e -f CONFIG`, waiting for its banner.
    pub fn start() -> Result<Sshd> {
        if !Path::new(SSHD).is_file() {
            bail!("{SSHD} not found: install openssh-server (apt-get install -y openssh-server)");
        }
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-sshd-")
            .tempdir()
            .context("creating the sshd directory")?;
        let p = dir.path();
        for key in ["host_ed25519", "client_ed25519"] {
            keygen(&p.join(key))?;
        }
        std::fs::copy(p.join("client_ed25519.pub"), p.join("authorized_keys"))?;
        std::fs::create_dir(p.join("home"))?;
        let user = id("-un").context("cannot tell the current user (`id -un`)")?;
        if id("-u").as_deref() == Some("0") {
            // Privilege separation: sshd started as root refuses to run without it.
            std::fs::create_dir_all("/run/sshd")?;
        }
        let host_pub = public_key(&p.join("host_ed25519.pub"))?;
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port()?;
            let config = p.join("sshd_config");
            std::fs::write(&config, sshd_config(p, port))?;
            std::fs::write(
                p.join("known_hosts"),
                format!("[{ADDR}]:{port} {host_pub}\n"),
            )?;
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {SSHD}"))?;
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
            let addr = SocketAddr::new(ADDR.parse()?, port);
            let mut up = false;
            for _ in 0..100 {
                if text(&log, 0).contains("Address already in use") {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("sshd exited with {status}: {}", text(&log, 0));
                }
                if answers_ssh(&addr) {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                return Ok(Sshd {
                    child,
                    port,
                    user,
                    log,
                    dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            failures.push(format!("port {port}: {}", text(&log, 0)));
        }
        bail!("sshd did not start: {}", failures.join("; "))
    }

    /// A file of the server's directory (`client_ed25519`, `known_hosts`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> &'static str {
        ADDR
    }

    /// Bytes logged so far (a mark for [`Sshd::ciphers_since`]).
    pub fn log_len(&self) -> usize {
        lock(&self.log).len()
    }

    /// The ciphers negotiated by the connections logged after `mark`, e.g.
    /// `chacha20-poly1305@openssh.com` (both directions when they differ).
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

    /// OpenSSH client options for this server: no user config, only the bench key, strict
    /// host-key check against the bench's known_hosts; `cipher` forces one cipher.
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
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Only the listener this harness started; sessions end with their connections.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    format!(
        "ListenAddress {ADDR}:{port}\n\
         HostKey \"{}\"\n\
         AuthorizedKeysFile \"{}\"\n\
         PidFile \"{}\"\n\
         SetEnv \"HOME={}\"\n\
         UsePAM no\n\
         StrictModes no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin yes\n\
         LogLevel DEBUG1\n\
         PrintMotd no\n\
         Subsystem sftp {}\n",
        path("host_ed25519"),
        path("authorized_keys"),
        path("sshd.pid"),
        path("home"),
        sftp_server(),
    )
}

/// OpenSSH's `sftp-server`, else sshd's built-in `internal-sftp` (the same code).
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

fn keygen(path: &Path) -> Result<()> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleetsh-bench", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen (install openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn id(flag: &str) -> Option<String> {
    Command::new("id")
        .arg(flag)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn public_key(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind((ADDR, 0))?;
    Ok(l.local_addr()?.port())
}

fn answers_ssh(addr: &SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
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

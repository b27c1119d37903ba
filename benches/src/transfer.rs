//! The `transfer` scenario's single-file part: one large file to and from one host,
//! fleetsh against OpenSSH's `scp` (SFTP protocol), `scp -O` (legacy protocol) and `sftp -b`,
//! all against the same private loopback `sshd` ([`crate::sshd`]).
//!
//! Every client is a child process of the harness, run one after the other and interleaved over
//! the rounds: fleetsh is `fleetsh-bench transfer-once SPEC` (the engine's `copy_to` /
//! `copy_from`), OpenSSH's are `scp`/`sftp` with the bench key and known_hosts. A sweep adds a
//! plain pipelined russh-sftp client ([`plain_transfer`]) with a given chunk size and number of
//! requests in flight, the loop of `crates/shard/src/sftp.rs` with its two constants made
//! parameters. Wall time runs from spawn to exit (process start, handshake and authentication
//! included, as for `scp`); client CPU is the child's user + system time (`cutime + cstime`
//! once waited for; `ssh` included for `scp`/`sftp`, since they wait for it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fleetsh::{Engine, Event, GetPlan, HostKeyCheck, HostTarget, Job, PutPlan};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use russh::ChannelMsg;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use serde::{Deserialize, Serialize};

use crate::procfs;
use crate::sshd::Sshd;

/// A client of the single-file runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XferClient {
    /// fleetsh's engine (`copy_to` / `copy_from`), in `exe` (a fleetsh-bench binary; this one
    /// when `None`), with the russh channel window `channel_window` when set.
    Engine {
        /// Another build of fleetsh-bench (e.g. other CHUNK/WINDOW constants).
        exe: Option<PathBuf>,
        /// russh `client::Config::window_size` (bytes).
        channel_window: Option<u32>,
    },
    /// The plain pipelined russh-sftp client with these parameters.
    Plain {
        /// Bytes per read/write request.
        chunk: u32,
        /// Requests in flight.
        window: usize,
        /// russh `client::Config::window_size` (bytes).
        channel_window: Option<u32>,
    },
    /// OpenSSH `scp` (SFTP protocol; `-O` legacy SCP protocol when `legacy`).
    Scp {
        /// `scp -O`.
        legacy: bool,
    },
    /// OpenSSH `sftp -b` with one `put`/`get`.
    Sftp,
}

/// One row of the single-file comparison.
#[derive(Debug, Clone)]
pub struct XferRow {
    /// Table label.
    pub label: String,
    /// The client.
    pub client: XferClient,
}

/// What a `transfer-once` child does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnceSpec {
    /// Engine or plain.
    pub client: XferClient,
    /// Upload (`local` file to `remote` path) or download (`remote` file into `local` dir).
    pub upload: bool,
    /// Local file (upload) or directory (download).
    pub local: PathBuf,
    /// Remote path.
    pub remote: String,
    /// Server address and port.
    pub addr: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Client key.
    pub identity: PathBuf,
    /// known_hosts.
    pub known_hosts: PathBuf,
    /// Cipher to force, if any.
    pub cipher: Option<String>,
}

/// What a `transfer-once` child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnceResult {
    /// Seconds from the start of the transfer call (engine built, file read) to its end.
    pub transfer_s: f64,
    /// Bytes moved.
    pub bytes: u64,
}

/// The russh configuration of a transfer client: the engine's default, the cipher forced
/// when asked, the channel window when given.
fn config(cipher: Option<&str>, channel_window: Option<u32>) -> Result<client::Config> {
    let mut c = fleetsh_shard::default_client_config();
    if let Some(name) = cipher {
        let Ok(n) = russh::cipher::Name::try_from(name) else {
            bail!("russh does not know the cipher {name:?}");
        };
        c.preferred = russh::Preferred {
            cipher: std::borrow::Cow::Owned(vec![n]),
            ..russh::Preferred::default()
        };
    }
    if let Some(w) = channel_window {
        c.window_size = w;
    }
    Ok(c)
}

/// The child side: one transfer with the engine or the plain client.
pub fn run_once(spec: &OnceSpec) -> Result<OnceResult> {
    match &spec.client {
        XferClient::Engine { channel_window, .. } => engine_transfer(spec, *channel_window),
        XferClient::Plain {
            chunk,
            window,
            channel_window,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(plain_transfer(spec, *chunk, *window, *channel_window))
        }
        other => bail!("{other:?} is not run in a child of the harness"),
    }
}

fn engine_transfer(spec: &OnceSpec, channel_window: Option<u32>) -> Result<OnceResult> {
    let mut builder = Engine::builder()
        .shards(1)
        .user(&spec.user)
        .port(spec.port)
        .no_agent()
        .identity_file(&spec.identity)
        .known_hosts(&spec.known_hosts)
        .host_key_check(HostKeyCheck::Strict);
    // The same forced cipher and window as the plain client's `config`.
    if let Some(name) = &spec.cipher {
        builder = builder.ciphers([name.clone()]);
    }
    if let Some(w) = channel_window {
        builder = builder.window_size(w);
    }
    let engine = builder.build().context("building the engine")?;
    let mut job = Job::new(String::new());
    job.connect_timeout = Duration::from_secs(30);
    job.command_timeout = Some(Duration::from_secs(600));
    let hosts = [HostTarget::new(spec.addr.as_str())];
    let (t0, mut handle) = if spec.upload {
        let plan = PutPlan::from_local(
            std::slice::from_ref(&spec.local),
            &spec.remote,
            false,
            false,
        )
        .context("reading the file to upload")?;
        let t0 = Instant::now();
        (t0, engine.copy_to(hosts, plan, &job)?)
    } else {
        let plan = GetPlan::new(vec![spec.remote.clone()], spec.local.clone(), false, false)?;
        let t0 = Instant::now();
        (t0, engine.copy_from(hosts, plan, &job)?)
    };
    let mut bytes = 0;
    let mut error = None;
    while let Some(ev) = handle.next_event() {
        if let Event::Finished(r) = ev {
            bytes = r.transfer.map_or(0, |t| t.bytes);
            if !r.is_ok() {
                error = Some(format!("{:?}", r.error));
            }
        }
    }
    let transfer_s = t0.elapsed().as_secs_f64();
    let _ = handle.join();
    if let Some(e) = error {
        bail!("fleetsh transfer failed: {e}");
    }
    Ok(OnceResult { transfer_s, bytes })
}

/// A pipelined SFTP transfer on a plain russh connection: `window` requests of `chunk` bytes
/// in flight (capped by the server's `limits@openssh.com`), as the engine's loop does.
async fn plain_transfer(
    spec: &OnceSpec,
    chunk: u32,
    window: usize,
    channel_window: Option<u32>,
) -> Result<OnceResult> {
    let (known, key) = crate::plain::credentials(&spec.known_hosts, &spec.identity)?;
    let data = if spec.upload {
        std::fs::read(&spec.local)?
    } else {
        Vec::new()
    };
    let t0 = Instant::now();
    let stream = tokio::net::TcpStream::connect((spec.addr.as_str(), spec.port)).await?;
    let _ = stream.set_nodelay(true);
    let checker = crate::plain::Checker {
        known: Arc::new(known),
        host: spec.addr.clone(),
        port: spec.port,
    };
    let cfg = Arc::new(config(spec.cipher.as_deref(), channel_window)?);
    let mut h = client::connect_stream(cfg, stream, checker).await?;
    let auth = h
        .authenticate_publickey(
            &spec.user,
            PrivateKeyWithHashAlg::new(key.key.clone(), None),
        )
        .await?;
    if !auth.success() {
        bail!("authentication refused");
    }
    let mut ch = h.channel_open_session().await?;
    ch.request_subsystem(true, "sftp").await?;
    loop {
        match ch.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) | None => {
                bail!("the server refused the sftp subsystem")
            }
            Some(_) => {}
        }
    }
    let sftp_cfg = russh_sftp::client::Config {
        max_packet_len: 512 * 1024,
        ..Default::default()
    };
    let mut raw = RawSftpSession::new_with_config(ch.into_stream(), sftp_cfg);
    raw.set_timeout(120);
    let version = raw.init().await?;
    let mut chunk = chunk;
    if version.extensions.contains_key("limits@openssh.com") {
        let l = raw.limits().await?;
        let cap = if spec.upload {
            l.max_write_len
        } else {
            l.max_read_len
        };
        if cap > 0 {
            chunk = chunk.min(u32::try_from(cap).unwrap_or(u32::MAX));
        }
        raw.set_limits(l.into());
    }
    let bytes = if spec.upload {
        plain_put(&raw, &spec.remote, &data, chunk as usize, window).await?
    } else {
        let name = spec.remote.rsplit('/').next().unwrap_or("download");
        plain_get(&raw, &spec.remote, &spec.local.join(name), chunk, window).await?
    };
    let _ = h
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(OnceResult {
        transfer_s: t0.elapsed().as_secs_f64(),
        bytes,
    })
}

async fn plain_put(
    raw: &RawSftpSession,
    path: &str,
    data: &[u8],
    chunk: usize,
    window: usize,
) -> Result<u64> {
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = raw.open(path, flags, FileAttributes::empty()).await?.handle;
    let mut inflight = FuturesUnordered::new();
    let mut off = 0usize;
    let mut done = 0u64;
    loop {
        while inflight.len() < window && off < data.len() {
            let end = (off + chunk).min(data.len());
            let piece = data.get(off..end).unwrap_or_default().to_vec();
            let (at, n, h) = (off as u64, end - off, handle.clone());
            inflight.push(async move { raw.write(h, at, piece).await.map(|_| n) });
            off = end;
        }
        match inflight.next().await {
            None => break,
            Some(r) => done += r? as u64,
        }
    }
    raw.close(handle).await?;
    Ok(done)
}

async fn plain_get(
    raw: &RawSftpSession,
    path: &str,
    local: &Path,
    chunk: u32,
    window: usize,
) -> Result<u64> {
    use std::os::unix::fs::FileExt;
    let handle = raw
        .open(path, OpenFlags::READ, FileAttributes::empty())
        .await?
        .handle;
    let size = raw.fstat(handle.as_str()).await?.attrs.size.unwrap_or(0);
    let file = std::fs::File::create(local)?;
    let read = |at: u64, len: u32, h: String| async move { (at, len, raw.read(h, at, len).await) };
    let mut inflight = FuturesUnordered::new();
    let mut next = 0u64;
    let mut done = 0u64;
    loop {
        while inflight.len() < window && next < size {
            let len = u32::try_from((size - next).min(u64::from(chunk))).unwrap_or(chunk);
            inflight.push(read(next, len, handle.clone()));
            next += u64::from(len);
        }
        let Some((at, len, r)) = inflight.next().await else {
            break;
        };
        match r {
            Ok(d) if d.data.is_empty() => bail!("{path}: empty read at {at}"),
            Ok(d) => {
                file.write_at(&d.data, at)?;
                done += d.data.len() as u64;
                let got = u32::try_from(d.data.len()).unwrap_or(u32::MAX);
                if got < len {
                    inflight.push(read(at + u64::from(got), len - got, handle.clone()));
                }
            }
            Err(russh_sftp::client::error::Error::Status(s))
                if s.status_code == StatusCode::Eof =>
            {
                bail!("{path}: early EOF at {at}")
            }
            Err(e) => return Err(e.into()),
        }
    }
    raw.close(handle).await?;
    Ok(done)
}

/// One measured run of one client.
#[derive(Debug, Clone, Serialize)]
pub struct XferSample {
    /// Spawn to exit.
    pub wall_s: f64,
    /// File size / wall, in MB/s (10^6 bytes).
    pub mb_per_s: f64,
    /// Client user + system CPU (children included).
    pub client_cpu_s: f64,
    /// Every other CPU on the machine over the run (sshd, sftp-server, other processes), cores.
    pub server_and_other_cores: f64,
    /// The child's own transfer time (engine/plain only: after the engine is built and the
    /// file read).
    pub transfer_s: Option<f64>,
    /// Negotiated cipher, from sshd's log.
    pub cipher: String,
}

/// The fixed inputs of the single-file runs.
#[derive(Debug)]
pub struct SingleFile {
    /// The server.
    pub sshd: Sshd,
    /// Working directory (source, remote side, downloads).
    pub dir: tempfile::TempDir,
    /// File size.
    pub size: u64,
    /// This harness binary.
    pub exe: PathBuf,
    /// Cipher forced on every client, if any.
    pub cipher: Option<String>,
    /// Time limit of one run.
    pub timeout: Duration,
}

impl SingleFile {
    /// Starts the server and writes the source file (pseudo-random bytes: nothing compresses).
    pub fn prepare(
        size: u64,
        exe: PathBuf,
        cipher: Option<String>,
        timeout: Duration,
    ) -> Result<Self> {
        let sshd = crate::sshd::start()?;
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-xfer-")
            .tempdir()?;
        for d in ["local", "remote", "down"] {
            std::fs::create_dir(dir.path().join(d))?;
        }
        let data = pseudo_random(size);
        std::fs::write(dir.path().join("local/big.bin"), &data)?;
        std::fs::write(dir.path().join("remote/big.bin"), &data)?;
        Ok(SingleFile {
            sshd,
            dir,
            size,
            exe,
            cipher,
            timeout,
        })
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `row` once in `upload` direction, checks the result byte for byte, cleans up.
    pub fn run(&self, row: &XferRow, upload: bool) -> Result<XferSample> {
        let src_local = self.p("local/big.bin");
        let dst_remote = self.p("remote/up.bin");
        let src_remote = self.p("remote/big.bin");
        let down = self.p("down");
        // Start from the same state: no target, dirty pages of the previous run written back.
        let _ = std::fs::remove_file(&dst_remote);
        let _ = std::fs::remove_dir_all(&down);
        std::fs::create_dir(&down)?;
        let _ = Command::new("sync").status();
        let target = format!("{}@{}", self.sshd.user, self.sshd.addr());
        let opts = self.sshd.ssh_options(self.cipher.as_deref());
        let port = self.sshd.port.to_string();
        let mut cmd = match &row.client {
            XferClient::Engine { exe, .. } => {
                let spec = self.once_spec(row.client.clone(), upload);
                let mut c = Command::new(exe.as_ref().unwrap_or(&self.exe));
                c.arg("transfer-once").arg(serde_json::to_string(&spec)?);
                c
            }
            XferClient::Plain { .. } => {
                let spec = self.once_spec(row.client.clone(), upload);
                let mut c = Command::new(&self.exe);
                c.arg("transfer-once").arg(serde_json::to_string(&spec)?);
                c
            }
            XferClient::Scp { legacy } => {
                let mut c = Command::new("scp");
                c.args(["-q", "-P", &port]).args(&opts);
                if *legacy {
                    c.arg("-O");
                }
                if upload {
                    c.arg(&src_local)
                        .arg(format!("{target}:{}", dst_remote.display()));
                } else {
                    c.arg(format!("{target}:{}", src_remote.display()))
                        .arg(format!("{}/", down.display()));
                }
                c
            }
            XferClient::Sftp => {
                let batch = self.p("batch");
                let line = if upload {
                    format!(
                        "put \"{}\" \"{}\"\n",
                        src_local.display(),
                        dst_remote.display()
                    )
                } else {
                    format!("get \"{}\" \"{}/\"\n", src_remote.display(), down.display())
                };
                std::fs::write(&batch, line)?;
                let mut c = Command::new("sftp");
                c.args(["-q", "-P", &port])
                    .args(&opts)
                    .arg("-b")
                    .arg(&batch);
                c.arg(&target);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mark = self.sshd.log_len();
        let cpu0 = procfs::children_cpu_ticks()?;
        let machine0 = procfs::machine_ticks()?.0;
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", row.label))?;
        let out = wait_with_timeout(child, self.timeout)?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = procfs::children_cpu_ticks()?.saturating_sub(cpu0);
        let machine = procfs::machine_ticks()?.0.saturating_sub(machine0);
        if !out.status.success() {
            bail!(
                "{} failed ({}): {}{}",
                row.label,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let transfer_s = match row.client {
            XferClient::Engine { .. } | XferClient::Plain { .. } => {
                let r: OnceResult = serde_json::from_slice(&out.stdout)
                    .with_context(|| format!("{}: bad child output", row.label))?;
                Some(r.transfer_s)
            }
            _ => None,
        };
        // Let sshd's log catch up before reading the cipher.
        std::thread::sleep(Duration::from_millis(100));
        let cipher = self.sshd.ciphers_since(mark);
        let got = if upload {
            dst_remote
        } else {
            find_file(&down, "big.bin")
                .with_context(|| format!("{}: no big.bin under {}", row.label, down.display()))?
        };
        let same = std::fs::read(&got)? == std::fs::read(&src_remote)?;
        if !same {
            bail!("{}: {} differs from the source", row.label, got.display());
        }
        let tck = procfs::clock_ticks_per_second() as f64;
        Ok(XferSample {
            wall_s: wall,
            mb_per_s: self.size as f64 / 1e6 / wall.max(1e-9),
            client_cpu_s: cpu as f64 / tck,
            server_and_other_cores: (machine.saturating_sub(cpu)) as f64 / tck / wall.max(1e-9),
            transfer_s,
            cipher,
        })
    }

    fn once_spec(&self, client: XferClient, upload: bool) -> OnceSpec {
        let (local, remote) = if upload {
            (self.p("local/big.bin"), self.p("remote/up.bin"))
        } else {
            (self.p("down"), self.p("remote/big.bin"))
        };
        OnceSpec {
            client,
            upload,
            local,
            remote: remote.display().to_string(),
            addr: self.sshd.addr().into(),
            port: self.sshd.port,
            user: self.sshd.user.clone(),
            identity: self.sshd.path("client_ed25519"),
            known_hosts: self.sshd.path("known_hosts"),
            cipher: self.cipher.clone(),
        }
    }
}

/// Waits for `child` with a limit, killing it (by its handle) when the limit passes.
fn wait_with_timeout(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output> {
    let deadline = Instant::now() + limit;
    // Drain the pipes on threads so a chatty child never blocks.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let drain = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = drain(stdout.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let err_t = drain(stderr.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("a transfer client ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// `n` pseudo-random bytes (xorshift64*: fast, incompressible enough for a transfer).
pub fn pseudo_random(n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while (v.len() as u64) < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let w = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let left = usize::try_from(n - v.len() as u64).unwrap_or(8).min(8);
        v.extend_from_slice(w.to_le_bytes().get(..left).unwrap_or_default());
    }
    v
}

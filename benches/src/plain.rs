//! The baselines: a plain russh client (no shards) on one tokio runtime, either multi-thread
//! (one task per host, work-stealing over every core) or current-thread (one event loop).
//!
//! It uses the same libraries as the engine's transport (russh client, the engine's parsed
//! [`KnownHosts`] and loaded key) but not its code: the engine's per-host code is
//! private to it. It does what a minimal careful client does per host (TCP connect with
//! `TCP_NODELAY`, handshake with a host-key check, public-key auth, session channel, exec, read to
//! the channel's close, disconnect) and skips what the engine adds (retries, cancellation,
//! per-phase timeouts inside the host, output streaming and caps, env/pty/sudo/stdin), so it is
//! a slightly lighter client than the engine: a fair floor for "what sharding buys".

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetsh::{HostTarget, Timings};
use fleetsh_shard::{KnownHosts, LoadedKey};
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use russh::{ChannelMsg, Disconnect};
use tokio::sync::Semaphore;

use crate::sample::HostSample;

/// Which runtime the baseline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `new_multi_thread` with this many workers.
    MultiThread(usize),
    /// `new_current_thread`: everything on the calling thread.
    CurrentThread,
}

/// What every host shares.
#[derive(Debug)]
pub struct Plain {
    /// russh client configuration.
    pub config: Arc<client::Config>,
    /// Parsed known_hosts (strict).
    pub known: Arc<KnownHosts>,
    /// The client key.
    pub key: LoadedKey,
    /// Login user.
    pub user: String,
    /// Whole-host limit (connect to close).
    pub host_timeout: Duration,
}

/// What a plain client trusts and logs in with: `known_hosts` parsed (strict) and the first
/// key of `identity`.
pub fn credentials(
    known_hosts: &std::path::Path,
    identity: &std::path::Path,
) -> anyhow::Result<(KnownHosts, LoadedKey)> {
    use anyhow::Context;
    let known = KnownHosts::load(known_hosts, fleetsh::HostKeyCheck::Strict)?;
    let key = fleetsh_shard::AuthMaterial::load_keys(&[identity.to_path_buf()], true, None)?
        .into_iter()
        .next()
        .context("no client key")?;
    Ok((known, key))
}

/// Builds the runtime (outside the measured interval).
pub fn runtime(flavor: Flavor) -> std::io::Result<tokio::runtime::Runtime> {
    match flavor {
        Flavor::MultiThread(workers) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
}

/// Runs `command` on every target with at most `fanout` hosts in flight; one sample per host,
/// in completion order. `on_finish` is called as each host ends.
pub fn run(
    rt: &tokio::runtime::Runtime,
    plain: Arc<Plain>,
    targets: Vec<HostTarget>,
    command: &str,
    fanout: usize,
    mut on_finish: impl FnMut(),
) -> Vec<HostSample> {
    let command: Arc<str> = Arc::from(command);
    rt.block_on(async move {
        let permits = Arc::new(Semaphore::new(fanout.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let plain = plain.clone();
            let command = command.clone();
            tasks.spawn(async move {
                let r = one_host(&plain, &target, &command).await;
                drop(permit);
                r
            });
            while let Some(done) = tasks.try_join_next() {
                on_finish();
                out.push(done.unwrap_or_else(|e| HostSample::failed(format!("task: {e}"))));
            }
        }
        while let Some(done) = tasks.join_next().await {
            on_finish();
            out.push(done.unwrap_or_else(|e| HostSample::failed(format!("task: {e}"))));
        }
        out
    })
}

/// Checks the server's key against the parsed known_hosts (strict).
pub(crate) struct Checker {
    pub(crate) known: Arc<KnownHosts>,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.known.check(&self.host, self.port, key).accepted()
            }
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

async fn one_host(plain: &Plain, target: &HostTarget, command: &str) -> HostSample {
    let start = Instant::now();
    let mut timings = Timings::default();
    let r = tokio::time::timeout(
        plain.host_timeout,
        session(plain, target, command, start, &mut timings),
    )
    .await;
    timings.total = start.elapsed();
    let (error, output_bytes) = match r {
        Ok(Ok((0, n))) => (None, n),
        Ok(Ok((code, n))) => (Some(format!("exit {code}")), n),
        Ok(Err(kind)) => (Some(kind.to_string()), 0),
        Err(_) => (Some("timeout".to_string()), 0),
    };
    HostSample {
        error,
        output_bytes,
        timings,
    }
}

/// One host end to end; `Ok((exit status, output bytes))` or the failing phase.
async fn session(
    plain: &Plain,
    target: &HostTarget,
    command: &str,
    start: Instant,
    t: &mut Timings,
) -> Result<(u32, usize), &'static str> {
    let port = target.port.unwrap_or(22);
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), port))
        .await
        .map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let t_tcp = start.elapsed();
    t.connect = Some(t_tcp);
    let checker = Checker {
        known: plain.known.clone(),
        host: target.host.clone(),
        port,
    };
    let mut handle = client::connect_stream(plain.config.clone(), stream, checker)
        .await
        .map_err(|_| "handshake")?;
    let auth = handle
        .authenticate_publickey(
            target.user.as_deref().unwrap_or(&plain.user),
            PrivateKeyWithHashAlg::new(plain.key.key.clone(), None),
        )
        .await
        .map_err(|_| "auth")?;
    if !auth.success() {
        return Err("auth");
    }
    let t_open = start.elapsed();
    t.handshake_auth = Some(t_open.saturating_sub(t_tcp));
    let mut channel = handle.channel_open_session().await.map_err(|_| "channel")?;
    let t_exec = start.elapsed();
    t.channel_open = Some(t_exec.saturating_sub(t_open));
    channel
        .exec(true, command.as_bytes())
        .await
        .map_err(|_| "channel")?;
    let mut output = Vec::new();
    let mut confirmed: Option<Duration> = None;
    let mut end: Option<Duration> = None;
    let mut status = None;
    let confirm = |t: &mut Timings, confirmed: &mut Option<Duration>| {
        if confirmed.is_none() {
            let now = start.elapsed();
            *confirmed = Some(now);
            t.exec = Some(now.saturating_sub(t_exec));
        }
    };
    let finish = |t: &mut Timings, end: &mut Option<Duration>, from: Option<Duration>| {
        if end.is_none() {
            let now = start.elapsed();
            *end = Some(now);
            t.read = Some(now.saturating_sub(from.unwrap_or(t_exec)));
        }
    };
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                confirm(t, &mut confirmed);
                if t.first_byte.is_none() {
                    t.first_byte = Some(start.elapsed());
                }
                output.extend_from_slice(&data);
            }
            Some(ChannelMsg::Success) => confirm(t, &mut confirmed),
            Some(ChannelMsg::Failure) if confirmed.is_none() => return Err("channel"),
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                status = Some(exit_status);
                finish(t, &mut end, confirmed);
            }
            Some(ChannelMsg::Eof) => finish(t, &mut end, confirmed),
            Some(ChannelMsg::Close) | None => {
                finish(t, &mut end, confirmed);
                if let Some(e) = end {
                    t.close = Some(start.elapsed().saturating_sub(e));
                }
                break;
            }
            Some(_) => {}
        }
    }
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    let status = status.ok_or("disconnected")?;
    Ok((status, std::hint::black_box(output).len()))
}

//! One host, end to end: its ssh_config plan and `ProxyCommand`, a kept connection or a new
//! one (with retries and backoff), then the job's action (`exec`: a command; `sftp`: a file
//! transfer), and its one [`HostResult`].

mod ctx;
mod exec;
mod sftp;
mod sudo;

pub(crate) use self::ctx::{ConnCache, HostCtx};

use std::time::Instant;

use fleetsh_core::{ErrorKind, HostError, HostResult, HostTarget};

use crate::ssh::connect::{Connection, say_goodbye};
use crate::ssh::dial::{Phase, Progress};
use crate::ssh::handler::Handle;
use crate::ssh::proxy::expand as expand_proxy_command;
use crate::ssh::session::Peer;
use crate::ssh::settings::{HostPlan, HostProfile, effective_target};

/// Runs the job's action (command or transfer) on an authenticated connection.
async fn act(
    ctx: &HostCtx,
    profile: &HostProfile,
    handle: &Handle,
    result: &mut HostResult,
    start: Instant,
    typed: &str,
) {
    match &ctx.job.action {
        fleetsh_core::Action::Exec => exec::run_command(ctx, profile, handle, result, start).await,
        // Connected and authenticated: nothing more to do.
        fleetsh_core::Action::Connect => {}
        // Boxed: the transfer's larger state is not part of every host's task.
        _ => Box::pin(sftp::run_transfer(ctx, handle, result, start, typed)).await,
    }
}

/// After the action: a connected fleet keeps a working connection for its next run; otherwise
/// the session ends.
async fn release(ctx: &HostCtx, index: usize, conn: Connection) {
    match &ctx.cache {
        Some(cache) if !conn.handle.is_closed() => {
            cache.lock().insert(index, conn);
        }
        _ => say_goodbye(&conn).await,
    }
}

/// A tunnelled host that lost its connection because its bastion's connection was lost
/// reports a `jump` error naming the bastion.
fn blame_bastion(ctx: &HostCtx, profile: &HostProfile, result: &mut HostResult) {
    let Some(e) = result.error.as_mut() else {
        return;
    };
    if e.kind != ErrorKind::Disconnected {
        return;
    }
    if let Some(name) = ctx
        .ssh
        .jumps
        .as_ref()
        .and_then(|j| j.lost(profile.proxy_jump.as_deref()))
    {
        *e = HostError::new(
            ErrorKind::Jump,
            format!("connection to bastion {name} lost ({})", e.message),
        );
    }
}

/// A uniform number in `[0, 1)` for the retry backoff's jitter, different per host, attempt
/// and process (std's randomly keyed hasher; no cryptographic quality needed).
fn jitter(index: usize, attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(index);
    h.write_u32(attempt);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `job` on one host and returns its one result. Never panics on network input; every
/// failure becomes a typed [`HostError`] with the output received so far kept.
pub(crate) async fn run_host(ctx: &HostCtx, index: usize, target: &HostTarget) -> HostResult {
    let start = Instant::now();
    let settings = &ctx.ssh.settings;
    let job = &ctx.job;
    // The host as typed names its download directory.
    let typed = match job.action {
        fleetsh_core::Action::Get(_) => target.to_string(),
        _ => String::new(),
    };
    let default_plan = HostPlan::default();
    let plan = ctx
        .plans
        .as_ref()
        .and_then(|p| p.get(index))
        .unwrap_or(&default_plan);
    let profile = &*plan.profile;
    let target = effective_target(settings, plan, target);
    let mut result = HostResult::failed(
        index,
        target.clone(),
        HostError::new(ErrorKind::Internal, "not run"),
    );
    result.error = None;
    result.connect_only = job.action == fleetsh_core::Action::Connect;
    // Where to connect: `HostName`, else the host as typed.
    let address = HostTarget {
        host: plan.hostname.clone().unwrap_or_else(|| target.host.clone()),
        ..target.clone()
    };
    let connect_timeout = profile.connect_timeout.unwrap_or(job.connect_timeout);
    // `ProxyCommand`, expanded for this host (the port and user are set by effective_target).
    let proxy = match &profile.proxy_command {
        Some(template) => match expand_proxy_command(
            template,
            &address.host,
            target.port.unwrap_or(22),
            target.user.as_deref().unwrap_or_default(),
            &target.host,
        ) {
            Ok(cmd) => Some(cmd),
            Err(e) => {
                result.error = Some(e);
                result.timings.total = start.elapsed();
                return result;
            }
        },
        None => None,
    };

    // A connected fleet's kept connection first. If it turns out to be unusable before the
    // command or transfer started (the server closed it meanwhile), connect afresh, once.
    let kept = ctx
        .cache
        .as_ref()
        .and_then(|c| c.lock().remove(&index))
        .filter(|h| !h.handle.is_closed());
    if let Some(h) = kept {
        let before = result.clone();
        result.server = h.server.clone();
        act(ctx, profile, &h.handle, &mut result, start, &typed).await;
        let not_started = result.timings.channel_open.is_none()
            && result
                .error
                .as_ref()
                .is_some_and(|e| e.kind != ErrorKind::Cancelled);
        if !not_started {
            blame_bastion(ctx, profile, &mut result);
            release(ctx, index, h).await;
            result.timings.total = start.elapsed();
            return result;
        }
        tracing::debug!(host = %target, "kept connection unusable ({:?}); reconnecting", result.error);
        drop(h);
        result = before;
    }

    let peer = Peer {
        target: &address,
        profile,
    };
    let mut attempt = 0u32;
    let handle = loop {
        attempt += 1;
        result.attempts = attempt;
        let mut progress = Progress::new(start, Phase::Resolve);
        if let Some(rl) = ctx.shared.rate() {
            let slot = tokio::time::Instant::from_std(rl.reserve());
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    result.error = Some(HostError::new(ErrorKind::Cancelled, "run cancelled while waiting for a connection slot (--rate)"));
                    result.timings.total = start.elapsed();
                    return result;
                }
                _ = tokio::time::sleep_until(slot) => {}
            }
        }
        let outcome = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled while connecting")),
            // Boxed: the handshake's state (~6 KB) lives only while connecting, not in every
            // host's task for the whole run.
            r = tokio::time::timeout(connect_timeout, Box::pin(ctx.ssh.connect(peer, proxy.as_deref(), job.connect_timeout, &mut progress))) => match r {
                Ok(r) => r,
                Err(_) => Err(HostError::new(
                    ErrorKind::ConnectTimeout,
                    format!("no connection within {connect_timeout:?} ({})", progress.phase.describe()),
                )),
            },
        };
        match outcome {
            Ok(h) => {
                result.timings = progress.timings;
                result.server = progress.server;
                break h;
            }
            Err(e) if e.kind.is_retryable() && attempt <= job.retries => {
                tracing::debug!(host = %target, attempt, "retrying after {e}");
                tokio::select! {
                    _ = ctx.cancel.cancelled() => {
                        result.error = Some(HostError::new(ErrorKind::Cancelled, format!("run cancelled while waiting to retry after: {e}")));
                        result.timings.total = start.elapsed();
                        return result;
                    }
                    _ = tokio::time::sleep(fleetsh_core::config::retry_backoff(job.retry_delay, attempt, jitter(index, attempt))) => {}
                }
            }
            Err(e) => {
                result.error = Some(e);
                result.timings = progress.timings;
                result.server = progress.server;
                result.timings.total = start.elapsed();
                return result;
            }
        }
    };

    act(ctx, profile, &handle.handle, &mut result, start, &typed).await;
    blame_bastion(ctx, profile, &mut result);
    release(ctx, index, handle).await;
    result.timings.total = start.elapsed();
    result
}

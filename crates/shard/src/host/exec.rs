//! Running a command on an authenticated connection: the session channel and its requests
//! (environment, pty, agent forwarding), exec, standard input, and the output streamed to the
//! run's events until the exit status, a timeout or cancellation.

use std::time::{Duration, Instant};

use fleetsh_core::{ErrorKind, Event, HostError, HostResult, Job, StreamKind};
use russh::{ChannelMsg, client};

use super::ctx::HostCtx;
use super::sudo::{Marker, SudoGate};
use crate::command;
use crate::ssh::client_config::Keepalive;
use crate::ssh::handler::{Handle, describe};
use crate::ssh::settings::HostProfile;

fn capture(buf: &mut Vec<u8>, data: &[u8], cap: usize, truncated: &mut bool) {
    let room = cap.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    let take = data.len().min(room);
    if let Some(part) = data.get(..take) {
        buf.extend_from_slice(part);
    }
}

/// What is pending a reply on the channel, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Env(String),
    Pty,
    Agent,
}

type ReadHalf = russh::ChannelReadHalf;
type WriteHalf = russh::ChannelWriteHalf<client::Msg>;

/// Opens the session channel and sends the environment and pty requests, waiting for each
/// reply in order.
async fn open_channel(
    handle: &Handle,
    job: &Job,
    forward_agent: bool,
) -> Result<(ReadHalf, WriteHalf), HostError> {
    let channel = handle.channel_open_session().await.map_err(|e| {
        HostError::new(
            ErrorKind::Channel,
            format!("cannot open a session channel: {}", describe(&e)),
        )
    })?;
    let (mut read, write) = channel.split();
    let lost = |what: &str, e: russh::Error| {
        HostError::new(
            ErrorKind::Channel,
            format!("{what} failed: {}", describe(&e)),
        )
    };
    let mut pending = std::collections::VecDeque::new();
    for (k, v) in &job.env {
        write
            .set_env(true, k.as_str(), v.as_str())
            .await
            .map_err(|e| lost("env request", e))?;
        pending.push_back(Request::Env(k.clone()));
    }
    if job.pty {
        write
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .map_err(|e| lost("pty request", e))?;
        pending.push_back(Request::Pty);
    }
    if forward_agent {
        write
            .agent_forward(true)
            .await
            .map_err(|e| lost("agent forwarding request", e))?;
        pending.push_back(Request::Agent);
    }
    while let Some(req) = pending.front().cloned() {
        match read.wait().await {
            Some(ChannelMsg::Success) => {
                pending.pop_front();
            }
            Some(ChannelMsg::Failure) if req == Request::Agent => {
                // As OpenSSH: a refused agent forwarding is not fatal to the command.
                tracing::warn!("the server refused agent forwarding");
                pending.pop_front();
            }
            Some(ChannelMsg::Failure) => {
                return Err(HostError::new(
                    ErrorKind::Channel,
                    match req {
                        Request::Env(k) => format!(
                            "the server refused to set environment variable {k} (see its AcceptEnv); the command was not run"
                        ),
                        Request::Pty => {
                            "the server refused to allocate a pty; the command was not run".into()
                        }
                        Request::Agent => "agent forwarding refused".into(),
                    },
                ));
            }
            Some(ChannelMsg::Close) | None => {
                return Err(HostError::new(
                    ErrorKind::Disconnected,
                    "channel closed before the command started",
                ));
            }
            Some(_) => {}
        }
    }
    Ok((read, write))
}

/// Runs the job's command on `handle`: session channel, environment and pty, exec, standard
/// input, then output streamed until the exit status, a timeout or cancellation.
pub(super) async fn run_command(
    ctx: &HostCtx,
    profile: &HostProfile,
    handle: &Handle,
    result: &mut HostResult,
    start: Instant,
) {
    let job = &ctx.job;
    let connect_timeout = profile.connect_timeout.unwrap_or(job.connect_timeout);
    let t_open = start.elapsed();
    // 1. Session channel and the requests that must succeed before the command runs
    //    (environment, pty), bounded by the connect timeout: a server that stops answering
    //    after authentication must not hold the host forever.
    let opened = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(HostError::new(ErrorKind::Cancelled, "run cancelled before the command started")),
        r = tokio::time::timeout(connect_timeout, open_channel(handle, job, ctx.ssh.settings.forward_agent && ctx.ssh.settings.auth.agent.is_some())) => match r {
            Ok(r) => r,
            Err(_) => Err(HostError::new(
                ErrorKind::Channel,
                format!("the server did not open a session channel within {connect_timeout:?}"),
            )),
        },
    };
    let (mut read, write) = match opened {
        Ok(halves) => halves,
        Err(e) => {
            result.error = Some(e);
            return;
        }
    };
    let t_exec = start.elapsed();
    result.timings.channel_open = Some(t_exec.saturating_sub(t_open));
    let lost = |what: &str, e: russh::Error| {
        HostError::new(
            ErrorKind::Channel,
            format!("{what} failed: {}", describe(&e)),
        )
    };

    // 2. The command: the host's own (worked out before the run), or the template expanded,
    //    or the command as given; then sudo.
    let mut command = match &job.per_host {
        Some(p) => match p.get(result.index) {
            Some(c) => c.to_string(),
            None => {
                result.error = Some(HostError::new(
                    ErrorKind::Internal,
                    "no per-host command for this host (the run did not work them out)",
                ));
                return;
            }
        },
        None if job.template => command::render(&job.command, &result.target.host, result.index),
        None => job.command.clone(),
    };
    // With a sudo password, sudo prints a prompt of fleetsh's making when it wants it and the
    // shell prints READY before the command: the password goes only to that prompt, the
    // command's input only after READY (`super::sudo`).
    let markers = job
        .sudo
        .as_ref()
        .filter(|s| s.password.is_some())
        .map(|_| command::SudoMarkers::new(sudo_nonce()));
    if let Some(sudo) = &job.sudo {
        command = command::sudo_wrap(&command, sudo, markers.as_ref());
    }
    let gate = markers.as_ref().map(|m| SudoGate::new(&m.prompt, &m.ready));
    let gated_stream = if job.pty {
        StreamKind::Stdout
    } else {
        StreamKind::Stderr
    };
    // A journal records the start before the command leaves: a host without it never ran it.
    if let Some(journal) = &ctx.journal
        && let Err(e) = journal.started(result.index)
    {
        result.error = Some(HostError::new(
            ErrorKind::Internal,
            format!("cannot write the journal ({e}): the command was not sent"),
        ));
        return;
    }
    if let Err(e) = write.exec(true, command.into_bytes()).await {
        result.error = Some(lost("exec request", e));
        return;
    }

    // 3. Standard input, then EOF, sent concurrently with reading so that neither side can
    //    stall the other; through sudo with a password, once sudo has let the command start.
    let secret: Option<Vec<u8>> = job
        .sudo
        .as_ref()
        .and_then(|s| s.password.as_ref())
        .map(|p| p.expose().as_bytes().to_vec());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let gated = gate.is_some();
    let writer = async {
        if gated && ready_rx.await.is_err() {
            return Ok(());
        }
        if let Some(input) = &job.stdin
            && !input.0.is_empty()
        {
            write
                .data_bytes(bytes::Bytes::from_owner(input.0.clone()))
                .await?;
        }
        write.eof().await
    };
    tokio::pin!(writer);
    let mut writer_done = false;

    let deadline = job.command_timeout.map(|d| tokio::time::Instant::now() + d);
    let sleep = tokio::time::sleep_until(
        deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(sleep);
    // The idle timeout: `idle` fires at the last output plus the limit; it is moved only
    // when it fires early (output came meanwhile), not on every chunk.
    let idle_limit = job.idle_timeout;
    let mut last_output = tokio::time::Instant::now();
    let idle = tokio::time::sleep_until(
        last_output + idle_limit.unwrap_or(Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(idle);
    let cap = job.output_cap;
    let sudo_bound = connect_timeout.max(SUDO_STEP);
    let mut outlet = Outlet {
        ctx,
        cap,
        secret: secret.as_deref(),
        sudo: gate.map(|gate| SudoAnswer {
            gate,
            stream: gated_stream,
            write: &write,
            ready: Some(ready_tx),
            password_sent: false,
            refused: false,
            bound: sudo_bound,
        }),
    };
    // Each step of sudo's (asking for the password, starting the command once it has it,
    // ending after a refusal) must come within `sudo_bound`: a question fleetsh does not
    // answer (a PAM prompt of its own, a one-time code after the password) would otherwise
    // hold the host until the command timeout, or for ever.
    let sudo_wait = tokio::time::sleep(sudo_bound);
    tokio::pin!(sudo_wait);
    let mut exec_confirmed = false;
    let mut output_end: Option<Duration> = None;
    let confirm = |result: &mut HostResult, confirmed: &mut bool| {
        if !*confirmed {
            *confirmed = true;
            result.timings.exec = Some(start.elapsed().saturating_sub(t_exec));
        }
    };
    let stop = loop {
        let msg = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                break Some(HostError::new(ErrorKind::Cancelled, "run cancelled while the command ran"));
            }
            _ = &mut sleep, if deadline.is_some() => {
                break Some(HostError::new(
                    ErrorKind::CommandTimeout,
                    format!("command did not finish within {:?}", job.command_timeout.unwrap_or_default()),
                ));
            }
            _ = &mut idle, if idle_limit.is_some() => {
                let limit = idle_limit.unwrap_or_default();
                let due = last_output + limit;
                if tokio::time::Instant::now() < due {
                    idle.as_mut().reset(due);
                    continue;
                }
                break Some(HostError::new(
                    ErrorKind::CommandTimeout,
                    format!("no output for {limit:?} (idle timeout)"),
                ));
            }
            w = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(e) = w {
                    // The command may have exited without reading its input: not an error.
                    tracing::debug!("stdin not fully sent: {e}");
                }
                continue;
            }
            m = read.wait() => m,
            // After the read: a message already there (READY, sudo's last words) comes first.
            _ = &mut sudo_wait, if outlet.awaiting_sudo() && output_end.is_none() => {
                break Some(outlet.sudo_stalled());
            }
        };
        match msg {
            Some(ChannelMsg::Data { data }) => {
                confirm(result, &mut exec_confirmed);
                last_output = tokio::time::Instant::now();
                if result.timings.first_byte.is_none() {
                    result.timings.first_byte = Some(start.elapsed());
                }
                if let Err(e) = outlet
                    .output(result, StreamKind::Stdout, &data, sudo_wait.as_mut())
                    .await
                {
                    break Some(e);
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                confirm(result, &mut exec_confirmed);
                last_output = tokio::time::Instant::now();
                if result.timings.first_byte.is_none() {
                    result.timings.first_byte = Some(start.elapsed());
                }
                if ext == 1
                    && let Err(e) = outlet
                        .output(result, StreamKind::Stderr, &data, sudo_wait.as_mut())
                        .await
                {
                    break Some(e);
                }
            }
            Some(ChannelMsg::Success) => confirm(result, &mut exec_confirmed),
            Some(ChannelMsg::Failure) if !exec_confirmed => {
                break Some(HostError::new(
                    ErrorKind::Channel,
                    "the server refused the exec request",
                ));
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                result.exit_code = Some(exit_status);
                end_of_output(result, &mut output_end, start, t_exec);
            }
            Some(ChannelMsg::Eof) => end_of_output(result, &mut output_end, start, t_exec),
            Some(ChannelMsg::ExitSignal {
                signal_name,
                error_message,
                ..
            }) => {
                result.signal = Some(sig_name(&signal_name));
                if !error_message.is_empty() {
                    tracing::debug!("exit signal message: {error_message}");
                }
            }
            Some(ChannelMsg::Close) | None => {
                end_of_output(result, &mut output_end, start, t_exec);
                if let Some(end) = output_end {
                    result.timings.close = Some(start.elapsed().saturating_sub(end));
                }
                break None;
            }
            Some(_) => {}
        }
    };
    // Bytes held back as the possible start of a marker are output after all.
    outlet.finish(result).await;
    // A refused sudo password fails the host, whatever sudo's exit status says.
    let stop = stop.or_else(|| outlet.refused().then(sudo_refused));
    if let Some(pw) = &secret {
        command::scrub(&mut result.stdout, pw);
        command::scrub(&mut result.stderr, pw);
    }
    if let Some(e) = stop {
        // Ask the server to stop the command (OpenSSH honours signal requests); closing the
        // connection follows.
        if matches!(
            e.kind,
            ErrorKind::CommandTimeout | ErrorKind::Cancelled | ErrorKind::Auth
        ) {
            let _ = write.signal(russh::Sig::TERM).await;
        }
        result.error = Some(e);
        return;
    }
    if result.exit_code.is_none() && result.signal.is_none() {
        let base = &ctx.ssh.settings.client;
        let keepalive = profile
            .keepalive
            .or(base.keepalive_interval.map(|interval| Keepalive {
                interval,
                max: base.keepalive_max,
            }));
        let msg = match (handle.is_closed(), keepalive, base.inactivity_timeout) {
            (true, Some(k), idle) => format!(
                "connection lost before the command's exit status (closed by the server, or {} keepalives unanswered at {:?} intervals{})",
                k.max,
                k.interval,
                idle.map(|t| format!(", or nothing received for the inactivity timeout of {t:?}"))
                    .unwrap_or_default()
            ),
            (true, None, Some(t)) => format!(
                "connection lost before the command's exit status (closed by the server, or nothing sent or received for the inactivity timeout of {t:?})"
            ),
            (true, None, None) => "connection lost before the command's exit status".to_string(),
            (false, ..) => "channel closed without an exit status".to_string(),
        };
        result.error = Some(HostError::new(ErrorKind::Disconnected, msg));
    }
}

/// Where the command's output goes: into the result and the run's events, through the sudo
/// gate while there is one watching its stream.
struct Outlet<'a> {
    ctx: &'a HostCtx,
    cap: usize,
    secret: Option<&'a [u8]>,
    sudo: Option<SudoAnswer<'a>>,
}

/// Answering sudo (`super::sudo`): the gate on the stream its prompt and READY come on, the
/// channel to send the password on, and the signal that lets standard input flow.
struct SudoAnswer<'a> {
    gate: SudoGate,
    stream: StreamKind,
    write: &'a WriteHalf,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    password_sent: bool,
    /// sudo asked again after the password was sent.
    refused: bool,
    /// How long each of sudo's steps may take.
    bound: Duration,
}

/// The least time each of sudo's steps gets (the connect timeout when longer): a login
/// shell's start, a directory lookup or PAM's delay after a wrong password take seconds.
const SUDO_STEP: Duration = Duration::from_secs(30);

/// The error of a host whose sudo refused the password.
fn sudo_refused() -> HostError {
    HostError::new(
        ErrorKind::Auth,
        "sudo refused the password (it asked for it again); the command was not run",
    )
}

impl Outlet<'_> {
    /// Whether sudo has yet to let the command start (or, refused, to end).
    fn awaiting_sudo(&self) -> bool {
        self.sudo.as_ref().is_some_and(|s| !s.gate.is_ready())
    }

    /// Whether sudo asked for the password again: it refused the one sent.
    fn refused(&self) -> bool {
        self.sudo.as_ref().is_some_and(|s| s.refused)
    }

    /// The error of a sudo that took longer than its bound over its current step.
    fn sudo_stalled(&self) -> HostError {
        let bound = self.sudo.as_ref().map(|s| s.bound).unwrap_or_default();
        match &self.sudo {
            Some(s) if s.refused => sudo_refused(),
            Some(s) if s.password_sent => HostError::new(
                ErrorKind::CommandTimeout,
                format!(
                    "sudo did not start the command within {bound:?} of being sent the password (a further question fleetsh does not answer, such as a one-time code?)"
                ),
            ),
            _ => HostError::new(
                ErrorKind::CommandTimeout,
                format!(
                    "sudo neither asked for the password with fleetsh's prompt nor started the command within {bound:?} (a PAM question of its own, such as a Kerberos \"Password for user@REALM:\" or a one-time code?)"
                ),
            ),
        }
    }

    /// Takes a chunk of the command's `stream`. When sudo moves on (it was sent the password,
    /// or refused it), `sudo_wait` is set again: each step gets a bound of its own.
    async fn output(
        &mut self,
        result: &mut HostResult,
        stream: StreamKind,
        data: &[u8],
        sudo_wait: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<(), HostError> {
        let Some(s) = self
            .sudo
            .as_mut()
            .filter(|s| s.stream == stream && !s.gate.is_ready())
        else {
            on_output(self.ctx, result, stream, data, self.cap, self.secret).await;
            return Ok(());
        };
        let (pass, found) = s.gate.feed(data);
        if !pass.is_empty() {
            on_output(self.ctx, result, stream, &pass, self.cap, self.secret).await;
        }
        let mut moved = false;
        for marker in found {
            match marker {
                Marker::Prompt if !s.password_sent => {
                    s.password_sent = true;
                    moved = true;
                    let mut line = self.secret.unwrap_or_default().to_vec();
                    line.push(b'\n');
                    s.write.data_bytes(line).await.map_err(|e| {
                        HostError::new(
                            ErrorKind::Channel,
                            format!("sending sudo's password failed: {}", describe(&e)),
                        )
                    })?;
                }
                // Asked again: the password was refused. No other attempt (the command's own
                // input is never tried as a password): end of input, and sudo reports it. A
                // terminal's input ends with ^D at the start of a line, not with the
                // channel's EOF (sshd keeps the pty open).
                Marker::Prompt if !s.refused => {
                    s.refused = true;
                    moved = true;
                    if s.stream == StreamKind::Stdout
                        && let Err(e) = s.write.data_bytes(&b"\x04"[..]).await
                    {
                        tracing::debug!("^D after a refused sudo password: {e}");
                    }
                    if let Err(e) = s.write.eof().await {
                        tracing::debug!("EOF after a refused sudo password: {e}");
                    }
                }
                Marker::Prompt => {}
                Marker::Ready => {
                    if let Some(tx) = s.ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        }
        if moved {
            sudo_wait.reset(tokio::time::Instant::now() + s.bound);
        }
        Ok(())
    }

    /// Passes on what the gate still holds, at the end of the command.
    async fn finish(&mut self, result: &mut HostResult) {
        if let Some(s) = self.sudo.as_mut() {
            let rest = s.gate.finish();
            let stream = s.stream;
            if !rest.is_empty() {
                on_output(self.ctx, result, stream, &rest, self.cap, self.secret).await;
            }
        }
    }
}

/// A random nonce for a host's sudo markers (never secret: it keeps them unique).
fn sudo_nonce() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    })
}

async fn on_output(
    ctx: &HostCtx,
    result: &mut HostResult,
    stream: StreamKind,
    data: &[u8],
    cap: usize,
    secret: Option<&[u8]>,
) {
    let buf = match stream {
        StreamKind::Stdout => &mut result.stdout,
        StreamKind::Stderr => &mut result.stderr,
    };
    capture(buf, data, cap, &mut result.truncated);
    if ctx.job.stream_output {
        // Wait for room before sending (and before reading more of this channel).
        let room = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => false,
            ok = ctx.sink.budget().take(data.len()) => ok,
        };
        if !room {
            return;
        }
        let mut chunk = data.to_vec();
        if let Some(pw) = secret {
            command::scrub(&mut chunk, pw);
        }
        ctx.sink.send(Event::Output {
            host: result.index,
            stream,
            data: chunk,
        });
    }
}

/// Records the end of the command's output (first of EOF, exit status, close).
fn end_of_output(
    result: &mut HostResult,
    end: &mut Option<Duration>,
    start: Instant,
    t_exec: Duration,
) {
    if end.is_some() {
        return;
    }
    let now = start.elapsed();
    *end = Some(now);
    let read_from = t_exec + result.timings.exec.unwrap_or_default();
    result.timings.read = Some(now.saturating_sub(read_from));
}

fn sig_name(sig: &russh::Sig) -> String {
    let s = format!("{sig:?}");
    // `Sig::Custom(name)` debug-prints as `Custom("NAME")`.
    if let Some(inner) = s
        .strip_prefix("Custom(\"")
        .and_then(|r| r.strip_suffix("\")"))
    {
        return inner.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn capture_respects_cap_and_flags_truncation() {
        let mut buf = Vec::new();
        let mut t = false;
        capture(&mut buf, b"hello", 8, &mut t);
        assert!(!t);
        capture(&mut buf, b"world", 8, &mut t);
        assert!(t);
        assert_eq!(buf, b"hellowor");
    }

    #[test]
    fn signal_names_have_no_prefix() {
        assert_eq!(sig_name(&russh::Sig::KILL), "KILL");
        assert_eq!(sig_name(&russh::Sig::Custom("USR9".into())), "USR9");
    }
}

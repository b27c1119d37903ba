//! The per-connection russh handler ([`SimHandler`]): authentication requests (decided in
//! [`auth`](super::auth)), session channels waiting for their exec or subsystem request
//! with their `pty-req`, `env` and agent requests, exec requests (started as
//! [`exec`](super::exec) tasks with a stdin [`pump`](super::pump)), the `sftp` subsystem,
//! and `direct-tcpip` tunnels to the fleet's own listeners.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::server::{self, Auth, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::drop_fault::DropFault;
use super::exec::{Job, exec};
use super::host::{Host, Shared};
use super::pump::{OutputWait, STDIN_PIPE, pump_stdin};
use crate::Fault;
use crate::agent::ForwardedAgent;
use crate::sftp::{SftpCut, SftpServer};
use crate::shell::{Context, Stdin};
use crate::stream::{CutSwitch, Freeze};
use crate::tunnel;

/// A session channel between its opening and its exec or subsystem request.
struct PendingChannel {
    /// Unread until then: russh queues what the client sends.
    channel: Channel<Msg>,
    /// Variables from accepted `env` requests.
    env: BTreeMap<String, String>,
    /// A `pty-req` was accepted.
    pty: bool,
    /// An `auth-agent-req@openssh.com` was accepted.
    agent: bool,
}

/// The per-connection russh handler.
pub(super) struct SimHandler {
    pub(super) host: Arc<Host>,
    pub(super) shared: Arc<Shared>,
    /// Cuts the connection (`drop` and `sftp-cut` faults only).
    cut: Option<Arc<CutSwitch>>,
    /// The `sftp-cut` fault's count of the connection's write data.
    sftp_cut: Option<SftpCut>,
    /// The `freeze` fault's switch, armed at authentication.
    pub(super) freeze: Option<Arc<Freeze>>,
    /// The authenticated user.
    pub(super) user: String,
    /// Session channels opened but not yet given an exec or subsystem request.
    pending: HashMap<ChannelId, PendingChannel>,
    /// Exec tasks by channel, aborted when the channel or the connection closes.
    running: HashMap<ChannelId, AbortHandle>,
}

impl Drop for SimHandler {
    /// The session is over (the handler lives exactly as long as it): stop its commands,
    /// which may be waiting for window space that will never come.
    fn drop(&mut self) {
        for (_, task) in self.running.drain() {
            task.abort();
        }
    }
}

impl SimHandler {
    /// The handler of a new connection to `host`, with the connection's fault switches.
    pub(super) fn new(
        host: Arc<Host>,
        shared: Arc<Shared>,
        cut: Option<Arc<CutSwitch>>,
        sftp_cut: Option<SftpCut>,
        freeze: Option<Arc<Freeze>>,
    ) -> SimHandler {
        SimHandler {
            host,
            shared,
            cut,
            sftp_cut,
            freeze,
            user: String::new(),
            pending: HashMap::new(),
            running: HashMap::new(),
        }
    }

    /// Whether an `env` request for `name` is accepted.
    fn accepts_env(&self, name: &str) -> bool {
        match &self.shared.accept_env {
            None => true,
            Some(patterns) => patterns.iter().any(|p| glob_match(p, name)),
        }
    }
}

impl server::Handler for SimHandler {
    type Error = russh::Error;

    /// With a user CA, every key is let through to the signed request: russh offers a
    /// certificate here as its bare key, indistinguishable from a plain key, and the
    /// certificate itself is checked in `auth_openssh_certificate`.
    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.shared.user_ca.is_some() && !self.auth_fails() {
            return Ok(Auth::Accept);
        }
        Ok(self.accepts_key(offer.public_key))
    }

    /// Called once russh has checked the certificate's own signature and validity period
    /// and the signature of the request; see
    /// [`accepts_certificate`](super::auth::accepts_certificate).
    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        let auth = self.accepts_user_certificate(user, certificate);
        Ok(self.authenticated(user, auth))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let auth = self.accepts_key(key.public_key);
        Ok(self.authenticated(user, auth))
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let auth = self.accepts_password(password);
        Ok(self.authenticated(user, auth))
    }

    /// One round: a `Password: ` prompt (echo off), then the answer compared with the
    /// password.
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if self.shared.password.is_none() {
            return Ok(Auth::reject());
        }
        let Some(answers) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Borrowed(&[(Cow::Borrowed("Password: "), false)]),
            });
        };
        let auth = self.accepts_password_answers(answers);
        Ok(self.authenticated(user, auth))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.insert(
            channel.id(),
            PendingChannel {
                channel,
                env: BTreeMap::new(),
                pty: false,
                agent: false,
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if matches!(self.host.behaviour.fault, Some(Fault::NoForward)) {
            let reason = format!(
                "fleetsh-sim: {} does not forward connections (no-forward fault)",
                self.host.shell.name
            );
            reply.reject(prohibited(reason)).await;
            return Ok(());
        }
        let resolved = match self.shared.directory.get() {
            Some(directory) => directory.resolve(host_to_connect, port_to_connect),
            None => Err(tunnel::Refusal(
                "fleetsh-sim: the fleet is not ready".into(),
            )),
        };
        let (target, addr) = match resolved {
            Ok(found) => found,
            Err(tunnel::Refusal(reason)) => {
                tracing::debug!(host = %self.host.shell.name, to = host_to_connect, port = port_to_connect, "direct-tcpip refused");
                reply.reject(prohibited(reason)).await;
                return Ok(());
            }
        };
        // Connect in a task of its own: the session goes on meanwhile.
        let counters = self.host.counters.clone();
        let bastion = self.host.shell.name.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(tunnel::CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    counters.tunnels.fetch_add(1, Ordering::Relaxed);
                    reply.accept().await;
                    tunnel::pipe(channel, tcp).await;
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::debug!(%bastion, target, %addr, "direct-tcpip connect failed: {why}");
                    reply
                        .reject(ChannelOpenFailure::Other {
                            code: ChannelOpenFailure::ConnectFailed.code(),
                            reason: format!("fleetsh-sim: connect to {addr} failed: {why}"),
                        })
                        .await;
                }
            }
        });
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.remove(&channel);
        if let Some(task) = self.running.remove(&channel) {
            task.abort();
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.pending.get_mut(&channel) {
            Some(pending) => {
                pending.pty = true;
                session.channel_success(channel)
            }
            // Too late: the command runs already.
            None => session.channel_failure(channel),
        }
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let accepted = self.accepts_env(variable_name);
        match self.pending.get_mut(&channel) {
            Some(pending) if accepted => {
                pending
                    .env
                    .insert(variable_name.to_owned(), variable_value.to_owned());
                session.channel_success(channel)
            }
            _ => {
                tracing::debug!(name = variable_name, "env request refused");
                session.channel_failure(channel)
            }
        }
    }

    /// Agent forwarding: remembered for the channel's command (`ssh-add`); russh answers
    /// success or failure from the returned flag.
    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        match self.pending.get_mut(&channel) {
            Some(pending) => {
                pending.agent = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != "sftp" {
            tracing::debug!(name, "subsystem refused");
            return session.channel_failure(channel);
        }
        let Some(pending) = self.pending.remove(&channel) else {
            return session.channel_failure(channel);
        };
        let root = self.shared.roots.join(&self.host.shell.name);
        let evil = matches!(self.host.behaviour.fault, Some(Fault::SftpEvil));
        let cut = self.sftp_cut.as_ref().map(SftpCut::share);
        match SftpServer::new(&root, evil, cut) {
            Ok(server) => {
                session.channel_success(channel)?;
                // Serves on a task of its own until the channel closes.
                russh_sftp::server::run(pending.channel.into_stream(), server).await;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(host = %self.host.shell.name, root = %root.display(), "cannot serve sftp: {e}");
                session.channel_failure(channel)
            }
        }
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(pending) = self.pending.remove(&channel) else {
            // Unknown channel, or a second exec on the same channel.
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        self.host.counters.commands.fetch_add(1, Ordering::Relaxed);
        let (read, write) = pending.channel.split();
        let (pipe_in, pipe_out) = tokio::io::duplex(STDIN_PIPE);
        let output = Arc::new(OutputWait::default());
        tokio::spawn(pump_stdin(read, pipe_in, output.clone()));
        let mut ctx = Context::new(self.host.shell.clone(), self.user.clone());
        ctx.env = pending.env;
        ctx.pty = pending.pty;
        ctx.sudo_password = self.shared.sudo_password.clone();
        ctx.sudo_own_prompt = self.shared.sudo_own_prompt.clone();
        ctx.sudo_then_ask = self.shared.sudo_then_ask.clone();
        ctx.stdin = Stdin::new(pipe_out);
        if pending.agent {
            ctx.agent = Some(Arc::new(ForwardedAgent {
                handle: session.handle(),
            }));
        }
        let drop = match (&self.host.behaviour.fault, &self.cut) {
            // The success reply above is queued, not written yet.
            (Some(Fault::Drop), Some(switch)) => Some(DropFault::new(switch)),
            _ => None,
        };
        let job = Job {
            write,
            output,
            handle: session.handle(),
            host: self.host.clone(),
            drop,
            command: String::from_utf8_lossy(data).into_owned(),
            ctx,
        };
        let task = tokio::spawn(exec(job));
        // Forget finished commands whose close the client has not sent (yet).
        self.running.retain(|_, task| !task.is_finished());
        self.running.insert(channel, task.abort_handle());
        Ok(())
    }
}

/// A channel open failure "administratively prohibited" with its own description.
fn prohibited(reason: String) -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: ChannelOpenFailure::AdministrativelyProhibited.code(),
        reason,
    }
}

/// Whether `name` matches an OpenSSH-style pattern (`*` any run, `?` one character).
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with one backtracking point for the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_patterns() {
        assert!(glob_match("LANG", "LANG"));
        assert!(!glob_match("LANG", "LANGUAGE"));
        assert!(glob_match("LC_*", "LC_ALL"));
        assert!(glob_match("LC_*", "LC_"));
        assert!(!glob_match("LC_*", "XLC_ALL"));
        assert!(glob_match("*", "ANY"));
        assert!(glob_match("A?C", "ABC"));
        assert!(!glob_match("A?C", "AC"));
        assert!(glob_match("*_TOKEN", "GH_TOKEN"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYbd"));
    }
}

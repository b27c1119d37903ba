//! The SSH side of the sim: per-host accept loops, the russh handler, and exec tasks.
//!
//! # Stdin
//!
//! Each exec request's channel gets a stdin pump: a task that reads the channel's
//! messages and writes their data into a [`STDIN_PIPE`]-byte pipe the command reads as
//! stdin (the client's EOF closes the pipe). russh hands channel messages over through a
//! 100-message queue and stalls the whole session when it is full; it also re-opens the
//! client's window as soon as it has queued the data, so the pump is the only brake:
//!
//! 1. The command reads: the pump moves data into the pipe as room frees up.
//! 2. The command does not read, and the pipe is full: the pump stops reading, the queue
//!    fills and the session waits, which holds the connection's input back like a full
//!    pipe would.
//! 3. The command waits for window space to write its output (`cat` of a big input): the
//!    window adjustment that would free it is queued behind stdin the stalled session has
//!    not read, so waiting would deadlock. The pump then keeps reading into a spill buffer
//!    (up to [`STDIN_SPILL`] bytes) until the command can write again.
//! 4. The command is done with stdin (it ended, or its script did): the rest is drained and
//!    discarded, so unread input never stalls the session for long.
//!
//! Per-host faults ([`Fault`]) act here: at accept (`refuse`, `silent`, `slow-banner`),
//! in the handler (`auth-fail`), in the host's russh config (`hostkey-mismatch`), around
//! the command (`drop`, `hang`, `flood`, `exit`), in the SFTP subsystem (`sftp-evil`,
//! `sftp-cut`, see [`crate::sftp`]), and in the connection's stream (`freeze`, armed at
//! authentication, see [`crate::stream::Freeze`]).
//!
//! # Subsystems
//!
//! A session channel waits in the handler's pending map, unsplit, until its exec or
//! subsystem request. Exec splits it and starts the stdin pump; the `sftp` subsystem
//! turns it into a stream for russh-sftp's server loop with an [`SftpServer`] on the
//! host's root directory (`state_dir/root/<host name>`, created then). Other subsystems
//! are refused.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::keys::ssh_key::public::KeyData;
use russh::server::{self, Auth, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{
    Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf,
    Disconnect, Sig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;

use crate::Fault;
use crate::agent::ForwardedAgent;
use crate::sftp::{SftpCut, SftpServer};
use crate::shell::{self, CHUNK, Closed, Context, Exit, ShellHost, Sink, Stdin, Stream};
use crate::stream::{CutSwitch, Freeze, SimStream};
use crate::tunnel::{self, Directory};

/// Capacity of a channel's stdin pipe.
const STDIN_PIPE: usize = 4 << 20;

/// Most stdin held beyond the pipe while the command waits for output window space.
const STDIN_SPILL: usize = 64 << 20;

/// `drop` fault: the longest wait for the exec request's reply to be written.
const DROP_REPLY_WAIT: Duration = Duration::from_secs(1);

/// `drop` fault: the longest wait for the first line to be written; then the connection is
/// cut anyway.
const DROP_LINE_WAIT: Duration = Duration::from_secs(5);

/// Fewest bytes a channel data packet adds on the wire to its data: packet length (4),
/// padding length (1), message type (1), channel (4), data length (4), padding (4 at least)
/// and a MAC or AEAD tag (16 at least with every cipher russh offers).
const MIN_PACKET_OVERHEAD: u64 = 34;

/// Per-host behaviour: the host's fault, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostBehaviour {
    pub(crate) fault: Option<Fault>,
}

/// Everything one simulated host needs to serve.
#[derive(Debug)]
pub(crate) struct Host {
    /// What the shell sees (name, `$$`).
    pub(crate) shell: ShellHost,
    /// The host's fault.
    pub(crate) behaviour: HostBehaviour,
    /// The russh config with this host's key (the other key for `hostkey-mismatch`).
    pub(crate) config: Arc<server::Config>,
    /// What the host counts, read by [`SimFleet`](crate::SimFleet).
    pub(crate) counters: Arc<HostCounters>,
}

/// Per-host counters (relaxed atomics: tests read them once the work is done).
#[derive(Debug, Default)]
pub(crate) struct HostCounters {
    /// TCP connections accepted by the host's listener (whatever happened next).
    pub(crate) accepted: AtomicU64,
    /// `direct-tcpip` channels opened through the host (accepted and connected).
    pub(crate) tunnels: AtomicU64,
    /// Accepted TCP connections the host's server has since closed (or seen closed).
    pub(crate) closed: AtomicU64,
}

/// Counts its connection as closed when dropped (at the end of the connection's task).
struct Open(Arc<HostCounters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// What all hosts share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The client public key accepted for public-key auth (key data only, no comment).
    pub(crate) client_key: KeyData,
    /// The password accepted for password and keyboard-interactive auth, if any.
    pub(crate) password: Option<String>,
    /// Refuse the `password` method (keyboard-interactive only).
    pub(crate) kbd_interactive_only: bool,
    /// The CA whose user certificates are accepted, if any.
    pub(crate) user_ca: Option<KeyData>,
    /// Patterns of the environment variables accepted (`None`: all).
    pub(crate) accept_env: Option<Vec<String>>,
    /// The password `sudo` accepts, if any.
    pub(crate) sudo_password: Option<Arc<str>>,
    /// How late the server sees what clients send.
    pub(crate) latency: Option<Duration>,
    /// Where the hosts' SFTP root directories go (`state_dir/root`).
    pub(crate) roots: PathBuf,
    /// The fleet's listeners, the only `direct-tcpip` destinations; set once bound
    /// (before the first connection is accepted).
    pub(crate) directory: OnceLock<Directory>,
}

/// Keeps the fleet's shutdown protocol: a flag every task watches, and a channel whose
/// receiver sees `None` once every connection task (each holding a sender) has ended.
#[derive(Debug, Clone)]
pub(crate) struct Lifeline {
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Never read: dropping the last clone is the signal.
    pub(crate) _alive: mpsc::Sender<()>,
}

impl Lifeline {
    /// Resolves once the fleet is stopping (or its controller is gone).
    pub(crate) async fn stopping(&mut self) {
        let _ = self.shutdown.wait_for(|stop| *stop).await;
    }
}

/// Accepts connections on one host's listener until the fleet stops.
///
/// russh's `run_on_socket` returns on the first `accept()` error (EMFILE included); a fleet
/// must outlive such bursts, so this loop logs, pauses 10 ms and goes on.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    host: Arc<Host>,
    shared: Arc<Shared>,
    mut lifeline: Lifeline,
) {
    loop {
        let accepted = tokio::select! {
            () = lifeline.stopping() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                host.counters.accepted.fetch_add(1, Ordering::Relaxed);
                let open = Open(host.counters.clone());
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(host = %host.shell.name, %peer, "set_nodelay failed: {e}");
                }
                match host.behaviour.fault {
                    // Closed before a single byte is sent.
                    Some(Fault::Refuse) => drop((stream, open)),
                    Some(Fault::Silent) => {
                        let lifeline = lifeline.clone();
                        tokio::spawn(async move {
                            silent(stream, lifeline).await;
                            drop(open);
                        });
                    }
                    _ => {
                        let served = serve_connection(
                            host.clone(),
                            shared.clone(),
                            stream,
                            lifeline.clone(),
                        );
                        tokio::spawn(async move {
                            served.await;
                            drop(open);
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    host = %host.shell.name,
                    addr = ?listener.local_addr().ok(),
                    "accept failed: {e}; retrying in 10 ms"
                );
                tokio::select! {
                    () = lifeline.stopping() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    }
}

/// A `silent` host's connection: never writes; reads and discards until the client closes
/// the connection or the fleet stops.
async fn silent(mut stream: TcpStream, mut lifeline: Lifeline) {
    let mut buf = vec![0u8; 1024];
    loop {
        tokio::select! {
            () = lifeline.stopping() => return,
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Runs one SSH connection until it ends, the fleet stops, or a `drop` fault cuts it.
async fn serve_connection(
    host: Arc<Host>,
    shared: Arc<Shared>,
    stream: TcpStream,
    mut lifeline: Lifeline,
) {
    if let Some(Fault::SlowBanner(delay)) = host.behaviour.fault {
        tokio::select! {
            () = lifeline.stopping() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
    // `drop` and `sftp-cut` faults: a switch that shuts the socket down under the session
    // (which runs in a task of its own once started).
    let (stream, cut) = match host.behaviour.fault {
        Some(Fault::Drop | Fault::SftpCut(_)) => match CutSwitch::new(stream) {
            Ok((stream, switch)) => (stream, Some(switch)),
            Err(e) => {
                tracing::warn!(host = %host.shell.name, "cannot set up the drop fault: {e}");
                return;
            }
        },
        _ => (stream, None),
    };
    // `freeze` fault: armed at authentication; holds the socket open once frozen.
    let (stream, freeze) = match host.behaviour.fault {
        Some(Fault::Freeze(after)) => match Freeze::new(stream, after) {
            Ok((stream, freeze)) => (stream, Some(freeze)),
            Err(e) => {
                tracing::warn!(host = %host.shell.name, "cannot set up the freeze fault: {e}");
                return;
            }
        },
        _ => (stream, None),
    };
    let mut stream = SimStream::new(stream, shared.latency);
    if let Some(switch) = &cut {
        stream = stream.with_cut_switch(switch.clone());
    }
    if let Some(freeze) = &freeze {
        stream = stream.with_freeze(freeze.clone());
    }
    let sftp_cut = match (&host.behaviour.fault, &cut) {
        (Some(Fault::SftpCut(limit)), Some(switch)) => Some(SftpCut::new(switch.clone(), *limit)),
        _ => None,
    };
    let handler = SimHandler {
        host: host.clone(),
        shared: shared.clone(),
        cut,
        sftp_cut,
        freeze: freeze.clone(),
        user: String::new(),
        pending: HashMap::new(),
        running: HashMap::new(),
    };
    // `run_stream` waits for the client's identification line: a silent client must not
    // hold up shutdown.
    let started = tokio::select! {
        () = lifeline.stopping() => return,
        started = server::run_stream(host.config.clone(), stream, handler) => started,
    };
    let mut session = match started {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!("ssh connection setup failed: {e}");
            return;
        }
    };
    let handle = session.handle();
    let frozen = || freeze.as_ref().is_some_and(|f| f.is_frozen());
    tokio::select! {
        // A frozen server says no goodbye: dropping the session closes the socket.
        () = lifeline.stopping() => if !frozen() {
            let _ = handle
                .disconnect(Disconnect::ByApplication, "sim fleet stopping".into(), String::new())
                .await;
            // Let the session flush the disconnect; runtime shutdown ends it otherwise.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut session).await;
        },
        ended = &mut session => {
            if let Err(e) = ended {
                tracing::debug!("ssh session ended: {e}");
            }
        }
    }
    // A session stuck in the freeze that gave up (its inactivity timeout) leaves the
    // connection open, held by the freeze switch, until the fleet stops. (One that ended
    // before the freeze stopped it, because the client went, just closes.)
    if freeze.as_ref().is_some_and(|f| f.hit()) {
        drop(session);
        lifeline.stopping().await;
    }
}

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
struct SimHandler {
    host: Arc<Host>,
    shared: Arc<Shared>,
    /// Cuts the connection (`drop` and `sftp-cut` faults only).
    cut: Option<Arc<CutSwitch>>,
    /// The `sftp-cut` fault's count of the connection's write data.
    sftp_cut: Option<SftpCut>,
    /// The `freeze` fault's switch, armed at authentication.
    freeze: Option<Arc<Freeze>>,
    /// The authenticated user.
    user: String,
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
    /// Accepts exactly the sim's client key (nothing on an `auth-fail` host).
    fn accepts_key(&self, key: &russh::keys::PublicKey) -> Auth {
        // `PublicKey ==` compares comments too: compare the key data only.
        if !self.auth_fails() && key.key_data() == &self.shared.client_key {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    /// Whether this host rejects every authentication.
    fn auth_fails(&self) -> bool {
        matches!(self.host.behaviour.fault, Some(Fault::AuthFail))
    }

    /// Remembers the user of a successful authentication.
    fn authenticated(&mut self, user: &str, auth: Auth) -> Auth {
        if matches!(auth, Auth::Accept) {
            self.user = user.to_owned();
            if let Some(freeze) = &self.freeze {
                freeze.arm();
            }
        }
        auth
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
    /// and the signature of the request; see [`accepts_certificate`].
    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        let auth = match &self.shared.user_ca {
            Some(ca) if !self.auth_fails() => {
                match accepts_certificate(ca, user, certificate, std::time::SystemTime::now()) {
                    Ok(()) => Auth::Accept,
                    Err(why) => {
                        tracing::debug!(host = %self.host.shell.name, user, "certificate refused: {why}");
                        Auth::reject()
                    }
                }
            }
            _ => Auth::reject(),
        };
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
        let auth = match &self.shared.password {
            Some(expected)
                if expected == password
                    && !self.auth_fails()
                    && !self.shared.kbd_interactive_only =>
            {
                Auth::Accept
            }
            _ => Auth::reject(),
        };
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
        let Some(expected) = &self.shared.password else {
            return Ok(Auth::reject());
        };
        let Some(mut answers) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Borrowed(&[(Cow::Borrowed("Password: "), false)]),
            });
        };
        let right = answers
            .next()
            .is_some_and(|answer| answer.as_ref() == expected.as_bytes())
            && answers.next().is_none();
        let auth = if right && !self.auth_fails() {
            Auth::Accept
        } else {
            Auth::reject()
        };
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
        let (read, write) = pending.channel.split();
        let (pipe_in, pipe_out) = tokio::io::duplex(STDIN_PIPE);
        let output = Arc::new(OutputWait::default());
        tokio::spawn(pump_stdin(read, pipe_in, output.clone()));
        let mut ctx = Context::new(self.host.shell.clone(), self.user.clone());
        ctx.env = pending.env;
        ctx.pty = pending.pty;
        ctx.sudo_password = self.shared.sudo_password.clone();
        ctx.stdin = Stdin::new(pipe_out);
        if pending.agent {
            ctx.agent = Some(Arc::new(ForwardedAgent {
                handle: session.handle(),
            }));
        }
        let drop = match (&self.host.behaviour.fault, &self.cut) {
            (Some(Fault::Drop), Some(switch)) => Some(DropFault {
                progress: switch.progress(),
                // The success reply above is queued, not written yet.
                at_exec: switch.written(),
                switch: switch.clone(),
            }),
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

/// Whether `cert` lets `user` in, trusting user certificates signed by `ca`: a user
/// certificate, signed by `ca` (and its signature valid), valid at `now`, with `user`
/// among its principals or no principals at all. Critical options are not enforced (none
/// is understood, as the sim has no `force-command` or `source-address` to honour); a
/// certificate carrying any is refused, as OpenSSH refuses unknown ones.
pub(crate) fn accepts_certificate(
    ca: &KeyData,
    user: &str,
    cert: &russh::keys::Certificate,
    now: std::time::SystemTime,
) -> Result<(), &'static str> {
    use russh::keys::ssh_key::certificate::CertType;
    if cert.cert_type() != CertType::User {
        return Err("not a user certificate");
    }
    if cert.signature_key() != ca {
        return Err("not signed by the user CA");
    }
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ca_fingerprint = ca.fingerprint(russh::keys::HashAlg::Sha256);
    if cert.validate_at(now, [&ca_fingerprint]).is_err() {
        return Err("bad signature, or not valid now");
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == user) {
        return Err("the user is not among its principals");
    }
    if !cert.critical_options().is_empty() {
        return Err("it has critical options");
    }
    Ok(())
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

/// Whether a channel's command is writing output (and so possibly waiting for window
/// space); see step 3 of the [module docs](self#stdin).
#[derive(Debug, Default)]
struct OutputWait {
    writing: AtomicBool,
    /// Wakes the pump when `writing` turns on.
    started: Notify,
}

impl OutputWait {
    /// Marks the command as writing until the guard is dropped.
    fn writing(&self) -> WritingGuard<'_> {
        self.writing.store(true, Ordering::Release);
        self.started.notify_one();
        WritingGuard(self)
    }

    fn is_writing(&self) -> bool {
        self.writing.load(Ordering::Acquire)
    }
}

/// See [`OutputWait::writing`].
struct WritingGuard<'a>(&'a OutputWait);

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        self.0.writing.store(false, Ordering::Release);
    }
}

/// Reads a channel's messages until it closes, feeding its data to the command's stdin
/// pipe; see the [module docs](self#stdin) for when it reads and when it waits.
async fn pump_stdin(mut read: ChannelReadHalf, pipe: DuplexStream, output: Arc<OutputWait>) {
    let mut pipe = Some(pipe);
    // Data read from the channel, not yet in the pipe; `offset` into the front piece.
    let mut queue = VecDeque::new();
    let mut queued = 0usize;
    let mut offset = 0usize;
    let mut eof = false;
    loop {
        if queue.is_empty()
            && eof
            && let Some(mut p) = pipe.take()
        {
            let _ = p.shutdown().await; // the command sees the end of its input
        }
        // Read when nothing waits for the pipe, when there is no pipe any more (discard),
        // or when the command waits to write its output (spill).
        let may_read =
            queue.is_empty() || pipe.is_none() || (output.is_writing() && queued < STDIN_SPILL);
        let front = unsent(&queue, offset);
        tokio::select! {
            written = feed(pipe.as_mut(), front), if pipe.is_some() && front.is_some() => {
                match written {
                    Ok(n) => {
                        offset += n;
                        queued -= n;
                        if unsent(&queue, offset).is_some_and(<[u8]>::is_empty) {
                            queue.pop_front();
                            offset = 0;
                        }
                    }
                    Err(_) => {
                        // The command is done with stdin: discard from now on.
                        pipe = None;
                        queue.clear();
                        queued = 0;
                        offset = 0;
                    }
                }
            }
            msg = read.wait(), if may_read => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if pipe.is_some() && !eof && !data.is_empty() {
                        queued += data.len();
                        queue.push_back(data);
                    }
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(_) => {}
                None => return,
            },
            () = output.started.notified(), if !may_read => {}
        }
    }
}

/// The part of the queue's front piece not written yet. (Generic so that the pieces' type,
/// `bytes::Bytes`, which russh does not re-export, need not be named.)
fn unsent<B: AsRef<[u8]>>(queue: &VecDeque<B>, offset: usize) -> Option<&[u8]> {
    queue.front().and_then(|piece| piece.as_ref().get(offset..))
}

/// Writes some of `data` into the pipe.
async fn feed(pipe: Option<&mut DuplexStream>, data: Option<&[u8]>) -> std::io::Result<usize> {
    match (pipe, data) {
        (Some(pipe), Some(data)) => pipe.write(data).await,
        _ => Ok(0),
    }
}

/// One exec request: the channel, the command and what it runs with.
struct Job {
    write: ChannelWriteHalf<Msg>,
    output: Arc<OutputWait>,
    handle: server::Handle,
    host: Arc<Host>,
    /// Set on `drop` hosts.
    drop: Option<DropFault>,
    command: String,
    ctx: Context,
}

/// How a `drop` host cuts its connection once a command's first line is on the wire.
///
/// The session writes in its own task, so "sent" means "queued" to the command. To make
/// sure the client gets the line, in order:
/// 1. wait until the exec request's reply has been written (so later writes are the
///    command's), and note the bytes written by then;
/// 2. queue the line;
/// 3. arm the stream's [`CutSwitch`] at that count plus the line plus
///    [`MIN_PACKET_OVERHEAD`]: the write that gets there shuts the socket down right after
///    handing the line to the kernel, and the client gets a FIN after it.
///
/// The waits are bounded ([`DROP_REPLY_WAIT`], [`DROP_LINE_WAIT`]), so a client that asked
/// for no reply, or stopped reading, is still cut.
struct DropFault {
    switch: Arc<CutSwitch>,
    progress: watch::Receiver<u64>,
    /// Bytes written when the exec request was answered.
    at_exec: u64,
}

impl DropFault {
    /// Step 1: waits for the exec reply to be written; the bytes written by then.
    async fn reply_written(&mut self) -> u64 {
        let at_exec = self.at_exec;
        let _ =
            tokio::time::timeout(DROP_REPLY_WAIT, self.progress.wait_for(|n| *n > at_exec)).await;
        self.switch.written()
    }

    /// Step 3, for `len` bytes of output queued when `before` bytes were written (`len` 0:
    /// cut at once).
    async fn cut_after(self, before: u64, len: usize) {
        if len == 0 {
            self.switch.cut_now();
            return;
        }
        self.switch
            .cut_at(before + len as u64 + MIN_PACKET_OVERHEAD);
        // The session is gone once the cut happens, and this task with it; if the line
        // cannot be written (the client stopped reading), cut anyway.
        tokio::time::sleep(DROP_LINE_WAIT).await;
        self.switch.cut_now();
    }
}

/// Sends shell output as channel data (stdout) or extended data 1 (stderr).
///
/// `ChannelWriteHalf::{data_bytes, extended_data_bytes}` reserve window space before each
/// packet and wait for the client's window adjustments: that is the backpressure. (The
/// session `Handle::data` does not wait for window space: it queues without bound.)
///
/// With a pty, output goes through a terminal's output processing: stderr is merged into
/// stdout (both are the terminal) and every `\n` becomes `\r\n` (`onlcr`).
struct ChannelSink<'a> {
    write: &'a ChannelWriteHalf<Msg>,
    output: &'a OutputWait,
    pty: bool,
    /// `drop` fault: the connection is cut after the first line of stdout.
    drop: Option<DropFault>,
}

impl ChannelSink<'_> {
    /// Sends one piece as it is.
    async fn send(&self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        let _writing = self.output.writing();
        let sent = match (stream, data) {
            (Stream::Stdout, Cow::Borrowed(d)) => self.write.data_bytes(d).await,
            (Stream::Stdout, Cow::Owned(d)) => self.write.data_bytes(d).await,
            (Stream::Stderr, Cow::Borrowed(d)) => self.write.extended_data_bytes(1, d).await,
            (Stream::Stderr, Cow::Owned(d)) => self.write.extended_data_bytes(1, d).await,
        };
        sent.map_err(|_| Closed)
    }
}

impl Sink for ChannelSink<'_> {
    async fn write(&mut self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        let (stream, data) = if self.pty {
            (Stream::Stdout, onlcr(data))
        } else {
            (stream, data)
        };
        if stream == Stream::Stdout
            && self.drop.is_some()
            && let Some(end) = data.iter().position(|b| *b == b'\n')
            && let Some(mut fault) = self.drop.take()
        {
            let before = fault.reply_written().await;
            let line = prefix(data, end + 1);
            let len = line.len();
            self.send(stream, line).await?;
            fault.cut_after(before, len).await;
            return Err(Closed);
        }
        self.send(stream, data).await
    }
}

/// The first `len` bytes of `data`, without copying borrowed data.
fn prefix(data: Cow<'static, [u8]>, len: usize) -> Cow<'static, [u8]> {
    match data {
        Cow::Borrowed(d) => Cow::Borrowed(d.get(..len).unwrap_or(d)),
        Cow::Owned(mut d) => {
            d.truncate(len);
            Cow::Owned(d)
        }
    }
}

/// A terminal's `onlcr` output processing: every `\n` becomes `\r\n`.
fn onlcr(data: Cow<'static, [u8]>) -> Cow<'static, [u8]> {
    let newlines = data.iter().filter(|b| **b == b'\n').count();
    if newlines == 0 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + newlines);
    for b in data.iter() {
        if *b == b'\n' {
            out.push(b'\r');
        }
        out.push(*b);
    }
    Cow::Owned(out)
}

/// The endless output of a `flood` host: 32 KiB of a repeated 64-byte text line.
fn flood_chunk() -> &'static [u8] {
    static CHUNK_DATA: OnceLock<Vec<u8>> = OnceLock::new();
    CHUNK_DATA.get_or_init(|| {
        let line = b"fleetsh-sim flood: the quick brown fox jumps over the lazy dog.\n";
        line.iter().copied().cycle().take(CHUNK).collect()
    })
}

/// Runs one exec request: output, then exit-status (or exit-signal), EOF, close, with the
/// host's fault applied after the output.
async fn exec(job: Job) {
    let Job {
        write,
        output,
        handle,
        host,
        drop: drop_fault,
        command,
        mut ctx,
    } = job;
    let fault = host.behaviour.fault.as_ref();
    let mut sink = ChannelSink {
        write: &write,
        output: &output,
        pty: ctx.pty,
        drop: drop_fault,
    };
    let result = shell::run(&command, &mut ctx, &mut sink).await;
    // Done with stdin: from now on the pump discards it.
    drop(ctx);
    let Ok(mut exit) = result else {
        return; // the client is gone (or the connection was cut)
    };
    match fault {
        // No whole line was written: cut the connection instead of reporting the status.
        Some(Fault::Drop) => {
            if let Some(mut fault) = sink.drop.take() {
                let before = fault.reply_written().await;
                fault.cut_after(before, 0).await;
            }
            return;
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Flood) => {
            while sink
                .write(Stream::Stdout, flood_chunk().into())
                .await
                .is_ok()
            {}
            return;
        }
        Some(Fault::Exit(status)) => exit = Exit::Status(u32::from(*status)),
        _ => {}
    }
    let sent = match exit {
        Exit::Status(status) => write.exit_status(status).await.is_ok(),
        Exit::Signal(name) => handle
            .exit_signal_request(
                write.id(),
                signal(name),
                false,
                String::new(),
                String::new(),
            )
            .await
            .is_ok(),
    };
    if sent {
        let _ = write.eof().await;
        let _ = write.close().await;
    }
}

/// The russh signal for a shell signal name.
fn signal(name: &str) -> Sig {
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn certificate_checks() {
        use russh::keys::Certificate;
        use russh::keys::ssh_key::certificate::{Builder, CertType};
        use std::time::{Duration, SystemTime};
        let ca = crate::keys::ca_key(1);
        let user = crate::keys::client_key(0);
        let now = SystemTime::now();
        let secs = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let make = |kind: CertType, principal: Option<&str>, critical: bool| {
            let mut b = Builder::new(
                [7u8; 16],
                user.public_key().key_data().clone(),
                secs(now) - 60,
                secs(now) + 3600,
            )
            .unwrap();
            b.cert_type(kind).unwrap();
            match principal {
                Some(p) => b.valid_principal(p).unwrap(),
                None => b.all_principals_valid().unwrap(),
            };
            if critical {
                b.critical_option("force-command", "true").unwrap();
            }
            b.sign(&ca).unwrap()
        };
        let ca_key = ca.public_key().key_data();
        let check = |cert: Certificate, user: &str| accepts_certificate(ca_key, user, &cert, now);
        assert_eq!(
            check(make(CertType::User, Some("alice"), false), "alice"),
            Ok(())
        );
        assert_eq!(check(make(CertType::User, None, false), "anyone"), Ok(()));
        assert!(check(make(CertType::User, Some("alice"), false), "bob").is_err());
        assert!(check(make(CertType::Host, None, false), "alice").is_err());
        assert!(check(make(CertType::User, None, true), "alice").is_err());
        let cert = make(CertType::User, None, false);
        let other_ca = crate::keys::ca_key(2);
        assert!(accepts_certificate(other_ca.public_key().key_data(), "a", &cert, now).is_err());
        let later = now + Duration::from_secs(7200);
        assert!(accepts_certificate(ca_key, "a", &cert, later).is_err());
    }

    #[test]
    fn terminal_output_processing() {
        assert_eq!(onlcr(Cow::Borrowed(b"a\nb\n")).as_ref(), b"a\r\nb\r\n");
        assert_eq!(onlcr(Cow::Borrowed(b"none")).as_ref(), b"none");
        assert!(matches!(onlcr(Cow::Borrowed(b"none")), Cow::Borrowed(_)));
        assert_eq!(prefix(Cow::Borrowed(b"one\ntwo\n"), 4).as_ref(), b"one\n");
        assert_eq!(
            prefix(Cow::Owned(b"one\ntwo\n".to_vec()), 4).as_ref(),
            b"one\n"
        );
    }

    #[test]
    fn flood_is_text_lines() {
        let chunk = flood_chunk();
        assert_eq!(chunk.len(), CHUNK);
        assert!(chunk.starts_with(b"fleetsh-sim flood: "));
        assert!(
            chunk
                .iter()
                .all(|b| *b == b'\n' || b.is_ascii_graphic() || *b == b' ')
        );
    }
}

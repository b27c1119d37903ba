//! The SSH side of the sim: per-host accept loops, the russh handler, and exec tasks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::ssh_key::public::KeyData;
use russh::server::{self, Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelWriteHalf, Disconnect, Sig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::shell::{self, Closed, Exit, ShellHost, Sink, Stream};

/// Per-host behaviour knobs. Empty for now: this is where per-host faults (refuse, silent,
/// slow banner, auth failure, host-key mismatch, drop after the first line, hang, flood,
/// forced exit status, latency) will live, read by the accept loop and the handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostBehaviour {}

/// Everything one simulated host needs to serve.
#[derive(Debug)]
pub(crate) struct Host {
    /// What the shell sees (name, `$$`).
    pub(crate) shell: ShellHost,
    /// The host's fault knobs.
    #[allow(dead_code)] // read once faults exist
    pub(crate) behaviour: HostBehaviour,
    /// The russh config with this host's key.
    pub(crate) config: Arc<server::Config>,
}

/// What all hosts share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The client public key accepted for public-key auth (key data only, no comment).
    pub(crate) client_key: KeyData,
    /// The password accepted for password auth, if any.
    pub(crate) password: Option<String>,
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
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(host = %host.shell.name, %peer, "set_nodelay failed: {e}");
                }
                let handler = SimHandler {
                    host: host.clone(),
                    shared: shared.clone(),
                    pending: HashMap::new(),
                    running: HashMap::new(),
                };
                tokio::spawn(serve_connection(
                    host.config.clone(),
                    stream,
                    handler,
                    lifeline.clone(),
                ));
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

/// Runs one SSH connection until it ends or the fleet stops.
async fn serve_connection(
    config: Arc<server::Config>,
    stream: tokio::net::TcpStream,
    handler: SimHandler,
    mut lifeline: Lifeline,
) {
    // `run_stream` waits for the client's identification line: a silent client must not
    // hold up shutdown.
    let started = tokio::select! {
        () = lifeline.stopping() => return,
        started = server::run_stream(config, stream, handler) => started,
    };
    let mut session = match started {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!("ssh connection setup failed: {e}");
            return;
        }
    };
    let handle = session.handle();
    tokio::select! {
        () = lifeline.stopping() => {
            let _ = handle
                .disconnect(Disconnect::ByApplication, "sim fleet stopping".into(), String::new())
                .await;
            // Let the session flush the disconnect; runtime shutdown ends it otherwise.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut session).await;
        }
        ended = &mut session => {
            if let Err(e) = ended {
                tracing::debug!("ssh session ended: {e}");
            }
        }
    }
}

/// The per-connection russh handler.
struct SimHandler {
    host: Arc<Host>,
    shared: Arc<Shared>,
    /// Session channels opened but not yet given an exec request.
    pending: HashMap<ChannelId, Channel<Msg>>,
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
    /// Accepts exactly the sim's client key.
    fn accepts_key(&self, key: &russh::keys::PublicKey) -> Auth {
        // `PublicKey ==` compares comments too: compare the key data only.
        if key.key_data() == &self.shared.client_key {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl server::Handler for SimHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts_key(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts_key(key.public_key))
    }

    async fn auth_password(&mut self, _user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(match &self.shared.password {
            Some(expected) if expected == password => Auth::Accept,
            _ => Auth::reject(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.insert(channel.id(), channel);
        reply.accept().await;
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
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
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
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(chan) = self.pending.remove(&channel) else {
            // Unknown channel, or a second exec on the same channel.
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        // Nothing reads the client's stdin: dropping the read half makes russh discard it
        // instead of blocking the session once the channel's buffer is full.
        let (_read, write) = chan.split();
        let command = String::from_utf8_lossy(data).into_owned();
        let task = tokio::spawn(exec(write, session.handle(), self.host.clone(), command));
        // Forget finished commands whose close the client has not sent (yet).
        self.running.retain(|_, task| !task.is_finished());
        self.running.insert(channel, task.abort_handle());
        Ok(())
    }
}

/// Sends shell output as channel data (stdout) or extended data 1 (stderr).
///
/// `ChannelWriteHalf::{data_bytes, extended_data_bytes}` reserve window space before each
/// packet and wait for the client's window adjustments: that is the backpressure. (The
/// session `Handle::data` does not wait for window space: it queues without bound.)
struct ChannelSink<'a> {
    write: &'a ChannelWriteHalf<Msg>,
}

impl Sink for ChannelSink<'_> {
    async fn write(&mut self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        let sent = match (stream, data) {
            (Stream::Stdout, Cow::Borrowed(d)) => self.write.data_bytes(d).await,
            (Stream::Stdout, Cow::Owned(d)) => self.write.data_bytes(d).await,
            (Stream::Stderr, Cow::Borrowed(d)) => self.write.extended_data_bytes(1, d).await,
            (Stream::Stderr, Cow::Owned(d)) => self.write.extended_data_bytes(1, d).await,
        };
        sent.map_err(|_| Closed)
    }
}

/// Runs one exec request: output, then exit-status (or exit-signal), EOF, close.
async fn exec(
    write: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    host: Arc<Host>,
    command: String,
) {
    let mut sink = ChannelSink { write: &write };
    let Ok(exit) = shell::run(&command, &host.shell, &mut sink).await else {
        return; // the client is gone
    };
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

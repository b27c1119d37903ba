//! The SSH client handler of every session (host-key check, channels the server opens) and
//! how russh's errors read in a host's result.

use std::sync::Arc;

use parking_lot::Mutex;
use russh::client;

use fleetsh_core::ServerInfo;

use super::known_hosts::{HostKeys, KnownHosts, Verdict};

/// An authenticated session to a host, as russh's client handle.
pub(crate) type Handle = client::Handle<ClientHandler>;

/// The client side of one session: checks the server's host key against known_hosts (keeping
/// the verdict for the error message), and refuses every channel the server opens except
/// agent channels when agent forwarding was asked for.
pub(crate) struct ClientHandler {
    pub(super) known: Arc<KnownHosts>,
    /// The host's known_hosts entries, taken before connecting.
    pub(super) entries: HostKeys,
    pub(super) host: String,
    /// The host-key verdict and the server's key algorithm, once checked.
    pub(super) verdict: Arc<Mutex<Option<(Verdict, String)>>>,
    /// The local agent socket, when agent forwarding was asked for.
    pub(super) forward_agent: Option<std::path::PathBuf>,
    /// The server's identification and the algorithms of the first key exchange, once done.
    pub(super) server: Arc<Mutex<Option<ServerInfo>>>,
    /// Whether the first key exchange was recorded (a rekey is not).
    pub(super) server_seen: bool,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (verdict, algo) = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => (
                self.known.verify_key(&self.entries, key.key_data()),
                key.algorithm().as_str().to_string(),
            ),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => (
                self.known.verify_cert(&self.entries, &self.host, cert),
                cert.algorithm().to_certificate_type(),
            ),
        };
        let ok = verdict.accepted();
        *self.verdict.lock() = Some((verdict, algo));
        Ok(ok)
    }

    /// Records what the server is and what the first key exchange settled on (for
    /// [`HostResult::server`](fleetsh_core::HostResult::server)).
    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if self.server_seen {
            return Ok(());
        }
        self.server_seen = true;
        // The host key algorithm negotiated (`rsa-sha2-512`, not the key's type `ssh-rsa`), as
        // a certificate type when the server's key was a certificate.
        let certificate = self
            .verdict
            .lock()
            .as_ref()
            .is_some_and(|(_, algo)| algo.ends_with("-cert-v01@openssh.com"));
        let host_key = if certificate {
            names.key.to_certificate_type()
        } else {
            names.key.as_str().to_string()
        };
        *self.server.lock() = Some(ServerInfo {
            version: String::from_utf8_lossy(session.remote_sshid()).into_owned(),
            kex: names.kex.as_ref().to_string(),
            host_key,
            cipher: names.cipher.as_ref().to_string(),
        });
        Ok(())
    }

    /// A server may open agent channels only when forwarding was asked for; each one is
    /// piped to the local agent socket.
    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(path) = self.forward_agent.clone() else {
            tracing::warn!(host = %self.host, "refused an agent channel the server opened without agent forwarding");
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(async move {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(mut agent) => {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut agent).await;
                }
                Err(e) => tracing::warn!("agent forwarding: cannot reach {}: {e}", path.display()),
            }
        });
        Ok(())
    }

    /// fleetsh never asks for remote port forwarding: such channels are refused.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    /// Refused, as remote port forwarding.
    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<client::Msg>,
        _socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }
}

/// A russh error as a host's error message says it.
pub(crate) fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::Disconnect | russh::Error::HUP => "connection closed by the server".into(),
        russh::Error::IO(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "connection closed by the server".into()
        }
        other => other.to_string().to_lowercase(),
    }
}

//! One SSH session over a byte stream: the handshake with the host-key check, then the
//! authentication flow (`auth`).

use std::sync::Arc;

use fleetsh_core::{ErrorKind, HostError, HostTarget};
use parking_lot::Mutex;
use russh::client;

use super::auth::agent::AgentPool;
use super::auth::{Credentials, authenticate};
use super::dial::{Link, Phase, Progress};
use super::handler::{ClientHandler, Handle, describe};
use super::settings::{HostProfile, SshSettings};

/// The client side a shard's hosts share: the engine's SSH settings and the shard's
/// connections to ssh-agent, and whether its sessions open a session channel first (a host's
/// command or SFTP; not a bastion, whose channels are tunnels).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    pub settings: &'a SshSettings,
    pub agent: Option<&'a AgentPool>,
    pub opens_session: bool,
}

/// The host a session is for: the user, host and port it is reached as (`host` is what
/// known_hosts is searched for), and its ssh_config profile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer<'a> {
    pub target: &'a HostTarget,
    pub profile: &'a HostProfile,
}

impl Client<'_> {
    /// The SSH handshake with `peer` over `link` (host key checked against its known_hosts),
    /// then authentication as its user.
    pub(crate) async fn establish<S>(
        &self,
        peer: Peer<'_>,
        link: Link<S>,
        progress: &mut Progress,
    ) -> Result<Handle, HostError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (settings, target, profile) = (self.settings, peer.target, peer.profile);
        let port = target.port.unwrap_or(22);
        let t_tcp = progress.connect_time();
        progress.phase = Phase::Handshake;
        let guess = settings.guess_fits(link.segment);
        let verdict = Arc::new(Mutex::new(None));
        let server = Arc::new(Mutex::new(None));
        let known_hosts = profile
            .known_hosts
            .as_ref()
            .unwrap_or(&settings.known_hosts);
        let entries = known_hosts.host_keys(&target.host, port);
        let config = settings.client_for(entries.preferences(), profile.keepalive, guess);
        let handler = ClientHandler {
            known: known_hosts.clone(),
            entries,
            host: target.host.clone(),
            verdict: verdict.clone(),
            server: server.clone(),
            server_seen: false,
            forward_agent: settings
                .forward_agent
                .then(|| settings.auth.agent.clone())
                .flatten(),
        };
        let mut handle = match client::connect_stream(config, link.stream, handler).await {
            Ok(h) => h,
            Err(e) => {
                if let Some((v, algo)) = verdict.lock().take()
                    && !v.accepted()
                {
                    let name = super::known_hosts::lookup_name(&target.host, port);
                    return Err(HostError::new(
                        ErrorKind::Hostkey,
                        v.message(&name, known_hosts.path(), &algo),
                    ));
                }
                return Err(HostError::new(
                    ErrorKind::Handshake,
                    format!("ssh handshake failed: {}", describe(&e)),
                ));
            }
        };

        // Known from here on, also if authentication fails.
        progress.server = server.lock().take();
        progress.phase = Phase::Auth;
        let user = target.user.clone().unwrap_or_default();
        let credentials = Credentials {
            material: &settings.auth,
            agent: self.agent,
            profile,
            opens_session: self.opens_session,
        };
        authenticate(&mut handle, &user, &credentials).await?;
        progress.timings.handshake_auth = Some(progress.start.elapsed().saturating_sub(t_tcp));
        Ok(handle)
    }
}

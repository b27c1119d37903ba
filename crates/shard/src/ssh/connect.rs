//! Connecting a host the way its configuration asks: through its `ProxyCommand`, else through
//! its bastions (`-J`, `ProxyJump`), else by TCP; then the session ([`Client::establish`]).

use std::sync::Arc;
use std::time::Duration;

use fleetsh_core::{ErrorKind, HostError, ServerInfo};
use russh::Disconnect;

use super::auth::agent::AgentPool;
use super::dial::{self, Link, Phase, Progress};
use super::handler::Handle;
use super::jump::{Jumps, Reach};
use super::proxy::ProxyProcess;
use super::session::{Client, Peer};
use super::settings::SshSettings;

/// What connecting a shard's hosts needs besides each host: the engine's settings, the shard's
/// ssh-agent connections, and the bastions shared by every shard of the run.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub settings: Arc<SshSettings>,
    pub agent: Option<Arc<AgentPool>>,
    pub jumps: Option<Arc<Jumps>>,
}

/// An authenticated connection, and what carries it: for a tunnelled one the permit that
/// counts it against its bastion's tunnel cap, for a proxied one the `ProxyCommand` process
/// (killed with it).
pub(crate) struct Connection {
    pub handle: Handle,
    /// The server as its key exchange showed it (reported by every job on the connection).
    pub server: Option<ServerInfo>,
    _tunnel: Option<tokio::sync::OwnedSemaphorePermit>,
    _proxy: Option<ProxyProcess>,
}

impl Connection {
    fn direct(handle: Handle, server: Option<ServerInfo>) -> Self {
        Connection {
            handle,
            server,
            _tunnel: None,
            _proxy: None,
        }
    }
}

impl Connector {
    /// The client side for sessions.
    pub(crate) fn client(&self) -> Client<'_> {
        Client {
            settings: &self.settings,
            agent: self.agent.as_deref(),
            opens_session: true,
        }
    }

    /// Connects to `peer` and authenticates: through `proxy` (its expanded `ProxyCommand`) if
    /// there is one, else through its bastions if it has any, else by TCP. `connect_timeout`
    /// bounds a bastion's own connection when this host is the first to need it.
    pub(crate) async fn connect(
        &self,
        peer: Peer<'_>,
        proxy: Option<&str>,
        connect_timeout: Duration,
        progress: &mut Progress,
    ) -> Result<Connection, HostError> {
        let client = self.client();
        if let Some(command) = proxy {
            progress.phase = Phase::Proxy;
            let (mut process, stream) = super::proxy::spawn(command)?;
            progress.connected();
            return match client
                .establish(peer, Link::unknown_path(stream), progress)
                .await
            {
                Ok(handle) => Ok(Connection {
                    handle,
                    server: progress.server.clone(),
                    _tunnel: None,
                    _proxy: Some(process),
                }),
                Err(e) if matches!(e.kind, ErrorKind::Handshake) => Err(process.explain(e).await),
                Err(e) => Err(e),
            };
        }
        let target = peer.target;
        let port = target.port.unwrap_or(22);
        let tunnel = match &self.jumps {
            Some(jumps) => {
                progress.phase = Phase::Tunnel;
                let reach = Reach {
                    settings: &self.settings,
                    connect_timeout,
                };
                jumps
                    .tunnel(
                        &reach,
                        peer.profile.proxy_jump.as_deref(),
                        &target.host,
                        port,
                    )
                    .await?
            }
            None => None,
        };
        if let Some(t) = tunnel {
            progress.connected();
            let handle = client
                .establish(peer, Link::unknown_path(t.stream), progress)
                .await?;
            return Ok(Connection {
                handle,
                server: progress.server.clone(),
                _tunnel: Some(t.permit),
                _proxy: None,
            });
        }
        let link = dial::tcp(&target.host, port, progress).await?;
        let handle = client.establish(peer, link, progress).await?;
        Ok(Connection::direct(handle, progress.server.clone()))
    }
}

/// Tells the server we are done with `c` (best effort).
pub(crate) async fn say_goodbye(c: &Connection) {
    let _ = c
        .handle
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
}

//! A shard's connections to ssh-agent.

use std::fmt;
use std::path::PathBuf;

use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::PublicKey;
use tokio::net::UnixStream;
use tokio::sync::{Mutex, OnceCell, Semaphore};

/// A shard's connections to ssh-agent: a few clients reused across hosts, with the identity list
/// fetched once.
pub(crate) struct AgentPool {
    path: PathBuf,
    idle: Mutex<Vec<AgentClient<UnixStream>>>,
    permits: Semaphore,
    identities: OnceCell<Vec<PublicKey>>,
}

impl fmt::Debug for AgentPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentPool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AgentPool {
    pub(crate) fn new(path: PathBuf, concurrency: usize) -> Self {
        AgentPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(concurrency.max(1)),
            identities: OnceCell::new(),
        }
    }

    pub(crate) async fn identities(&self) -> &[PublicKey] {
        self.identities
            .get_or_init(|| async {
                let _permit = self.permits.acquire().await;
                match self.checkout().await {
                    Ok(mut c) => match c.request_identities().await {
                        Ok(ids) => {
                            self.checkin(c).await;
                            ids.into_iter()
                                .filter_map(|id| match id {
                                    russh::keys::agent::AgentIdentity::PublicKey {
                                        key, ..
                                    } => Some(key),
                                    _ => None,
                                })
                                .collect()
                        }
                        Err(e) => {
                            tracing::warn!("ssh-agent: cannot list identities: {e}");
                            Vec::new()
                        }
                    },
                    Err(e) => {
                        tracing::warn!("ssh-agent at {}: {e}", self.path.display());
                        Vec::new()
                    }
                }
            })
            .await
    }

    pub(crate) async fn acquire(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed.
        match self.permits.acquire().await {
            Ok(p) => p,
            Err(_) => unreachable_permit(),
        }
    }

    pub(crate) async fn checkout(&self) -> Result<AgentClient<UnixStream>, russh::keys::Error> {
        if let Some(c) = self.idle.lock().await.pop() {
            return Ok(c);
        }
        AgentClient::connect_uds(&self.path).await
    }

    pub(crate) async fn checkin(&self, c: AgentClient<UnixStream>) {
        self.idle.lock().await.push(c);
    }
}

#[allow(clippy::panic)]
fn unreachable_permit() -> ! {
    panic!("agent semaphore closed")
}

//! Authentication material, loaded once per engine and shared by every host of every run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::PrivateKey;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::PublicKey;
use tokio::net::UnixStream;
use tokio::sync::{Mutex, OnceCell, Semaphore};

use crate::Error;
pub use fleetsh_core::Secret;

/// A private key loaded from a file.
#[derive(Clone)]
pub struct LoadedKey {
    /// The file it came from.
    pub path: PathBuf,
    /// The key.
    pub key: Arc<PrivateKey>,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("path", &self.path)
            .field("algorithm", &self.key.algorithm().as_str())
            .finish()
    }
}

/// Everything needed to authenticate: keys, agent socket, password.
#[derive(Debug, Clone, Default)]
pub struct AuthMaterial {
    /// Private keys, tried in order after the agent's.
    pub keys: Vec<LoadedKey>,
    /// ssh-agent socket (`SSH_AUTH_SOCK`), if the agent is to be used.
    pub agent: Option<PathBuf>,
    /// Password, tried last when the server offers password authentication.
    pub password: Option<Secret>,
    /// Most concurrent agent signing connections per shard (ssh-agent is single-threaded and
    /// refuses connections under load).
    pub agent_concurrency: usize,
}

/// The default private key files, in OpenSSH's order.
pub fn default_identity_files(home: &Path) -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .collect()
}

impl AuthMaterial {
    /// Loads `files`. When `explicit`, every file must load (a clear error names the bad one);
    /// otherwise (default key files) missing files are skipped and unreadable ones are warned
    /// about.
    pub fn load_keys(
        files: &[PathBuf],
        explicit: bool,
        passphrase: Option<&Secret>,
    ) -> Result<Vec<LoadedKey>, Error> {
        let mut keys = Vec::new();
        for path in files {
            if !explicit && !path.exists() {
                continue;
            }
            warn_if_readable_by_others(path);
            match load_key(path, passphrase) {
                Ok(key) => keys.push(LoadedKey {
                    path: path.clone(),
                    key: Arc::new(key),
                }),
                Err(reason) if explicit => {
                    return Err(Error::Key {
                        path: path.clone(),
                        reason,
                    });
                }
                Err(reason) => tracing::warn!("skipping key {}: {reason}", path.display()),
            }
        }
        Ok(keys)
    }
}

/// Loads a private key: OpenSSH format first (so an encrypted key gets a precise error), then
/// the other formats russh reads (PEM, PKCS#8).
fn load_key(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    match PrivateKey::from_openssh(text.trim()) {
        Ok(key) if key.is_encrypted() => {
            let Some(pp) = passphrase else {
                return Err("the key is encrypted; set FLEETSH_PASSPHRASE".into());
            };
            key.decrypt(pp.expose().as_bytes()).map_err(|_| {
                "cannot decrypt the key with the passphrase from FLEETSH_PASSPHRASE".into()
            })
        }
        Ok(key) => Ok(key),
        Err(_) => russh::keys::load_secret_key(path, passphrase.map(|p| p.expose()))
            .map_err(|e| key_error_reason(&e, passphrase.is_some())),
    }
}

/// OpenSSH refuses a private key that others can read; fleetsh uses it but says so, once per
/// key file per engine.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "permissions {mode:04o} for private key {} are too open: others can read it \
                 (OpenSSH refuses such a key; run chmod 600)",
                path.display()
            );
        }
    }
}

/// Whether others than the owner may read or write `path`.
pub fn key_too_open(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

fn key_error_reason(e: &russh::keys::Error, had_passphrase: bool) -> String {
    let s = e.to_string();
    let lower = s.to_lowercase();
    if lower.contains("encrypted") || lower.contains("passphrase") || lower.contains("decrypt") {
        if had_passphrase {
            "cannot decrypt the key with the passphrase from FLEETSH_PASSPHRASE".into()
        } else {
            "the key is encrypted; set FLEETSH_PASSPHRASE".into()
        }
    } else {
        format!("not a readable private key ({})", lower)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let m = AuthMaterial {
            password: Some(s),
            ..Default::default()
        };
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn explicit_missing_key_is_an_error_naming_the_file() {
        let err = AuthMaterial::load_keys(&[PathBuf::from("/nonexistent/id_x")], true, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/id_x"), "{err}");
    }

    #[test]
    fn default_missing_keys_are_skipped() {
        let keys =
            AuthMaterial::load_keys(&[PathBuf::from("/nonexistent/id_x")], false, None).unwrap();
        assert!(keys.is_empty());
    }
}

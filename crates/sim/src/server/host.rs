//! What one simulated host serves with ([`Host`]: its shell identity, fault, russh config
//! and counters) and what all hosts share ([`Shared`]: the accepted credentials and
//! environment, latency, SFTP roots and the fleet's listeners; [`Lifeline`]: the fleet's
//! shutdown protocol).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use russh::keys::ssh_key::public::KeyData;
use russh::server;
use tokio::sync::{mpsc, watch};

use crate::Fault;
use crate::shell::ShellHost;
use crate::tunnel::Directory;

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
    /// Exec requests accepted (commands run).
    pub(crate) commands: AtomicU64,
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
    /// The prompt `sudo` prints whatever `-p` asks, if any.
    pub(crate) sudo_own_prompt: Option<Arc<str>>,
    /// A second question `sudo` asks after the right password, if any.
    pub(crate) sudo_then_ask: Option<Arc<str>>,
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

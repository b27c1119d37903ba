//! What a measurement process is asked to do: the client under test, its key exchange, the
//! command or the upload, and the fleet's files. The harness sends it as JSON
//! (`fleetsh-bench measure SPEC`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::peers::Peer;

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Client {
    /// The fleetsh engine with this many shards.
    Engine {
        /// Shard threads.
        shards: usize,
    },
    /// Plain russh, one multi-thread tokio runtime, a task per host.
    PlainMultiThread {
        /// Worker threads.
        workers: usize,
    },
    /// Plain russh, one current-thread tokio runtime.
    PlainCurrentThread,
    /// A tool fleetsh replaces, in a child process (`crate::peers`).
    Peer {
        /// Which.
        peer: Peer,
    },
}

impl Client {
    /// A short name for tables.
    pub fn name(self) -> String {
        match self {
            Client::Engine { shards } => format!("engine shards={shards}"),
            Client::PlainMultiThread { workers } => format!("plain russh mt({workers})"),
            Client::PlainCurrentThread => "plain russh ct".into(),
            Client::Peer { peer } => peer.name().into(),
        }
    }
}

/// Key-exchange preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kex {
    /// russh's default order: `mlkem768x25519-sha256` first.
    Default,
    /// `curve25519-sha256` first, the rest of russh's order after it.
    Curve25519,
}

impl Kex {
    /// The name of the algorithm this preference negotiates with the sim.
    pub fn name(self) -> &'static str {
        match self {
            Kex::Default => "mlkem768x25519",
            Kex::Curve25519 => "curve25519",
        }
    }
}

/// What a measurement process is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Row label.
    pub label: String,
    /// Client under test.
    pub client: Client,
    /// Key exchange.
    pub kex: Kex,
    /// Hosts (the first N of the hosts file).
    pub hosts: usize,
    /// Hosts in flight.
    pub fanout: usize,
    /// New connections per second across all shards (engine only), if limited.
    pub rate: Option<f64>,
    /// The command.
    pub command: String,
    /// Connect timeout (engine: TCP + handshake + auth per attempt).
    pub connect_timeout_s: f64,
    /// Command timeout.
    pub command_timeout_s: f64,
    /// Merged hosts file.
    pub hosts_file: PathBuf,
    /// Merged known_hosts.
    pub known_hosts: PathBuf,
    /// Client key.
    pub identity: PathBuf,
    /// The sims' PIDs (their CPU is read over the same interval).
    pub sim_pids: Vec<u32>,
    /// Poll RSS during the run and report the plateau (idle sessions).
    pub sample_rss: bool,
    /// Upload this file instead of running `command` (engine only).
    #[serde(default)]
    pub put: Option<PutSpec>,
    /// Run this `fleetsh` binary (`fleetsh run -H ... -o json`) as the client, in a child
    /// process, instead of the engine in this process (engine clients only): compares builds of
    /// the CLI, e.g. with another global allocator.
    #[serde(default)]
    pub cli: Option<PathBuf>,
    /// The Python interpreter of a Python peer (default `python3`).
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// With `cli`: keep a journal, a new file in this directory each run.
    #[serde(default)]
    pub journal: Option<JournalSpec>,
    /// The login user of the CLI and peer clients [default: `bench`, the simulator's].
    #[serde(default)]
    pub user: Option<String>,
}

impl Spec {
    /// The login user of the CLI and peer clients.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("bench")
    }
}

/// A journal kept by the CLI client (`--journal`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalSpec {
    /// Where the journal files are made (a real disk: `fdatasync` on a memory file system
    /// costs nothing).
    pub dir: PathBuf,
    /// `--journal-sync`.
    pub sync: bool,
    /// Controllers sharing the hosts (`--shard I/N`, each with its own journal), run at once
    /// and then merged (`fleetsh merge -o json`, whose lines are the samples); 1: one `run`.
    #[serde(default = "one")]
    pub controllers: usize,
}

fn one() -> usize {
    1
}

/// An upload in place of the command: `local` to `remote` on every host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutSpec {
    /// The local file.
    pub local: PathBuf,
    /// The remote path.
    pub remote: String,
}

/// The connect and command timeouts of `spec`.
pub fn job_limits(spec: &Spec) -> (Duration, Duration) {
    (
        Duration::from_secs_f64(spec.connect_timeout_s),
        Duration::from_secs_f64(spec.command_timeout_s),
    )
}

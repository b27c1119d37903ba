//! A simulated fleet started for a test (a real russh SSH server on loopback addresses), and
//! an engine that trusts it.

use fleetsh::{Engine, EngineBuilder, HostTarget};
use fleetsh_sim::{SimConfig, SimFleet};

/// A running simulated fleet and the directory of its keys and state (removed with it).
#[derive(Debug)]
pub struct Fleet {
    /// The fleet.
    pub sim: SimFleet,
    _dir: tempfile::TempDir,
}

/// Starts `count` simulated hosts from `seed` (their names, keys and behaviour), accepting
/// `password` when given; panics if the fleet cannot start.
#[track_caller]
pub fn fleet(count: usize, seed: u64, password: Option<&str>) -> Fleet {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let sim = SimFleet::start(SimConfig {
        count,
        port: 0,
        seed,
        state_dir: dir.path().to_path_buf(),
        password: password.map(str::to_string),
        ..SimConfig::default()
    })
    .unwrap_or_else(|e| panic!("the simulated fleet must start for these tests: {e}"));
    Fleet { sim, _dir: dir }
}

impl Fleet {
    /// A fleet already started in `dir` (kept as long as the fleet).
    pub fn new(sim: SimFleet, dir: tempfile::TempDir) -> Fleet {
        Fleet { sim, _dir: dir }
    }

    /// Every host as a target: its address and port.
    pub fn targets(&self) -> Vec<HostTarget> {
        self.sim
            .hosts()
            .iter()
            .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
            .collect()
    }

    /// An engine builder with `shards` shards that trusts the fleet's host keys and logs in as
    /// `tester` with the fleet's client key (no agent).
    pub fn engine(&self, shards: usize) -> EngineBuilder {
        Engine::builder()
            .shards(shards)
            .user("tester")
            .no_agent()
            .identity_file(self.sim.client_key_file())
            .known_hosts(self.sim.known_hosts_file())
    }
}

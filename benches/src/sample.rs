//! What several scenarios share: one host's outcome as the statistics need it, and hosts files
//! for the clients under test. A leaf: it uses no other module of the bench.

use anyhow::Result;
use fleetsh::{HostTarget, Timings};

/// One host's outcome, as the statistics need it.
#[derive(Debug, Clone)]
pub struct HostSample {
    /// `None` when the command exited 0; else a short kind.
    pub error: Option<String>,
    /// Bytes of output received (stdout and stderr).
    pub output_bytes: usize,
    /// Timings.
    pub timings: Timings,
}

impl HostSample {
    /// A host that failed outside its own code.
    pub fn failed(why: String) -> Self {
        HostSample {
            error: Some(why),
            output_bytes: 0,
            timings: Timings::default(),
        }
    }
}

/// Writes `targets` one per line (`host:port` with `ports`, else `host`) to `path`.
pub fn write_hosts_file(path: &std::path::Path, targets: &[HostTarget], ports: bool) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for t in targets {
        if ports {
            writeln!(f, "{}:{}", t.host, t.port.unwrap_or(22))?;
        } else {
            writeln!(f, "{}", t.host)?;
        }
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

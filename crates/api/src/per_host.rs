//! Per-host commands are worked out before a run starts, on the caller's thread.

use std::sync::Arc;

use fleetsh_core::{HostTarget, Job};
use fleetsh_shard::{HostPlan, SshSettings};

/// Replaces a per-host function or map in `job` with the list of every host's command, in host
/// order, for the hosts at the indices in `run` (see [`fleetsh_core::PerHost::resolve`]). The
/// function gets each host with the user and port the run will use (from the target, its
/// ssh_config profile, or the engine's defaults). Fails, naming the host, on a host without a
/// command.
pub(crate) fn resolve(
    job: &mut Job,
    targets: &[HostTarget],
    run: &[usize],
    settings: &SshSettings,
    plans: Option<&Arc<[HostPlan]>>,
) -> Result<(), fleetsh_core::Error> {
    let Some(per_host) = &job.per_host else {
        return Ok(());
    };
    let default_plan = HostPlan::default();
    let effective: Vec<HostTarget> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let plan = plans.and_then(|p| p.get(i)).unwrap_or(&default_plan);
            fleetsh_shard::effective_target(settings, plan, t)
        })
        .collect();
    job.per_host = Some(per_host.resolve(targets, &effective, run)?);
    Ok(())
}

//! What fleetsh's tests and benchmarks share, written once:
//! - [`sshd`]: a real OpenSSH `sshd` started on loopback, with its keys, known_hosts and log;
//! - [`sim`]: a simulated fleet started for a test, and an engine that trusts it;
//! - [`slurm`]: a real single-node Slurm cluster (munged, slurmctld, slurmd) started for a test;
//! - [`run`]: build an engine, run a job, join the report;
//! - [`fuzz`]: replay the fuzzers' kept inputs through their checks;
//! - [`each_shards!`]: one scenario as two tests, with one shard and with several.
//!
//! Everything here panics with a message saying what is missing or wrong (a test that cannot
//! start its server fails; it never skips), except [`sshd::Builder::start`], which returns the
//! error for programs that report it themselves (the benchmark harness).

// A test kit fails the test that uses it: panicking with a message is its way to report.
#![allow(clippy::panic)]

pub mod fuzz;
pub mod sim;
pub mod slurm;
pub mod sshd;

use fleetsh::{EngineBuilder, HostTarget, Job, Report};

/// Builds the engine, runs `job` on `targets` and waits for the report; panics naming the
/// step that failed.
#[track_caller]
pub fn run(builder: EngineBuilder, targets: Vec<HostTarget>, job: Job) -> Report {
    let engine = builder
        .build()
        .unwrap_or_else(|e| panic!("the engine must build: {e}"));
    engine
        .run(targets, job)
        .unwrap_or_else(|e| panic!("the run must start: {e}"))
        .join()
}

/// Defines module `$name` holding one scenario, a function of the shard count, and two tests:
/// `one_shard` runs it with 1 shard, `several_shards` with `$several`.
///
/// ```ignore
/// each_shards!(3, echo_everywhere, |shards| {
///     let report = run(fleet.engine(shards), fleet.targets(), job("echo hi"));
///     assert!(report.all_ok());
/// });
/// ```
#[macro_export]
macro_rules! each_shards {
    ($several:literal, $name:ident, |$shards:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn scenario($shards: usize) $body
            #[test]
            fn one_shard() {
                scenario(1)
            }
            #[test]
            fn several_shards() {
                scenario($several)
            }
        }
    };
}

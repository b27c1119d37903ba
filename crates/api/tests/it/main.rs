//! Integration tests of the `fleetsh` crate, one module per area:
//! - `auth`: certificates, passphrase prompts, agent forwarding (against sshd);
//! - `engine`: the engine against the simulated fleet, each scenario with 1 and 3 shards;
//! - `jobs`: literal and template commands, per-host commands, the idle timeout, output by
//!   lines;
//! - `jump`: jump hosts (bastions) against sshd and the simulated fleet;
//! - `lifecycle`: dropping a handle on a runtime, joining with a deadline, blocking calls;
//! - `limits`: the fanout lowered to fit a low open-files limit (in a child process);
//! - `fleet`: connected fleets, jobs in turn on kept connections;
//! - `faults`: every fault kind of the simulated fleet at 10,000 hosts, one true result each;
//! - `options`: connection options (keepalive, inactivity, window, packet, ciphers) and errors;
//! - `openssh`: interop with a real OpenSSH `sshd` started by the tests on loopback;
//! - `transfer`: SFTP put/get against the simulated fleet and against OpenSSH's sftp-server.
// Test code: a failed unwrap, expect or index is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub
)]

mod auth;
mod engine;
mod faults;
mod fleet;
mod jobs;
mod journal;
mod jump;
mod lifecycle;
mod limits;
mod openssh;
mod options;
mod transfer;

//! Plain russh as the client (the baselines of `scaling`), on one multi-thread or one
//! current-thread tokio runtime in the measuring process; and the russh client configuration
//! for a key exchange.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use fleetsh::HostTarget;

use super::interval::{Interval, Measured};
use super::spec::{Kex, Spec, job_limits};
use crate::plain::{self, Flavor, Plain};

/// The russh client configuration for `kex` (always with `nodelay`): the engine's default
/// with, for curve25519, the key exchanges as `--kex curve25519` orders them (everything else,
/// the ciphers included, stays the engine's).
pub fn client_config(kex: Kex) -> russh::client::Config {
    let mut config = fleetsh_shard::default_client_config();
    if kex == Kex::Curve25519 {
        config.preferred.kex = fleetsh_shard::curve25519_first(&config.preferred.kex).into();
    }
    config
}

/// Runs the spec's command with plain russh on a runtime of `flavor` (`threads` for the table).
pub fn run_plain(
    spec: &Spec,
    flavor: Flavor,
    threads: usize,
    targets: Vec<HostTarget>,
) -> Result<Measured> {
    let (connect_timeout, command_timeout) = job_limits(spec);
    let setup = Instant::now();
    let (known, key) = crate::plain::credentials(&spec.known_hosts, &spec.identity)?;
    let plain = Arc::new(Plain {
        config: Arc::new(client_config(spec.kex)),
        known: Arc::new(known),
        key,
        user: "bench".into(),
        host_timeout: connect_timeout + command_timeout,
    });
    let rt = plain::runtime(flavor)?;
    let setup = setup.elapsed();

    let interval = Interval::begin(spec)?;
    let t0 = interval.t0;
    let mut first = None;
    let samples = plain::run(&rt, plain, targets, &spec.command, spec.fanout, || {
        first.get_or_insert_with(|| t0.elapsed());
    });
    let measured = interval.end(threads, setup, samples, first);
    drop(rt);
    measured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve25519_first_keeps_the_extension_markers() {
        let c = client_config(Kex::Curve25519);
        assert_eq!(c.preferred.kex.first(), Some(&russh::kex::CURVE25519));
        assert!(
            c.preferred
                .kex
                .contains(&russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT)
        );
        assert!(c.nodelay);
        let d = client_config(Kex::Default);
        assert_eq!(
            d.preferred.kex.first(),
            Some(&russh::kex::MLKEM768X25519_SHA256)
        );
    }
}

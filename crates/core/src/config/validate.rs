//! Checking a config file's keys ([`check`]): every value is checked the way the job, the run
//! and the engine would check it, and the durations become `Duration`s, so a bad value is
//! reported when the file is read, naming its key, and never later.

use std::time::Duration;

use super::connection::channel_sizes;
use super::file::FileConfig;
use super::job::Job;
use super::keys::FileKeys;
use super::layers::{Flags, Layers};
use super::run::{Amount, MAX_RATE, MIN_RATE, RunConfig, short_number};
use crate::Error;

/// A key of the file whose value cannot work, named as the setting of the error.
fn bad(key: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        setting: key,
        reason: reason.into(),
    }
}

/// A duration key's value in seconds: finite, from 0 to 1e9, and greater than zero unless
/// `zero_allowed`.
fn seconds(
    key: &'static str,
    v: Option<f64>,
    zero_allowed: bool,
) -> Result<Option<Duration>, Error> {
    let Some(v) = v else {
        return Ok(None);
    };
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(bad(key, format!("{v} is not a duration in seconds")));
    }
    if v == 0.0 && !zero_allowed {
        return Err(bad(key, "must be greater than zero"));
    }
    Ok(Some(Duration::from_secs_f64(v)))
}

/// The file's values, typed and checked; a value that cannot work is an
/// [`Error::InvalidSetting`] naming its key. The durations are checked first, in the order of
/// the keys below, then the fanout, keepalive count, channel sizes, batch, rate and port, then
/// whatever a job and a run config built from the file would reject (a sudo user, shards,
/// environment variable names, a duration that rounds to zero).
pub(super) fn check(keys: FileKeys) -> Result<FileConfig, Error> {
    let connect_timeout = seconds("connect_timeout", keys.connect_timeout, false)?;
    let command_timeout = seconds("command_timeout", keys.command_timeout, false)?;
    let idle_timeout = seconds("idle_timeout", keys.idle_timeout, false)?;
    let retry_delay = seconds("retry_delay", keys.retry_delay, true)?;
    let keepalive_interval = seconds("keepalive_interval", keys.keepalive_interval, false)?;
    let inactivity_timeout = seconds("inactivity_timeout", keys.inactivity_timeout, false)?;
    if keys.fanout == Some(0) {
        return Err(bad("fanout", "must be at least 1"));
    }
    if keys.keepalive_count == Some(0) {
        return Err(bad("keepalive_count", "must be at least 1"));
    }
    channel_sizes(keys.window_size, keys.max_packet_size)?;
    if keys.batch == Some(Amount::Count(0)) {
        return Err(bad("batch", "must be at least 1"));
    }
    if let Some(r) = keys.rate
        && !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r))
    {
        return Err(bad(
            "rate",
            format!(
                "{} is not a number of connections per second from {MIN_RATE:.6} (one an hour) to {MAX_RATE:e}",
                short_number(r)
            ),
        ));
    }
    if keys.port == Some(0) {
        return Err(bad("port", "must be 1-65535"));
    }
    let file = FileConfig {
        user: keys.user,
        port: keys.port,
        max_hosts: keys.max_hosts,
        shards: keys.shards,
        fanout: keys.fanout,
        pin: keys.pin,
        connect_timeout,
        command_timeout,
        idle_timeout,
        retries: keys.retries,
        retry_delay,
        output_cap: keys.output_cap,
        identity_files: keys.identity_files,
        known_hosts: keys.known_hosts,
        host_key_check: keys.host_key_check,
        batch: keys.batch,
        max_fail: keys.max_fail,
        rate: keys.rate,
        pty: keys.pty,
        env: keys.env,
        sudo_user: keys.sudo_user,
        kex: keys.kex,
        cipher: keys.cipher,
        kex_guess: keys.kex_guess,
        ciphers: keys.ciphers,
        keepalive_interval,
        keepalive_count: keys.keepalive_count,
        inactivity_timeout,
        window_size: keys.window_size,
        max_packet_size: keys.max_packet_size,
    };
    // The job and the run config the file gives, as with `--sudo` when it names a sudo user.
    let layers = Layers {
        flags: Flags {
            sudo: file.sudo_user.is_some(),
            ..Flags::default()
        },
        file,
        file_path: None,
    };
    let mut job = Job::new("true");
    layers.apply_to_job(&mut job);
    let mut run = RunConfig::default();
    layers.apply_to_run(&mut run);
    job.validate().and_then(|()| run.validate())?;
    Ok(layers.file)
}

//! The keys of a fleetsh config file as the TOML holds them ([`FileKeys`]): durations in
//! seconds, amounts as numbers or percentages, nothing checked yet beyond the TOML types.

use std::path::PathBuf;

use serde::Deserialize;

use super::connection::{Cipher, HostKeyCheck, Kex};
use super::run::Amount;

/// Every key a config file may hold, as written; an unknown key is rejected by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileKeys {
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) max_hosts: Option<usize>,
    pub(super) shards: Option<usize>,
    pub(super) fanout: Option<usize>,
    pub(super) pin: Option<bool>,
    pub(super) connect_timeout: Option<f64>,
    pub(super) command_timeout: Option<f64>,
    pub(super) idle_timeout: Option<f64>,
    pub(super) retries: Option<u32>,
    pub(super) retry_delay: Option<f64>,
    pub(super) output_cap: Option<usize>,
    pub(super) identity_files: Option<Vec<PathBuf>>,
    pub(super) known_hosts: Option<PathBuf>,
    pub(super) host_key_check: Option<HostKeyCheck>,
    #[serde(default, deserialize_with = "de_amount")]
    pub(super) batch: Option<Amount>,
    #[serde(default, deserialize_with = "de_amount")]
    pub(super) max_fail: Option<Amount>,
    pub(super) rate: Option<f64>,
    pub(super) pty: Option<bool>,
    pub(super) env: Option<std::collections::BTreeMap<String, String>>,
    pub(super) sudo_user: Option<String>,
    pub(super) kex: Option<Kex>,
    pub(super) cipher: Option<Cipher>,
    pub(super) kex_guess: Option<bool>,
    pub(super) ciphers: Option<Vec<String>>,
    pub(super) keepalive_interval: Option<f64>,
    pub(super) keepalive_count: Option<u32>,
    pub(super) inactivity_timeout: Option<f64>,
    pub(super) window_size: Option<u32>,
    pub(super) max_packet_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AmountRepr {
    Count(usize),
    Text(String),
}

fn de_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
    match Option::<AmountRepr>::deserialize(d)? {
        None => Ok(None),
        Some(AmountRepr::Count(n)) => Ok(Some(Amount::Count(n))),
        Some(AmountRepr::Text(t)) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

//! How a run is executed ([`RunConfig`]): shards, fanout, pinning, batches, the failure
//! threshold and the connection rate, with the [`Amount`]s batches and thresholds are given in.

use std::str::FromStr;

use crate::Error;

/// Default number of hosts in flight across all shards.
///
/// 1,000 keeps a 10,000-host run about ten waves deep while staying well inside common open-file
/// limits (one socket per host in flight, and the default hard limit is often 4,096 or more), inside
/// what one controller core can handshake per second with headroom (each handshake costs about
/// 0.3–1 ms of client CPU, so 1,000 in flight hide up to ~1 s of network and server latency per
/// host), and below the accept backlogs of typical servers and bastions.
pub const DEFAULT_FANOUT: usize = 1000;

/// A number of hosts, or a percentage of the run's hosts (`10` or `25%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A number of hosts.
    Count(usize),
    /// A percentage (0–100] of the run's hosts.
    Percent(f64),
}

impl Amount {
    /// The percentage of `total`, rounded down (a threshold); counts are returned as they are.
    pub fn floor_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => ((total as f64) * p / 100.0).floor() as usize,
        }
    }

    /// The percentage of `total`, rounded up and at least 1 (a batch size).
    pub fn ceil_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n.max(1),
            Amount::Percent(p) => (((total as f64) * p / 100.0).ceil() as usize).max(1),
        }
    }
}

impl FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a number or a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!("{s:?}: a percentage must be in (0, 100]"));
            }
            Ok(Amount::Percent(v))
        } else {
            t.parse::<usize>()
                .map(Amount::Count)
                .map_err(|_| format!("{s:?} is not a number or a percentage (like 10 or 25%)"))
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How a run is executed: shards, fanout, pinning, batches, failure threshold, connection rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Number of shard threads. `0` means one per CPU.
    pub shards: usize,
    /// Hosts in flight across all shards; each shard keeps at most its share in flight.
    pub fanout: usize,
    /// Pin each shard thread to a core (`core_affinity`). A failed pin is logged, not fatal.
    pub pin: bool,
    /// Run the hosts in successive batches of this size (rolling changes, Ansible's `serial`):
    /// a batch starts only when the previous one has finished.
    pub batch: Option<Amount>,
    /// Once more hosts than this have failed (error, non-zero exit or signal), start no new
    /// host; the rest end as `skipped` (Ansible's `max_fail_percentage`; a percentage is of all
    /// the run's hosts).
    pub max_fail: Option<Amount>,
    /// At most this many new connections per second across all shards.
    pub rate: Option<f64>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            shards: 0,
            fanout: DEFAULT_FANOUT,
            pin: false,
            batch: None,
            max_fail: None,
            rate: None,
        }
    }
}

impl RunConfig {
    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.fanout == 0 {
            return Err(Error::InvalidSetting {
                setting: "fanout",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r))
        {
            return Err(Error::InvalidSetting {
                setting: "rate",
                reason: format!(
                    "{} is not a number of connections per second from {MIN_RATE:.6} (one an hour) to {MAX_RATE:e}",
                    short_number(r)
                ),
            });
        }
        if self.batch == Some(Amount::Count(0)) {
            return Err(Error::InvalidSetting {
                setting: "batch",
                reason: "must be at least 1".into(),
            });
        }
        if self.shards > 1024 {
            return Err(Error::InvalidSetting {
                setting: "shards",
                reason: format!("{} is more than the maximum of 1024", self.shards),
            });
        }
        Ok(())
    }
}

/// The lowest connection rate (`rate`): one connection an hour. Below it a run would wait
/// longer than any operator does for one host.
pub const MIN_RATE: f64 = 1.0 / 3600.0;

/// The highest connection rate (`rate`).
pub const MAX_RATE: f64 = 1e9;

/// A number as an operator would write it: `1e308`, not three hundred digits.
pub fn short_number(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn amounts_parse_and_scale() {
        assert_eq!("10".parse::<Amount>().unwrap(), Amount::Count(10));
        assert_eq!("25%".parse::<Amount>().unwrap(), Amount::Percent(25.0));
        assert!("0%".parse::<Amount>().is_err());
        assert!("150%".parse::<Amount>().is_err());
        assert!("ten".parse::<Amount>().unwrap_err().contains("ten"));
        assert_eq!(Amount::Percent(25.0).ceil_of(10), 3);
        assert_eq!(Amount::Percent(25.0).floor_of(10), 2);
        assert_eq!(Amount::Percent(1.0).ceil_of(10), 1);
        assert_eq!(Amount::Count(0).ceil_of(10), 1);
        assert_eq!(Amount::Count(4).floor_of(10), 4);
    }
}

//! How a run is spread over shard threads: their number, each one's share of the fanout, and
//! which shard owns a host.

/// How a run is spread over shard threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// Shard threads; `0` means one per CPU. Never more than the number of hosts.
    pub shards: usize,
    /// Hosts in flight across all shards.
    pub fanout: usize,
    /// Pin shard `i` to core `i % cores`.
    pub pin: bool,
    /// Test hook: make this shard panic right after it starts, before it runs any host.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub panic_shard: Option<usize>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            shards: 0,
            fanout: fleetsh_core::config::DEFAULT_FANOUT,
            pin: false,
            #[cfg(feature = "test-hooks")]
            panic_shard: None,
        }
    }
}

impl ShardConfig {
    /// The number of shard threads a run of `hosts` hosts uses.
    pub fn effective_shards(&self, hosts: usize) -> usize {
        let s = if self.shards == 0 {
            num_cpus::get()
        } else {
            self.shards
        };
        // Never more shards than hosts, nor than the fanout (each shard keeps at least one host
        // in flight, so more shards than the fanout would exceed it).
        s.clamp(1, hosts.max(1).min(self.fanout.max(1)))
    }

    /// Whether shard `i` is to panic on purpose (a test hook; never without the `test-hooks`
    /// feature).
    pub(crate) fn panics(&self, i: usize) -> bool {
        #[cfg(feature = "test-hooks")]
        {
            self.panic_shard == Some(i)
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            let _ = i;
            false
        }
    }

    /// The share of the fanout shard `i` of `shards` keeps in flight (at least 1).
    pub fn shard_fanout(&self, i: usize, shards: usize) -> usize {
        let base = self.fanout / shards;
        let extra = usize::from(i < self.fanout % shards);
        (base + extra).max(1)
    }
}

/// The shard that owns host `index` in a run with `shards` shards (round-robin, so that slow
/// hosts clustered in a range spread over all shards).
pub fn shard_of(index: usize, shards: usize) -> usize {
    index % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_is_split_evenly_and_never_zero() {
        let c = ShardConfig {
            fanout: 10,
            ..Default::default()
        };
        let parts: Vec<usize> = (0..3).map(|i| c.shard_fanout(i, 3)).collect();
        assert_eq!(parts, [4, 3, 3]);
        let c = ShardConfig {
            fanout: 1,
            ..Default::default()
        };
        assert_eq!(c.shard_fanout(1, 2), 1);
    }

    #[test]
    fn shards_never_exceed_hosts() {
        let c = ShardConfig {
            shards: 8,
            ..Default::default()
        };
        assert_eq!(c.effective_shards(3), 3);
        assert_eq!(c.effective_shards(0), 1);
        assert_eq!(c.effective_shards(100), 8);
        let c = ShardConfig {
            shards: 2,
            fanout: 1,
            ..Default::default()
        };
        assert_eq!(
            c.effective_shards(100),
            1,
            "fanout 1 means one host in flight"
        );
    }

    #[test]
    fn round_robin_partition_covers_every_host_once() {
        let shards = 3;
        let mut seen = [0; 10];
        for s in 0..shards {
            for i in (s..10).step_by(shards) {
                assert_eq!(shard_of(i, shards), s);
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
}

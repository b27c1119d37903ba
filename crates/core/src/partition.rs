//! One controller's part of a host list split across several controllers ([`Part`]: `--shard
//! I/N`), deterministic without any coordination: every controller given the same host list
//! computes the same split, whatever the order of the list.
//!
//! The hosts are ranked by a stable hash of their canonical form (`[user@]host[:port]` as
//! written, [`HostTarget`]'s `Display`; ties broken by the form itself), and part `I` of `N`
//! takes the `I`-th of `N` contiguous runs of that ranking. So every host is in exactly one
//! part, the parts differ in size by at most one host, a host's part does not depend on where
//! it is in the list, and duplicates (removed by [`HostList`](crate::HostList) first) change
//! nothing. The hash (64-bit FNV-1a, then a SplitMix64 finaliser) is fixed here, not
//! `std`'s, so that controllers built by different compilers agree.
//!
//! [`Part::from_env`] takes the part from a scheduler: Slurm job steps (`SLURM_PROCID`,
//! `SLURM_NTASKS`), Slurm job arrays (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`,
//! `SLURM_ARRAY_TASK_STEP`, `SLURM_ARRAY_TASK_COUNT`) and Kubernetes Indexed Jobs
//! (`JOB_COMPLETION_INDEX`, with the count given beside it since a pod does not see it).

use std::fmt;

use crate::Error;
use crate::hosts::HostTarget;

/// Part `index` of `count` (both as `--shard index/count`, `index` counted from 0 as Slurm's
/// task ranks and Kubernetes' completion indices are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Part {
    index: usize,
    count: usize,
}

/// The most parts a host list may be split into.
pub const MAX_PARTS: usize = 1_000_000;

impl Part {
    /// Part `index` of `count`; `index < count`, `1 <= count <= MAX_PARTS`.
    pub fn new(index: usize, count: usize) -> Result<Part, Error> {
        let spec = format!("{index}/{count}");
        if count == 0 || count > MAX_PARTS {
            return Err(bad(
                &spec,
                format!("the number of parts must be 1 to {MAX_PARTS}"),
            ));
        }
        if index >= count {
            return Err(bad(
                &spec,
                format!("the part must be 0 to {} (counted from 0)", count - 1),
            ));
        }
        Ok(Part { index, count })
    }

    /// The whole list as one part.
    pub fn whole() -> Part {
        Part { index: 0, count: 1 }
    }

    /// This part (counted from 0).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of parts.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Parses `I/N` (e.g. `0/4` to `3/4`).
    pub fn parse(spec: &str) -> Result<Part, Error> {
        let Some((i, n)) = spec.split_once('/') else {
            return Err(bad(spec, "expected I/N, e.g. 0/4 (or auto)".into()));
        };
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(spec, format!("{what} {s:?} is not a whole number")))
        };
        let (index, count) = (number(i, "the part")?, number(n, "the number of parts")?);
        Part::new(index, count).map_err(|e| match e {
            Error::Partition { reason, .. } => bad(spec, reason),
            other => other,
        })
    }

    /// A part as `--shard` takes it: `I/N`, `auto` (Slurm: [`Part::from_env`]) or `auto/N` (a
    /// Kubernetes Indexed Job of `N` completions), the environment read with `var`.
    pub fn from_spec(spec: &str, var: impl Fn(&str) -> Option<String>) -> Result<Part, Error> {
        match spec.trim().strip_prefix("auto") {
            Some("") => Part::from_env(var, None),
            Some(rest) => match rest.strip_prefix('/').map(|n| n.trim().parse::<usize>()) {
                Some(Ok(n)) => Part::from_env(var, Some(n)),
                _ => Part::parse(spec),
            },
            None => Part::parse(spec),
        }
    }

    /// The part a scheduler gives this process, read with `var` (e.g. `std::env::var`'s
    /// value): a Slurm job array task, else a Slurm job step's task, else a Kubernetes Indexed
    /// Job's pod with `count` parts. `count`, when given, must agree with a Slurm count.
    /// Missing or inconsistent variables are an error naming them.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Part, Error> {
        let spec = match count {
            Some(n) => format!("auto/{n}"),
            None => "auto".to_string(),
        };
        let get = |name: &str| -> Result<Option<usize>, Error> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| bad(&spec, format!("{name}={v:?} is not a whole number"))),
            }
        };
        let agree = |found: usize, from: &str| match count {
            Some(n) if n != found => Err(bad(
                &spec,
                format!("{n} parts given, but {from} says {found}"),
            )),
            _ => Ok(()),
        };
        let part = |index: usize, n: usize, vars: &str| {
            Part::new(index, n).map_err(|e| match e {
                Error::Partition { reason, .. } => bad(&spec, format!("{vars}: {reason}")),
                other => other,
            })
        };
        // A Slurm job array: one controller per array task.
        if let Some(id) = get("SLURM_ARRAY_TASK_ID")? {
            let Some(n) = get("SLURM_ARRAY_TASK_COUNT")? else {
                return Err(bad(
                    &spec,
                    "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into(),
                ));
            };
            let min = get("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = get("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let offset = id
                .checked_sub(min)
                .filter(|o| o % step == 0)
                .ok_or_else(|| {
                    bad(
                        &spec,
                        format!(
                            "SLURM_ARRAY_TASK_ID={id} is not SLURM_ARRAY_TASK_MIN={min} plus a \
                         multiple of SLURM_ARRAY_TASK_STEP={step}"
                        ),
                    )
                })?;
            agree(n, "SLURM_ARRAY_TASK_COUNT")?;
            return part(
                offset / step,
                n,
                &format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_COUNT={n}"),
            );
        }
        // A Slurm job step (`srun -n N`): one controller per task.
        match (get("SLURM_PROCID")?, get("SLURM_NTASKS")?) {
            (Some(rank), Some(n)) => {
                agree(n, "SLURM_NTASKS")?;
                return part(rank, n, &format!("SLURM_PROCID={rank}, SLURM_NTASKS={n}"));
            }
            (Some(_), None) => {
                return Err(bad(
                    &spec,
                    "SLURM_PROCID is set but SLURM_NTASKS is not".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    &spec,
                    "SLURM_NTASKS is set but SLURM_PROCID is not".into(),
                ));
            }
            (None, None) => {}
        }
        // A Kubernetes Indexed Job: the pod knows its index, not the number of completions.
        if let Some(index) = get("JOB_COMPLETION_INDEX")? {
            let Some(n) = count else {
                return Err(bad(
                    &spec,
                    format!(
                        "JOB_COMPLETION_INDEX={index} is set, but a pod does not see the number \
                         of completions: give it (auto/N)"
                    ),
                ));
            };
            return part(index, n, &format!("JOB_COMPLETION_INDEX={index}"));
        }
        Err(bad(
            &spec,
            "no scheduler's variables: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, \
             SLURM_PROCID/SLURM_NTASKS and JOB_COMPLETION_INDEX are all unset"
                .into(),
        ))
    }

    /// This part of `hosts`, in the list's order.
    pub fn select(&self, hosts: &[HostTarget]) -> Vec<HostTarget> {
        if self.count == 1 {
            return hosts.to_vec();
        }
        let keys: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        let mut ranked: Vec<(u64, &str, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (stable_hash(k), k.as_str(), i))
            .collect();
        ranked.sort_unstable();
        let total = ranked.len();
        // Ranks [start, end) are this part's: the `index`-th of `count` contiguous runs.
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        let mut mine: Vec<usize> = ranked
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|&(_, _, i)| i)
            .collect();
        mine.sort_unstable();
        mine.into_iter()
            .filter_map(|i| hosts.get(i).cloned())
            .collect()
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn bad(spec: &str, reason: String) -> Error {
    Error::Partition {
        spec: spec.to_string(),
        reason,
    }
}

/// 64-bit FNV-1a of `s`, mixed by SplitMix64's finaliser (FNV alone leaves similar names,
/// `web001` and `web002`, close together).
pub(crate) fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn hosts(n: usize) -> Vec<HostTarget> {
        (0..n)
            .map(|i| HostTarget::new(format!("web{i:05}.dc1")))
            .collect()
    }

    #[test]
    fn every_host_in_exactly_one_balanced_part() {
        let list = hosts(10_007);
        for n in [1, 2, 3, 4, 7, 64] {
            let parts: Vec<Vec<HostTarget>> = (0..n)
                .map(|i| Part::new(i, n).unwrap().select(&list))
                .collect();
            let mut seen: HashMap<String, usize> = HashMap::new();
            for p in &parts {
                for h in p {
                    *seen.entry(h.to_string()).or_default() += 1;
                }
            }
            assert_eq!(seen.len(), list.len(), "{n} parts cover the list");
            assert!(seen.values().all(|&c| c == 1), "{n} parts overlap");
            let (min, max) = (
                parts.iter().map(Vec::len).min().unwrap(),
                parts.iter().map(Vec::len).max().unwrap(),
            );
            assert!(max - min <= 1, "{n} parts: sizes {min} to {max}");
        }
    }

    #[test]
    fn a_hosts_part_does_not_depend_on_the_order_of_the_list() {
        let list = hosts(1000);
        let mut reversed = list.clone();
        reversed.reverse();
        let mut shuffled = list.clone();
        shuffled.sort_by_key(|h| stable_hash(&format!("x{h}")));
        for i in 0..4 {
            let part = Part::new(i, 4).unwrap();
            let mut a: Vec<String> = part.select(&list).iter().map(|h| h.to_string()).collect();
            let mut b: Vec<String> = part
                .select(&reversed)
                .iter()
                .map(|h| h.to_string())
                .collect();
            let mut c: Vec<String> = part
                .select(&shuffled)
                .iter()
                .map(|h| h.to_string())
                .collect();
            a.sort();
            b.sort();
            c.sort();
            assert_eq!(a, b);
            assert_eq!(a, c);
        }
        // A part keeps the list's order.
        let part = Part::new(1, 4).unwrap().select(&list);
        assert!(part.windows(2).all(|w| w[0].host < w[1].host));
    }

    #[test]
    fn the_hash_is_fixed() {
        // Controllers built by other compilers must agree: these values (computed by another
        // implementation of FNV-1a and SplitMix64's finaliser) never change.
        assert_eq!(stable_hash(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash("web1"), 0x289f_74a5_44c5_8cff);
        assert_eq!(stable_hash("root@web1:2222"), 0x045b_de53_4ede_1989);
    }

    #[test]
    fn parse_names_what_is_wrong() {
        assert_eq!(Part::parse("2/4").unwrap(), Part::new(2, 4).unwrap());
        assert_eq!(Part::parse("0/1").unwrap(), Part::whole());
        for (spec, needle) in [
            ("4/4", "0 to 3"),
            ("1/0", "1 to 1000000"),
            ("a/4", "\"a\" is not a whole number"),
            ("2", "expected I/N"),
            ("-1/4", "is not a whole number"),
        ] {
            let e = Part::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains(spec), "{spec}: {e}");
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn schedulers_give_the_part() {
        let slurm = [("SLURM_PROCID", "2"), ("SLURM_NTASKS", "4")];
        assert_eq!(
            Part::from_env(env(&slurm), None).unwrap(),
            Part::new(2, 4).unwrap()
        );
        assert_eq!(
            Part::from_env(env(&slurm), Some(4)).unwrap(),
            Part::new(2, 4).unwrap()
        );
        // An array (`--array=1-7:2`: ids 1, 3, 5, 7) inside which srun also runs one task.
        let array = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
        ];
        assert_eq!(
            Part::from_env(env(&array), None).unwrap(),
            Part::new(2, 4).unwrap()
        );
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        assert_eq!(
            Part::from_env(env(&k8s), Some(8)).unwrap(),
            Part::new(3, 8).unwrap()
        );
    }

    #[test]
    fn missing_or_inconsistent_variables_are_named() {
        for (vars, count, needle) in [
            (&[][..], None, "SLURM_PROCID/SLURM_NTASKS"),
            (&[("SLURM_PROCID", "1")][..], None, "SLURM_NTASKS is not"),
            (&[("SLURM_NTASKS", "4")][..], None, "SLURM_PROCID is not"),
            (
                &[("SLURM_PROCID", "4"), ("SLURM_NTASKS", "4")][..],
                None,
                "SLURM_PROCID=4, SLURM_NTASKS=4: the part must be 0 to 3",
            ),
            (
                &[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")][..],
                Some(3),
                "3 parts given, but SLURM_NTASKS says 4",
            ),
            (
                &[("SLURM_PROCID", "x"), ("SLURM_NTASKS", "4")][..],
                None,
                "SLURM_PROCID=\"x\"",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "2")][..],
                None,
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_STEP", "2"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                ][..],
                None,
                "not SLURM_ARRAY_TASK_MIN=1 plus a multiple",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "1")][..],
                None,
                "give it (auto/N)",
            ),
            (
                &[("JOB_COMPLETION_INDEX", "8")][..],
                Some(8),
                "JOB_COMPLETION_INDEX=8: the part must be 0 to 7",
            ),
        ] {
            let e = Part::from_env(env(vars), count).unwrap_err().to_string();
            assert!(e.contains(needle), "{vars:?}: {e}");
        }
    }
}

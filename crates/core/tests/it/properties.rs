//! Property tests (proptest): range expansion and folding are inverse of each other, and
//! expansion respects its limit.

use std::collections::BTreeSet;

use fleetsh_core::fold::fold;
use fleetsh_core::hosts::expand;
use proptest::prelude::*;

/// A host name: a prefix, a number (maybe zero-padded), an optional suffix with another number.
fn host() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["web", "db", "node-", "r", "127.1.0."]),
        0u32..300,
        0usize..4,
        prop::option::of((prop::sample::select(vec![".dc", "-rack"]), 0u32..20)),
    )
        .prop_map(|(prefix, n, pad, suffix)| {
            let mut s = format!("{prefix}{n:0pad$}");
            if let Some((sfx, m)) = suffix {
                s.push_str(&format!("{sfx}{m}"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fold_then_expand_gives_back_the_same_hosts(hosts in prop::collection::vec(host(), 1..200)) {
        let set: BTreeSet<String> = hosts.iter().cloned().collect();
        let folded = fold(&hosts);
        let back: Vec<String> = expand(&folded, 1_000_000).unwrap();
        let back_set: BTreeSet<String> = back.iter().cloned().collect();
        prop_assert_eq!(back.len(), back_set.len(), "no host twice in {}", folded);
        prop_assert_eq!(back_set, set, "round trip through {}", folded);
    }

    #[test]
    fn expansion_never_exceeds_its_limit(a in 0u32..50, b in 0u32..50, c in 0u32..9, limit in 1usize..400) {
        let spec = format!("h[{}-{}].x[0-{c}]", a.min(b), a.max(b));
        let count = (a.abs_diff(b) as usize + 1) * (c as usize + 1);
        match expand(&spec, limit) {
            Ok(v) => {
                prop_assert!(v.len() <= limit);
                prop_assert_eq!(v.len(), count);
            }
            Err(e) => {
                prop_assert!(count > limit, "{e}");
                prop_assert!(e.to_string().contains("more than"));
            }
        }
    }
}

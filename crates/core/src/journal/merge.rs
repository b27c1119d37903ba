//! The journals of one split run joined into the run one controller would have made
//! ([`merge`]): every host once, with its result, or why it has none.

use std::collections::{BTreeSet, HashMap};

use crate::hosts::HostTarget;
use crate::record::Record;

use super::{HostState, Replay, list_digest};

/// Where a host of a merged run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// A journal holds its final result.
    Done {
        /// The result as recorded.
        record: Box<Record>,
        /// The journal that holds it (its position in [`merge`]'s input).
        journal: usize,
    },
    /// A journal says its command was sent, and none holds its result: it may have run.
    Unknown {
        /// The journal that started it.
        journal: usize,
    },
    /// Its journal never started it: the controller stopped before it.
    NotStarted {
        /// The journal whose run it is in.
        journal: usize,
    },
    /// No journal has it: its part's journal was not given (known only from a host list).
    Missing,
}

impl Found {
    /// How much a journal's line about a host says: a result over a start over nothing.
    fn rank(&self) -> u8 {
        match self {
            Found::Done { .. } => 3,
            Found::Unknown { .. } => 2,
            Found::NotStarted { .. } => 1,
            Found::Missing => 0,
        }
    }

    fn started(&self) -> bool {
        matches!(self, Found::Done { .. } | Found::Unknown { .. })
    }
}

/// A host that is in more than one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// Its position in [`Merged::hosts`].
    pub host: usize,
    /// The journals it is in, by position in [`merge`]'s input.
    pub journals: Vec<usize>,
    /// How many of them started it (sent its command): more than one means its command may
    /// have run more than once.
    pub started: usize,
}

/// The journals of one split run, joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The command or transfer the run is.
    pub command: String,
    /// How many parts the run was split into (1: not split).
    pub parts: usize,
    /// Parts no journal is of, in order.
    pub missing_parts: Vec<usize>,
    /// How many hosts the whole list has.
    pub list_hosts: usize,
    /// The run's hosts: the host list's order when one was given, else part by part in each
    /// journal's order. A host of a missing part is here only when a host list was given.
    pub hosts: Vec<HostTarget>,
    /// Where each host of [`Merged::hosts`] stands.
    pub found: Vec<Found>,
    /// Hosts in more than one journal: the entry of `found` is the one that says most (a
    /// result, else a start), the first journal's among equals.
    pub duplicates: Vec<Duplicate>,
}

impl Merged {
    /// Hosts of the whole list that are in no journal: those of missing parts (named in
    /// [`Merged::found`] as [`Found::Missing`] when a host list was given).
    pub fn hosts_missing(&self) -> usize {
        let listed = self
            .found
            .iter()
            .filter(|f| !matches!(f, Found::Missing))
            .count();
        self.list_hosts.saturating_sub(listed)
    }

    /// Hosts started by more than one journal.
    pub fn run_twice(&self) -> usize {
        self.duplicates.iter().filter(|d| d.started > 1).count()
    }
}

/// Why journals cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No journal was given.
    #[error("no journal to merge")]
    Empty,
    /// The journals are of different runs (command, host list or way of splitting it).
    #[error("journals {first} and {other} are of different runs: {other} is {why}")]
    DifferentRuns {
        /// The first journal's name.
        first: String,
        /// The name of the journal that differs from it.
        other: String,
        /// What differs.
        why: String,
    },
    /// The journals were written for another host list than the one given.
    #[error(
        "journal {journal} was written for another host list ({journal_hosts} hosts, digest {journal_digest}; the hosts given are {given_hosts}, digest {given_digest})"
    )]
    OtherList {
        /// The journal's name.
        journal: String,
        /// Its list's host count.
        journal_hosts: usize,
        /// Its list's digest.
        journal_digest: String,
        /// The given list's host count.
        given_hosts: usize,
        /// The given list's digest.
        given_digest: String,
    },
    /// A journal's header is not readable as a part of a run.
    #[error("journal {journal}: {why}")]
    BadHeader {
        /// The journal's name.
        journal: String,
        /// What is wrong.
        why: String,
    },
}

/// Joins `journals` (each named, as its path, and read back by [`read`](super::read)), the journals of the parts of one run,
/// into that run: every host once, with the result a journal holds, or why none does. With
/// `list` (the whole host list the run was given), the hosts are in its order, and hosts of
/// parts whose journal is missing are named ([`Found::Missing`]).
///
/// A host in more than one journal (a part given twice, or run twice with two journals) is
/// taken from the journal that says most about it, and reported in [`Merged::duplicates`].
///
/// # Errors
///
/// [`MergeError`] when no journal is given, when the journals are of different runs (another
/// command, host list, or number of parts), or were written for another list than `list`.
pub fn merge(
    named: Vec<(String, Replay)>,
    list: Option<&[HostTarget]>,
) -> Result<Merged, MergeError> {
    let (first_name, first) = named.first().ok_or(MergeError::Empty)?;
    let journals: Vec<&Replay> = named.iter().map(|(_, r)| r).collect();
    let name_of = |j: usize| named.get(j).map(|(n, _)| n.clone()).unwrap_or_default();
    let part_of = |j: usize, r: &Replay| {
        r.header.part().map_err(|why| MergeError::BadHeader {
            journal: name_of(j),
            why,
        })
    };
    let first_part = part_of(0, first)?;
    let parts = first_part.map_or(1, |p| p.count());
    let mut seen_parts = BTreeSet::new();
    for (j, r) in journals.iter().enumerate() {
        let h = &r.header;
        let different = |why: String| MergeError::DifferentRuns {
            first: first_name.clone(),
            other: name_of(j),
            why,
        };
        if h.command != first.header.command {
            return Err(different(format!(
                "of the command {:?}, not {:?}",
                h.command, first.header.command
            )));
        }
        if (h.list_hosts, &h.list_digest) != (first.header.list_hosts, &first.header.list_digest) {
            return Err(different(format!(
                "of another host list ({} hosts, digest {}; not {} hosts, digest {})",
                h.list_hosts, h.list_digest, first.header.list_hosts, first.header.list_digest
            )));
        }
        let part = part_of(j, r)?;
        if part.map_or(1, |p| p.count()) != parts {
            let name =
                |p: Option<crate::Part>| p.map_or("the whole list".into(), |p| p.to_string());
            return Err(different(format!(
                "part {}, not a part of {} like {}",
                name(part),
                parts,
                name(first_part)
            )));
        }
        seen_parts.insert(part.map_or(0, |p| p.index()));
    }
    if let Some(list) = list {
        let digest = list_digest(list);
        if (list.len(), &digest) != (first.header.list_hosts, &first.header.list_digest) {
            return Err(MergeError::OtherList {
                journal: first_name.clone(),
                journal_hosts: first.header.list_hosts,
                journal_digest: first.header.list_digest.clone(),
                given_hosts: list.len(),
                given_digest: digest,
            });
        }
    }

    // The hosts, each once: the list's, or the journals' in the order of their parts.
    let mut hosts: Vec<HostTarget> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut add = |name: &str, target: HostTarget| -> usize {
        *position.entry(name.to_string()).or_insert_with(|| {
            hosts.push(target);
            hosts.len() - 1
        })
    };
    if let Some(list) = list {
        for t in list {
            add(&t.to_string(), t.clone());
        }
    }
    let mut order: Vec<usize> = (0..journals.len()).collect();
    order.sort_by_key(|&j| {
        journals
            .get(j)
            .and_then(|r| r.header.part().ok().flatten())
            .map_or(0, |p| p.index())
    });
    // Each journal's hosts, as positions in `hosts`.
    let mut journal_hosts: Vec<Vec<usize>> = vec![Vec::new(); journals.len()];
    for &j in &order {
        let Some(r) = journals.get(j) else { continue };
        let mut mine = Vec::with_capacity(r.header.hosts.len());
        for (i, name) in r.header.hosts.iter().enumerate() {
            let target = name
                .parse::<HostTarget>()
                .map_err(|e| MergeError::BadHeader {
                    journal: name_of(j),
                    why: format!("host {i}: {e}"),
                })?;
            mine.push(add(name, target));
        }
        if let Some(slot) = journal_hosts.get_mut(j) {
            *slot = mine;
        }
    }

    let command = first.header.command.clone();
    let list_hosts = first.header.list_hosts;
    drop(journals);
    let mut found = vec![Found::Missing; hosts.len()];
    let mut holders: Vec<Vec<usize>> = vec![Vec::new(); hosts.len()];
    let mut starters = vec![0usize; hosts.len()];
    // The records move out of the journals: a merge holds each result once.
    for (j, (_, mut r)) in named.into_iter().enumerate() {
        let Some(mine) = journal_hosts.get(j) else {
            continue;
        };
        for (i, &at) in mine.iter().enumerate() {
            let here = match (r.state(i), r.results.remove(&i)) {
                (HostState::Done, Some(record)) => Found::Done {
                    record: Box::new(record),
                    journal: j,
                },
                (HostState::NotStarted, _) => Found::NotStarted { journal: j },
                _ => Found::Unknown { journal: j },
            };
            if let Some(h) = holders.get_mut(at) {
                h.push(j);
            }
            if here.started()
                && let Some(n) = starters.get_mut(at)
            {
                *n += 1;
            }
            if let Some(slot) = found.get_mut(at)
                && here.rank() > slot.rank()
            {
                *slot = here;
            }
        }
    }
    let duplicates = holders
        .into_iter()
        .zip(starters)
        .enumerate()
        .filter(|(_, (h, _))| h.len() > 1)
        .map(|(host, (journals, started))| Duplicate {
            host,
            journals,
            started,
        })
        .collect();
    Ok(Merged {
        command,
        parts,
        missing_parts: (0..parts).filter(|p| !seen_parts.contains(p)).collect(),
        list_hosts,
        hosts,
        found,
        duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Part;
    use crate::event::HostResult;
    use crate::journal::{Header, Split, read, result_line, started_line};

    fn list(n: usize) -> Vec<HostTarget> {
        (0..n).map(|i| HostTarget::new(format!("h{i}"))).collect()
    }

    fn ok(index: usize, target: HostTarget) -> HostResult {
        let mut r = HostResult::failed(
            index,
            target,
            crate::HostError::new(crate::ErrorKind::Internal, "x"),
        );
        r.error = None;
        r.exit_code = Some(0);
        r
    }

    /// Part `i` of `n` of `whole`, its hosts `done` to the end and `started` started only.
    fn journal(
        cmd: &str,
        whole: &[HostTarget],
        i: usize,
        n: usize,
        unfinished: usize,
    ) -> (String, Replay) {
        let part = Part::new(i, n).unwrap();
        let mine = part.select(whole);
        let mut text = Header::new(cmd, Some(&Split::new(part, whole)), &mine).line();
        for (k, t) in mine.iter().enumerate() {
            text.extend(started_line(k));
            if k + unfinished < mine.len() {
                text.extend(result_line(&ok(k, t.clone())));
            }
        }
        let name = format!("journal.{i}");
        (name, read(std::str::from_utf8(&text).unwrap()).unwrap())
    }

    #[test]
    fn every_part_gives_every_host_once() {
        let whole = list(40);
        let js: Vec<(String, Replay)> = (0..4).map(|i| journal("true", &whole, i, 4, 0)).collect();
        let m = merge(js.clone(), None).unwrap();
        assert_eq!(m.hosts.len(), 40);
        assert!(m.found.iter().all(|f| matches!(f, Found::Done { .. })));
        assert!(m.duplicates.is_empty() && m.missing_parts.is_empty());
        assert_eq!(m.hosts_missing(), 0);
        // With the list: its order.
        let m = merge(js.clone(), Some(&whole)).unwrap();
        assert_eq!(m.hosts, whole);
    }

    #[test]
    fn missing_parts_and_unfinished_hosts_are_said() {
        let whole = list(40);
        let js = vec![
            journal("true", &whole, 0, 4, 2),
            journal("true", &whole, 2, 4, 0),
        ];
        let m = merge(js.clone(), None).unwrap();
        assert_eq!(m.missing_parts, vec![1, 3]);
        assert_eq!(m.hosts_missing(), 40 - m.hosts.len());
        let unknown = m
            .found
            .iter()
            .filter(|f| matches!(f, Found::Unknown { journal: 0 }))
            .count();
        assert_eq!(unknown, 2);
        // The list names the missing hosts.
        let m = merge(js.clone(), Some(&whole)).unwrap();
        assert_eq!(m.hosts.len(), 40);
        let missing: Vec<usize> = (0..40).filter(|&i| m.found[i] == Found::Missing).collect();
        let mut expected: Vec<usize> = [1, 3]
            .iter()
            .flat_map(|&p| Part::new(p, 4).unwrap().select(&whole))
            .map(|t| whole.iter().position(|w| *w == t).unwrap())
            .collect();
        expected.sort_unstable();
        assert_eq!(missing, expected);
    }

    #[test]
    fn a_part_given_twice_is_reported_and_counted_once() {
        let whole = list(20);
        let js = vec![
            journal("true", &whole, 0, 2, 0),
            journal("true", &whole, 1, 2, 0),
            journal("true", &whole, 1, 2, 3),
        ];
        let m = merge(js.clone(), None).unwrap();
        assert_eq!(m.hosts.len(), 20);
        let part1 = Part::new(1, 2).unwrap().select(&whole).len();
        assert_eq!(m.duplicates.len(), part1);
        assert_eq!(m.run_twice(), part1);
        // The result wins over the start.
        assert!(m.found.iter().all(|f| matches!(f, Found::Done { .. })));
    }

    #[test]
    fn journals_of_other_runs_are_refused() {
        let whole = list(20);
        let e = merge(
            vec![
                journal("true", &whole, 0, 2, 0),
                journal("false", &whole, 1, 2, 0),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"false\""), "{e}");
        let e = merge(
            vec![
                journal("true", &whole, 0, 2, 0),
                journal("true", &list(21), 1, 2, 0),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("another host list"), "{e}");
        let e = merge(
            vec![
                journal("true", &whole, 0, 2, 0),
                journal("true", &whole, 1, 3, 0),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("part 1/3, not a part of 2"), "{e}");
        let e = merge(vec![journal("true", &whole, 0, 2, 0)], Some(&list(19))).unwrap_err();
        assert!(matches!(e, MergeError::OtherList { .. }), "{e}");
        assert_eq!(merge(Vec::new(), None).unwrap_err(), MergeError::Empty);
    }
}

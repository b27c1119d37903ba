//! A run's journal: JSON lines that say, host by host, that its command was sent and what its
//! final result was, so that a run re-run with the same journal (after its controller was
//! killed, or its task re-run by a scheduler) never runs a command twice on a host.
//!
//! The lines, each written whole with one `write` (appended, so a controller killed at any
//! instant leaves at most its last line torn):
//! - the header, first:
//!   `{"journal":1,"command":…,"shard":"I/N"|null,"list_hosts":N,"list_digest":…,"hosts":[…]}`,
//!   what the run is: its command or transfer as written, its part of a split run, the whole
//!   host list by count and a stable digest, and this run's hosts in order (the others' `I`);
//!   a journal is only resumed by the same run;
//! - `{"started":I}`: host `I` (its index in the host list) is about to be sent its command;
//!   written before the command leaves, so a host without it never ran the command;
//! - `{"i":I,"result":{…}}`: host `I`'s final result, as a [`record`](crate::record) line.
//!
//! [`read`] reads a journal back: a torn last line (no newline, not JSON) is ignored and
//! reported; any other bad line is an error naming it. [`Replay::state`] says, per host, whether
//! it is done (it has a result), never started (run it), or unknown (started without a result:
//! its command may have run). [`merge`] joins the journals of a split run's parts into the run
//! one controller would have made.

mod merge;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::HostResult;
use crate::hosts::HostTarget;
use crate::partition::Part;
use crate::record::{Record, RecordRef};

pub use merge::{Duplicate, Found, MergeError, Merged, merge};

/// The journal format's version, in the header.
pub const VERSION: u32 = 1;

/// The whole host list a part of a split run was taken from (`--shard I/N`): which part, and
/// the list by count and digest, so that the journals of one split run can be told apart from
/// another run's and their merge can say which parts and hosts are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// This controller's part.
    pub part: Part,
    /// How many hosts the whole list has.
    pub list_hosts: usize,
    /// The whole list's digest ([`list_digest`]).
    pub list_digest: String,
}

impl Split {
    /// Part `part` of the whole list `hosts`.
    pub fn new(part: Part, hosts: &[HostTarget]) -> Split {
        Split {
            part,
            list_hosts: hosts.len(),
            list_digest: list_digest(hosts),
        }
    }
}

/// A stable digest of a host list, in order (16 hex digits).
pub fn list_digest(hosts: &[HostTarget]) -> String {
    let list: String = hosts.iter().map(|h| format!("{h}\n")).collect();
    format!("{:016x}", crate::partition::stable_hash(&list))
}

/// What a run is: a journal is resumed only by the run it was written for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The format's version ([`VERSION`]).
    pub journal: u32,
    /// The command or transfer as written (`fleetsh run`'s command line after `--`, or a
    /// description of the transfer).
    pub command: String,
    /// The part of a split run (`I/N`), if any.
    pub shard: Option<String>,
    /// How many hosts the whole list has (the part's own list when the run is not split).
    pub list_hosts: usize,
    /// The whole list's digest ([`list_digest`]).
    pub list_digest: String,
    /// This run's hosts, in order, as given (`[user@]host[:port]`): host `I` of the other lines
    /// is `hosts[I]`.
    pub hosts: Vec<String>,
}

impl Header {
    /// The header of a run of `command` on `hosts`: the whole list, or the part `split` says.
    pub fn new(command: &str, split: Option<&Split>, hosts: &[HostTarget]) -> Header {
        let (list_hosts, list_digest) = match split {
            Some(s) => (s.list_hosts, s.list_digest.clone()),
            None => (hosts.len(), list_digest(hosts)),
        };
        Header {
            journal: VERSION,
            command: command.to_string(),
            shard: split.map(|s| s.part.to_string()),
            list_hosts,
            list_digest,
            hosts: hosts.iter().map(ToString::to_string).collect(),
        }
    }

    /// The part of a split run this journal is, `None` for a run of the whole list.
    ///
    /// # Errors
    ///
    /// The part as written when it is not `I/N`.
    pub fn part(&self) -> Result<Option<Part>, String> {
        match &self.shard {
            None => Ok(None),
            Some(s) => Part::parse(s)
                .map(Some)
                .map_err(|e| format!("its part {s:?} is not I/N ({e})")),
        }
    }

    /// Why a journal with header `self` cannot be resumed by the run `run` describes, if it
    /// cannot: the first of version, command, part and host list that differs.
    pub fn mismatch(&self, run: &Header) -> Option<String> {
        if self.journal != run.journal {
            return Some(format!(
                "it is a version {} journal; this fleetsh writes version {}",
                self.journal, run.journal
            ));
        }
        if self.command != run.command {
            return Some(format!(
                "it was written for the command {:?}, not {:?}",
                self.command, run.command
            ));
        }
        if self.shard != run.shard {
            let part = |s: &Option<String>| s.clone().unwrap_or_else(|| "the whole list".into());
            return Some(format!(
                "it was written for part {}, not {}",
                part(&self.shard),
                part(&run.shard)
            ));
        }
        if self.list_hosts != run.list_hosts
            || self.list_digest != run.list_digest
            || self.hosts != run.hosts
        {
            return Some(format!(
                "it was written for another host list ({} hosts, digest {}; now {} hosts, digest {})",
                self.list_hosts, self.list_digest, run.list_hosts, run.list_digest
            ));
        }
        None
    }

    /// The header as a journal line, with its newline.
    pub fn line(&self) -> Vec<u8> {
        line_of(self)
    }
}

/// The line saying host `index` is about to be sent its command, with its newline.
pub fn started_line(index: usize) -> Vec<u8> {
    #[derive(Serialize)]
    struct Started {
        started: usize,
    }
    line_of(&Started { started: index })
}

/// The line recording host `r.index`'s final result, with its newline.
pub fn result_line(r: &HostResult) -> Vec<u8> {
    #[derive(Serialize)]
    struct Final<'a> {
        i: usize,
        result: RecordRef<'a>,
    }
    line_of(&Final {
        i: r.index,
        result: RecordRef::new(r),
    })
}

fn line_of<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these types (strings, numbers, options) cannot fail.
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Where a host of a journal's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Its command was never sent: run it.
    NotStarted,
    /// Its command was sent, and no result was recorded: it may have run.
    Unknown,
    /// It has a final result.
    Done,
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// What the run is.
    pub header: Header,
    /// Hosts whose command was sent.
    pub started: BTreeSet<usize>,
    /// Hosts' final results, by index (the last one recorded, if several).
    pub results: BTreeMap<usize, Record>,
    /// The number of a torn last line that was ignored (a controller killed while writing it).
    pub torn: Option<usize>,
}

impl Replay {
    /// Where host `index` stands.
    pub fn state(&self, index: usize) -> HostState {
        if self.results.contains_key(&index) {
            HostState::Done
        } else if self.started.contains(&index) {
            HostState::Unknown
        } else {
            HostState::NotStarted
        }
    }
}

/// A journal line that cannot be read: its number (from 1) and why.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct JournalError {
    /// The line's number, from 1.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Reads a journal's text.
///
/// # Errors
///
/// [`JournalError`] naming the line when the text has no header first, a line that is neither
/// a header, a `started` line nor a result (other than a torn last line), or an index beyond
/// the header's host count.
pub fn read(text: &str) -> Result<Replay, JournalError> {
    read_from(text.as_bytes())
}

/// Reads a journal line by line from `reader` (a file is never held whole: only what it
/// records).
///
/// # Errors
///
/// As [`read`]; also a line that cannot be read (an I/O error, or not UTF-8), named.
pub fn read_from(mut reader: impl std::io::BufRead) -> Result<Replay, JournalError> {
    /// A `started` or result line, read in one pass.
    #[derive(Deserialize)]
    struct Line {
        started: Option<u64>,
        i: Option<u64>,
        result: Option<Record>,
    }
    let mut header: Option<Header> = None;
    let mut replay_started = BTreeSet::new();
    let mut results = BTreeMap::new();
    let mut torn = None;
    let mut buf = String::new();
    let mut number = 0;
    loop {
        buf.clear();
        let read = reader.read_line(&mut buf).map_err(|e| JournalError {
            line: number + 1,
            reason: format!("cannot be read: {e}"),
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        // Only the last line can lack its newline.
        let complete = buf.ends_with('\n');
        let raw = buf.trim_end_matches(['\n', '\r']);
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| JournalError {
            line: number,
            reason,
        };
        // The line as a JSON value; `None` for a last line cut short (a controller killed
        // mid-write leaves its last line without its end).
        let json = || match serde_json::from_str::<Value>(raw) {
            Ok(v) => Ok(Some(v)),
            Err(_) if !complete => Ok(None),
            Err(e) => Err(bad(format!("not JSON: {e}"))),
        };
        let Some(h) = &header else {
            let Some(value) = json()? else {
                torn = Some(number);
                break;
            };
            let h: Header = serde_json::from_value(value)
                .map_err(|e| bad(format!("not a journal header ({e})")))?;
            if let Some((i, e)) = h
                .hosts
                .iter()
                .enumerate()
                .find_map(|(i, t)| t.parse::<HostTarget>().err().map(|e| (i, e)))
            {
                return Err(bad(format!("header: host {i}: {e}")));
            }
            h.part().map_err(|e| bad(format!("header: {e}")))?;
            header = Some(h);
            continue;
        };
        let index_in = |i: u64| -> Result<usize, JournalError> {
            usize::try_from(i)
                .ok()
                .filter(|&i| i < h.hosts.len())
                .ok_or_else(|| {
                    bad(format!(
                        "host {i} is not one of the run's {} hosts",
                        h.hosts.len()
                    ))
                })
        };
        // The common case in one pass; anything else is read again to say what is wrong.
        match serde_json::from_str::<Line>(raw) {
            Ok(Line {
                started: Some(i), ..
            }) => {
                replay_started.insert(index_in(i)?);
                continue;
            }
            Ok(Line {
                i: Some(i),
                result: Some(record),
                ..
            }) => {
                results.insert(index_in(i)?, record);
                continue;
            }
            _ => {}
        }
        let Some(value) = json()? else {
            torn = Some(number);
            break;
        };
        if let (Some(_), Some(result)) =
            (value.get("i").and_then(Value::as_u64), value.get("result"))
        {
            let text = result.to_string();
            let e = crate::record::parse_line(number, &text)
                .err()
                .map_or_else(|| "not a result".to_string(), |e| e.problem.to_string());
            return Err(bad(format!("result: {e}")));
        }
        return Err(bad("neither a \"started\" nor a result line".to_string()));
    }
    let header = header.ok_or(JournalError {
        line: 1,
        reason: "no journal header (an empty file, or not a journal)".into(),
    })?;
    Ok(Replay {
        header,
        started: replay_started,
        results,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ErrorKind, HostError};

    fn hosts() -> Vec<HostTarget> {
        ["web1", "root@web2:2222", "db1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    fn split(index: usize, count: usize) -> Split {
        Split::new(Part::new(index, count).unwrap(), &hosts())
    }

    fn result(index: usize, exit: u32) -> HostResult {
        let mut r = HostResult::failed(
            index,
            hosts()[index].clone(),
            HostError::new(ErrorKind::Internal, "x"),
        );
        r.error = None;
        r.exit_code = Some(exit);
        r.stdout = b"out\n".to_vec();
        r
    }

    #[test]
    fn written_lines_read_back_as_each_host_stands() {
        let header = Header::new("uptime", Some(&split(1, 4)), &hosts());
        let mut text = header.line();
        text.extend(started_line(0));
        text.extend(started_line(1));
        text.extend(result_line(&result(0, 3)));
        let replay = read(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(replay.header, header);
        assert_eq!(replay.state(0), HostState::Done);
        assert_eq!(replay.state(1), HostState::Unknown);
        assert_eq!(replay.state(2), HostState::NotStarted);
        assert_eq!(replay.torn, None);
        let r = replay.results[&0].clone().into_host_result(0);
        assert_eq!((r.exit_code, r.stdout), (Some(3), b"out\n".to_vec()));
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_reported() {
        let mut text = Header::new("uptime", None, &hosts()).line();
        text.extend(started_line(2));
        let whole = result_line(&result(2, 0));
        text.extend(&whole[..whole.len() / 2]);
        let replay = read(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(replay.torn, Some(3));
        assert_eq!(replay.state(2), HostState::Unknown);
        // A complete bad line is an error, naming it.
        let mut text = Header::new("uptime", None, &hosts()).line();
        text.extend(b"{\"started\":\n");
        text.extend(started_line(1));
        let e = read(std::str::from_utf8(&text).unwrap()).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn bad_journals_are_named() {
        assert!(read("").unwrap_err().reason.contains("no journal header"));
        assert!(
            read("{\"started\":1}\n")
                .unwrap_err()
                .reason
                .contains("not a journal header")
        );
        let text = String::from_utf8(Header::new("x", None, &hosts()).line()).unwrap();
        let e = read(&format!("{text}{{\"started\":3}}\n")).unwrap_err();
        assert!(
            e.reason.contains("host 3 is not one of the run's 3 hosts"),
            "{e}"
        );
        let e = read(&format!("{text}{{\"other\":1}}\n")).unwrap_err();
        assert!(e.reason.contains("neither"), "{e}");
    }

    #[test]
    fn only_the_same_run_resumes_a_journal() {
        let h = Header::new("uptime", Some(&split(0, 2)), &hosts());
        assert_eq!(h.mismatch(&h.clone()), None);
        let other_command = Header::new("reboot", Some(&split(0, 2)), &hosts());
        assert!(h.mismatch(&other_command).unwrap().contains("\"reboot\""));
        let other_part = Header::new("uptime", Some(&split(1, 2)), &hosts());
        assert!(
            h.mismatch(&other_part)
                .unwrap()
                .contains("part 0/2, not 1/2")
        );
        let mut fewer = hosts();
        fewer.pop();
        let other_list = Header::new("uptime", Some(&split(0, 2)), &fewer);
        assert!(
            h.mismatch(&other_list)
                .unwrap()
                .contains("another host list")
        );
        let mut reordered = hosts();
        reordered.swap(0, 1);
        let other_order = Header::new("uptime", Some(&split(0, 2)), &reordered);
        assert!(
            h.mismatch(&other_order).is_some(),
            "the order is part of the list"
        );
    }
}

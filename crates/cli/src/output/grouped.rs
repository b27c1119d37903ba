//! `-o grouped` (clush -b, dshbak -c): hosts whose output and outcome are identical, printed
//! once under their folded host list at the end of the run.
//!
//! Memory grows with the number of *distinct* outputs: each is kept once, as the shared
//! `Arc<HostResult>` of the first host that had it (no bytes are copied), with the indices of
//! the hosts that had the same. Results are found by a hash of (stdout, stderr, truncated,
//! outcome) and compared byte for byte, so a hash collision cannot merge different outputs.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::sync::Arc;

use fleetsh::{HostResult, Outcome};
use fleetsh_core::fold::fold;

use super::color::Painter;

/// The line above and below each group's header.
pub const SEPARATOR: &str = "---------------";

/// One distinct output and the hosts that had it.
struct Group {
    /// The first host with this output; its result holds the bytes.
    first: Arc<HostResult>,
    /// Indices of every host with this output, in arrival order.
    hosts: Vec<usize>,
    /// Whether the hosts' error messages differ (their error kind is the same).
    messages_differ: bool,
}

/// The groups of a run, built as results arrive.
pub struct Groups {
    by_hash: HashMap<u64, Vec<usize>>,
    groups: Vec<Group>,
    paint: Painter,
}

fn hash(r: &HostResult) -> u64 {
    let mut h = DefaultHasher::new();
    r.stdout.hash(&mut h);
    r.stderr.hash(&mut h);
    r.truncated.hash(&mut h);
    r.outcome().hash(&mut h);
    h.finish()
}

fn same(a: &HostResult, b: &HostResult) -> bool {
    a.stdout == b.stdout
        && a.stderr == b.stderr
        && a.truncated == b.truncated
        && a.outcome() == b.outcome()
}

impl Groups {
    pub fn new(paint: Painter) -> Self {
        Groups {
            by_hash: HashMap::new(),
            groups: Vec::new(),
            paint,
        }
    }

    /// Adds a host's result to its group.
    pub fn add(&mut self, r: &Arc<HostResult>) {
        let candidates = self.by_hash.entry(hash(r)).or_default();
        for &g in candidates.iter() {
            if let Some(group) = self.groups.get_mut(g)
                && same(&group.first, r)
            {
                group.hosts.push(r.index);
                let message = |r: &HostResult| r.error.as_ref().map(|e| e.message.clone());
                if !group.messages_differ && message(&group.first) != message(r) {
                    group.messages_differ = true;
                }
                return;
            }
        }
        candidates.push(self.groups.len());
        self.groups.push(Group {
            first: r.clone(),
            hosts: vec![r.index],
            messages_differ: false,
        });
    }

    /// Writes every group, in the order of each group's first host in the host list.
    pub fn write(&self, names: &[String], w: &mut impl Write) -> io::Result<()> {
        let mut order: Vec<&Group> = self.groups.iter().collect();
        order.sort_by_key(|g| g.hosts.iter().min().copied());
        let mut text = Vec::new();
        for g in order {
            let hosts: Vec<&str> = g
                .hosts
                .iter()
                .map(|&i| names.get(i).map_or("?", String::as_str))
                .collect();
            text.clear();
            writeln!(text, "{SEPARATOR}")?;
            self.paint
                .header(&mut text, &format!("{} ({})", fold(&hosts), hosts.len()));
            writeln!(text, "\n{SEPARATOR}")?;
            body(&mut text, &g.first, g.messages_differ)?;
            w.write_all(&text)?;
        }
        Ok(())
    }
}

/// A group's output: stdout as is, then each stderr line marked `[stderr] `, then what went
/// wrong, if anything.
fn body(w: &mut Vec<u8>, r: &HostResult, messages_differ: bool) -> io::Result<()> {
    w.extend_from_slice(&r.stdout);
    if !r.stdout.is_empty() && !r.stdout.ends_with(b"\n") {
        w.push(b'\n');
    }
    for line in r.stderr.split_inclusive(|&b| b == b'\n') {
        w.extend_from_slice(b"[stderr] ");
        w.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            w.push(b'\n');
        }
    }
    if r.truncated {
        writeln!(w, "[output truncated]")?;
    }
    match r.outcome() {
        Outcome::Ok => {}
        Outcome::Exit(code) => writeln!(w, "[exit {code}]")?,
        Outcome::Signal(sig) => writeln!(w, "[killed by signal {sig}]")?,
        Outcome::Failed(kind) => match &r.error {
            Some(e) if messages_differ => writeln!(
                w,
                "[{kind}] {} (messages differ between these hosts: -o json or --out-dir has each)",
                e.message
            )?,
            Some(e) => writeln!(w, "[{kind}] {}", e.message)?,
            None => writeln!(w, "[{kind}]")?,
        },
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use fleetsh::{ErrorKind, HostError, HostTarget};

    fn result(index: usize, stdout: &str, stderr: &str, exit: u32) -> Arc<HostResult> {
        let mut r = HostResult::failed(
            index,
            HostTarget::new("h"),
            HostError::new(ErrorKind::Auth, ""),
        );
        r.error = None;
        r.exit_code = Some(exit);
        r.stdout = stdout.into();
        r.stderr = stderr.into();
        Arc::new(r)
    }

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web{i:02}")).collect()
    }

    fn render(g: &Groups, n: usize) -> String {
        let mut out = Vec::new();
        g.write(&names(n), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn identical_outputs_share_a_group_and_their_bytes() {
        let mut g = Groups::new(Painter::OFF);
        for i in [3, 0, 1, 2, 4, 6] {
            g.add(&result(i, "same\n", "", 0));
        }
        g.add(&result(5, "other", "warn\nlast", 2));
        assert_eq!(g.groups.len(), 2);
        // The group holds the first result itself, not a copy of its output.
        assert_eq!(Arc::strong_count(&g.groups[0].first), 1);
        assert_eq!(
            render(&g, 7),
            "---------------\nweb[01-05,07] (6)\n---------------\nsame\n\
             ---------------\nweb06 (1)\n---------------\nother\n[stderr] warn\n[stderr] last\n[exit 2]\n"
        );
    }

    #[test]
    fn outcomes_and_streams_split_groups() {
        let mut g = Groups::new(Painter::OFF);
        g.add(&result(0, "x\n", "", 0));
        g.add(&result(1, "x\n", "", 1));
        g.add(&result(2, "", "x\n", 0));
        let mut failed = HostResult::failed(
            3,
            HostTarget::new("h"),
            HostError::new(ErrorKind::Connect, "refused"),
        );
        failed.stdout = b"x\n".to_vec();
        g.add(&Arc::new(failed.clone()));
        failed.index = 4;
        failed.error = Some(HostError::new(ErrorKind::Connect, "reset"));
        g.add(&Arc::new(failed));
        assert_eq!(g.groups.len(), 4);
        let text = render(&g, 5);
        assert!(
            text.contains("web[04-05] (2)\n---------------\nx\n[connect] refused (messages differ"),
            "{text}"
        );
        assert!(
            text.contains("web02 (1)\n---------------\nx\n[exit 1]\n"),
            "{text}"
        );
    }
}

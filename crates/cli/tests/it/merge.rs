//! `fleetsh merge`: the journals of a split run's parts printed as one run, in every output
//! mode, with the whole run's exit status; parts without a journal, hosts no journal finished
//! and hosts in more than one journal are reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fleetsh_sim::{SimConfig, SimFleet};
use serde_json::Value;

use super::*;

const HOSTS: usize = 40;
const PARTS: usize = 4;

struct Split {
    sim: SimFleet,
    dir: tempfile::TempDir,
}

impl Split {
    fn start() -> Split {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimFleet::start(SimConfig {
            count: HOSTS,
            port: 0,
            state_dir: dir.path().join("fleet"),
            ..SimConfig::default()
        })
        .expect("the simulated fleet must start for this test");
        Split { sim, dir }
    }

    fn hosts_file(&self) -> String {
        self.sim.hosts_file().display().to_string()
    }

    fn journal(&self, part: usize) -> PathBuf {
        self.dir.path().join(format!("journal.{part}"))
    }

    /// Runs part `part` of `command` with its journal.
    fn run_part(&self, part: usize, command: &str) -> Output {
        run_part(
            &self.sim,
            &format!("{part}/{PARTS}"),
            &self.journal(part),
            command,
        )
    }

    fn run_all(&self, command: &str) {
        for part in 0..PARTS {
            self.run_part(part, command);
        }
    }

    fn merge(&self, extra: &[&str], journals: &[PathBuf]) -> Output {
        let mut args = vec!["merge".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(journals.iter().map(|p| p.display().to_string()));
        fleetsh(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn all(&self) -> Vec<PathBuf> {
        (0..PARTS).map(|p| self.journal(p)).collect()
    }
}

/// Runs part `shard` (`I/N`) of `command` on `sim`'s hosts, with the journal `journal`.
fn run_part(sim: &SimFleet, shard: &str, journal: &Path, command: &str) -> Output {
    let journal = journal.display().to_string();
    let key = sim.client_key_file().display().to_string();
    let known = sim.known_hosts_file().display().to_string();
    let hosts = sim.hosts_file().display().to_string();
    fleetsh(&[
        "run",
        "-H",
        &hosts,
        "-i",
        &key,
        "--known-hosts",
        &known,
        "-o",
        "json",
        "--shard",
        shard,
        "--journal",
        &journal,
        "--",
        command,
    ])
}

fn by_host(out: &Output) -> HashMap<String, Value> {
    let lines = json_lines(out);
    let n = lines.len();
    let map: HashMap<String, Value> = lines
        .into_iter()
        .map(|l| {
            let key = format!("{}:{}", l["host"].as_str().unwrap(), l["port"]);
            (key, l)
        })
        .collect();
    assert_eq!(map.len(), n, "a host printed twice: {}", text(&out.stdout));
    map
}

#[test]
fn a_split_run_merges_into_every_host_once_in_every_output_mode() {
    let s = Split::start();
    s.run_all("echo hi; echo warn >&2");
    for i in 0..HOSTS {
        assert_eq!(s.sim.commands_run(i), 1, "host {i}");
    }

    // JSON lines: every host once, as a single controller would print it.
    let out = s.merge(&["-o", "json"], &s.all());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = by_host(&out);
    assert_eq!(lines.len(), HOSTS);
    for l in lines.values() {
        assert_eq!(l["exit_code"], 0, "{l}");
        assert_eq!(l["stdout"], "hi\n", "{l}");
        assert_eq!(l["stderr"], "warn\n", "{l}");
        assert!(
            l["user"].is_string() && l["timings_ms"]["total"].is_number(),
            "{l}"
        );
    }
    let err = text(&out.stderr);
    assert!(
        err.contains("40 hosts merged from 4 journals; ok: 40"),
        "{err}"
    );

    // Inline: each host's output lines, prefixed, in the host list's order with -H.
    let out = s.merge(&["-H", &s.hosts_file()], &s.all());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let first = std::fs::read_to_string(s.sim.hosts_file()).unwrap();
    let order: Vec<&str> = first.lines().filter(|l| !l.is_empty()).collect();
    let printed: Vec<&str> = stdout
        .lines()
        .map(|l| l.strip_suffix(": hi").unwrap_or_else(|| panic!("{l:?}")))
        .collect();
    assert_eq!(printed, order);
    assert_eq!(text(&out.stderr).matches(": warn\n").count(), HOSTS);

    // Grouped: one group of every host.
    let out = s.merge(&["-o", "grouped"], &s.all());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("\nhi\n").count(), 1, "{stdout}");
    assert!(stdout.contains("(40)"), "{stdout}");

    // --out-dir: each host's files.
    let outdir = s.dir.path().join("out");
    let out = s.merge(
        &["-o", "json", "--out-dir", &outdir.display().to_string()],
        &s.all(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let outs = std::fs::read_dir(&outdir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".out")
        })
        .count();
    assert_eq!(outs, HOSTS);
}

#[test]
fn the_merged_exit_status_is_the_whole_runs() {
    let s = Split::start();
    s.run_all("echo x; exit 3");
    let out = s.merge(&["-o", "json"], &s.all());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(by_host(&out).values().all(|l| l["exit_code"] == 3));
    let out = s.merge(&["-o", "json", "-S"], &s.all());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exit 3: 40"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_parts_unfinished_and_duplicated_hosts_are_reported() {
    let s = Split::start();
    // Random bytes: output that is not UTF-8, recorded lossy.
    s.run_all("head -c 64 /dev/urandom");
    let all = s.all();
    let three = [all[0].clone(), all[1].clone(), all[3].clone()];

    // A part without its journal: its hosts are in no journal; the run failed.
    let out = s.merge(&["-o", "json"], &three);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no journal of part 2/4"), "{err}");
    assert!(err.contains("give the run's host list"), "{err}");
    let lines = by_host(&out);
    assert!(lines.values().all(|l| l["lossy"] == true), "lossy is kept");
    let known = lines.len();
    assert!(known < HOSTS && known > HOSTS / 2, "{known}");
    // With the list, they are named, each once, `missing`.
    let out = s.merge(&["-o", "json", "-H", &s.hosts_file()], &three);
    assert_eq!(out.status.code(), Some(1));
    let lines = by_host(&out);
    assert_eq!(lines.len(), HOSTS);
    let missing = lines
        .values()
        .filter(|l| l["error"]["kind"] == "missing")
        .count();
    assert_eq!(missing, HOSTS - known);
    // Inline folds them into one line.
    let out = s.merge(&["-H", &s.hosts_file()], &three);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} hosts missing: no journal started them",
            HOSTS - known
        )),
        "{err}"
    );

    // A journal whose last result was lost (its controller killed while the host ran): that
    // host is `unknown`; a torn last line is said and ignored.
    let cut = s.dir.path().join("cut.0");
    let text0 = std::fs::read_to_string(&all[0]).unwrap();
    let mut lines0: Vec<&str> = text0.lines().collect();
    let last_result = lines0
        .iter()
        .rposition(|l| l.starts_with("{\"i\":"))
        .unwrap();
    lines0.remove(last_result);
    let mut cut_text = lines0.join("\n");
    cut_text.push_str("\n{\"i\":0,\"res");
    std::fs::write(&cut, cut_text).unwrap();
    let out = s.merge(
        &["-o", "json"],
        &[cut, all[1].clone(), all[2].clone(), all[3].clone()],
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = by_host(&out);
    assert_eq!(lines.len(), HOSTS);
    let unknown: Vec<&Value> = lines
        .values()
        .filter(|l| l["error"]["kind"] == "unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("was cut short"), "{err}");
    assert!(err.contains("unknown: 1"), "{err}");

    // A part's journal given twice under two names (a part run twice): its hosts are
    // reported once each, and said to have run twice.
    let copy = s.dir.path().join("copy.1");
    std::fs::copy(&all[1], &copy).unwrap();
    let mut with_copy = all.clone();
    with_copy.push(copy);
    let out = s.merge(&["-o", "json"], &with_copy);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(by_host(&out).len(), HOSTS);
    let err = text(&out.stderr);
    assert!(err.contains("in more than one journal"), "{err}");
    assert!(err.contains("started by more than one journal"), "{err}");
}

#[test]
fn journals_that_are_not_one_runs_are_refused_by_name() {
    let s = Split::start();
    s.run_all("echo a");
    let all = s.all();
    let other = s.dir.path().join("other");
    run_part(&s.sim, "1/4", &other, "echo b");
    let refused = |journals: &[PathBuf], extra: &[&str], what: &str| {
        let out = s.merge(extra, journals);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(what), "{what:?} in {err}");
    };
    refused(
        &[all[0].clone(), other.clone()],
        &[],
        "are of different runs",
    );
    refused(&[all[0].clone(), all[0].clone()], &[], "given twice");
    refused(&[all[0].clone()], &["-w", "127.0.0.1"], "another host list");
    let junk = s.dir.path().join("junk");
    std::fs::write(&junk, "hello\n").unwrap();
    refused(&[junk], &[], "junk: line 1");
    refused(
        &[Path::new("/nonexistent/journal").to_path_buf()],
        &[],
        "/nonexistent/journal",
    );
    let out = fleetsh(&["merge"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_part_without_hosts_still_leaves_a_journal_for_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimFleet::start(SimConfig {
        count: 2,
        port: 0,
        state_dir: dir.path().join("fleet"),
        ..SimConfig::default()
    })
    .expect("the simulated fleet must start for this test");
    let journals: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("journal.{i}")))
        .collect();
    for (i, j) in journals.iter().enumerate() {
        let out = run_part(&sim, &format!("{i}/3"), j, "true");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(j.exists(), "part {i} wrote no journal");
    }
    let mut args = vec!["merge".to_string(), "-o".into(), "json".into()];
    args.extend(journals.iter().map(|p| p.display().to_string()));
    let out = fleetsh(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(by_host(&out).len(), 2);
    assert!(
        !text(&out.stderr).contains("no journal of part"),
        "{}",
        text(&out.stderr)
    );
}

//! Output formats: `-o grouped`, `--out-dir`, `-N`, colour, progress, the summary and `-S`.

use std::collections::BTreeSet;
use std::path::Path;

use fleetsh::hosts::expand;

use super::*;

/// Runs fleetsh with `env` set (and `NO_COLOR` removed unless `env` sets it).
fn fleetsh_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsh"));
    cmd.args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run fleetsh")
}

/// A group of `-o grouped` output: the folded host list, its count, and the body lines.
#[derive(Debug)]
struct Group {
    hosts: String,
    count: usize,
    body: Vec<String>,
}

const SEPARATOR: &str = "---------------";

fn groups(stdout: &str) -> Vec<Group> {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        assert_eq!(lines[i], SEPARATOR, "line {i} of {stdout}");
        assert_eq!(
            lines.get(i + 2),
            Some(&SEPARATOR),
            "line {} of {stdout}",
            i + 2
        );
        let (hosts, count) = lines[i + 1]
            .rsplit_once(" (")
            .unwrap_or_else(|| panic!("bad header {:?}", lines[i + 1]));
        let count = count.trim_end_matches(')').parse().unwrap();
        i += 3;
        let mut body = Vec::new();
        while i < lines.len() && lines[i] != SEPARATOR {
            body.push(lines[i].to_string());
            i += 1;
        }
        groups.push(Group {
            hosts: hosts.to_string(),
            count,
            body,
        });
    }
    groups
}

/// Expands a folded host list into host addresses (the port is checked to be one for all).
fn expand_hosts(spec: &str) -> BTreeSet<String> {
    let hosts = expand(spec, 1_000_000).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let n = hosts.len();
    let set: BTreeSet<String> = hosts.into_iter().collect();
    assert_eq!(set.len(), n, "{spec:?} names a host twice");
    set
}

/// The sim's hosts `127.1.0.{from..=to}` on `port`.
fn sim_hosts(from: u32, to: u32, port: &str) -> BTreeSet<String> {
    (from..=to).map(|i| format!("127.1.0.{i}:{port}")).collect()
}

/// The port of a folded list of sim hosts (`127.1.0.[1-20]:40123`).
fn port_of(spec: &str) -> String {
    spec.rsplit_once(':').unwrap().1.to_string()
}

#[test]
fn grouped_identical_output_is_one_group() {
    let out = fleetsh(&["run", "--sim", "20", "-o", "grouped", "--", "echo same"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let groups = groups(&stdout);
    assert_eq!(groups.len(), 1, "{stdout}");
    let g = &groups[0];
    assert_eq!(g.count, 20);
    assert!(g.hosts.starts_with("127.1.0.[1-20]:"), "{stdout}");
    assert_eq!(g.body, ["same"]);
    let port = port_of(&g.hosts);
    assert_eq!(expand_hosts(&g.hosts), sim_hosts(1, 20, &port));
    let err = text(&out.stderr);
    assert!(err.contains("20 hosts") && err.contains("ok: 20"), "{err}");
}

#[test]
fn grouped_folds_across_subnets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = fleetsh(&[
        "run",
        "--sim",
        "300",
        "-o",
        "grouped",
        "--out-dir",
        dir,
        "--",
        "echo same",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let groups = groups(&text(&out.stdout));
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.count, 300);
    // The sim skips addresses ending in .0 and .255.
    let port = port_of(&g.hosts);
    assert_eq!(
        g.hosts,
        format!("127.1.0.[1-254]:{port},127.1.1.[1-46]:{port}")
    );
    // The same hosts as --out-dir wrote files for.
    let written: BTreeSet<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".status").map(str::to_string)
        })
        .collect();
    assert_eq!(written.len(), 300);
    assert_eq!(expand_hosts(&g.hosts), written);
}

#[test]
fn grouped_distinct_output_is_one_group_per_host() {
    let out = fleetsh(&["run", "--sim", "20", "-o", "grouped", "--", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let groups = groups(&text(&out.stdout));
    assert_eq!(groups.len(), 20);
    let mut bodies = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for g in &groups {
        assert_eq!(g.count, 1, "{g:?}");
        assert_eq!(g.body.len(), 1, "{g:?}");
        bodies.insert(g.body[0].clone());
        hosts.extend(expand_hosts(&g.hosts));
    }
    assert_eq!(bodies.len(), 20);
    assert!(bodies.contains("sim00001") && bodies.contains("sim00020"));
    assert_eq!(hosts, sim_hosts(1, 20, &port_of(&groups[0].hosts)));
    // Groups come in host-list order.
    assert!(groups[0].hosts.starts_with("127.1.0.1:"), "{groups:?}");
    assert_eq!(groups[0].body, ["sim00001"]);
}

#[test]
fn grouped_splits_by_exit_status_signal_and_error() {
    // 127.1.0.250:1 refuses connections; sim host i has `$$` = 1000 + i - 1, so hosts 1 and 2
    // are killed and the others exit 3.
    let out = fleetsh(&[
        "run",
        "--sim",
        "8",
        "-w",
        "127.1.0.250:1",
        "-o",
        "grouped",
        "--",
        "echo same; echo warn >&2; kill -9 1000 1001 2>/dev/null || exit 3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let groups = groups(&stdout);
    assert_eq!(groups.len(), 3, "{stdout}");
    // The -w host comes first in the host list, then the sim's.
    assert_eq!(groups[0].hosts, "127.1.0.250:1");
    assert_eq!(groups[0].count, 1);
    assert_eq!(groups[0].body.len(), 1);
    assert!(groups[0].body[0].starts_with("[connect] "), "{stdout}");

    let port = port_of(&groups[1].hosts);
    assert_eq!(groups[1].hosts, format!("127.1.0.[1-2]:{port}"));
    assert_eq!(groups[1].count, 2);
    assert_eq!(
        groups[1].body,
        ["same", "[stderr] warn", "[killed by signal KILL]"]
    );
    assert_eq!(groups[2].hosts, format!("127.1.0.[3-8]:{port}"));
    assert_eq!(groups[2].count, 6);
    assert_eq!(groups[2].body, ["same", "[stderr] warn", "[exit 3]"]);
    assert_eq!(expand_hosts(&groups[2].hosts), sim_hosts(3, 8, &port));
    // Group output is all on stdout; stderr has the summary only.
    let err = text(&out.stderr);
    assert!(!err.contains("warn"), "{err}");
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn out_dir_files_for_ok_exit_and_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new/out");
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "-w",
        "127.1.0.250:1",
        "-o",
        "json",
        "--out-dir",
        dir.to_str().unwrap(),
        "--",
        "echo o; echo e >&2; kill -9 1000 2>/dev/null || exit 5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), 4, "-o json still prints every host");
    let port = json_lines(&out)
        .iter()
        .find_map(|v| (v["host"] == "127.1.0.1").then(|| v["port"].to_string()))
        .unwrap();
    let h1 = format!("127.1.0.1:{port}");
    assert_eq!(read(&dir, &format!("{h1}.out")), "o\n");
    assert_eq!(read(&dir, &format!("{h1}.err")), "e\n");
    assert_eq!(read(&dir, &format!("{h1}.status")), "signal KILL\n");
    let h2 = format!("127.1.0.2:{port}");
    assert_eq!(read(&dir, &format!("{h2}.out")), "o\n");
    assert_eq!(read(&dir, &format!("{h2}.err")), "e\n");
    assert_eq!(read(&dir, &format!("{h2}.status")), "5\n");
    let refused = read(&dir, "127.1.0.250:1.status");
    assert!(refused.starts_with("connect: "), "{refused:?}");
    assert_eq!(read(&dir, "127.1.0.250:1.out"), "");
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 12, "three files per host, no temporary file left");
}

#[test]
fn out_dir_rerun_replaces_files() {
    // A separate sim server keeps its port across both runs, so the file names are the same.
    let sim = SimProcess::start(2, "127.8.0.1");
    let d = sim.dir.path().to_path_buf();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let out_dir = tempfile::tempdir().unwrap();
    let od = out_dir.path().to_str().unwrap();
    let run = |command: &str| {
        fleetsh(&[
            "run",
            "-H",
            &p("hosts"),
            "-i",
            &p("id_ed25519"),
            "--known-hosts",
            &p("known_hosts"),
            "-o",
            "grouped",
            "--out-dir",
            od,
            "--",
            command,
        ])
    };
    let first = run("echo first; echo oops >&2; exit 7");
    let second = run("echo second");
    let hosts = std::fs::read_to_string(d.join("hosts")).unwrap();
    drop(sim);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let host = hosts.lines().find(|l| l.starts_with("127.8.0.1")).unwrap();
    assert_eq!(read(out_dir.path(), &format!("{host}.out")), "second\n");
    assert_eq!(read(out_dir.path(), &format!("{host}.err")), "");
    assert_eq!(read(out_dir.path(), &format!("{host}.status")), "0\n");
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 6);
}

#[test]
fn out_dir_that_cannot_be_created_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("out");
    let out = fleetsh(&[
        "run",
        "--sim",
        "2",
        "--out-dir",
        bad.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(bad.to_str().unwrap()),
        "names the directory: {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn no_prefix_prints_bare_lines() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "-N",
        "--",
        "echo hello; echo -n tail; echo oops >&2; exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["hello", "hello", "hello", "tail", "tail", "tail"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| *l == "oops").count(),
        3,
        "{stderr}"
    );
    // Failure notes still say which host failed.
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("127.1.0.") && l.ends_with(": [exit 1]"))
            .count(),
        3,
        "{stderr}"
    );
}

#[test]
fn no_colour_or_progress_without_a_terminal() {
    let command = ["run", "--sim", "4", "--", "echo hi; echo e >&2; exit 2"];
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        let out = fleetsh_env(&command, env);
        assert_eq!(out.status.code(), Some(1));
        for stream in [&out.stdout, &out.stderr] {
            let s = text(stream);
            assert!(!s.contains('\x1b'), "escape codes with {env:?}: {s:?}");
            assert!(!s.contains('\r'), "progress bar with {env:?}: {s:?}");
            assert!(!s.contains(" hosts/s, eta "), "progress bar: {s:?}");
        }
        assert_eq!(
            text(&out.stdout)
                .lines()
                .filter(|l| l.ends_with(": hi"))
                .count(),
            4
        );
    }
    let out = fleetsh_env(
        &[
            "run",
            "--sim",
            "2",
            "--no-progress",
            "-o",
            "json",
            "--",
            "true",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).contains('\r'));
}

#[test]
fn colour_always_paints_prefixes_even_with_no_color() {
    let command = [
        "run",
        "--sim",
        "4",
        "--color",
        "always",
        "--",
        "echo hi; echo e >&2; exit 2",
    ];
    let out = fleetsh_env(&command, &[("NO_COLOR", "1")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    for line in stdout.lines() {
        assert!(line.starts_with("\x1b["), "{line:?}");
        assert!(line.ends_with("\x1b[0m: hi"), "{line:?}");
    }
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("\x1b[0m: e\n").count(), 4, "{stderr:?}");
    assert_eq!(
        stderr.matches("\x1b[31m[exit 2]\x1b[0m").count(),
        4,
        "{stderr:?}"
    );
    let out = fleetsh_env(
        &["run", "--sim", "2", "--color", "never", "--", "echo hi"],
        &[],
    );
    assert!(!text(&out.stdout).contains('\x1b'));
}

#[test]
fn summary_has_percentiles_and_folded_failures() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "20",
        "-w",
        "127.1.0.250:1",
        "-o",
        "json",
        "--",
        "kill -9 1000 1001 2>/dev/null || exit 3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("21 hosts in "), "{err}");
    assert!(
        err.contains("exit 3: 18, signal KILL: 2, connect: 1"),
        "{err}"
    );
    let times = err
        .lines()
        .find(|l| l.starts_with("fleetsh: per-host time: "))
        .unwrap_or_else(|| panic!("no percentiles: {err}"));
    let values: Vec<f64> = times
        .trim_start_matches("fleetsh: per-host time: ")
        .split(", ")
        .map(|part| {
            let (name, value) = part.split_once(' ').unwrap();
            assert!(["p50", "p90", "p99", "max"].contains(&name), "{times}");
            value.trim_end_matches('s').parse().unwrap()
        })
        .collect();
    assert_eq!(values.len(), 4, "{times}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{times}");

    let failing = |what: &str| -> (usize, BTreeSet<String>) {
        let prefix = format!("fleetsh: {what} (");
        let line = err
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {what} line: {err}"));
        let (count, hosts) = line[prefix.len()..].split_once("): ").unwrap();
        (count.parse().unwrap(), expand_hosts(hosts))
    };
    let (n, exit3) = failing("exit 3");
    assert_eq!(n, 18);
    let port = exit3
        .iter()
        .next()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    assert_eq!(exit3, sim_hosts(3, 20, &port));
    assert!(
        err.contains(&format!("fleetsh: exit 3 (18): 127.1.0.[3-20]:{port}\n")),
        "{err}"
    );
    assert_eq!(failing("signal KILL"), (2, sim_hosts(1, 2, &port)));
    let (n, refused) = failing("connect");
    assert_eq!(
        (n, refused.into_iter().collect::<Vec<_>>()),
        (1, vec!["127.1.0.250:1".to_string()])
    );
}

#[test]
fn max_exit_status() {
    let code = |args: &[&str]| {
        let mut all = vec!["run", "--sim", "4", "-o", "json", "-S"];
        all.extend_from_slice(args);
        let out = fleetsh(&all);
        out.status.code()
    };
    assert_eq!(code(&["--", "true"]), Some(0));
    assert_eq!(code(&["--", "exit 3"]), Some(3));
    // Host 2 is killed by a signal, the others exit 3.
    assert_eq!(
        code(&["--", "kill -9 1001 2>/dev/null || exit 3"]),
        Some(137),
        "128 + KILL (9)"
    );
    assert_eq!(
        code(&["--", "kill -s TERM 1000 2>/dev/null || exit 3"]),
        Some(143)
    );
    assert_eq!(
        code(&["-w", "127.1.0.250:1", "--", "true"]),
        Some(255),
        "no exit status: 255"
    );
    // Without -S: 1 for any failure.
    let out = fleetsh(&["run", "--sim", "2", "--", "exit 3"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn summary_plurals_verbose_lines_and_unstarted_hosts() {
    let out = fleetsh(&["run", "--sim", "1", "--", "true"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.starts_with("fleetsh: 1 host in ") && err.contains(" on 1 shard; ok: 1"),
        "{err}"
    );
    assert!(!err.contains("peak RSS"), "only with -v: {err}");
    assert!(!err.contains("key exchange"), "only with -v: {err}");
    let out = fleetsh(&["run", "--sim", "2", "-v", "--", "true"]);
    let err = text(&out.stderr);
    assert!(err.contains("fleetsh: peak RSS "), "{err}");
    assert!(
        err.contains("fleetsh: key exchange guessed right for 2 hosts, wrong for 0"),
        "{err}"
    );

    // Skipped hosts are folded into one line, and neither counted in the per-host times nor
    // named among the slowest.
    let out = fleetsh(&[
        "run",
        "--sim",
        "30",
        "-f",
        "1",
        "--shards",
        "1",
        "--max-fail",
        "1",
        "--",
        "exit 5",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("skipped: 28"), "{err}");
    assert!(
        err.contains("fleetsh: 28 hosts skipped, not started after too many failures (max-fail): 127.1.0.[3-30]"),
        "{err}"
    );
    assert_eq!(
        err.matches("not started: more than").count(),
        0,
        "no note per skipped host: {err}"
    );
    let slowest = err
        .lines()
        .find(|l| l.starts_with("fleetsh: slowest: "))
        .unwrap();
    assert!(
        slowest.contains("127.1.0.1:") && slowest.contains("127.1.0.2:"),
        "{slowest}"
    );
    assert_eq!(
        slowest.matches(", ").count(),
        1,
        "two started hosts: {slowest}"
    );
    let order: Vec<&str> = err
        .lines()
        .map(|l| l.split([':', ' ']).nth(1).unwrap_or(""))
        .collect();
    assert!(!order.is_empty());
}

#[test]
fn warnings_follow_the_colour_rules() {
    // An unknown ssh_config keyword warns; stderr is a pipe here: no escapes, no timestamp.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(&cfg, "Host *\n  CanonicalizeHostname yes\n").unwrap();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut a = vec!["run", "--sim", "1", "-F", cfg.to_str().unwrap()];
        a.extend(extra);
        a.extend(["--", "true"]);
        fleetsh_env(&a, env)
    };
    let out = run(&[], &[]);
    let err = text(&out.stderr);
    let warning = err
        .lines()
        .find(|l| l.contains("warning"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warning.starts_with("fleetsh: warning: "), "{warning:?}");
    assert!(!err.contains('\x1b'), "{err:?}");
    let out = run(&["--color", "always"], &[]);
    let err = text(&out.stderr);
    assert!(err.contains("\x1b[1;33mwarning\x1b[0m"), "{err:?}");
}

/// `-o json` names each host's server and the algorithms its connection negotiated: a fleet
/// audit without running anything on the hosts (`true`).
#[test]
fn json_lines_name_the_server_and_its_algorithms() {
    let out = fleetsh(&["run", "--sim", "3", "-o", "json", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    for v in lines {
        let s = &v["server"];
        assert!(
            s["version"].as_str().unwrap().starts_with("SSH-2.0-"),
            "{v}"
        );
        assert_eq!(s["kex"], "mlkem768x25519-sha256", "{v}");
        assert_eq!(s["host_key"], "ssh-ed25519", "{v}");
        assert!(s["cipher"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    }
}

//! Split runs under a real Slurm cluster: `srun -n 4` tasks and a job array each run their
//! part of one host list (`--shard auto`) with a journal of their own, and `fleetsh merge`
//! combines the journals into one run. A task killed mid-run and run again with its journal
//! sends no command twice. Each test starts its own single-node cluster
//! (`fleetsh_testkit::slurm::Cluster`: munged, slurmctld and slurmd, as root) and its own
//! simulated fleet in this process; the tasks reach the fleet over loopback.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use fleetsh_sim::{SimConfig, SimFleet};
use fleetsh_testkit::slurm::Cluster;
use serde_json::Value;

use super::*;

/// How long one Slurm job may take before the test fails.
const JOB_LIMIT: Duration = Duration::from_secs(60);

/// A cluster, a simulated fleet and a directory for the journals.
struct Split {
    cluster: Cluster,
    sim: SimFleet,
    dir: tempfile::TempDir,
}

impl Split {
    fn start(count: usize, addr_base: [u8; 4]) -> Split {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimFleet::start(SimConfig {
            count,
            port: 0,
            addr_base: addr_base.into(),
            threads: 2,
            state_dir: dir.path().join("fleet"),
            ..SimConfig::default()
        })
        .expect("the simulated fleet must start for this test");
        let cluster = Cluster::start();
        Split { cluster, sim, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A shell command line running `fleetsh run` on the fleet with `--shard shard` and the
    /// journal `journal` (a shell word: it may name a variable), fanout `fanout`, JSON output.
    fn run_line(&self, shard: &str, journal: &str, fanout: usize, command: &str) -> String {
        [
            quote(env!("CARGO_BIN_EXE_fleetsh")),
            "run".into(),
            "-H".into(),
            quote_path(&self.sim.hosts_file()),
            "-i".into(),
            quote_path(&self.sim.client_key_file()),
            "--known-hosts".into(),
            quote_path(&self.sim.known_hosts_file()),
            "-o".into(),
            "json".into(),
            "--no-progress".into(),
            "-f".into(),
            fanout.to_string(),
            "--shard".into(),
            quote(shard),
            "--journal".into(),
            journal.into(),
            "--".into(),
            quote(command),
        ]
        .join(" ")
    }

    /// `srun` in the journals' directory, with the test's agent and password kept from the
    /// tasks.
    fn srun(&self) -> Command {
        let mut cmd = self.cluster.srun();
        cmd.current_dir(self.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FLEETSH_PASSWORD");
        cmd
    }

    /// `fleetsh merge -o json -H hosts` of `journals`.
    fn merge(&self, journals: &[PathBuf]) -> Output {
        let mut args: Vec<String> = vec![
            "merge".into(),
            "-o".into(),
            "json".into(),
            "-H".into(),
            self.sim.hosts_file().display().to_string(),
        ];
        args.extend(journals.iter().map(|j| j.display().to_string()));
        fleetsh(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `journals` merged: the merge succeeds and holds every host exactly once; its output and
    /// its lines by host.
    fn merge_all_ok(&self, journals: &[PathBuf]) -> (Output, HashMap<String, Value>) {
        let merged = self.merge(journals);
        assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
        let lines = by_host(&merged);
        let mut hosts: Vec<String> = lines.keys().cloned().collect();
        hosts.sort();
        assert_eq!(hosts, self.hosts(), "every host exactly once");
        (merged, lines)
    }

    /// The journals named `journal.*` in the directory, sorted.
    fn journals(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("journal."))
            })
            .collect();
        v.sort();
        v
    }

    /// Host address → the commands it was sent.
    fn commands_run(&self) -> HashMap<String, u64> {
        self.sim
            .hosts()
            .iter()
            .map(|h| (h.addr.ip().to_string(), self.sim.commands_run(h.index)))
            .collect()
    }

    /// Every host's address.
    fn hosts(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .sim
            .hosts()
            .iter()
            .map(|h| h.addr.ip().to_string())
            .collect();
        v.sort();
        v
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quote_path(p: &Path) -> String {
    quote(p.to_str().unwrap())
}

/// The merged JSON lines by host, asserting that no host has two.
fn by_host(out: &Output) -> HashMap<String, Value> {
    let mut seen = HashMap::new();
    for line in json_lines(out) {
        let host = line["host"].as_str().unwrap().to_string();
        let earlier = seen.insert(host.clone(), line);
        assert!(
            earlier.is_none(),
            "{host} reported twice: {}",
            text(&out.stdout)
        );
    }
    seen
}

/// A journal's hosts: (started, with a result), by the index its lines give.
fn journal_state(path: &Path) -> (Vec<u64>, Vec<u64>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut started, mut done) = (Vec::new(), Vec::new());
    // A line cut short by a kill does not parse: it is not there.
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(i) = v["started"].as_u64() {
            started.push(i);
        } else if let (Some(i), false) = (v["i"].as_u64(), v["result"].is_null()) {
            done.push(i);
        }
    }
    (started, done)
}

#[test]
fn srun_tasks_each_run_their_part_and_the_merged_journals_hold_every_host_once() {
    let t = Split::start(200, [127, 81, 0, 1]);
    // srun runs the line in each task; the shell names each task's journal by its rank.
    let journal = format!("{}/journal.$SLURM_PROCID", quote_path(t.dir.path()));
    let line = format!("exec {}", t.run_line("auto", &journal, 16, "echo hi"));
    let started = Instant::now();
    let out = t
        .cluster
        .output_within(t.srun().args(["-n", "4", "sh", "-c", &line]), JOB_LIMIT);
    assert!(
        out.status.success(),
        "srun: {}\n{}\n{}",
        out.status,
        text(&out.stderr),
        t.cluster.log_tails()
    );
    // The tasks' JSON lines, interleaved by srun: every host once.
    let printed = by_host(&out);
    assert_eq!(printed.len(), 200, "{}", text(&out.stderr));

    let journals = t.journals();
    assert_eq!(journals.len(), 4, "one journal per task: {journals:?}");
    let (_, lines) = t.merge_all_ok(&journals);
    for l in lines.values() {
        assert_eq!(l["exit_code"], 0, "{l}");
        assert!(l["error"].is_null(), "{l}");
        assert_eq!(l["stdout"], "hi\n", "{l}");
    }
    let sent = t.commands_run();
    assert!(
        sent.values().all(|&n| n == 1),
        "every host was sent its command exactly once: {sent:?}"
    );
    eprintln!("4 srun tasks on 200 hosts: {:?}", started.elapsed());
}

#[test]
fn a_task_killed_mid_run_and_run_again_from_its_journal_sends_no_command_twice() {
    let t = Split::start(120, [127, 82, 0, 1]);
    let command = "sleep 0.3; echo hi";
    // Each task writes its PID (the shell's, which fleetsh keeps through exec) beside its
    // journal, so that the test can kill exactly that task's fleetsh.
    let dir = quote_path(t.dir.path());
    let line = format!(
        "echo $$ > {dir}/pid.$SLURM_PROCID; exec {}",
        t.run_line("auto", &format!("{dir}/journal.$SLURM_PROCID"), 3, command)
    );
    let srun_err = t.path("srun.err");
    let mut srun = t
        .srun()
        .args(["-n", "4", "--kill-on-bad-exit=0", "sh", "-c", &line])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&srun_err).unwrap())
        .spawn()
        .unwrap();

    // Task 1 is killed (SIGKILL, by PID) while a host's command runs: once a few of its
    // hosts have started and its journal's last line is a host that just started.
    let victim = t.path("journal.1");
    let pid_file = t.path("pid.1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    let mut seen = String::new();
    for _ in 0..10_000 {
        seen = std::fs::read_to_string(&victim).unwrap_or_default();
        let last_started = seen
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("{\"started\""));
        ready = seen.matches("\"started\"").count() >= 6 && last_started;
        if ready || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        ready,
        "task 1 did not start its hosts: {seen}\n{}",
        t.cluster.log_tails()
    );
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(pid.parse::<u32>().is_ok(), "{pid:?}");
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success());

    // The other tasks finish; srun reports the killed one.
    let deadline = Instant::now() + JOB_LIMIT;
    let status = loop {
        if let Some(status) = srun.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = srun.kill();
            let _ = srun.wait();
            panic!("srun did not end\n{}", t.cluster.log_tails());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let srun_err = std::fs::read_to_string(&srun_err).unwrap_or_default();
    assert!(!status.success(), "a task was killed: {srun_err}");

    let sent_before = t.commands_run();
    assert!(sent_before.values().all(|&n| n <= 1), "{sent_before:?}");
    let (started, done) = journal_state(&victim);
    let in_flight = started.iter().filter(|i| !done.contains(i)).count();
    assert!(
        (1..=3).contains(&in_flight),
        "the kill left at most a fanout's worth of hosts started without a result: \
         {started:?} {done:?}"
    );

    // Merged now: task 1's hosts that never started are missing, those it started are
    // unknown, and the run failed.
    let partial = t.merge(&t.journals());
    assert_eq!(partial.status.code(), Some(1), "{}", text(&partial.stderr));
    let lines = by_host(&partial);
    assert_eq!(lines.len(), 120, "{}", text(&partial.stderr));
    let kinds = |kind: &str| {
        lines
            .values()
            .filter(|l| l["error"]["kind"] == kind)
            .count()
    };
    assert_eq!(kinds("unknown"), in_flight, "{}", text(&partial.stdout));
    assert_eq!(
        kinds("missing"),
        30 - started.len(),
        "task 1's part is 30 hosts: {}",
        text(&partial.stdout)
    );

    // Task 1 run again by itself, with its part named and the same journal: hosts with a
    // result are reported from it, hosts never started run, hosts started without a result
    // are reported unknown (without --rerun-unknown their command is not sent again).
    let rerun_line = format!(
        "exec {}",
        t.run_line(
            "1/4",
            &t.path("journal.1").display().to_string(),
            3,
            command
        )
    );
    let rerun = t.cluster.output_within(
        t.srun().args(["-n", "1", "sh", "-c", &rerun_line]),
        JOB_LIMIT,
    );
    assert_eq!(
        rerun.status.code(),
        Some(1),
        "unknown hosts are not a success: {}",
        text(&rerun.stderr)
    );
    let sent = t.commands_run();
    assert!(
        sent.values().all(|&n| n <= 1),
        "no host was sent its command twice: {sent:?}"
    );

    let merged = t.merge(&t.journals());
    let lines = by_host(&merged);
    let mut hosts: Vec<String> = lines.keys().cloned().collect();
    hosts.sort();
    assert_eq!(hosts, t.hosts(), "every host exactly once");
    let unknown: Vec<&Value> = lines
        .values()
        .filter(|l| l["error"]["kind"] == "unknown")
        .collect();
    assert_eq!(
        unknown.len(),
        in_flight,
        "the hosts killed mid-command are unknown: {}",
        text(&merged.stdout)
    );
    assert!(
        lines.values().all(|l| l["error"]["kind"] != "missing"),
        "{}",
        text(&merged.stdout)
    );
    for l in &unknown {
        assert!(l["exit_code"].is_null(), "{l}");
    }
    for (host, l) in &lines {
        if l["error"]["kind"] != "unknown" {
            assert_eq!(l["exit_code"], 0, "{l}");
            assert_eq!(l["stdout"], "hi\n", "{l}");
            assert_eq!(sent[host], 1, "{host} ran once: {l}");
        }
    }
    assert_eq!(
        merged.status.code(),
        Some(1),
        "unknown hosts make the merged run fail: {}",
        text(&merged.stderr)
    );
}

#[test]
fn job_array_tasks_each_run_their_part_and_the_merged_journals_hold_every_host_once() {
    let t = Split::start(160, [127, 83, 0, 1]);
    let dir = quote_path(t.dir.path());
    let script = t.path("array.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{}\necho $? > {dir}/rc.$SLURM_ARRAY_TASK_ID\n",
            t.run_line(
                "auto",
                &format!("{dir}/journal.$SLURM_ARRAY_TASK_ID"),
                16,
                "echo hi"
            )
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = format!("{}/out.%a", t.dir.path().display());
    let job = t.cluster.submit(
        t.cluster
            .sbatch()
            .current_dir(t.dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FLEETSH_PASSWORD")
            .args(["--array=0-3", "--output", &output])
            .arg(&script),
    );
    t.cluster.wait_gone(&job, JOB_LIMIT);

    for task in 0..4 {
        let rc = std::fs::read_to_string(t.path(&format!("rc.{task}"))).unwrap_or_default();
        let printed = std::fs::read_to_string(t.path(&format!("out.{task}"))).unwrap_or_default();
        assert_eq!(rc.trim(), "0", "array task {task}: {printed}");
    }
    let journals = t.journals();
    assert_eq!(
        journals.len(),
        4,
        "one journal per array task: {journals:?}"
    );
    let (merged, lines) = t.merge_all_ok(&journals);
    assert!(
        lines.values().all(|l| l["exit_code"] == 0),
        "{}",
        text(&merged.stdout)
    );
    let sent = t.commands_run();
    assert!(sent.values().all(|&n| n == 1), "{sent:?}");
    eprintln!("a 4-task job array on 160 hosts: {:?}", started.elapsed());
}

//! `--shard`: several controllers each run their part of one host list, against one
//! simulated fleet in another process; every host runs exactly once.

use std::collections::HashMap;
use std::process::Output;

use super::*;

/// `fleetsh run` with `args` and the scheduler's variables `env` (and no others of theirs).
fn run_part(sim: &SimProcess, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut owned = Vec::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsh"));
    cmd.arg("run")
        .args(["-H", &sim.path("hosts")])
        .args(sim.args(&mut owned))
        .args(["-o", "json", "--no-progress"])
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD");
    for var in [
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).output().expect("run fleetsh")
}

/// Host → how many parts ran it, over every part's JSON lines.
fn tally(outs: &[Output]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for out in outs {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        for line in json_lines(out) {
            assert_eq!(line["exit_code"], 0, "{line}");
            *seen
                .entry(line["host"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn parts_run_every_host_exactly_once() {
    let sim = SimProcess::start(60, "127.61.0.1");
    let all = std::fs::read_to_string(sim.path("hosts")).unwrap();
    let total = all.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(total, 60);

    // I/N by hand.
    let outs: Vec<Output> = (0..4)
        .map(|i| run_part(&sim, &["--shard", &format!("{i}/4"), "--", "true"], &[]))
        .collect();
    let sizes: Vec<usize> = outs.iter().map(|o| json_lines(o).len()).collect();
    assert_eq!(sizes, [15, 15, 15, 15], "parts differ by at most one host");
    let seen = tally(&outs);
    assert_eq!(seen.len(), total);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");

    // The same parts from Slurm's variables (srun -n 4), and from a job array.
    let from_slurm: Vec<Output> = (0..4)
        .map(|i| {
            let rank = i.to_string();
            run_part(
                &sim,
                &["--shard", "auto", "--", "true"],
                &[("SLURM_PROCID", &rank), ("SLURM_NTASKS", "4")],
            )
        })
        .collect();
    // Lines come in the order hosts finish: compare the sets.
    let hosts_of = |o: &Output| -> Vec<String> {
        let mut v: Vec<String> = json_lines(o)
            .iter()
            .map(|l| l["host"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    for (a, b) in outs.iter().zip(&from_slurm) {
        assert_eq!(hosts_of(a), hosts_of(b));
    }
    let array = run_part(
        &sim,
        &["--shard", "auto", "--", "true"],
        &[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
    );
    assert_eq!(
        hosts_of(&array),
        hosts_of(&outs[3]),
        "array task 7 of 1-7:2 is part 3"
    );
    // A Kubernetes Indexed Job's pod: the index from the environment, the count beside it.
    let pod = run_part(
        &sim,
        &["--shard", "auto/4", "--", "true"],
        &[("JOB_COMPLETION_INDEX", "2")],
    );
    assert_eq!(hosts_of(&pod), hosts_of(&outs[2]));
}

#[test]
fn a_part_without_hosts_runs_nothing_and_succeeds() {
    let sim = SimProcess::start(2, "127.62.0.1");
    let outs: Vec<Output> = (0..3)
        .map(|i| run_part(&sim, &["--shard", &format!("{i}/3"), "--", "true"], &[]))
        .collect();
    let empty: Vec<&Output> = outs.iter().filter(|o| o.stdout.is_empty()).collect();
    assert_eq!(empty.len(), 1, "two hosts in three parts");
    assert!(
        text(&empty[0].stderr).contains("holds none of the 2 hosts"),
        "{}",
        text(&empty[0].stderr)
    );
    let seen = tally(&outs);
    assert_eq!(seen.len(), 2);
}

#[test]
fn bad_parts_and_missing_variables_are_named() {
    let sim = SimProcess::start(1, "127.63.0.1");
    for (args, env, needle) in [
        (&["--shard", "4/4"][..], &[][..], "the part must be 0 to 3"),
        (&["--shard", "x"][..], &[][..], "expected I/N"),
        (
            &["--shard", "auto"][..],
            &[][..],
            "SLURM_PROCID/SLURM_NTASKS",
        ),
        (
            &["--shard", "auto"][..],
            &[("SLURM_PROCID", "1")][..],
            "SLURM_NTASKS is not",
        ),
        (
            &["--shard", "auto"][..],
            &[("JOB_COMPLETION_INDEX", "1")][..],
            "give it (auto/N)",
        ),
    ] {
        let mut full = args.to_vec();
        full.extend(["--", "true"]);
        let out = run_part(&sim, &full, env);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?} {env:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
}

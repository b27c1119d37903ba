//! `fleetsh run` against the simulated fleet: output modes, exit statuses, options.

use super::*;

#[test]
fn sim_json_one_line_per_host() {
    // A generous connect timeout: on a loaded 2-core CI machine, 1,000 handshakes in flight
    // wait for CPU, and this test checks completeness, not speed.
    let out = fleetsh(&[
        "run", "--sim", "2000", "-t", "120", "-o", "json", "--", "echo", "hello",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2000);
    let mut hosts = std::collections::HashSet::new();
    for v in &lines {
        assert_eq!(v["exit_code"], 0, "{v}");
        assert_eq!(v["stdout"], "hello\n");
        assert_eq!(v["stderr"], "");
        assert_eq!(v["signal"], Value::Null);
        assert_eq!(v["error"], Value::Null);
        assert_eq!(v["truncated"], false);
        assert!(v["timings_ms"]["total"].as_f64().unwrap() > 0.0);
        assert!(v["port"].as_u64().unwrap() > 0);
        hosts.insert(v["host"].as_str().unwrap().to_string());
    }
    assert_eq!(hosts.len(), 2000, "every host exactly once");
    // Field order follows the documented shape.
    let first = text(&out.stdout);
    assert!(first.starts_with("{\"host\":"), "{}", &first[..80]);
    let err = text(&out.stderr);
    assert!(
        err.contains("2000 hosts") && err.contains("ok: 2000"),
        "{err}"
    );
}

#[test]
fn inline_prefixes_lines_and_separates_streams_exit_1() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "5",
        "--",
        "echo out; echo err >&2; echo -n partial; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let outs: Vec<&str> = stdout.lines().filter(|l| l.ends_with(": out")).collect();
    assert_eq!(outs.len(), 5, "{stdout}");
    assert!(outs.iter().all(|l| l.starts_with("127.1.0.")), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": partial")).count(),
        5,
        "an unterminated last line is printed when the host ends"
    );
    assert!(
        !stdout.contains("err"),
        "stderr lines go to stderr: {stdout}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.ends_with(": err")).count(),
        5,
        "{stderr}"
    );
    assert_eq!(stderr.matches("[exit 4]").count(), 5, "{stderr}");
    assert!(stderr.contains("exit 4: 5"), "summary: {stderr}");
    assert!(stderr.contains("slowest"), "{stderr}");
}

#[test]
fn exclusions_and_exit_0() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "10",
        "-x",
        "127.1.0.[1-3]",
        "-o",
        "json",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 7);
    for v in &lines {
        let h = v["host"].as_str().unwrap();
        assert!(!["127.1.0.1", "127.1.0.2", "127.1.0.3"].contains(&h), "{h}");
    }
}

#[test]
fn signal_and_non_utf8_output_in_json() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "2",
        "-o",
        "json",
        "--",
        "head -c 64 /dev/urandom; kill -9 $$",
    ]);
    assert_eq!(out.status.code(), Some(1));
    for v in json_lines(&out) {
        assert_eq!(v["signal"], "KILL", "{v}");
        assert_eq!(v["exit_code"], Value::Null);
        assert_eq!(v["lossy"], true, "{v}");
    }
}

#[test]
fn config_file_gives_defaults_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fleetsh.toml");
    std::fs::write(&cfg, "command_timeout = 0.3\nfanout = 3\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "--config",
        cfg,
        "-o",
        "json",
        "--",
        "echo a; sleep 5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    for v in json_lines(&out) {
        assert_eq!(v["error"]["kind"], "command_timeout", "{v}");
        assert_eq!(v["stdout"], "a\n", "output before the timeout is kept");
    }
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "--config",
        cfg,
        "-u",
        "20",
        "-o",
        "json",
        "--",
        "sleep 0.5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

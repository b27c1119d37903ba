//! End-to-end tests of the `fleetsh` binary against the embedded simulated fleet.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn fleetsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .output()
        .expect("run fleetsh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A separate `fleetsh sim`, so that two runs reach the same hosts.
#[derive(Debug)]
pub struct SimProcess {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
}

impl SimProcess {
    pub fn start(count: usize, base: &str) -> Self {
        Self::start_with(count, base, &[])
    }

    pub fn start_with(count: usize, base: &str, env: &[(&str, &str)]) -> Self {
        Self::start_full(count, base, env, &[])
    }

    /// With environment variables and extra `fleetsh sim` arguments (e.g. `--fault`).
    pub fn start_full(count: usize, base: &str, env: &[(&str, &str)], extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
            .args([
                "sim",
                "--count",
                &count.to_string(),
                "--port",
                "0",
                "--addr-base",
                base,
            ])
            .args(extra)
            .arg("--state-dir")
            .arg(dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("ready {count}"));
        SimProcess { child, dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    pub fn args<'a>(&'a self, owned: &'a mut Vec<String>) -> Vec<&'a str> {
        *owned = vec![
            "-i".into(),
            self.path("id_ed25519"),
            "--known-hosts".into(),
            self.path("known_hosts"),
        ];
        owned.iter().map(String::as_str).collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Only the process this test started, by PID.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[path = "cli/auth.rs"]
mod auth;
#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/control.rs"]
mod control;
#[path = "cli/far_network.rs"]
mod far_network;
#[path = "cli/output.rs"]
mod output;
#[path = "cli/reliability.rs"]
mod reliability;
#[path = "cli/security.rs"]
mod security;
#[path = "cli/signals.rs"]
mod signals;
#[path = "cli/ssh_config.rs"]
mod ssh_config;
#[path = "cli/transfer.rs"]
mod transfer;

mod run {
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
}

mod usage_errors {
    use super::*;

    fn usage_error(args: &[&str], needle: &str) {
        let out = fleetsh(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn bad_host_spec_names_it() {
        usage_error(&["run", "-w", "web[1-", "--", "true"], "web[1-");
        usage_error(&["run", "-w", "web[5-1]", "--", "true"], "5-1");
        usage_error(&["run", "-w", "h:99999", "--", "true"], "99999");
    }

    #[test]
    fn missing_hosts_file_names_it() {
        usage_error(
            &["run", "-H", "/nonexistent/hosts", "--", "true"],
            "/nonexistent/hosts",
        );
    }

    #[test]
    fn bad_config_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, "fanout = 10\nfanuot = 3\n").unwrap();
        let out = fleetsh(&[
            "run",
            "-w",
            "h",
            "--config",
            cfg.to_str().unwrap(),
            "--",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains("bad.toml") && err.contains("fanuot"), "{err}");
    }

    #[test]
    fn missing_key_file_names_it() {
        usage_error(
            &["run", "-w", "h", "-i", "/nonexistent/id_x", "--", "true"],
            "/nonexistent/id_x",
        );
    }

    #[test]
    fn bad_flags() {
        usage_error(
            &["run", "-w", "h", "--host-key-check", "maybe", "--", "true"],
            "maybe",
        );
        usage_error(
            &["run", "-w", "h", "-t", "0", "--", "true"],
            "connect-timeout",
        );
        usage_error(&["run", "-w", "h", "-t", "soon", "--", "true"], "soon");
        usage_error(&["run", "-w", "h", "-f", "0", "--", "true"], "0");
        usage_error(&["run", "--", "true"], "required");
        usage_error(&["run", "-w", "h"], "COMMAND");
    }
}

mod sim {
    use super::*;

    /// `fleetsh sim` prints `ready N` once every listener is bound, and serves until SIGTERM;
    /// `fleetsh run -H hosts -i key --known-hosts ...` reaches it from another process.
    #[test]
    fn sim_subcommand_serves_a_separate_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
            .args([
                "sim",
                "--count",
                "200",
                "--port",
                "0",
                "--addr-base",
                "127.3.0.1",
            ])
            .arg("--state-dir")
            .arg(d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        stdout.read_line(&mut line).unwrap();
        assert!(Instant::now() < deadline);
        assert_eq!(line.trim(), "ready 200");
        let p = |n: &str| d.join(n).to_str().unwrap().to_string();
        let out = fleetsh(&[
            "run",
            "-H",
            &p("hosts"),
            "-i",
            &p("id_ed25519"),
            "--known-hosts",
            &p("known_hosts"),
            "-o",
            "json",
            "--",
            "hostname",
        ]);
        // Stop the server we started, by PID, before asserting.
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = child.wait().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 200);
        let mut names: Vec<String> = lines
            .iter()
            .map(|v| v["stdout"].as_str().unwrap().trim().to_string())
            .collect();
        names.sort();
        assert_eq!(names.first().map(String::as_str), Some("sim00001"));
        assert_eq!(names.last().map(String::as_str), Some("sim00200"));
        assert!(status.success(), "sim exits cleanly on SIGTERM: {status:?}");
    }

    #[test]
    fn sim_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = fleetsh(&[
            "sim",
            "--count",
            "5",
            "--addr-base",
            "10.0.0.1",
            "--state-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("10.0.0.1"),
            "{}",
            text(&out.stderr)
        );
        let out = fleetsh(&["sim", "--count", "0", "--state-dir", "x"]);
        assert_eq!(out.status.code(), Some(2));
    }
}

//! `fleetsh sim` as a process of its own: readiness, a separate run reaching it, bad input.

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

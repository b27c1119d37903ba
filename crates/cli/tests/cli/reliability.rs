//! Interrupts and process limits: every host still ends with exactly one result.

use super::*;

/// Sends `sig` to a process this test started, by PID.
fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn sigint_cancels_keeps_output_and_json_stays_valid() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args([
            "run",
            "--sim",
            "30",
            "-o",
            "json",
            "--",
            "echo started; sleep {index}0",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Host 0 sleeps 0 s: its line proves the run is under way; the others sleep 10 s or more.
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["exit_code"], 0);
    // Give the other hosts time to print "started" (bounded: they start at once).
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "-INT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let lines: Vec<Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("half a line {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 29, "every other host ends with one line");
    for v in &lines {
        assert_eq!(v["error"]["kind"], "cancelled", "{v}");
        assert_eq!(
            v["stdout"], "started\n",
            "output received before the interrupt is kept"
        );
    }
    let err = text(&out.stderr);
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn fanout_is_lowered_to_fit_the_open_files_limit() {
    let bin = env!("CARGO_BIN_EXE_fleetsh");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 300 && exec {bin} run --sim 100 -f 1000 -o json -- echo hello"
        ))
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("lowering fanout from 1000"), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 100);
    assert!(
        lines.iter().all(|v| v["exit_code"] == 0),
        "no EMFILE failures"
    );
}

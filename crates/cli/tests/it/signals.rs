//! SIGINT, SIGTERM and SIGHUP, and a closed standard output, in `run`, `put` and `get`, in JSON
//! and inline output: every host ends with exactly one result, output received before the
//! signal is kept, the summary prints, and the exit status is 128 + the signal's number (or,
//! for a closed pipe, the status the run earned).

use std::io::Read;
use std::path::Path;

use super::*;

/// Hosts of each run; with a fanout of 5, most of them have not started when the signal comes.
const HOSTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Run,
    Put,
    Get,
}

/// A `fleetsh` child with stdout and stderr piped.
fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fleetsh")
}

/// The arguments of a slow `verb` against `sim` (every reply 150 ms late), fanout 5.
fn slow_args(verb: Verb, sim: &SimProcess, json: bool, scratch: &Path) -> Vec<String> {
    let mut owned = Vec::new();
    let mut a: Vec<String> = match verb {
        Verb::Run => vec!["run".into()],
        Verb::Put => vec!["put".into()],
        Verb::Get => vec!["get".into()],
    };
    a.extend(["-H".into(), sim.path("hosts")]);
    a.extend(sim.args(&mut owned).into_iter().map(String::from));
    a.extend(["-f", "5", "-t", "60", "--no-progress"].map(String::from));
    if json {
        a.extend(["-o".into(), "json".into()]);
    }
    match verb {
        // Host 0 exits at once (its line shows the run is under way); the others sleep.
        Verb::Run => {
            a.extend(["--", "echo started; [ {index} = 0 ] || sleep 30"].map(String::from))
        }
        Verb::Put => {
            let f = scratch.join("payload");
            std::fs::write(&f, vec![7u8; 256 * 1024]).unwrap();
            a.extend([f.to_str().unwrap().to_string(), "/payload".into()]);
        }
        Verb::Get => {
            seed_files(sim, HOSTS);
            let d = scratch.join("got");
            std::fs::create_dir_all(&d).unwrap();
            a.extend(["/data".into(), d.to_str().unwrap().to_string()]);
        }
    }
    a
}

/// `/data` (64 KiB) on each of the first `n` hosts of `sim`.
fn seed_files(sim: &SimProcess, n: usize) {
    for i in 0..n {
        let dir = sim.dir.path().join("root").join(format!("sim{:05}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), vec![1u8; 64 * 1024]).unwrap();
    }
}

/// The host count and the per-outcome counts of the summary's first line.
fn summary_counts(err: &str) -> (usize, Vec<(String, usize)>) {
    let line = err
        .lines()
        .find(|l| l.starts_with("fleetsh: ") && l.contains(" hosts/s) on "))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    let n = line["fleetsh: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let counts = line
        .rsplit_once("; ")
        .unwrap()
        .1
        .split(", ")
        .map(|c| {
            let (k, v) = c.rsplit_once(": ").unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    (n, counts)
}

/// Runs `verb` on a slow fleet, sends `sig` once hosts are in flight and checks the end.
fn signal_ends_the_run_truthfully(verb: Verb, json: bool, sig: &str, status: i32) {
    let sim = SimProcess::start_full(HOSTS, base(verb, json, sig), &[], &["--latency", "150"]);
    let scratch = tempfile::tempdir().unwrap();
    let mut child = spawn(&slow_args(verb, &sim, json, scratch.path()));
    // stdout is read on a thread of its own, so that the first line can be waited for with a
    // bound and the rest collected after the signal.
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut first = String::new();
        let _ = r.read_line(&mut first);
        let _ = first_tx.send(());
        let mut rest = String::new();
        let _ = r.read_to_string(&mut rest);
        first + &rest
    });
    if verb == Verb::Run {
        // A command's first output (inline: a host's "started" line; JSON: host 0, which
        // exits at once) shows hosts are in flight; the others then sleep.
        first_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a first line of output");
        std::thread::sleep(Duration::from_millis(500));
    } else {
        // Handshakes take several delayed round trips: the first hosts are in flight, the
        // rest wait for a slot (20 hosts at fanout 5 take several seconds in all).
        std::thread::sleep(Duration::from_millis(1500));
    }
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut err_text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err_text)
        .unwrap();
    let status_got = child.wait().unwrap();
    let out = Output {
        status: status_got,
        stdout: reader.join().unwrap().into_bytes(),
        stderr: err_text.into_bytes(),
    };
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{sig}: {err}");
    let name = sig.trim_start_matches('-');
    assert!(
        err.contains(&format!("SIG{name} received")),
        "the signal is named: {err}"
    );
    assert!(
        err.contains(&format!("cancelled by SIG{name}")),
        "the summary names the signal: {err}"
    );
    let (n, counts) = summary_counts(&err);
    assert_eq!(n, HOSTS, "{err}");
    assert_eq!(
        counts.iter().map(|(_, c)| c).sum::<usize>(),
        HOSTS,
        "every host is counted once: {err}"
    );
    assert!(err.contains("cancelled"), "{err}");
    if json {
        let lines = json_lines(&out);
        assert_eq!(lines.len(), HOSTS, "one complete line per host: {err}");
        let mut hosts: Vec<&str> = lines.iter().map(|v| v["host"].as_str().unwrap()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        assert_eq!(hosts.len(), HOSTS, "each host once");
        let cancelled = lines
            .iter()
            .filter(|v| v["error"]["kind"] == "cancelled")
            .count();
        assert!(cancelled >= 1, "{cancelled} cancelled: {err}");
        let ok = lines.iter().filter(|v| v["error"].is_null()).count();
        assert_eq!(
            ok + cancelled,
            HOSTS,
            "ok or cancelled, nothing else: {err}"
        );
        for v in &lines {
            assert!(
                v["port"].as_u64().is_some(),
                "every result has its port: {v}"
            );
            assert_eq!(v["user"], "root", "every result has its user: {v}");
        }
        if verb == Verb::Run {
            let kept = lines.iter().filter(|v| v["stdout"] == "started\n").count();
            assert!(
                kept >= 1,
                "output received before the signal is kept: {err}"
            );
        }
    } else {
        // Hosts that never started are folded into one line, not one note each.
        assert!(
            err.contains("cancelled before they started"),
            "folded line: {err}"
        );
        assert!(
            err.lines()
                .filter(|l| l.contains("before this host started"))
                .count()
                == 0,
            "{err}"
        );
    }
}

/// A loopback range of its own per test (they run in parallel).
fn base(verb: Verb, json: bool, sig: &str) -> &'static str {
    let v = match verb {
        Verb::Run => 0,
        Verb::Put => 1,
        Verb::Get => 2,
    };
    let s = match sig {
        "-INT" => 0,
        "-TERM" => 1,
        _ => 2,
    };
    let n = 60 + v * 6 + s * 2 + usize::from(json);
    Box::leak(format!("127.{n}.0.1").into_boxed_str())
}

macro_rules! signal_tests {
    ($($name:ident: $verb:expr, $json:expr, $sig:expr, $status:expr;)*) => {$(
        #[test]
        fn $name() {
            signal_ends_the_run_truthfully($verb, $json, $sig, $status);
        }
    )*};
}

signal_tests! {
    run_json_sigterm: Verb::Run, true, "-TERM", 143;
    run_inline_sigterm: Verb::Run, false, "-TERM", 143;
    run_json_sighup: Verb::Run, true, "-HUP", 129;
    run_inline_sighup: Verb::Run, false, "-HUP", 129;
    run_json_sigint: Verb::Run, true, "-INT", 130;
    run_inline_sigint: Verb::Run, false, "-INT", 130;
    put_json_sigterm: Verb::Put, true, "-TERM", 143;
    put_inline_sigterm: Verb::Put, false, "-TERM", 143;
    put_json_sighup: Verb::Put, true, "-HUP", 129;
    put_inline_sighup: Verb::Put, false, "-HUP", 129;
    put_json_sigint: Verb::Put, true, "-INT", 130;
    put_inline_sigint: Verb::Put, false, "-INT", 130;
    get_json_sigterm: Verb::Get, true, "-TERM", 143;
    get_inline_sigterm: Verb::Get, false, "-TERM", 143;
    get_json_sighup: Verb::Get, true, "-HUP", 129;
    get_inline_sighup: Verb::Get, false, "-HUP", 129;
    get_json_sigint: Verb::Get, true, "-INT", 130;
    get_inline_sigint: Verb::Get, false, "-INT", 130;
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut child = spawn(
        &[
            "run",
            "--sim",
            "3",
            "--no-progress",
            "--",
            "echo started; sleep 30",
        ]
        .map(String::from),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("started"), "{first}");
    // The simulated fleet runs in this process: a command that ignores TERM would hold the
    // first signal's cancellation; the second must not wait for anything.
    for sig in ["-TERM", "-TERM"] {
        let _ = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
}

/// `fleetsh … | head -1`: the run goes on to the end with its output discarded, the summary
/// goes to stderr, and the exit status is the one the run earned.
fn closed_stdout(args: &[&str], hosts: usize, want_status: i32, want_counts: &str) {
    let mut child = spawn(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    // The reader is gone (dropped above): every later write to stdout fails with EPIPE.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(want_status), "{err}");
    let (n, _) = summary_counts(&err);
    assert_eq!(n, hosts, "{err}");
    assert!(
        err.contains(want_counts),
        "every host ran and the summary says so: {err}"
    );
    assert!(err.contains("standard output was closed"), "{err}");
}

#[test]
fn closed_stdout_runs_every_host_and_keeps_the_exit_status() {
    closed_stdout(
        &[
            "run",
            "--sim",
            "200",
            "--no-progress",
            "--",
            "echo a; exit 3",
        ],
        200,
        1,
        "exit 3: 200",
    );
    closed_stdout(
        &["run", "--sim", "200", "-o", "json", "--", "echo a; exit 3"],
        200,
        1,
        "exit 3: 200",
    );
    closed_stdout(
        &["run", "--sim", "100", "-o", "json", "--", "echo a"],
        100,
        0,
        "ok: 100",
    );
}

#[test]
fn closed_stdout_in_transfers() {
    let scratch = tempfile::tempdir().unwrap();
    let f = scratch.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    closed_stdout(
        &[
            "put",
            "--sim",
            "100",
            "-o",
            "json",
            f.to_str().unwrap(),
            "/f",
        ],
        100,
        0,
        "ok: 100",
    );
    let sim = SimProcess::start(100, "127.59.0.1");
    seed_files(&sim, 100);
    let d = scratch.path().join("got");
    std::fs::create_dir(&d).unwrap();
    let mut owned = Vec::new();
    let mut args = vec!["get", "-o", "json", "-H"];
    let hosts = sim.path("hosts");
    args.push(&hosts);
    args.extend(sim.args(&mut owned));
    args.extend(["/data", d.to_str().unwrap()]);
    closed_stdout(&args, 100, 0, "ok: 100");
}

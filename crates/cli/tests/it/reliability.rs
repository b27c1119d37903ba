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

fn peak_rss_mib(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("fleetsh: peak RSS "))
        .unwrap_or_else(|| panic!("no peak RSS line in {stderr}"));
    line.trim_start_matches("fleetsh: peak RSS ")
        .trim_end_matches(" MiB")
        .parse()
        .unwrap()
}

/// Hosts that flood output: memory stays bounded by the capture cap times the hosts in flight
/// (plus the streamed-output budget in inline mode), whatever the servers send.
#[test]
fn flooding_hosts_do_not_grow_memory() {
    let sim = SimProcess::start_full(
        300,
        "127.21.0.1",
        &[],
        &["--fault", "flood=100", "--threads", "2"],
    );
    let p = |n: &str| sim.path(n);
    let common = [
        "run".to_string(),
        "-H".into(),
        p("hosts"),
        "-i".into(),
        p("id_ed25519"),
        "--known-hosts".into(),
        p("known_hosts"),
        "-t".into(),
        "60".into(),
        "-u".into(),
        "4".into(),
        "--output-cap".into(),
        "65536".into(),
        // The summary's peak memory line.
        "-v".into(),
    ];
    let mut results = Vec::new();
    for mode in ["json", "inline"] {
        let out = Command::new(env!("CARGO_BIN_EXE_fleetsh"))
            .args(&common)
            .args(["-o", mode, "--", "echo go"])
            .env_remove("SSH_AUTH_SOCK")
            .stdout(if mode == "json" {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("command_timeout: 300"), "{err}");
        if mode == "json" {
            // Every capture stops at the cap. A host that got its exec late on a loaded
            // machine may not have filled it within the 4 s: most hosts must have.
            let lines = json_lines(&out);
            let mut truncated = 0;
            for v in &lines {
                let len = v["stdout"].as_str().unwrap().len();
                assert!(len <= 65536, "{len}");
                if v["truncated"] == true {
                    assert_eq!(len, 65536);
                    truncated += 1;
                }
            }
            assert!(
                truncated * 10 >= lines.len() * 9,
                "{truncated} of {} truncated",
                lines.len()
            );
        }
        results.push((mode, peak_rss_mib(&err)));
    }
    drop(sim);
    eprintln!("peak RSS with 300 flooding hosts: {results:?}");
    // Per host in flight: 2 × the 64 KiB cap + russh's channel buffer (16 packets of 32 KiB) +
    // session state; inline mode adds at most the 64 MiB streamed-output budget. 300 hosts:
    // about 200 MiB of buffers at worst, plus the process's base and allocator slack. Without
    // the caps and the budget the floods (hundreds of MB/s) would reach gigabytes in 4 s.
    for (mode, mib) in results {
        assert!(mib < 512, "{mode}: peak RSS {mib} MiB");
    }
}

/// Megabytes without a newline are printed in 64 KiB pieces (memory stays bounded), and a pty's
/// `\r\n` line ends print as plain lines.
#[test]
fn long_lines_and_carriage_returns_inline() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "2",
        "--",
        "head -c 1000000 /dev/zero; echo; echo tail",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let pieces: Vec<&str> = stdout.lines().filter(|l| l.contains('\0')).collect();
    // 1,000,000 bytes per host = 15 pieces of 65,536 bytes + one of 16,960.
    assert_eq!(pieces.len(), 2 * 16, "{}", pieces.len());
    let zeros: usize = pieces.iter().map(|l| l.matches('\0').count()).sum();
    assert_eq!(zeros, 2_000_000, "no byte lost");
    assert_eq!(stdout.lines().filter(|l| l.ends_with(": tail")).count(), 2);
    let out = fleetsh(&["run", "--sim", "2", "--pty", "--", "echo one; echo two"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\r'), "{stdout:?}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": one")).count(),
        2,
        "{stdout:?}"
    );
}

/// Name servers that drop every query: each host ends `connect_timeout` at its bound, and the
/// run (its batches, its summary, the process exit) does not wait for the abandoned lookups.
/// The test runs fleetsh in a network and mount namespace of its own, with a `resolv.conf`
/// naming a name server on the namespace's loopback that reads queries and never answers,
/// with glibc's longest timeout (30 s per query).
#[test]
fn hung_name_lookups_do_not_hold_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.53\noptions timeout:30 attempts:1\n",
    )
    .unwrap();
    let dropper = "import socket\n\
                   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                   s.bind(('127.0.0.53', 53))\n\
                   print('ready', flush=True)\n\
                   while True: s.recv(4096)\n";
    let script = format!(
        "set -e; ip link set lo up; mount --bind {resolv} /etc/resolv.conf; \
         python3 -c \"$DROPPER\" > {dir}/dns.ready & dns=$!; \
         for i in $(seq 1 100); do grep -q ready {dir}/dns.ready && break; sleep 0.05; done; \
         grep -q ready {dir}/dns.ready; \
         start=$(date +%s%N); \
         {bin} run -w 'h[1-20].fleetsh.test' --batch 10 -t 2 --no-ssh-config \
           --host-key-check off -o json -- true > {dir}/out.json 2> {dir}/err.txt || true; \
         echo $(( ($(date +%s%N) - start) / 1000000 )) > {dir}/ms; kill $dns",
        resolv = resolv.display(),
        dir = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_fleetsh"),
    );
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--fork", "sh", "-c", &script])
        .env("DROPPER", dropper)
        .env("FLEETSH_PASSWORD", "unused")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("unshare (util-linux) runs this test in a namespace of its own");
    assert!(
        out.status.success(),
        "cannot set up the namespace with a silent name server (needs root or user namespaces, ip, python3): {}",
        text(&out.stderr)
    );
    let err = std::fs::read_to_string(dir.path().join("err.txt")).unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("out.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20, "{err}");
    for v in &lines {
        assert_eq!(v["error"]["kind"], "connect_timeout", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("resolving the name"),
            "{v}"
        );
    }
    // Two batches of hosts bounded at 2 s each. Waiting for the lookups would take 30 s per
    // batch; anything under 20 s shows the run ended by its hosts' bounds.
    let ms: u64 = std::fs::read_to_string(dir.path().join("ms"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ms < 20_000, "the run took {ms} ms: {err}");
}

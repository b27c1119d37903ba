//! `fleetsh sim` as a process of its own: readiness, a separate run reaching it, thousands of
//! hosts on one listening socket, bad input.

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

/// `fleetsh sim --listen one-socket` serves 3,000 hosts from one listening socket: its open
/// files stay few, and `fleetsh run` (known_hosts checked strictly) finds every host as
/// itself, its own key and name, with the faults on the hosts the seed gives them.
#[test]
fn sim_one_socket_serves_every_host_as_itself() {
    const HOSTS: usize = 3_000;
    const FAULTS: &str = "auth-fail=1,exit:7=1";
    let sim = SimProcess::start_full(
        HOSTS,
        "127.64.0.1",
        &[],
        &[
            "--listen",
            "one-socket",
            "--threads",
            "2",
            "--fault",
            FAULTS,
        ],
    );
    // One listening socket, a few files of the runtime; not one per host.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", sim.child.id()))
        .unwrap()
        .count();
    assert!(fds < 100, "fleetsh sim holds {fds} open files");
    let mut owned = Vec::new();
    let mut args = vec!["run", "-H"];
    let hosts_file = sim.path("hosts");
    args.push(&hosts_file);
    args.extend(sim.args(&mut owned));
    args.extend(["-t", "120", "-o", "json", "--", "hostname"]);
    let out = fleetsh(&args);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), HOSTS, "{}", text(&out.stderr));

    // The seed assigns faults to host indices alike in every fleet of this size.
    let oracle = fleetsh_sim::SimFleet::start_temp(fleetsh_sim::SimConfig {
        count: HOSTS,
        port: 0,
        listen: fleetsh_sim::Listen::OneSocket,
        faults: fleetsh_sim::parse_faults(FAULTS).unwrap(),
        ..fleetsh_sim::SimConfig::default()
    })
    .unwrap();
    let index_of: std::collections::HashMap<String, usize> = std::fs::read_to_string(&hosts_file)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| (line.rsplit_once(':').unwrap().0.to_string(), i))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let (mut auth, mut exit7) = (0, 0);
    for v in &lines {
        let index = index_of[v["host"].as_str().unwrap()];
        assert!(seen.insert(index), "host {index} twice");
        let name = format!("sim{:05}\n", index + 1);
        match oracle.fault_of(index).map(fleetsh_sim::Fault::kind) {
            None => {
                assert_eq!(v["error"], Value::Null, "{v}");
                assert_eq!(v["stdout"], name.as_str(), "{v}");
                assert_eq!(v["exit_code"], 0, "{v}");
            }
            Some("exit") => {
                assert_eq!(v["stdout"], name.as_str(), "{v}");
                assert_eq!(v["exit_code"], 7, "{v}");
                exit7 += 1;
            }
            Some("auth-fail") => {
                assert_eq!(v["error"]["kind"], "auth", "{v}");
                auth += 1;
            }
            other => panic!("unexpected fault {other:?}"),
        }
    }
    assert_eq!((auth, exit7), (30, 30));
    oracle.stop();
    drop(sim);
}

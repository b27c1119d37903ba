//! Authentication as an operator meets it: the passphrase of an encrypted key asked on the
//! terminal once (not once per host), under a real pseudo-terminal (`script`).

use std::io::Write;

use super::*;

#[test]
fn encrypted_key_passphrase_is_asked_once_on_the_terminal() {
    let sim = SimProcess::start(20, "127.44.0.1");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked");
    std::fs::copy(sim.path("id_ed25519"), &key).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "terminal secret", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client) is needed");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let cmd = format!(
        "{} run -H {} -i {} --known-hosts {} -o json --no-progress -- echo unlocked",
        env!("CARGO_BIN_EXE_fleetsh"),
        sim.path("hosts"),
        key.display(),
        sim.path("known_hosts"),
    );
    // `script` gives fleetsh a terminal; what we write to its stdin is typed at it, once the
    // prompt is on the screen (typed earlier, the terminal would still echo it).
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) is needed to give fleetsh a terminal");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text(&screen.lock().unwrap()).contains("Enter passphrase for key") {
        assert!(
            Instant::now() < deadline,
            "no passphrase prompt within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"terminal secret\n").unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let out = Output {
        status,
        stdout: screen.lock().unwrap().clone(),
        stderr: Vec::new(),
    };
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}{}", text(&out.stderr));
    assert_eq!(
        screen.matches("Enter passphrase for key").count(),
        1,
        "asked once for 20 hosts:\n{screen}"
    );
    assert_eq!(screen.matches("\"exit_code\":0").count(), 20, "{screen}");
    assert!(
        !screen.contains("terminal secret"),
        "the passphrase is not echoed"
    );
}

/// `fleetsh run -H <sim's hosts> <sim's key and known_hosts> EXTRA -o json -- echo ok`.
fn echo_on(sim: &SimProcess, extra: &[&str]) -> std::process::Output {
    let mut owned = Vec::new();
    let hosts = sim.path("hosts");
    let mut a = vec!["run", "-H", &hosts];
    a.extend(sim.args(&mut owned));
    a.extend(extra);
    a.extend(["-o", "json", "--", "echo", "ok"]);
    fleetsh(&a)
}

#[test]
fn kex_preference_from_flag_and_config_file() {
    let sim = SimProcess::start(5, "127.45.0.1");
    // `-v`: the summary's key exchange line.
    let run = |extra: &[&str]| echo_on(&sim, &[extra, &["-v"]].concat());
    // The simulated hosts put ML-KEM first: by default every guess is right (the verbose
    // summary says so), with curve25519 first the first ones are wrong, and without guessing
    // there are none.
    let guesses = |out: &std::process::Output| {
        text(&out.stderr)
            .lines()
            .find(|l| l.starts_with("fleetsh: key exchange guessed"))
            .map(str::to_string)
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        guesses(&out).as_deref(),
        Some("fleetsh: key exchange guessed right for 5 hosts, wrong for 0")
    );
    let out = run(&["--kex", "curve25519"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), 5);
    let line = guesses(&out).expect("a summary line");
    assert!(line.contains("right for 0 hosts"), "{line}");

    let out = run(&["--kex", "curve25519", "--no-kex-guess"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), 5);
    assert_eq!(guesses(&out), None, "{}", text(&out.stderr));

    let out = run(&["--kex", "md5-please"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("curve25519"),
        "{}",
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "kex = \"curve25519\"\n").unwrap();
    let out = run(&["--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "kex = \"sha1-forever\"\n").unwrap();
    let out = run(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("kex"), "{err}");
    let no_guess = dir.path().join("no_guess.toml");
    std::fs::write(&no_guess, "kex_guess = false\n").unwrap();
    let out = run(&["--config", no_guess.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), 5);
    assert_eq!(guesses(&out), None, "{}", text(&out.stderr));
    let bad = dir.path().join("bad_guess.toml");
    std::fs::write(&bad, "kex_guess = \"sometimes\"\n").unwrap();
    let out = run(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad_guess.toml") && err.contains("kex_guess"),
        "{err}"
    );
}

#[test]
fn cipher_preference_from_flag_and_config_file() {
    let sim = SimProcess::start(3, "127.48.0.1");
    let run = |extra: &[&str]| echo_on(&sim, extra);
    for c in ["auto", "aes-gcm", "chacha20"] {
        let out = run(&["--cipher", c]);
        assert!(out.status.success(), "--cipher {c}: {}", text(&out.stderr));
        assert_eq!(json_lines(&out).len(), 3, "--cipher {c}");
    }
    let out = run(&["--cipher", "rot13"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("rot13") && err.contains("chacha20"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "cipher = \"chacha20\"\n").unwrap();
    let out = run(&["--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "cipher = \"des\"\n").unwrap();
    let out = run(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("cipher"), "{err}");
}

#[test]
fn jump_host_flag_reaches_hosts_through_a_bastion() {
    let sim = SimProcess::start(40, "127.47.0.1");
    let hosts = std::fs::read_to_string(sim.path("hosts")).unwrap();
    let mut lines = hosts.lines();
    let bastion = lines.next().unwrap().to_string();
    let behind = sim.dir.path().join("behind");
    std::fs::write(&behind, lines.collect::<Vec<_>>().join("\n")).unwrap();
    let mut owned = Vec::new();
    let mut args = vec!["run", "-H", behind.to_str().unwrap(), "-J", &bastion];
    args.extend(sim.args(&mut owned));
    args.extend(["-o", "json", "--", "hostname"]);
    let out = fleetsh(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), 39);

    let out = fleetsh(&["run", "-w", "127.0.0.1:1", "-J", "a,,b", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-J"), "{}", text(&out.stderr));
}

/// The config file's connection options reach the engine: an inactivity timeout cuts off a
/// silent command (`disconnected`, naming the timeout, output kept), a packet size outside
/// its range is a usage error naming the file and the key.
#[test]
fn connection_options_from_the_config_file() {
    let sim = SimProcess::start(2, "127.49.0.1");
    let dir = tempfile::tempdir().unwrap();
    let idle = dir.path().join("idle.toml");
    std::fs::write(
        &idle,
        "inactivity_timeout = 0.8\nwindow_size = 65536\nmax_packet_size = 4096\n",
    )
    .unwrap();
    let mut owned = Vec::new();
    let hosts = sim.path("hosts");
    let mut a = vec!["run", "-H", &hosts, "--config", idle.to_str().unwrap()];
    a.extend(sim.args(&mut owned));
    a.extend(["-u", "60", "-o", "json", "--", "echo started; sleep 30"]);
    let out = fleetsh(&a);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for v in &lines {
        assert_eq!(v["error"]["kind"], "disconnected", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("inactivity timeout"),
            "{v}"
        );
        assert_eq!(v["stdout"], "started\n", "{v}");
    }
    let bad = dir.path().join("bad_packet.toml");
    std::fs::write(&bad, "max_packet_size = 100\n").unwrap();
    let mut owned = Vec::new();
    let mut a = vec!["run", "-H", &hosts, "--config", bad.to_str().unwrap()];
    a.extend(sim.args(&mut owned));
    a.extend(["-o", "json", "--", "true"]);
    let out = fleetsh(&a);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad_packet.toml") && err.contains("max_packet_size"),
        "{err}"
    );
}

//! ssh_config: an alias's HostName, User, Port and IdentityFile reach the simulated fleet; flags
//! win; `fleetsh config show` names where each value comes from.

use super::*;

/// A home directory whose `~/.ssh/config` names the sim's first two hosts `app-1` and `app-2`.
fn home_with_config(sim: &SimProcess, base: &str) -> tempfile::TempDir {
    let hosts = std::fs::read_to_string(sim.path("hosts")).unwrap();
    let port = hosts
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap()
        .to_string();
    let second = base.replace(".0.1", ".0.2");
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/config"),
        format!(
            "# fleet\n\
             Host app-*\n\
             \x20 User deploy\n\
             \x20 Port {port}\n\
             \x20 IdentityFile {key}\n\
             \x20 UserKnownHostsFile {kh}\n\
             \x20 ControlMaster auto\n\
             Host app-1\n\
             \x20 HostName {base}\n\
             Host app-2\n\
             \x20 HostName {second}\n",
            key = sim.path("id_ed25519"),
            kh = sim.path("known_hosts"),
        ),
    )
    .unwrap();
    home
}

fn run_home(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetsh"))
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .output()
        .expect("run fleetsh")
}

#[test]
fn alias_from_ssh_config_reaches_the_fleet_and_flags_win() {
    let base = "127.32.0.1";
    let sim = SimProcess::start(2, base);
    let home = home_with_config(&sim, base);
    let args = [
        "run",
        "-w",
        "app-1,app-2",
        "-o",
        "json",
        "--",
        "whoami; hostname",
    ];
    let out = run_home(home.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut lines = json_lines(&out);
    lines.sort_by_key(|v| v["host"].as_str().unwrap_or_default().to_string());
    assert_eq!(lines.len(), 2);
    for (i, v) in lines.iter().enumerate() {
        // Results name the host as typed, with the effective user and port.
        assert_eq!(v["host"], format!("app-{}", i + 1), "{v}");
        assert_eq!(v["user"], "deploy", "{v}");
        assert_eq!(v["stdout"], format!("deploy\nsim0000{}\n", i + 1), "{v}");
    }
    // A flag wins over ssh_config's User.
    let out = run_home(
        home.path(),
        &[
            "run", "-w", "app-1", "-l", "ops", "-o", "json", "--", "whoami",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out)[0]["stdout"], "ops\n");
    // Without ssh_config, `app-1` is just a name that does not resolve (the key and
    // known_hosts come from flags: without them the engine would refuse to start, having no
    // credentials and no known_hosts file in this home).
    let key = sim.path("id_ed25519");
    let kh = sim.path("known_hosts");
    let out = run_home(
        home.path(),
        &[
            "run",
            "--no-ssh-config",
            "-i",
            &key,
            "--known-hosts",
            &kh,
            "-w",
            "app-1",
            "-o",
            "json",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out)[0]["error"]["kind"], "resolve");
    // -F reads another file instead.
    let other = home.path().join("other_config");
    std::fs::write(
        &other,
        "Host app-1\n  HostName 127.32.0.9\n  ConnectTimeout 1\n",
    )
    .unwrap();
    let out = run_home(
        home.path(),
        &["config", "show", "-F", other.to_str().unwrap(), "app-1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("127.32.0.9"), "{shown}");
    assert!(!shown.contains("deploy"), "{shown}");
}

#[test]
fn config_show_names_the_origin_of_each_value() {
    let base = "127.33.0.1";
    let sim = SimProcess::start(1, base);
    let home = home_with_config(&sim, base);
    let out = run_home(home.path(), &["config", "show", "-p", "2200", "app-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let config = home.path().join(".ssh/config");
    let config = config.display();
    let line = |name: &str| {
        shown
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {shown}"))
            .to_string()
    };
    assert!(line("host").contains("app-1  # target"), "{shown}");
    assert!(
        line("hostname").ends_with(&format!("{base}  # {config}:9")),
        "{shown}"
    );
    assert!(
        line("user").ends_with(&format!("deploy  # {config}:3")),
        "{shown}"
    );
    assert!(line("port").ends_with("2200  # flag"), "{shown}");
    assert!(line("connecttimeout").ends_with("10  # default"), "{shown}");
    assert!(
        shown.contains(&format!("# ignored: ControlMaster ({config}:7)")),
        "{shown}"
    );
    // Values from the fleetsh config file are labelled as from that file, not as flags.
    let toml = home.path().join("fleetsh.toml");
    std::fs::write(
        &toml,
        "connect_timeout = 7\nkeepalive_interval = 15\nkeepalive_count = 4\n",
    )
    .unwrap();
    let out = run_home(
        home.path(),
        &[
            "config",
            "show",
            "--config",
            toml.to_str().unwrap(),
            "app-1",
        ],
    );
    let shown = text(&out.stdout);
    assert!(
        shown.lines().any(|l| l.starts_with("connecttimeout")
            && l.ends_with(&format!("7  # config file {}", toml.display()))),
        "{shown}"
    );
    for (name, value) in [("serveraliveinterval", 15), ("serveralivecountmax", 4)] {
        assert!(
            shown.lines().any(|l| l.starts_with(name)
                && l.ends_with(&format!(" {value}  # config file {}", toml.display()))),
            "{shown}"
        );
    }
}

#[test]
fn bad_ssh_config_is_a_usage_error_naming_file_line_and_directive() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("bad_config");
    std::fs::write(&cfg, "Host a\n  Port 0\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    for args in [
        vec!["run", "-F", cfg, "-w", "a", "--", "true"],
        vec!["config", "show", "-F", cfg, "a"],
    ] {
        let out = run_home(home.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{cfg}:2: Port: \"0\" is not a port number")),
            "{err}"
        );
    }
    let out = run_home(
        home.path(),
        &["run", "-F", "/nonexistent/config", "-w", "a", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-F: /nonexistent/config"));
}

/// `StrictHostKeyChecking accept-new` with `HashKnownHosts yes` learns the fleet's keys as hashed
/// names, which the next strict run trusts.
#[test]
fn hash_known_hosts_from_ssh_config_writes_hashed_names() {
    let base = "127.34.0.1";
    let sim = SimProcess::start(3, base);
    let home = tempfile::tempdir().unwrap();
    let learned = home.path().join("learned_known_hosts");
    let cfg = home.path().join("config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n  UserKnownHostsFile {}\n",
            learned.display()
        ),
    )
    .unwrap();
    let (cfg, hosts, key) = (
        cfg.to_str().unwrap(),
        sim.path("hosts"),
        sim.path("id_ed25519"),
    );
    let out = run_home(
        home.path(),
        &[
            "run", "-F", cfg, "-H", &hosts, "-i", &key, "-o", "json", "--", "true",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&learned).unwrap();
    assert_eq!(written.lines().count(), 3, "{written}");
    assert!(written.lines().all(|l| l.starts_with("|1|")), "{written}");
    assert!(!written.contains(base), "{written}");
    // The learned file now passes strict checking (a flag wins over ssh_config's accept-new).
    let out = run_home(
        home.path(),
        &[
            "run",
            "-F",
            cfg,
            "-H",
            &hosts,
            "-i",
            &key,
            "--host-key-check",
            "strict",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&learned).unwrap(), written);
}

/// `ServerAliveInterval`/`ServerAliveCountMax` from ssh_config detect a host that froze while its
/// command ran: the host ends `disconnected` within a few intervals, not at the command timeout.
#[test]
fn server_alive_from_ssh_config_detects_a_frozen_host() {
    let base = "127.35.0.1";
    let sim = SimProcess::start_full(2, base, &[], &["--fault", "freeze:1500=100"]);
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("config");
    std::fs::write(
        &cfg,
        "Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
    )
    .unwrap();
    let (hosts, key, kh) = (
        sim.path("hosts"),
        sim.path("id_ed25519"),
        sim.path("known_hosts"),
    );
    let started = Instant::now();
    let out = run_home(
        home.path(),
        &[
            "run",
            "-F",
            cfg.to_str().unwrap(),
            "-H",
            &hosts,
            "-i",
            &key,
            "--known-hosts",
            &kh,
            "-u",
            "60",
            "-o",
            "json",
            "--",
            "echo started; sleep 30",
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for v in json_lines(&out) {
        assert_eq!(v["error"]["kind"], "disconnected", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("keepalive"),
            "{v}"
        );
    }
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

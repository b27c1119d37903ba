//! Control options: batches, max-fail, rate, retry-failed, groups, default config file,
//! per-host arguments, stdin, sudo, pty, env, completions and man page.

use super::*;

fn fleetsh_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsh"));
    cmd.args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSH_PASSWORD")
        .env_remove("FLEETSH_SUDO_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run fleetsh");
    let mut input = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        input.write_all(data).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn batch_and_max_fail_skip_the_rest() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "12",
        "--batch",
        "4",
        "--max-fail",
        "0",
        "-o",
        "json",
        "--",
        "exit 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 12);
    let ran = lines.iter().filter(|v| v["exit_code"] == 1).count();
    let skipped = lines
        .iter()
        .filter(|v| v["error"]["kind"] == "skipped")
        .count();
    assert_eq!(
        (ran, skipped),
        (4, 8),
        "the first batch runs, the others are skipped"
    );
}

#[test]
fn bad_control_values_are_usage_errors() {
    for (flag, value) in [
        ("--batch", "0"),
        ("--max-fail", "x%"),
        ("--rate", "0"),
        ("--batch", "200%"),
    ] {
        let out = fleetsh(&["run", "-w", "h", flag, value, "--", "true"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(value) || err.contains(flag.trim_start_matches('-')),
            "{flag} {value}: {err}"
        );
    }
    let out = fleetsh(&["run", "-w", "h", "--env", "NOEQUALS", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NOEQUALS"));
}

#[test]
fn per_host_arguments() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "5",
        "-o",
        "json",
        "--",
        "echo {host} {index}",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v in json_lines(&out) {
        let host = v["host"].as_str().unwrap();
        let said = v["stdout"].as_str().unwrap();
        assert!(said.starts_with(&format!("{host} ")), "{said}");
    }
}

#[test]
fn no_template_sends_braces_as_they_are() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "--no-template",
        "-o",
        "json",
        "--",
        "echo '{host}' {index}",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    for v in lines {
        assert_eq!(v["stdout"].as_str().unwrap(), "{host} {index}\n", "{v}");
    }
}

#[test]
fn idle_timeout_flag_ends_a_silent_command() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "2",
        "--idle-timeout",
        "1",
        "-o",
        "json",
        "--",
        "echo before; sleep 60",
    ]);
    assert!(!out.status.success());
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for v in lines {
        assert_eq!(v["stdout"].as_str().unwrap(), "before\n", "{v}");
        let shown = v.to_string();
        assert!(
            shown.contains("command_timeout") && shown.contains("idle timeout"),
            "{shown}"
        );
    }
}

#[test]
fn retry_failed_runs_only_the_failed_hosts() {
    let sim = SimProcess::start(6, "127.4.0.1");
    let mut owned = Vec::new();
    let common = sim.args(&mut owned);
    let hosts = sim.path("hosts");
    let mut args = vec!["run", "-H", &hosts];
    args.extend(common.iter().copied());
    args.extend(["-o", "json", "--", "exit {index}"]);
    let first = fleetsh(&args);
    assert_eq!(first.status.code(), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("first.json");
    std::fs::write(&saved, &first.stdout).unwrap();
    let saved = saved.to_str().unwrap();
    let mut args = vec!["run", "--retry-failed", saved];
    args.extend(common.iter().copied());
    args.extend(["-o", "json", "--", "true"]);
    let second = fleetsh(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let mut retried: Vec<String> = json_lines(&second)
        .iter()
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    retried.sort();
    assert_eq!(
        retried,
        [
            "127.4.0.2",
            "127.4.0.3",
            "127.4.0.4",
            "127.4.0.5",
            "127.4.0.6"
        ],
        "host 0 exited 0 and is not retried"
    );
    for v in json_lines(&second) {
        assert!(v["port"].as_u64().is_some(), "the recorded port: {v}");
        assert!(v["user"].is_string(), "the recorded user: {v}");
    }

    // With the original host options beside it: still exactly the failed hosts, each once.
    let mut args = vec!["run", "-H", &hosts, "--retry-failed", saved];
    args.extend(common.iter().copied());
    args.extend(["-o", "json", "--", "true"]);
    let again = fleetsh(&args);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let lines = json_lines(&again);
    assert_eq!(lines.len(), 5, "{}", text(&again.stdout));
    // Host options narrow the retry down; -x excludes.
    let mut args = vec![
        "run",
        "-w",
        "127.4.0.[1-3]",
        "-x",
        "127.4.0.3",
        "--retry-failed",
        saved,
    ];
    args.extend(common.iter().copied());
    args.extend(["-o", "json", "--", "true"]);
    let narrowed = fleetsh(&args);
    assert!(narrowed.status.success(), "{}", text(&narrowed.stderr));
    let hosts_run: Vec<String> = json_lines(&narrowed)
        .iter()
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hosts_run, ["127.4.0.2"]);
    let mut args = vec!["run", "-w", "127.4.0.1", "--retry-failed", saved];
    args.extend(common.iter().copied());
    args.extend(["--", "true"]);
    let none = fleetsh(&args);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("none of the failed hosts"),
        "{}",
        text(&none.stderr)
    );

    // A file that is not fleetsh JSON output is a usage error naming it.
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "not json\n").unwrap();
    let out = fleetsh(&[
        "run",
        "--retry-failed",
        bogus.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bogus.json:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn groups_and_default_config_file() {
    let sim = SimProcess::start(6, "127.5.0.1");
    let cfg = tempfile::tempdir().unwrap();
    let d = cfg.path().join("fleetsh");
    std::fs::create_dir_all(&d).unwrap();
    let port = std::fs::read_to_string(sim.path("hosts"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        d.join("groups.toml"),
        "web = \"127.5.0.[1-4]\"\ncanary = [\"127.5.0.2\", \"127.5.0.5\"]\n",
    )
    .unwrap();
    // The default config file gives the port, the key and known_hosts.
    std::fs::write(
        d.join("config.toml"),
        format!(
            "port = {port}\nidentity_files = [{:?}]\nknown_hosts = {:?}\n",
            sim.path("id_ed25519"),
            sim.path("known_hosts")
        ),
    )
    .unwrap();
    let xdg = cfg.path().to_str().unwrap();
    let run = |spec: &str| {
        let out = fleetsh_env(
            &["run", "-w", spec, "-o", "json", "--", "hostname"],
            &[("XDG_CONFIG_HOME", xdg)],
            None,
        );
        assert!(out.status.success(), "{spec}: {}", text(&out.stderr));
        let mut hosts: Vec<String> = json_lines(&out)
            .iter()
            .map(|v| v["host"].as_str().unwrap().to_string())
            .collect();
        hosts.sort();
        hosts
    };
    assert_eq!(
        run("@web"),
        ["127.5.0.1", "127.5.0.2", "127.5.0.3", "127.5.0.4"]
    );
    assert_eq!(run("@web!127.5.0.[1-2]"), ["127.5.0.3", "127.5.0.4"]);
    assert_eq!(run("@web&@canary"), ["127.5.0.2"]);
    assert_eq!(
        run("@canary,127.5.0.6"),
        ["127.5.0.2", "127.5.0.5", "127.5.0.6"]
    );
    let out = fleetsh_env(
        &["run", "-w", "@nope", "--", "true"],
        &[("XDG_CONFIG_HOME", xdg)],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("@nope"), "{}", text(&out.stderr));
    // A bad default config file is named in the error.
    std::fs::write(d.join("config.toml"), "fanout = \"lots\"\n").unwrap();
    let out = fleetsh_env(
        &["run", "-w", "h", "--", "true"],
        &[("XDG_CONFIG_HOME", xdg)],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("fanout"),
        "{err}"
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = fleetsh(&["completions", shell]);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("fleetsh"), "{shell}");
        assert!(text(&out.stdout).contains("max-fail"), "{shell}");
    }
    let out = fleetsh(&["man"]);
    assert!(out.status.success());
    let man = text(&out.stdout);
    assert!(man.contains(".TH fleetsh 1"), "{}", &man[..200]);
    assert!(
        man.contains(".SH \"FLEETSH RUN\"") && man.contains("\\-\\-retry\\-failed"),
        "each subcommand has its section with its options"
    );
    assert!(
        !man.contains("fleetsh\\-run(1)"),
        "no references to pages that do not exist"
    );
    for section in [".SH ENVIRONMENT", ".SH \"EXIT STATUS\"", ".SH \"SEE ALSO\""] {
        assert!(man.contains(section), "{section}");
    }
    for var in [
        "FLEETSH_PASSWORD",
        "FLEETSH_PASSPHRASE",
        "FLEETSH_SUDO_PASSWORD",
        "SSH_AUTH_SOCK",
        "NO_COLOR",
        "FLEETSH_LOG",
    ] {
        assert!(man.contains(var), "{var} in the man page");
        let help = fleetsh(&["run", "--help"]);
        assert!(text(&help.stdout).contains(var), "{var} in run --help");
    }
    let help = text(&fleetsh(&["run", "--help"]).stdout);
    assert!(help.contains("143"), "exit statuses in --help");
    let sim_help = text(&fleetsh(&["sim", "--help"]).stdout);
    let threads = sim_help.lines().find(|l| l.contains("--threads")).unwrap();
    assert_eq!(threads.matches("default").count(), 1, "{threads}");
    let out = fleetsh(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_is_sent_to_every_host() {
    let data = vec![b'z'; 200_000];
    let out = fleetsh_env(
        &["run", "--sim", "8", "-I", "-o", "json", "--", "wc -c"],
        &[],
        Some(&data),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 8);
    for v in &lines {
        assert_eq!(v["stdout"].as_str().unwrap().trim(), "200000", "{v}");
    }
    // Without -I, the command's stdin is closed at once: `cat` ends with nothing.
    let out = fleetsh_env(
        &[
            "run",
            "--sim",
            "2",
            "-u",
            "10",
            "-o",
            "json",
            "--",
            "cat; echo end",
        ],
        &[],
        Some(b"not sent"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v in json_lines(&out) {
        assert_eq!(v["stdout"], "end\n", "{v}");
    }
}

#[test]
fn env_pty_and_sudo() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "--env",
        "GREETING=hi there",
        "--env",
        "N=7",
        "-o",
        "json",
        "--",
        "echo $GREETING $N",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v in json_lines(&out) {
        assert_eq!(v["stdout"], "hi there 7\n", "{v}");
    }
    let out = fleetsh(&["run", "--sim", "2", "--pty", "-o", "json", "--", "tty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for v in json_lines(&out) {
        assert!(
            v["stdout"].as_str().unwrap().starts_with("/dev/pts/"),
            "{v}"
        );
    }
    let out = fleetsh(&["run", "--sim", "2", "-o", "json", "--", "tty"]);
    assert_eq!(out.status.code(), Some(1), "no pty without --pty");
}

#[test]
fn sudo_runs_as_the_user_and_never_shows_the_password() {
    let sim = SimProcess::start_with(
        3,
        "127.7.0.1",
        &[("FLEETSH_SIM_SUDO_PASSWORD", "sudo-Pw-4242")],
    );
    let mut owned = Vec::new();
    let common = sim.args(&mut owned);
    let hosts = sim.path("hosts");
    for pty in [false, true] {
        let mut args = vec!["run", "-H", &hosts];
        args.extend(common.iter().copied());
        if pty {
            args.push("--pty");
        }
        args.extend(["--sudo-user", "postgres", "-o", "json", "--", "whoami"]);
        let out = fleetsh_env(&args, &[("FLEETSH_SUDO_PASSWORD", "sudo-Pw-4242")], None);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains("sudo-Pw-4242"), "pty={pty}: {all}");
        assert!(out.status.success(), "pty={pty}: {all}");
        for v in json_lines(&out) {
            assert!(v["stdout"].as_str().unwrap().contains("postgres"), "{v}");
        }
    }
    // A wrong password: sudo's own refusal, exit 1, still no password shown.
    let mut args = vec!["run", "-H", &hosts];
    args.extend(common.iter().copied());
    args.extend(["--sudo", "-o", "json", "--", "whoami"]);
    let out = fleetsh_env(&args, &[("FLEETSH_SUDO_PASSWORD", "wrong-9090")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains("wrong-9090"));
    assert!(
        text(&out.stdout).contains("incorrect password"),
        "{}",
        text(&out.stdout)
    );
}

/// Each bad input gets a usage error (exit 2) that names what was wrong in the operator's words.
#[test]
fn messages_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // scp's -p is preserve: a port given to it gets the hint to use -P.
        (
            vec!["put", "-w", "h", "-p", "2299", f, "/x"],
            "the port is -P 2299",
        ),
        (
            vec!["get", "-w", "h", "-p", "2299", "/x", "/tmp"],
            "the port is -P 2299",
        ),
        // A number an operator would write, not three hundred digits.
        (
            vec!["run", "-w", "h", "-t", "1e308", "--", "true"],
            "1e308 is not a number of seconds",
        ),
        // A rate so low the run would never end.
        (
            vec!["run", "-w", "h", "--rate", "1e-9", "--", "true"],
            "1e-9 is not a number of connections per second",
        ),
        // A certificate is not called a private key.
        (
            vec![
                "run",
                "--sim",
                "1",
                "--certificate",
                "/missing-cert.pub",
                "--",
                "true",
            ],
            "certificate /missing-cert.pub: cannot read it",
        ),
        // get's last argument must be a directory.
        (vec!["get", "-w", "h", "/x", f], "this is a file"),
        // The host limit names a flag that exists.
        (
            vec!["run", "-w", "h[1-20]", "--max-hosts", "10", "--", "true"],
            "--max-hosts",
        ),
    ];
    for (args, want) in cases {
        let out = fleetsh(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("private key /missing"), "{args:?}: {err}");
    }
    // A command without `--` gets a hint.
    let out = fleetsh(&["run", "-w", "h", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the command goes after `--`"),
        "{}",
        text(&out.stderr)
    );
    // A groups file value of the wrong type names the group and what a group is.
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(cfg.join("fleetsh")).unwrap();
    std::fs::write(cfg.join("fleetsh/groups.toml"), "web = 5\n").unwrap();
    let out = fleetsh_env(
        &["run", "-w", "@web", "--", "true"],
        &[("XDG_CONFIG_HOME", cfg.to_str().unwrap())],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("group \"web\"") && err.contains("host spec"),
        "{err}"
    );
    assert!(!err.contains("untagged"), "{err}");

    // An upload that cannot be created names the destination, and each path once.
    let out = fleetsh(&["put", "--sim", "1", f, "/no/such/dir/x"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot create /no/such/dir/x through the temporary file /no/such/dir/."),
        "{err}"
    );
    assert_eq!(err.matches(".tmp").count(), 1, "{err}");
    // Keys learned with accept-new that cannot be written: one warning naming the file.
    let out = fleetsh(&[
        "run",
        "--sim",
        "3",
        "--host-key-check",
        "accept-new",
        "--known-hosts",
        "/proc/fleetsh-no-such-dir/known_hosts",
        "--",
        "true",
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("cannot record new host keys in /proc/fleetsh-no-such-dir/known_hosts")
            .count(),
        1,
        "{err}"
    );
}

/// Help, the man page and the docs speak of fleetsh and its users' world: no numbered
/// development sessions or issues, no private names for workloads. (`CHANGELOG.md` is not
/// checked: the history of the project belongs there.)
#[test]
fn help_and_docs_speak_of_the_product() {
    fn development_references(text: &str) -> Vec<String> {
        let lower = text.to_lowercase();
        let mut found = Vec::new();
        for word in ["session ", "issue ", "issue #"] {
            for (at, _) in lower.match_indices(word) {
                let rest = &lower[at + word.len()..];
                if rest.starts_with(|c: char| c.is_ascii_digit()) {
                    found.push(lower[at..(at + word.len() + 3).min(lower.len())].to_string());
                }
            }
        }
        // Written in two pieces, so that this test does not find itself.
        let workload = concat!("seeds", "' workload");
        for phrase in [workload] {
            if lower.contains(phrase) {
                found.push(phrase.to_string());
            }
        }
        found
    }
    let mut texts: Vec<(String, String)> = Vec::new();
    for sub in [
        "run",
        "put",
        "get",
        "bench",
        "sim",
        "config",
        "completions",
        "man",
    ] {
        let out = fleetsh(&[sub, "--help"]);
        texts.push((format!("fleetsh {sub} --help"), text(&out.stdout)));
    }
    texts.push(("fleetsh --help".into(), text(&fleetsh(&["--help"]).stdout)));
    texts.push(("fleetsh man".into(), text(&fleetsh(&["man"]).stdout)));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut files = vec![
        format!("{root}/README.md"),
        format!("{root}/vendor/README.md"),
    ];
    for dir in ["docs", "crates"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let p = entry.unwrap().path();
            let readme = p.join("README.md");
            if p.extension().is_some_and(|e| e == "md") {
                files.push(p.display().to_string());
            } else if readme.is_file() {
                files.push(readme.display().to_string());
            }
        }
    }
    // And every source file: comments and test names speak of the product too.
    let mut dirs: Vec<std::path::PathBuf> = ["crates", "benches", "examples", "fuzz"]
        .iter()
        .map(|d| std::path::Path::new(root).join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                // Fuzzer inputs are data, not text about fleetsh.
                if !["target", "corpus", "regressions", "artifacts", "coverage"]
                    .contains(&name.as_str())
                    && !name.starts_with('.')
                {
                    dirs.push(p);
                }
            } else if [".rs", ".py", ".sh", ".toml", ".md"]
                .iter()
                .any(|e| name.ends_with(e))
            {
                files.push(p.display().to_string());
            }
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        texts.push((f.clone(), std::fs::read_to_string(&f).unwrap()));
    }
    let bad: Vec<String> = texts
        .iter()
        .flat_map(|(name, t)| {
            development_references(t)
                .into_iter()
                .map(move |r| format!("{name}: {r:?}"))
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Every source file a doc names exists in the repository (a path from the root, from the
/// doc's directory, from a vendored crate, or the tail of one: `ssh/auth.rs`), without a line
/// number (name the function: lines move); every relative link resolves.
#[test]
fn docs_name_files_that_exist() {
    use std::path::{Path, PathBuf};
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    // Every file of the repository, as paths from the root with `/`.
    let mut files: Vec<String> = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "corpus" {
                    dirs.push(p);
                }
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push(rel);
            }
        }
    }
    let exists = |doc_dir: &Path, path: &str| {
        root.join(path).exists()
            || doc_dir.join(path).exists()
            || ["vendor/russh", "vendor/russh-cryptovec"]
                .iter()
                .any(|v| root.join(v).join(path).exists())
            || files.iter().any(|f| f.ends_with(&format!("/{path}")))
    };
    let mut docs = vec![root.join("README.md"), root.join("vendor/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            docs.push(p);
        }
    }
    let mut bad = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let dir = doc.parent().unwrap();
        let name = doc.strip_prefix(&root).unwrap().display().to_string();
        // `code spans` naming source files.
        for (i, span) in text.split('`').enumerate() {
            // Placeholders and globs (`fuzz/checks/<target>.rs`) name no one file.
            if i % 2 == 0 || span.contains(|c: char| c.is_whitespace() || "<*{".contains(c)) {
                continue;
            }
            let (path, line) = match span.split_once(".rs:") {
                Some((p, l)) if l.starts_with(|c: char| c.is_ascii_digit()) => {
                    (format!("{p}.rs"), true)
                }
                _ => (span.to_string(), false),
            };
            let source = [".rs", ".py", ".sh"].iter().any(|e| path.ends_with(e));
            if !source {
                continue;
            }
            if line {
                bad.push(format!("{name}: {span}: a line number"));
            }
            if !exists(dir, &path) {
                bad.push(format!("{name}: {span}: no such file"));
            }
        }
        // [text](relative link)
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let link = rest[..end].split('#').next().unwrap_or_default();
            if link.is_empty() || link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            if !dir.join(link).exists() {
                bad.push(format!("{name}: ({link}): broken link"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

//! Secrets never reach output or logs; insecure settings are warned about.

use super::*;

const PASSWORD: &str = "Pw-0f-the-fleet-7731";
const PASSPHRASE: &str = "Pp-0f-the-key-5519";
const SUDO: &str = "Sudo-pw-9917";

/// A `fleetsh sim` process with password authentication and a sudo password.
fn password_sim(base: &str) -> SimProcess {
    SimProcess::start_with(
        3,
        base,
        &[
            ("FLEETSH_SIM_PASSWORD", PASSWORD),
            ("FLEETSH_SIM_SUDO_PASSWORD", SUDO),
        ],
    )
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsh"));
    cmd.args(args).env_remove("SSH_AUTH_SOCK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_no_secret(out: &Output) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for secret in [PASSWORD, PASSPHRASE, SUDO] {
        assert!(!all.contains(secret), "secret {secret:?} leaked:\n{all}");
    }
}

#[test]
fn secrets_never_appear_even_at_trace_level() {
    let sim = password_sim("127.6.0.1");
    let home = tempfile::tempdir().unwrap();
    // An encrypted key: loading it uses the passphrase; the sim does not accept it, so
    // authentication falls through to the password.
    let key = home.path().join("id_enc");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", PASSPHRASE, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) is needed for this test");
    assert!(made.success());
    let key = key.to_str().unwrap().to_string();
    let kh = sim.path("known_hosts");
    let hosts = sim.path("hosts");
    let home_s = home.path().to_str().unwrap();
    for (pw, json) in [(PASSWORD, true), (PASSWORD, false), ("wrong-pw-1", true)] {
        let mut args = vec!["run", "-H", &hosts, "-i", &key, "--known-hosts", &kh];
        if json {
            args.extend(["-o", "json"]);
        }
        args.extend(["--sudo", "--", "echo in"]);
        let out = run_with(
            &args,
            &[
                ("HOME", home_s),
                ("FLEETSH_LOG", "trace"),
                ("FLEETSH_PASSWORD", pw),
                ("FLEETSH_PASSPHRASE", PASSPHRASE),
                ("FLEETSH_SUDO_PASSWORD", SUDO),
            ],
        );
        assert!(
            text(&out.stderr).contains("TRACE") || text(&out.stderr).contains("DEBUG"),
            "logs were on"
        );
        assert_no_secret(&out);
        let stdout = text(&out.stdout);
        if pw != PASSWORD {
            assert_eq!(stdout.matches("\"kind\":\"auth\"").count(), 3, "{stdout}");
        } else if json {
            // Password authentication and sudo with its password both worked.
            assert_eq!(
                stdout.matches("\"stdout\":\"in\\n\"").count(),
                3,
                "{stdout}"
            );
        } else {
            assert_eq!(stdout.matches(": in").count(), 3, "{stdout}");
        }
    }
}

#[test]
fn wrong_passphrase_is_a_clear_error_without_the_passphrase() {
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("id_enc");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", PASSPHRASE, "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let key = key.to_str().unwrap();
    for env in [vec![], vec![("FLEETSH_PASSPHRASE", "not-it-4417")]] {
        let out = run_with(&["run", "-w", "127.0.0.1", "-i", key, "--", "true"], &env);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains(key), "{err}");
        assert!(err.contains("FLEETSH_PASSPHRASE"), "{err}");
        assert!(!err.contains("not-it-4417"), "{err}");
    }
}

#[test]
fn readable_private_key_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = fleetsh(&[
        "run",
        "--sim",
        "2",
        "-i",
        key.to_str().unwrap(),
        "--",
        "true",
    ]);
    let err = text(&out.stderr);
    assert!(err.contains("too open") && err.contains("0644"), "{err}");
}

#[test]
fn host_key_checking_off_warns_once() {
    let out = fleetsh(&[
        "run",
        "--sim",
        "20",
        "--host-key-check",
        "off",
        "--",
        "true",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.matches("host key checking is off").count(), 1, "{err}");
}

/// aws-lc is built without its CPU-jitter entropy collector (`.cargo/config.toml`,
/// docs/security.md): it seeded the random generator with ≈ 30 ms of CPU at every process
/// start. Its functions are linked only when it is built, so their names in the binary's symbol
/// table tell; the check proves it can see aws-lc's names by finding its OS-seed function, which
/// is linked either way.
#[test]
fn aws_lc_is_built_without_the_jitter_entropy_collector() {
    let path = env!("CARGO_BIN_EXE_fleetsh");
    let bytes = std::fs::read(path).unwrap();
    let has = |name: &str| memchr::memmem::find(&bytes, name.as_bytes()).is_some();
    assert!(
        has("vm_ube_fallback_get_seed"),
        "{path}: no aws-lc symbol found (stripped binary?), the check cannot tell"
    );
    assert!(
        !has("jent_entropy_collector_alloc"),
        "{path}: aws-lc was built with its CPU-jitter entropy collector; \
         set AWS_LC_SYS_NO_JITTER_ENTROPY=1 (see .cargo/config.toml)"
    );
}

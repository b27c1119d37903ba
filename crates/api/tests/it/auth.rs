//! Authentication against OpenSSH's sshd: user certificates, encrypted keys with a
//! passphrase prompt (asked once per key, not per host), agent forwarding.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fleetsh::{Engine, ErrorKind, PassphrasePrompt, Secret};

use crate::openssh::{job, keygen, sshd};

fn run_cmd(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run an OpenSSH tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Signs `key.pub` with the fixture's user CA for `principal`, valid from a day ago for
/// `valid` (`+1h`, or a past range for an expired certificate).
fn certify(ca: &Path, key: &Path, principal: &str, valid: &str) {
    run_cmd(
        Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(ca)
            .args(["-I", "fleetsh-test", "-n", principal, "-V", valid])
            .arg(key.with_extension("pub")),
    );
}

#[test]
fn openssh_user_certificate_logs_in_and_a_wrong_principal_is_refused() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    // A key the server does not list in authorized_keys: only its certificate can log in.
    let key = dir.path().join("certified");
    keygen(&key);
    certify(&sshd.path("user_ca"), &key, &sshd.user, "-1d:+1h");
    assert!(dir.path().join("certified-cert.pub").exists());
    let engine = sshd.engine_as(&key).build().unwrap();
    let report = engine
        .run(sshd.targets(), job("echo certified"))
        .unwrap()
        .join();
    for r in &report.results {
        sshd.assert_ok(r);
    }

    // The same key certified for another user: refused, and the error says what was tried.
    let other = dir.path().join("other");
    keygen(&other);
    certify(&sshd.path("user_ca"), &other, "nobody-else", "-1d:+1h");
    let engine = sshd.engine_as(&other).build().unwrap();
    let report = engine
        .run(sshd.targets().into_iter().take(1), job("true"))
        .unwrap()
        .join();
    let e = report.results[0].error.as_ref().expect("refused");
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(e.message.contains("publickey certificate"), "{e:?}");

    // A certificate given explicitly (CertificateFile) that matches no key is an input error.
    let err = Engine::builder()
        .no_agent()
        .identity_file(&key)
        .certificate_file(dir.path().join("other-cert.pub"))
        .known_hosts(sshd.path("known_hosts"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("other-cert.pub"), "{err}");
}

#[test]
fn encrypted_key_prompt_is_asked_once_per_key_not_per_host() {
    let sshd = sshd();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("locked");
    std::fs::copy(sshd.path("client_ed25519"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    run_cmd(
        Command::new("ssh-keygen")
            .args(["-q", "-p", "-P", "", "-N", "open sesame", "-f"])
            .arg(&key),
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let builder = || sshd.engine_as(&key);
    let engine = builder()
        .passphrase_prompt(PassphrasePrompt::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(Secret::new("open sesame".to_string()))
        }))
        .build()
        .unwrap();
    for _ in 0..2 {
        let report = engine
            .run(sshd.targets(), job("echo unlocked"))
            .unwrap()
            .join();
        for r in &report.results {
            sshd.assert_ok(r);
        }
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1, "one prompt for one key");
    // A wrong answer is an error naming the key; no prompt and no passphrase says what to do.
    let err = builder()
        .passphrase_prompt(PassphrasePrompt::new(|_| {
            Some(Secret::new("wrong".to_string()))
        }))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    let err = builder().build().unwrap_err();
    assert!(err.to_string().contains("FLEETSH_PASSPHRASE"), "{err}");
}

/// An `ssh-agent` this test started, stopped by its PID.
struct Agent {
    pid: u32,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(key: &Path) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let out = run_cmd(Command::new("ssh-agent").arg("-a").arg(&socket).arg("-s"));
        let pid = out
            .split(';')
            .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no SSH_AGENT_PID in {out:?}"));
        let agent = Agent {
            pid,
            socket,
            _dir: dir,
        };
        run_cmd(
            Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.socket),
        );
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

#[test]
fn openssh_agent_forwarding_only_on_request() {
    let sshd = sshd();
    let agent = Agent::start(&sshd.path("client_ed25519"));
    let engine = |forward: bool| {
        Engine::builder()
            .user(&sshd.user)
            .port(sshd.port)
            .agent_socket(&agent.socket)
            .forward_agent(forward)
            .known_hosts(sshd.path("known_hosts"))
            .build()
            .unwrap()
    };
    // Logged in through the agent; with forwarding the command sees the agent's key.
    let report = engine(true)
        .run(sshd.targets(), job("ssh-add -l"))
        .unwrap()
        .join();
    for r in &report.results {
        sshd.assert_ok(r);
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(
            out.contains("fleetsh-test") && out.contains("ED25519"),
            "{out}"
        );
    }
    // Without it the command has no agent.
    let report = engine(false)
        .run(sshd.targets().into_iter().take(1), job("ssh-add -l"))
        .unwrap()
        .join();
    let r = &report.results[0];
    assert!(r.error.is_none(), "{r:?}");
    assert_ne!(r.exit_code, Some(0), "no agent without -A: {r:?}");
}

mod sim {
    //! The same methods against the simulated fleet.

    use std::time::{Duration, SystemTime};

    use fleetsh::{Engine, ErrorKind, HostTarget, Secret};
    use fleetsh_sim::{SimConfig, SimFleet, testing};
    use fleetsh_testkit::run;

    use super::{Agent, job};

    fn start(config: SimConfig) -> (SimFleet, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let fleet = SimFleet::start(SimConfig {
            port: 0,
            state_dir: dir.path().to_path_buf(),
            ..config
        })
        .expect("the simulated fleet must start");
        (fleet, dir)
    }

    fn targets(f: &SimFleet) -> Vec<HostTarget> {
        f.hosts()
            .iter()
            .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
            .collect()
    }

    #[test]
    fn keyboard_interactive_answers_the_password_prompt() {
        let (fleet, _dir) = start(SimConfig {
            count: 6,
            password: Some("kbd secret".into()),
            kbd_interactive_only: true,
            ..SimConfig::default()
        });
        // No key at all: keyboard-interactive with the password.
        let with_password = |pw: &str| {
            Engine::builder()
                .no_agent()
                .known_hosts(fleet.known_hosts_file())
                .password(Secret::new(pw.to_string()))
                .build()
                .unwrap()
        };
        let e = with_password("kbd secret");
        let report = e.run(targets(&fleet), job("whoami")).unwrap().join();
        assert!(report.all_ok(), "{:?}", report.results[0]);
        // A wrong password: refused, and the error names what was tried and offered.
        let e = with_password("wrong");
        let report = e.run(targets(&fleet), job("true")).unwrap().join();
        for r in &report.results {
            let err = r.error.as_ref().expect("refused");
            assert_eq!(err.kind, ErrorKind::Auth);
            assert!(err.message.contains("keyboard-interactive"), "{err:?}");
            assert!(
                !err.message.contains("wrong"),
                "no secret in messages: {err:?}"
            );
        }
    }

    /// A key the host refuses, then the password: the session channel opened with the key
    /// request is forgotten with the refusal, and the host's command runs on a channel opened
    /// after the password was accepted.
    #[test]
    fn refused_key_then_password_runs_the_command() {
        let (fleet, dir) = start(SimConfig {
            count: 4,
            password: Some("the secret".into()),
            ..SimConfig::default()
        });
        let key_path = dir.path().join("unknown");
        crate::openssh::keygen(&key_path);
        let builder = Engine::builder()
            .no_agent()
            .identity_file(&key_path)
            .password(Secret::new("the secret".to_string()))
            .known_hosts(fleet.known_hosts_file());
        let report = run(builder, targets(&fleet), job("echo hello"));
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(String::from_utf8_lossy(&r.stdout), "hello\n");
        }
        // The key alone: an authentication error.
        let builder = Engine::builder()
            .no_agent()
            .identity_file(&key_path)
            .known_hosts(fleet.known_hosts_file());
        let report = run(builder, targets(&fleet), job("true"));
        for r in &report.results {
            let e = r.error.as_ref().expect("refused");
            assert_eq!(e.kind, ErrorKind::Auth, "{e:?}");
        }
    }

    #[test]
    fn user_certificate_signed_by_the_fleet_ca() {
        let ca = testing::ca_key(7);
        let (fleet, dir) = start(SimConfig {
            count: 5,
            user_ca: Some(ca.public_key().clone()),
            ..SimConfig::default()
        });
        // A fresh key the fleet does not know: only a certificate lets it in.
        let key_path = dir.path().join("fresh");
        crate::openssh::keygen(&key_path);
        let key = russh::keys::PrivateKey::read_openssh_file(&key_path).unwrap();
        let now = SystemTime::now();
        let builder = || {
            Engine::builder()
                .user("deploy")
                .no_agent()
                .identity_file(&key_path)
                .known_hosts(fleet.known_hosts_file())
        };
        let report = run(builder(), targets(&fleet), job("whoami"));
        assert!(
            report
                .results
                .iter()
                .all(|r| r.error.as_ref().is_some_and(|e| e.kind == ErrorKind::Auth))
        );

        let cert = testing::make_user_cert(
            &ca,
            key.public_key(),
            &["deploy"],
            now - Duration::from_secs(60)..now + Duration::from_secs(3600),
        )
        .unwrap();
        testing::write_cert(&cert, &dir.path().join("fresh-cert.pub")).unwrap();
        let report = run(builder(), targets(&fleet), job("whoami"));
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(String::from_utf8_lossy(&r.stdout), "deploy\n");
        }
        // Expired: refused with the certificate named among the methods tried.
        let expired = testing::make_user_cert(
            &ca,
            key.public_key(),
            &["deploy"],
            now - Duration::from_secs(7200)..now - Duration::from_secs(3600),
        )
        .unwrap();
        testing::write_cert(&expired, &dir.path().join("fresh-cert.pub")).unwrap();
        let report = run(builder(), targets(&fleet), job("true"));
        for r in &report.results {
            let e = r.error.as_ref().expect("expired certificate refused");
            assert_eq!(e.kind, ErrorKind::Auth);
            assert!(e.message.contains("publickey certificate"), "{e:?}");
        }
    }

    #[test]
    fn agent_forwarding_only_on_request() {
        let (fleet, _d) = start(SimConfig {
            count: 4,
            ..SimConfig::default()
        });
        let agent = Agent::start(&fleet.client_key_file());
        let engine = |forward: bool| {
            Engine::builder()
                .agent_socket(&agent.socket)
                .forward_agent(forward)
                .known_hosts(fleet.known_hosts_file())
                .build()
                .unwrap()
        };
        let report = engine(true)
            .run(targets(&fleet), job("ssh-add -l"))
            .unwrap()
            .join();
        for r in &report.results {
            assert!(r.is_ok(), "{r:?}");
            let out = String::from_utf8_lossy(&r.stdout);
            assert!(
                out.contains("SHA256:") && out.contains("(ED25519)"),
                "{out}"
            );
        }
        let report = engine(false)
            .run(targets(&fleet), job("ssh-add -l"))
            .unwrap()
            .join();
        for r in &report.results {
            assert_eq!(r.exit_code, Some(2), "{r:?}");
        }
    }
}

mod host_certificates {
    //! `@cert-authority` known_hosts against simulated hosts presenting host certificates.

    use std::time::{Duration, SystemTime};

    use fleetsh::{Engine, ErrorKind, HostTarget};
    use fleetsh_sim::{SimConfig, SimFleet, testing};

    use super::job;

    #[test]
    fn sim_hosts_known_only_through_their_ca() {
        let ca = testing::ca_key(31);
        let seed = 5;
        let now = SystemTime::now();
        // Host 2 presents a certificate signed by the right CA but expired.
        let expired = testing::make_host_cert(
            &ca,
            &testing::host_public_key(seed, 2),
            &[],
            now - Duration::from_secs(7200)..now - Duration::from_secs(3600),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fleet = SimFleet::start(SimConfig {
            count: 12,
            port: 0,
            seed,
            state_dir: dir.path().to_path_buf(),
            host_ca: Some(ca.clone()),
            host_cert_override: Some((2, expired)),
            ..SimConfig::default()
        })
        .unwrap();
        let targets: Vec<HostTarget> = fleet
            .hosts()
            .iter()
            .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
            .collect();
        // known_hosts holds nothing but the CA line: no host key is listed anywhere.
        let engine = Engine::builder()
            .no_agent()
            .identity_file(fleet.client_key_file())
            .known_hosts(fleet.known_hosts_ca_file())
            .build()
            .unwrap();
        let report = engine.run(targets, job("hostname")).unwrap().join();
        for r in &report.results {
            if r.index == 2 {
                let e = r.error.as_ref().expect("expired host certificate refused");
                assert_eq!(e.kind, ErrorKind::Hostkey, "{r:?}");
                assert!(e.message.contains("expired"), "{e:?}");
            } else {
                assert!(r.is_ok(), "{r:?}");
            }
        }
    }
}

//! Authentication against OpenSSH's sshd: user certificates, encrypted keys with a
//! passphrase prompt (asked once per key, not per host), agent forwarding.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleetsh::{Engine, ErrorKind, Job, PassphrasePrompt, Secret};

use crate::openssh::{keygen, sshd};

fn job(cmd: &str) -> Job {
    let mut j = Job::new(cmd);
    j.connect_timeout = Duration::from_secs(30);
    j.command_timeout = Some(Duration::from_secs(60));
    j
}

fn run(cmd: &mut Command) -> String {
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
    run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", "fleetsh-test", "-n", principal, "-V", valid])
        .arg(key.with_extension("pub")));
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
    let engine = Engine::builder()
        .user(&sshd.user)
        .port(sshd.port)
        .no_agent()
        .identity_file(&key)
        .known_hosts(sshd.path("known_hosts"))
        .build()
        .unwrap();
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
    let engine = Engine::builder()
        .user(&sshd.user)
        .port(sshd.port)
        .no_agent()
        .identity_file(&other)
        .known_hosts(sshd.path("known_hosts"))
        .build()
        .unwrap();
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
    run(Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "open sesame", "-f"])
        .arg(&key));
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let builder = || {
        Engine::builder()
            .user(&sshd.user)
            .port(sshd.port)
            .no_agent()
            .identity_file(&key)
            .known_hosts(sshd.path("known_hosts"))
    };
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
        let out = run(Command::new("ssh-agent").arg("-a").arg(&socket).arg("-s"));
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
        run(Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.socket));
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

//! The tools fleetsh replaces, run as the client of a measurement (`fleetsh-bench peers`):
//! parallel-ssh and asyncssh (Python libraries, through the scripts in `benches/peers/`), and
//! pdsh, pssh and clush (one OpenSSH `ssh` process per host). Each gets the same hosts, user,
//! key, known_hosts (where the tool checks host keys), fanout and command as fleetsh, and prints
//! what it prints; this module turns that into one outcome per host. fleetsh's own Python
//! package runs the same way (`fleetsh-bench python`): its native API, and its parallel-ssh
//! compatibility layer through parallel-ssh's script with only the imports changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use fleetsh::HostTarget;

/// parallel-ssh's `ParallelSSHClient` script.
const PARALLEL_SSH_PY: &str = include_str!("../peers/parallel_ssh_echo.py");
/// asyncssh with `asyncio.gather` script.
const ASYNCSSH_PY: &str = include_str!("../peers/asyncssh_echo.py");
/// fleetsh's Python package, `fleetsh.Engine`, script.
const FLEETSH_PYTHON_PY: &str = include_str!("../peers/fleetsh_python_echo.py");
/// fleetsh's Python package through `fleetsh.compat.pssh` (parallel-ssh's script, other
/// imports).
const FLEETSH_PSSH_PY: &str = include_str!("../peers/fleetsh_pssh_echo.py");

/// A tool fleetsh replaces, or fleetsh's own Python package run the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// parallel-ssh 2.x's `ParallelSSHClient` (libssh2 through ssh2-python), in Python.
    ParallelSsh,
    /// asyncssh, one task per host under a semaphore, `asyncio.gather`, in Python.
    Asyncssh,
    /// pdsh with its ssh module: one `ssh` process per host.
    Pdsh,
    /// pssh (the `parallel-ssh` command of Debian's `pssh` package): one `ssh` per host.
    Pssh,
    /// ClusterShell's `clush`: one `ssh` per host.
    Clush,
    /// fleetsh's Python package: `fleetsh.Engine(...).run(...)`, iterated. Run with the
    /// interpreter that has it (`--fleetsh-python`), not by `peers`.
    #[value(skip)]
    FleetshPython,
    /// fleetsh's Python package through its parallel-ssh compatibility layer
    /// (`fleetsh.compat.pssh`), with parallel-ssh's script. Not run by `peers`.
    #[value(skip)]
    FleetshPssh,
}

impl Peer {
    /// Every peer, in table order.
    pub const ALL: [Peer; 5] = [
        Peer::ParallelSsh,
        Peer::Asyncssh,
        Peer::Pdsh,
        Peer::Pssh,
        Peer::Clush,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Peer::ParallelSsh => "parallel-ssh",
            Peer::Asyncssh => "asyncssh",
            Peer::Pdsh => "pdsh",
            Peer::Pssh => "pssh",
            Peer::Clush => "clush",
            Peer::FleetshPython => "fleetsh-python",
            Peer::FleetshPssh => "fleetsh-python (pssh compat)",
        }
    }

    /// Whether the client is fleetsh's own Python package (run with `--fleetsh-python`).
    pub fn is_fleetsh(self) -> bool {
        matches!(self, Peer::FleetshPython | Peer::FleetshPssh)
    }

    /// Whether the client is a Python script (`benches/peers/*.py`) that prints a JSON line per
    /// host.
    fn is_python(self) -> bool {
        matches!(
            self,
            Peer::ParallelSsh | Peer::Asyncssh | Peer::FleetshPython | Peer::FleetshPssh
        )
    }

    /// Whether the tool runs one `ssh` process per host.
    pub fn spawns_ssh(self) -> bool {
        matches!(self, Peer::Pdsh | Peer::Pssh | Peer::Clush)
    }

    /// The key exchange the tool negotiates with the simulator: the first of its offer that
    /// russh's server has. Read from each tool's KEXINIT (docs/benchmarks.md, "Peers"):
    /// libssh2 1.11 and OpenSSH 9.2 offer curve25519 before anything the simulator has
    /// (OpenSSH's first, sntrup761x25519, is not in russh); asyncssh 2.24 offers
    /// mlkem768x25519 first. fleetsh's Python package offers the engine's default order
    /// (the scripts leave `fleetsh.Engine`'s `kex` unset).
    pub fn kex(self) -> &'static str {
        match self {
            Peer::Asyncssh | Peer::FleetshPython | Peer::FleetshPssh => "mlkem768x25519",
            _ => "curve25519",
        }
    }

    /// The executable to look for (Python peers: the interpreter).
    fn program(self, python: &Path) -> PathBuf {
        match self {
            Peer::ParallelSsh | Peer::Asyncssh | Peer::FleetshPython | Peer::FleetshPssh => {
                python.to_path_buf()
            }
            Peer::Pdsh => "pdsh".into(),
            Peer::Pssh => "parallel-ssh".into(),
            Peer::Clush => "clush".into(),
        }
    }

    /// How to install the tool, for the error when it is missing.
    fn install_hint(self) -> &'static str {
        match self {
            Peer::ParallelSsh => "pip install parallel-ssh",
            Peer::Asyncssh => "pip install asyncssh",
            Peer::Pdsh => "apt-get install pdsh",
            Peer::Pssh => "apt-get install pssh",
            Peer::Clush => "apt-get install clustershell",
            Peer::FleetshPython | Peer::FleetshPssh => {
                "pip install ./crates/python, from the repository's root, into that interpreter"
            }
        }
    }

    /// The import that shows that a Python peer is installed.
    fn import(self) -> Option<&'static str> {
        match self {
            Peer::ParallelSsh => Some("import pssh.clients"),
            Peer::Asyncssh => Some("import asyncssh"),
            Peer::FleetshPython => Some("import fleetsh"),
            Peer::FleetshPssh => Some("from fleetsh.compat.pssh.clients import ParallelSSHClient"),
            Peer::Pdsh | Peer::Pssh | Peer::Clush => None,
        }
    }

    /// The option that names the interpreter of a Python peer.
    fn interpreter_option(self) -> &'static str {
        if self.is_fleetsh() {
            "--fleetsh-python"
        } else {
            "--python"
        }
    }
}

/// Fails, naming the tool and how to install it, unless `peer` can run here (and `ssh` too for
/// the tools that spawn it).
pub fn check(peer: Peer, python: &Path) -> Result<()> {
    let hint = peer.install_hint();
    let found = |cmd: &mut Command| {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let problem = match peer.import() {
        Some(import) => (!found(Command::new(python).args(["-c", import])))
            .then(|| format!("`{} -c '{import}'` failed", python.display())),
        None => {
            let program = peer.program(python);
            (!on_path(&program)).then(|| format!("{} is not on PATH", program.display()))
        }
    };
    if let Some(problem) = problem {
        let tail = if peer.is_fleetsh() {
            ""
        } else {
            ", --peer picks the tools to run"
        };
        bail!(
            "peer {}: {problem} ({hint}; {} names another interpreter{tail})",
            peer.name(),
            peer.interpreter_option()
        );
    }
    if peer.spawns_ssh() && !on_path(Path::new("ssh")) {
        bail!(
            "peer {}: OpenSSH's ssh not found (apt-get install openssh-client)",
            peer.name()
        );
    }
    Ok(())
}

/// Which fleetsh package `python` imports: `fleetsh VERSION, extension module PATH`, or `None`
/// when it cannot say.
pub fn fleetsh_package(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import fleetsh, fleetsh._native as n; print(fleetsh.__version__, n.__file__)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (version, path) = text.trim().split_once(' ')?;
    out.status
        .success()
        .then(|| format!("fleetsh {version}, extension module {path}"))
}

fn on_path(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// What a peer run needs besides the hosts.
pub struct Invocation<'a> {
    pub user: &'a str,
    pub identity: &'a Path,
    pub known_hosts: &'a Path,
    pub fanout: usize,
    pub connect_timeout_s: f64,
    pub command_timeout_s: f64,
    pub command: &'a str,
    pub python: &'a Path,
}

/// The command that runs `peer` on `targets`, with its files written under `dir`.
pub fn command(
    peer: Peer,
    targets: &[HostTarget],
    dir: &Path,
    inv: &Invocation,
) -> Result<Command> {
    let with_ports = peer.is_python() || peer == Peer::Pssh;
    let hosts = dir.join("hosts");
    crate::sample::write_hosts_file(&hosts, targets, with_ports)?;
    let fanout = inv.fanout.to_string();
    let ct = format!("{}", inv.connect_timeout_s.ceil() as u64);
    let ut = format!("{}", inv.command_timeout_s.ceil() as u64);
    let script = |name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    };
    let cmd = match peer {
        Peer::ParallelSsh | Peer::Asyncssh | Peer::FleetshPython | Peer::FleetshPssh => {
            let path = match peer {
                Peer::ParallelSsh => script("parallel_ssh_echo.py", PARALLEL_SSH_PY)?,
                Peer::Asyncssh => script("asyncssh_echo.py", ASYNCSSH_PY)?,
                Peer::FleetshPython => script("fleetsh_python_echo.py", FLEETSH_PYTHON_PY)?,
                _ => script("fleetsh_pssh_echo.py", FLEETSH_PSSH_PY)?,
            };
            let mut c = Command::new(inv.python);
            c.arg(path)
                .arg(&hosts)
                .arg(inv.user)
                .arg(inv.identity)
                .arg(&fanout)
                .arg(&ct)
                .arg(&ut)
                .arg(inv.command);
            if matches!(peer, Peer::Asyncssh | Peer::FleetshPython) {
                c.arg(inv.known_hosts);
            }
            if peer == Peer::FleetshPssh {
                // parallel-ssh's arguments name no known_hosts: the compatibility layer checks
                // host keys against ~/.ssh/known_hosts, here the fleet's, in a home of its own
                // (no user keys, config or agent either).
                let home = dir.join("home");
                let ssh = home.join(".ssh");
                std::fs::create_dir_all(&ssh)
                    .with_context(|| format!("creating {}", ssh.display()))?;
                std::fs::copy(inv.known_hosts, ssh.join("known_hosts")).with_context(|| {
                    format!(
                        "copying {} into {}",
                        inv.known_hosts.display(),
                        ssh.display()
                    )
                })?;
                c.env("HOME", &home).env_remove("SSH_AUTH_SOCK");
            }
            c
        }
        Peer::Pdsh | Peer::Pssh | Peer::Clush => {
            let opts = ssh_options(targets, inv)?;
            let mut c = Command::new(peer.program(inv.python));
            match peer {
                Peer::Pdsh => {
                    // pdsh's ssh module runs `ssh $PDSH_SSH_ARGS CMD` with %u and %h replaced.
                    c.env("PDSH_SSH_ARGS", format!("-x -a {opts} -l%u %h"))
                        .env_remove("PDSH_SSH_ARGS_APPEND")
                        .args([
                            "-R", "ssh", "-l", inv.user, "-f", &fanout, "-t", &ct, "-u", &ut,
                        ])
                        .arg("-w")
                        .arg(format!("^{}", hosts.display()));
                }
                Peer::Pssh => {
                    c.arg("-h")
                        .arg(&hosts)
                        .args(["-l", inv.user, "-p", &fanout, "-t", &ut, "-i", "-x", &opts]);
                }
                _ => {
                    c.arg(format!("--hostfile={}", hosts.display())).args([
                        "-l", inv.user, "-f", &fanout, "-t", &ct, "-u", &ut, "-o", &opts,
                    ]);
                }
            }
            c.args(inv.command.split_ascii_whitespace());
            c
        }
    };
    Ok(cmd)
}

fn port(t: &HostTarget) -> u16 {
    t.port.unwrap_or(22)
}

/// OpenSSH options for the tools that spawn `ssh`: no user config, the run's key only, host keys
/// checked strictly against the run's known_hosts, never a prompt. These tools take one port
/// for all hosts, and split the options at whitespace.
fn ssh_options(targets: &[HostTarget], inv: &Invocation) -> Result<String> {
    let Some(first) = targets.first() else {
        bail!("no hosts");
    };
    let p = port(first);
    if let Some(t) = targets.iter().find(|t| port(t) != p) {
        bail!(
            "pdsh, pssh and clush take one ssh port for all hosts: {}:{} and {}:{p} differ \
             (run fewer hosts, in one simulator process)",
            t.host,
            port(t),
            first.host
        );
    }
    for path in [inv.identity, inv.known_hosts] {
        if path.to_string_lossy().contains(char::is_whitespace) {
            bail!(
                "{}: the ssh-spawning peers split their ssh options at whitespace",
                path.display()
            );
        }
    }
    Ok(format!(
        "-F /dev/null -p {p} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
         -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
         -o ConnectTimeout={}",
        inv.identity.display(),
        inv.known_hosts.display(),
        inv.connect_timeout_s.ceil() as u64
    ))
}

/// One host's outcome as the peer printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The host ran the command and printed this many bytes, and the tool reported no failure
    /// for it (the Python peers: exit code 0; pdsh and clush: no "exited with exit code" line
    /// on stderr; pssh: `[SUCCESS]`).
    Ok(usize),
    /// The host failed: why.
    Failed(String),
}

/// Reads one line of `peer`'s output into `seen` (by host address). Lines that name no host
/// (headers, the command's output printed on its own line) are ignored.
pub fn parse_line(peer: Peer, line: &str, seen: &mut HashMap<String, Outcome>) {
    match peer {
        Peer::ParallelSsh | Peer::Asyncssh | Peer::FleetshPython | Peer::FleetshPssh => {
            let Ok(v) = serde_json::from_str::<Line>(line) else {
                return;
            };
            let outcome = match (v.error, v.exit_code) {
                (Some(e), _) => Outcome::Failed(e),
                (None, Some(0)) => Outcome::Ok(v.stdout.map_or(0, |s| s.len())),
                (None, code) => Outcome::Failed(format!("exit {code:?}")),
            };
            seen.insert(v.host, outcome);
        }
        // `HOST: OUTPUT LINE` for each line of a host's output; failures go to stderr.
        Peer::Pdsh | Peer::Clush => {
            if let Some((host, out)) = line.split_once(": ") {
                let n = out.len() + 1;
                match seen.get_mut(host) {
                    Some(Outcome::Ok(bytes)) => *bytes += n,
                    Some(Outcome::Failed(_)) => {}
                    None => {
                        seen.insert(host.to_string(), Outcome::Ok(n));
                    }
                }
            }
        }
        // `[N] HH:MM:SS [SUCCESS] HOST:PORT` or `[N] HH:MM:SS [FAILURE] HOST:PORT why`.
        Peer::Pssh => {
            let mut words = line.split_ascii_whitespace().skip(2);
            let (Some(status), Some(addr)) = (words.next(), words.next()) else {
                return;
            };
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
            match status {
                "[SUCCESS]" => {
                    seen.insert(host, Outcome::Ok(0));
                }
                "[FAILURE]" => {
                    let why: Vec<&str> = words.collect();
                    seen.insert(host, Outcome::Failed(why.join(" ")));
                }
                _ => {}
            }
        }
    }
}

/// Reads one stderr line of `peer` into `seen`: pdsh's `pdsh@LOCAL: HOST: ssh exited with exit
/// code N` and clush's `clush: HOST: exited with exit code N` (or a timeout) fail the host, even
/// if it printed output first. Other lines are ignored.
pub fn parse_error_line(peer: Peer, line: &str, seen: &mut HashMap<String, Outcome>) {
    if !matches!(peer, Peer::Pdsh | Peer::Clush) {
        return;
    }
    let mut parts = line.splitn(3, ": ");
    let (Some(tool), Some(host), Some(why)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let ours = match peer {
        Peer::Pdsh => tool.starts_with("pdsh@"),
        _ => tool == "clush",
    };
    if ours && (why.contains("exit code") || why.contains("timeout")) {
        seen.insert(host.to_string(), Outcome::Failed(why.to_string()));
    }
}

/// A JSON line of the Python peers' scripts.
#[derive(Deserialize)]
struct Line {
    host: String,
    exit_code: Option<i64>,
    stdout: Option<String>,
    error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peers_output_becomes_one_outcome_per_host() {
        let mut seen = HashMap::new();
        for l in [
            r#"{"host": "127.0.0.1", "exit_code": 0, "stdout": "hello"}"#,
            r#"{"host": "127.0.0.2", "exit_code": 3, "stdout": ""}"#,
            r#"{"host": "127.0.0.3", "error": "ConnectionRefusedError()"}"#,
            "not json",
        ] {
            parse_line(Peer::Asyncssh, l, &mut seen);
        }
        assert_eq!(seen.get("127.0.0.1"), Some(&Outcome::Ok(5)));
        assert_eq!(
            seen.get("127.0.0.2"),
            Some(&Outcome::Failed("exit Some(3)".into()))
        );
        assert_eq!(
            seen.get("127.0.0.3"),
            Some(&Outcome::Failed("ConnectionRefusedError()".into()))
        );
        assert_eq!(seen.len(), 3);

        let mut seen = HashMap::new();
        for l in ["10.0.0.1: hello", "10.0.0.1: world", "10.0.0.2: x"] {
            parse_line(Peer::Pdsh, l, &mut seen);
        }
        assert_eq!(seen.get("10.0.0.1"), Some(&Outcome::Ok(12)));
        assert_eq!(seen.get("10.0.0.2"), Some(&Outcome::Ok(2)));
        // A host that printed, then failed, fails; other stderr lines change nothing.
        for l in [
            "pdsh@ctl: 10.0.0.2: ssh exited with exit code 3",
            "10.0.0.1: some remote stderr: with colons",
            "clush: 10.0.0.1: exited with exit code 1",
        ] {
            parse_error_line(Peer::Pdsh, l, &mut seen);
        }
        assert_eq!(
            seen.get("10.0.0.2"),
            Some(&Outcome::Failed("ssh exited with exit code 3".into()))
        );
        assert_eq!(seen.get("10.0.0.1"), Some(&Outcome::Ok(12)));
        parse_error_line(
            Peer::Clush,
            "clush: 10.0.0.1: exited with exit code 1",
            &mut seen,
        );
        assert_eq!(
            seen.get("10.0.0.1"),
            Some(&Outcome::Failed("exited with exit code 1".into()))
        );

        let mut seen = HashMap::new();
        for l in [
            "[1] 20:26:15 [SUCCESS] 127.60.0.1:2222",
            "hello",
            "[2] 20:26:15 [FAILURE] 127.60.0.2:2222 Exited with error code 255",
        ] {
            parse_line(Peer::Pssh, l, &mut seen);
        }
        assert_eq!(seen.get("127.60.0.1"), Some(&Outcome::Ok(0)));
        assert_eq!(
            seen.get("127.60.0.2"),
            Some(&Outcome::Failed("Exited with error code 255".into()))
        );
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn ssh_spawning_peers_refuse_mixed_ports() {
        let t = |h: &str, p| HostTarget {
            user: None,
            host: h.into(),
            port: Some(p),
        };
        let inv = Invocation {
            user: "u",
            identity: Path::new("/k"),
            known_hosts: Path::new("/kh"),
            fanout: 1,
            connect_timeout_s: 1.0,
            command_timeout_s: 1.0,
            command: "true",
            python: Path::new("python3"),
        };
        let e = ssh_options(&[t("a", 1), t("b", 2)], &inv).unwrap_err();
        assert!(e.to_string().contains("b:2 and a:1 differ"), "{e}");
        let o = ssh_options(&[t("a", 7), t("b", 7)], &inv).unwrap();
        assert!(o.contains("-p 7 -i /k"), "{o}");
        assert!(o.contains("StrictHostKeyChecking=yes"), "{o}");
    }

    #[test]
    fn a_missing_peer_is_named_with_how_to_install_it() {
        let e = check(Peer::ParallelSsh, Path::new("/nonexistent/python3")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("peer parallel-ssh"), "{s}");
        assert!(s.contains("pip install parallel-ssh"), "{s}");
        assert!(s.contains("--python names"), "{s}");
        let e = check(Peer::FleetshPssh, Path::new("/nonexistent/python3")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("peer fleetsh-python (pssh compat)"), "{s}");
        assert!(
            s.contains("from fleetsh.compat.pssh.clients import ParallelSSHClient"),
            "{s}"
        );
        assert!(s.contains("pip install ./crates/python"), "{s}");
        assert!(s.contains("--fleetsh-python names"), "{s}");
    }
}

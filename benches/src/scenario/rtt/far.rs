//! A far network on this machine for `rtt`: a pair of network namespaces, "near" (the clients)
//! and "far" (the servers), joined by a link that holds every packet for half the round trip
//! (`benches/tools/delay_link.py`, two TUN devices and a forwarder at real-time priority: this
//! kernel has no netem), and OpenSSH's `sshd` serving the far side's addresses.
//!
//! The far side's hosts are 10.78.x.y addresses (all of 10.78.0.0/16 is local to its `lo`); the
//! near side is 10.77.0.1. Nothing leaves the namespaces: each pair is private to this process,
//! and the same addresses in another pair are another network. Everything is stopped by the PID
//! of the process this module started (the forwarder, each `sshd`), and the namespaces are
//! deleted, when the values are dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The forwarder, embedded so that the binary runs from anywhere.
const DELAY_LINK_PY: &str = include_str!("../../../tools/delay_link.py");
/// The near side's address.
pub const NEAR_ADDR: &str = "10.77.0.1";
/// The segment size of the link: an Ethernet path's (loopback's 64 KiB would hide what a
/// flight of several segments costs).
const MTU: &str = "1500";
/// sshd listens on at most 16 addresses (OpenSSH's `MAX_LISTEN_SOCKS`).
const ADDRS_PER_SSHD: usize = 16;
/// Bound on each wait for a process to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The address of far host `i` (0-based): 10.78.1.1, 10.78.1.2, ... (250 per /24).
pub fn far_addr(i: usize) -> String {
    format!("10.78.{}.{}", 1 + i / 250, 1 + i % 250)
}

/// Runs `ip ARGS`, failing with its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A namespace pair and the delaying link between them.
#[derive(Debug)]
pub struct FarLink {
    /// The clients' namespace.
    pub near: String,
    /// The servers' namespace.
    pub far: String,
    /// The link's round trip, ms.
    pub rtt_ms: u64,
    forwarder: Option<Child>,
    /// How the forwarder runs ("SCHED_FIFO 50", or why not).
    pub policy: String,
    /// The far side's end of the link (where a capture sees every packet of the far side).
    pub far_dev: String,
    _dir: tempfile::TempDir,
}

impl FarLink {
    /// Makes namespaces `fbr-<pid>-<index>-{near,far}` and a link of `rtt_ms` between them.
    pub fn create(index: usize, rtt_ms: u64) -> Result<FarLink> {
        let pid = std::process::id();
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-link-")
            .tempdir()
            .context("temporary directory")?;
        let script = dir.path().join("delay_link.py");
        std::fs::write(&script, DELAY_LINK_PY).context("writing delay_link.py")?;
        let near = format!("fbr-{pid}-{index}-near");
        let far = format!("fbr-{pid}-{index}-far");
        // Device names are made in this namespace first (at most 15 bytes, unique here).
        let (near_dev, far_dev) = (
            format!("fb{}n{index}", pid % 100_000),
            format!("fb{}f{index}", pid % 100_000),
        );
        let mut link = FarLink {
            near: near.clone(),
            far: far.clone(),
            rtt_ms,
            forwarder: None,
            policy: String::new(),
            far_dev: far_dev.clone(),
            _dir: dir,
        };
        // On an error from here on, the drop of `link` deletes what exists.
        ip(&["netns", "add", &near])?;
        ip(&["netns", "add", &far])?;
        let python = if Path::new("/usr/bin/python3").is_file() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let one_way = format!("{}", rtt_ms as f64 / 2.0);
        let mut child = Command::new(python)
            .arg(&script)
            .args([&near_dev, &far_dev, &one_way])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the delay forwarder (python3)")?;
        let stdout = child.stdout.take();
        link.forwarder = Some(child);
        let Some(stdout) = stdout else {
            bail!("delay forwarder: no stdout");
        };
        link.policy = first_line(stdout, READY_TIMEOUT)
            .context("the delay forwarder did not start (needs root and /dev/net/tun)")?
            .trim_start_matches("ready")
            .trim()
            .to_string();
        ip(&["link", "set", &near_dev, "netns", &near])?;
        ip(&["link", "set", &far_dev, "netns", &far])?;
        for (ns, dev, addr, peer_net) in [
            (&near, &near_dev, "10.77.0.1/32", "10.78.0.0/16"),
            (&far, &far_dev, "10.78.0.0/16", "10.77.0.0/16"),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            if ns == &far {
                // Every 10.78.x.y is a local address of the far side (a prefix on `lo` is
                // local as a whole), so one command serves any number of hosts.
                ip(&["-n", ns, "addr", "add", addr, "dev", "lo"])?;
            } else {
                ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            }
            ip(&["-n", ns, "link", "set", dev, "mtu", MTU, "up"])?;
            let mut route = vec!["-n", ns.as_str(), "route", "add", peer_net, "dev", dev];
            if ns == &near {
                route.extend(["src", NEAR_ADDR]);
            }
            ip(&route)?;
        }
        Ok(link)
    }

    /// `program` to be run in the near namespace (`ip netns exec`, which execs it: the child's
    /// PID is the program's).
    pub fn near_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_command(&self.near, program)
    }

    /// `program` to be run in the far namespace.
    pub fn far_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_command(&self.far, program)
    }

    /// `cmd` (built for this namespace-less process) run in the near namespace instead, with
    /// its arguments, environment and working directory.
    pub fn in_near(&self, cmd: &Command) -> Command {
        let mut c = self.near_command(cmd.get_program());
        c.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }
}

fn netns_command(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

impl Drop for FarLink {
    fn drop(&mut self) {
        if let Some(mut child) = self.forwarder.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.near, &self.far] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The first line `out` prints, within `timeout`.
fn first_line(out: impl std::io::Read + Send + 'static, timeout: Duration) -> Result<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = BufReader::new(out).read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line),
        Ok(Ok(_)) => bail!("it exited"),
        Ok(Err(e)) => bail!("reading its output: {e}"),
        Err(_) => bail!("nothing within {timeout:?}"),
    }
}

/// The files every server and client of a run share: one host key for every far host, one
/// client key, `authorized_keys`, known_hosts naming every far host.
#[derive(Debug)]
pub struct Keys {
    dir: tempfile::TempDir,
    /// The login user (the user running the benchmark).
    pub user: String,
}

impl Keys {
    /// New keys, and a known_hosts for far hosts 0..`hosts` on port 22.
    pub fn create(hosts: usize) -> Result<Keys> {
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-rtt-")
            .tempdir()
            .context("temporary directory")?;
        let p = dir.path();
        for key in ["host_ed25519", "id_ed25519"] {
            fleetsh_testkit::sshd::keygen(&p.join(key));
        }
        std::fs::copy(p.join("id_ed25519.pub"), p.join("authorized_keys"))?;
        std::fs::create_dir(p.join("home"))?;
        let host = fleetsh_testkit::sshd::public_key(&p.join("host_ed25519.pub"));
        let known: String = (0..hosts)
            .map(|i| format!("{} {host}\n", far_addr(i)))
            .collect();
        std::fs::write(p.join("known_hosts"), known)?;
        let out = Command::new("id").arg("-un").output()?;
        let user = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if user.is_empty() {
            bail!("cannot tell the current user (id -un)");
        }
        Ok(Keys { dir, user })
    }

    /// A file of the run's directory (`id_ed25519`, `known_hosts`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// OpenSSH `sshd`s in a far namespace serving far hosts 0..n on port 22, 16 addresses each
/// (one listening socket per address: a burst of connections spreads over them rather than
/// overflowing one socket's queue of 128 into SYN cookies).
///
/// Not the test kit's fixture (`fleetsh_testkit::sshd`), which picks a free port per server
/// and makes its own keys: a fleet here is several servers on port 22 with one host key and
/// one authorized key, as the tools that take one port for every host need. The configuration
/// is the fixture's otherwise.
#[derive(Debug)]
pub struct FarSshd {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl FarSshd {
    /// Starts the servers for `hosts` far hosts in `link`'s far namespace and waits until each
    /// address accepts connections.
    pub fn start(link: &FarLink, keys: &Keys, hosts: usize, tag: &str) -> Result<FarSshd> {
        let privsep = Path::new("/run/sshd");
        if !privsep.is_dir() {
            std::fs::create_dir_all(privsep).context("creating /run/sshd")?;
        }
        let mut s = FarSshd {
            children: Vec::new(),
            logs: Vec::new(),
        };
        let addrs: Vec<String> = (0..hosts).map(far_addr).collect();
        let penalties = penalties_option(keys)?;
        for (i, group) in addrs.chunks(ADDRS_PER_SSHD).enumerate() {
            let config = keys.path(&format!("sshd_config.{tag}.{i}"));
            std::fs::write(&config, sshd_config(keys, group, penalties))?;
            let log = keys.path(&format!("sshd.{tag}.{i}.log"));
            let child = link
                .far_command("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .context("starting /usr/sbin/sshd (openssh-server)")?;
            s.children.push(child);
            s.logs.push(log);
        }
        // Every address answers, from inside the far namespace (bounded: 100 x 50 ms each).
        await_port_22(link.far_command("bash"), &addrs, || s.log())?;
        Ok(s)
    }

    /// What the servers logged (for failure messages).
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect::<Vec<_>>()
            .join("")
    }
}

impl Drop for FarSshd {
    fn drop(&mut self) {
        // The listeners this process started; their sessions end with their connections.
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sshd_config(keys: &Keys, addrs: &[String], penalties: &str) -> String {
    let mut c = String::from("Port 22\n");
    for a in addrs {
        c += &format!("ListenAddress {a}:22\n");
    }
    c += &format!(
        "HostKey \"{}\"\nAuthorizedKeysFile \"{}\"\nPidFile none\nSetEnv \"HOME={}\"\n",
        keys.path("host_ed25519").display(),
        keys.path("authorized_keys").display(),
        keys.path("home").display(),
    );
    // MaxStartups: every host of a fleet run is in flight at once, at most 16 per server.
    c += "UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
          KbdInteractiveAuthentication no\nPermitRootLogin yes\nMaxStartups 1000\n\
          PrintMotd no\nLogLevel ERROR\n";
    c += penalties;
    c
}

/// `PerSourcePenalties no` where sshd knows it (9.8 and later: every connection comes from one
/// address here), else nothing; `sshd -t` tells.
fn penalties_option(keys: &Keys) -> Result<&'static str> {
    let option = "PerSourcePenalties no\n";
    let probe = keys.path("probe_config");
    std::fs::write(
        &probe,
        format!(
            "HostKey \"{}\"\n{option}",
            keys.path("host_ed25519").display()
        ),
    )?;
    let known = Command::new("/usr/sbin/sshd")
        .arg("-t")
        .arg("-f")
        .arg(&probe)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Ok(if known { option } else { "" })
}

/// Waits until each of `addrs` accepts connections on port 22 (bounded: 100 tries 50 ms apart
/// each), probing with `bash` (a command for the namespace the servers are in); fails naming
/// the first address that does not answer, with the servers' `log`.
pub(crate) fn await_port_22(
    mut bash: Command,
    addrs: &[impl AsRef<str>],
    log: impl FnOnce() -> String,
) -> Result<()> {
    let list: Vec<&str> = addrs.iter().map(AsRef::as_ref).collect();
    let probe = format!(
        "for a in {}; do ok=; for i in $(seq 1 100); do \
         if (exec 3<>/dev/tcp/$a/22) 2>/dev/null; then ok=1; break; fi; sleep 0.05; done; \
         [ -n \"$ok\" ] || {{ echo \"$a does not answer\" >&2; exit 1; }}; done",
        list.join(" ")
    );
    let out = bash.args(["-c", &probe]).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!(
            "sshd did not start: {}; its log: {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            log()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_addresses_skip_zero_and_broadcast() {
        assert_eq!(far_addr(0), "10.78.1.1");
        assert_eq!(far_addr(249), "10.78.1.250");
        assert_eq!(far_addr(250), "10.78.2.1");
    }
}

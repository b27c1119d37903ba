//! A fleet of real servers for `peers --sshd`: one OpenSSH `sshd` in a network namespace this
//! process makes, answering every host of the fleet. The hosts are distinct loopback addresses
//! (127.90.x.y, port 22): all of 127.0.0.0/8 is local to the namespace's `lo`, and `sshd`
//! listens on 0.0.0.0, so one server and one listening socket serve any number of hosts. Each
//! connection is a process of its own (`sshd` forks and re-executes itself per connection), as
//! on a real server.
//!
//! The clients run in the same namespace (`ip netns exec`): the measurement processes are started
//! there. Nothing leaves it: the namespace has only `lo`. The server is stopped by the PID of the
//! process this module started, and the namespace deleted, when the value is dropped (on an
//! error too).
//!
//! The configuration is the test kit's (`fleetsh_testkit::sshd`) and `rtt`'s: `UsePAM no`,
//! public keys only, one Ed25519 host key, one client key, `MaxStartups` above any fanout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// The address of host `i` (0-based): 127.90.1.1, 127.90.1.2, ... (250 per /24).
pub fn host_addr(i: usize) -> String {
    format!(
        "127.{}.{}.{}",
        90 + i / 62_500,
        1 + (i / 250) % 250,
        1 + i % 250
    )
}

/// The namespace, the server and the client's files.
#[derive(Debug)]
pub struct SshdFleet {
    netns: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
    user: String,
    kex_offer: String,
}

impl SshdFleet {
    /// Makes namespace `fbs-<pid>`, keys, a hosts file and known_hosts for `hosts` hosts, starts
    /// `/usr/sbin/sshd` in it and waits until it answers.
    pub fn start(hosts: usize) -> Result<SshdFleet> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.is_file() {
            bail!("/usr/sbin/sshd not found (apt-get install openssh-server)");
        }
        let privsep = Path::new("/run/sshd");
        if !privsep.is_dir() {
            std::fs::create_dir_all(privsep).context("creating /run/sshd")?;
        }
        let dir = tempfile::Builder::new()
            .prefix("fleetsh-bench-sshd-")
            .tempdir()
            .context("temporary directory")?;
        let out = Command::new("id").arg("-un").output()?;
        let user = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if user.is_empty() {
            bail!("cannot tell the current user (id -un)");
        }
        let mut f = SshdFleet {
            netns: format!("fbs-{}", std::process::id()),
            child: None,
            dir,
            user,
            kex_offer: String::new(),
        };
        // From here on, the drop of `f` deletes what exists.
        let p = f.dir.path().to_path_buf();
        for key in ["host_ed25519", "id_ed25519"] {
            fleetsh_testkit::sshd::keygen(&p.join(key));
        }
        std::fs::copy(p.join("id_ed25519.pub"), p.join("authorized_keys"))?;
        std::fs::create_dir(p.join("home"))?;
        let host_key = fleetsh_testkit::sshd::public_key(&p.join("host_ed25519.pub"));
        let addrs: Vec<String> = (0..hosts).map(host_addr).collect();
        let known: String = addrs.iter().map(|a| format!("{a} {host_key}\n")).collect();
        std::fs::write(p.join("known_hosts"), known)?;
        let list: String = addrs.iter().map(|a| format!("{a}:22\n")).collect();
        std::fs::write(p.join("hosts"), list)?;
        let config = p.join("sshd_config");
        // `PerSourcePenalties no` where sshd knows it (9.8 and later: every connection comes
        // from one address here); `sshd -T` refuses it where not. `-T` also says what the server
        // offers: which key exchange each client gets.
        let test = |penalties: bool| -> Result<std::process::Output> {
            std::fs::write(&config, sshd_config(&p, hosts, penalties))?;
            Command::new(sshd)
                .arg("-T")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .output()
                .context("sshd -T")
        };
        let mut t = test(true)?;
        if !t.status.success() {
            t = test(false)?;
        }
        if !t.status.success() {
            bail!(
                "sshd -T refused the configuration: {}",
                String::from_utf8_lossy(&t.stderr).trim()
            );
        }
        f.kex_offer = String::from_utf8_lossy(&t.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("kexalgorithms "))
            .unwrap_or_default()
            .to_string();

        crate::scenario::rtt::far::ip(&["netns", "add", &f.netns])?;
        crate::scenario::rtt::far::ip(&["-n", &f.netns, "link", "set", "lo", "up"])?;
        let log = std::fs::File::create(p.join("sshd.log"))?;
        let child = f
            .command(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting /usr/sbin/sshd")?;
        f.child = Some(child);
        // The first and the last address answer (bounded: 100 x 50 ms each).
        crate::scenario::rtt::far::await_port_22(
            f.command("bash"),
            &[host_addr(0), host_addr(hosts.saturating_sub(1))],
            || std::fs::read_to_string(p.join("sshd.log")).unwrap_or_default(),
        )?;
        Ok(f)
    }

    /// `program` to be run in the namespace (`ip netns exec`, which execs it: the child's PID is
    /// the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns]).arg(program);
        c
    }

    /// The hosts file (`127.90.x.y:22` per line).
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// known_hosts naming every host with the server's key.
    pub fn known_hosts_file(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The client key the server accepts.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// The login user (the user running the benchmark).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The listener's PID (its CPU with that of its reaped children is the server's).
    pub fn pids(&self) -> Vec<u32> {
        self.child.iter().map(Child::id).collect()
    }

    /// The key exchange a client whose first choice is `first` (e.g. `mlkem768x25519`) gets,
    /// as written in the tables: `first` when the server has it, else curve25519 (what every
    /// client of the comparison offers next and OpenSSH has).
    pub fn negotiated_kex(&self, first: &str) -> String {
        let has = self
            .kex_offer
            .split(',')
            .any(|k| k.split(['-', '@']).next() == Some(first));
        if has { first } else { "curve25519" }.to_string()
    }

    /// The server's version (`sshd -V` is not an option of 9.2: `ssh -V`, same package).
    pub fn version() -> String {
        Command::new("ssh")
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for SshdFleet {
    fn drop(&mut self) {
        // The listener this process started; sessions end with their connections.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .stderr(Stdio::null())
            .status();
    }
}

fn sshd_config(dir: &Path, hosts: usize, penalties: bool) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut c = format!(
        "Port 22\nListenAddress 0.0.0.0:22\nHostKey \"{}\"\nAuthorizedKeysFile \"{}\"\n\
         PidFile none\nSetEnv \"HOME={}\"\n",
        path("host_ed25519"),
        path("authorized_keys"),
        path("home"),
    );
    // MaxStartups: every host in flight is unauthenticated for a while; above any fanout.
    c += &format!(
        "UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin yes\nMaxStartups {}\nMaxSessions 100\n\
         PrintMotd no\nLogLevel ERROR\n",
        hosts.max(100) + 100
    );
    if penalties {
        c += "PerSourcePenalties no\n";
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses_are_distinct_loopback_addresses() {
        assert_eq!(host_addr(0), "127.90.1.1");
        assert_eq!(host_addr(249), "127.90.1.250");
        assert_eq!(host_addr(250), "127.90.2.1");
        assert_eq!(host_addr(62_500), "127.91.1.1");
        let v: std::collections::HashSet<String> = (0..100_000).map(host_addr).collect();
        assert_eq!(v.len(), 100_000);
    }
}

//! A simulated SSH fleet: a real russh SSH server serving N simulated hosts on loopback.
//!
//! Each host has its own loopback address (`127.1.0.1`, `127.1.0.2`, ..., all on the same
//! port; Linux routes all of 127.0.0.0/8 to `lo`), its own Ed25519 host key and its own name
//! (`sim00001`, ...), so a client sees what it would see in a real fleet. The hosts listen on
//! a socket each, or, for large fleets, all on one socket that tells them apart by the
//! address a connection arrived on (see [below](#listening-one-socket-per-host-or-one-for-all)).
//! Exec requests run a small built-in shell (`echo`, `hostname`, `cat`, `head -c N /dev/zero`,
//! `seq`, `sleep`, `exit N`, `kill -9 $$`, `;`/`&&`/`||`, `>&2`, ...) whose output streams
//! with SSH flow control, so a fleet of 10,000 hosts costs little more than its sockets.
//! The `sftp` subsystem serves each host's own real directory (see
//! [below](#the-sftp-subsystem)), and every host can serve as a bastion for the others
//! ([below](#bastions-direct-tcpip)).
//!
//! - [`SimConfig`]: how many hosts, where, which port, where the state files go, the key
//!   seed, accepted environment variables, the sudo password, faults and latency.
//! - [`SimFleet`]: [`SimFleet::start`] binds the listening sockets and writes the state files
//!   (`hosts`, `known_hosts`, `id_ed25519`, and `known_hosts_ca` with a host CA); the fleet serves on its own runtime and threads
//!   until [`SimFleet::stop`] or drop; [`SimFleet::start_temp`] puts them in a directory of
//!   its own, removed when the fleet stops (for tests, doctests and examples).
//!   [`SimFleet::host_root`] is where a host's SFTP files live;
//!   [`SimFleet::connections_accepted`], [`SimFleet::connections_open`] and
//!   [`SimFleet::tunnels_opened`] count each host's connections (all, and those still
//!   open) and bastion tunnels.
//! - [`Listen`]: a listening socket per host, or one for the whole fleet.
//! - [`SimHost`]: one host's index, name and address.
//! - [`SimError`]: why a fleet could not start (or a fault spec is bad).
//! - [`Fault`], [`parse_faults`]: hosts that misbehave on purpose.
//! - [`testing`]: a CA, OpenSSH user certificates and host certificates for client tests.
//!
//! Used by tests, benches, `fleetsh sim` and `fleetsh run --sim N`.
//!
//! # Listening: one socket per host, or one for all
//!
//! [`SimConfig::listen`] (`fleetsh sim --listen`) chooses how the hosts listen:
//!
//! - [`Listen::PerHost`]: each host has a listening socket of its own, bound to its address
//!   and the fleet's port. That is one open file per host: 100,000 hosts need an open-files
//!   limit above 100,000 (and `fleetsh sim` refuses a count its limit cannot hold).
//! - [`Listen::OneSocket`]: one listening socket, bound to `0.0.0.0` and the fleet's port,
//!   serves every host. The host of a connection is the one whose address the connection
//!   arrived on (the socket's local address, `127.1.0.42`: host 41), so each host still
//!   presents its own host key, name, fault, SFTP directory and counters, exactly as with
//!   a socket of its own. Any number of hosts costs one open file plus one per connection.
//! - [`Listen::Auto`] (the default): a socket per host up to [`ONE_SOCKET_ABOVE`] (1,000)
//!   hosts, one socket above.
//!
//! **Security.** A socket bound to `0.0.0.0` is reachable from other machines, so in
//! one-socket mode:
//!
//! - where the system allows it (Linux: `SO_BINDTODEVICE`, open to every user since Linux
//!   5.7, to processes with `CAP_NET_RAW` before), the socket is also bound to the loopback
//!   interface `lo`, and a connection from another machine never reaches it (the kernel
//!   answers it as for a closed port);
//! - whatever the system allows, a connection whose local address is not one of the
//!   fleet's own (inside 127.0.0.0/8, from `addr_base` for `count` hosts) or that arrived
//!   on another port is closed at once with a reset (`SO_LINGER` 0), before a single byte
//!   is sent, and counted by [`SimFleet::connections_turned_away`]. That covers a client on
//!   the machine connecting to its own non-loopback address, to `127.0.0.1`, or to a
//!   loopback address beyond the fleet.
//!
//! **What differs** between the modes, as a client sees it:
//!
//! - a connection to a loopback address that is not one of the fleet's (`127.0.0.1`, or
//!   the address after the last host's) is refused by the kernel with a socket per host
//!   (`ECONNREFUSED`); with one socket it is accepted and reset at once (the connect
//!   succeeds, the first read fails with `ECONNRESET`);
//! - with one socket the port is taken on every address of the machine: two fleets cannot
//!   share a port on different address ranges, and neither can a fleet and any other server
//!   bound to the same port on some address (with `port: 0` this never comes up);
//! - the accept queue is the one socket's (up to the kernel's `somaxconn`) rather than one
//!   per host, and one task accepts every connection;
//! - nothing else: every fault acts on the host it belongs to in both modes. There is no
//!   fault that takes a host's listener away: `refuse` accepts each connection and closes
//!   it at once, before the banner, with either kind of socket.
//!
//! [`SimFleet::listen`] tells which mode a fleet runs in.
//!
//! # Authentication
//!
//! - **publickey**: the fleet's client key (`state_dir/id_ed25519`), for any user name.
//! - **password** ([`SimConfig::password`]): that password, for any user name.
//! - **keyboard-interactive** (also with [`SimConfig::password`]): one round with one
//!   prompt, `Password: `, echo off; the one answer must be the password, anything else
//!   (a wrong answer, no answer, two answers) fails and may be retried. With
//!   [`SimConfig::kbd_interactive_only`] the `password` method is refused and not
//!   offered, as on PAM servers with `PasswordAuthentication no`, so a client's fallback
//!   from `password` to keyboard-interactive can be tested.
//!
//! - **user certificates** ([`SimConfig::user_ca`]): publickey auth with an OpenSSH user
//!   certificate (`*-cert-v01@openssh.com`) of any key, signed by that CA, valid now,
//!   with the login user among its principals (no principals: any user), and without
//!   critical options (the sim honours none, so it refuses them all). Anything else is
//!   refused: another CA, expired or not yet valid, another user, a host certificate.
//!   russh hands a certificate to the server's key probe as its bare key, so with a CA
//!   set every key offered without a signature is let through to the signed request,
//!   which is where plain keys and certificates are really checked.
//!   [`testing::ca_key`], [`testing::make_user_cert`] and [`testing::write_cert`] make a
//!   CA, a certificate for [`SimFleet::client_public_key`], and its
//!   `id_ed25519-cert.pub` file ([`SimFleet::client_cert_file`]); the fleet itself never
//!   writes a certificate.
//!
//! The `auth-fail` fault refuses all of them (keyboard-interactive still prompts).
//!
//! # Host certificates
//!
//! With [`SimConfig::host_ca`] each host holds, beside its plain Ed25519 host key, an
//! OpenSSH host certificate of that key signed by the CA (principals: the host's IP
//! address and its name; valid from an hour before the start for ten years; key id
//! `fleetsh-sim-host`). russh advertises `ssh-ed25519-cert-v01@openssh.com` ahead of
//! `ssh-ed25519` then, so a client that offers the certificate algorithm (russh:
//! `Preferred::host_key_certificates` containing `Algorithm::Ed25519`; OpenSSH does by
//! default) is served the certificate, and its `check_server_key` sees
//! `PublicKeyOrCertificate::Certificate`; a client that offers only plain algorithms
//! gets the plain key, as without a CA. `state_dir/known_hosts_ca`
//! ([`SimFleet::known_hosts_ca_file`]) holds the one `known_hosts` line trusting the CA,
//! `@cert-authority * ssh-ed25519 AAAA...` (`known_hosts` itself is unchanged).
//!
//! A `hostkey-mismatch` host presents no certificate (its other key is not certified:
//! a client trusting the CA sees an unknown plain key). [`SimConfig::host_cert_override`]
//! gives one host a certificate of the test's own making instead
//! ([`testing::make_host_cert`]: expired, other principals, another CA...). The
//! certificates are signed at start, in parallel with the key derivation: 10,000 hosts
//! start in about 0.9 s instead of 0.4 s (release build, two cores).
//!
//! # The session a command sees
//!
//! - **stdin**: what the client sends on the channel (and its EOF) is the command's
//!   standard input, shared by every command of the script: `cat` / `cat -`, `wc [-clw]`,
//!   `head -c N` / `head -n N` without a file, `read [-r] [NAME...]` (one line into
//!   variables), `sh` (a script from stdin) and `sudo -S` read it. Input waits in a 4 MiB
//!   pipe (beyond it the connection's input is held back, like a full pipe); input left
//!   when the command is done with stdin is drained and discarded. russh re-opens the
//!   client's window as soon as data arrives, so while a command waits for window space to
//!   write output, up to 64 MiB more stdin is buffered to keep window adjustments flowing
//!   (a client more than that ahead of reading the output of a command that echoes its
//!   input, `cat`, would stall the connection).
//! - **environment**: accepted `env` requests ([`SimConfig::accept_env`]) set variables
//!   that `$NAME` / `${NAME}` expand and that `env` prints (sorted `NAME=value` lines).
//! - **user**: `whoami`, `id`, `$USER`, `$LOGNAME`, `$HOME` follow the authenticated user
//!   (the target user inside `sudo`).
//! - **pty**: after a `pty-req`, `tty` prints `/dev/pts/0` (without one: `not a tty`,
//!   status 1); as on a real terminal, stderr is merged into stdout, every `\n` of the
//!   output becomes `\r\n` (`onlcr`), and input is echoed: what a command reads from stdin
//!   (a `read` line, `cat` input) is written to stdout as it reads it; `sudo` turns the
//!   echo off while it reads a password (only the line end shows), and ^D at the start of
//!   its line ends the input.
//!   Without a pty nothing read from stdin is ever echoed.
//! - **sudo**: `sudo -S -p PROMPT [-u USER] [--] CMD ARGS...` (the client's form is
//!   `sudo -S -p PROMPT [-u USER] -- sh -c 'echo READY >&2; SCRIPT'`) prints PROMPT on
//!   stderr, reads one line of stdin and compares it with [`SimConfig::sudo_password`]:
//!   right, CMD runs as USER (default root) with the rest of stdin; wrong,
//!   `Sorry, try again.` and PROMPT again, up to 3 attempts, then
//!   `sudo: N incorrect password attempt(s)` on stderr, status 1 (also when stdin ends
//!   after a wrong attempt); no sudo password configured, `sudo: a password is required`,
//!   status 1. [`SimConfig::sudo_own_prompt`] replaces PROMPT with the host's own question,
//!   [`SimConfig::sudo_then_ask`] adds a second question after the right password.
//! - **`sh -c 'SCRIPT'`** (also `bash`, `/bin/sh`) runs SCRIPT through the built-in shell.
//! - **agent**: `ssh-add -l` / `ssh-add -L` list the client's forwarded agent (see
//!   [below](#agent-forwarding)).
//!
//! # Agent forwarding
//!
//! A session channel accepts `auth-agent-req@openssh.com` (what `ssh -A` sends) before
//! its exec request. A command on that channel then reaches the client's agent:
//! `ssh-add -l` opens an `auth-agent@openssh.com` channel back to the client, sends the
//! agent a `REQUEST_IDENTITIES`, closes the channel and prints one line per identity as
//! OpenSSH does (`256 SHA256:... comment (ED25519)`, `-CERT` appended for
//! certificates), status 0; `ssh-add -L` prints the public keys (`ssh-ed25519 AAAA...
//! comment`). An agent without identities gives `The agent has no identities.`, status
//! 1; a client that refuses the agent channel (or an agent that does not answer within
//! 10 s) gives `error fetching identities: ...`, status 1. Without forwarding on the
//! channel: `Could not open a connection to your authentication agent.` on stderr,
//! status 2.
//!
//! # The SFTP subsystem
//!
//! A `subsystem` request for `sftp` starts an SFTP version 3 server (russh-sftp's) on the
//! channel; other subsystem names are refused. Each host serves one real directory,
//! `state_dir/root/<host name>/` ([`SimFleet::host_root`]), created by the host's first
//! SFTP session (not at start, which stays fast for 10,000 hosts).
//!
//! - **paths**: the host sees its directory as `/`, which is also the current directory
//!   (`realpath(".")` is `/`). Absolute and relative paths are normalised lexically, `..`
//!   stopping at `/` (`../../x` and `/x` are both `ROOT/x`); a path whose directories
//!   lead, through symlinks, outside the root is refused with `PermissionDenied`, and so
//!   is a symlink outside the root as the target of `open`, `stat`, `opendir`, `setstat`
//!   or `realpath` (`lstat`, `readlink` and `remove` act on the link itself). `symlink`
//!   stores absolute targets under the root and refuses relative ones climbing above it.
//! - **requests**: `open` (read, write, create, truncate, append, exclusive; a mode in its
//!   attributes is applied exactly, whatever the umask), `close`, `read` (`Eof` status at
//!   the end), `write` (at its offset), `stat`, `lstat`, `fstat`, `setstat` and `fsetstat`
//!   (permissions, access and modification times, size; ownership is ignored), `opendir`
//!   and `readdir` (batches of 100 with `.` and `..` first and `ls -l` long names, then
//!   `Eof`), `remove`, `mkdir` (with mode), `rmdir`, `realpath`, `rename` (fails if the
//!   target exists, as SFTPv3 says), `readlink`, `symlink`.
//! - **extensions** (advertised in the version reply, as OpenSSH does):
//!   `posix-rename@openssh.com` (a rename that replaces the target) and
//!   `limits@openssh.com` (256 KiB packets, 255 KiB reads and writes, 1,024 handles).
//! - **errors** carry `NoSuchFile`, `PermissionDenied`, `Failure`, `Eof`, `BadMessage` or
//!   `OpUnsupported` with a message naming the path.
//!
//! Two faults act on SFTP only: [`Fault::SftpEvil`] (a hostile server: listings with
//! names like `../escape`, `/etc/evil` and `a/../../b` that read as regular files, and a
//! `realpath` answering `/../../outside`) and [`Fault::SftpCut`] (the TCP connection is
//! closed once it has carried more than a given number of bytes of SFTP write data; the
//! bytes up to that number are stored).
//!
//! # Bastions (`direct-tcpip`)
//!
//! Every host is also a bastion: a `direct-tcpip` channel (what `ssh -J` / `ProxyJump`
//! opens) is accepted when its destination is one of this fleet's own listeners, named by
//! IP literal (`127.1.0.42`) or host name (`sim00042`) with the fleet's port, and is piped
//! both ways to a new TCP connection to that listener: the target host sees an ordinary
//! client and does its own SSH handshake, so tunnels nest (bastion → bastion → target).
//! Any other destination (another address or port, `localhost`, IPv6, a DNS name) is
//! refused with "administratively prohibited" and a description naming it, without any
//! connection attempt; a failed connection is refused with "connect failed". The
//! [`Fault::NoForward`] fault (`no-forward=P`) makes a host refuse every tunnel.
//!
//! Tunnels keep SSH flow control: output from the target waits for the client's window,
//! and input to the target is taken from the channel one message at a time, only as fast
//! as the target's socket accepts it; nothing is buffered without bound.
//! [`SimFleet::connections_accepted`] and [`SimFleet::tunnels_opened`] count, per host, the
//! TCP connections its listener accepted and the tunnels it opened, so a test can show
//! that 1,000 hosts were reached through one connection to one bastion.
//!
//! # Faults
//!
//! [`SimConfig::faults`] gives a share of the hosts a [`Fault`]: refused or silent
//! connections, slow banners, failing authentication, a wrong host key, connections cut
//! after the first line of output, commands that hang, flood, or exit with a fixed status,
//! hostile SFTP servers, connections cut during SFTP uploads, hosts that refuse to
//! act as bastions, and servers that freeze a while after authentication (no more reads or
//! writes, the socket left open: keepalives go unanswered, as on a hard hang or a network
//! partition).
//! The spec syntax of `fleetsh sim --faults` is `KIND[:ARG]=PERCENT[,...]`, for example
//! `refuse=5,slow-banner:3000=2.5,exit:3=10` ([`parse_faults`] lists every kind and the
//! assignment rule). Which hosts get which fault is decided by the seed;
//! [`SimFleet::fault_of`] tells.
//! [`SimConfig::latency`] delays what every host reads from its clients, so each round
//! trip takes that much longer (see its docs for what exactly is delayed). No fault costs
//! CPU while idle (a frozen connection included), and [`SimFleet::stop`] ends silent, hung,
//! flooding and frozen connections too.
//!
//! # Example
//!
//! ```
//! use fleetsh_sim::{SimConfig, SimFleet};
//!
//! let dir = tempfile::tempdir()?;
//! let fleet = SimFleet::start(SimConfig {
//!     count: 3,
//!     port: 0, // any free port, the same on every host address
//!     state_dir: dir.path().to_path_buf(),
//!     ..SimConfig::default()
//! })?;
//! assert_eq!(fleet.hosts()[2].name, "sim00003");
//! let targets = std::fs::read_to_string(fleet.hosts_file())?;
//! assert_eq!(targets.lines().count(), 3);
//! assert!(targets.starts_with(&format!("127.1.0.1:{}\n", fleet.port())));
//! // Connect with any SSH client: known_hosts and id_ed25519 are in the state dir.
//! fleet.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod agent;
mod error;
mod fault;
mod fleet;
mod keys;
mod layout;
mod listen;
mod server;
mod sftp;
mod shell;
mod state;
mod stream;
pub mod testing;
mod tunnel;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use error::SimError;
pub use fault::{Fault, parse_faults};
pub use fleet::SimFleet;
pub use listen::{Listen, ONE_SOCKET_ABOVE};

/// How to start a [`SimFleet`].
#[derive(Clone)]
pub struct SimConfig {
    /// Number of hosts, at least 1.
    pub count: usize,
    /// Address of host 0; host `i` gets `addr_base + i`, skipping addresses ending in `.0`
    /// or `.255`. Must stay inside 127.0.0.0/8. Default `127.1.0.1`.
    pub addr_base: Ipv4Addr,
    /// Port every host listens on. Default 2222. `0` picks a free port, the same for every
    /// host: with a socket per host the first one binds port 0 and every other host binds
    /// the port it got (retried on another port if that one is taken on some address); with
    /// one socket it is the port that socket got.
    pub port: u16,
    /// One listening socket per host, or one for the whole fleet. Default
    /// [`Listen::Auto`]: a socket per host up to [`ONE_SOCKET_ABOVE`] hosts, one socket
    /// above. See [Listening](#listening-one-socket-per-host-or-one-for-all).
    pub listen: Listen,
    /// Where the state files go (created if missing). Default `fleetsh-sim` in the system
    /// temporary directory.
    pub state_dir: PathBuf,
    /// Seed of the host keys and the client key (derived from `(seed, index)`). Default 0.
    pub seed: u64,
    /// Worker threads of the sim's own tokio runtime. Default 1.
    pub threads: usize,
    /// If set, password authentication with this password is accepted too (any user
    /// name), and so is keyboard-interactive with one `Password: ` prompt (echo off)
    /// answered with it.
    pub password: Option<String>,
    /// Refuse the `password` method and offer only keyboard-interactive for the password,
    /// as many PAM servers do (`PasswordAuthentication no`, `KbdInteractiveAuthentication
    /// yes`). No effect without [`SimConfig::password`]. Default `false`.
    pub kbd_interactive_only: bool,
    /// If set, OpenSSH user certificates signed by this CA are accepted for public-key
    /// auth: a `*-cert-v01@openssh.com` key of type user, valid now, whose principals
    /// include the login user (no principals: any user). Default `None`. See
    /// [`testing::make_user_cert`] to make one.
    pub user_ca: Option<russh::keys::PublicKey>,
    /// If set, every host also presents an OpenSSH host certificate
    /// (`ssh-ed25519-cert-v01@openssh.com`) of its host key signed by this CA: type host,
    /// principals the host's IP address (`127.1.0.1`) and its name (`sim00001`), valid
    /// from an hour before the start for ten years, key id `fleetsh-sim-host`; and
    /// `state_dir/known_hosts_ca` ([`SimFleet::known_hosts_ca_file`]) says
    /// `@cert-authority * <CA public key>`. Default `None`: plain host keys only. See
    /// [Host certificates](#host-certificates).
    pub host_ca: Option<russh::keys::PrivateKey>,
    /// One host that presents this certificate instead of the one [`SimConfig::host_ca`]
    /// would give it (or, without a host CA, the only host with a certificate): `(index,
    /// certificate)`, made with [`testing::make_host_cert`] for an expired certificate,
    /// one for other principals, one signed by another CA, ... It must certify the
    /// host's own key ([`testing::host_public_key`]), which the host signs the key
    /// exchange with: otherwise, or for an index beyond the fleet, [`SimFleet::start`]
    /// fails with [`SimError::BadHostCert`]. Default `None`.
    pub host_cert_override: Option<(usize, russh::keys::Certificate)>,
    /// Which `env` requests are accepted, like OpenSSH's `AcceptEnv`: `None` (default)
    /// accepts every variable; `Some(patterns)` only names matching one of the patterns
    /// (`*` and `?` are wildcards, e.g. `LC_*`). Refused requests get a channel failure.
    pub accept_env: Option<Vec<String>>,
    /// The password the built-in `sudo` accepts (on stdin, with `-S`). Default `None`:
    /// `sudo` always fails with `sudo: a password is required`.
    pub sudo_password: Option<String>,
    /// A question of the hosts' own that `sudo` prints instead of the prompt the client
    /// asked for with `-p` (as sudo does when a PAM module asks something other than the
    /// standard "Password:", e.g. a one-time code). Default `None`: `-p` is honoured.
    pub sudo_own_prompt: Option<String>,
    /// A second question `sudo` asks after the right password (as a one-time-code PAM
    /// module does), reading one more line of stdin, any answer accepted. Default `None`.
    pub sudo_then_ask: Option<String>,
    /// Faults and the percentage of hosts (0.0 to 100.0) that get each; at most one fault
    /// per host, the shares add up to at most 100. Default none. See [`Fault`] and
    /// [`parse_faults`].
    pub faults: Vec<(Fault, f64)>,
    /// Emulated network latency: every host sees what its clients send this much later,
    /// so every client request (key exchange steps, auth, channel open, exec, window
    /// adjustments, stdin) is answered that much later. The server's first write (its
    /// identification line and KEXINIT) leaves that long after the connection was accepted
    /// (after a `slow-banner` host's delay, on top of it), as it would reach a client over a
    /// real network one round trip after its connect; what the server sends later is not
    /// delayed itself. Default `None`.
    pub latency: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 1,
            addr_base: Ipv4Addr::new(127, 1, 0, 1),
            port: 2222,
            listen: Listen::Auto,
            state_dir: std::env::temp_dir().join("fleetsh-sim"),
            seed: 0,
            threads: 1,
            password: None,
            kbd_interactive_only: false,
            user_ca: None,
            host_ca: None,
            host_cert_override: None,
            accept_env: None,
            sudo_password: None,
            sudo_own_prompt: None,
            sudo_then_ask: None,
            faults: Vec::new(),
            latency: None,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("count", &self.count)
            .field("addr_base", &self.addr_base)
            .field("port", &self.port)
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("seed", &self.seed)
            .field("threads", &self.threads)
            // Never print the password.
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("kbd_interactive_only", &self.kbd_interactive_only)
            .field(
                "user_ca",
                &self
                    .user_ca
                    .as_ref()
                    .map(|k| k.fingerprint(Default::default()).to_string()),
            )
            .field(
                "host_ca",
                &self
                    .host_ca
                    .as_ref()
                    .map(|k| k.fingerprint(Default::default()).to_string()),
            )
            .field(
                "host_cert_override",
                &self
                    .host_cert_override
                    .as_ref()
                    .map(|(index, cert)| (index, cert.key_id().to_owned())),
            )
            .field("accept_env", &self.accept_env)
            .field("sudo_password", &self.sudo_password.as_ref().map(|_| "***"))
            .field("sudo_own_prompt", &self.sudo_own_prompt)
            .field("sudo_then_ask", &self.sudo_then_ask)
            .field("faults", &self.faults)
            .field("latency", &self.latency)
            .finish()
    }
}

/// One simulated host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SimHost {
    /// 0-based index in the fleet.
    pub index: usize,
    /// Host name: `sim` and `index + 1` with at least 5 digits (`sim00001`).
    pub name: String,
    /// The address its SSH server listens on.
    pub addr: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + std::fmt::Debug>() {}

    #[test]
    fn public_types_are_send_sync_debug() {
        assert_send_sync::<SimConfig>();
        assert_send_sync::<SimFleet>();
        assert_send_sync::<SimHost>();
        assert_send_sync::<SimError>();
        assert_send_sync::<Fault>();
    }

    #[test]
    fn config_debug_hides_password() {
        let config = SimConfig {
            password: Some("hunter2".into()),
            sudo_password: Some("hunter3".into()),
            ..SimConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter3"), "{shown}");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

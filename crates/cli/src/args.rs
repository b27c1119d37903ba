//! Command-line definitions (clap), in the conventions of pdsh and clush.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The environment variables fleetsh reads, as `--help` and the man page list them.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "FLEETSH_PASSWORD",
        "password for password and keyboard-interactive authentication (never logged)",
    ),
    (
        "FLEETSH_PASSPHRASE",
        "passphrase of encrypted private keys (else asked on the terminal, once per key)",
    ),
    (
        "FLEETSH_SUDO_PASSWORD",
        "password for `sudo -S` with --sudo, sent only when sudo asks (without it, `sudo -n`)",
    ),
    ("SSH_AUTH_SOCK", "ssh-agent socket, used unless --no-agent"),
    (
        "FLEETSH_LOG",
        "log filter (tracing's syntax: warn, info, debug, fleetsh_shard=trace); default warn",
    ),
    (
        "NO_COLOR",
        "any non-empty value turns colour off in --color auto",
    ),
    (
        "XDG_CONFIG_HOME",
        "where fleetsh/config.toml and fleetsh/groups.toml are read (default ~/.config)",
    ),
    (
        "HOME",
        "~ in paths; ~/.ssh/config, ~/.ssh/known_hosts and the default keys ~/.ssh/id_*",
    ),
    (
        "USER",
        "the remote user when -l, the target and ssh_config name none",
    ),
    (
        "SLURM_PROCID, SLURM_NTASKS, SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_STEP, SLURM_ARRAY_TASK_COUNT, JOB_COMPLETION_INDEX",
        "--shard auto: this controller's part (a Slurm job array task, else a Slurm task, else a Kubernetes Indexed Job's pod)",
    ),
    (
        "FLEETSH_SIM_PASSWORD, FLEETSH_SIM_SUDO_PASSWORD",
        "`fleetsh sim`: the password its hosts accept, and their sudo password",
    ),
];

/// The exit statuses of `run`, `put` and `get`.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "every host ran and exited 0 (transfers: every host's files moved)",
    ),
    (
        "1",
        "some host failed, exited non-zero or was killed by a signal; or an --out-dir file or standard output (other than closed by its reader) could not be written",
    ),
    ("2", "bad input: flags, host specs, config files, keys"),
    (
        "128+N",
        "the run was cancelled by signal N: 130 SIGINT, 143 SIGTERM, 129 SIGHUP (every host still reported)",
    ),
    (
        "with -S",
        "the largest remote exit status: 255 for a host that failed without one, 128+N for a command killed by signal N",
    ),
];

/// `ENVIRONMENT` and `EXIT STATUS` as `--help` shows them after the options.
fn after_help() -> String {
    let mut s = String::from("Environment:\n");
    for (name, what) in ENVIRONMENT {
        s.push_str(&format!("  {name}\n          {what}\n"));
    }
    s.push_str("\nExit status:\n");
    for (code, what) in EXIT_STATUS {
        s.push_str(&format!("  {code}\n          {what}\n"));
    }
    s.push_str("\nDocs: README.md and docs/ (cli.md, output.md, connecting.md, reliability.md, ...); `fleetsh man | man -l -`.");
    s
}

/// Run commands on tens of thousands of hosts over SSH.
#[derive(Debug, Parser)]
#[command(name = "fleetsh", version, about, propagate_version = true, after_long_help = after_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command on every host.
    #[command(after_long_help = after_help())]
    Run(Box<RunArgs>),
    /// Upload files to every host over SFTP (atomic per file): `put -w SPEC LOCAL... REMOTE`.
    #[command(after_long_help = after_help())]
    Put(Box<PutArgs>),
    /// Download files from every host over SFTP into LOCALDIR/HOST/: `get -w SPEC REMOTE...
    /// LOCALDIR`.
    #[command(after_long_help = after_help())]
    Get(Box<GetArgs>),
    /// Print the journals of a split run's parts (--shard, --journal) as the one run a single
    /// controller would have made: every host once, in every output mode, with the exit status
    /// the whole run earned. Parts without a journal, hosts no journal started and hosts in more
    /// than one journal are reported.
    #[command(after_long_help = after_help())]
    Merge(Box<MergeArgs>),
    /// Measure a fleet: a command reading 26,000 bytes on every host (the workload of
    /// parallel-ssh's published client benchmark) at stepped concurrency, with the median time
    /// of each operation (connect+auth, channel open, execute, read, close) per step.
    Bench(Box<BenchArgs>),
    /// Inspect settings: `fleetsh config show HOST` prints a host's effective connection
    /// settings and where each comes from (like `ssh -G`).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve a simulated fleet of SSH hosts on loopback addresses until SIGINT or SIGTERM.
    Sim(SimArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `fleetsh man | man -l -`.
    Man,
}

impl Command {
    /// The `--color` choice of the subcommands that have one.
    pub fn color(&self) -> crate::output::ColorChoice {
        match self {
            Command::Run(a) => a.common.out.color,
            Command::Put(a) => a.common.out.color,
            Command::Get(a) => a.common.out.color,
            Command::Bench(a) => a.common.out.color,
            Command::Merge(a) => a.out.color,
            _ => crate::output::ColorChoice::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostKeyCheckArg {
    /// Unknown or changed keys fail the host.
    Strict,
    /// Unknown keys are learned and appended; changed keys fail the host.
    AcceptNew,
    /// No checking (insecure).
    Off,
}

/// The presentation flags of `run`, `put`, `get` and `merge` (owned by output.rs).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "inline")]
    pub output: crate::output::OutputMode,
    /// Inline output without the `host: ` prefix (pdsh -N).
    #[arg(short = 'N', long = "no-prefix")]
    pub no_prefix: bool,
    /// When to colour host prefixes and failure notes of inline output.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: crate::output::ColorChoice,
    /// Also write each host's output to DIR/HOST.out, DIR/HOST.err and DIR/HOST.status
    /// (created if missing; files are replaced atomically).
    #[arg(long, value_name = "DIR", value_parser = crate::output::out_dir_arg)]
    pub out_dir: Option<PathBuf>,
    /// Never show the progress bar (shown on stderr only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Exit with the largest remote exit status (pdsh -S): 255 for a host that failed without
    /// one, 128+N for a command killed by signal N.
    #[arg(short = 'S', long = "max-exit-status")]
    pub max_exit_status: bool,
    /// More in the summary: the peak memory and the key exchange guesses.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl OutputArgs {
    /// The presentation flags, as the printer takes them.
    pub fn output_options(&self) -> crate::output::Options {
        crate::output::Options {
            mode: self.output,
            no_prefix: self.no_prefix,
            color: self.color,
            out_dir: self.out_dir.clone(),
            no_progress: self.no_progress,
            max_exit_status: self.max_exit_status,
            verbose: self.verbose,
        }
    }
}

/// What `run`, `put` and `get` share: targets, connection, run control and presentation.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).multiple(true).args(["hosts", "hostfile", "sim", "retry_failed"])))]
pub struct CommonArgs {
    /// Target hosts: `[user@]host[:port]` and ranges such as `web[01-12,20].dc[1-2]`
    /// (comma-separated, repeatable); `@group` from ~/.config/fleetsh/groups.toml, with `!`
    /// (minus) and `&` (intersection).
    #[arg(short = 'w', long = "hosts", value_name = "SPEC")]
    pub hosts: Vec<String>,
    /// Read targets from FILE (one per line, `#` comments; repeatable).
    #[arg(short = 'H', long = "hostfile", value_name = "FILE")]
    pub hostfile: Vec<PathBuf>,
    /// Start an embedded simulated fleet of N hosts in this process and target it (its keys and
    /// known_hosts are wired in).
    #[arg(long, value_name = "N")]
    pub sim: Option<usize>,
    /// Run exactly the hosts that failed in an earlier `-o json` output FILE (an error, a
    /// non-zero exit or a signal), each once, with the user and port recorded there. Host
    /// options beside it (-w, -H) narrow the retry down to the failed hosts they select; -x
    /// excludes as usual.
    #[arg(long, value_name = "FILE")]
    pub retry_failed: Option<PathBuf>,
    /// Most hosts one run may target, after expanding ranges and groups [default: 1000000]
    /// (`max_hosts` in the config file).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_hosts: Option<usize>,
    /// Run only this controller's part of the hosts: I/N (part I of N, counted from 0), or
    /// `auto` from the scheduler's environment (Slurm tasks and job arrays), `auto/N` for a
    /// Kubernetes Indexed Job of N completions. Controllers given the same hosts compute the same
    /// parts, whatever the order of the list.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Keep a journal in FILE: each host's start (written before its command leaves) and its
    /// final result. Running the same command on the same hosts with the same journal again
    /// resumes: hosts with a result are reported, not run; hosts never started run; hosts
    /// started without a result are reported `unknown` (their command may have run).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// With --journal: run the hosts reported `unknown` again.
    #[arg(long, requires = "journal")]
    pub rerun_unknown: bool,
    /// With --journal: flush every journal line to disk (fdatasync) before going on, so that
    /// the journal also survives a crash or reboot of this machine (each line then costs a disk
    /// flush).
    #[arg(long, requires = "journal")]
    pub journal_sync: bool,
    /// Exclude hosts (ranges allowed; a bare name excludes that host on any user/port).
    #[arg(short = 'x', long = "exclude", value_name = "SPEC")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Hosts in flight across all shards [default: 1000].
    #[arg(short = 'f', long = "fanout", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub fanout: Option<u64>,
    /// Shard threads [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Pin each shard thread to a CPU core.
    #[arg(long)]
    pub pin: bool,
    /// Command timeout in seconds [default: none].
    #[arg(short = 'u', long = "command-timeout", value_name = "SECS")]
    pub command_timeout: Option<f64>,
    /// Idle timeout in seconds: a host whose command sends no output for this long ends
    /// `command_timeout` (the command is sent SIGTERM) [default: none].
    #[arg(long = "idle-timeout", value_name = "SECS")]
    pub idle_timeout: Option<f64>,
    /// Extra connection attempts after a connect or handshake failure.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Base delay before a connection attempt is retried, in seconds [default: 1]: retry n waits
    /// a random time between half and all of DELAY×2^(n−1), at most 32×DELAY (exponential
    /// backoff with jitter).
    #[arg(long, value_name = "SECS")]
    pub retry_delay: Option<f64>,
    /// Per-host cap on captured stdout and stderr (each), in bytes [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub output_cap: Option<usize>,
    /// Run the hosts in successive batches of N hosts or P% of them (rolling changes).
    #[arg(long, value_name = "N|P%")]
    pub batch: Option<fleetsh::Amount>,
    /// Once more than N hosts (or P% of all hosts) have failed, start no new host; the rest end
    /// as `skipped`.
    #[arg(long, value_name = "N|P%")]
    pub max_fail: Option<fleetsh::Amount>,
    /// At most N new connections per second (spares bastions, LDAP and sshd's MaxStartups).
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Most tunnels open at once through one bastion [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jump_fanout: Option<u64>,
    /// Key exchange preference: `default` (post-quantum mlkem768x25519 first, as OpenSSH) or
    /// `curve25519` (classical; about a quarter less client CPU per host, see
    /// docs/tuning.md).
    #[arg(long, value_name = "default|curve25519")]
    pub kex: Option<fleetsh::Kex>,
    /// Session cipher preference: `auto` (AES-256-GCM first when this CPU has AES instructions,
    /// else ChaCha20-Poly1305), `aes-gcm`, or `chacha20` (for servers without AES instructions).
    #[arg(long, value_name = "auto|aes-gcm|chacha20")]
    pub cipher: Option<fleetsh::Cipher>,
    /// Never send the key exchange packet before the server's KEXINIT is read. By default it is
    /// sent with ours, guessing that the server puts the same algorithms first (one round trip
    /// less per host when it does), as long as the servers do.
    #[arg(long)]
    pub no_kex_guess: bool,
    /// Forward the ssh-agent to the commands (ssh -A); off by default.
    #[arg(short = 'A', long = "forward-agent")]
    pub forward_agent: bool,
    /// Do not use ssh-agent even if SSH_AUTH_SOCK is set.
    #[arg(long)]
    pub no_agent: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Defaults for these flags from a TOML file (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective connection settings for HOST and the origin of each (target, flag,
    /// ssh_config FILE:LINE, default), like `ssh -G`.
    Show(ShowArgs),
}

/// `config show`: the connection flags of `run`, and the host.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The host as you would type it: `[user@]host[:port]`.
    #[arg(value_name = "HOST")]
    pub host: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Remote port for targets that name none.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Defaults for these flags from a TOML file (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Remote port for targets that name none.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Send this program's standard input to every host's command (read once, at most 64 MiB).
    #[arg(short = 'I', long = "stdin")]
    pub stdin: bool,
    /// Run the command through `sudo -S`; the password comes from FLEETSH_SUDO_PASSWORD (sent on
    /// stdin only when sudo asks for it, never shown). Without it, `sudo -n` is used.
    #[arg(long)]
    pub sudo: bool,
    /// The user sudo runs the command as (implies --sudo).
    #[arg(long, value_name = "USER")]
    pub sudo_user: Option<String>,
    /// Request a pseudo-terminal for the command.
    #[arg(long)]
    pub pty: bool,
    /// Set an environment variable on the channel (repeatable; the server must accept it).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Send COMMAND as it is: no `{host}`/`{index}` replacement.
    #[arg(long)]
    pub no_template: bool,
    /// The command to run (after `--`); `{host}` and `{index}` in it are replaced per host
    /// (the host name, shell-quoted when needed, and its position) unless --no-template.
    #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The run's whole host list, as given to its controllers (host specs, ranges, `@group`):
    /// the hosts are then printed in its order, and hosts of parts whose journal is missing are
    /// named.
    #[arg(short = 'w', long = "hosts", value_name = "SPEC")]
    pub hosts: Vec<String>,
    /// Read the run's host list from FILE (one per line, `#` comments; repeatable).
    #[arg(short = 'H', long = "hostfile", value_name = "FILE")]
    pub hostfile: Vec<PathBuf>,
    /// Exclude hosts from the list given with -w or -H, as the controllers were given it.
    #[arg(short = 'x', long = "exclude", value_name = "SPEC")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// The journals (`--journal` files of the run's controllers), in any order.
    #[arg(required = true, value_name = "JOURNAL")]
    pub journals: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Remote port for targets that name none.
    #[arg(short = 'p', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The command each host runs.
    #[arg(
        long,
        default_value = "head -c 26000 /dev/zero",
        value_name = "COMMAND"
    )]
    pub command: String,
    /// Concurrency steps (the fanout of each pass over all the hosts).
    #[arg(long, default_value = "1,10,50,100,200", value_name = "N,N...", value_parser = parse_steps)]
    pub steps: std::vec::Vec<usize>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Remote port for targets that name none (scp's -P).
    #[arg(short = 'P', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Keep modes (including setuid/setgid/sticky bits) and modification times.
    #[arg(short = 'p', long)]
    pub preserve: bool,
    /// Local files (or directories with -r), then the remote destination.
    #[arg(required = true, num_args = 2.., value_name = "LOCAL... REMOTE")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Remote port for targets that name none (scp's -P).
    #[arg(short = 'P', long = "port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Keep modes and modification times.
    #[arg(short = 'p', long)]
    pub preserve: bool,
    /// Remote files (or directories with -r), then the local directory (each host's files
    /// go to LOCALDIR/HOST/).
    #[arg(required = true, num_args = 2.., value_name = "REMOTE... LOCALDIR")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Number of simulated hosts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: u64,
    /// Address of the first host; host i listens on addr-base + i (inside 127.0.0.0/8).
    #[arg(long, value_name = "IPV4", default_value = "127.1.0.1")]
    pub addr_base: Ipv4Addr,
    /// Port every host listens on (0: any free port).
    #[arg(long, default_value_t = 2222)]
    pub port: u16,
    /// How the hosts listen: `per-host` (a socket per host address, one open file each),
    /// `one-socket` (one socket on 0.0.0.0:PORT for all; a connection goes to the host whose
    /// address it arrived on, one to any other address is reset at once), or `auto` (per-host
    /// up to 1,000 hosts, one socket above).
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub listen: SimListenArg,
    /// Where to write hosts, known_hosts and the client key id_ed25519.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Seed of the host and client keys.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Server threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Inject faults: `KIND=PERCENT[,KIND=PERCENT...]`, deterministic per host index and seed
    /// (see `docs/reliability.md` for the kinds).
    #[arg(long, value_name = "SPEC")]
    pub fault: Option<String>,
    /// Delay every server reply by this many milliseconds (a far network).
    #[arg(long, value_name = "MS")]
    pub latency: Option<u64>,
}

/// `fleetsh sim --listen` (`fleetsh_sim::Listen`). The variants carry no doc comments, which
/// would turn `fleetsh sim --help` into its long form; the flag's help says what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimListenArg {
    // Per host up to 1,000 hosts, one socket above.
    Auto,
    // A listening socket per host address.
    PerHost,
    // One listening socket on 0.0.0.0 for every host.
    OneSocket,
}

impl From<SimListenArg> for fleetsh_sim::Listen {
    fn from(a: SimListenArg) -> Self {
        match a {
            SimListenArg::Auto => fleetsh_sim::Listen::Auto,
            SimListenArg::PerHost => fleetsh_sim::Listen::PerHost,
            SimListenArg::OneSocket => fleetsh_sim::Listen::OneSocket,
        }
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not K=V")),
    }
}

/// Parses `1,10,50` into steps (each at least 1).
fn parse_steps(s: &str) -> Result<Vec<usize>, String> {
    let steps: Result<Vec<usize>, String> = s
        .split(',')
        .map(|p| match p.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(format!("{p:?} is not a concurrency (a number from 1)")),
            Ok(n) => Ok(n),
        })
        .collect();
    let steps = steps?;
    if steps.is_empty() {
        return Err("no step".into());
    }
    Ok(steps)
}

/// How to reach and authenticate to hosts: shared by `run`, `put`, `get`, `bench` and
/// `config show`.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Remote user for targets that name none.
    #[arg(short = 'l', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Private key file (repeatable; replaces the default ~/.ssh/id_* keys).
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    pub identity: Vec<PathBuf>,
    /// Connect timeout in seconds (TCP, SSH handshake and authentication) [default: 10].
    #[arg(short = 't', long = "connect-timeout", value_name = "SECS")]
    pub connect_timeout: Option<f64>,
    /// Host-key checking [default: strict].
    #[arg(long, value_enum, value_name = "MODE")]
    pub host_key_check: Option<HostKeyCheckArg>,
    /// known_hosts file [default: ~/.ssh/known_hosts].
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// OpenSSH client configuration file [default: ~/.ssh/config, when it exists]. Flags and the
    /// fleetsh config file win over it (see docs/connecting.md).
    #[arg(
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        conflicts_with = "no_ssh_config"
    )]
    pub ssh_config: Option<PathBuf>,
    /// Do not read any ssh_config file.
    #[arg(long)]
    pub no_ssh_config: bool,
    /// Reach every host through these jump hosts: `[user@]host[:port][,...]` (first hop
    /// first; bastions default to port 22), as `ssh -J`. One connection per bastion carries
    /// the tunnels of all hosts behind it.
    #[arg(short = 'J', long = "jump", value_name = "SPEC")]
    pub jump: Option<String>,
    /// OpenSSH user certificate to log in with, paired with the key it certifies
    /// (repeatable; KEY-cert.pub beside a key is used without it).
    #[arg(long = "certificate", value_name = "FILE")]
    pub certificate: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_ones_are_named() {
        assert_eq!(parse_steps("1,10, 200").unwrap(), [1, 10, 200]);
        assert!(parse_steps("1,0").unwrap_err().contains("\"0\""));
        assert!(parse_steps("x").is_err());
    }
}

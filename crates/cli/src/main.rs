//! `fleetsh`: the operator's command line. Glue only: parse flags, build the engine and job,
//! print events. The logic lives in the `fleetsh` library.
// A binary has no API: `pub` in its modules marks what they share within it.
#![allow(unreachable_pub)]

mod args;
mod bench;
mod output;
mod signals;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use fleetsh::config::{ConnectionSettings, Flags, Layer, Layers};
use fleetsh::{Engine, EngineBuilder, Groups, HostKeyCheck, HostList, HostTarget, Job, Secret};
use fleetsh_sim::{SimConfig, SimFleet};

use args::{
    BenchArgs, Cli, Command, CommonArgs, ConfigCommand, ConnArgs, GetArgs, HostKeyCheckArg,
    PutArgs, RunArgs, ShowArgs, SimArgs,
};

/// A usage or configuration error: exit status 2.
#[derive(Debug)]
struct UsageError(anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl std::error::Error for UsageError {}

fn usage<E: Into<anyhow::Error>>(e: E) -> anyhow::Error {
    anyhow::Error::new(UsageError(e.into()))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    init_logging(cli.command.color());
    let result = match cli.command {
        Command::Run(a) => run(*a),
        Command::Put(a) => put(*a),
        Command::Bench(a) => bench(*a),
        Command::Get(a) => get(*a),
        Command::Sim(a) => sim(a),
        Command::Config(ConfigCommand::Show(a)) => config_show(a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a write error such as a closed pipe.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "fleetsh", &mut buf);
            io::stdout()
                .lock()
                .write_all(&buf)
                .map(|()| ExitCode::SUCCESS)
                .map_err(Into::into)
        }
        Command::Man => man(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if let Some(u) = e.downcast_ref::<UsageError>() {
                eprintln!("fleetsh: error: {u}");
                return ExitCode::from(2);
            }
            eprintln!("fleetsh: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Warnings and logs on stderr. By default (warnings only) as `fleetsh: warning: message`, in
/// colour by the same rules as the rest of the output (`--color`, `NO_COLOR`, whether stderr
/// is a terminal); with `FLEETSH_LOG` set (e.g. `debug`), tracing's own format with times and
/// targets, coloured by the same rules.
fn init_logging(color: output::ColorChoice) {
    let ansi = output::stderr_painted(color);
    let builder = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(ansi);
    match tracing_subscriber::EnvFilter::try_from_env("FLEETSH_LOG") {
        Ok(filter) => builder.with_env_filter(filter).init(),
        Err(_) => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .event_format(PlainLog { ansi })
            .init(),
    }
}

/// `fleetsh: warning: message key=value`.
struct PlainLog {
    ansi: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PlainLog
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let (label, color) = match *event.metadata().level() {
            tracing::Level::ERROR => ("error", "1;31"),
            tracing::Level::WARN => ("warning", "1;33"),
            tracing::Level::INFO => ("info", "1"),
            tracing::Level::DEBUG => ("debug", "2"),
            tracing::Level::TRACE => ("trace", "2"),
        };
        if self.ansi {
            write!(writer, "fleetsh: \x1b[{color}m{label}\x1b[0m: ")?;
        } else {
            write!(writer, "fleetsh: {label}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Prints clap's error (or help, or version) and returns its exit status, with a hint for the
/// commonest slip: a command given to `run` without `--` before it.
fn parse_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args.first().is_some_and(|a| a == "run");
    let unexpected = matches!(
        e.kind(),
        clap::error::ErrorKind::UnknownArgument | clap::error::ErrorKind::MissingRequiredArgument
    );
    if runs && unexpected && !args.iter().any(|a| a == "--") {
        eprintln!(
            "hint: the command goes after `--`: fleetsh run -w HOSTS [options] -- COMMAND [ARGS...]"
        );
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `put -p 2299 ...`: scp's `-p` (preserve) took no value, so the port became a path. Names
/// the slip instead of failing on a file called `2299`.
fn preserve_not_port(verb: &str, preserve: bool, paths: &[String]) -> Result<()> {
    if let Some(first) = paths.first()
        && preserve
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_digit())
        && !std::path::Path::new(first).exists()
    {
        return Err(usage(anyhow::anyhow!(
            "{verb}: {first:?} is not a file: in {verb}, -p preserves modes and times (as scp's -p); the port is -P {first}"
        )));
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        bail!(
            "--{name}: {} is not a number of seconds greater than 0 and at most 1e9",
            fleetsh::config::short_number(v)
        );
    }
    Ok(Duration::from_secs_f64(v))
}

/// What `run`, `put` and `get` build the same way from the shared flags.
struct Setup {
    engine: Engine,
    hosts: Vec<fleetsh::HostTarget>,
    /// Limits (timeouts, retries, output cap) from the config file and the flags.
    job: Job,
    /// The embedded simulated fleet (`--sim`), stopped when dropped.
    fleet: Option<SimFleet>,
}

/// The shared flags of `run`, `put`, `get` and `bench`, added to `command`'s own (the port;
/// `run`'s pseudo-terminal, environment and sudo), as the settings layers take them.
fn common_flags(a: &CommonArgs, command: Flags) -> Result<Flags> {
    let mut flags = conn_flags(&a.conn, command)?;
    flags.command_timeout = a
        .command_timeout
        .map(|v| secs("command-timeout", v))
        .transpose()
        .map_err(usage)?;
    flags.idle_timeout = a
        .idle_timeout
        .map(|v| secs("idle-timeout", v))
        .transpose()
        .map_err(usage)?;
    if let Some(v) = a.retry_delay {
        if !v.is_finite() || !(0.0..=1e9).contains(&v) {
            return Err(usage(anyhow::anyhow!(
                "--retry-delay: {} is not a number of seconds from 0 to 1e9",
                fleetsh::config::short_number(v)
            )));
        }
        flags.retry_delay = Some(Duration::from_secs_f64(v));
    }
    flags.retries = a.retries;
    flags.output_cap = a.output_cap;
    flags.fanout = a.fanout.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
    flags.shards = a.shards;
    flags.pin = a.pin;
    flags.batch = a.batch;
    flags.max_fail = a.max_fail;
    flags.rate = a.rate;
    flags.max_hosts = a.max_hosts;
    flags.kex = a.kex;
    flags.cipher = a.cipher;
    flags.no_kex_guess = a.no_kex_guess;
    Ok(flags)
}

/// The connection flags `run`, `put`, `get`, `bench` and `config show` share, added to
/// `command`'s own.
fn conn_flags(c: &ConnArgs, command: Flags) -> Result<Flags> {
    Ok(Flags {
        user: c.user.clone(),
        identity_files: c.identity.clone(),
        certificate_files: c.certificate.clone(),
        connect_timeout: c
            .connect_timeout
            .map(|v| secs("connect-timeout", v))
            .transpose()
            .map_err(usage)?,
        host_key_check: c.host_key_check.map(|m| match m {
            HostKeyCheckArg::Strict => HostKeyCheck::Strict,
            HostKeyCheckArg::AcceptNew => HostKeyCheck::AcceptNew,
            HostKeyCheckArg::Off => HostKeyCheck::Off,
        }),
        known_hosts: c.known_hosts.clone(),
        jump: c.jump.clone(),
        ..command
    })
}

fn setup(a: &CommonArgs, command: Flags) -> Result<Setup> {
    let mut layers = Layers::read(a.config.as_deref()).map_err(usage)?;
    layers.flags = common_flags(a, command)?;

    // Job limits and the run config: built-in defaults < config file < flags.
    let mut job = layers.job();
    job.stream_output = a.output == output::OutputMode::Inline;
    let mut run_cfg = layers.run_config();
    run_cfg.validate().map_err(usage)?;

    // Open files: the engine raises the soft limit and lowers the fanout to fit it when a
    // run starts (one descriptor per host in flight, with a warning). The simulated fleet
    // runs in this process: its listeners and its side of each connection need room too.
    if let Some(n) = a.sim {
        let limit_error = |e: fleetsh::EngineError| usage(anyhow::Error::new(e));
        let fit = fleetsh::limits::fit_fanout(run_cfg.fanout, 2, n as u64).map_err(limit_error)?;
        if fit.used == 0 {
            return Err(usage(anyhow::anyhow!(
                "the open-files limit ({}) is too low to run anything next to the simulated fleet",
                fit.limit
            )));
        }
        if run_cfg.fanout > fit.used {
            eprintln!(
                "fleetsh: lowering fanout from {} to {} to fit the open-files limit ({})",
                run_cfg.fanout, fit.used, fit.limit
            );
            run_cfg.fanout = fit.used;
        }
    }

    // The embedded simulated fleet, if asked for.
    let fleet = match a.sim {
        Some(0) => return Err(usage(anyhow::anyhow!("--sim: needs at least 1 host"))),
        Some(n) => {
            let dir = std::env::temp_dir().join(format!("fleetsh-sim-{}", std::process::id()));
            let f = SimFleet::start(SimConfig {
                count: n,
                port: 0,
                state_dir: dir,
                ..SimConfig::default()
            })
            .context("cannot start the simulated fleet")?;
            Some(f)
        }
        None => None,
    };

    // Hosts.
    let max_hosts = layers.max_hosts();
    let mut list = HostList::new().limit(max_hosts);
    let groups = match Groups::default_path().filter(|p| p.exists()) {
        Some(p) => Groups::load(&p).map_err(usage)?,
        None => Groups::new(),
    };
    for spec in &a.hosts {
        if Groups::is_expression(spec) {
            for t in groups.evaluate(spec, max_hosts).map_err(usage)? {
                list.include_target(t);
            }
        } else {
            list.include_spec(spec).map_err(usage)?;
        }
    }
    for f in &a.hostfile {
        list.include_file(f).map_err(usage)?;
    }
    if let Some(f) = &fleet {
        list.include_file(&f.hosts_file()).map_err(usage)?;
    }
    // `--retry-failed`: exactly the failed hosts of the file, with the user and port recorded
    // there, each once; host options beside it narrow them down (an intersection).
    if let Some(f) = &a.retry_failed {
        let failed = failed_hosts(f).map_err(usage)?;
        let selected = if a.hosts.is_empty() && a.hostfile.is_empty() && fleet.is_none() {
            failed
        } else {
            let selection = list.build().map_err(usage)?;
            let kept: Vec<HostTarget> = failed
                .into_iter()
                .filter(|t| selection.iter().any(|s| selects(s, t)))
                .collect();
            if kept.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "--retry-failed: none of the failed hosts in {} is among the hosts selected beside it (-w, -H, --sim narrow the retry down)",
                    f.display()
                )));
            }
            kept
        };
        list = HostList::new().limit(max_hosts);
        for t in selected {
            list.include_target(t);
        }
    }
    for spec in &a.exclude {
        if Groups::is_expression(spec) {
            for t in groups.evaluate(spec, max_hosts).map_err(usage)? {
                list.exclude_target(t);
            }
        } else {
            list.exclude_spec(spec).map_err(usage)?;
        }
    }
    let hosts = list.build().map_err(usage)?;

    // Engine.
    let conn = layers.connection();
    let mut b = Engine::builder().run_config(run_cfg);
    b = connection(b, &conn, &a.conn, fleet.as_ref())?;
    if a.no_agent || fleet.is_some() {
        b = b.no_agent();
    }
    if let Ok(pw) = std::env::var("FLEETSH_PASSWORD")
        && !pw.is_empty()
    {
        b = b.password(Secret::new(pw));
    }
    if let Ok(pp) = std::env::var("FLEETSH_PASSPHRASE")
        && !pp.is_empty()
    {
        b = b.passphrase(Secret::new(pp));
    }
    if let Some(k) = conn.kex {
        b = b.kex(k);
    }
    if let Some(c) = conn.cipher {
        b = b.cipher(c);
    }
    if !conn.kex_guess {
        b = b.kex_guess(false);
    }
    b = file_connection_options(b, &conn);
    if a.forward_agent {
        b = b.forward_agent(true);
    }
    // An encrypted key FLEETSH_PASSPHRASE does not open: ask on the terminal, once per key.
    if io::stdin().is_terminal() {
        b = b.passphrase_prompt(fleetsh::PassphrasePrompt::new(|path| {
            rpassword::prompt_password(format!("Enter passphrase for key {}: ", path.display()))
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new)
        }));
    }
    if let Some(n) = a.jump_fanout {
        b = b.jump_fanout(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let engine = b.build().map_err(usage)?;
    Ok(Setup {
        engine,
        hosts,
        job,
        fleet,
    })
}

/// The connection settings `s` (flags over the fleetsh config file) on `b`: they win over
/// ssh_config (`-F`, else `~/.ssh/config` if it exists, unless `--no-ssh-config`, from `c`).
/// `sim` wires in an embedded fleet's key and known_hosts.
fn connection(
    mut b: EngineBuilder,
    s: &ConnectionSettings,
    c: &ConnArgs,
    sim: Option<&SimFleet>,
) -> Result<EngineBuilder> {
    if let Some(u) = &s.user {
        b = b.user(&u.value);
    }
    if let Some(p) = &s.port {
        b = b.port(p.value);
    }
    if let Some(t) = &s.connect_timeout {
        b = b.connect_timeout(t.value);
    }
    let mut identities: Vec<PathBuf> = s
        .identity_files
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let mut known_hosts = s.known_hosts.as_ref().map(|k| k.value.clone());
    if let Some(f) = sim {
        if identities.is_empty() {
            identities.push(f.client_key_file());
        }
        known_hosts.get_or_insert_with(|| f.known_hosts_file());
    }
    for i in identities {
        b = b.identity_file(expand_tilde(i));
    }
    if let Some(k) = known_hosts {
        b = b.known_hosts(expand_tilde(k));
    }
    if let Some(check) = &s.host_key_check {
        b = b.host_key_check(check.value);
    }
    for cert in &s.certificate_files {
        b = b.certificate_file(expand_tilde(cert.clone()));
    }
    if let Some(spec) = &s.jump {
        b = b
            .jump_spec(spec)
            .map_err(|e| usage(anyhow::anyhow!("-J {spec:?}: {e}")))?;
    }
    if !c.no_ssh_config {
        match &c.ssh_config {
            Some(p) => {
                let p = expand_tilde(p.clone());
                if !p.is_file() {
                    return Err(usage(anyhow::anyhow!(
                        "-F: {} is not a readable file",
                        p.display()
                    )));
                }
                b = b.ssh_config_file(p);
            }
            None => {
                if let Some(home) = std::env::var_os("HOME") {
                    let p = PathBuf::from(home).join(".ssh").join("config");
                    if p.is_file() {
                        b = b.ssh_config_file(p);
                    }
                }
            }
        }
    }
    Ok(b)
}

/// `fleetsh config show HOST`.
fn config_show(a: ShowArgs) -> Result<ExitCode> {
    let mut layers = Layers::read(a.config.as_deref()).map_err(usage)?;
    let target = HostTarget::parse(&a.host).map_err(usage)?;
    layers.flags = conn_flags(
        &a.conn,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let conn = layers.connection();
    let b = connection(Engine::builder(), &conn, &a.conn, None)?;
    let b = file_connection_options(b, &conn);
    let settings = b.host_settings(&target).map_err(usage)?;
    // The engine sees the fleetsh config file's values as explicit settings (`flag`): name
    // the file for those the command line did not give.
    let mut out = io::stdout().lock();
    for (name, value, origin) in settings.rows() {
        let origin = match (conn.layer_of(name), &layers.file_path) {
            (Some(Layer::File), Some(f)) if origin == "flag" => {
                format!("config file {}", f.display())
            }
            _ => origin,
        };
        writeln!(out, "{name:<22} {value}  # {origin}")?;
    }
    for i in &settings.ignored {
        writeln!(out, "# ignored: {} ({})", i.value, i.source)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run(a: RunArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    let Setup {
        engine,
        hosts,
        mut job,
        fleet,
    } = setup(
        &a.common,
        Flags {
            port: a.port,
            pty: a.pty,
            env: a.env.clone(),
            sudo: a.sudo || a.sudo_user.is_some(),
            sudo_user: a.sudo_user.clone(),
            ..Flags::default()
        },
    )?;
    job.command = a.command.join(" ");
    // As pdsh's `%h`, the command line is a template unless asked otherwise.
    job.template = !a.no_template;
    // The sudo password comes from the environment only.
    if let Some(sudo) = &mut job.sudo {
        sudo.password = std::env::var("FLEETSH_SUDO_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new);
    }
    if a.stdin {
        job.stdin = Some(read_stdin().map_err(usage)?.into());
    }
    job.validate().map_err(usage)?;
    execute(&a.common, &engine, hosts, job, fleet, &signals)
}

fn put(a: PutArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    preserve_not_port("put", a.preserve, &a.paths)?;
    let Some((remote, locals)) = a.paths.split_last() else {
        return Err(usage(anyhow::anyhow!("put: needs LOCAL... REMOTE")));
    };
    let locals: Vec<PathBuf> = locals.iter().map(PathBuf::from).collect();
    // Read the local files once (before connecting anywhere): bad input fails fast.
    let plan =
        fleetsh::PutPlan::from_local(&locals, remote, a.recursive, a.preserve).map_err(usage)?;
    let s = setup(
        &a.common,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let job = s
        .job
        .action(fleetsh::Action::Put(std::sync::Arc::new(plan)));
    job.validate().map_err(usage)?;
    execute(&a.common, &s.engine, s.hosts, job, s.fleet, &signals)
}

fn get(a: GetArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    preserve_not_port("get", a.preserve, &a.paths)?;
    let Some((local, remotes)) = a.paths.split_last() else {
        return Err(usage(anyhow::anyhow!("get: needs REMOTE... LOCALDIR")));
    };
    let plan = fleetsh::GetPlan::new(
        remotes.to_vec(),
        expand_tilde(PathBuf::from(local)),
        a.recursive,
        a.preserve,
    )
    .map_err(usage)?;
    let s = setup(
        &a.common,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let job = s
        .job
        .action(fleetsh::Action::Get(std::sync::Arc::new(plan)));
    job.validate().map_err(usage)?;
    execute(&a.common, &s.engine, s.hosts, job, s.fleet, &signals)
}

fn bench(a: BenchArgs) -> Result<ExitCode> {
    let s = setup(
        &a.common,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let mut job = s.job.stream_output(false);
    job.command = a.command.clone();
    job.template = true;
    job.validate().map_err(usage)?;
    let engine = s.engine;
    eprintln!(
        "fleetsh bench: {} hosts, steps {:?}",
        s.hosts.len(),
        a.steps
    );
    let rows = bench::run_steps(&|c| Ok(engine.with_fanout(c)), &s.hosts, &job, &a.steps)?;
    let mut out = io::stdout().lock();
    bench::print(&rows, &a.command, &mut out)?;
    drop(s.fleet);
    let failed = rows.iter().any(|r| r.ok < r.hosts);
    Ok(ExitCode::from(u8::from(failed)))
}

/// Most events already waiting that are printed before a flush.
const READY_EVENTS_PER_WRITE: usize = 256;

/// Runs `job`, printing events as they come, and returns the exit status. A closed or failing
/// standard output does not end the run: its output is discarded from then on and every host
/// still runs (as pdsh); the summary goes to stderr and the status is the one the run earned.
fn execute(
    a: &CommonArgs,
    engine: &Engine,
    hosts: Vec<fleetsh::HostTarget>,
    job: Job,
    fleet: Option<SimFleet>,
    signals: &signals::Signals,
) -> Result<ExitCode> {
    let mut handle = engine.run(hosts, job)?;
    signals.attach(handle.canceller());

    let mut printer = output::Printer::new(&a.output_options(), handle.hosts());
    while let Some(ev) = handle.next_event() {
        printer.event(&ev);
        // Events that are already waiting go out in the same write (one write per host
        // costs a syscall and a wakeup of the reader each); the bound keeps output flowing
        // while events arrive faster than they are printed.
        for _ in 0..READY_EVENTS_PER_WRITE {
            let Some(ev) = handle.try_next_event() else {
                break;
            };
            printer.event(&ev);
        }
        printer.flush();
    }
    let report = handle.join();
    let signal = signals.received();
    printer.finish(&report, signal, engine.kex_guesses());
    drop(fleet);
    Ok(ExitCode::from(printer.exit_status(&report, signal)))
}

/// Whether a selected target `s` (as typed beside `--retry-failed`) selects the recorded
/// target `t`: same host, and the same user and port where `s` names them.
fn selects(s: &HostTarget, t: &HostTarget) -> bool {
    s.host == t.host
        && s.user.as_ref().is_none_or(|u| t.user.as_ref() == Some(u))
        && s.port.is_none_or(|p| t.port == Some(p))
}

/// The hosts that failed in an earlier `-o json` output: an error, a non-zero exit or a signal.
fn failed_hosts(path: &std::path::Path) -> Result<Vec<fleetsh::HostTarget>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--retry-failed: cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for record in fleetsh::record::parse_lines(&text) {
        let record =
            record.map_err(|e| anyhow::anyhow!("--retry-failed: {}:{e}", path.display()))?;
        if record.failed() {
            out.push(record.target());
        }
    }
    if out.is_empty() {
        bail!("--retry-failed: no failed host in {}", path.display());
    }
    Ok(out)
}

/// The man page: the command and its subcommands on one page (each subcommand's synopsis and
/// options in a section of its own), then ENVIRONMENT, EXIT STATUS and SEE ALSO.
fn man() -> Result<ExitCode> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let top = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    page.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        page.extend_from_slice(
            format!(
                ".TP\n\\fBfleetsh {}\\fR\n{}\n",
                sub.get_name(),
                roff_escape(&about)
            )
            .as_bytes(),
        );
    }
    for sub in cmd.get_subcommands() {
        let name = format!("fleetsh {}", sub.get_name());
        // clap takes a `&'static str` name; the page is printed once and the process ends.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let man = clap_mangen::Man::new(sub.clone().name(leaked));
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        // One page: each subcommand's sections become subsections of its own section.
        let part = String::from_utf8_lossy(&part)
            .replace(".SH SYNOPSIS", ".SS Synopsis")
            .replace(".SH DESCRIPTION", ".SS Description")
            .replace(".SH OPTIONS", ".SS Options");
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        page.extend_from_slice(part.as_bytes());
    }
    page.extend_from_slice(b".SH ENVIRONMENT\n");
    for (name, what) in args::ENVIRONMENT {
        page.extend_from_slice(
            format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                roff_escape(name),
                roff_escape(what)
            )
            .as_bytes(),
        );
    }
    page.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, what) in args::EXIT_STATUS {
        page.extend_from_slice(
            format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                roff_escape(code),
                roff_escape(what)
            )
            .as_bytes(),
        );
    }
    page.extend_from_slice(
        b".SH \"SEE ALSO\"\nssh(1), ssh_config(5), sshd(8), pdsh(1), clush(1)\n",
    );
    top.render_version_section(&mut page)?;
    io::stdout().lock().write_all(&page)?;
    Ok(ExitCode::SUCCESS)
}

/// Text for roff: backslashes doubled, and a leading `.` or `'` kept from being a request.
fn roff_escape(text: &str) -> String {
    let t = text.replace('\\', "\\\\").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// Most bytes `-I` reads from standard input.
const MAX_STDIN: u64 = 64 * 1024 * 1024;

fn read_stdin() -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .context("--stdin: cannot read standard input")?;
    if buf.len() as u64 > MAX_STDIN {
        bail!("--stdin: standard input is larger than {MAX_STDIN} bytes");
    }
    Ok(buf)
}

fn expand_tilde(p: PathBuf) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p
}

fn sim(a: SimArgs) -> Result<ExitCode> {
    let count = usize::try_from(a.count).map_err(usage)?;
    // Each host needs a listener, plus one descriptor per connection it serves.
    let limit = fleetsh::limits::raise_nofile_limit().unwrap_or(1024);
    if (count as u64) + fleetsh::limits::FD_RESERVE > limit {
        return Err(usage(anyhow::anyhow!(
            "--count {count}: the open-files limit ({limit}) is too low for that many listeners"
        )));
    }
    let fleet = SimFleet::start(SimConfig {
        count,
        addr_base: a.addr_base,
        port: a.port,
        state_dir: a.state_dir.clone(),
        seed: a.seed,
        threads: a.threads.max(1),
        password: std::env::var("FLEETSH_SIM_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        sudo_password: std::env::var("FLEETSH_SIM_SUDO_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        faults: match &a.fault {
            Some(spec) => fleetsh_sim::parse_faults(spec).map_err(usage)?,
            None => Vec::new(),
        },
        latency: a.latency.map(Duration::from_millis),
        ..SimConfig::default()
    })
    .map_err(usage)?;
    eprintln!(
        "fleetsh sim: {} hosts on port {} from {}; state in {}",
        fleet.hosts().len(),
        fleet.port(),
        a.addr_base,
        a.state_dir.display()
    );
    {
        let mut out = io::stdout().lock();
        writeln!(out, "ready {}", fleet.hosts().len())?;
        out.flush()?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    eprintln!("fleetsh sim: stopping");
    fleet.stop();
    Ok(ExitCode::SUCCESS)
}

/// The config file's connection options that have no flag: ciphers, keepalive, inactivity
/// timeout, channel window and packet size (checked when the file was read; the engine
/// checks them again at `build`).
fn file_connection_options(mut b: EngineBuilder, s: &ConnectionSettings) -> EngineBuilder {
    if let Some(c) = &s.ciphers {
        b = b.ciphers(c.iter().cloned());
    }
    if let Some(v) = s.keepalive_interval {
        b = b.keepalive_interval(v);
    }
    if let Some(v) = s.keepalive_count {
        b = b.keepalive_count(v);
    }
    if let Some(v) = s.inactivity_timeout {
        b = b.inactivity_timeout(v);
    }
    if let Some(v) = s.window_size {
        b = b.window_size(v);
    }
    if let Some(v) = s.max_packet_size {
        b = b.max_packet_size(v);
    }
    b
}

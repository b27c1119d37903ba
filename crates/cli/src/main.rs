//! `fleetsh`: the operator's command line. Glue only: parse flags, build the engine and job,
//! print events. The logic lives in the `fleetsh` library.
//!
//! The flags are in `args`; `settings` maps them onto the settings layers and the engine;
//! `commands` holds one module per subcommand; `output` prints what a run reports. This file
//! sets up logging, dispatches to the subcommand and maps its error to the exit status.
// A binary has no API: `pub` in its modules marks what they share within it.
#![allow(unreachable_pub)]

mod args;
mod commands;
mod error;
mod output;
mod settings;
mod signals;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, ConfigCommand};
use error::UsageError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    init_logging(cli.command.color());
    let result = match cli.command {
        Command::Run(a) => commands::run(*a),
        Command::Put(a) => commands::put(*a),
        Command::Bench(a) => commands::bench(*a),
        Command::Get(a) => commands::get(*a),
        Command::Sim(a) => commands::sim(a),
        Command::Config(ConfigCommand::Show(a)) => commands::config_show(a),
        Command::Completions { shell } => commands::completions(shell),
        Command::Merge(a) => commands::merge(*a),
        Command::Man => commands::man(),
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

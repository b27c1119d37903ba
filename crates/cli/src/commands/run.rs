//! `fleetsh run`: a command on every host.

use std::io;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use fleetsh::Secret;
use fleetsh::config::Flags;

use super::execute::execute;
use crate::args::RunArgs;
use crate::error::usage;
use crate::settings::setup;
use crate::signals;

/// `fleetsh run -w HOSTS [options] -- COMMAND [ARGS...]`.
pub fn run(a: RunArgs) -> Result<ExitCode> {
    let signals = signals::Signals::watch();
    let mut s = setup(
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
    let job = &mut s.job;
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
    let what = job.command.clone();
    execute(&a.common, s, &signals, &what)
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

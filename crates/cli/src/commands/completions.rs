//! `fleetsh completions SHELL`: a shell completion script on stdout.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::args::Cli;

/// `fleetsh completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
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

//! `fleetsh man`: the man page (roff) on stdout.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::args::{self, Cli};

/// The man page: the command and its subcommands on one page (each subcommand's synopsis and
/// options in a section of its own), then ENVIRONMENT, EXIT STATUS and SEE ALSO.
pub fn man() -> Result<ExitCode> {
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

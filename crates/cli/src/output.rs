//! Presentation: inline lines, JSON lines, grouped output, `--out-dir` files, the progress bar,
//! the summary and the exit status. `docs/output.md` describes what the user sees.
//!
//! Everything an event prints is first rendered into two buffers (stdout, stderr) and then
//! written in one go, so that while the progress bar is visible it can be cleared around the
//! write ([`Progress::suspend`]) and never cuts a line.

mod color;
mod grouped;
mod outdir;
mod progress;
mod status;
pub mod summary;

use std::io::{self, BufWriter, IsTerminal, Stderr, Stdout, Write};
use std::sync::Arc;

use fleetsh::{ErrorKind, Event, HostResult, HostTarget, Outcome, Report, StreamKind};

pub use color::ColorChoice;
use color::{Painter, Style};
use grouped::Groups;
use outdir::OutDir;
pub use outdir::out_dir_arg;
use progress::Progress;

/// The output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// `host: line` as lines arrive (stderr lines on stderr), then a summary on stderr.
    Inline,
    /// One JSON object per host on stdout, as each host finishes.
    Json,
    /// At the end, hosts with identical output printed once under their folded host list
    /// (clush -b, dshbak -c).
    Grouped,
}

/// What the presentation flags ask of a [`Printer`].
#[derive(Debug, Clone)]
pub struct Options {
    /// `-o`.
    pub mode: OutputMode,
    /// `-N`: no `host: ` prefix.
    pub no_prefix: bool,
    /// `--color`.
    pub color: ColorChoice,
    /// `--out-dir`.
    pub out_dir: Option<std::path::PathBuf>,
    /// `--no-progress`.
    pub no_progress: bool,
    /// `-S`.
    pub max_exit_status: bool,
    /// `-v`.
    pub verbose: bool,
}

/// Whether text on stderr is painted with `choice` (for log lines).
pub fn stderr_painted(choice: ColorChoice) -> bool {
    let no_color = std::env::var_os("NO_COLOR");
    Painter::new(choice, io::stderr().is_terminal(), no_color.as_deref()).is_on()
}

/// Prints a run's events and its end as the flags ask.
pub struct Printer {
    mode: OutputMode,
    /// Each host as given (its `Display` form), by index: prefixes, headers, file names.
    names: Vec<String>,
    out: BufWriter<Stdout>,
    err: Stderr,
    stdout_tty: bool,
    /// What the current event prints, written by [`Printer::emit`].
    pending_out: Vec<u8>,
    pending_err: Vec<u8>,
    inline: Inline,
    groups: Option<Groups>,
    out_dir: Option<OutDir>,
    progress: Option<Progress>,
    max_exit_status: bool,
    /// `-v`: the summary's diagnostic lines too.
    verbose: bool,
    /// Standard output failed (closed by its reader, or an I/O error): what is printed there is
    /// discarded from then on, and the run goes on.
    out_failed: Option<io::ErrorKind>,
    /// Standard error failed: notes and the summary are discarded.
    err_failed: bool,
    /// Hosts that ended cancelled or skipped before they started: one line for all of them
    /// at the end instead of a note each.
    unstarted: Vec<(ErrorKind, usize)>,
    /// The run printed is a merge of this many journals (the summary says so instead of a time).
    merged: Option<usize>,
    /// What the summary and the exit status need of every result printed.
    tally: summary::Tally,
}

impl Printer {
    pub fn new(args: &Options, hosts: &[HostTarget]) -> Self {
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR");
        let paint_out = Painter::new(args.color, stdout_tty, no_color.as_deref());
        let paint_err = Painter::new(args.color, stderr_tty, no_color.as_deref());
        let show_progress = stderr_tty && !args.no_progress;
        Printer {
            mode: args.mode,
            names: hosts.iter().map(ToString::to_string).collect(),
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            err: io::stderr(),
            stdout_tty,
            pending_out: Vec::new(),
            pending_err: Vec::new(),
            inline: Inline::new(hosts.len(), !args.no_prefix, paint_out, paint_err),
            groups: (args.mode == OutputMode::Grouped).then(|| Groups::new(paint_out)),
            out_dir: args.out_dir.clone().map(OutDir::new),
            progress: show_progress.then(|| Progress::new(hosts.len())),
            max_exit_status: args.max_exit_status,
            verbose: args.verbose,
            out_failed: None,
            err_failed: false,
            unstarted: Vec::new(),
            tally: summary::Tally::default(),
            merged: None,
        }
    }

    /// One event, rendered and written to the buffered stdout/stderr; [`Printer::flush`] sends
    /// it on (the caller flushes once it has taken the events that were ready).
    pub fn event(&mut self, ev: &Event) {
        match ev {
            Event::Output { host, stream, data } if self.mode == OutputMode::Inline => {
                self.inline.output(
                    *host,
                    *stream,
                    data,
                    &self.names,
                    &mut self.pending_out,
                    &mut self.pending_err,
                );
            }
            Event::Finished(r) => self.finished(r, false),
            Event::Transferred { files, bytes, .. } => {
                if let Some(p) = &self.progress {
                    p.transferred(*files, *bytes);
                }
            }
            _ => {}
        }
        self.emit(false);
    }

    /// Host `r`'s end; `lossy`: its output was already recorded lossy (a journal's result).
    fn finished(&mut self, r: &Arc<HostResult>, lossy: bool) {
        self.tally.add(r);
        match self.mode {
            OutputMode::Inline if r.never_started() => {
                let kind = r.error.as_ref().map_or(ErrorKind::Cancelled, |e| e.kind);
                self.unstarted.push((kind, r.index));
            }
            OutputMode::Inline => {
                self.inline
                    .finish(r, &self.names, &mut self.pending_out, &mut self.pending_err)
            }
            OutputMode::Json => {
                fleetsh::record::write_recorded_line(r, lossy, &mut self.pending_out);
            }
            OutputMode::Grouped => {
                if let Some(g) = &mut self.groups {
                    g.add(r);
                }
            }
        }
        if let Some(d) = &mut self.out_dir {
            let name = self.names.get(r.index).map_or("?", String::as_str);
            d.write(name, r, &mut self.pending_err);
        }
        if let Some(p) = &self.progress {
            p.record(r);
        }
    }

    /// The run printed is a merge of `journals` journals.
    pub fn set_merged(&mut self, journals: usize) {
        self.merged = Some(journals);
    }

    /// Text for standard error, written with the next event's (after its output).
    pub fn note(&mut self, text: &str) {
        self.pending_err.extend_from_slice(text.as_bytes());
        self.emit(false);
    }

    /// A result recorded earlier (a journal's), printed as if its host had just finished: its
    /// output, then its end. `lossy`: its output was recorded with invalid UTF-8 replaced, which
    /// JSON lines say again.
    pub fn recorded(&mut self, r: &Arc<HostResult>, lossy: bool) {
        if self.mode == OutputMode::Inline && !r.never_started() {
            for (stream, data) in [
                (StreamKind::Stdout, &r.stdout),
                (StreamKind::Stderr, &r.stderr),
            ] {
                self.inline.output(
                    r.index,
                    stream,
                    data,
                    &self.names,
                    &mut self.pending_out,
                    &mut self.pending_err,
                );
            }
        }
        self.finished(r, lossy);
        self.emit(false);
    }

    /// Writes what the last event rendered: stdout first, then stderr. With the progress bar
    /// visible, the bar is cleared around writes that reach the terminal. A write that fails
    /// marks its stream failed ([`Printer::out_failed`]); the run goes on.
    fn emit(&mut self, flush: bool) {
        let Printer {
            out,
            err,
            pending_out,
            pending_err,
            progress,
            stdout_tty,
            out_failed,
            err_failed,
            ..
        } = self;
        if out_failed.is_some() {
            pending_out.clear();
        }
        if *err_failed {
            pending_err.clear();
        }
        if pending_out.is_empty() && pending_err.is_empty() && !flush {
            return;
        }
        let on_terminal = !pending_err.is_empty() || *stdout_tty;
        let mut write = |flush: bool| {
            if out_failed.is_none() {
                let written = out
                    .write_all(pending_out)
                    .and_then(|()| if flush { out.flush() } else { Ok(()) });
                if let Err(e) = written {
                    *out_failed = Some(e.kind());
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        pending_err.extend_from_slice(
                            format!(
                                "fleetsh: cannot write standard output ({e}); the run goes on with its output discarded\n"
                            )
                            .as_bytes(),
                        );
                    }
                }
            }
            if !*err_failed && !pending_err.is_empty() && err.write_all(pending_err).is_err() {
                *err_failed = true;
            }
        };
        match progress {
            Some(p) if on_terminal => p.suspend(|| write(true)),
            _ => write(flush),
        }
        pending_out.clear();
        pending_err.clear();
    }

    pub fn flush(&mut self) {
        self.emit(true);
    }

    /// After the last event: grouped output on stdout, then the summary on stderr (`kex`: the
    /// engine's key exchange guesses).
    pub fn finish(
        &mut self,
        report: &Report,
        signal: Option<i32>,
        kex: Option<fleetsh::KexGuesses>,
    ) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        // One line per kind for the hosts that never started, in host order.
        self.unstarted.sort_unstable();
        for (kind, what) in [
            (ErrorKind::Cancelled, "cancelled before they started"),
            (
                ErrorKind::Skipped,
                "skipped, not started after too many failures (max-fail)",
            ),
            (
                ErrorKind::Missing,
                "missing: no journal started them (never run)",
            ),
        ] {
            let names: Vec<&str> = self
                .unstarted
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|&(_, i)| self.names.get(i).map_or("?", String::as_str))
                .collect();
            if names.is_empty() {
                continue;
            }
            let _ = writeln!(
                self.pending_err,
                "fleetsh: {} {what}: {}",
                summary::count(names.len(), "host"),
                summary::folded_list(&names, 2000)
            );
        }
        self.emit(true);
        if let Some(g) = &self.groups {
            let mut text = Vec::new();
            let _ = g.write(&self.names, &mut text);
            self.pending_out = text;
            self.emit(true);
        }
        let mut text = Vec::new();
        let _ = summary::write(
            &self.tally,
            report,
            signal,
            &self.names,
            kex,
            self.verbose,
            self.merged,
            &mut text,
        );
        if let Some(d) = &self.out_dir {
            let _ = d.write_summary(&mut text);
        }
        if self.out_failed == Some(io::ErrorKind::BrokenPipe) {
            text.extend_from_slice(
                b"fleetsh: standard output was closed by its reader; output after that was discarded\n",
            );
        }
        self.pending_err = text;
        self.emit(true);
    }

    /// The process exit status:
    /// - 128 + the signal's number when a signal cancelled the run (130 for SIGINT, 143 for
    ///   SIGTERM, 129 for SIGHUP);
    /// - with `-S`, the largest remote exit status ([`status::remote_status`]);
    /// - otherwise 0 when every host ran and exited 0, else 1;
    /// - at least 1 when an `--out-dir` file could not be written, or standard output failed
    ///   other than by being closed by its reader.
    pub fn exit_status(&self, signal: Option<i32>) -> u8 {
        if let Some(n) = signal {
            return u8::try_from(128 + n).unwrap_or(255);
        }
        let status = if self.max_exit_status {
            self.tally.max_status()
        } else if self.tally.all_ok() {
            0
        } else {
            1
        };
        let output_lost = self
            .out_failed
            .is_some_and(|k| k != io::ErrorKind::BrokenPipe);
        if status == 0 && (output_lost || self.out_dir.as_ref().is_some_and(OutDir::failed)) {
            1
        } else {
            status
        }
    }
}

/// The longest piece of a line held back waiting for its newline.
const MAX_LINE: usize = 64 * 1024;

/// Per-host partial lines for inline output.
struct Inline {
    partial_out: Vec<Vec<u8>>,
    partial_err: Vec<Vec<u8>>,
    prefix: bool,
    paint_out: Painter,
    paint_err: Painter,
}

impl Inline {
    fn new(hosts: usize, prefix: bool, paint_out: Painter, paint_err: Painter) -> Self {
        Inline {
            partial_out: vec![Vec::new(); hosts],
            partial_err: vec![Vec::new(); hosts],
            prefix,
            paint_out,
            paint_err,
        }
    }

    /// Renders every complete line of `data` as `host: line`, keeping the tail for later.
    fn output(
        &mut self,
        host: usize,
        stream: StreamKind,
        data: &[u8],
        names: &[String],
        out: &mut Vec<u8>,
        err: &mut Vec<u8>,
    ) {
        let (partial, w, paint, style) = match stream {
            StreamKind::Stdout => (&mut self.partial_out, out, self.paint_out, Style::Out),
            StreamKind::Stderr => (&mut self.partial_err, err, self.paint_err, Style::Err),
        };
        let Some(buf) = partial.get_mut(host) else {
            return;
        };
        buf.extend_from_slice(data);
        let name = names.get(host).map_or("?", String::as_str);
        let mut start = 0;
        while let Some(pos) = buf
            .get(start..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'))
        {
            let line = buf.get(start..start + pos).unwrap_or_default();
            self::line(w, self.prefix.then_some(name), paint, style, line);
            start += pos + 1;
        }
        buf.drain(..start);
        // A line without a newline for megabytes is printed in pieces, so it cannot grow
        // memory without bound.
        while buf.len() >= MAX_LINE {
            let piece: Vec<u8> = buf.drain(..MAX_LINE).collect();
            self::line(w, self.prefix.then_some(name), paint, style, &piece);
        }
    }

    /// Renders a host's unterminated last lines and its failure, if any.
    fn finish(&mut self, r: &HostResult, names: &[String], out: &mut Vec<u8>, err: &mut Vec<u8>) {
        let name = names.get(r.index).map_or("?", String::as_str);
        let prefix = self.prefix.then_some(name);
        if let Some(tail) = self.partial_out.get_mut(r.index).map(std::mem::take)
            && !tail.is_empty()
        {
            line(out, prefix, self.paint_out, Style::Out, &tail);
        }
        if let Some(tail) = self.partial_err.get_mut(r.index).map(std::mem::take)
            && !tail.is_empty()
        {
            line(err, prefix, self.paint_err, Style::Err, &tail);
        }
        let note = match r.outcome() {
            Outcome::Ok => return,
            Outcome::Exit(code) => format!("[exit {code}]"),
            Outcome::Signal(sig) => format!("[killed by signal {sig}]"),
            Outcome::Failed(kind) => match &r.error {
                Some(e) => format!("[{kind}] {}", e.message),
                None => format!("[{kind}]"),
            },
        };
        // The note names the host even with -N: it says which host failed.
        line(
            err,
            Some(name),
            self.paint_err,
            Style::Note,
            note.as_bytes(),
        );
    }
}

/// Appends `prefix: line\n` (or `line\n`), dropping a trailing `\r`; invalid UTF-8 is replaced.
fn line(w: &mut Vec<u8>, prefix: Option<&str>, paint: Painter, style: Style, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(prefix) = prefix {
        paint.prefix(w, prefix, style);
        w.extend_from_slice(b": ");
    }
    let text = String::from_utf8_lossy(line);
    if style == Style::Note {
        paint.note(w, &text);
    } else {
        w.extend_from_slice(text.as_bytes());
    }
    w.push(b'\n');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::status::remote_status;
    use super::*;
    use fleetsh::{ErrorKind, HostError};

    fn result(exit: Option<u32>, signal: Option<&str>, error: Option<ErrorKind>) -> HostResult {
        let mut r = HostResult::failed(
            0,
            HostTarget::new("h"),
            HostError::new(ErrorKind::Auth, "x"),
        );
        r.error = error.map(|k| HostError::new(k, "m"));
        r.exit_code = exit;
        r.signal = signal.map(str::to_string);
        r
    }

    #[test]
    fn remote_status_is_what_ssh_would_exit_with() {
        assert_eq!(remote_status(&result(Some(0), None, None)), 0);
        assert_eq!(remote_status(&result(Some(3), None, None)), 3);
        assert_eq!(remote_status(&result(Some(300), None, None)), 255);
        assert_eq!(remote_status(&result(None, Some("KILL"), None)), 137);
        assert_eq!(remote_status(&result(None, Some("TERM"), None)), 143);
        assert_eq!(remote_status(&result(None, Some("WINCH"), None)), 255);
        assert_eq!(
            remote_status(&result(None, None, Some(ErrorKind::Connect))),
            255
        );
        assert_eq!(
            remote_status(&result(None, None, None)),
            255,
            "no status at all"
        );
    }

    #[test]
    fn inline_lines_prefix_and_tail() {
        let names = vec!["web1".to_string()];
        let mut inline = Inline::new(1, true, Painter::OFF, Painter::OFF);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        inline.output(
            0,
            StreamKind::Stdout,
            b"a\nb\r\npart",
            &names,
            &mut out,
            &mut err,
        );
        inline.output(0, StreamKind::Stderr, b"oops\n", &names, &mut out, &mut err);
        assert_eq!(out, b"web1: a\nweb1: b\n");
        assert_eq!(err, b"web1: oops\n");
        inline.finish(&result(Some(4), None, None), &names, &mut out, &mut err);
        assert_eq!(out, b"web1: a\nweb1: b\nweb1: part\n");
        assert_eq!(err, b"web1: oops\nweb1: [exit 4]\n");
    }

    #[test]
    fn inline_without_prefix_keeps_the_host_in_notes() {
        let names = vec!["web1".to_string()];
        let mut inline = Inline::new(1, false, Painter::OFF, Painter::OFF);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        inline.output(0, StreamKind::Stdout, b"a\n", &names, &mut out, &mut err);
        inline.output(0, StreamKind::Stderr, b"e\n", &names, &mut out, &mut err);
        inline.finish(
            &result(None, Some("KILL"), None),
            &names,
            &mut out,
            &mut err,
        );
        assert_eq!(out, b"a\n");
        assert_eq!(err, b"e\nweb1: [killed by signal KILL]\n");
    }
}

//! Presentation: inline lines, JSON lines, the summary.

use std::io::{self, BufWriter, Stderr, Stdout, Write};
use std::time::Duration;

use fleetsh::{Event, HostResult, HostTarget, Outcome, Report, StreamKind};
use serde_json::{Value, json};

use crate::args::{OutputMode, RunArgs};

/// Prints a run's events and its end as the flags ask.
pub struct Printer {
    mode: OutputMode,
    out: BufWriter<Stdout>,
    err: Stderr,
    inline: Inline,
}

impl Printer {
    pub fn new(args: &RunArgs, hosts: &[HostTarget]) -> Self {
        Printer {
            mode: args.output,
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            err: io::stderr(),
            inline: Inline::new(hosts),
        }
    }

    /// One event; `remaining` is the number of hosts still without a result.
    pub fn event(&mut self, ev: &Event, remaining: usize) -> io::Result<()> {
        match ev {
            Event::Output { host, stream, data } if self.mode == OutputMode::Inline => {
                self.inline
                    .output(*host, *stream, data, &mut self.out, &mut self.err)?;
            }
            Event::Finished(r) => match self.mode {
                OutputMode::Inline => self.inline.finish(r, &mut self.out, &mut self.err)?,
                OutputMode::Json => {
                    serde_json::to_writer(&mut self.out, &json_result(r))?;
                    self.out.write_all(b"\n")?;
                }
            },
            _ => {}
        }
        if remaining == 0 || self.mode == OutputMode::Inline {
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// After the last event: the summary on stderr.
    pub fn finish(&mut self, report: &Report, cancelled: bool) -> io::Result<()> {
        self.out.flush()?;
        summary(report, cancelled, &mut self.err)
    }

    /// 0 when every host ran and exited 0, 1 when any failed or exited non-zero, 130 when
    /// interrupted.
    pub fn exit_status(&self, report: &Report, cancelled: bool) -> u8 {
        if cancelled {
            130
        } else if report.all_ok() {
            0
        } else {
            1
        }
    }
}

/// Per-host partial lines for inline output.
pub struct Inline {
    prefixes: Vec<String>,
    partial_out: Vec<Vec<u8>>,
    partial_err: Vec<Vec<u8>>,
}

impl Inline {
    pub fn new(hosts: &[HostTarget]) -> Self {
        Inline {
            prefixes: hosts.iter().map(|h| h.to_string()).collect(),
            partial_out: vec![Vec::new(); hosts.len()],
            partial_err: vec![Vec::new(); hosts.len()],
        }
    }

    /// Prints every complete line of `data` as `host: line`, keeping the tail for later.
    pub fn output(
        &mut self,
        host: usize,
        stream: StreamKind,
        data: &[u8],
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> io::Result<()> {
        let (buf, w): (&mut Vec<u8>, &mut dyn Write) = match stream {
            StreamKind::Stdout => (&mut self.partial_out[host], out),
            StreamKind::Stderr => (&mut self.partial_err[host], err),
        };
        buf.extend_from_slice(data);
        let prefix = &self.prefixes[host];
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + pos];
            write_line(w, prefix, line)?;
            start += pos + 1;
        }
        buf.drain(..start);
        Ok(())
    }

    /// Flushes a host's unterminated last lines and reports a failure inline.
    pub fn finish(
        &mut self,
        r: &HostResult,
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> io::Result<()> {
        let prefix = &self.prefixes[r.index];
        let tail = std::mem::take(&mut self.partial_out[r.index]);
        if !tail.is_empty() {
            write_line(out, prefix, &tail)?;
        }
        let tail = std::mem::take(&mut self.partial_err[r.index]);
        if !tail.is_empty() {
            write_line(err, prefix, &tail)?;
        }
        match r.outcome() {
            Outcome::Ok => {}
            Outcome::Exit(code) => writeln!(err, "{prefix}: [exit {code}]")?,
            Outcome::Signal(sig) => writeln!(err, "{prefix}: [killed by signal {sig}]")?,
            Outcome::Failed(_) => {
                if let Some(e) = &r.error {
                    writeln!(err, "{prefix}: [{}] {}", e.kind, e.message)?;
                }
            }
        }
        Ok(())
    }
}

fn write_line(w: &mut dyn Write, prefix: &str, line: &[u8]) -> io::Result<()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    w.write_all(prefix.as_bytes())?;
    w.write_all(b": ")?;
    w.write_all(&String::from_utf8_lossy(line).into_owned().into_bytes())?;
    w.write_all(b"\n")
}

fn ms(d: Option<Duration>) -> Value {
    match d {
        Some(d) => json!((d.as_secs_f64() * 1e6).round() / 1e3),
        None => Value::Null,
    }
}

/// The JSON object of one host's result.
pub fn json_result(r: &HostResult) -> Value {
    let stdout = String::from_utf8(r.stdout.clone());
    let stderr = String::from_utf8(r.stderr.clone());
    let lossy = stdout.is_err() || stderr.is_err();
    let text = |s: Result<String, std::string::FromUtf8Error>| match s {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    json!({
        "host": r.target.host,
        "port": r.target.port,
        "user": r.target.user,
        "exit_code": r.exit_code,
        "signal": r.signal,
        "stdout": text(stdout),
        "stderr": text(stderr),
        "truncated": r.truncated,
        "lossy": lossy,
        "error": r.error.as_ref().map(|e| json!({"kind": e.kind.as_str(), "message": e.message})),
        "attempts": r.attempts,
        "timings_ms": {
            "connect": ms(r.timings.connect),
            "handshake_auth": ms(r.timings.handshake_auth),
            "exec": ms(r.timings.exec),
            "first_byte": ms(r.timings.first_byte),
            "total": ms(Some(r.timings.total)),
        },
    })
}

/// The end-of-run summary: counts by outcome, wall time, the slowest hosts.
pub fn summary(report: &Report, cancelled: bool, w: &mut impl Write) -> io::Result<()> {
    let n = report.results.len();
    let mut parts = Vec::new();
    for (outcome, count) in report.outcome_counts() {
        let name = match outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::Exit(c) => format!("exit {c}"),
            Outcome::Signal(s) => format!("signal {s}"),
            Outcome::Failed(k) => k.as_str().to_string(),
        };
        parts.push(format!("{name}: {count}"));
    }
    let secs = report.wall.as_secs_f64();
    writeln!(
        w,
        "fleetsh: {n} hosts in {secs:.2}s ({:.0} hosts/s) on {} shards{}; {}",
        n as f64 / secs.max(1e-9),
        report.shards,
        if cancelled { ", cancelled" } else { "" },
        parts.join(", ")
    )?;
    let mut slow: Vec<&HostResult> = report.results.iter().map(|r| r.as_ref()).collect();
    slow.sort_by_key(|r| std::cmp::Reverse(r.timings.total));
    let slow: Vec<String> = slow
        .iter()
        .take(5)
        .map(|r| format!("{} {:.3}s", r.target.host, r.timings.total.as_secs_f64()))
        .collect();
    if !slow.is_empty() {
        writeln!(w, "fleetsh: slowest: {}", slow.join(", "))?;
    }
    Ok(())
}

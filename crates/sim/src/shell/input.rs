//! Builtins about the session rather than files: `read`, `wc`, `env`, `tty`, `id`.

use super::builtins::{File, open};
use super::context::{CHUNK, Closed, Context, Flow, Io, MAX_LINE, Sink};
use super::syntax::is_name;

use std::fmt::Write as _;

/// `read [-r] [NAME...]`: one line of stdin into variables (`REPLY` without names).
///
/// Fields are split on blanks, the last name gets the rest of the line. Backslashes are
/// kept as they are (as with `-r`). Status 1 at the end of input, as in `sh`.
pub(super) async fn read<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let mut names = Vec::new();
    for arg in args {
        if arg == "-r" {
            continue;
        }
        if arg.starts_with('-') {
            io.err_line(format!("sh: read: Illegal option {arg}"))
                .await?;
            return Ok(Flow::Next(2));
        }
        if !is_name(arg) {
            io.err_line(format!("sh: read: '{arg}': not a valid identifier"))
                .await?;
            return Ok(Flow::Next(2));
        }
        names.push(arg.as_str());
    }
    if names.is_empty() {
        names.push("REPLY");
    }
    let line = ctx.stdin.line(MAX_LINE).await;
    if let Some(line) = &line {
        io.echo_input(ctx.pty, line).await?;
    }
    let line = line.unwrap_or_default();
    let complete = line.ends_with(b"\n");
    let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
    let mut rest = text.trim_matches([' ', '\t']);
    let count = names.len();
    for (i, name) in names.into_iter().enumerate() {
        let value = if i + 1 == count {
            rest
        } else {
            let (field, tail) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            rest = tail.trim_start_matches([' ', '\t']);
            field
        };
        ctx.vars.insert(name.to_owned(), value.to_owned());
    }
    Ok(Flow::Next(if complete { 0 } else { 1 }))
}

/// Line, word and byte counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
    /// The last byte counted was part of a word.
    in_word: bool,
}

impl Counts {
    /// Counts one more piece of input.
    fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        for b in data {
            if *b == b'\n' {
                self.lines += 1;
            }
            let blank = b.is_ascii_whitespace();
            if !blank && !self.in_word {
                self.words += 1;
            }
            self.in_word = !blank;
        }
    }
}

/// `wc [-clw] [FILE...]`: counts of stdin (`-` or no file) or of virtual files.
pub(super) async fn wc<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let (mut lines, mut words, mut bytes) = (false, false, false);
    let mut files = Vec::new();
    for arg in args {
        match arg.strip_prefix('-') {
            Some(flags) if !flags.is_empty() => {
                for flag in flags.chars() {
                    match flag {
                        'l' => lines = true,
                        'w' => words = true,
                        'c' | 'm' => bytes = true,
                        other => {
                            io.err_line(format!("wc: invalid option -- '{other}'"))
                                .await?;
                            return Ok(Flow::Next(1));
                        }
                    }
                }
            }
            _ => files.push(arg.as_str()),
        }
    }
    if !(lines || words || bytes) {
        (lines, words, bytes) = (true, true, true);
    }
    let show = |c: &Counts, name: Option<&str>| {
        let picked: Vec<u64> = [(lines, c.lines), (words, c.words), (bytes, c.bytes)]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect();
        let mut out = String::new();
        if let [one] = picked.as_slice() {
            let _ = write!(out, "{one}");
        } else {
            let cols: Vec<String> = picked.iter().map(|n| format!("{n:>7}")).collect();
            out.push_str(&cols.join(" "));
        }
        if let Some(name) = name {
            let _ = write!(out, " {name}");
        }
        out.push('\n');
        out.into_bytes()
    };

    if files.is_empty() {
        let counts = count_stdin(ctx, io).await?;
        io.out(show(&counts, None)).await?;
        return Ok(Flow::Next(0));
    }
    let mut status = 0;
    let mut total = Counts::default();
    for path in &files {
        let counts = if *path == "-" {
            count_stdin(ctx, io).await?
        } else {
            let mut counts = Counts::default();
            match open(path, &ctx.host) {
                Some(File::Static(data)) => counts.add(data),
                Some(File::Owned(data)) => counts.add(&data),
                Some(File::Zeros | File::Random) => {
                    io.err_line(format!("wc: {path}: endless files are not simulated"))
                        .await?;
                    status = 1;
                    continue;
                }
                None => {
                    io.err_line(format!("wc: {path}: No such file or directory"))
                        .await?;
                    status = 1;
                    continue;
                }
            }
            counts
        };
        total.lines += counts.lines;
        total.words += counts.words;
        total.bytes += counts.bytes;
        io.out(show(&counts, Some(path))).await?;
    }
    if files.len() > 1 {
        io.out(show(&total, Some("total"))).await?;
    }
    Ok(Flow::Next(status))
}

/// Reads stdin to its end, counting.
async fn count_stdin<S: Sink>(ctx: &mut Context, io: &mut Io<'_, S>) -> Result<Counts, Closed> {
    let mut counts = Counts::default();
    while let Some(chunk) = ctx.stdin.chunk(CHUNK).await {
        io.echo_input(ctx.pty, &chunk).await?;
        counts.add(&chunk);
    }
    Ok(counts)
}

/// `env`: the environment the client set, `NAME=value` per line, sorted by name.
pub(super) async fn env<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    if !args.is_empty() {
        // `NAME=value CMD` works without `env`; the rest of env(1) is not simulated.
        io.err_line("env: arguments are not simulated (use NAME=value CMD)".into())
            .await?;
        return Ok(Flow::Next(125));
    }
    let mut out = String::new();
    for (name, value) in &ctx.env {
        let _ = writeln!(out, "{name}={value}");
    }
    io.out(out.into_bytes()).await?;
    Ok(Flow::Next(0))
}

/// `tty`: `/dev/pts/0` with a pty, `not a tty` (status 1) without.
pub(super) async fn tty<S: Sink>(
    _args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    if ctx.pty {
        io.out(&b"/dev/pts/0\n"[..]).await?;
        Ok(Flow::Next(0))
    } else {
        io.out(&b"not a tty\n"[..]).await?;
        Ok(Flow::Next(1))
    }
}

/// `id [-u | -un | -n -u]`: uid 0 for root, 1000 for anyone else.
pub(super) async fn id<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let uid = if ctx.user == "root" { 0 } else { 1000 };
    let flags: String = args
        .iter()
        .filter_map(|a| a.strip_prefix('-'))
        .collect::<Vec<_>>()
        .concat();
    let line = match (flags.contains('u'), flags.contains('n')) {
        (true, true) => ctx.user.clone(),
        (true, false) => uid.to_string(),
        _ => format!(
            "uid={uid}({user}) gid={uid}({user}) groups={uid}({user})",
            user = ctx.user
        ),
    };
    io.out(format!("{line}\n").into_bytes()).await?;
    Ok(Flow::Next(0))
}

//! The commands the simulated hosts know (`echo`, `cat`, `head`, `seq`, `kill`, `ssh-add`,
//! files such as `/srv/data/26k.txt`), each writing to the command's output.

use super::context::{CHUNK, Closed, Context, FILE_26K_LEN, Flow, Io, MAX_LINE, ShellHost, Sink};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

/// One chunk of zeros, the source of `/dev/zero`.
pub(super) static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// `ssh-add -l` / `ssh-add -L`: lists the forwarded agent's identities, as OpenSSH does.
pub(super) async fn ssh_add<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let long = match args {
        [flag] if flag == "-l" => false,
        [flag] if flag == "-L" => true,
        _ => {
            io.err_line("ssh-add: only `ssh-add -l` and `ssh-add -L` are simulated".into())
                .await?;
            return Ok(Flow::Next(2));
        }
    };
    let Some(agent) = ctx.agent.clone() else {
        io.err_line("Could not open a connection to your authentication agent.".into())
            .await?;
        return Ok(Flow::Next(2));
    };
    match agent.identities().await {
        Ok(keys) if keys.is_empty() => {
            io.out(&b"The agent has no identities.\n"[..]).await?;
            Ok(Flow::Next(1))
        }
        Ok(keys) => {
            let mut text = String::new();
            for key in keys {
                text.push_str(if long { &key.public } else { &key.listing });
                text.push('\n');
            }
            io.out(text.into_bytes()).await?;
            Ok(Flow::Next(0))
        }
        Err(why) => {
            io.err_line(format!("error fetching identities: {why}"))
                .await?;
            Ok(Flow::Next(1))
        }
    }
}

/// `echo [-n] ARGS...`
pub(super) async fn echo<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
    let mut newline = true;
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first.len() >= 2 && first.starts_with('-') && first.bytes().skip(1).all(|b| b == b'n') {
            newline = false;
            rest = tail;
        } else {
            break;
        }
    }
    let mut line = rest.join(" ");
    if newline {
        line.push('\n');
    }
    io.out(line.into_bytes()).await?;
    Ok(Flow::Next(0))
}

/// `exit [N]`: ends the script (status mod 256, the last status without N).
pub(super) async fn exit<S: Sink>(
    args: &[String],
    status: u32,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let Some(arg) = args.first() else {
        return Ok(Flow::Exit(status));
    };
    match arg.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Flow::Exit(u32::try_from(n.rem_euclid(256)).unwrap_or(0))),
        _ => {
            io.err_line(format!("sh: exit: Illegal number: {arg}"))
                .await?;
            Ok(Flow::Exit(2))
        }
    }
}

/// Parses `sleep`'s argument: decimal seconds with an optional `s`, `m`, `h` or `d` suffix.
pub(super) fn parse_sleep(arg: &str) -> Option<Duration> {
    let (num, unit) = match arg.char_indices().last() {
        Some((i, 's')) => (arg.get(..i)?, 1.0),
        Some((i, 'm')) => (arg.get(..i)?, 60.0),
        Some((i, 'h')) => (arg.get(..i)?, 3600.0),
        Some((i, 'd')) => (arg.get(..i)?, 86400.0),
        _ => (arg, 1.0),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = num.parse().ok()?;
    Duration::try_from_secs_f64(secs * unit).ok()
}

/// `sleep SECS...` on the tokio clock.
pub(super) async fn sleep<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
    if args.is_empty() {
        io.err_line("sleep: missing operand".into()).await?;
        return Ok(Flow::Next(1));
    }
    let mut total = Duration::ZERO;
    for arg in args {
        match parse_sleep(arg) {
            Some(d) => total = total.saturating_add(d),
            None => {
                io.err_line(format!("sleep: invalid time interval '{arg}'"))
                    .await?;
                return Ok(Flow::Next(1));
            }
        }
    }
    tokio::time::sleep(total).await;
    Ok(Flow::Next(0))
}

/// The deterministic 26,000-byte text file `/srv/data/26k.txt`: 400 lines of 65 bytes.
pub(crate) fn file_26k() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut out = Vec::with_capacity(FILE_26K_LEN);
        let mut line = 0usize;
        while out.len() < FILE_26K_LEN {
            line += 1;
            // "00001 " + 58 characters + "\n" = 65 bytes.
            out.extend_from_slice(format!("{line:05} ").as_bytes());
            for i in 0..58 {
                let b = ALPHABET
                    .get((line * 7 + i) % ALPHABET.len())
                    .copied()
                    .unwrap_or(b'x');
                out.push(b);
            }
            out.push(b'\n');
        }
        out.truncate(FILE_26K_LEN);
        out
    })
}

/// `/etc/os-release`.
pub(super) const OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Fleetsh Sim Linux 12 (simulated)\"
NAME=\"Fleetsh Sim Linux\"
VERSION_ID=\"12\"
VERSION=\"12 (simulated)\"
ID=fleetsh-sim
ID_LIKE=debian
HOME_URL=\"https://example.invalid/fleetsh\"
";

/// A virtual file's content.
pub(super) enum File {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    Zeros,
    Random,
}

/// Opens a virtual file; `None` if it does not exist.
pub(super) fn open(path: &str, host: &ShellHost) -> Option<File> {
    Some(match path {
        "/etc/hostname" => File::Owned(format!("{}\n", host.name).into_bytes()),
        "/etc/os-release" | "/usr/lib/os-release" => File::Static(OS_RELEASE),
        "/srv/data/26k.txt" => File::Static(file_26k()),
        "/dev/null" => File::Static(b""),
        "/dev/zero" => File::Zeros,
        "/dev/urandom" | "/dev/random" => File::Random,
        _ => return None,
    })
}

/// SplitMix64: a small deterministic generator for `/dev/urandom`.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    /// The next 64 pseudo-random bits.
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes up to `limit` bytes of `file` to stdout (`None`: all of it; endless files need a limit).
pub(super) async fn write_file<S: Sink>(
    file: File,
    limit: Option<u64>,
    io: &mut Io<'_, S>,
) -> Result<(), Closed> {
    match file {
        File::Static(data) => io.out_static(data, limit.unwrap_or(u64::MAX)).await,
        File::Owned(data) => {
            let len = usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
            let mut data = data;
            data.truncate(len);
            io.out(data).await
        }
        File::Zeros => {
            // Without a limit, `cat /dev/zero` would never end: treat it as empty.
            let mut left = limit.unwrap_or(0);
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                io.out(ZEROS.get(..n).unwrap_or_default()).await?;
                left -= n as u64;
            }
            Ok(())
        }
        File::Random => {
            let mut rng = SplitMix64(0x5EED_F1EE_75A1_0000);
            let mut left = limit.unwrap_or(0);
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let mut buf = Vec::with_capacity(n + 8);
                while buf.len() < n {
                    buf.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
                buf.truncate(n);
                io.out(buf).await?;
                left -= n as u64;
            }
            Ok(())
        }
    }
}

/// `cat [FILE...]`: `-` or no file at all copies stdin to stdout until its end.
pub(super) async fn cat<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let stdin_only = [String::from("-")];
    let paths = if args.is_empty() {
        &stdin_only[..]
    } else {
        args
    };
    let mut status = 0;
    for path in paths {
        if path == "-" {
            copy_stdin(ctx, io, u64::MAX).await?;
            continue;
        }
        match open(path, &ctx.host) {
            Some(File::Zeros | File::Random) => {
                io.err_line(format!("cat: {path}: endless files are not simulated"))
                    .await?;
                status = 1;
            }
            Some(file) => write_file(file, None, io).await?,
            None => {
                io.err_line(format!("cat: {path}: No such file or directory"))
                    .await?;
                status = 1;
            }
        }
    }
    Ok(Flow::Next(status))
}

/// Copies up to `limit` bytes of stdin to stdout, as they come.
pub(super) async fn copy_stdin<S: Sink>(
    ctx: &mut Context,
    io: &mut Io<'_, S>,
    limit: u64,
) -> Result<(), Closed> {
    let mut left = limit;
    while left > 0 {
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
        let Some(chunk) = ctx.stdin.chunk(max).await else {
            break;
        };
        left -= chunk.len() as u64;
        io.echo_input(ctx.pty, &chunk).await?;
        io.out(chunk).await?;
    }
    Ok(())
}

/// `head [-c N | -n N] [FILE...]`: `-` or no file at all reads stdin.
pub(super) async fn head<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let mut bytes: Option<u64> = None;
    let mut lines: Option<u64> = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, value) = if arg == "-c" || arg == "-n" {
            (arg.as_str(), it.next().map(String::as_str))
        } else if let Some(v) = arg.strip_prefix("-c") {
            ("-c", Some(v))
        } else if let Some(v) = arg.strip_prefix("-n") {
            ("-n", Some(v))
        } else if arg.starts_with('-') && arg.len() > 1 {
            io.err_line(format!(
                "head: invalid option -- '{}'",
                arg.trim_start_matches('-')
            ))
            .await?;
            return Ok(Flow::Next(1));
        } else {
            files.push(arg.as_str());
            continue;
        };
        let Some(n) = value.and_then(|v| v.parse::<u64>().ok()) else {
            let what = if flag == "-c" { "bytes" } else { "lines" };
            io.err_line(format!(
                "head: invalid number of {what}: '{}'",
                value.unwrap_or_default()
            ))
            .await?;
            return Ok(Flow::Next(1));
        };
        if flag == "-c" {
            bytes = Some(n);
            lines = None;
        } else {
            lines = Some(n);
            bytes = None;
        }
    }
    if files.is_empty() {
        files.push("-");
    }
    let mut status = 0;
    for path in files {
        if path == "-" {
            match bytes {
                Some(n) => copy_stdin(ctx, io, n).await?,
                None => {
                    for _ in 0..lines.unwrap_or(10) {
                        let Some(line) = ctx.stdin.line(MAX_LINE).await else {
                            break;
                        };
                        io.echo_input(ctx.pty, &line).await?;
                        io.out(line).await?;
                    }
                }
            }
            continue;
        }
        let Some(file) = open(path, &ctx.host) else {
            io.err_line(format!(
                "head: cannot open '{path}' for reading: No such file or directory"
            ))
            .await?;
            status = 1;
            continue;
        };
        let limit = match (bytes, lines, &file) {
            (Some(n), _, _) => n,
            (None, lines, File::Static(data)) => line_prefix(data, lines.unwrap_or(10)),
            (None, lines, File::Owned(data)) => line_prefix(data, lines.unwrap_or(10)),
            // No newlines in /dev/zero; random data: 10 lines' worth is not worth simulating.
            (None, _, File::Zeros | File::Random) => 0,
        };
        write_file(file, Some(limit), io).await?;
    }
    Ok(Flow::Next(status))
}

/// Length of the first `lines` lines of `data`.
pub(super) fn line_prefix(data: &[u8], lines: u64) -> u64 {
    if lines == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return i as u64 + 1;
            }
        }
    }
    data.len() as u64
}

/// `seq [FIRST [STEP]] LAST`, streamed in chunks.
pub(super) async fn seq<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
    let mut nums = Vec::with_capacity(3);
    for arg in args {
        match arg.parse::<i64>() {
            Ok(n) => nums.push(n),
            Err(_) => {
                io.err_line(format!("seq: invalid floating point argument: '{arg}'"))
                    .await?;
                return Ok(Flow::Next(1));
            }
        }
    }
    let (first, step, last) = match nums.as_slice() {
        [last] => (1, 1, *last),
        [first, last] => (*first, 1, *last),
        [first, step, last] if *step != 0 => (*first, *step, *last),
        [_, _, _] => {
            io.err_line("seq: invalid Zero increment value: '0'".into())
                .await?;
            return Ok(Flow::Next(1));
        }
        [] => {
            io.err_line("seq: missing operand".into()).await?;
            return Ok(Flow::Next(1));
        }
        _ => {
            io.err_line(format!(
                "seq: extra operand '{}'",
                args.get(3).map(String::as_str).unwrap_or_default()
            ))
            .await?;
            return Ok(Flow::Next(1));
        }
    };
    let mut buf = String::with_capacity(CHUNK + 32);
    let mut n = first;
    while (step > 0 && n <= last) || (step < 0 && n >= last) {
        let _ = writeln!(buf, "{n}");
        if buf.len() >= CHUNK {
            io.out(std::mem::replace(&mut buf, String::with_capacity(CHUNK + 32)).into_bytes())
                .await?;
        }
        match n.checked_add(step) {
            Some(next) => n = next,
            None => break,
        }
    }
    io.out(buf.into_bytes()).await?;
    Ok(Flow::Next(0))
}

/// Linux signal numbers and names (without `SIG`).
pub(super) const SIGNALS: &[(u32, &str)] = &[
    (1, "HUP"),
    (2, "INT"),
    (3, "QUIT"),
    (4, "ILL"),
    (6, "ABRT"),
    (8, "FPE"),
    (9, "KILL"),
    (10, "USR1"),
    (11, "SEGV"),
    (12, "USR2"),
    (13, "PIPE"),
    (14, "ALRM"),
    (15, "TERM"),
];

/// Parses a signal given by number or name (`9`, `KILL`, `SIGKILL`, `kill`).
pub(super) fn parse_signal(spec: &str) -> Option<&'static str> {
    if let Ok(n) = spec.parse::<u32>() {
        return SIGNALS
            .iter()
            .find(|(num, _)| *num == n)
            .map(|(_, name)| *name);
    }
    let upper = spec.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(_, known)| *known == name)
        .map(|(_, known)| *known)
}

/// `kill [-s SIG | -SIG | -N] PID...`: only `$$` exists, and killing it ends the script.
pub(super) async fn kill<S: Sink>(
    args: &[String],
    host: &ShellHost,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let mut signal = "TERM";
    let mut rest = args;
    if let Some((first, tail)) = rest.split_first() {
        if first == "-s" {
            let Some((spec, tail)) = tail.split_first() else {
                io.err_line("sh: kill: -s: option requires an argument".into())
                    .await?;
                return Ok(Flow::Next(2));
            };
            match parse_signal(spec) {
                Some(s) => signal = s,
                None => {
                    io.err_line(format!("sh: kill: {spec}: invalid signal specification"))
                        .await?;
                    return Ok(Flow::Next(1));
                }
            }
            rest = tail;
        } else if let Some(spec) = first.strip_prefix('-').filter(|s| !s.is_empty()) {
            if spec == "-" {
                rest = tail;
            } else {
                match parse_signal(spec) {
                    Some(s) => signal = s,
                    None => {
                        io.err_line(format!("sh: kill: {spec}: invalid signal specification"))
                            .await?;
                        return Ok(Flow::Next(1));
                    }
                }
                rest = tail;
            }
        }
    }
    if rest.is_empty() {
        io.err_line("sh: kill: usage: kill [-s sigspec | -signum | -sigspec] pid ...".into())
            .await?;
        return Ok(Flow::Next(2));
    }
    let mut status = 0;
    let mut killed = false;
    for pid in rest {
        match pid.parse::<u32>() {
            Ok(p) if p == host.pid => killed = true,
            Ok(_) => {
                io.err_line(format!("sh: kill: ({pid}) - No such process"))
                    .await?;
                status = 1;
            }
            Err(_) => {
                io.err_line(format!(
                    "sh: kill: {pid}: arguments must be process or job IDs"
                ))
                .await?;
                status = 1;
            }
        }
    }
    if killed {
        return Ok(Flow::Killed(signal));
    }
    Ok(Flow::Next(status))
}

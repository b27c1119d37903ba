//! `sudo` and `sh`: builtins that run other commands.

use std::borrow::Cow;

use super::{
    Closed, Context, Fds, Flow, Io, MAX_DEPTH, MAX_LINE, MAX_STDIN_SCRIPT, Sink, home_of, run_argv,
    run_source,
};

/// The usage line `sudo` prints for bad invocations.
const SUDO_USAGE: &str = "usage: sudo [-knS] [-p prompt] [-u user] [--] command [arg ...]";

/// `sudo [-S] [-n] [-p PROMPT] [-u USER] [--] CMD ARGS...`
///
/// 1. Without a configured sudo password: `sudo: a password is required`, status 1.
/// 2. With `-n`, or without `-S` and without a pty: the same failure (nothing to read a
///    password from).
/// 3. The prompt (`-p`, default `[sudo] password for USER: `; `%u`, `%p`, `%h`, `%H`, `%%`
///    expand) goes to stderr; an empty prompt prints nothing.
/// 4. One line of stdin is the password (echoed only with a pty, like any input); the
///    rest of stdin stays for the command.
/// 5. Wrong: `Sorry, try again.` and `sudo: 1 incorrect password attempt`, status 1.
///    Right: CMD runs as USER (default root): `whoami`, `$USER`, `$HOME` follow.
pub(super) async fn sudo<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let mut from_stdin = false;
    let mut non_interactive = false;
    let mut prompt: Option<String> = None;
    let mut target = String::from("root");
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first == "--" {
            rest = tail;
            break;
        }
        let Some(flags) = first.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        rest = tail;
        for (i, flag) in flags.char_indices() {
            match flag {
                'S' => from_stdin = true,
                'n' => non_interactive = true,
                // Cached credentials, environment, HOME: nothing to simulate.
                'k' | 'E' | 'H' => {}
                'p' | 'u' => {
                    let attached = flags.get(i + flag.len_utf8()..).unwrap_or_default();
                    let value = if !attached.is_empty() {
                        attached.to_owned()
                    } else if let Some((value, tail)) = rest.split_first() {
                        rest = tail;
                        value.clone()
                    } else {
                        io.err_line(format!("sudo: option requires an argument -- '{flag}'"))
                            .await?;
                        io.err_line(SUDO_USAGE.into()).await?;
                        return Ok(Flow::Next(1));
                    };
                    if flag == 'p' {
                        prompt = Some(value);
                    } else {
                        target = value;
                    }
                    break;
                }
                other => {
                    io.err_line(format!("sudo: invalid option -- '{other}'"))
                        .await?;
                    io.err_line(SUDO_USAGE.into()).await?;
                    return Ok(Flow::Next(1));
                }
            }
        }
    }
    if rest.is_empty() {
        io.err_line(SUDO_USAGE.into()).await?;
        return Ok(Flow::Next(1));
    }
    let Some(password) = ctx.sudo_password.clone() else {
        io.err_line("sudo: a password is required".into()).await?;
        return Ok(Flow::Next(1));
    };
    if non_interactive {
        io.err_line("sudo: a password is required".into()).await?;
        return Ok(Flow::Next(1));
    }
    if !from_stdin && !ctx.pty {
        io.err_line(
            "sudo: a terminal is required to read the password; either use the -S option \
             to read from standard input or configure an askpass helper"
                .into(),
        )
        .await?;
        io.err_line("sudo: a password is required".into()).await?;
        return Ok(Flow::Next(1));
    }

    let prompt = match prompt {
        Some(p) => expand_prompt(&p, ctx),
        None => format!("[sudo] password for {}: ", ctx.user),
    };
    if !prompt.is_empty() {
        io.err(prompt.into_bytes()).await?;
    }
    let Some(line) = ctx.stdin.line(MAX_LINE).await else {
        io.err_line("sudo: no password was provided".into()).await?;
        return Ok(Flow::Next(1));
    };
    io.echo_input(ctx.pty, &line).await?;
    let given = line.strip_suffix(b"\n").unwrap_or(&line);
    if given != password.as_bytes() {
        io.err(&b"Sorry, try again.\nsudo: 1 incorrect password attempt\n"[..])
            .await?;
        return Ok(Flow::Next(1));
    }

    let saved = ctx.save();
    let invoker = std::mem::replace(&mut ctx.user, target.clone());
    for (name, value) in [
        ("USER", target.clone()),
        ("LOGNAME", target.clone()),
        ("HOME", home_of(&target)),
        ("SUDO_USER", invoker),
    ] {
        ctx.vars.insert(name.to_owned(), value);
    }
    let flow = run_argv(rest, ctx, io).await;
    ctx.restore(saved);
    Ok(match flow? {
        // `exit` is no command sudo could run; whatever it ran ended with this status.
        Flow::Exit(status) => Flow::Next(status),
        other => other,
    })
}

/// Expands sudo's prompt escapes: `%u` / `%p` (user), `%h` / `%H` (host), `%%`.
fn expand_prompt(prompt: &str, ctx: &Context) -> String {
    let mut out = String::with_capacity(prompt.len());
    let mut chars = prompt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let expansion: Cow<'_, str> = match chars.next() {
            Some('u' | 'p') => Cow::Borrowed(&ctx.user),
            Some('h' | 'H') => Cow::Borrowed(&ctx.host.name),
            Some('%') => Cow::Borrowed("%"),
            Some(other) => Cow::Owned(format!("%{other}")),
            None => Cow::Borrowed("%"),
        };
        out.push_str(&expansion);
    }
    out
}

/// `sh [-eux...] -c SCRIPT [NAME ARGS...]`, or `sh` reading its script from stdin.
///
/// The script runs in a subshell: its variables and `exit` stay inside; it shares stdin
/// and the descriptors of the `sh` command. Set options (`-e`, `-u`, `-x`, `-o OPT`, ...)
/// are accepted and ignored; positional parameters are not simulated.
pub(super) async fn sh<S: Sink>(
    args: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let mut command_mode = false;
    let mut operand: Option<&String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            operand = it.next();
            break;
        }
        match arg.strip_prefix(['-', '+']).filter(|f| !f.is_empty()) {
            Some(flags) => {
                command_mode |= arg.starts_with('-') && flags.contains('c');
                if flags.contains('o') {
                    it.next(); // `-o pipefail`: the option's name
                }
            }
            None => {
                operand = Some(arg);
                break;
            }
        }
    }
    let text = match (command_mode, operand) {
        (true, Some(script)) => script.clone(),
        (true, None) => {
            io.err_line("sh: -c: option requires an argument".into())
                .await?;
            return Ok(Flow::Next(2));
        }
        (false, Some(file)) => {
            io.err_line(format!("sh: cannot open {file}: No such file"))
                .await?;
            return Ok(Flow::Next(2));
        }
        (false, None) => {
            let mut script = Vec::new();
            while script.len() < MAX_STDIN_SCRIPT {
                let Some(chunk) = ctx.stdin.chunk(MAX_STDIN_SCRIPT - script.len()).await else {
                    break;
                };
                io.echo_input(ctx.pty, &chunk).await?;
                script.extend_from_slice(&chunk);
            }
            String::from_utf8_lossy(&script).into_owned()
        }
    };
    if ctx.depth >= MAX_DEPTH {
        io.err_line("sh: too many nested shells".into()).await?;
        return Ok(Flow::Next(2));
    }

    let saved = ctx.save();
    ctx.status = 0;
    ctx.depth += 1;
    let fds = Fds {
        out: io.out,
        err: io.err,
    };
    let flow = run_source(&text, ctx, &mut *io.sink, fds).await;
    ctx.depth -= 1;
    ctx.restore(saved);
    Ok(match flow? {
        Flow::Exit(status) => Flow::Next(status),
        other => other,
    })
}

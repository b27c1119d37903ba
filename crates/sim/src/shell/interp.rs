//! Running a parsed script: expansion, redirections, `&&`/`||`, the dispatch of commands to
//! the builtins, and the builtins that run other commands (`sh`, `sudo`), which recurse into
//! the interpreter.

use super::builtins::{cat, echo, exit, head, kill, seq, sleep, ssh_add};
use super::context::{
    BoxFuture, Closed, Context, Exit, Fds, Flow, Io, MAX_DEPTH, MAX_LINE, MAX_STDIN_SCRIPT, Sink,
    Target, home_of,
};
use super::syntax::{Command, Op, Redirect, Script, Seg, SyntaxError, Word, assignment, parse};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Runs a script to its end (or until the sink is closed).
pub(crate) async fn run<S: Sink>(
    script: &str,
    ctx: &mut Context,
    sink: &mut S,
) -> Result<Exit, Closed> {
    Ok(match run_source(script, ctx, sink, Fds::default()).await? {
        Flow::Next(status) | Flow::Exit(status) => Exit::Status(status),
        Flow::Killed(signal) => Exit::Signal(signal),
    })
}

/// Parses and runs script text; a syntax error is reported like `sh` does (status 2).
pub(super) async fn run_source<S: Sink>(
    text: &str,
    ctx: &mut Context,
    sink: &mut S,
    fds: Fds,
) -> Result<Flow, Closed> {
    match parse(text) {
        Ok(script) => run_script(&script, ctx, sink, fds).await,
        Err(SyntaxError(message)) => {
            let mut io = Io {
                sink,
                out: fds.out,
                err: fds.err,
            };
            io.err_line(format!("sh: {message}")).await?;
            Ok(Flow::Next(2))
        }
    }
}

/// Runs a parsed script: `Next` with the last status at its end, or how it stopped early.
pub(super) fn run_script<'a, S: Sink>(
    script: &'a Script,
    ctx: &'a mut Context,
    sink: &'a mut S,
    fds: Fds,
) -> BoxFuture<'a, Result<Flow, Closed>> {
    Box::pin(async move {
        for (op, command) in &script.commands {
            let run = match op {
                Op::Seq => true,
                Op::And => ctx.status == 0,
                Op::Or => ctx.status != 0,
            };
            if !run {
                continue;
            }
            match run_command(command, ctx, sink, fds).await? {
                Flow::Next(status) => ctx.status = status,
                stop => return Ok(stop),
            }
        }
        Ok(Flow::Next(ctx.status))
    })
}

/// Expands a word's `$` segments.
pub(super) fn expand(word: &Word, ctx: &Context) -> String {
    let mut out = String::new();
    for seg in &word.segs {
        match seg {
            Seg::Lit(s) => out.push_str(s),
            Seg::Pid => {
                let _ = write!(out, "{}", ctx.host.pid);
            }
            Seg::Status => {
                let _ = write!(out, "{}", ctx.status);
            }
            Seg::Var(name) => {
                if let Some(value) = ctx.var(name) {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

/// Runs one simple command: redirections, expansion, assignments, then the builtin.
pub(super) async fn run_command<S: Sink>(
    command: &Command,
    ctx: &mut Context,
    sink: &mut S,
    fds: Fds,
) -> Result<Flow, Closed> {
    let mut io = Io {
        sink,
        out: fds.out,
        err: fds.err,
    };
    for redirect in &command.redirects {
        let (fd, target) = match redirect {
            Redirect::Dup { from, to } => {
                let target = match to {
                    1 => io.out,
                    2 => io.err,
                    _ => {
                        io.err_line(format!("sh: {to}: Bad file descriptor"))
                            .await?;
                        return Ok(Flow::Next(2));
                    }
                };
                (*from, target)
            }
            Redirect::File { fd, path } => {
                let path = expand(path, ctx);
                let target = match path.as_str() {
                    "/dev/null" => Target::Null,
                    "/dev/stdout" => fds.out,
                    "/dev/stderr" => fds.err,
                    _ => {
                        io.err_line(format!("sh: cannot create {path}: Read-only file system"))
                            .await?;
                        return Ok(Flow::Next(2));
                    }
                };
                (*fd, target)
            }
        };
        match fd {
            1 => io.out = target,
            2 => io.err = target,
            _ => {
                io.err_line(format!("sh: {fd}: Bad file descriptor"))
                    .await?;
                return Ok(Flow::Next(2));
            }
        }
    }

    let argv: Vec<String> = command.words.iter().map(|w| expand(w, ctx)).collect();
    // Leading `NAME=value` words: shell variables, or, before a command, its environment.
    let assignments = argv
        .iter()
        .take_while(|word| assignment(word).is_some())
        .count();
    let (assigns, argv) = argv.split_at(assignments);
    let pairs = assigns.iter().filter_map(|word| assignment(word));
    if argv.is_empty() {
        for (name, value) in pairs {
            ctx.vars.insert(name.to_owned(), value.to_owned());
        }
        return Ok(Flow::Next(0));
    }
    if assigns.is_empty() {
        return run_argv(argv, ctx, &mut io).await;
    }
    let saved = ctx.env.clone();
    for (name, value) in pairs {
        ctx.env.insert(name.to_owned(), value.to_owned());
    }
    let flow = run_argv(argv, ctx, &mut io).await;
    ctx.env = saved;
    flow
}

/// Runs a builtin with its arguments. Boxed: `sudo sudo ...` recurses.
pub(super) fn run_argv<'a, 'io, S: Sink>(
    argv: &'a [String],
    ctx: &'a mut Context,
    io: &'a mut Io<'io, S>,
) -> BoxFuture<'a, Result<Flow, Closed>> {
    Box::pin(run_builtin(argv, ctx, io))
}

/// See [`run_argv`].
pub(super) async fn run_builtin<S: Sink>(
    argv: &[String],
    ctx: &mut Context,
    io: &mut Io<'_, S>,
) -> Result<Flow, Closed> {
    let Some((name, args)) = argv.split_first() else {
        return Ok(Flow::Next(0));
    };
    let name = name
        .strip_prefix("/usr/bin/")
        .or_else(|| name.strip_prefix("/bin/"))
        .unwrap_or(name);
    match name {
        "echo" => echo(args, io).await,
        "hostname" => {
            io.out(format!("{}\n", ctx.host.name).into_bytes()).await?;
            Ok(Flow::Next(0))
        }
        "true" | ":" => Ok(Flow::Next(0)),
        "false" => Ok(Flow::Next(1)),
        "exit" => exit(args, ctx.status, io).await,
        "sleep" => sleep(args, io).await,
        "cat" => cat(args, ctx, io).await,
        "head" => head(args, ctx, io).await,
        "seq" => seq(args, io).await,
        "kill" => kill(args, &ctx.host, io).await,
        "wc" => super::input::wc(args, ctx, io).await,
        "read" => super::input::read(args, ctx, io).await,
        "env" => super::input::env(args, ctx, io).await,
        "tty" => super::input::tty(args, ctx, io).await,
        "whoami" => {
            io.out(format!("{}\n", ctx.user).into_bytes()).await?;
            Ok(Flow::Next(0))
        }
        "id" => super::input::id(args, ctx, io).await,
        "sudo" => sudo(args, ctx, io).await,
        "ssh-add" => ssh_add(args, ctx, io).await,
        "sh" | "bash" | "dash" => sh(args, ctx, io).await,
        _ => {
            io.err_line(format!("sh: {name}: not found")).await?;
            Ok(Flow::Next(127))
        }
    }
}

/// The usage line `sudo` prints for bad invocations.
pub(super) const SUDO_USAGE: &str =
    "usage: sudo [-knS] [-p prompt] [-u user] [--] command [arg ...]";

/// Password attempts sudo allows (its default `passwd_tries`).
const SUDO_TRIES: u32 = 3;

/// `sudo [-S] [-n] [-p PROMPT] [-u USER] [--] CMD ARGS...`
///
/// 1. Without a configured sudo password: `sudo: a password is required`, status 1.
/// 2. With `-n`, or without `-S` and without a pty: the same failure (nothing to read a
///    password from).
/// 3. The prompt (`-p`, default `[sudo] password for USER: `; `%u`, `%p`, `%h`, `%H`, `%%`
///    expand; the host's own with `SimConfig::sudo_own_prompt`) goes to stderr; an empty
///    prompt prints nothing.
/// 4. One line of stdin is the password, never echoed (with a pty, sudo turns the echo off
///    and writes only a line end; ^D at the start of the line ends the input); the rest of
///    stdin stays for the command.
/// 5. Wrong: `Sorry, try again.` and the prompt again, up to 3 attempts, as sudo's default
///    `passwd_tries`; then `sudo: N incorrect password attempt(s)`, status 1, also when stdin
///    ends after a wrong attempt (with none: `sudo: no password was provided`).
///    Right: with `SimConfig::sudo_then_ask`, that question and one more line of stdin (any
///    answer); then CMD runs as USER (default root): `whoami`, `$USER`, `$HOME` follow.
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

    let prompt = match (&ctx.sudo_own_prompt, prompt) {
        (Some(own), _) => own.to_string(),
        (None, Some(p)) => expand_prompt(&p, ctx),
        (None, None) => format!("[sudo] password for {}: ", ctx.user),
    };
    let mut wrong = 0;
    loop {
        if !prompt.is_empty() {
            io.err(prompt.clone().into_bytes()).await?;
        }
        let pty = ctx.pty;
        let line = ctx
            .stdin
            .line(MAX_LINE)
            .await
            // On a terminal, ^D at the start of a line ends the input.
            .filter(|l| !(pty && l.first() == Some(&0x04)));
        if let Some(line) = &line {
            // sudo turns the terminal's echo off while it reads: only its line end shows.
            if pty {
                io.err(&b"\n"[..]).await?;
            }
            if line.strip_suffix(b"\n").unwrap_or(line) == password.as_bytes() {
                break;
            }
            wrong += 1;
            if wrong < SUDO_TRIES {
                io.err(&b"Sorry, try again.\n"[..]).await?;
                continue;
            }
        }
        io.err_line(match wrong {
            0 => "sudo: no password was provided".into(),
            1 => "sudo: 1 incorrect password attempt".into(),
            n => format!("sudo: {n} incorrect password attempts"),
        })
        .await?;
        return Ok(Flow::Next(1));
    }
    if let Some(question) = ctx.sudo_then_ask.clone() {
        io.err(question.as_bytes().to_vec()).await?;
        if ctx.stdin.line(MAX_LINE).await.is_none() {
            io.err_line("sudo: no answer was provided".into()).await?;
            return Ok(Flow::Next(1));
        }
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
pub(super) fn expand_prompt(prompt: &str, ctx: &Context) -> String {
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

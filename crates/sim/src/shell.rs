//! The built-in shell that runs exec requests on a simulated host.
//!
//! It is pure: it knows nothing of SSH. A script is parsed once ([`parse`]) and run
//! ([`run`]) with a [`Context`] (host, user, variables, pty, [`Stdin`]) against a [`Sink`]
//! that receives stdout and stderr incrementally, so big outputs (`head -c 100000000
//! /dev/zero`, `seq 10000000`) stream in [`CHUNK`]-sized pieces and stop as soon as the sink
//! reports that the reader is gone.
//!
//! Grammar (a small, POSIX-flavoured subset):
//!
//! 1. Words are split on blanks; `'...'`, `"..."` and `\x` quote as in `sh`.
//!    `$$`, `$?`, `$NAME` and `${NAME}` expand (outside single quotes). A variable is looked
//!    up in the shell's variables (`read`, `NAME=value`), then the environment the client
//!    sent, then `HOSTNAME`, `USER`, `LOGNAME`, `HOME`, `SHELL`; unknown ones are empty.
//! 2. Commands are joined by `;`, newline, `&&` and `||`, evaluated left to right with
//!    the usual short-circuit rules on the last exit status.
//! 3. Redirections `>&2`, `1>&2`, `2>&1`, `>/dev/null`, `2>/dev/null` apply to one command.
//!    Pipes, background jobs, subshells and input redirection are syntax errors (status 2).
//! 4. `NAME=value` alone sets a shell variable; before a command it sets that command's
//!    environment.
//!
//! Every command reads the same standard input: `read X` takes one line and leaves the
//! rest to the commands after it. With a pty ([`Context::pty`]), what a command reads
//! from stdin is echoed to stdout when it reads it, as a terminal echoes typed lines.

mod input;
mod stdin;
mod sudo;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub(crate) use stdin::Stdin;

/// Size of the pieces big outputs are produced in.
pub(crate) const CHUNK: usize = 32 * 1024;

/// Size of the virtual file `/srv/data/26k.txt`.
pub(crate) const FILE_26K_LEN: usize = 26_000;

/// One chunk of zeros, the source of `/dev/zero`.
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// Which output stream of the command a piece of output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output (SSH channel data).
    Stdout,
    /// Standard error (SSH extended data, code 1).
    Stderr,
}

/// The reader of the output went away (client disconnected or closed the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Receives a script's output as it is produced.
///
/// `write` may wait (for example for SSH window space): that is how backpressure reaches
/// the shell. It returns [`Closed`] when nobody reads any more; the script stops then.
pub(crate) trait Sink: Send {
    /// Writes one piece of output.
    fn write(
        &mut self,
        stream: Stream,
        data: Cow<'static, [u8]>,
    ) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Normal end with this exit status.
    Status(u32),
    /// Killed by this signal (name without the `SIG` prefix, e.g. `KILL`).
    Signal(&'static str),
}

/// What the shell knows about the host it runs on.
#[derive(Debug, Clone)]
pub(crate) struct ShellHost {
    /// Host name, printed by `hostname` and `cat /etc/hostname`.
    pub(crate) name: String,
    /// The value of `$$`.
    pub(crate) pid: u32,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// One piece of a word: literal text or an expansion done at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `$$`
    Pid,
    /// `$?`
    Status,
    /// `$NAME` / `${NAME}`
    Var(String),
}

/// A word: the concatenation of its segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Word {
    segs: Vec<Seg>,
}

impl Word {
    /// Appends a literal character.
    fn push_char(&mut self, c: char) {
        if let Some(Seg::Lit(s)) = self.segs.last_mut() {
            s.push(c);
        } else {
            self.segs.push(Seg::Lit(c.to_string()));
        }
    }

    /// The literal text of the word if it has no expansions.
    fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// Where a file descriptor of a command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Redirect {
    /// `N>&M`
    Dup { from: u32, to: u32 },
    /// `N>PATH` (or `N>>PATH`)
    File { fd: u32, path: Word },
}

/// A simple command: words and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Command {
    words: Vec<Word>,
    redirects: Vec<Redirect>,
}

impl Command {
    /// Whether there is nothing to run (no words, no redirections).
    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.redirects.is_empty()
    }
}

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `;` or newline: always run.
    Seq,
    /// `&&`: run if the last status is 0.
    And,
    /// `||`: run if the last status is not 0.
    Or,
}

/// A parsed script: commands with the operator that precedes each (the first one's is `Seq`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Script {
    commands: Vec<(Op, Command)>,
}

/// A syntax error; its message is printed as `sh: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String);

#[derive(Debug)]
/// What the lexer produces.
enum Token {
    Word(Word),
    Op(Op),
    Newline,
    Redirect(Redirect),
    /// `N>` waiting for its target word.
    RedirectTo(u32),
}

/// Splits a script into tokens, one character at a time.
struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    tokens: Vec<Token>,
    word: Word,
    /// A word is in progress (possibly empty, e.g. after `''`).
    in_word: bool,
    /// The word in progress contains quoting or expansions (so it is no IO number).
    quoted: bool,
}

impl Lexer<'_> {
    /// Ends the word in progress, if any.
    fn finish_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            self.tokens.push(Token::Word(word));
        }
        self.in_word = false;
        self.quoted = false;
    }

    /// Handles the characters after a `$`.
    fn dollar(&mut self) {
        self.in_word = true;
        self.quoted = true;
        match self.chars.peek().copied() {
            Some('$') => {
                self.chars.next();
                self.word.segs.push(Seg::Pid);
            }
            Some('?') => {
                self.chars.next();
                self.word.segs.push(Seg::Status);
            }
            Some('{') => {
                self.chars.next();
                let mut name = String::new();
                let mut closed = false;
                for c in self.chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if closed {
                    self.word.segs.push(Seg::Var(name));
                } else {
                    // Keep it literal rather than guess.
                    self.word.push_char('$');
                    self.word.push_char('{');
                    for c in name.chars() {
                        self.word.push_char(c);
                    }
                }
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        name.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                self.word.segs.push(Seg::Var(name));
            }
            _ => self.word.push_char('$'),
        }
    }

    /// Handles a `>`: `N>&M`, or `N>` followed by a target word.
    fn redirect(&mut self) -> Result<(), SyntaxError> {
        // An all-digit, unquoted word right before `>` is the file descriptor.
        let fd = match (self.in_word && !self.quoted)
            .then(|| self.word.literal())
            .flatten()
        {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                self.word = Word::default();
                self.in_word = false;
                self.quoted = false;
                digits
                    .parse::<u32>()
                    .map_err(|_| SyntaxError(format!("{digits}: bad file descriptor")))?
            }
            _ => {
                self.finish_word();
                1
            }
        };
        if self.chars.peek() == Some(&'>') {
            self.chars.next(); // `>>` appends: the same for virtual files
        }
        if self.chars.peek() == Some(&'&') {
            self.chars.next();
            let mut digits = String::new();
            while let Some(&c) = self.chars.peek() {
                if c.is_ascii_digit() {
                    digits.push(c);
                    self.chars.next();
                } else {
                    break;
                }
            }
            let to = digits
                .parse::<u32>()
                .map_err(|_| SyntaxError("syntax error: bad redirection after `>&'".into()))?;
            self.tokens
                .push(Token::Redirect(Redirect::Dup { from: fd, to }));
        } else {
            self.tokens.push(Token::RedirectTo(fd));
        }
        Ok(())
    }

    /// Lexes the whole script.
    fn lex(mut self) -> Result<Vec<Token>, SyntaxError> {
        while let Some(c) = self.chars.next() {
            match c {
                ' ' | '\t' | '\r' => self.finish_word(),
                '\n' => {
                    self.finish_word();
                    self.tokens.push(Token::Newline);
                }
                '#' if !self.in_word => {
                    for c in self.chars.by_ref() {
                        if c == '\n' {
                            self.tokens.push(Token::Newline);
                            break;
                        }
                    }
                }
                '\\' => match self.chars.next() {
                    Some('\n') => {}
                    Some(c) => {
                        self.in_word = true;
                        self.quoted = true;
                        self.word.push_char(c);
                    }
                    None => {
                        self.in_word = true;
                        self.word.push_char('\\');
                    }
                },
                '\'' => {
                    self.in_word = true;
                    self.quoted = true;
                    let mut closed = false;
                    for c in self.chars.by_ref() {
                        if c == '\'' {
                            closed = true;
                            break;
                        }
                        self.word.push_char(c);
                    }
                    if !closed {
                        return Err(SyntaxError(
                            "syntax error: unterminated quoted string".into(),
                        ));
                    }
                    // `''` must still produce an (empty) word.
                    if self.word.segs.is_empty() {
                        self.word.segs.push(Seg::Lit(String::new()));
                    }
                }
                '"' => {
                    self.in_word = true;
                    self.quoted = true;
                    if self.word.segs.is_empty() {
                        self.word.segs.push(Seg::Lit(String::new()));
                    }
                    let mut closed = false;
                    while let Some(c) = self.chars.next() {
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => match self.chars.peek().copied() {
                                Some(n @ ('$' | '`' | '"' | '\\')) => {
                                    self.chars.next();
                                    self.word.push_char(n);
                                }
                                Some('\n') => {
                                    self.chars.next();
                                }
                                _ => self.word.push_char('\\'),
                            },
                            '$' => self.dollar(),
                            c => self.word.push_char(c),
                        }
                    }
                    if !closed {
                        return Err(SyntaxError(
                            "syntax error: unterminated quoted string".into(),
                        ));
                    }
                }
                '$' => self.dollar(),
                ';' => {
                    self.finish_word();
                    if self.chars.peek() == Some(&';') {
                        return Err(SyntaxError(
                            "syntax error near unexpected token `;;'".into(),
                        ));
                    }
                    self.tokens.push(Token::Op(Op::Seq));
                }
                '&' => {
                    self.finish_word();
                    if self.chars.peek() == Some(&'&') {
                        self.chars.next();
                        self.tokens.push(Token::Op(Op::And));
                    } else {
                        return Err(SyntaxError(
                            "unsupported syntax: background jobs (`&') are not simulated".into(),
                        ));
                    }
                }
                '|' => {
                    self.finish_word();
                    if self.chars.peek() == Some(&'|') {
                        self.chars.next();
                        self.tokens.push(Token::Op(Op::Or));
                    } else {
                        return Err(SyntaxError(
                            "unsupported syntax: pipes (`|') are not simulated".into(),
                        ));
                    }
                }
                '>' => self.redirect()?,
                '<' | '(' | ')' | '`' => {
                    return Err(SyntaxError(format!(
                        "unsupported syntax: `{c}' is not simulated"
                    )));
                }
                c => {
                    self.in_word = true;
                    self.word.push_char(c);
                }
            }
        }
        self.finish_word();
        Ok(self.tokens)
    }
}

/// Parses a script.
pub(crate) fn parse(script: &str) -> Result<Script, SyntaxError> {
    let tokens = Lexer {
        chars: script.chars().peekable(),
        tokens: Vec::new(),
        word: Word::default(),
        in_word: false,
        quoted: false,
    }
    .lex()?;

    let mut commands = Vec::new();
    let mut current = Command::default();
    let mut pending_op = Op::Seq;
    // After `&&`/`||` a command must follow (newlines may come first).
    let mut need_command = false;
    let mut redirect_to: Option<u32> = None;

    fn unexpected(what: &str) -> SyntaxError {
        SyntaxError(format!("syntax error near unexpected token `{what}'"))
    }

    for token in tokens {
        if let Some(fd) = redirect_to {
            match token {
                Token::Word(path) => {
                    current.redirects.push(Redirect::File { fd, path });
                    redirect_to = None;
                    continue;
                }
                _ => return Err(unexpected("newline")),
            }
        }
        match token {
            Token::Word(w) => current.words.push(w),
            Token::Redirect(r) => current.redirects.push(r),
            Token::RedirectTo(fd) => redirect_to = Some(fd),
            Token::Newline => {
                if !current.is_empty() {
                    commands.push((pending_op, std::mem::take(&mut current)));
                    pending_op = Op::Seq;
                    need_command = false;
                }
            }
            Token::Op(op) => {
                if current.is_empty() {
                    return Err(unexpected(match op {
                        Op::Seq => ";",
                        Op::And => "&&",
                        Op::Or => "||",
                    }));
                }
                commands.push((pending_op, std::mem::take(&mut current)));
                pending_op = op;
                need_command = op != Op::Seq;
            }
        }
    }
    if redirect_to.is_some() {
        return Err(unexpected("newline"));
    }
    if current.is_empty() {
        if need_command {
            return Err(unexpected("end of file"));
        }
    } else {
        commands.push((pending_op, current));
    }
    Ok(Script { commands })
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Longest line `read`, `sudo` and `head -n` take from stdin in one piece.
const MAX_LINE: usize = 1 << 20;

/// Longest script `sh` reads from stdin.
const MAX_STDIN_SCRIPT: usize = 1 << 20;

/// How deeply `sh -c` / `sudo sh -c` may nest.
const MAX_DEPTH: u32 = 32;

/// Everything a script runs with besides its output: where and as whom it runs, its
/// variables, whether it has a terminal, and its standard input.
#[derive(Debug)]
pub(crate) struct Context {
    /// The host it runs on.
    pub(crate) host: ShellHost,
    /// The effective user: the login user, or the target user inside `sudo`.
    pub(crate) user: String,
    /// The environment the client set (SSH `env` requests), printed by `env`.
    pub(crate) env: BTreeMap<String, String>,
    /// A pty was allocated: what commands read from stdin is echoed to stdout, as a
    /// terminal echoes typed lines.
    pub(crate) pty: bool,
    /// The password `sudo` accepts; `None`: `sudo` always fails.
    pub(crate) sudo_password: Option<Arc<str>>,
    /// Standard input, shared by every command of the script.
    pub(crate) stdin: Stdin,
    /// The client's forwarded agent (after an `auth-agent-req@openssh.com`), for
    /// `ssh-add`.
    pub(crate) agent: Option<Arc<dyn AgentLink>>,
    /// Shell variables (`read`, `NAME=value`); they shadow `env`.
    vars: HashMap<String, String>,
    /// `$?`.
    status: u32,
    /// Nesting depth of `sh -c`.
    depth: u32,
}

impl Context {
    /// A context for `user` on `host`: no environment, no pty, no sudo, empty stdin.
    pub(crate) fn new(host: ShellHost, user: impl Into<String>) -> Context {
        Context {
            host,
            user: user.into(),
            env: BTreeMap::new(),
            pty: false,
            sudo_password: None,
            stdin: Stdin::empty(),
            agent: None,
            vars: HashMap::new(),
            status: 0,
            depth: 0,
        }
    }

    /// The value of `$name`: shell variables, then the client's environment, then what
    /// the login sets (`HOSTNAME`, `USER`, `LOGNAME`, `HOME`, `SHELL`).
    fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.vars.get(name).or_else(|| self.env.get(name)) {
            return Some(Cow::Borrowed(v));
        }
        Some(match name {
            "HOSTNAME" => Cow::Borrowed(self.host.name.as_str()),
            "USER" | "LOGNAME" => Cow::Borrowed(self.user.as_str()),
            "HOME" => Cow::Owned(home_of(&self.user)),
            "SHELL" => Cow::Borrowed("/bin/sh"),
            _ => return None,
        })
    }

    /// What a subshell (`sh -c`, `sudo`) may change and must give back.
    fn save(&self) -> Saved {
        Saved {
            user: self.user.clone(),
            vars: self.vars.clone(),
            env: self.env.clone(),
            status: self.status,
        }
    }

    /// Undoes a subshell's changes.
    fn restore(&mut self, saved: Saved) {
        self.user = saved.user;
        self.vars = saved.vars;
        self.env = saved.env;
        self.status = saved.status;
    }
}

/// See [`Context::save`].
struct Saved {
    user: String,
    vars: HashMap<String, String>,
    env: BTreeMap<String, String>,
    status: u32,
}

/// `$HOME` of a user.
fn home_of(user: &str) -> String {
    if user == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{user}")
    }
}

/// Where one of a command's output descriptors points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Stream(Stream),
    Null,
}

/// Where a (sub)shell's descriptors 1 and 2 point before a command's own redirections:
/// a script run by `sh -c ... >&2` writes its stdout to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fds {
    out: Target,
    err: Target,
}

impl Default for Fds {
    fn default() -> Self {
        Fds {
            out: Target::Stream(Stream::Stdout),
            err: Target::Stream(Stream::Stderr),
        }
    }
}

/// What a command asks of the script after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Go on; this is the command's exit status.
    Next(u32),
    /// `exit N`.
    Exit(u32),
    /// The shell was killed by this signal.
    Killed(&'static str),
}

/// A command's view of the sink, after redirections.
struct Io<'s, S: Sink> {
    sink: &'s mut S,
    out: Target,
    err: Target,
}

impl<S: Sink> Io<'_, S> {
    /// Writes to a descriptor's target (nothing for `/dev/null` or empty data).
    async fn write(&mut self, fd: Target, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        match fd {
            Target::Stream(stream) if !data.is_empty() => self.sink.write(stream, data).await,
            _ => Ok(()),
        }
    }

    /// Writes to the command's stdout.
    async fn out(&mut self, data: impl Into<Cow<'static, [u8]>>) -> Result<(), Closed> {
        self.write(self.out, data.into()).await
    }

    /// Writes to the command's stderr.
    async fn err(&mut self, data: impl Into<Cow<'static, [u8]>>) -> Result<(), Closed> {
        self.write(self.err, data.into()).await
    }

    /// Writes one line (a newline is added) to the command's stderr.
    async fn err_line(&mut self, line: String) -> Result<(), Closed> {
        self.err(format!("{line}\n").into_bytes()).await
    }

    /// Writes a static byte slice to stdout in [`CHUNK`]s, up to `len` bytes.
    async fn out_static(&mut self, data: &'static [u8], len: u64) -> Result<(), Closed> {
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
        for chunk in data.get(..len).unwrap_or_default().chunks(CHUNK) {
            self.out(chunk).await?;
        }
        Ok(())
    }

    /// The terminal echo of input a command read: with a pty, `data` goes to the
    /// terminal (stdout, whatever the command's redirections); without one, nowhere.
    async fn echo_input(&mut self, pty: bool, data: &[u8]) -> Result<(), Closed> {
        if pty && !data.is_empty() {
            self.sink.write(Stream::Stdout, data.to_vec().into()).await
        } else {
            Ok(())
        }
    }
}

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
async fn run_source<S: Sink>(
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

/// A boxed future: `sh -c` makes running a script recursive.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs a parsed script: `Next` with the last status at its end, or how it stopped early.
fn run_script<'a, S: Sink>(
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
fn expand(word: &Word, ctx: &Context) -> String {
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

/// `NAME=value` with a valid name: the name and the value.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    is_name(name).then_some((name, value))
}

/// A valid variable name: a letter or `_`, then letters, digits or `_`.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Runs one simple command: redirections, expansion, assignments, then the builtin.
async fn run_command<S: Sink>(
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
fn run_argv<'a, 'io, S: Sink>(
    argv: &'a [String],
    ctx: &'a mut Context,
    io: &'a mut Io<'io, S>,
) -> BoxFuture<'a, Result<Flow, Closed>> {
    Box::pin(run_builtin(argv, ctx, io))
}

/// See [`run_argv`].
async fn run_builtin<S: Sink>(
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
        "wc" => input::wc(args, ctx, io).await,
        "read" => input::read(args, ctx, io).await,
        "env" => input::env(args, ctx, io).await,
        "tty" => input::tty(args, ctx, io).await,
        "whoami" => {
            io.out(format!("{}\n", ctx.user).into_bytes()).await?;
            Ok(Flow::Next(0))
        }
        "id" => input::id(args, ctx, io).await,
        "sudo" => sudo::sudo(args, ctx, io).await,
        "ssh-add" => ssh_add(args, ctx, io).await,
        "sh" | "bash" | "dash" => sudo::sh(args, ctx, io).await,
        _ => {
            io.err_line(format!("sh: {name}: not found")).await?;
            Ok(Flow::Next(127))
        }
    }
}

/// One identity of an SSH agent, as `ssh-add` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentKey {
    /// The `ssh-add -l` line: `256 SHA256:... comment (ED25519)`.
    pub(crate) listing: String,
    /// The `ssh-add -L` line: `ssh-ed25519 AAAA... comment`.
    pub(crate) public: String,
}

/// A way to ask the client's forwarded agent for its identities (the SSH side lives in
/// the server; the shell only knows this).
pub(crate) trait AgentLink: Send + Sync + std::fmt::Debug {
    /// The agent's identities, or why they could not be fetched.
    fn identities(&self) -> BoxFuture<'_, Result<Vec<AgentKey>, String>>;
}

/// `ssh-add -l` / `ssh-add -L`: lists the forwarded agent's identities, as OpenSSH does.
async fn ssh_add<S: Sink>(
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
async fn echo<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
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
async fn exit<S: Sink>(args: &[String], status: u32, io: &mut Io<'_, S>) -> Result<Flow, Closed> {
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
fn parse_sleep(arg: &str) -> Option<Duration> {
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
async fn sleep<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
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
const OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Fleetsh Sim Linux 12 (simulated)\"
NAME=\"Fleetsh Sim Linux\"
VERSION_ID=\"12\"
VERSION=\"12 (simulated)\"
ID=fleetsh-sim
ID_LIKE=debian
HOME_URL=\"https://example.invalid/fleetsh\"
";

/// A virtual file's content.
enum File {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    Zeros,
    Random,
}

/// Opens a virtual file; `None` if it does not exist.
fn open(path: &str, host: &ShellHost) -> Option<File> {
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
struct SplitMix64(u64);

impl SplitMix64 {
    /// The next 64 pseudo-random bits.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes up to `limit` bytes of `file` to stdout (`None`: all of it; endless files need a limit).
async fn write_file<S: Sink>(
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
async fn cat<S: Sink>(
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
async fn copy_stdin<S: Sink>(
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
async fn head<S: Sink>(
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
fn line_prefix(data: &[u8], lines: u64) -> u64 {
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
async fn seq<S: Sink>(args: &[String], io: &mut Io<'_, S>) -> Result<Flow, Closed> {
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
const SIGNALS: &[(u32, &str)] = &[
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
fn parse_signal(spec: &str) -> Option<&'static str> {
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
async fn kill<S: Sink>(
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    /// Collects output; optionally closes after `close_after` bytes of stdout.
    #[derive(Default)]
    struct VecSink {
        out: Vec<u8>,
        err: Vec<u8>,
        writes: usize,
        max_write: usize,
        close_after: Option<usize>,
    }

    impl Sink for VecSink {
        async fn write(&mut self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
            self.writes += 1;
            self.max_write = self.max_write.max(data.len());
            match stream {
                Stream::Stdout => self.out.extend_from_slice(&data),
                Stream::Stderr => self.err.extend_from_slice(&data),
            }
            match self.close_after {
                Some(n) if self.out.len() >= n => Err(Closed),
                _ => Ok(()),
            }
        }
    }

    fn host() -> ShellHost {
        ShellHost {
            name: "sim00007".into(),
            pid: 4242,
        }
    }

    fn ctx() -> Context {
        Context::new(host(), "root")
    }

    async fn sh(script: &str) -> (String, String, Exit) {
        sh_with(script, &mut ctx()).await
    }

    /// Runs `script` with `ctx`, collecting its output.
    async fn sh_with(script: &str, ctx: &mut Context) -> (String, String, Exit) {
        let mut sink = VecSink::default();
        let exit = run(script, ctx, &mut sink).await.unwrap();
        (
            String::from_utf8(sink.out).unwrap(),
            String::from_utf8(sink.err).unwrap(),
            exit,
        )
    }

    fn words(script: &str) -> Vec<Vec<String>> {
        let script = parse(script).unwrap();
        script
            .commands
            .iter()
            .map(|(_, c)| c.words.iter().map(|w| expand(w, &ctx())).collect())
            .collect()
    }

    #[test]
    fn quoting() {
        assert_eq!(words("echo a  b\tc"), [["echo", "a", "b", "c"]]);
        assert_eq!(words("echo 'a b' \"c d\""), [["echo", "a b", "c d"]]);
        assert_eq!(words(r"echo a\ b"), [["echo", "a b"]]);
        assert_eq!(words(r#"echo "a\"b" 'x\y'"#), [["echo", "a\"b", r"x\y"]]);
        assert_eq!(words(r#"echo "a\nb""#), [["echo", r"a\nb"]]);
        assert_eq!(words("echo '' \"\""), [["echo", "", ""]]);
        assert_eq!(words("echo a'b'\"c\"d"), [["echo", "abcd"]]);
        assert_eq!(
            words("echo 'a;b' \"c&&d\" e\\;f"),
            [["echo", "a;b", "c&&d", "e;f"]]
        );
        assert_eq!(
            words("echo $$ \"$$\" '$$'"),
            [["echo", "4242", "4242", "$$"]]
        );
        assert_eq!(
            words("echo $HOSTNAME ${HOSTNAME}x $NOPE. $ a$"),
            [["echo", "sim00007", "sim00007x", ".", "$", "a$"]]
        );
        assert_eq!(words("echo a # comment"), [["echo", "a"]]);
        assert_eq!(words("echo a#b"), [["echo", "a#b"]]);
        assert_eq!(words("echo a \\\n b"), [["echo", "a", "b"]]);
        assert_eq!(words(""), Vec::<Vec<String>>::new());
        assert_eq!(words("  \n\n "), Vec::<Vec<String>>::new());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "echo 'a",
            "echo \"a",
            "; echo a",
            "echo a;;",
            "echo a && && echo b",
            "echo a &&",
            "echo a ||",
            "echo a | wc",
            "sleep 1 &",
            "cat < /etc/hostname",
            "(echo a)",
            "echo a >",
            "echo `id`",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        // A trailing `;` and empty lines are fine.
        assert!(parse("echo a;").is_ok());
        assert!(parse("echo a\n\necho b\n").is_ok());
        assert!(parse("echo a &&\n echo b").is_ok());
    }

    #[tokio::test]
    async fn syntax_error_is_status_2() {
        let (out, err, exit) = sh("echo 'a").await;
        assert_eq!(out, "");
        assert_eq!(err, "sh: syntax error: unterminated quoted string\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn operators() {
        assert_eq!(sh("echo a; echo b").await.0, "a\nb\n");
        assert_eq!(sh("echo a\necho b").await.0, "a\nb\n");
        assert_eq!(sh("true && echo yes").await.0, "yes\n");
        assert_eq!(sh("false && echo yes").await.0, "");
        assert_eq!(sh("false || echo no").await.0, "no\n");
        assert_eq!(sh("true || echo no").await.0, "");
        assert_eq!(sh("false && echo a || echo b").await.0, "b\n");
        assert_eq!(sh("true && echo a || echo b").await.0, "a\n");
        assert_eq!(sh("false || false || echo c; echo d").await.0, "c\nd\n");
        assert_eq!(sh("false; echo $?").await.0, "1\n");
        assert_eq!(sh("nope; echo $?").await.0, "127\n");
        assert_eq!(sh("false").await.2, Exit::Status(1));
        assert_eq!(sh("false; true").await.2, Exit::Status(0));
        assert_eq!(sh("true; false").await.2, Exit::Status(1));
        assert_eq!(sh("true && false || true").await.2, Exit::Status(0));
    }

    #[tokio::test]
    async fn empty_script() {
        assert_eq!(
            sh("").await,
            (String::new(), String::new(), Exit::Status(0))
        );
        assert_eq!(sh("   ").await.2, Exit::Status(0));
    }

    #[tokio::test]
    async fn exit_stops_script() {
        let (out, _, exit) = sh("echo a; exit 3; echo b").await;
        assert_eq!(out, "a\n");
        assert_eq!(exit, Exit::Status(3));
        assert_eq!(sh("false; exit").await.2, Exit::Status(1));
        assert_eq!(sh("exit 256").await.2, Exit::Status(0));
        assert_eq!(sh("exit 300").await.2, Exit::Status(44));
        assert_eq!(
            sh("false || exit 4 && echo x").await,
            ("".into(), "".into(), Exit::Status(4))
        );
        let (_, err, exit) = sh("exit abc").await;
        assert_eq!(err, "sh: exit: Illegal number: abc\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn echo() {
        assert_eq!(sh("echo").await.0, "\n");
        assert_eq!(sh("echo hello   world").await.0, "hello world\n");
        assert_eq!(sh("echo -n hi").await.0, "hi");
        assert_eq!(sh("echo -n -nn hi there").await.0, "hi there");
        assert_eq!(sh("echo -x hi").await.0, "-x hi\n");
        assert_eq!(sh("echo hi -n").await.0, "hi -n\n");
        assert_eq!(sh("/bin/echo ok").await.0, "ok\n");
    }

    #[tokio::test]
    async fn hostname_true_false() {
        assert_eq!(
            sh("hostname").await,
            ("sim00007\n".into(), "".into(), Exit::Status(0))
        );
        assert_eq!(sh("true").await.2, Exit::Status(0));
        assert_eq!(sh(":").await.2, Exit::Status(0));
        assert_eq!(sh("false").await.2, Exit::Status(1));
    }

    #[tokio::test]
    async fn sleep_waits() {
        let start = std::time::Instant::now();
        assert_eq!(sh("sleep 0.05").await.2, Exit::Status(0));
        assert!(start.elapsed() >= Duration::from_millis(50));
        let (_, err, exit) = sh("sleep x").await;
        assert_eq!(err, "sleep: invalid time interval 'x'\n");
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(parse_sleep("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_sleep("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_sleep("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_sleep(".25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_sleep("-1"), None);
        assert_eq!(parse_sleep("s"), None);
        assert_eq!(parse_sleep(""), None);
    }

    #[tokio::test]
    async fn cat() {
        assert_eq!(sh("cat /etc/hostname").await.0, "sim00007\n");
        let (os, _, exit) = sh("cat /etc/os-release").await;
        assert!(os.contains("ID=fleetsh-sim\n"), "{os}");
        assert_eq!(exit, Exit::Status(0));

        let mut sink = VecSink::default();
        run("cat /srv/data/26k.txt", &mut ctx(), &mut sink)
            .await
            .unwrap();
        assert_eq!(sink.out.len(), FILE_26K_LEN);
        assert_eq!(sink.out, file_26k());
        assert!(sink.out.ends_with(b"\n"));
        assert!(
            sink.out
                .iter()
                .all(|b| *b == b'\n' || b.is_ascii_graphic() || *b == b' ')
        );
        assert_eq!(sink.out.iter().filter(|b| **b == b'\n').count(), 400);

        let (out, err, exit) = sh("cat /etc/hostname /nope /etc/hostname").await;
        assert_eq!(out, "sim00007\nsim00007\n");
        assert_eq!(err, "cat: /nope: No such file or directory\n");
        assert_eq!(exit, Exit::Status(1));
    }

    #[tokio::test]
    async fn head_streams_in_chunks() {
        let mut sink = VecSink::default();
        let exit = run("head -c 1000000 /dev/zero", &mut ctx(), &mut sink)
            .await
            .unwrap();
        assert_eq!(exit, Exit::Status(0));
        assert_eq!(sink.out.len(), 1_000_000);
        assert!(sink.out.iter().all(|b| *b == 0));
        assert_eq!(sink.max_write, CHUNK);
        assert_eq!(sink.writes, 1_000_000usize.div_ceil(CHUNK));

        let mut a = VecSink::default();
        run("head -c 100000 /dev/urandom", &mut ctx(), &mut a)
            .await
            .unwrap();
        let mut b = VecSink::default();
        run("head -c100000 /dev/urandom", &mut ctx(), &mut b)
            .await
            .unwrap();
        assert_eq!(a.out.len(), 100_000);
        assert_eq!(a.out, b.out, "deterministic");
        assert!(a.out.iter().filter(|x| **x == 0).count() < 2_000);

        assert_eq!(sh("head -c 0 /dev/zero").await.0, "");
        assert_eq!(sh("head -c 3 /etc/hostname").await.0, "sim");
        assert_eq!(sh("head -n 2 /srv/data/26k.txt").await.0.len(), 130);
        assert_eq!(sh("head /srv/data/26k.txt").await.0.len(), 650);
        let (_, err, exit) = sh("head -c 5 /nope").await;
        assert_eq!(
            err,
            "head: cannot open '/nope' for reading: No such file or directory\n"
        );
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(sh("head -c x /dev/zero").await.2, Exit::Status(1));
    }

    #[tokio::test]
    async fn output_stops_when_sink_closes() {
        let mut sink = VecSink {
            close_after: Some(100_000),
            ..VecSink::default()
        };
        let result = run(
            "head -c 100000000000 /dev/zero; echo after",
            &mut ctx(),
            &mut sink,
        )
        .await;
        assert_eq!(result, Err(Closed));
        assert!(sink.out.len() < 100_000 + CHUNK);
    }

    #[tokio::test]
    async fn seq() {
        assert_eq!(sh("seq 3").await.0, "1\n2\n3\n");
        assert_eq!(sh("seq 0").await.0, "");
        assert_eq!(sh("seq 2 4").await.0, "2\n3\n4\n");
        assert_eq!(sh("seq 5 -2 1").await.0, "5\n3\n1\n");
        assert_eq!(sh("seq x").await.2, Exit::Status(1));
        assert_eq!(sh("seq").await.2, Exit::Status(1));

        let mut sink = VecSink::default();
        run("seq 100000", &mut ctx(), &mut sink).await.unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert_eq!(text.lines().count(), 100_000);
        assert_eq!(text.lines().last(), Some("100000"));
        assert!(sink.writes > 10, "streamed in pieces");
        assert!(sink.max_write < CHUNK + 32);
    }

    #[tokio::test]
    async fn kill_self_is_a_signal() {
        let (out, _, exit) = sh("echo before; kill -9 $$; echo after").await;
        assert_eq!(out, "before\n");
        assert_eq!(exit, Exit::Signal("KILL"));
        assert_eq!(sh("kill -KILL $$").await.2, Exit::Signal("KILL"));
        assert_eq!(sh("kill -SIGKILL $$").await.2, Exit::Signal("KILL"));
        assert_eq!(sh("kill -TERM $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill -15 $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill $$").await.2, Exit::Signal("TERM"));
        assert_eq!(sh("kill -s HUP $$").await.2, Exit::Signal("HUP"));
        assert_eq!(sh("kill -2 $$").await.2, Exit::Signal("INT"));

        let (_, err, exit) = sh("kill -9 1").await;
        assert_eq!(err, "sh: kill: (1) - No such process\n");
        assert_eq!(exit, Exit::Status(1));
        let (_, err, exit) = sh("kill -FOO $$").await;
        assert_eq!(err, "sh: kill: FOO: invalid signal specification\n");
        assert_eq!(exit, Exit::Status(1));
    }

    #[tokio::test]
    async fn unknown_command() {
        let (out, err, exit) = sh("frobnicate --now").await;
        assert_eq!(out, "");
        assert_eq!(err, "sh: frobnicate: not found\n");
        assert_eq!(exit, Exit::Status(127));
    }

    #[tokio::test]
    async fn redirects() {
        assert_eq!(
            sh("echo hi >&2").await,
            ("".into(), "hi\n".into(), Exit::Status(0))
        );
        assert_eq!(
            sh("echo hi 1>&2").await,
            ("".into(), "hi\n".into(), Exit::Status(0))
        );
        assert_eq!(sh(">&2 echo hi").await.1, "hi\n");
        assert_eq!(
            sh("echo a >&2; echo b").await,
            ("b\n".into(), "a\n".into(), Exit::Status(0))
        );
        assert_eq!(sh("nope 2>&1").await.0, "sh: nope: not found\n");
        assert_eq!(
            sh("nope 2>/dev/null").await,
            ("".into(), "".into(), Exit::Status(127))
        );
        assert_eq!(sh("echo hi >/dev/null").await.0, "");
        assert_eq!(sh("echo hi > /dev/null").await.0, "");
        assert_eq!(sh("cat /etc/hostname 1>&2").await.1, "sim00007\n");
        // Quoted, `>&2` is just a word.
        assert_eq!(sh("echo '>&2'").await.0, ">&2\n");
        assert_eq!(sh("echo \"1\">&2").await.1, "1\n");
        let (_, err, exit) = sh("echo hi > /tmp/x").await;
        assert_eq!(err, "sh: cannot create /tmp/x: Read-only file system\n");
        assert_eq!(exit, Exit::Status(2));
    }

    /// A context with `input` as stdin.
    fn with_stdin(input: &'static [u8]) -> Context {
        let mut ctx = ctx();
        ctx.stdin = Stdin::new(input);
        ctx
    }

    #[tokio::test]
    async fn cat_and_wc_read_stdin() {
        let (out, _, exit) = sh_with("cat", &mut with_stdin(b"a\nb\n")).await;
        assert_eq!((out.as_str(), exit), ("a\nb\n", Exit::Status(0)));
        assert_eq!(sh_with("cat -", &mut with_stdin(b"x")).await.0, "x");
        assert_eq!(
            sh_with(
                "cat /etc/hostname - /etc/hostname",
                &mut with_stdin(b"mid\n")
            )
            .await
            .0,
            "sim00007\nmid\nsim00007\n"
        );
        assert_eq!(sh_with("wc -c", &mut with_stdin(b"12345")).await.0, "5\n");
        assert_eq!(sh_with("wc -l", &mut with_stdin(b"a\nb\nc")).await.0, "2\n");
        assert_eq!(
            sh_with("wc", &mut with_stdin(b"one two\nthree\n")).await.0,
            "      2       3      14\n"
        );
        assert_eq!(sh("wc -c /etc/hostname").await.0, "9 /etc/hostname\n");
        assert_eq!(sh("wc -c").await.0, "0\n", "no stdin is empty stdin");
        // The first command takes it all.
        assert_eq!(
            sh_with("cat; wc -c", &mut with_stdin(b"abc")).await.0,
            "abc0\n"
        );
    }

    #[tokio::test]
    async fn head_reads_stdin() {
        let mut c = with_stdin(b"line1\nline2\nline3\n");
        assert_eq!(
            sh_with("head -n 1; cat", &mut c).await.0,
            "line1\nline2\nline3\n"
        );
        let mut c = with_stdin(b"abcdef");
        assert_eq!(sh_with("head -c 2; echo; cat", &mut c).await.0, "ab\ncdef");
        let mut c = with_stdin(b"abcdef");
        assert_eq!(sh_with("head -c 100 -", &mut c).await.0, "abcdef");
    }

    #[tokio::test]
    async fn read_sets_variables() {
        let mut c = with_stdin(b"hello world\nsecond  line here\nlast");
        let (out, _, exit) = sh_with(
            "read X; echo got $X; read A B; echo \"[$A] [$B]\"; read -r R; echo $R $?; read Z; echo \"z=$Z\" $?",
            &mut c,
        )
        .await;
        assert_eq!(out, "got hello world\n[second] [line here]\nlast 1\nz= 1\n");
        assert_eq!(exit, Exit::Status(0));
        let (out, _, _) = sh_with("read; echo $REPLY", &mut with_stdin(b"r\n")).await;
        assert_eq!(out, "r\n");
        let (_, err, exit) = sh("read 1x").await;
        assert_eq!(err, "sh: read: '1x': not a valid identifier\n");
        assert_eq!(exit, Exit::Status(2));
    }

    #[tokio::test]
    async fn variables_and_env() {
        let mut c = ctx();
        c.env.insert("LANG".into(), "C.UTF-8".into());
        c.env.insert("APP".into(), "x y".into());
        let (out, _, _) = sh_with("env; echo $LANG ${APP}!", &mut c).await;
        assert_eq!(out, "APP=x y\nLANG=C.UTF-8\nC.UTF-8 x y!\n");
        assert_eq!(sh("X=1; echo $X").await.0, "1\n");
        assert_eq!(sh("X=1 Y=2; echo $X$Y").await.0, "12\n");
        assert_eq!(sh("X=1 env; echo [$X]").await.0, "X=1\n[]\n");
        assert_eq!(sh("echo $USER $HOME").await.0, "root /root\n");
        let mut alice = Context::new(host(), "alice");
        assert_eq!(
            sh_with(
                "echo $USER $LOGNAME $HOME; whoami; id -un; id -u",
                &mut alice
            )
            .await
            .0,
            "alice alice /home/alice\nalice\nalice\n1000\n"
        );
    }

    #[tokio::test]
    async fn tty_and_pty_echo() {
        assert_eq!(
            sh("tty").await,
            ("not a tty\n".into(), "".into(), Exit::Status(1))
        );
        let mut c = with_stdin(b"typed\n");
        c.pty = true;
        let (out, _, exit) = sh_with("tty; read X; echo got $X", &mut c).await;
        assert_eq!(out, "/dev/pts/0\ntyped\ngot typed\n");
        assert_eq!(exit, Exit::Status(0));
        // The echo goes to the terminal whatever the redirections.
        let mut c = with_stdin(b"typed\n");
        c.pty = true;
        assert_eq!(sh_with("read X >/dev/null", &mut c).await.0, "typed\n");
    }

    #[tokio::test]
    async fn sh_c_runs_a_subshell() {
        assert_eq!(
            sh("sh -c 'echo in; exit 3'; echo after $?").await.0,
            "in\nafter 3\n"
        );
        assert_eq!(sh("/bin/sh -c 'X=1'; echo [$X]").await.0, "[]\n");
        assert_eq!(sh("bash -lc 'hostname'").await.0, "sim00007\n");
        assert_eq!(sh("sh -ec 'echo hi' >&2").await.1, "hi\n");
        assert_eq!(sh("sh -c 'echo a >&2' 2>/dev/null").await.1, "");
        let (_, err, exit) = sh("sh -c").await;
        assert_eq!(err, "sh: -c: option requires an argument\n");
        assert_eq!(exit, Exit::Status(2));
        assert_eq!(sh("sh -c \"echo 'x\"").await.2, Exit::Status(2));
        assert_eq!(sh("sh -c \"echo 'x\"; echo $?").await.0, "2\n");
        assert_eq!(
            sh("sh -c 'kill -9 $$'; echo no").await.2,
            Exit::Signal("KILL")
        );
        // A script on stdin.
        let (out, _, _) = sh_with("sh", &mut with_stdin(b"echo one\nhostname\n")).await;
        assert_eq!(out, "one\nsim00007\n");
        // Endless nesting stops at MAX_DEPTH.
        let (_, err, exit) = sh("X='sh -c \"$X\"'; sh -c \"$X\"").await;
        assert_eq!(err, "sh: too many nested shells\n");
        assert_eq!(exit, Exit::Status(2));
    }

    /// A context with a sudo password and `input` as stdin.
    fn sudo_ctx(input: &'static [u8]) -> Context {
        let mut c = with_stdin(input);
        c.sudo_password = Some(Arc::from("pw"));
        c
    }

    #[tokio::test]
    async fn sudo_checks_the_password() {
        let script = "sudo -S -p '' -u alice -- sh -c 'whoami; echo $USER $HOME $SUDO_USER; cat'";
        let (out, err, exit) = sh_with(script, &mut sudo_ctx(b"pw\nrest of stdin\n")).await;
        assert_eq!(out, "alice\nalice /home/alice root\nrest of stdin\n");
        assert_eq!(err, "");
        assert_eq!(exit, Exit::Status(0));

        let (out, err, exit) = sh_with(
            "sudo -S -p '' -- sh -c 'whoami; exit 4'; echo $? $USER",
            &mut sudo_ctx(b"pw\n"),
        )
        .await;
        assert_eq!((out.as_str(), err.as_str()), ("root\n4 root\n", ""));
        assert_eq!(exit, Exit::Status(0));

        let (out, err, exit) =
            sh_with("sudo -S -p 'Password: ' whoami", &mut sudo_ctx(b"wrong\n")).await;
        assert_eq!(out, "");
        assert_eq!(
            err,
            "Password: Sorry, try again.\nsudo: 1 incorrect password attempt\n"
        );
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo -S whoami", &mut sudo_ctx(b"")).await;
        assert_eq!(
            err,
            "[sudo] password for root: sudo: no password was provided\n"
        );
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo -S -p '' whoami", &mut with_stdin(b"pw\n")).await;
        assert_eq!(err, "sudo: a password is required\n");
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo whoami", &mut sudo_ctx(b"pw\n")).await;
        assert!(err.starts_with("sudo: a terminal is required"), "{err}");
        assert_eq!(exit, Exit::Status(1));

        let (_, err, exit) = sh_with("sudo -x whoami", &mut sudo_ctx(b"pw\n")).await;
        assert!(
            err.starts_with("sudo: invalid option -- 'x'\nusage: sudo"),
            "{err}"
        );
        assert_eq!(exit, Exit::Status(1));
        assert_eq!(
            sh_with("sudo -Sp '%u@%h: ' -ubob whoami", &mut sudo_ctx(b"pw\n"))
                .await
                .1,
            "root@sim00007: "
        );
    }

    #[tokio::test]
    async fn sudo_password_is_echoed_only_with_a_pty() {
        let (out, _, _) = sh_with("sudo -S -p '' whoami", &mut sudo_ctx(b"pw\n")).await;
        assert_eq!(out, "root\n");
        let mut c = sudo_ctx(b"pw\n");
        c.pty = true;
        let (out, _, _) = sh_with("sudo -p '' whoami", &mut c).await;
        assert_eq!(out, "pw\nroot\n");
    }

    #[test]
    fn file_26k_is_fixed() {
        let f = file_26k();
        assert_eq!(f.len(), 26_000);
        assert!(f.starts_with(b"00001 "));
        assert!(f.ends_with(b"\n"));
    }
}

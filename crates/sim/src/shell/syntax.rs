//! The shell's grammar: the lexer and the parser, from a script's text to a [`Script`].

/// One piece of a word: literal text or an expansion done at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
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
pub(super) struct Word {
    pub(super) segs: Vec<Seg>,
}

impl Word {
    /// Appends a literal character.
    pub(super) fn push_char(&mut self, c: char) {
        if let Some(Seg::Lit(s)) = self.segs.last_mut() {
            s.push(c);
        } else {
            self.segs.push(Seg::Lit(c.to_string()));
        }
    }

    /// The literal text of the word if it has no expansions.
    pub(super) fn literal(&self) -> Option<String> {
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
pub(super) enum Redirect {
    /// `N>&M`
    Dup { from: u32, to: u32 },
    /// `N>PATH` (or `N>>PATH`)
    File { fd: u32, path: Word },
}

/// A simple command: words and redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Command {
    pub(super) words: Vec<Word>,
    pub(super) redirects: Vec<Redirect>,
}

impl Command {
    /// Whether there is nothing to run (no words, no redirections).
    pub(super) fn is_empty(&self) -> bool {
        self.words.is_empty() && self.redirects.is_empty()
    }
}

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
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
    pub(super) commands: Vec<(Op, Command)>,
}

/// A syntax error; its message is printed as `sh: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub(crate) String);

#[derive(Debug)]
/// What the lexer produces.
pub(super) enum Token {
    Word(Word),
    Op(Op),
    Newline,
    Redirect(Redirect),
    /// `N>` waiting for its target word.
    RedirectTo(u32),
}

/// Splits a script into tokens, one character at a time.
pub(super) struct Lexer<'a> {
    pub(super) chars: std::iter::Peekable<std::str::Chars<'a>>,
    pub(super) tokens: Vec<Token>,
    pub(super) word: Word,
    /// A word is in progress (possibly empty, e.g. after `''`).
    pub(super) in_word: bool,
    /// The word in progress contains quoting or expansions (so it is no IO number).
    pub(super) quoted: bool,
}

impl Lexer<'_> {
    /// Ends the word in progress, if any.
    pub(super) fn finish_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            self.tokens.push(Token::Word(word));
        }
        self.in_word = false;
        self.quoted = false;
    }

    /// Handles the characters after a `$`.
    pub(super) fn dollar(&mut self) {
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
    pub(super) fn redirect(&mut self) -> Result<(), SyntaxError> {
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
    pub(super) fn lex(mut self) -> Result<Vec<Token>, SyntaxError> {
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

    pub(super) fn unexpected(what: &str) -> SyntaxError {
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

/// `NAME=value` with a valid name: the name and the value.
pub(super) fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    is_name(name).then_some((name, value))
}

/// A valid variable name: a letter or `_`, then letters, digits or `_`.
pub(super) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

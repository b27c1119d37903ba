//! Reading ssh_config text into blocks ([`SshConfig::load`], [`SshConfig::parse_text`]):
//! `Host` and `Match` lines, `Include`s read in place (bounded in depth and number of files),
//! and each directive's value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::directives::parse_directive;
use super::lexer::words;
use super::matching::{glob, patterns};
use super::model::{Block, Condition, Criterion, Setting, Source, SshConfig, Value};
use crate::error::Error;

/// Most nested `Include` levels (OpenSSH's limit too).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most files one configuration may read, includes counted.
pub const MAX_FILES: usize = 256;

impl SshConfig {
    /// Reads `path` and its includes. `home` is the local home directory (`~`, `%d`, relative
    /// `Include`s), `local_user` the local user name (`%u`, `Match localuser`).
    pub fn load(path: &Path, home: Option<&Path>, local_user: &str) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_text(&text, path, home, local_user)
    }

    /// Parses `text` as the contents of `path` (named in errors and sources; its `Include`s are
    /// read from disk).
    pub fn parse_text(
        text: &str,
        path: &Path,
        home: Option<&Path>,
        local_user: &str,
    ) -> Result<Self, Error> {
        let mut cfg = SshConfig {
            blocks: Vec::new(),
            files: Vec::new(),
            home: home.map(Path::to_path_buf),
            local_user: local_user.to_string(),
        };
        let mut parser = Parser { cfg: &mut cfg };
        parser.file(text, path, 0, &[])?;
        Ok(cfg)
    }
}

struct Parser<'a> {
    cfg: &'a mut SshConfig,
}

impl Parser<'_> {
    fn file(
        &mut self,
        text: &str,
        path: &Path,
        depth: usize,
        outer: &[Condition],
    ) -> Result<(), Error> {
        if self.cfg.files.len() >= MAX_FILES {
            return Err(Error::SshConfig {
                path: path.to_path_buf(),
                line: 0,
                message: format!("more than {MAX_FILES} files read through Include"),
            });
        }
        self.cfg.files.push(path.to_path_buf());
        let file: Arc<Path> = Arc::from(path);
        let mut block = Block {
            conditions: outer.to_vec(),
            settings: Vec::new(),
        };
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |message: String| Error::SshConfig {
                path: path.to_path_buf(),
                line,
                message,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            // `Keyword value`, `Keyword=value`, `Keyword = value`.
            let split = trimmed
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(trimmed.len());
            let (keyword, rest) = trimmed.split_at(split);
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let args = words(rest).ok_or_else(|| err(format!("{keyword}: unterminated quote")))?;
            let lower = keyword.to_ascii_lowercase();
            let source = Source {
                file: file.clone(),
                line,
            };
            match lower.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(err("Host: needs at least one pattern".into()));
                    }
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: with(outer, Condition::Host(patterns(&args))),
                            settings: Vec::new(),
                        },
                    ));
                }
                "match" => {
                    let criteria = parse_match(&args).map_err(|m| err(format!("Match: {m}")))?;
                    let unsupported: Vec<&str> = criteria
                        .iter()
                        .filter_map(|(_, c)| match c {
                            Criterion::Unsupported(k) => Some(k.as_str()),
                            _ => None,
                        })
                        .collect();
                    let mut settings = Vec::new();
                    if !unsupported.is_empty() {
                        settings.push(Setting {
                            value: Value::Ignored(format!("Match {}", unsupported.join(" "))),
                            source: source.clone(),
                        });
                    }
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: with(outer, Condition::Match(criteria)),
                            settings,
                        },
                    ));
                }
                "include" => {
                    if args.is_empty() {
                        return Err(err("Include: needs a file".into()));
                    }
                    if depth + 1 >= MAX_INCLUDE_DEPTH {
                        return Err(err(format!(
                            "Include nested more than {MAX_INCLUDE_DEPTH} levels deep (an include cycle?)"
                        )));
                    }
                    let conditions = block.conditions.clone();
                    self.push(std::mem::replace(
                        &mut block,
                        Block {
                            conditions: conditions.clone(),
                            settings: Vec::new(),
                        },
                    ));
                    for pattern in &args {
                        for included in self.include_files(pattern) {
                            let text = std::fs::read_to_string(&included).map_err(|e| {
                                err(format!("Include: cannot read {}: {e}", included.display()))
                            })?;
                            self.file(&text, &included, depth + 1, &conditions)?;
                        }
                    }
                }
                // The command is the rest of the line as written, quotes and all: it is run
                // by the shell.
                "proxycommand" if !rest.trim().is_empty() => {
                    block.settings.push(Setting {
                        value: Value::ProxyCommand(rest.trim().to_string()),
                        source,
                    });
                }
                _ => {
                    let value = parse_directive(&lower, keyword, &args).map_err(err)?;
                    block.settings.push(Setting { value, source });
                }
            }
        }
        self.push(block);
        Ok(())
    }

    fn push(&mut self, block: Block) {
        if !block.settings.is_empty() {
            self.cfg.blocks.push(block);
        }
    }

    /// The files an `Include` argument names, in lexical order.
    fn include_files(&self, pattern: &str) -> Vec<PathBuf> {
        let home = self.cfg.home.clone().unwrap_or_default();
        let expanded = match pattern.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(pattern),
        };
        let full = if expanded.is_absolute() {
            expanded
        } else {
            home.join(".ssh").join(expanded)
        };
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            return if full.is_file() {
                vec![full]
            } else {
                Vec::new()
            };
        }
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        // As glob(3): a leading dot is matched only by a leading dot.
                        (!n.starts_with('.') || name.starts_with('.'))
                            && glob(name.as_bytes(), n.as_bytes())
                    })
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }
}

fn with(outer: &[Condition], c: Condition) -> Vec<Condition> {
    let mut v = outer.to_vec();
    v.push(c);
    v
}

fn parse_match(args: &[String]) -> Result<Vec<(bool, Criterion)>, String> {
    if args.is_empty() {
        return Err("needs criteria (all, host, user, ...)".into());
    }
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(word) = it.next() {
        let (negated, name) = match word.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, word.as_str()),
        };
        let lower = name.to_ascii_lowercase();
        let mut arg = || {
            it.next()
                .map(|a| patterns(std::slice::from_ref(a)))
                .ok_or_else(|| format!("{name} needs an argument"))
        };
        let c = match lower.as_str() {
            "all" => Criterion::All,
            "canonical" | "final" => Criterion::Unsupported(lower),
            "host" => Criterion::Host(arg()?),
            "originalhost" => Criterion::OriginalHost(arg()?),
            "user" => Criterion::User(arg()?),
            "localuser" => Criterion::LocalUser(arg()?),
            "exec" | "localnetwork" | "tagged" => {
                arg()?;
                Criterion::Unsupported(lower)
            }
            other => return Err(format!("unknown criterion {other:?}")),
        };
        out.push((negated, c));
    }
    Ok(out)
}

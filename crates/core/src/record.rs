//! One host's result as one line of JSON: the schema of `fleetsh run -o json` (and of `put`
//! and `get`), written from a [`HostResult`] by [`write_line`] ([`RecordRef`]) and read back by
//! [`parse_line`] or [`parse_lines`] into a [`Record`], which rebuilds the [`HostResult`]
//! ([`Record::into_host_result`]).
//!
//! Each line is one JSON object with these fields, in this order:
//!
//! | Field | JSON type | Meaning |
//! |---|---|---|
//! | `host` | string | The host name or address, without user, port or brackets. |
//! | `port` | number or `null` | The SSH port the host was connected on. |
//! | `user` | string or `null` | The login user. |
//! | `exit_code` | number or `null` | The command's exit status; `null` when the server sent none (the command was killed by a signal, the host failed, or the job was a transfer). |
//! | `signal` | string or `null` | The signal that killed the command, without `SIG` (`KILL`). |
//! | `stdout` | string | Captured standard output, at most the job's output cap in bytes, decoded as UTF-8. |
//! | `stderr` | string | Captured standard error, likewise. |
//! | `truncated` | boolean | Output was dropped because it exceeded the cap. |
//! | `lossy` | boolean | `stdout` or `stderr` was not valid UTF-8: each invalid sequence is written as U+FFFD. |
//! | `error` | object or `null` | Why the host failed: `{"kind": ..., "message": ...}`, the kind being one of [`ErrorKind::as_str`]'s names. |
//! | `attempts` | number | Connection attempts made (1 + retries used; 0 for a host never started). |
//! | `timings_ms` | object | Time spent in each phase from the host's start, in milliseconds with three decimals (microseconds): `connect`, `handshake_auth`, `channel_open`, `exec`, `read`, `close`, `first_byte`, `total` ([`Timings`]); `null` for a phase not reached. `total` is always written. |
//! | `files` | number | Transfers only (absent otherwise): files completely transferred. |
//! | `bytes` | number | Transfers only (absent otherwise): bytes of file data transferred. |
//! | `server` | object | Absent when the handshake did not get that far: `{"version": ..., "kex": ..., "host_key": ..., "cipher": ...}`, the server's identification line and the algorithms negotiated ([`ServerInfo`]). |
//!
//! A line does not record the host's position in the run's host list (lines are written in the
//! order hosts finish), whether the job only connected ([`HostResult::connect_only`]), nor the
//! original bytes of output that was not valid UTF-8.
//!
//! When reading, every field but `host` may be missing (it reads as `null`, `false`, 0 or empty)
//! and unknown fields are ignored.
//!
//! ```
//! use fleetsh_core::record::{parse_line, write_line};
//! use fleetsh_core::{ErrorKind, HostError, HostResult, HostTarget};
//!
//! let target = HostTarget::new("web1").with_user("root").with_port(22);
//! let error = HostError::new(ErrorKind::Connect, "connection refused");
//! let mut r = HostResult::failed(0, target, error);
//! r.attempts = 1;
//! let mut line = Vec::new();
//! write_line(&r, &mut line);
//! let record = parse_line(1, std::str::from_utf8(&line).unwrap()).unwrap();
//! assert!(record.failed());
//! assert_eq!(record.into_host_result(0), r);
//! ```

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::event::{ErrorKind, HostError, HostResult, ServerInfo, Timings};
use crate::hosts::HostTarget;
use crate::transfer::TransferStats;

/// One host's result as written: borrowed from the [`HostResult`] and serialised straight into
/// the output (no intermediate JSON value).
#[derive(Debug, Serialize)]
pub struct RecordRef<'a> {
    host: &'a str,
    port: Option<u16>,
    user: Option<&'a str>,
    exit_code: Option<u32>,
    signal: Option<&'a str>,
    stdout: Cow<'a, str>,
    stderr: Cow<'a, str>,
    truncated: bool,
    lossy: bool,
    error: Option<ErrorRef<'a>>,
    attempts: u32,
    timings_ms: TimingsMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a ServerInfo>,
}

#[derive(Debug, Serialize)]
struct ErrorRef<'a> {
    kind: &'a str,
    message: &'a str,
}

impl<'a> RecordRef<'a> {
    /// The line of `r`. Output that is valid UTF-8 is borrowed as it is; anything else is
    /// copied with U+FFFD replacements, which is what `lossy` reports (one validation per
    /// stream).
    pub fn new(r: &'a HostResult) -> Self {
        let stdout = String::from_utf8_lossy(&r.stdout);
        let stderr = String::from_utf8_lossy(&r.stderr);
        let lossy = matches!(stdout, Cow::Owned(_)) || matches!(stderr, Cow::Owned(_));
        RecordRef {
            host: &r.target.host,
            port: r.target.port,
            user: r.target.user.as_deref(),
            exit_code: r.exit_code,
            signal: r.signal.as_deref(),
            stdout,
            stderr,
            truncated: r.truncated,
            lossy,
            error: r.error.as_ref().map(|e| ErrorRef {
                kind: e.kind.as_str(),
                message: &e.message,
            }),
            attempts: r.attempts,
            timings_ms: TimingsMs::from_timings(&r.timings),
            files: r.transfer.map(|t| t.files),
            bytes: r.transfer.map(|t| t.bytes),
            server: r.server.as_ref(),
        }
    }
}

impl<'a> From<&'a HostResult> for RecordRef<'a> {
    fn from(r: &'a HostResult) -> Self {
        RecordRef::new(r)
    }
}

/// Appends `r` to `out` as one JSON line, newline included.
pub fn write_line(r: &HostResult, out: &mut Vec<u8>) {
    // Serialising into a Vec cannot fail: the fields are strings, numbers and booleans.
    let _ = serde_json::to_writer(&mut *out, &RecordRef::new(r));
    out.push(b'\n');
}

/// Appends `r`, a result read back from a line ([`Record::into_host_result`]), as one JSON
/// line: as [`write_line`], with `lossy` kept from the line it was read from (its output holds
/// the replacement characters, not the bytes that were invalid).
pub fn write_recorded_line(r: &HostResult, lossy: bool, out: &mut Vec<u8>) {
    let mut line = RecordRef::new(r);
    line.lossy |= lossy;
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

/// The `timings_ms` object: each phase of [`Timings`] in milliseconds, rounded to the
/// microsecond; `None` (`null`) for a phase not reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimingsMs {
    /// [`Timings::connect`].
    pub connect: Option<f64>,
    /// [`Timings::handshake_auth`].
    pub handshake_auth: Option<f64>,
    /// [`Timings::channel_open`].
    pub channel_open: Option<f64>,
    /// [`Timings::exec`].
    pub exec: Option<f64>,
    /// [`Timings::read`].
    pub read: Option<f64>,
    /// [`Timings::close`].
    pub close: Option<f64>,
    /// [`Timings::first_byte`].
    pub first_byte: Option<f64>,
    /// [`Timings::total`]: always written.
    pub total: Option<f64>,
}

impl TimingsMs {
    /// `t` in milliseconds.
    pub fn from_timings(t: &Timings) -> Self {
        TimingsMs {
            connect: ms(t.connect),
            handshake_auth: ms(t.handshake_auth),
            channel_open: ms(t.channel_open),
            exec: ms(t.exec),
            read: ms(t.read),
            close: ms(t.close),
            first_byte: ms(t.first_byte),
            total: ms(Some(t.total)),
        }
    }

    /// The [`Timings`] these milliseconds stand for, to the microsecond; a missing `total`
    /// reads as zero.
    pub fn to_timings(&self) -> Timings {
        Timings {
            connect: self.connect.map(duration),
            handshake_auth: self.handshake_auth.map(duration),
            channel_open: self.channel_open.map(duration),
            exec: self.exec.map(duration),
            read: self.read.map(duration),
            close: self.close.map(duration),
            first_byte: self.first_byte.map(duration),
            total: self.total.map(duration).unwrap_or_default(),
        }
    }
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

/// Milliseconds as a duration, to the microsecond; a negative value reads as zero.
fn duration(ms: f64) -> Duration {
    let micros = (ms * 1e3).round();
    if micros.is_finite() && micros > 0.0 {
        // Saturates for values beyond `u64::MAX` microseconds.
        Duration::from_micros(micros as u64)
    } else {
        Duration::ZERO
    }
}

/// One host's result as read back from a line ([`parse_line`]): the fields of the line, owned.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// `host`: the host name or address.
    pub host: String,
    /// `port`: the SSH port the host was connected on.
    #[serde(default)]
    pub port: Option<u16>,
    /// `user`: the login user.
    #[serde(default)]
    pub user: Option<String>,
    /// `exit_code`: the command's exit status, if the server sent one.
    #[serde(default)]
    pub exit_code: Option<u32>,
    /// `signal`: the signal that killed the command, without `SIG`.
    #[serde(default)]
    pub signal: Option<String>,
    /// `stdout`: captured standard output as written (invalid UTF-8 already replaced).
    #[serde(default)]
    pub stdout: String,
    /// `stderr`: captured standard error as written.
    #[serde(default)]
    pub stderr: String,
    /// `truncated`: output was dropped because it exceeded the cap.
    #[serde(default)]
    pub truncated: bool,
    /// `lossy`: `stdout` or `stderr` had invalid UTF-8 when written.
    #[serde(default)]
    pub lossy: bool,
    /// `error`: why the host failed, its kind parsed back from its name.
    #[serde(default, deserialize_with = "error_field")]
    pub error: Option<HostError>,
    /// `attempts`: connection attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// `timings_ms`: each phase's time in milliseconds.
    #[serde(default)]
    pub timings_ms: TimingsMs,
    /// `files`: files completely transferred (transfers only).
    #[serde(default)]
    pub files: Option<u64>,
    /// `bytes`: bytes of file data transferred (transfers only).
    #[serde(default)]
    pub bytes: Option<u64>,
    /// `server`: the server's identification and the algorithms negotiated.
    #[serde(default)]
    pub server: Option<ServerInfo>,
}

/// The `error` object, with a kind that must be one of [`ErrorKind::as_str`]'s names.
fn error_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HostError>, D::Error> {
    #[derive(Deserialize)]
    #[serde(expecting = "an object with a kind and a message")]
    struct Raw {
        kind: String,
        message: String,
    }
    let Some(raw) = Option::<Raw>::deserialize(d)? else {
        return Ok(None);
    };
    let kind = raw
        .kind
        .parse::<ErrorKind>()
        .map_err(serde::de::Error::custom)?;
    Ok(Some(HostError::new(kind, raw.message)))
}

impl Record {
    /// Whether the host failed: it has an error, was killed by a signal, or exited with a
    /// status other than 0 (or none). A transfer (a line with `bytes`) has no exit status and
    /// fails only with an error.
    pub fn failed(&self) -> bool {
        let transfer = self.bytes.is_some();
        self.error.is_some() || self.signal.is_some() || (!transfer && self.exit_code != Some(0))
    }

    /// The host as run: its name, with the user and port recorded.
    pub fn target(&self) -> HostTarget {
        HostTarget {
            user: self.user.clone(),
            host: self.host.clone(),
            port: self.port,
        }
    }

    /// The [`HostResult`] this line records, at position `index` in the run's host list (a line
    /// does not record it). Output is the text as written, timings are to the microsecond, and
    /// the result is not [`connect_only`](HostResult::connect_only).
    pub fn into_host_result(self, index: usize) -> HostResult {
        let transfer = self.bytes.map(|bytes| TransferStats {
            files: self.files.unwrap_or(0),
            bytes,
        });
        HostResult {
            index,
            target: HostTarget {
                user: self.user,
                host: self.host,
                port: self.port,
            },
            exit_code: self.exit_code,
            signal: self.signal,
            stdout: self.stdout.into_bytes(),
            stderr: self.stderr.into_bytes(),
            truncated: self.truncated,
            error: self.error,
            timings: self.timings_ms.to_timings(),
            attempts: self.attempts,
            transfer,
            connect_only: false,
            server: self.server,
        }
    }
}

/// A line that is not a host's result: its 1-based number in the text and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{line}: {problem}")]
pub struct LineError {
    /// The line's number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a line ([`LineError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The line is not JSON.
    #[error("not a JSON object: {0}")]
    NotJson(serde_json::Error),
    /// The line is JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// The object has no `host` string.
    #[error("no \"host\" field (is this `fleetsh run -o json` output?)")]
    NoHost,
    /// A field has a value of the wrong type, or an error kind that is not one of
    /// [`ErrorKind::as_str`]'s names.
    #[error("bad \"{field}\" field: {error}")]
    BadField {
        /// The field's name.
        field: String,
        /// What is wrong with its value.
        error: serde_json::Error,
    },
}

/// Reads line number `line` (from 1), the text `text` without its newline, as a host's result.
///
/// # Errors
///
/// [`LineError`] with the line number when the text is not JSON, not an object, has no `host`
/// string, or has a field of the wrong type.
pub fn parse_line(line: usize, text: &str) -> Result<Record, LineError> {
    read(text).map_err(|problem| LineError { line, problem })
}

/// Every line of `text` (JSON lines, as `fleetsh run -o json` writes them) read as a host's
/// result, in order; blank lines are skipped, lines are numbered from 1.
pub fn parse_lines(text: &str) -> impl Iterator<Item = Result<Record, LineError>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(i + 1, l))
}

fn read(text: &str) -> Result<Record, Problem> {
    // A well-formed object is read in one pass; anything else is read again as a JSON value to
    // say what is wrong with it.
    if text.trim_start().starts_with('{')
        && let Ok(record) = serde_json::from_str::<Record>(text)
    {
        return Ok(record);
    }
    let value: Value = serde_json::from_str(text).map_err(Problem::NotJson)?;
    let Value::Object(fields) = value else {
        return Err(Problem::NotAnObject);
    };
    let Some(host) = fields.get("host").filter(|h| h.is_string()).cloned() else {
        return Err(Problem::NoHost);
    };
    // Duplicate fields (the last one counts, as in any JSON value) are read here.
    let error = match Record::deserialize(Value::Object(fields.clone())) {
        Ok(record) => return Ok(record),
        Err(error) => error,
    };
    // The first field that cannot be read on its own beside the host is the one to name.
    let bad = fields.into_iter().find_map(|(name, v)| {
        let mut alone = Map::new();
        alone.insert("host".to_string(), host.clone());
        alone.insert(name.clone(), v);
        Record::deserialize(Value::Object(alone))
            .err()
            .map(|error| (name, error))
    });
    let (field, error) = bad.unwrap_or_else(|| ("?".to_string(), error));
    Err(Problem::BadField { field, error })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn line(r: &HostResult) -> String {
        let mut out = Vec::new();
        write_line(r, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        String::from_utf8(out).unwrap()
    }

    fn round_trip(r: &HostResult) -> Record {
        let text = line(r);
        let record = parse_line(1, text.trim_end_matches('\n')).unwrap();
        assert_eq!(record.clone().into_host_result(r.index), *r, "{text}");
        record
    }

    fn command(exit: Option<u32>) -> HostResult {
        HostResult {
            index: 7,
            target: HostTarget::new("web1").with_user("root").with_port(2222),
            exit_code: exit,
            signal: None,
            stdout: b"hi\n\"quoted\"\t\x01".to_vec(),
            stderr: "warn: \u{e9}\n".as_bytes().to_vec(),
            truncated: true,
            error: None,
            timings: Timings {
                connect: Some(Duration::from_micros(4979)),
                handshake_auth: Some(Duration::from_micros(11_574)),
                channel_open: Some(Duration::from_millis(5)),
                exec: Some(Duration::from_micros(1)),
                read: Some(Duration::ZERO),
                close: None,
                first_byte: Some(Duration::from_secs(3600)),
                total: Duration::from_micros(23_841),
            },
            attempts: 2,
            transfer: None,
            connect_only: false,
            server: None,
        }
    }

    #[test]
    fn the_server_is_written_last_and_read_back() {
        let mut r = command(Some(0));
        r.server = Some(ServerInfo {
            version: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".into(),
            kex: "curve25519-sha256".into(),
            host_key: "ssh-ed25519".into(),
            cipher: "aes256-gcm@openssh.com".into(),
        });
        let text = line(&r);
        assert!(
            text.ends_with(concat!(
                r#""total":23.841},"server":{"version":"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3","#,
                r#""kex":"curve25519-sha256","host_key":"ssh-ed25519","#,
                r#""cipher":"aes256-gcm@openssh.com"}}"#,
                "\n"
            )),
            "{text}"
        );
        assert_eq!(round_trip(&r).server, r.server);
        // A partial object reads with empty fields, as every other field of a line does.
        let partial =
            parse_line(1, r#"{"host":"h","server":{"kex":"curve25519-sha256"}}"#).unwrap();
        let s = partial.server.unwrap();
        assert_eq!(
            (s.kex.as_str(), s.version.as_str()),
            ("curve25519-sha256", "")
        );
    }

    #[test]
    fn writes_the_documented_shape() {
        assert_eq!(
            line(&command(Some(3))),
            concat!(
                r#"{"host":"web1","port":2222,"user":"root","exit_code":3,"signal":null,"#,
                r#""stdout":"hi\n\"quoted\"\t\u0001","stderr":"warn: é\n","truncated":true,"#,
                r#""lossy":false,"error":null,"attempts":2,"timings_ms":{"connect":4.979,"#,
                r#""handshake_auth":11.574,"channel_open":5.0,"exec":0.001,"read":0.0,"#,
                r#""close":null,"first_byte":3600000.0,"total":23.841}}"#,
                "\n"
            )
        );
        let mut t = HostResult::failed(
            0,
            HostTarget::new("h"),
            HostError::new(ErrorKind::Transfer, "no sftp"),
        );
        t.transfer = Some(TransferStats {
            files: 2,
            bytes: 10,
        });
        assert_eq!(
            line(&t),
            concat!(
                r#"{"host":"h","port":null,"user":null,"exit_code":null,"signal":null,"#,
                r#""stdout":"","stderr":"","truncated":false,"lossy":false,"#,
                r#""error":{"kind":"transfer","message":"no sftp"},"attempts":0,"#,
                r#""timings_ms":{"connect":null,"handshake_auth":null,"channel_open":null,"#,
                r#""exec":null,"read":null,"close":null,"first_byte":null,"total":0.0},"#,
                r#""files":2,"bytes":10}"#,
                "\n"
            )
        );
    }

    #[test]
    fn timings_are_rounded_to_the_microsecond() {
        let t = Timings {
            connect: Some(Duration::from_nanos(1_499)),
            total: Duration::from_nanos(2_500),
            ..Timings::default()
        };
        let ms = TimingsMs::from_timings(&t);
        assert_eq!(ms.connect, Some(0.001));
        assert_eq!(ms.total, Some(0.003));
        assert_eq!(ms.to_timings().connect, Some(Duration::from_micros(1)));
        assert_eq!(duration(-1.0), Duration::ZERO);
    }

    #[test]
    fn command_results_round_trip() {
        for exit in [Some(0), Some(3), None] {
            let r = command(exit);
            let record = round_trip(&r);
            assert_eq!(record.failed(), exit != Some(0));
            assert_eq!(record.target(), r.target);
        }
        let mut bare = command(Some(0));
        bare.target = HostTarget::new("::1");
        bare.stdout.clear();
        bare.stderr.clear();
        assert!(!round_trip(&bare).failed());
    }

    #[test]
    fn signals_round_trip_and_fail() {
        let mut r = command(None);
        r.signal = Some("KILL".into());
        assert!(round_trip(&r).failed());
    }

    #[test]
    fn errors_round_trip_with_every_kind() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
            let mut r = command(None);
            r.error = Some(HostError::new(kind, format!("{kind} went wrong: \"x\"")));
            assert!(round_trip(&r).failed());
        }
        assert!("nope".parse::<ErrorKind>().is_err());
    }

    #[test]
    fn transfers_round_trip_and_fail_only_with_an_error() {
        let mut r = command(None);
        r.stdout.clear();
        r.stderr.clear();
        r.transfer = Some(TransferStats {
            files: 3,
            bytes: 1 << 40,
        });
        let record = round_trip(&r);
        assert_eq!((record.files, record.bytes), (Some(3), Some(1 << 40)));
        assert!(!record.failed(), "no exit status, no error");
        r.error = Some(HostError::new(ErrorKind::Transfer, "refused"));
        assert!(round_trip(&r).failed());
        r.transfer = Some(TransferStats::default());
        assert!(round_trip(&r).failed());
    }

    #[test]
    fn lossy_output_is_flagged_and_read_back_as_written() {
        let mut r = command(Some(0));
        r.stdout = b"a\xffb".to_vec();
        let text = line(&r);
        assert!(
            text.contains("\"stdout\":\"a\u{fffd}b\",\"stderr\""),
            "{text}"
        );
        let record = parse_line(1, &text).unwrap();
        assert!(record.lossy);
        assert_eq!(record.stdout, "a\u{fffd}b");
        let back = record.into_host_result(r.index);
        assert_eq!(back.stdout, "a\u{fffd}b".as_bytes());
        assert_eq!(back.stderr, r.stderr);
        let mut only_stderr = command(Some(0));
        only_stderr.stderr = vec![0xc3];
        assert!(parse_line(1, &line(&only_stderr)).unwrap().lossy);
        assert!(!parse_line(1, &line(&command(Some(0)))).unwrap().lossy);
    }

    #[test]
    fn missing_fields_read_as_empty() {
        let record = parse_line(1, r#"{"host":"h","extra":[1]}"#).unwrap();
        assert_eq!(record.target(), HostTarget::new("h"));
        assert!(record.failed(), "no exit status");
        let r = record.into_host_result(0);
        assert_eq!(r.timings, Timings::default());
        assert_eq!(r.transfer, None);
        assert!(
            !parse_line(1, r#"{"host":"h","exit_code":0}"#)
                .unwrap()
                .failed()
        );
        // Duplicate fields: the last one counts, as in any JSON value.
        let dup = parse_line(1, r#"{"host":"a","host":"b"}"#).unwrap();
        assert_eq!(dup.host, "b");
    }

    fn problem(text: &str) -> String {
        parse_line(3, text).unwrap_err().to_string()
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(
            problem("not json"),
            "3: not a JSON object: expected ident at line 1 column 2"
        );
        assert_eq!(
            problem(r#"{"host":"h""#),
            "3: not a JSON object: EOF while parsing an object at line 1 column 11"
        );
        assert_eq!(problem("[1, 2]"), "3: not a JSON object");
        assert_eq!(problem(r#""host""#), "3: not a JSON object");
        let no_host = "3: no \"host\" field (is this `fleetsh run -o json` output?)";
        assert_eq!(problem(r#"{"x":1}"#), no_host);
        assert_eq!(problem(r#"{"host":5}"#), no_host);
        assert_eq!(problem(r#"{"host":null}"#), no_host);
        assert_eq!(
            problem(r#"{"host":"h","exit_code":"x"}"#),
            "3: bad \"exit_code\" field: invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            problem(r#"{"host":"h","port":70000}"#),
            "3: bad \"port\" field: invalid value: integer `70000`, expected u16"
        );
        assert_eq!(
            problem(r#"{"host":"h","error":{"kind":"boom","message":""}}"#),
            "3: bad \"error\" field: unknown error kind \"boom\""
        );
        assert_eq!(
            problem(r#"{"host":"h","error":"boom"}"#),
            "3: bad \"error\" field: invalid type: string \"boom\", expected an object with a kind and a message"
        );
    }

    #[test]
    fn lines_are_numbered_and_blank_ones_skipped() {
        let text = format!("\n{}  \n{{\"x\":1}}\n", line(&command(Some(1))));
        let read: Vec<Result<Record, LineError>> = parse_lines(&text).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].as_ref().unwrap().host, "web1");
        let err = read[1].as_ref().unwrap_err();
        assert_eq!(err.line, 4);
        assert!(matches!(err.problem, Problem::NoHost));
    }
}

//! Output by lines: each host's complete lines as they arrive, stdout and stderr kept apart,
//! then the host's result ([`RunHandle::lines`], [`EventStream::lines`]).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fleetsh_core::{Event, HostResult, HostTarget, StreamKind};

use crate::{Canceller, EventStream, Report, RunHandle};

/// The longest line the adapters hold for one host and stream before handing out what they
/// have as a piece ([`LineEnd::Split`]): 64 KiB. Change it with [`Lines::max_line`] or
/// [`LineStream::max_line`].
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// How a [`Line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineEnd {
    /// A newline (`\n`, or `\r\n`) ended it; the newline is not part of the line.
    Newline,
    /// The line reached the adapter's maximum length without a newline: this is a piece of
    /// it, and the next [`Line`] of the same host and stream continues it.
    Split,
    /// The host's output ended without a newline: these are the stream's last bytes,
    /// delivered just before the host's result.
    Eof,
}

/// One line of one host's output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Line {
    /// The host's index in the run's host list ([`Lines::hosts`]).
    pub index: usize,
    /// Which stream the line came from.
    pub stream: StreamKind,
    /// The line's bytes exactly as the host sent them (any encoding), without the ending
    /// `\n` or `\r\n`; a `\r` elsewhere is kept.
    pub bytes: Vec<u8>,
    /// How the line ended.
    pub end: LineEnd,
}

impl Line {
    /// The line as text: borrowed when it is valid UTF-8, else with each invalid sequence
    /// replaced by U+FFFD (the bytes themselves are in [`Line::bytes`]).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

/// What the line adapters yield: a host's lines, then its one result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LineEvent {
    /// A line of a host's stdout or stderr.
    Line(Line),
    /// A host finished: its result, after all of its lines.
    Finished(Arc<HostResult>),
}

/// Splits each host's output into lines, one buffer per host and stream.
#[derive(Debug)]
struct Splitter {
    /// Whether the job streams output; if not, a host's lines come from its result.
    streaming: bool,
    max_line: usize,
    partial: HashMap<(usize, StreamKind), Vec<u8>>,
    ready: VecDeque<LineEvent>,
}

impl Splitter {
    fn new(streaming: bool) -> Self {
        Splitter {
            streaming,
            max_line: DEFAULT_MAX_LINE,
            partial: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    fn accept(&mut self, ev: Event) {
        match ev {
            Event::Output { host, stream, data } => self.push(host, stream, &data),
            Event::Finished(r) => self.finish(r),
            _ => {}
        }
    }

    fn emit(&mut self, index: usize, stream: StreamKind, bytes: Vec<u8>, end: LineEnd) {
        self.ready.push_back(LineEvent::Line(Line {
            index,
            stream,
            bytes,
            end,
        }));
    }

    /// Adds `data` of host `index`'s `stream`: every complete line is ready at once; the rest
    /// waits, handed out in pieces of `max_line` bytes when it grows past that.
    fn push(&mut self, index: usize, stream: StreamKind, data: &[u8]) {
        let key = (index, stream);
        let mut buf = self.partial.remove(&key).unwrap_or_default();
        let mut rest = data;
        loop {
            let (part, newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (rest.get(..at).unwrap_or_default(), Some(at)),
                None => (rest, None),
            };
            let mut part = part;
            while !part.is_empty() {
                if buf.len() >= self.max_line {
                    let piece = std::mem::take(&mut buf);
                    self.emit(index, stream, piece, LineEnd::Split);
                }
                let take = (self.max_line - buf.len()).min(part.len());
                let (now, later) = part.split_at(take);
                buf.extend_from_slice(now);
                part = later;
            }
            let Some(at) = newline else { break };
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            let line = std::mem::take(&mut buf);
            self.emit(index, stream, line, LineEnd::Newline);
            rest = rest.get(at + 1..).unwrap_or_default();
        }
        if !buf.is_empty() {
            self.partial.insert(key, buf);
        }
    }

    /// Host `r.index` finished: without streaming its lines come from the result now; its
    /// partial lines (stdout, then stderr) are handed out, then the result.
    fn finish(&mut self, r: Arc<HostResult>) {
        for stream in [StreamKind::Stdout, StreamKind::Stderr] {
            if !self.streaming {
                let captured = match stream {
                    StreamKind::Stdout => &r.stdout,
                    StreamKind::Stderr => &r.stderr,
                };
                self.push(r.index, stream, captured);
            }
            if let Some(rest) = self.partial.remove(&(r.index, stream)) {
                self.emit(r.index, stream, rest, LineEnd::Eof);
            }
        }
        self.ready.push_back(LineEvent::Finished(r));
    }
}

/// A run's output by lines, blocking ([`RunHandle::lines`]): an iterator of [`LineEvent`]s.
///
/// For each host, its stdout lines are in the order sent, and so are its stderr lines (the two
/// streams are split apart, each with its own buffer; how they interleave follows arrival);
/// a last line without a newline comes when the host finishes ([`LineEnd::Eof`]), then the
/// host's [`LineEvent::Finished`]. Hosts interleave freely. Dropping it cancels the run.
///
/// With [`Job::stream_output`](crate::Job::stream_output) on, lines arrive while the hosts
/// run, and all of the output is split, beyond the job's output cap too. With it off (the
/// default), each host's lines come from its result when it finishes: at most
/// [`Job::output_cap`](crate::Job::output_cap) bytes per stream, as captured.
///
/// A line longer than [`Lines::max_line`] (default [`DEFAULT_MAX_LINE`]) is handed out in
/// pieces ([`LineEnd::Split`]), so a host sending endless output without a newline holds at
/// most that much memory here per stream.
#[derive(Debug)]
#[must_use = "dropping Lines cancels the run"]
pub struct Lines {
    handle: RunHandle,
    splitter: Splitter,
}

impl RunHandle {
    /// This run's output by lines: each host's complete lines as they arrive, stdout and
    /// stderr apart, its last partial line when it finishes, then its result (see [`Lines`]).
    ///
    /// ```
    /// use fleetsh::{Engine, HostTarget, Job, LineEvent};
    /// use fleetsh_sim::{SimConfig, SimFleet};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let sim = SimFleet::start(SimConfig {
    ///     count: 2,
    ///     port: 0,
    ///     state_dir: dir.path().to_path_buf(),
    ///     ..SimConfig::default()
    /// })?;
    /// let hosts: Vec<HostTarget> = sim
    ///     .hosts()
    ///     .iter()
    ///     .map(|h| HostTarget::new(h.addr.ip().to_string()).with_port(h.addr.port()))
    ///     .collect();
    /// let engine = Engine::builder()
    ///     .user("demo")
    ///     .no_agent()
    ///     .identity_file(sim.client_key_file())
    ///     .known_hosts(sim.known_hosts_file())
    ///     .build()?;
    /// let job = Job::new("echo one; echo two >&2; echo -n three").stream_output(true);
    /// let mut lines = 0;
    /// for event in engine.run(hosts, job)?.lines() {
    ///     match event {
    ///         LineEvent::Line(line) => {
    ///             println!("{} {:?}: {}", line.index, line.stream, line.text());
    ///             lines += 1;
    ///         }
    ///         LineEvent::Finished(result) => assert!(result.is_ok()),
    ///         _ => {}
    ///     }
    /// }
    /// assert_eq!(lines, 6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lines(self) -> Lines {
        let streaming = self.job().stream_output;
        Lines {
            handle: self,
            splitter: Splitter::new(streaming),
        }
    }
}

impl Lines {
    /// Sets the longest line held per host and stream before it is handed out in pieces
    /// ([`LineEnd::Split`]); at least 1 byte. Default [`DEFAULT_MAX_LINE`].
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.splitter.max_line = bytes.max(1);
        self
    }

    /// The run's hosts; [`Line::index`] and results name hosts by their index here.
    pub fn hosts(&self) -> &[HostTarget] {
        self.handle.hosts()
    }

    /// Cancels the run (see [`RunHandle::cancel`]).
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// A cloneable handle that cancels the run from any thread.
    pub fn canceller(&self) -> Canceller {
        self.handle.canceller()
    }

    /// Waits for every host and returns the report (lines not read yet are dropped).
    pub fn join(self) -> Report {
        self.handle.join()
    }

    /// The next line or result if one can be had without waiting (see
    /// [`RunHandle::try_next_event`]); `None` when nothing is ready yet or the run is over.
    pub fn try_next(&mut self) -> Option<LineEvent> {
        loop {
            if let Some(ev) = self.splitter.ready.pop_front() {
                return Some(ev);
            }
            let ev = self.handle.try_next_event()?;
            self.splitter.accept(ev);
        }
    }
}

impl Iterator for Lines {
    type Item = LineEvent;
    fn next(&mut self) -> Option<LineEvent> {
        loop {
            if let Some(ev) = self.splitter.ready.pop_front() {
                return Some(ev);
            }
            let ev = self.handle.next_event()?;
            self.splitter.accept(ev);
        }
    }
}

/// A run's output by lines, async ([`EventStream::lines`]): a `futures_core::Stream` of
/// [`LineEvent`]s, in the same order and with the same rules as [`Lines`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct LineStream {
    events: EventStream,
    splitter: Splitter,
}

impl EventStream {
    /// This run's output by lines (see [`Lines`] for the order, the limits, and what
    /// [`Job::stream_output`](crate::Job::stream_output) changes).
    pub fn lines(self) -> LineStream {
        let streaming = self.job().stream_output;
        LineStream {
            events: self,
            splitter: Splitter::new(streaming),
        }
    }
}

impl LineStream {
    /// Sets the longest line held per host and stream (see [`Lines::max_line`]).
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.splitter.max_line = bytes.max(1);
        self
    }

    /// The run's hosts; [`Line::index`] and results name hosts by their index here.
    pub fn hosts(&self) -> &[HostTarget] {
        self.events.hosts()
    }

    /// Cancels the run (see [`RunHandle::cancel`]).
    pub fn cancel(&self) {
        self.events.cancel();
    }

    /// A cloneable handle that cancels the run from any thread or task.
    pub fn canceller(&self) -> Canceller {
        self.events.canceller()
    }

    /// Consumes the rest of the run and returns the report (lines not read yet are dropped).
    pub async fn join(self) -> Report {
        self.events.join().await
    }
}

impl futures_core::Stream for LineStream {
    type Item = LineEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LineEvent>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.splitter.ready.pop_front() {
                return Poll::Ready(Some(ev));
            }
            match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Ready(Some(ev)) => this.splitter.accept(ev),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetsh_core::{HostError, HostTarget};

    fn lines(s: &mut Splitter) -> Vec<(usize, StreamKind, Vec<u8>, LineEnd)> {
        s.ready
            .drain(..)
            .filter_map(|e| match e {
                LineEvent::Line(l) => Some((l.index, l.stream, l.bytes, l.end)),
                LineEvent::Finished(_) => None,
            })
            .collect()
    }

    fn result(index: usize, stdout: &[u8], stderr: &[u8]) -> Arc<HostResult> {
        let mut r = HostResult::failed(
            index,
            HostTarget::new("h"),
            HostError::new(fleetsh_core::ErrorKind::Internal, "x"),
        );
        r.stdout = stdout.to_vec();
        r.stderr = stderr.to_vec();
        Arc::new(r)
    }

    use LineEnd::{Eof, Newline, Split};
    use StreamKind::{Stderr, Stdout};

    #[test]
    fn lines_split_across_chunks_and_streams_stay_apart() {
        let mut s = Splitter::new(true);
        s.push(0, Stdout, b"al");
        s.push(0, Stderr, b"err\r");
        s.push(1, Stdout, b"other\n");
        s.push(0, Stdout, b"pha\nbeta\r\n\ngam");
        s.push(0, Stderr, b"\nx\ry\n");
        assert_eq!(
            lines(&mut s),
            [
                (1, Stdout, b"other".to_vec(), Newline),
                (0, Stdout, b"alpha".to_vec(), Newline),
                (0, Stdout, b"beta".to_vec(), Newline),
                (0, Stdout, b"".to_vec(), Newline),
                (0, Stderr, b"err".to_vec(), Newline),
                (0, Stderr, b"x\ry".to_vec(), Newline),
            ]
        );
        s.finish(result(0, b"ignored: streaming", b""));
        assert_eq!(lines(&mut s), [(0, Stdout, b"gam".to_vec(), Eof)]);
        assert!(s.partial.is_empty());
    }

    #[test]
    fn long_lines_come_in_pieces_and_never_grow_past_the_maximum() {
        let mut s = Splitter::new(true);
        s.max_line = 4;
        s.push(2, Stdout, b"abcd");
        assert!(lines(&mut s).is_empty(), "exactly the maximum waits");
        s.push(2, Stdout, b"\n0123456789");
        assert!(s.partial.values().all(|b| b.len() <= 4));
        s.push(2, Stdout, b"\n");
        s.push(2, Stdout, &[0xff, 0xfe, b'z']);
        s.finish(result(2, b"", b""));
        assert_eq!(
            lines(&mut s),
            [
                (2, Stdout, b"abcd".to_vec(), Newline),
                (2, Stdout, b"0123".to_vec(), Split),
                (2, Stdout, b"4567".to_vec(), Split),
                (2, Stdout, b"89".to_vec(), Newline),
                (2, Stdout, vec![0xff, 0xfe, b'z'], Eof),
            ]
        );
    }

    #[test]
    fn without_streaming_lines_come_from_the_result_before_it() {
        let mut s = Splitter::new(false);
        s.finish(result(3, b"a\nb", b"e\n"));
        let all: Vec<LineEvent> = s.ready.drain(..).collect();
        assert_eq!(all.len(), 4);
        let LineEvent::Line(first) = &all[0] else {
            panic!("{all:?}")
        };
        assert_eq!((first.text(), first.end), (Cow::Borrowed("a"), Newline));
        let LineEvent::Line(second) = &all[1] else {
            panic!("{all:?}")
        };
        assert_eq!((second.text(), second.end), (Cow::Borrowed("b"), Eof));
        let LineEvent::Line(third) = &all[2] else {
            panic!("{all:?}")
        };
        assert_eq!((third.stream, third.end), (Stderr, Newline));
        assert!(matches!(&all[3], LineEvent::Finished(r) if r.index == 3));
    }

    #[test]
    fn text_is_lossy_only_for_display() {
        let l = Line {
            index: 0,
            stream: Stdout,
            bytes: vec![b'o', 0xff, b'k'],
            end: Newline,
        };
        assert_eq!(l.text(), "o\u{fffd}k");
        assert_eq!(l.bytes, [b'o', 0xff, b'k']);
    }
}

//! Command output as channel data ([`ChannelSink`]): stdout and stderr with SSH flow
//! control, a terminal's output processing with a pty, and the `drop` fault's cut after the
//! first line.

use std::borrow::Cow;

use russh::ChannelWriteHalf;
use russh::server::Msg;

use super::drop_fault::DropFault;
use super::pump::OutputWait;
use crate::shell::{Closed, Sink, Stream};

/// Sends shell output as channel data (stdout) or extended data 1 (stderr).
///
/// `ChannelWriteHalf::{data_bytes, extended_data_bytes}` reserve window space before each
/// packet and wait for the client's window adjustments: that is the backpressure. (The
/// session `Handle::data` does not wait for window space: it queues without bound.)
///
/// With a pty, output goes through a terminal's output processing: stderr is merged into
/// stdout (both are the terminal) and every `\n` becomes `\r\n` (`onlcr`).
pub(super) struct ChannelSink<'a> {
    pub(super) write: &'a ChannelWriteHalf<Msg>,
    pub(super) output: &'a OutputWait,
    pub(super) pty: bool,
    /// `drop` fault: the connection is cut after the first line of stdout.
    pub(super) drop: Option<DropFault>,
}

impl ChannelSink<'_> {
    /// Sends one piece as it is.
    async fn send(&self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        let _writing = self.output.writing();
        let sent = match (stream, data) {
            (Stream::Stdout, Cow::Borrowed(d)) => self.write.data_bytes(d).await,
            (Stream::Stdout, Cow::Owned(d)) => self.write.data_bytes(d).await,
            (Stream::Stderr, Cow::Borrowed(d)) => self.write.extended_data_bytes(1, d).await,
            (Stream::Stderr, Cow::Owned(d)) => self.write.extended_data_bytes(1, d).await,
        };
        sent.map_err(|_| Closed)
    }
}

impl Sink for ChannelSink<'_> {
    async fn write(&mut self, stream: Stream, data: Cow<'static, [u8]>) -> Result<(), Closed> {
        let (stream, data) = if self.pty {
            (Stream::Stdout, onlcr(data))
        } else {
            (stream, data)
        };
        if stream == Stream::Stdout
            && self.drop.is_some()
            && let Some(end) = data.iter().position(|b| *b == b'\n')
            && let Some(mut fault) = self.drop.take()
        {
            let before = fault.reply_written().await;
            let line = prefix(data, end + 1);
            let len = line.len();
            self.send(stream, line).await?;
            fault.cut_after(before, len).await;
            return Err(Closed);
        }
        self.send(stream, data).await
    }
}

/// The first `len` bytes of `data`, without copying borrowed data.
fn prefix(data: Cow<'static, [u8]>, len: usize) -> Cow<'static, [u8]> {
    match data {
        Cow::Borrowed(d) => Cow::Borrowed(d.get(..len).unwrap_or(d)),
        Cow::Owned(mut d) => {
            d.truncate(len);
            Cow::Owned(d)
        }
    }
}

/// A terminal's `onlcr` output processing: every `\n` becomes `\r\n`.
fn onlcr(data: Cow<'static, [u8]>) -> Cow<'static, [u8]> {
    let newlines = data.iter().filter(|b| **b == b'\n').count();
    if newlines == 0 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + newlines);
    for b in data.iter() {
        if *b == b'\n' {
            out.push(b'\r');
        }
        out.push(*b);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_processing() {
        assert_eq!(onlcr(Cow::Borrowed(b"a\nb\n")).as_ref(), b"a\r\nb\r\n");
        assert_eq!(onlcr(Cow::Borrowed(b"none")).as_ref(), b"none");
        assert!(matches!(onlcr(Cow::Borrowed(b"none")), Cow::Borrowed(_)));
        assert_eq!(prefix(Cow::Borrowed(b"one\ntwo\n"), 4).as_ref(), b"one\n");
        assert_eq!(
            prefix(Cow::Owned(b"one\ntwo\n".to_vec()), 4).as_ref(),
            b"one\n"
        );
    }
}

//! A channel's stdin pump ([`pump_stdin`]) and the signal that tells it the command is
//! writing output ([`OutputWait`]).
//!
//! Each exec request's channel gets a stdin pump: a task that reads the channel's
//! messages and writes their data into a [`STDIN_PIPE`]-byte pipe the command reads as
//! stdin (the client's EOF closes the pipe). russh hands channel messages over through a
//! 100-message queue and stalls the whole session when it is full; it also re-opens the
//! client's window as soon as it has queued the data, so the pump is the only brake:
//!
//! 1. The command reads: the pump moves data into the pipe as room frees up.
//! 2. The command does not read, and the pipe is full: the pump stops reading, the queue
//!    fills and the session waits, which holds the connection's input back like a full
//!    pipe would.
//! 3. The command waits for window space to write its output (`cat` of a big input): the
//!    window adjustment that would free it is queued behind stdin the stalled session has
//!    not read, so waiting would deadlock. The pump then keeps reading into a spill buffer
//!    (up to [`STDIN_SPILL`] bytes) until the command can write again.
//! 4. The command is done with stdin (it ended, or its script did): the rest is drained and
//!    discarded, so unread input never stalls the session for long.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::{ChannelMsg, ChannelReadHalf};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;

/// Capacity of a channel's stdin pipe.
pub(super) const STDIN_PIPE: usize = 4 << 20;

/// Most stdin held beyond the pipe while the command waits for output window space.
const STDIN_SPILL: usize = 64 << 20;

/// Whether a channel's command is writing output (and so possibly waiting for window
/// space); see step 3 of the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct OutputWait {
    writing: AtomicBool,
    /// Wakes the pump when `writing` turns on.
    started: Notify,
}

impl OutputWait {
    /// Marks the command as writing until the guard is dropped.
    pub(super) fn writing(&self) -> WritingGuard<'_> {
        self.writing.store(true, Ordering::Release);
        self.started.notify_one();
        WritingGuard(self)
    }

    pub(super) fn is_writing(&self) -> bool {
        self.writing.load(Ordering::Acquire)
    }
}

/// See [`OutputWait::writing`].
pub(super) struct WritingGuard<'a>(&'a OutputWait);

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        self.0.writing.store(false, Ordering::Release);
    }
}

/// Reads a channel's messages until it closes, feeding its data to the command's stdin
/// pipe; see the [module docs](self) for when it reads and when it waits.
pub(super) async fn pump_stdin(
    mut read: ChannelReadHalf,
    pipe: DuplexStream,
    output: Arc<OutputWait>,
) {
    let mut pipe = Some(pipe);
    // Data read from the channel, not yet in the pipe; `offset` into the front piece.
    let mut queue = VecDeque::new();
    let mut queued = 0usize;
    let mut offset = 0usize;
    let mut eof = false;
    loop {
        if queue.is_empty()
            && eof
            && let Some(mut p) = pipe.take()
        {
            let _ = p.shutdown().await; // the command sees the end of its input
        }
        // Read when nothing waits for the pipe, when there is no pipe any more (discard),
        // or when the command waits to write its output (spill).
        let may_read =
            queue.is_empty() || pipe.is_none() || (output.is_writing() && queued < STDIN_SPILL);
        let front = unsent(&queue, offset);
        tokio::select! {
            written = feed(pipe.as_mut(), front), if pipe.is_some() && front.is_some() => {
                match written {
                    Ok(n) => {
                        offset += n;
                        queued -= n;
                        if unsent(&queue, offset).is_some_and(<[u8]>::is_empty) {
                            queue.pop_front();
                            offset = 0;
                        }
                    }
                    Err(_) => {
                        // The command is done with stdin: discard from now on.
                        pipe = None;
                        queue.clear();
                        queued = 0;
                        offset = 0;
                    }
                }
            }
            msg = read.wait(), if may_read => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if pipe.is_some() && !eof && !data.is_empty() {
                        queued += data.len();
                        queue.push_back(data);
                    }
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(_) => {}
                None => return,
            },
            () = output.started.notified(), if !may_read => {}
        }
    }
}

/// The part of the queue's front piece not written yet. (Generic so that the pieces' type,
/// `bytes::Bytes`, which russh does not re-export, need not be named.)
fn unsent<B: AsRef<[u8]>>(queue: &VecDeque<B>, offset: usize) -> Option<&[u8]> {
    queue.front().and_then(|piece| piece.as_ref().get(offset..))
}

/// Writes some of `data` into the pipe.
async fn feed(pipe: Option<&mut DuplexStream>, data: Option<&[u8]>) -> std::io::Result<usize> {
    match (pipe, data) {
        (Some(pipe), Some(data)) => pipe.write(data).await,
        _ => Ok(0),
    }
}

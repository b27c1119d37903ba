//! The `drop` fault ([`DropFault`]): the connection is cut right after a command's first
//! line of output has reached the wire, or at the end of a command that wrote no whole
//! line.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::stream::CutSwitch;

/// `drop` fault: the longest wait for the exec request's reply to be written.
const DROP_REPLY_WAIT: Duration = Duration::from_secs(1);

/// `drop` fault: the longest wait for the first line to be written; then the connection is
/// cut anyway.
const DROP_LINE_WAIT: Duration = Duration::from_secs(5);

/// Fewest bytes a channel data packet adds on the wire to its data: packet length (4),
/// padding length (1), message type (1), channel (4), data length (4), padding (4 at least)
/// and a MAC or AEAD tag (16 at least with every cipher russh offers).
const MIN_PACKET_OVERHEAD: u64 = 34;

/// How a `drop` host cuts its connection once a command's first line is on the wire.
///
/// The session writes in its own task, so "sent" means "queued" to the command. To make
/// sure the client gets the line, in order:
/// 1. wait until the exec request's reply has been written (so later writes are the
///    command's), and note the bytes written by then;
/// 2. queue the line;
/// 3. arm the stream's [`CutSwitch`] at that count plus the line plus
///    [`MIN_PACKET_OVERHEAD`]: the write that gets there shuts the socket down right after
///    handing the line to the kernel, and the client gets a FIN after it.
///
/// The waits are bounded ([`DROP_REPLY_WAIT`], [`DROP_LINE_WAIT`]), so a client that asked
/// for no reply, or stopped reading, is still cut.
pub(super) struct DropFault {
    switch: Arc<CutSwitch>,
    progress: watch::Receiver<u64>,
    /// Bytes written when the exec request was answered.
    at_exec: u64,
}

impl DropFault {
    /// The fault for a command whose exec request was answered behind `switch`: the bytes
    /// written by now do not include the reply yet (it is queued, not written).
    pub(super) fn new(switch: &Arc<CutSwitch>) -> DropFault {
        DropFault {
            progress: switch.progress(),
            at_exec: switch.written(),
            switch: switch.clone(),
        }
    }

    /// Step 1: waits for the exec reply to be written; the bytes written by then.
    pub(super) async fn reply_written(&mut self) -> u64 {
        let at_exec = self.at_exec;
        let _ =
            tokio::time::timeout(DROP_REPLY_WAIT, self.progress.wait_for(|n| *n > at_exec)).await;
        self.switch.written()
    }

    /// Step 3, for `len` bytes of output queued when `before` bytes were written (`len` 0:
    /// cut at once).
    pub(super) async fn cut_after(self, before: u64, len: usize) {
        if len == 0 {
            self.switch.cut_now();
            return;
        }
        self.switch
            .cut_at(before + len as u64 + MIN_PACKET_OVERHEAD);
        // The session is gone once the cut happens, and this task with it; if the line
        // cannot be written (the client stopped reading), cut anyway.
        tokio::time::sleep(DROP_LINE_WAIT).await;
        self.switch.cut_now();
    }
}

//! The `sftp-cut` fault ([`SftpCut`]): a connection's count of SFTP write data, and the
//! cut once it passes the fault's number of bytes.

use std::sync::Arc;

use crate::stream::CutSwitch;

/// The `sftp-cut` fault of a connection: the switch, the line and the bytes so far.
#[derive(Debug)]
pub(crate) struct SftpCut {
    switch: Arc<CutSwitch>,
    limit: u64,
    /// Shared by the connection's SFTP sessions.
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl SftpCut {
    /// A cut of the connection behind `switch` after `limit` bytes of write data.
    pub(crate) fn new(switch: Arc<CutSwitch>, limit: u64) -> SftpCut {
        SftpCut {
            switch,
            limit,
            received: Arc::default(),
        }
    }

    /// Another session's view of the same connection's count.
    pub(crate) fn share(&self) -> SftpCut {
        SftpCut {
            switch: self.switch.clone(),
            limit: self.limit,
            received: self.received.clone(),
        }
    }

    /// Counts `len` bytes received; how many of them may still be stored, and whether
    /// the connection must be cut after storing them.
    pub(super) fn admit(&self, len: usize) -> (usize, bool) {
        let len = len as u64;
        let before = self
            .received
            .fetch_add(len, std::sync::atomic::Ordering::SeqCst);
        let room = self.limit.saturating_sub(before).min(len);
        (room as usize, before.saturating_add(len) > self.limit)
    }

    /// Cuts the connection, with no reply to the write that crossed the line.
    pub(super) fn cut_now(&self) {
        tracing::debug!(limit = self.limit, "sftp-cut: cutting the connection");
        self.switch.cut_now();
    }
}

//! A read buffer for SSH connections that holds memory only while it holds data.
//!
//! russh reads every packet in two exact reads (the length, then the rest). Straight from the
//! socket that is two `recvfrom` calls per packet (~33 per `echo` host); through a buffer it is
//! one call per burst of packets (~8). `tokio::io::BufReader` keeps its buffer for the life of
//! the connection, 4 KiB per idle session; this one reads into the stack and keeps only the
//! bytes not yet handed out, in an allocation of their size that goes as soon as the last byte
//! is consumed, so an idle session keeps none (docs/benchmarks.md, "Memory per idle session")
//! and a poll that finds nothing allocates nothing.
//!
//! It also acknowledges the first [`QUICK_ACK_READS`] reads of a connection at once
//! ([`AfterRead`]) when nothing is sent in answer: OpenSSH's sshd writes its handshake replies
//! without `TCP_NODELAY`, so Nagle holds its next packet until the previous one is
//! acknowledged, and a client's delayed ACK (40 ms on Linux) would add that much to every
//! host's login. Where the client answers (its NEWKEYS after the key exchange reply, a
//! corrected key exchange packet), the answer carries the acknowledgement and no separate ACK
//! is sent: the ACK waits until the reader has found the stream empty twice with no write in
//! between (the SSH session polls its next read before it writes its answers to the last).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many reads of a connection are acknowledged at once: the handshake and
/// authentication (identification, KEXINIT, key exchange reply, service accept, user auth
/// answers, channel confirmation: 5 to 8 reads); after them, delayed ACKs save packets on
/// long outputs.
pub(crate) const QUICK_ACK_READS: u8 = 8;

/// What a stream does after a read that brought data, while the connection is young.
pub(crate) trait AfterRead {
    /// Called after each of the first [`QUICK_ACK_READS`] reads that brought data.
    fn after_read(&self);
}

impl AfterRead for tokio::net::TcpStream {
    /// Acknowledge what arrived now rather than after the delayed-ACK timer: the kernel
    /// leaves quick-ACK mode on its own, so it is asked again after each read. (Linux only:
    /// elsewhere delayed ACKs stay as the system has them.)
    fn after_read(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(e) = socket2::SockRef::from(self).set_tcp_quickack(true) {
            tracing::trace!("TCP_QUICKACK: {e}");
        }
    }
}

/// Wraps a stream: reads are buffered up to `capacity` bytes at a time, writes pass through.
#[derive(Debug)]
pub(crate) struct ReadBuffered<S> {
    inner: S,
    capacity: usize,
    /// Unread bytes are `buf[pos..]`; `None` (no allocation) when empty.
    buf: Option<Box<[u8]>>,
    pos: usize,
    /// Reads still to acknowledge at once ([`AfterRead`]).
    quick_acks: u8,
    /// An acknowledgement is owed for data read: how many times the stream has been found
    /// empty since, with no write ([`ReadBuffered::waiting`]).
    ack_owed: Option<u8>,
}

impl<S> ReadBuffered<S> {
    pub(crate) fn new(capacity: usize, inner: S) -> Self {
        ReadBuffered {
            inner,
            capacity,
            buf: None,
            pos: 0,
            quick_acks: QUICK_ACK_READS,
            ack_owed: None,
        }
    }

    /// Counts a read that brought data: while the connection is young, an acknowledgement is
    /// owed for it.
    fn read_done(&mut self) {
        if self.quick_acks > 0 {
            self.quick_acks -= 1;
            self.ack_owed = Some(0);
        }
    }

    /// The stream had nothing to read: the second time in a row with no write since data
    /// came, nothing is being sent in answer, so [`AfterRead::after_read`] acknowledges now.
    fn waiting(&mut self)
    where
        S: AfterRead,
    {
        match self.ack_owed {
            Some(0) => self.ack_owed = Some(1),
            Some(_) => {
                self.ack_owed = None;
                self.inner.after_read();
            }
            None => {}
        }
    }

    /// A write: it carries the acknowledgement of what was read.
    fn wrote(&mut self) {
        self.ack_owed = None;
    }

    /// Bytes read from the stream and not yet handed out (for tests).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len() - self.pos)
    }
}

/// The most one read takes from the stream: the bytes land on the stack first.
const MAX_READ: usize = 4096;

impl<S: AsyncRead + AfterRead + Unpin> AsyncRead for ReadBuffered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(buf) = this.buf.as_ref() {
            // Serve what is buffered; the buffer goes as soon as it is drained.
            let n = buf.len().saturating_sub(this.pos).min(out.remaining());
            if let Some(chunk) = buf.get(this.pos..this.pos + n) {
                out.put_slice(chunk);
            }
            this.pos += n;
            if this.pos >= buf.len() {
                this.buf = None;
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        // Nothing buffered. A read at least as large as the buffer goes straight through.
        let cap = this.capacity.min(MAX_READ);
        if out.remaining() >= cap {
            let before = out.filled().len();
            let polled = Pin::new(&mut this.inner).poll_read(cx, out);
            match polled {
                Poll::Ready(Ok(())) if out.filled().len() > before => this.read_done(),
                Poll::Pending => this.waiting(),
                _ => {}
            }
            return polled;
        }
        // Read into the stack (uninitialised: nothing is zeroed, nothing is allocated when
        // the stream has nothing, which is most polls); hand out what fits and keep only
        // the rest, in an allocation of its exact size.
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); MAX_READ];
        let mut rb = ReadBuf::uninit(stack.get_mut(..cap).unwrap_or_default());
        match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                if !rb.filled().is_empty() {
                    this.read_done();
                }
                let got = rb.filled();
                let n = got.len().min(out.remaining());
                let (now, rest) = got.split_at(n);
                out.put_slice(now);
                if !rest.is_empty() {
                    this.buf = Some(Box::from(rest));
                    this.pos = 0;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                this.waiting();
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadBuffered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    impl AfterRead for DuplexStream {
        fn after_read(&self) {}
    }

    /// A stream that counts the calls of [`AfterRead::after_read`].
    struct Counted {
        inner: DuplexStream,
        calls: Arc<AtomicUsize>,
    }

    impl AfterRead for Counted {
        fn after_read(&self) {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl AsyncRead for Counted {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_read(cx, out)
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }

    /// Polls one read of up to `n` bytes: `Some(bytes)` when ready, `None` when pending.
    fn poll_once(r: &mut ReadBuffered<Counted>, n: usize) -> Option<Vec<u8>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut space = vec![0u8; n];
        let mut rb = ReadBuf::new(&mut space);
        match Pin::new(r).poll_read(&mut cx, &mut rb) {
            Poll::Ready(r) => {
                r.unwrap();
                Some(rb.filled().to_vec())
            }
            Poll::Pending => None,
        }
    }

    /// A young connection's reads are acknowledged once the stream has been found empty twice
    /// with nothing written since (a write carries the acknowledgement), then no more; a read
    /// served from the buffer is not a read of the socket.
    #[tokio::test]
    async fn acknowledges_young_reads_that_get_no_answer() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let calls = Arc::new(AtomicUsize::new(0));
        let count = || calls.load(Ordering::SeqCst);
        let mut r = ReadBuffered::new(
            64,
            Counted {
                inner: client,
                calls: calls.clone(),
            },
        );
        server.write_all(b"abcd").await.unwrap();
        assert_eq!(poll_once(&mut r, 2).as_deref(), Some(&b"ab"[..]));
        assert_eq!(
            poll_once(&mut r, 2).as_deref(),
            Some(&b"cd"[..]),
            "from the buffer"
        );
        assert_eq!(poll_once(&mut r, 2), None);
        assert_eq!(
            count(),
            0,
            "found empty once: an answer may still be written"
        );
        assert_eq!(poll_once(&mut r, 2), None);
        assert_eq!(count(), 1, "empty twice, nothing written: acknowledged");
        assert_eq!(poll_once(&mut r, 2), None);
        assert_eq!(count(), 1, "once per read");

        // Answered: the answer carries the acknowledgement.
        server.write_all(b"ef").await.unwrap();
        assert_eq!(poll_once(&mut r, 2).as_deref(), Some(&b"ef"[..]));
        assert_eq!(poll_once(&mut r, 2), None);
        r.write_all(b"answer").await.unwrap();
        assert_eq!(poll_once(&mut r, 2), None);
        assert_eq!(poll_once(&mut r, 2), None);
        assert_eq!(count(), 1);

        // Only the first QUICK_ACK_READS reads (2 so far) are acknowledged at once.
        for _ in 0..(usize::from(QUICK_ACK_READS) + 4) {
            server.write_all(b"xy").await.unwrap();
            assert_eq!(poll_once(&mut r, 2).as_deref(), Some(&b"xy"[..]));
            assert_eq!(poll_once(&mut r, 2), None);
            assert_eq!(poll_once(&mut r, 2), None);
        }
        assert_eq!(count(), usize::from(QUICK_ACK_READS) - 1);
        // A large read straight from the stream counts the same way (none left to count).
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).await.unwrap(), 0);
        assert_eq!(count(), usize::from(QUICK_ACK_READS) - 1);
    }

    /// Small exact reads are served from one buffered read; the buffer is gone once drained
    /// and while waiting; large reads bypass it; end of stream reads as 0 bytes.
    #[tokio::test]
    async fn buffers_small_reads_and_frees_when_drained() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut r = ReadBuffered::new(64, client);
        server.write_all(b"0123456789").await.unwrap();
        let mut four = [0u8; 4];
        r.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"0123");
        assert_eq!(r.buffered(), 6);
        assert!(r.buf.is_some());
        let mut six = [0u8; 6];
        r.read_exact(&mut six).await.unwrap();
        assert_eq!(&six, b"456789");
        assert!(r.buf.is_none(), "drained: no buffer kept");

        // waiting for data keeps no buffer either
        let mut one = [0u8; 1];
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), async {
            r.read_exact(&mut one).await
        })
        .await;
        assert!(pending.is_err());
        assert!(r.buf.is_none());

        // a read as large as the buffer goes straight to the stream
        let big = vec![7u8; 200];
        server.write_all(&big).await.unwrap();
        let mut got = vec![0u8; 200];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);

        // writes pass through
        r.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        server.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");

        drop(server);
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).await.unwrap(), 0);
    }
}

//! A read buffer for SSH connections that holds memory only while it holds data.
//!
//! russh reads every packet in two exact reads (the length, then the rest). Straight from the
//! socket that is two `recvfrom` calls per packet (~33 per `echo` host); through a buffer it is
//! one call per burst of packets (~8). `tokio::io::BufReader` keeps its buffer for the life of
//! the connection, 4 KiB per idle session; this one reads into the stack and keeps only the
//! bytes not yet handed out, in an allocation of their size that goes as soon as the last byte
//! is consumed, so an idle session keeps none (docs/benchmarks.md, "Memory per idle session")
//! and a poll that finds nothing allocates nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps a stream: reads are buffered up to `capacity` bytes at a time, writes pass through.
#[derive(Debug)]
pub(crate) struct ReadBuffered<S> {
    inner: S,
    capacity: usize,
    /// Unread bytes are `buf[pos..]`; `None` (no allocation) when empty.
    buf: Option<Box<[u8]>>,
    pos: usize,
}

impl<S> ReadBuffered<S> {
    pub(crate) fn new(capacity: usize, inner: S) -> Self {
        ReadBuffered {
            inner,
            capacity,
            buf: None,
            pos: 0,
        }
    }

    /// Bytes read from the stream and not yet handed out (for tests).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len() - self.pos)
    }
}

/// The most one read takes from the stream: the bytes land on the stack first.
const MAX_READ: usize = 4096;

impl<S: AsyncRead + Unpin> AsyncRead for ReadBuffered<S> {
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
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        // Read into the stack (uninitialised: nothing is zeroed, nothing is allocated when
        // the stream has nothing, which is most polls); hand out what fits and keep only
        // the rest, in an allocation of its exact size.
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); MAX_READ];
        let mut rb = ReadBuf::uninit(stack.get_mut(..cap).unwrap_or_default());
        match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
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
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

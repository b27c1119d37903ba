//! The accepted TCP stream, optionally behind a delay line that emulates a far network.
//!
//! With a latency `d`, every byte the server reads from the client is handed to russh `d`
//! after it arrived from the socket. So every request of the client (its identification
//! line, each key-exchange message, auth, channel open, exec, window adjustments, stdin)
//! is answered `d` later than without latency: each round trip takes `d` longer, as it
//! would over a network with an extra `d` of round-trip time. The server's first write (its
//! identification line and KEXINIT, which answer no request) leaves `d` after the connection
//! was accepted (after a `slow-banner` host's own delay, on top of it): over a real network
//! they reach the client one round trip after its connect completed, and a client that waits
//! for them before its next step (one that does not guess the key exchange) pays that round
//! trip. The TCP handshake itself is not delayed. What the
//! server sends later is not delayed either (output streamed within an already open window),
//! and the throughput of a big output becomes bounded by window / `d`, as on a real long
//! link.
//!
//! For `drop` hosts the stream also carries a [`CutSwitch`]: it counts the bytes written
//! to the socket and shuts the socket down as soon as a given count is reached, in the
//! same write that reaches it, so a command's first line is in the kernel (and the FIN
//! follows it) without waiting for any other task to run.
//!
//! For `freeze` hosts it carries a [`Freeze`]: once the connection is frozen, reads and
//! writes return `Pending` without touching the socket (and without registering a waker,
//! so a frozen connection costs no CPU), and a second descriptor of the socket keeps it
//! open after the session is gone, until the fleet stops.
//!
//! The delay line reads the socket eagerly (up to [`MAX_QUEUED`] bytes) and keeps each
//! piece with its due time; a tokio timer wakes the reader when the oldest one is due, so
//! an idle connection costs no CPU.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Most bytes held in the delay line; beyond it the socket is not read (TCP backpressure).
const MAX_QUEUED: usize = 1 << 20;

/// Size of one read from the socket into the delay line.
const READ_SIZE: usize = 16 * 1024;

/// A server-side connection: the TCP stream, with reads delayed when latency is set.
#[derive(Debug)]
pub(crate) struct SimStream {
    inner: TcpStream,
    delay: Option<DelayLine>,
    /// `drop` fault: counts writes and cuts the connection.
    cut: Option<Arc<CutSwitch>>,
    /// `freeze` fault: stops all reads and writes once frozen.
    freeze: Option<Arc<Freeze>>,
}

/// The `freeze` fault of one connection: a given time after [`Freeze::arm`] (called at
/// authentication), the connection's [`SimStream`] neither reads nor writes any more.
///
/// The moment is checked on each read and write, so no timer task is needed: a stream
/// that is not polled is as frozen as one that is. The switch holds a second descriptor
/// of the socket, so the socket stays open (no FIN, no RST) for as long as the switch
/// lives, even once the russh session that owns the stream has ended.
#[derive(Debug)]
pub(crate) struct Freeze {
    /// How long after arming the connection freezes.
    after: Duration,
    /// When it freezes; unset until armed.
    at: OnceLock<Instant>,
    /// The stream has refused a read or write: the session is stuck in the freeze.
    hit: AtomicBool,
    /// A second descriptor of the socket: keeps it open while the switch lives.
    _socket: std::net::TcpStream,
}

impl Freeze {
    /// A switch for `stream`, which it returns (it keeps a second descriptor of it).
    pub(crate) fn new(stream: TcpStream, after: Duration) -> io::Result<(TcpStream, Arc<Freeze>)> {
        let std = stream.into_std()?;
        let socket = std.try_clone()?;
        let freeze = Freeze {
            after,
            at: OnceLock::new(),
            hit: AtomicBool::new(false),
            _socket: socket,
        };
        Ok((TcpStream::from_std(std)?, Arc::new(freeze)))
    }

    /// Starts the countdown (the first call only: the connection authenticated).
    pub(crate) fn arm(&self) {
        let _ = self.at.set(Instant::now() + self.after);
    }

    /// Whether the connection is frozen now.
    pub(crate) fn is_frozen(&self) -> bool {
        self.at.get().is_some_and(|at| Instant::now() >= *at)
    }

    /// Whether the stream has refused a read or write for the freeze: a session that
    /// ends after that ended because of it (not because the client went before).
    pub(crate) fn hit(&self) -> bool {
        self.hit.load(Ordering::Relaxed)
    }

    /// [`Freeze::is_frozen`], noting a hit if so (for the stream's reads and writes).
    fn refuses(&self) -> bool {
        let frozen = self.is_frozen();
        if frozen {
            self.hit.store(true, Ordering::Relaxed);
        }
        frozen
    }
}

/// Shuts a connection's socket down once a number of bytes has been written to it.
///
/// The byte count and the threshold are atomics updated with `SeqCst`: a write adds to the
/// count then checks the threshold, [`CutSwitch::cut_at`] sets the threshold then checks
/// the count, so whichever comes second sees the other and the cut happens exactly once.
#[derive(Debug)]
pub(crate) struct CutSwitch {
    /// A second descriptor of the socket: `shutdown` on it ends the connection for all.
    socket: std::net::TcpStream,
    written: AtomicU64,
    /// Cut once `written` reaches this (`u64::MAX`: not armed).
    threshold: AtomicU64,
    cut: AtomicBool,
    /// The byte count, for tasks that wait for writes.
    progress: watch::Sender<u64>,
}

impl CutSwitch {
    /// A switch for `stream`, which it returns (it needs a second descriptor of it).
    pub(crate) fn new(stream: TcpStream) -> io::Result<(TcpStream, Arc<CutSwitch>)> {
        let std = stream.into_std()?;
        let socket = std.try_clone()?;
        let switch = CutSwitch {
            socket,
            written: AtomicU64::new(0),
            threshold: AtomicU64::new(u64::MAX),
            cut: AtomicBool::new(false),
            progress: watch::channel(0).0,
        };
        Ok((TcpStream::from_std(std)?, Arc::new(switch)))
    }

    /// Bytes written to the socket so far.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Follows the byte count.
    pub(crate) fn progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// Cuts the connection once `bytes` have been written to it (at once if they have).
    pub(crate) fn cut_at(&self, bytes: u64) {
        self.threshold.store(bytes, Ordering::SeqCst);
        if self.written.load(Ordering::SeqCst) >= bytes {
            self.cut_now();
        }
    }

    /// Shuts the socket down (once): the peer gets a FIN after the bytes already written,
    /// the session's next read sees the end of the stream.
    pub(crate) fn cut_now(&self) {
        if !self.cut.swap(true, Ordering::SeqCst) {
            let _ = self.socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Counts a write, and cuts if that reaches the threshold.
    fn wrote(&self, n: usize) {
        let total = self.written.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if total >= self.threshold.load(Ordering::SeqCst) {
            self.cut_now();
        }
        self.progress.send_replace(total);
    }
}

/// Bytes read from the socket, waiting for their due time.
#[derive(Debug)]
struct DelayLine {
    latency: Duration,
    /// Pieces with their due time, oldest first.
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// How much of the front piece was handed out already.
    offset: usize,
    /// Total bytes in `queue` (not yet handed out).
    queued: usize,
    /// The socket reached its end (or failed): nothing more will be queued.
    ended: bool,
    /// The socket's error, handed out after the queued bytes.
    error: Option<io::Error>,
    /// Fires when the front piece is due.
    timer: Pin<Box<Sleep>>,
    /// Until the server's first write went out: fires when it may (`d` after the accept).
    first_write: Option<Pin<Box<Sleep>>>,
}

impl SimStream {
    /// Wraps an accepted stream; `latency: None` (or zero) passes reads straight through.
    pub(crate) fn new(inner: TcpStream, latency: Option<Duration>) -> SimStream {
        let delay = latency.filter(|d| !d.is_zero()).map(|latency| DelayLine {
            latency,
            queue: VecDeque::new(),
            offset: 0,
            queued: 0,
            ended: false,
            error: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            first_write: Some(Box::pin(tokio::time::sleep(latency))),
        });
        SimStream {
            inner,
            delay,
            cut: None,
            freeze: None,
        }
    }

    /// Freezes on `freeze` (which must be this stream's).
    pub(crate) fn with_freeze(mut self, freeze: Arc<Freeze>) -> SimStream {
        self.freeze = Some(freeze);
        self
    }

    /// Whether the `freeze` fault has stopped this stream. A frozen stream returns
    /// `Pending` from every call without registering a waker: nothing wakes its task for
    /// it again (the task still runs for its other events, which find it frozen too).
    fn frozen(&self) -> bool {
        self.freeze.as_ref().is_some_and(|f| f.refuses())
    }

    /// Counts writes on `switch` (which must be this stream's).
    pub(crate) fn with_cut_switch(mut self, switch: Arc<CutSwitch>) -> SimStream {
        self.cut = Some(switch);
        self
    }

    /// `Pending` (with a waker registered) while the server's first write must wait for
    /// its due time; the first write that goes out ends the wait.
    fn first_write_waits(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(line) = &mut self.delay else {
            return false;
        };
        let Some(timer) = &mut line.first_write else {
            return false;
        };
        timer.as_mut().poll(cx).is_pending()
    }

    /// After a write: once one went out, later ones are not delayed, and its bytes count
    /// towards the cut.
    fn wrote(&mut self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &result {
            if let Some(line) = &mut self.delay {
                line.first_write = None;
            }
            if let Some(switch) = &self.cut {
                switch.wrote(*n);
            }
        }
        result
    }
}

impl DelayLine {
    /// Moves what the socket has into the queue, stamped with its due time.
    fn take_in(&mut self, inner: &mut TcpStream, cx: &mut Context<'_>) {
        let mut piece = [0u8; READ_SIZE];
        while !self.ended && self.queued < MAX_QUEUED {
            let mut buf = ReadBuf::new(&mut piece);
            match Pin::new(&mut *inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => self.ended = true,
                Poll::Ready(Ok(())) => {
                    let data = buf.filled().to_vec();
                    self.queued += data.len();
                    self.queue.push_back((Instant::now() + self.latency, data));
                }
                Poll::Ready(Err(e)) => {
                    self.ended = true;
                    self.error = Some(e);
                }
                Poll::Pending => break,
            }
        }
    }

    /// Hands out due bytes; `Pending` (with a waker registered) when none are due yet.
    fn hand_out(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some((due, data)) = self.queue.front() else {
                if self.ended {
                    return Poll::Ready(self.error.take().map_or(Ok(()), Err));
                }
                // The socket returned `Pending` in `take_in`: its waker is registered.
                return Poll::Pending;
            };
            if *due > Instant::now() {
                let due = *due;
                self.timer.as_mut().reset(due);
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let rest = data.get(self.offset..).unwrap_or_default();
            let n = rest.len().min(out.remaining());
            out.put_slice(rest.get(..n).unwrap_or_default());
            self.offset += n;
            self.queued -= n;
            if self.offset >= data.len() {
                self.queue.pop_front();
                self.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.frozen() {
            return Poll::Pending;
        }
        match &mut this.delay {
            None => Pin::new(&mut this.inner).poll_read(cx, buf),
            Some(line) => {
                line.take_in(&mut this.inner, cx);
                line.hand_out(cx, buf)
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.frozen() || this.first_write_waits(cx) {
            return Poll::Pending;
        }
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.frozen() || this.first_write_waits(cx) {
            return Poll::Pending;
        }
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.frozen() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.frozen() {
            // No FIN from a frozen server.
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(latency: Option<Duration>) -> (TcpStream, SimStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            client.unwrap(),
            SimStream::new(accepted.unwrap().0, latency),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn reads_arrive_late_and_in_order() {
        let (mut client, mut server) = pair(Some(Duration::from_millis(200))).await;
        let started = Instant::now();
        client.write_all(b"hello ").await.unwrap();
        client.write_all(b"world").await.unwrap();
        drop(client);
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Writes are not delayed once the first one is due.
        let before_write = Instant::now();
        server.write_all(b"xyz").await.unwrap();
        assert_eq!(before_write.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn first_write_leaves_a_round_trip_after_the_accept() {
        let (mut client, mut server) = pair(Some(Duration::from_millis(200))).await;
        let started = Instant::now();
        server.write_all(b"SSH-2.0-sim\r\n").await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        let first_done = Instant::now();
        server.write_all(b"more").await.unwrap();
        assert_eq!(
            first_done.elapsed(),
            Duration::ZERO,
            "later writes are not delayed"
        );
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"SSH-2.0-sim\r\nmore");
    }

    #[tokio::test]
    async fn cut_switch_cuts_after_the_threshold() {
        let (mut client, server) = pair(None).await;
        let (inner, switch) = CutSwitch::new(server.inner).unwrap();
        let mut server = SimStream::new(inner, None).with_cut_switch(switch.clone());
        switch.cut_at(5);
        server.write_all(b"abc").await.unwrap();
        assert_eq!(switch.written(), 3);
        server.write_all(b"defg").await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got, b"abcdefg",
            "everything written before the cut arrives, then EOF"
        );
        assert!(server.write_all(b"more").await.is_err());
        let mut buf = [0u8; 4];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);

        // Armed after the count passed it: cuts at once.
        let (mut client, server) = pair(None).await;
        let (inner, switch) = CutSwitch::new(server.inner).unwrap();
        let mut server = SimStream::new(inner, None).with_cut_switch(switch.clone());
        server.write_all(b"line\n").await.unwrap();
        switch.cut_at(2);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"line\n");
    }

    #[tokio::test]
    async fn freeze_stops_reads_and_writes_and_keeps_the_socket_open() {
        let quiet = Duration::from_millis(200);
        let (mut client, server) = pair(None).await;
        let (inner, freeze) = Freeze::new(server.inner, Duration::from_millis(100)).unwrap();
        let mut server = SimStream::new(inner, None).with_freeze(freeze.clone());
        // Not armed: never frozen.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!freeze.is_frozen());
        server.write_all(b"before").await.unwrap();
        let mut buf = [0u8; 6];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"before");
        freeze.arm();
        // Armed: works until the moment comes.
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(freeze.is_frozen());
        freeze.arm(); // a second arming changes nothing
        assert!(freeze.is_frozen());
        assert!(!freeze.hit(), "no read or write refused yet");
        // Frozen: the server reads nothing, writes nothing, shuts nothing down.
        client.write_all(b"more").await.unwrap();
        assert!(
            tokio::time::timeout(quiet, server.read(&mut got))
                .await
                .is_err()
        );
        assert!(freeze.hit());
        assert!(
            tokio::time::timeout(quiet, server.write_all(b"x"))
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(quiet, server.shutdown())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(quiet, client.read(&mut buf))
                .await
                .is_err(),
            "the client got bytes or an end"
        );
        // The session's stream is gone, the switch still holds the socket open.
        drop(server);
        assert!(
            tokio::time::timeout(quiet, client.read(&mut buf))
                .await
                .is_err(),
            "the socket closed with the stream"
        );
        // Then it closes with the switch.
        drop(freeze);
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("the socket stayed open")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn no_latency_passes_through() {
        let (mut client, mut server) = pair(None).await;
        assert!(server.delay.is_none());
        client.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 3];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"abc");
        let (_c, zero) = pair(Some(Duration::ZERO)).await;
        assert!(zero.delay.is_none());
    }
}

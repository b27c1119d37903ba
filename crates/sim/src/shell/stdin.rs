//! A command's standard input: what the client sends on the channel, buffered so that
//! `read`, `sudo` and `head -n` take exactly one line and leave the rest to the next command.

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Size of the pieces big outputs are produced in (and stdin is read in).
pub(crate) const CHUNK: usize = 32 * 1024;

/// The standard input of a script. Every command of the script reads from the same one.
pub(crate) struct Stdin {
    /// `None` once the end of input (or a read error) was seen.
    reader: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Bytes read from `reader` but not consumed yet.
    buf: Vec<u8>,
}

impl std::fmt::Debug for Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdin")
            .field("open", &self.reader.is_some())
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl Stdin {
    /// An input that is at its end already (`</dev/null`).
    pub(crate) fn empty() -> Stdin {
        Stdin {
            reader: None,
            buf: Vec::new(),
        }
    }

    /// Input read from `reader` until it ends.
    pub(crate) fn new(reader: impl AsyncRead + Send + 'static) -> Stdin {
        Stdin {
            reader: Some(Box::pin(reader)),
            buf: Vec::new(),
        }
    }

    /// Reads more input into the buffer; `false` at the end of input.
    async fn fill(&mut self) -> bool {
        let Some(reader) = self.reader.as_mut() else {
            return false;
        };
        self.buf.reserve(CHUNK);
        match reader.read_buf(&mut self.buf).await {
            Ok(n) if n > 0 => true,
            _ => {
                self.reader = None;
                false
            }
        }
    }

    /// The next piece of input, at most `max` (> 0) bytes; `None` at the end of input.
    pub(crate) async fn chunk(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.buf.is_empty() && !self.fill().await {
            return None;
        }
        if self.buf.len() <= max {
            Some(std::mem::take(&mut self.buf))
        } else {
            let rest = self.buf.split_off(max.max(1));
            Some(std::mem::replace(&mut self.buf, rest))
        }
    }

    /// The next line with its `\n` (without one if the input ends first); `None` at the end
    /// of input. A line longer than `max` bytes comes back in `max`-byte pieces.
    pub(crate) async fn line(&mut self, max: usize) -> Option<Vec<u8>> {
        let mut scanned = 0;
        loop {
            let window = self.buf.len().min(max.max(1));
            let newline = self
                .buf
                .get(scanned.min(window)..window)
                .and_then(|new| new.iter().position(|b| *b == b'\n'));
            if let Some(pos) = newline {
                let rest = self.buf.split_off(scanned.min(window) + pos + 1);
                return Some(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.len() >= max {
                let rest = self.buf.split_off(max.max(1));
                return Some(std::mem::replace(&mut self.buf, rest));
            }
            scanned = self.buf.len();
            if !self.fill().await {
                return (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_then_chunks() {
        let mut stdin = Stdin::new(&b"one\ntwo\nrest of it"[..]);
        assert_eq!(stdin.line(100).await.unwrap(), b"one\n");
        assert_eq!(stdin.line(100).await.unwrap(), b"two\n");
        assert_eq!(stdin.chunk(4).await.unwrap(), b"rest");
        assert_eq!(stdin.line(100).await.unwrap(), b" of it");
        assert_eq!(stdin.line(100).await, None);
        assert_eq!(stdin.chunk(100).await, None);
    }

    #[tokio::test]
    async fn long_lines_come_in_pieces() {
        let mut stdin = Stdin::new(&b"abcdefg\nh"[..]);
        assert_eq!(stdin.line(3).await.unwrap(), b"abc");
        assert_eq!(stdin.line(3).await.unwrap(), b"def");
        assert_eq!(stdin.line(3).await.unwrap(), b"g\n");
        assert_eq!(stdin.line(3).await.unwrap(), b"h");
        assert_eq!(stdin.line(3).await, None);
    }

    #[tokio::test]
    async fn empty_input() {
        let mut stdin = Stdin::empty();
        assert_eq!(stdin.line(10).await, None);
        assert_eq!(stdin.chunk(10).await, None);
    }

    #[tokio::test]
    async fn reads_across_a_slow_pipe() {
        let (mut tx, rx) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(b"a long first line\nsecond").await.unwrap();
        });
        let mut stdin = Stdin::new(rx);
        assert_eq!(stdin.line(1000).await.unwrap(), b"a long first line\n");
        writer.await.unwrap();
        assert_eq!(stdin.line(1000).await.unwrap(), b"second");
        assert_eq!(stdin.line(1000).await, None);
    }
}

//! Answering sudo's password prompt, and only that prompt.
//!
//! A command run through sudo with a password is wrapped (`command::sudo_wrap`) so that sudo
//! prints a prompt of fleetsh's making when it wants the password (`sudo -S -p PROMPT`), and
//! the shell sudo starts prints a second marker (READY) before the command itself runs. The
//! host task watches the stream those arrive on (stderr, or stdout with a pty) through a
//! [`SudoGate`]: on the prompt it sends the password, on READY it lets the command's own
//! standard input flow. Where sudo does not ask (root, `NOPASSWD`, a cached login), READY comes
//! first and the password is never sent: a command reading its input never sees it. Both
//! markers are removed from the output, and so is the line end sudo writes after reading a
//! password from a terminal (it turns the echo off, so the typed line end is not shown);
//! everything else passes through unchanged (sudo's lecture, "Sorry, try again.", the
//! command's own output after READY).

/// What the watched stream said, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    /// sudo asks for the password.
    Prompt,
    /// sudo let the command start: what follows is the command's.
    Ready,
}

/// Watches one output stream for the prompt and READY markers until READY.
#[derive(Debug)]
pub(super) struct SudoGate {
    prompt: Vec<u8>,
    ready: Vec<u8>,
    /// Bytes received but not yet passed on: the start of a marker, perhaps.
    held: Vec<u8>,
    is_ready: bool,
    /// A prompt was just removed: a line end right after it is sudo's, not output.
    after_prompt: bool,
}

impl SudoGate {
    /// A gate for the markers `prompt` and `ready` (both non-empty).
    pub(super) fn new(prompt: &str, ready: &str) -> Self {
        SudoGate {
            prompt: prompt.as_bytes().to_vec(),
            ready: ready.as_bytes().to_vec(),
            held: Vec::new(),
            is_ready: false,
            after_prompt: false,
        }
    }

    /// Whether READY has been seen: the stream is the command's from then on.
    pub(super) fn is_ready(&self) -> bool {
        self.is_ready
    }

    /// Takes the next bytes of the watched stream: returns what to pass on as output and the
    /// markers found, in order. Once READY is seen everything passes through (READY's own line
    /// end, `\n` or a terminal's `\r\n`, is removed with it).
    pub(super) fn feed(&mut self, data: &[u8]) -> (Vec<u8>, Vec<Marker>) {
        if self.is_ready {
            return (data.to_vec(), Vec::new());
        }
        self.held.extend_from_slice(data);
        let mut out = Vec::new();
        let mut found = Vec::new();
        loop {
            if self.after_prompt && !self.held.is_empty() {
                self.after_prompt = false;
                let end = line_end(&self.held);
                self.held.drain(..end);
            }
            let p = find(&self.held, &self.prompt);
            let r = find(&self.held, &self.ready);
            let (at, marker, len) = match (p, r) {
                (Some(p), Some(r)) if p < r => (p, Marker::Prompt, self.prompt.len()),
                (_, Some(r)) => (r, Marker::Ready, self.ready.len()),
                (Some(p), None) => (p, Marker::Prompt, self.prompt.len()),
                (None, None) => break,
            };
            out.extend_from_slice(self.held.get(..at).unwrap_or_default());
            let mut rest = self.held.split_off((at + len).min(self.held.len()));
            found.push(marker);
            if marker == Marker::Ready {
                self.is_ready = true;
                out.extend_from_slice(rest.get(line_end(&rest)..).unwrap_or_default());
                self.held.clear();
                return (out, found);
            }
            self.after_prompt = true;
            std::mem::swap(&mut self.held, &mut rest);
        }
        // Keep back the longest tail that could still become a marker.
        let keep = [&self.prompt, &self.ready]
            .iter()
            .map(|m| partial_tail(&self.held, m))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let tail = self.held.split_off(cut);
        out.append(&mut self.held);
        self.held = tail;
        (out, found)
    }

    /// What is still held back, at the end of the stream.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// The length of the line end (`\n`, or a terminal's `\r\n`) `data` starts with, if any.
fn line_end(data: &[u8]) -> usize {
    if data.starts_with(b"\r\n") {
        2
    } else if data.starts_with(b"\n") {
        1
    } else {
        0
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest proper prefix of `marker` that `data` ends with.
fn partial_tail(data: &[u8], marker: &[u8]) -> usize {
    let most = marker.len().saturating_sub(1).min(data.len());
    (1..=most)
        .rev()
        .find(|&n| data.get(data.len() - n..) == marker.get(..n))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> SudoGate {
        SudoGate::new("PROMPT:", "READY")
    }

    #[test]
    fn prompt_then_ready_are_removed_and_reported_in_order() {
        let mut g = gate();
        let (out, found) = g.feed(b"lecture\nPROMPT:");
        assert_eq!(
            (out.as_slice(), found.as_slice()),
            (&b"lecture\n"[..], &[Marker::Prompt][..])
        );
        assert!(!g.is_ready());
        let (out, found) = g.feed(b"READY\ncommand's own\n");
        assert_eq!(out, b"command's own\n");
        assert_eq!(found, [Marker::Ready]);
        assert!(g.is_ready());
        // After READY nothing is looked at: a later "PROMPT:" is the command's.
        let (out, found) = g.feed(b"PROMPT:READY");
        assert_eq!((out.as_slice(), found.len()), (&b"PROMPT:READY"[..], 0));
    }

    #[test]
    fn ready_without_a_prompt_means_no_password() {
        let mut g = gate();
        let (out, found) = g.feed(b"READY\r\nx");
        assert_eq!(
            (out.as_slice(), found.as_slice()),
            (&b"x"[..], &[Marker::Ready][..])
        );
    }

    #[test]
    fn markers_split_across_chunks_are_found() {
        let mut g = gate();
        let mut out = Vec::new();
        let mut found = Vec::new();
        for chunk in [&b"Sorry, PR"[..], b"OM", b"PT:", b"RE", b"ADY", b"\nok"] {
            let (o, f) = g.feed(chunk);
            out.extend(o);
            found.extend(f);
        }
        assert_eq!(out, b"Sorry, \nok");
        assert_eq!(found, [Marker::Prompt, Marker::Ready]);
    }

    #[test]
    fn the_line_end_after_a_prompt_is_sudos() {
        let mut g = gate();
        let (out, found) = g.feed(b"PROMPT:");
        assert_eq!((out.len(), found.as_slice()), (0, &[Marker::Prompt][..]));
        let (out, _) = g.feed(b"\r\nREADY\r\nroot\r\n");
        assert_eq!(out, b"root\r\n");
        let mut g = gate();
        let (out, _) = g.feed(b"PROMPT:\nSorry, try again.\nPROMPT:x");
        assert_eq!(out, b"Sorry, try again.\nx");
    }

    #[test]
    fn two_prompts_in_one_chunk_are_two_prompts() {
        let mut g = gate();
        let (out, found) = g.feed(b"PROMPT:Sorry, try again.\nPROMPT:");
        assert_eq!(out, b"Sorry, try again.\n");
        assert_eq!(found, [Marker::Prompt, Marker::Prompt]);
    }

    #[test]
    fn what_is_not_a_marker_passes_and_a_partial_one_waits_for_the_end() {
        let mut g = gate();
        let (out, found) = g.feed(b"sh: 1: sudo: not found\nPROM");
        assert_eq!(out, b"sh: 1: sudo: not found\n");
        assert!(found.is_empty());
        let (out, _) = g.feed(b"X");
        assert_eq!(out, b"PROMX");
        let (out, _) = g.feed(b"RE");
        assert!(out.is_empty());
        assert_eq!(g.finish(), b"RE");
        assert!(g.finish().is_empty());
    }

    #[test]
    fn partial_tails() {
        assert_eq!(partial_tail(b"abcPRO", b"PROMPT"), 3);
        assert_eq!(
            partial_tail(b"PROMPT", b"PROMPT"),
            0,
            "a whole marker is not partial"
        );
        assert_eq!(partial_tail(b"", b"PROMPT"), 0);
        assert_eq!(partial_tail(b"xP", b"PROMPT"), 1);
    }
}

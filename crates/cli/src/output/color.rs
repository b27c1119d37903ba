//! Colour of inline prefixes: plain ANSI escapes, one colour per host from a small palette.

use std::ffi::OsStr;

use clap::ValueEnum;

/// How a line is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A stdout line: the prefix in the host's colour.
    Out,
    /// A stderr line: the prefix in the host's colour, bold.
    Err,
    /// A status note (`[exit 4]`): prefix as for stderr, the note in red.
    Note,
}

/// When to colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When the stream is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always (even when `NO_COLOR` is set: the flag is the more specific wish).
    Always,
    /// Never.
    Never,
}

/// Paints the text written to one stream, or leaves it plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Painter {
    on: bool,
}

/// Foreground colours for host names: green, yellow, blue, magenta, cyan and their bright forms
/// (no red: red marks failures).
const PALETTE: [u8; 10] = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];

impl Painter {
    /// Leaves everything plain.
    #[cfg(test)]
    pub const OFF: Painter = Painter { on: false };

    /// Whether to paint a stream: `is_terminal` is whether it is a terminal, `no_color` the value
    /// of `NO_COLOR` (any non-empty value turns colour off in `auto`).
    pub fn new(choice: ColorChoice, is_terminal: bool, no_color: Option<&OsStr>) -> Painter {
        let on = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(OsStr::is_empty),
        };
        Painter { on }
    }

    /// Whether it paints.
    pub fn is_on(self) -> bool {
        self.on
    }

    /// Appends a host name in its colour (bold for stderr lines and notes).
    pub fn prefix(self, w: &mut Vec<u8>, name: &str, style: Style) {
        if !self.on {
            w.extend_from_slice(name.as_bytes());
            return;
        }
        let bold = if style == Style::Out { "" } else { "1;" };
        let color = host_color(name);
        w.extend_from_slice(format!("\x1b[{bold}{color}m{name}\x1b[0m").as_bytes());
    }

    /// Appends a failure note (`[exit 4]`) in red.
    pub fn note(self, w: &mut Vec<u8>, text: &str) {
        self.paint(w, "31", text);
    }

    /// Appends a header line's text in bold.
    pub fn header(self, w: &mut Vec<u8>, text: &str) {
        self.paint(w, "1", text);
    }

    fn paint(self, w: &mut Vec<u8>, sgr: &str, text: &str) {
        if self.on {
            w.extend_from_slice(format!("\x1b[{sgr}m{text}\x1b[0m").as_bytes());
        } else {
            w.extend_from_slice(text.as_bytes());
        }
    }
}

/// The SGR colour of a host: FNV-1a of its name over [`PALETTE`], so a host keeps its colour
/// from run to run.
pub fn host_color(name: &str) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    PALETTE
        .get(h as usize % PALETTE.len())
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_needs_a_terminal_and_no_no_color() {
        let auto =
            |tty, nc: Option<&str>| Painter::new(ColorChoice::Auto, tty, nc.map(OsStr::new)).on;
        assert!(auto(true, None));
        assert!(auto(true, Some("")), "an empty NO_COLOR does not count");
        assert!(!auto(true, Some("1")));
        assert!(!auto(false, None));
        assert!(Painter::new(ColorChoice::Always, false, Some(OsStr::new("1"))).on);
        assert!(!Painter::new(ColorChoice::Never, true, None).on);
    }

    #[test]
    fn prefixes_are_coloured_per_host() {
        let on = Painter { on: true };
        let mut w = Vec::new();
        on.prefix(&mut w, "web1", Style::Out);
        let c = host_color("web1");
        assert_eq!(String::from_utf8_lossy(&w), format!("\x1b[{c}mweb1\x1b[0m"));
        let mut w = Vec::new();
        on.prefix(&mut w, "web1", Style::Err);
        assert_eq!(
            String::from_utf8_lossy(&w),
            format!("\x1b[1;{c}mweb1\x1b[0m")
        );
        let mut w = Vec::new();
        Painter::OFF.prefix(&mut w, "web1", Style::Err);
        assert_eq!(w, b"web1");
        // Not every host gets the same colour.
        let colors: std::collections::HashSet<u8> =
            (1..50).map(|i| host_color(&format!("web{i}"))).collect();
        assert!(colors.len() > 5, "{colors:?}");
    }
}

//! Text from data, made safe to show on a terminal.
//!
//! Titles, ids, file names and server messages come from outlines, answers and servers, so
//! they can carry control characters: `ESC[2J` clears the screen, an OSC sequence retitles
//! the window or draws a link, BEL rings, backspace rubs out what was printed, U+202E
//! reverses the text after it. Everything printed from data goes through [`shown`] (or the
//! [`Shown`] wrapper), which writes such characters as visible escapes:
//!
//! - ESC as `\e`, BEL as `\a`, backspace as `\b`, tab as `\t`, newline as `\n`, CR as `\r`;
//! - every other C0 or C1 control, DEL, and the bidi and line-separator format characters
//!   (U+061C, U+200E, U+200F, U+2028 to U+202E, U+2066 to U+2069) as `\u{…}` in hex.
//!
//! Printable Unicode (accents, curly quotes, CJK, emoji, including their joiners) passes
//! through unchanged. A backslash is left as it is: the escapes only have to be visible and
//! harmless, not reversible.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::io::IsTerminal;

/// Whether stderr gets colours: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>), as clap decides for its own errors.
pub fn stderr_colors() -> bool {
    colors(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    )
}

fn colors(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The `error:` prefix of the tool's own error lines: bold red like clap's when
/// [`stderr_colors`], else plain.
pub fn error_prefix() -> &'static str {
    if stderr_colors() {
        "\u{1b}[1m\u{1b}[31merror:\u{1b}[0m"
    } else {
        "error:"
    }
}

/// `text` with its control characters written as visible escapes; borrowed when there are none.
///
/// For a single-line field: newlines are escaped too. Our own multi-line output is built
/// around the fields, not passed through here (see [`ShownLines`] for whole messages).
pub fn shown(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`shown`], but keeps newlines: for a whole rendered message (an error with its
/// cause chain) whose line breaks are ours while its parts may come from data.
pub fn shown_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    match text
        .char_indices()
        .find(|&(_, c)| needs_escape(c, keep_newlines))
    {
        None => Cow::Borrowed(text),
        Some((start, _)) => {
            let mut out = String::with_capacity(text.len() + 8);
            out.push_str(&text[..start]);
            let _ = write_escaped(&mut out, &text[start..], keep_newlines);
            Cow::Owned(out)
        }
    }
}

/// Whether `c` would act on the terminal (or spoof the text around it) instead of showing.
fn needs_escape(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi marks, embeddings, overrides and isolates; line and paragraph separators.
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            true
        }
        _ => false,
    }
}

fn write_escaped(out: &mut impl fmt::Write, text: &str, keep_newlines: bool) -> fmt::Result {
    let mut rest = text;
    while let Some((at, c)) = rest
        .char_indices()
        .find(|&(_, c)| needs_escape(c, keep_newlines))
    {
        out.write_str(&rest[..at])?;
        match c {
            '\u{1b}' => out.write_str("\\e")?,
            '\u{7}' => out.write_str("\\a")?,
            '\u{8}' => out.write_str("\\b")?,
            '\t' => out.write_str("\\t")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            other => write!(out, "\\u{{{:x}}}", u32::from(other))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// Shows any `Display` value through [`shown`] without building a `String` first:
/// `println!("{}", Shown(&lesson.title))`. Width and precision (`{:<30}`) apply to the
/// escaped text; `{:#}` is passed on (for `anyhow` cause chains).
#[derive(Debug, Clone, Copy)]
pub struct Shown<T>(pub T);

/// Shows a whole message through [`shown_lines`]: escapes like [`Shown`] but keeps newlines.
#[derive(Debug, Clone, Copy)]
pub struct ShownLines<T>(pub T);

impl<T: Display> Display for Shown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(&self.0, f, false)
    }
}

impl<T: Display> Display for ShownLines<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(&self.0, f, true)
    }
}

fn show(value: &impl Display, f: &mut fmt::Formatter<'_>, keep_newlines: bool) -> fmt::Result {
    if f.width().is_some() || f.precision().is_some() {
        let text = if f.alternate() {
            format!("{value:#}")
        } else {
            value.to_string()
        };
        return f.pad(&escape(&text, keep_newlines));
    }
    let mut out = Escaper {
        out: f,
        keep_newlines,
    };
    if out.out.alternate() {
        write!(out, "{value:#}")
    } else {
        write!(out, "{value}")
    }
}

/// Escapes what is written through it, piece by piece.
struct Escaper<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    keep_newlines: bool,
}

impl fmt::Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.out, s, self.keep_newlines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colors(None, true));
        assert!(colors(Some(OsStr::new("")), true));
        assert!(!colors(Some(OsStr::new("1")), true));
        assert!(!colors(None, false));
    }

    #[test]
    fn terminal_sequences_are_shown_escaped() {
        let title = "A\x1b[2J\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ x\x08y\tz\r\n";
        assert_eq!(
            shown(title),
            "A\\e[2J\\e]0;pwned\\a\\e]8;;https://evil.example\\e\\link\\e]8;;\\e\\ x\\by\\tz\\r\\n"
        );
    }

    #[test]
    fn other_controls_and_spoofing_format_characters_are_escaped() {
        assert_eq!(shown("a\u{0}b\u{7f}c\u{9b}d"), "a\\u{0}b\\u{7f}c\\u{9b}d");
        assert_eq!(shown("txt.\u{202e}exe"), "txt.\\u{202e}exe");
        assert_eq!(
            shown("\u{2066}x\u{2069}\u{2028}"),
            "\\u{2066}x\\u{2069}\\u{2028}"
        );
        assert_eq!(shown("\u{200f}\u{61c}"), "\\u{200f}\\u{61c}");
    }

    #[test]
    fn printable_unicode_is_kept_and_borrowed() {
        for text in [
            "“Govern the Data That Matters”: Prioritising → café",
            "データ管理 ✅ 👨\u{200d}👩\u{200d}👧 naïve – ok",
            "C:\\path\\to\\file",
            "",
        ] {
            assert!(
                matches!(shown(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn newlines_are_kept_only_in_whole_messages() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown_lines("a\nb\x1b[2J"), "a\nb\\e[2J");
        assert!(matches!(shown_lines("a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_wrapper_escapes_like_the_function_and_honours_width_and_alternate() {
        let title = "x\x1b[31my";
        assert_eq!(Shown(title).to_string(), shown(title));
        assert_eq!(format!("[{:<10}]", Shown("a\x07")), "[a\\a       ]");
        let err = anyhow::anyhow!("bad \x1b]0;t\x07").context("cannot read\nit");
        assert_eq!(
            format!("{:#}", Shown(&err)),
            "cannot read\\nit: bad \\e]0;t\\a"
        );
        assert_eq!(
            format!("{:#}", ShownLines(&err)),
            "cannot read\nit: bad \\e]0;t\\a"
        );
    }
}

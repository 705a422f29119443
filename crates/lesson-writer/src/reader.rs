//! A line reader with a per-line cap that never buffers an over-long line whole.

use std::io::{self, BufRead};

/// One non-blank line of input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawLine {
    /// The line's bytes, without the line end.
    Bytes(Vec<u8>),
    /// The line was longer than the cap; its bytes were discarded.
    TooLong {
        /// The line's full length in bytes.
        len: u64,
    },
}

/// Reads lines one by one, skipping blank ones and discarding the bytes of any
/// line longer than the cap instead of buffering them.
pub(crate) struct LineReader<R> {
    inner: R,
    cap: usize,
    line: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader that rejects lines longer than `cap` bytes.
    pub(crate) fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner,
            cap,
            line: 0,
        }
    }

    /// The 1-based number of the last line returned (or being read, after an error).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next non-blank line with its 1-based number, `None` at the end.
    ///
    /// A UTF-8 byte order mark at the start of the input is not part of line 1.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(u64, RawLine)>> {
        loop {
            self.line += 1;
            let line = match self.read_one()? {
                Some(RawLine::Bytes(bytes)) if self.line == 1 && bytes.starts_with(BOM) => {
                    Some(RawLine::Bytes(bytes[BOM.len()..].to_vec()))
                }
                line => line,
            };
            match line {
                None => return Ok(None),
                Some(RawLine::Bytes(bytes)) if is_blank(&bytes) => continue,
                Some(line) => return Ok(Some((self.line, line))),
            }
        }
    }

    /// Reads one physical line; `None` at the end of input.
    fn read_one(&mut self) -> io::Result<Option<RawLine>> {
        let mut bytes = Vec::new();
        // Length of the line once it went past the cap; its bytes are then dropped.
        let mut discarded: Option<u64> = None;
        let mut started = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            if available.is_empty() {
                // End of input: a last line without a newline still counts.
                return Ok(match (started, discarded) {
                    (false, _) => None,
                    (true, Some(len)) => Some(RawLine::TooLong { len }),
                    (true, None) => Some(RawLine::Bytes(bytes)),
                });
            }
            started = true;
            let (used, found_newline) = match discarded {
                Some(ref mut len) => {
                    let used = find_newline(available).map_or(available.len(), |at| at + 1);
                    *len += used as u64;
                    (used, available[used - 1] == b'\n')
                }
                None => {
                    // Look at no more than the cap allows (plus one byte to notice
                    // an overflow), so an over-long line is never held whole.
                    let room = self.cap - bytes.len();
                    let window = &available[..available.len().min(room + 1)];
                    let used = find_newline(window).map_or(window.len(), |at| at + 1);
                    let chunk = &window[..used];
                    let found_newline = chunk.last() == Some(&b'\n');
                    let content = chunk.len() - usize::from(found_newline);
                    if content > room {
                        discarded = Some((bytes.len() + chunk.len()) as u64);
                        bytes = Vec::new();
                    } else {
                        bytes.extend_from_slice(&chunk[..content]);
                    }
                    (used, found_newline)
                }
            };
            self.inner.consume(used);
            if found_newline {
                return Ok(Some(match discarded {
                    // The newline itself is not part of the line.
                    Some(len) => RawLine::TooLong { len: len - 1 },
                    None => RawLine::Bytes(bytes),
                }));
            }
        }
    }
}

/// The UTF-8 byte order mark, which some editors and tools put at the start of a file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Whether a line holds only ASCII whitespace (`\r` of a CRLF line end included).
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The position of the first `\n`, using the standard library's fast byte search.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    let mut slice = bytes;
    // `skip_until` on a slice is a memchr search; it returns how many bytes it used.
    let used = slice
        .skip_until(b'\n')
        .expect("reading from a slice cannot fail");
    (used > 0 && bytes[used - 1] == b'\n').then(|| used - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], cap: usize, chunk: usize) -> Vec<(u64, RawLine)> {
        let reader = io::BufReader::with_capacity(chunk, input);
        let mut lines = LineReader::new(reader, cap);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    fn bytes(text: &str) -> RawLine {
        RawLine::Bytes(text.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_and_skips_blank_ones() {
        for chunk in [1, 2, 3, 7, 1024] {
            let got = read_all(b"a\n\nbb\r\n  \nccc", 10, chunk);
            assert_eq!(
                got,
                vec![(1, bytes("a")), (3, bytes("bb\r")), (5, bytes("ccc"))],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn over_long_lines_are_reported_with_their_length() {
        for chunk in [1, 2, 4, 5, 6, 64] {
            let got = read_all(b"12345\n123456\nok\n1234567", 5, chunk);
            assert_eq!(
                got,
                vec![
                    (1, bytes("12345")),
                    (2, RawLine::TooLong { len: 6 }),
                    (3, bytes("ok")),
                    (4, RawLine::TooLong { len: 7 }),
                ],
                "chunk {chunk}"
            );
        }
    }

    /// Issue 12: a byte order mark at the start of a results file does not spoil line 1.
    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        for chunk in [1, 2, 3, 1024] {
            let got = read_all(b"\xef\xbb\xbf{\"a\":1}\n\xef\xbb\xbfb\n", 64, chunk);
            assert_eq!(
                got,
                vec![
                    (1, bytes("{\"a\":1}")),
                    (2, RawLine::Bytes(b"\xef\xbb\xbfb".to_vec()))
                ],
                "chunk {chunk}"
            );
        }
        assert!(read_all(b"\xef\xbb\xbf\n", 64, 4).is_empty());
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(read_all(b"", 5, 4).is_empty());
        assert!(read_all(b"\n\n", 5, 4).is_empty());
    }

    #[test]
    fn finds_newlines() {
        assert_eq!(find_newline(b"ab\ncd"), Some(2));
        assert_eq!(find_newline(b"abcd"), None);
        assert_eq!(find_newline(b""), None);
        assert_eq!(find_newline(b"\n"), Some(0));
    }
}

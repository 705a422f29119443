//! The phrasing of a chat wrapper around a lesson: openings ("Sure! Here is the lesson:")
//! and trailing offers ("Let me know if you want any changes!").
//!
//! Phrases are matched at the start of a line, after Markdown markers, in lower case, with
//! typographic apostrophes read as `'`.

/// A chat opening or offer longer than this is content, not chat, and is kept.
pub(crate) const MAX_CHAT_BYTES: usize = 300;
/// At most this many trailing offer paragraphs are removed; more is content.
pub(crate) const MAX_OFFERS: usize = 3;

/// Openings that never start a lesson: removed whatever follows them.
const STRONG_OPENERS: [&str; 6] = [
    "sure",
    "certainly",
    "of course",
    "absolutely",
    "okay",
    "alright",
];

/// Openings that could start a sentence of a lesson ("Here is why..."): removed only when a
/// heading, a thematic break or a Markdown fence follows them.
const OPENERS: [&str; 6] = [
    "here is",
    "here's",
    "here are",
    "below is",
    "below you",
    "great",
];

/// Offers that end a chat answer, after the lesson.
pub(crate) const OFFERS: [&str; 23] = [
    "let me know",
    "please let me know",
    "i hope this helps",
    "hope this helps",
    "i hope this lesson",
    "i hope you found",
    "i hope you enjoy",
    "feel free to ask",
    "feel free to reach out",
    "feel free to let me know",
    "feel free to tell me",
    "would you like me",
    "would you like any",
    "do you want me",
    "if you'd like, i can",
    "if you would like, i can",
    "if you'd like me",
    "if you want me",
    "if you have any questions",
    "if you need any changes",
    "is there anything else",
    "happy learning",
    "i'd be happy to",
];

/// How strongly a line opens a chat answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// "Sure", "Certainly", "Of course": never a lesson's first words.
    Strong,
    /// "Here is", "Below is": chat only when the lesson follows at once.
    LeadIn,
}

/// Whether `line` opens a chat answer, and how strongly.
pub(crate) fn opening(line: &str) -> Option<Opening> {
    let line = normalize(strip_markers(line));
    let starts = |phrases: &[&str]| phrases.iter().any(|phrase| starts_with_word(&line, phrase));
    if starts(&STRONG_OPENERS) {
        Some(Opening::Strong)
    } else if starts(&OPENERS) {
        Some(Opening::LeadIn)
    } else {
        None
    }
}

/// Whether `line` starts a trailing offer ("Let me know if you want any changes!").
pub(crate) fn is_offer(line: &str) -> bool {
    let line = normalize(strip_markers(line));
    OFFERS.iter().any(|phrase| starts_with_word(&line, phrase))
}

/// The end of `text` where a run of trailing offers can lie: from the end back over blank
/// and thematic-break-like lines and at most [`MAX_OFFERS`] × [`MAX_CHAT_BYTES`] bytes of
/// other lines, so a search for offers need not read the whole lesson.
pub(crate) fn offer_region(text: &str) -> &str {
    let mut start = text.len();
    let mut counted = 0;
    for line in text.split_inclusive('\n').rev() {
        start -= line.len();
        let content = line.trim_end_matches('\n');
        if content
            .chars()
            .all(|c| matches!(c, '-' | '*' | '_' | ' ' | '\t'))
        {
            continue;
        }
        counted += content.len();
        if counted > MAX_OFFERS * MAX_CHAT_BYTES {
            break;
        }
    }
    &text[start..]
}

/// ASCII lower case, with typographic apostrophes as `'`: the form phrases are matched in.
///
/// Only ASCII letters are lowered, so that the cleaner's fast path (a search of the whole
/// text) finds every phrase the rules find on a line, and stays fast.
pub(crate) fn normalize(text: &str) -> String {
    const APOSTROPHES: [char; 2] = ['\u{2019}', '\u{2018}'];
    let lower = text.to_ascii_lowercase();
    if lower.contains(APOSTROPHES) {
        lower.replace(APOSTROPHES, "'")
    } else {
        lower
    }
}

/// The line without leading whitespace and Markdown markers (`#`, `*`, `_`, `>`).
fn strip_markers(line: &str) -> &str {
    line.trim_start_matches(|c: char| matches!(c, '#' | '*' | '_' | '>') || c.is_whitespace())
}

/// Whether `line` starts with `phrase` followed by a non-letter (or the end).
fn starts_with_word(line: &str, phrase: &str) -> bool {
    line.strip_prefix(phrase)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        assert_eq!(opening("Sure! Here is the lesson:"), Some(Opening::Strong));
        assert_eq!(opening("**Certainly.**"), Some(Opening::Strong));
        assert_eq!(opening("Of course, here it is."), Some(Opening::Strong));
        assert_eq!(
            opening("Here’s the lesson you asked for:"),
            Some(Opening::LeadIn)
        );
        assert_eq!(opening("Here is why data matters."), Some(Opening::LeadIn));
        assert_eq!(opening("Surely data matters."), None);
        assert_eq!(opening("Data is recorded facts."), None);
        assert_eq!(opening("Heretofore unknown."), None);
    }

    #[test]
    fn offer_region_is_the_end() {
        let lesson = format!("# A\n\n{}\n\nLet me know!\n\n---\n\n", "x".repeat(2000));
        assert_eq!(
            offer_region(&lesson).len(),
            2000 + "\n\nLet me know!\n\n---\n\n".len()
        );
        assert_eq!(offer_region("Let me know!"), "Let me know!");
    }

    #[test]
    fn offers() {
        for line in [
            "Let me know if you want any changes!",
            "*I hope this helps!*",
            "I hope this lesson helps.",
            "Feel free to ask if anything is unclear.",
            "Would you like me to add a quiz?",
            "If you’d like, I can add exercises.",
            "Happy learning!",
        ] {
            assert!(is_offer(line), "{line}");
        }
        for line in [
            "Feel free to experiment with the thresholds above.",
            "Would you rather store raw data or summaries? Both have costs.",
            "Letting the data speak is not enough.",
            "Data is recorded facts.",
        ] {
            assert!(!is_offer(line), "{line}");
        }
    }
}

//! The quality gate: whether a cleaned answer is a lesson, long enough and with the
//! sections its template asks for.

use std::fmt;

use crate::markdown::{self, BlockKind};

/// What a cleaned answer needs to be written as a lesson. The default checks nothing.
///
/// ```
/// use lesson_writer::QualityGate;
///
/// let gate = QualityGate {
///     min_words: 5,
///     required_sections: vec!["Learning Objectives".to_owned(), "Summary".to_owned()],
/// };
/// let lesson = "# Lesson M0-L001: Intro\n\n## 1. Learning Objectives\n\nName the parts.\n\n## 2 Summary\n\nDone.\n";
/// assert!(gate.check(lesson).is_ok());
/// let short = gate.check("# Lesson M0-L001: Intro\n\nToo short.\n").unwrap_err();
/// assert_eq!(short.words, 5);
/// assert_eq!(short.to_string(), "missing sections: Learning Objectives, Summary");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualityGate {
    /// Fewest words, counted as whitespace-separated pieces holding a letter or a digit
    /// (0 checks nothing).
    pub min_words: usize,
    /// Headings the lesson must have, as texts or their beginnings. A heading of any level
    /// matches when, ignoring case, leading numbering (`1.`, `2)`, `Section 3:`) and
    /// punctuation (`&` reads as `and`), its words start with the required ones.
    pub required_sections: Vec<String>,
}

/// Why an answer is below spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowSpec {
    /// The words it has.
    pub words: usize,
    /// The words it needed ([`QualityGate::min_words`]).
    pub min_words: usize,
    /// The required sections it lacks, in the order required.
    pub missing_sections: Vec<String>,
}

impl QualityGate {
    /// The gate the settings ask for, for lessons made from the template with hash
    /// `template_sha256` (`None` when unknown); see
    /// [`QualitySettings::sections_for`](batch_request::QualitySettings::sections_for).
    pub fn from_settings(
        settings: &batch_request::QualitySettings,
        template_sha256: Option<&str>,
    ) -> QualityGate {
        QualityGate {
            min_words: settings.min_words,
            required_sections: settings.sections_for(template_sha256),
        }
    }

    /// Whether the gate checks anything.
    pub fn is_off(&self) -> bool {
        self.min_words == 0 && self.required_sections.is_empty()
    }

    /// Checks a cleaned lesson.
    ///
    /// # Errors
    ///
    /// [`BelowSpec`] saying what falls short.
    pub fn check(&self, text: &str) -> Result<(), BelowSpec> {
        if self.is_off() {
            return Ok(());
        }
        let words = count_words(text);
        let missing_sections = if self.required_sections.is_empty() {
            Vec::new()
        } else {
            let headings: Vec<String> = headings(text).map(|text| normalize(&text)).collect();
            self.required_sections
                .iter()
                .filter(|section| {
                    let wanted = normalize(section);
                    !headings
                        .iter()
                        .any(|heading| starts_with_words(heading, &wanted))
                })
                .cloned()
                .collect()
        };
        if words >= self.min_words && missing_sections.is_empty() {
            Ok(())
        } else {
            Err(BelowSpec {
                words,
                min_words: self.min_words,
                missing_sections,
            })
        }
    }
}

impl fmt::Display for BelowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.words < self.min_words;
        if short {
            write!(
                f,
                "{} words, at least {} expected",
                self.words, self.min_words
            )?;
        }
        if !self.missing_sections.is_empty() {
            if short {
                f.write_str("; ")?;
            }
            write!(f, "missing sections: {}", self.missing_sections.join(", "))?;
        }
        Ok(())
    }
}

/// Whitespace-separated pieces that hold a letter or a digit (a `-` or `|` alone is no word).
fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .count()
}

/// The text of every top-level heading (code blocks are not searched).
fn headings(text: &str) -> impl Iterator<Item = String> + '_ {
    let lines: Vec<&str> = text.lines().collect();
    markdown::blocks(text)
        .into_iter()
        .filter(|block| matches!(block.kind, BlockKind::Heading(_)))
        .filter_map(move |block| {
            // An ATX heading is its own line; a setext heading's text is the lines above
            // its underline.
            let first = lines.get(block.start.checked_sub(1)?)?;
            let text = if first.trim_start().starts_with('#') {
                (*first).to_owned()
            } else {
                lines
                    .get(block.start - 1..block.end.saturating_sub(1).max(block.start))?
                    .join(" ")
            };
            Some(text)
        })
}

/// Lowercase words of a heading, joined by one space: punctuation and emphasis dropped, `&`
/// read as `and`, and leading numbering (`1.`, `2)`, `1.2`, `Section 3:`, `Part IV`) skipped.
fn normalize(heading: &str) -> String {
    let spaced: String = heading
        .chars()
        .flat_map(|c| {
            let piece: Vec<char> = if c == '&' {
                " and ".chars().collect()
            } else if c.is_alphanumeric() {
                c.to_lowercase().collect()
            } else {
                vec![' ']
            };
            piece
        })
        .collect();
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    loop {
        match words.as_slice() {
            [first, ..] if is_number(first) => {
                words.remove(0);
            }
            [first, second, ..]
                if matches!(*first, "section" | "part" | "step" | "module")
                    && is_number(second) =>
            {
                words.drain(..2);
            }
            _ => break,
        }
    }
    words.join(" ")
}

/// A number as headings are numbered: digits, or a small roman numeral.
fn is_number(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit())
        || matches!(
            word,
            "i" | "ii" | "iii" | "iv" | "v" | "vi" | "vii" | "viii" | "ix" | "x"
        )
}

/// Whether normalized `heading` starts with normalized `wanted`; the last wanted word may be
/// the beginning of a word (`practice exercise` matches `practice exercises`).
fn starts_with_words(heading: &str, wanted: &str) -> bool {
    !wanted.is_empty() && heading.starts_with(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(min_words: usize, sections: &[&str]) -> QualityGate {
        QualityGate {
            min_words,
            required_sections: sections.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn headings_match_leniently() {
        let check = |heading: &str, section: &str, expected: bool| {
            let text = format!("# Lesson M0-L001: X\n\n{heading}\n\nText.\n");
            assert_eq!(
                gate(0, &[section]).check(&text).is_ok(),
                expected,
                "{heading:?} for {section:?}"
            );
        };
        check("## Learning Objectives", "Learning Objectives", true);
        check("## 1. Learning Objectives", "Learning Objectives", true);
        check("## 1 Learning Objectives", "Learning Objectives", true);
        check("## 1) learning objectives", "Learning Objectives", true);
        check("### **2. Why This Matters**", "Why This Matters", true);
        check("## Section 3: Core Concepts", "Core Concepts", true);
        check("## 🎯 Learning Objectives", "Learning Objectives", true);
        check(
            "## 6. Tools, Templates, and Artifacts",
            "Tools, Templates",
            true,
        );
        check(
            "## 10. Summary & Next Steps",
            "Summary and Next Steps",
            true,
        );
        check("## 8. Practice Exercises", "Practice Exercise", true);
        check(
            "## IV. How It Works in Practice",
            "How It Works in Practice",
            true,
        );
        check("Knowledge Check\n---------------", "Knowledge Check", true);
        // Prefixes of headings, not words inside them or text that is no heading.
        check("## Objectives", "Learning Objectives", false);
        check("## Revisiting the Core Concepts", "Core Concepts", false);
        check(
            "Learning Objectives are listed below.",
            "Learning Objectives",
            false,
        );
        check(
            "```\n## Learning Objectives\n```",
            "Learning Objectives",
            false,
        );
        check("## Summary", "Summary and Next Steps", false);
    }

    #[test]
    fn words_are_counted_and_reported() {
        let forty = format!("# Lesson M0-L001: Intro\n\n{}\n", "word ".repeat(37));
        assert_eq!(count_words(&forty), 40);
        let below = gate(200, &[]).check(&forty).unwrap_err();
        assert_eq!(
            below,
            BelowSpec {
                words: 40,
                min_words: 200,
                missing_sections: Vec::new()
            }
        );
        assert_eq!(below.to_string(), "40 words, at least 200 expected");
        assert!(gate(40, &[]).check(&forty).is_ok());
        assert_eq!(count_words("- | --- | a1 |"), 1);

        let both = gate(200, &["Core Concepts", "Summary"])
            .check(&forty)
            .unwrap_err();
        assert_eq!(
            both.to_string(),
            "40 words, at least 200 expected; missing sections: Core Concepts, Summary"
        );
    }

    #[test]
    fn the_default_gate_checks_nothing() {
        assert!(QualityGate::default().is_off());
        assert!(QualityGate::default().check("x").is_ok());
    }
}

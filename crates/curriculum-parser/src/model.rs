//! The parsed curriculum: modules, lessons, lesson codes and complexity tags.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A whole curriculum as read from one outline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curriculum {
    /// The outline's title, when it has one: the first level-1 heading before the first module.
    pub title: Option<String>,
    /// Which outline format the lessons were read from.
    pub format: Format,
    /// Modules in document order.
    pub modules: Vec<Module>,
    /// Things worth telling the user that did not stop parsing (e.g. a module with no lessons).
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

impl Curriculum {
    /// Every lesson of every module, in document order.
    pub fn lessons(&self) -> impl Iterator<Item = &Lesson> {
        self.modules.iter().flat_map(|module| module.lessons.iter())
    }

    /// The number of lessons across all modules (labs are not lessons).
    pub fn lesson_count(&self) -> usize {
        self.modules.iter().map(|module| module.lessons.len()).sum()
    }

    /// The module with this number.
    pub fn module(&self, number: u32) -> Option<&Module> {
        self.modules.iter().find(|module| module.number == number)
    }

    /// The lesson with this code (numeric comparison: `M00-L001` finds `M0-L001`).
    pub fn lesson(&self, code: LessonCode) -> Option<&Lesson> {
        self.module(code.module())?
            .lessons
            .iter()
            .find(|lesson| lesson.code == code)
    }
}

/// The two outline formats the parser understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Format A: `# M0: Title — Lesson Map` modules and `## L001: Title [F]` lessons.
    LessonMap,
    /// Format B: `## Module 1: Title` (or `- **Module 1: Title**`) with nested bullet lessons.
    Nested,
}

impl Format {
    /// The name used on the command line and in JSON (`lesson-map`, `nested`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::LessonMap => "lesson-map",
            Format::Nested => "nested",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One module of the curriculum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// The module number as written (`M3` and `Module 3` are both 3).
    pub number: u32,
    /// The title without the `M3:` prefix and without a `— Lesson Map` suffix.
    pub title: String,
    /// 1-based line of the module heading or list item.
    pub line: usize,
    /// Lessons in document order.
    pub lessons: Vec<Lesson>,
    /// Lab items (`*Lab: ...*`) of a nested outline: kept, but not lessons.
    #[serde(default)]
    pub labs: Vec<Lab>,
}

impl Module {
    /// The module code, `M<number>` (e.g. `M0`, `M12`).
    pub fn code(&self) -> String {
        format!("M{}", self.number)
    }
}

/// One lesson: the unit that becomes one Batch API request and one lesson file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lesson {
    /// The lesson code, e.g. `M0-L001`.
    pub code: LessonCode,
    /// The title, punctuation and Unicode kept, complexity tag removed.
    pub title: String,
    /// The complexity tag, when the outline gives one.
    pub complexity: Option<Complexity>,
    /// The section (grouping heading or parent list item) the lesson sits under. The lessons
    /// of one section share one string.
    pub section: Option<Arc<str>>,
    /// 1-based line of the lesson in the outline.
    pub line: usize,
}

/// A lab item of a nested outline, kept in the model but not counted as a lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lab {
    /// The lab's text without the `Lab:` prefix.
    pub title: String,
    /// The section the lab sits under.
    pub section: Option<String>,
    /// 1-based line of the lab item.
    pub line: usize,
}

/// A problem that did not stop parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// 1-based line the warning is about.
    pub line: usize,
    /// What is wrong, as a sentence fragment (`module M14 has no lessons`).
    pub message: String,
}

/// A lesson's identity: module number and lesson number.
///
/// Displays as `M0-L001`; parses `M0-L001`, `M00-L001` and `lesson_M0-L001`;
/// compares numerically, so `M00-L001` equals `M0-L001` and `M2-L001` sorts before `M10-L001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LessonCode {
    module: u32,
    lesson: u32,
}

impl LessonCode {
    /// A code from its two numbers.
    pub fn new(module: u32, lesson: u32) -> Self {
        LessonCode { module, lesson }
    }

    /// The module number (`M12-L024` gives 12).
    pub fn module(self) -> u32 {
        self.module
    }

    /// The lesson number within the module (`M12-L024` gives 24).
    pub fn lesson(self) -> u32 {
        self.lesson
    }

    /// The Batch API `custom_id` for this lesson: `lesson_M0-L001`.
    pub fn custom_id(self) -> String {
        format!("lesson_{self}")
    }
}

impl fmt::Display for LessonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "M{}-L{:03}", self.module, self.lesson)
    }
}

/// Why a string is not a lesson code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a lesson code (expected e.g. M0-L001 or lesson_M0-L001)")]
pub struct ParseLessonCodeError {
    /// The text that failed to parse (cut to 80 characters).
    pub input: String,
}

impl FromStr for LessonCode {
    type Err = ParseLessonCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseLessonCodeError {
            input: text.chars().take(80).collect(),
        };
        let rest = text.strip_prefix("lesson_").unwrap_or(text);
        let rest = rest.strip_prefix('M').ok_or_else(err)?;
        let (module, lesson) = rest.split_once("-L").ok_or_else(err)?;
        Ok(LessonCode {
            module: parse_digits(module, 1).ok_or_else(err)?,
            lesson: parse_digits(lesson, 1).ok_or_else(err)?,
        })
    }
}

/// Parses a run of ASCII digits of at least `min_len` characters (no sign, no spaces).
pub(crate) fn parse_digits(text: &str, min_len: usize) -> Option<u32> {
    if text.len() < min_len || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Serialize for LessonCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LessonCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One complexity level of the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `F`: basic concepts, prerequisites.
    Foundational,
    /// `I`: applied practice.
    Intermediate,
    /// `A`: advanced design and trade-offs.
    Advanced,
    /// `E`: expert, strategic.
    Expert,
}

impl Level {
    /// The legend letter: `F`, `I`, `A` or `E`.
    pub fn letter(self) -> char {
        match self {
            Level::Foundational => 'F',
            Level::Intermediate => 'I',
            Level::Advanced => 'A',
            Level::Expert => 'E',
        }
    }

    /// The legend name: `Foundational`, `Intermediate`, `Advanced` or `Expert`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Foundational => "Foundational",
            Level::Intermediate => "Intermediate",
            Level::Advanced => "Advanced",
            Level::Expert => "Expert",
        }
    }

    /// The level for a legend letter (upper or lower case).
    pub fn from_letter(letter: char) -> Option<Level> {
        match letter.to_ascii_uppercase() {
            'F' => Some(Level::Foundational),
            'I' => Some(Level::Intermediate),
            'A' => Some(Level::Advanced),
            'E' => Some(Level::Expert),
            _ => None,
        }
    }
}

/// A lesson's complexity tag: one level (`[F]`) or a range (`[F-I]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Complexity {
    /// The lower (or only) level.
    pub from: Level,
    /// The upper level; equal to `from` for a single-level tag.
    pub to: Level,
}

impl Complexity {
    /// A single-level tag.
    pub fn single(level: Level) -> Self {
        Complexity {
            from: level,
            to: level,
        }
    }

    /// Whether the tag is a range such as `F-I`.
    pub fn is_range(self) -> bool {
        self.from != self.to
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_range() {
            write!(f, "{}-{}", self.from.letter(), self.to.letter())
        } else {
            write!(f, "{}", self.from.letter())
        }
    }
}

/// Why a string is not a complexity tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a complexity tag (expected F, I, A, E or a range such as F-I)")]
pub struct ParseComplexityError {
    /// The text that failed to parse.
    pub input: String,
}

impl FromStr for Complexity {
    type Err = ParseComplexityError;

    /// Parses `F`, `I-A`, also with spaces or an en dash around the range (`F – I`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseComplexityError {
            input: text.chars().take(40).collect(),
        };
        let letters: Vec<char> = text
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '–' | '—' | '/'))
            .collect();
        let separators = text
            .chars()
            .filter(|c| matches!(c, '-' | '–' | '—' | '/'))
            .count();
        match (letters.as_slice(), separators) {
            ([one], 0) => Ok(Complexity::single(
                Level::from_letter(*one).ok_or_else(err)?,
            )),
            ([from, to], 1) => Ok(Complexity {
                from: Level::from_letter(*from).ok_or_else(err)?,
                to: Level::from_letter(*to).ok_or_else(err)?,
            }),
            _ => Err(err()),
        }
    }
}

impl Serialize for Complexity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Complexity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lesson_code_parses_and_displays() {
        let check = |input: &str, module: u32, lesson: u32, shown: &str| {
            let code: LessonCode = input.parse().unwrap();
            assert_eq!((code.module(), code.lesson()), (module, lesson), "{input}");
            assert_eq!(code.to_string(), shown);
        };
        check("M0-L001", 0, 1, "M0-L001");
        check("M00-L001", 0, 1, "M0-L001");
        check("lesson_M0-L001", 0, 1, "M0-L001");
        check("M12-L024", 12, 24, "M12-L024");
        check("M1-L1000", 1, 1000, "M1-L1000");
    }

    #[test]
    fn lesson_code_rejects_garbage() {
        for input in [
            "",
            "M0",
            "M-L001",
            "M0-L",
            "lesson_",
            "x_M0-L001",
            "M0-L001/..",
            "M0-L0 1",
            "M+1-L001",
            "lesson_../../x",
            "M0-L001\0",
        ] {
            assert!(input.parse::<LessonCode>().is_err(), "{input:?} parsed");
        }
    }

    #[test]
    fn lesson_codes_compare_numerically() {
        let a: LessonCode = "M00-L001".parse().unwrap();
        let b: LessonCode = "M0-L001".parse().unwrap();
        assert_eq!(a, b);
        let m2: LessonCode = "M2-L001".parse().unwrap();
        let m10: LessonCode = "M10-L001".parse().unwrap();
        assert!(m2 < m10);
        assert_eq!(b.custom_id(), "lesson_M0-L001");
    }

    #[test]
    fn complexity_parses_single_and_ranges() {
        let check = |input: &str, shown: &str| {
            let tag: Complexity = input.parse().unwrap();
            assert_eq!(tag.to_string(), shown, "{input}");
        };
        check("F", "F");
        check("e", "E");
        check("F-I", "F-I");
        check("I – A", "I-A");
        for bad in ["", "X", "F-", "F-I-A", "FI", "Lab"] {
            assert!(bad.parse::<Complexity>().is_err(), "{bad:?} parsed");
        }
    }
}

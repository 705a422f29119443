//! The strict mapping from a `custom_id` to a lesson code.
//!
//! A `custom_id` comes from a file written by someone else, so it is never used to
//! build a path: it is parsed into a [`LessonCode`], and file names come from the
//! code's `Display` only.

use curriculum_parser::LessonCode;

/// The longest `custom_id` accepted (`lesson_M999999999-L999999999` is 28 bytes).
pub const MAX_CUSTOM_ID_LEN: usize = 64;

/// The lesson code of a `custom_id` of the form `lesson_M<digits>-L<digits>` or
/// `M<digits>-L<digits>`; `None` for anything else.
///
/// Path separators, `..`, absolute paths, NUL, other prefixes, signs, spaces and
/// ids longer than [`MAX_CUSTOM_ID_LEN`] are all refused.
///
/// ```
/// use lesson_writer::lesson_code;
/// assert_eq!(lesson_code("lesson_M0-L001").unwrap().to_string(), "M0-L001");
/// assert_eq!(lesson_code("M12-L7").unwrap().to_string(), "M12-L007");
/// assert!(lesson_code("lesson_../../x").is_none());
/// assert!(lesson_code("lesson_M0-L001/../../x").is_none());
/// ```
pub fn lesson_code(custom_id: &str) -> Option<LessonCode> {
    if custom_id.len() > MAX_CUSTOM_ID_LEN {
        return None;
    }
    // One parser of lesson codes: the curriculum's.
    custom_id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_two_forms() {
        let check = |id: &str, shown: &str| {
            assert_eq!(
                lesson_code(id).map(|code| code.to_string()).as_deref(),
                Some(shown),
                "{id}"
            );
        };
        check("lesson_M0-L001", "M0-L001");
        check("M0-L001", "M0-L001");
        check("M00-L001", "M0-L001");
        check("lesson_M12-L1000", "M12-L1000");
    }

    #[test]
    fn refuses_everything_else() {
        let long = format!("lesson_M0-L{}", "1".repeat(60));
        for id in [
            "",
            "lesson_",
            "lesson_../../x",
            "/etc/passwd",
            "lesson_M0-L001/../../x",
            "lesson_M0-L001\\..\\x",
            "../M0-L001",
            "M0-L001/",
            "M0-L001\0",
            "\0M0-L001",
            "lesson-M0-L001",
            "Lesson_M0-L001",
            "lesson_lesson_M0-L001",
            "x_M0-L001",
            "m0-l001",
            "M0-L+1",
            "M-1-L001",
            "M0-L 1",
            " M0-L001",
            "M0-L001 ",
            "M0-L1.md",
            "M0-L001-L002",
            "M1234567890-L001",
            "M0-L٣",
            long.as_str(),
        ] {
            assert_eq!(lesson_code(id), None, "{id:?} accepted");
        }
    }
}

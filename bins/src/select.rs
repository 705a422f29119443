//! Lesson codes and module numbers as the flags spell them (`--only`, `--modules`).

use curriculum_parser::LessonCode;

use crate::usage_error;

/// Parses `M3` or `3` as a module number.
///
/// # Errors
///
/// A usage error naming the text.
pub fn parse_module(text: &str) -> anyhow::Result<u32> {
    let digits = text.trim();
    let digits = digits
        .strip_prefix('M')
        .or_else(|| digits.strip_prefix('m'))
        .unwrap_or(digits);
    digits.parse().map_err(|_| {
        usage_error(
            format!("`{text}` is not a module (expected e.g. M0 or M12)"),
            Some("list the modules with --list-lessons"),
        )
    })
}

/// Parses `M0-L001` (also `lesson_M0-L001`), in any case, as `--modules` takes `m0`.
///
/// # Errors
///
/// A usage error naming the text.
pub fn parse_code(text: &str) -> anyhow::Result<LessonCode> {
    let code = text.trim();
    let code = match code.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("lesson_") => &code[7..],
        _ => code,
    };
    code.to_ascii_uppercase().parse().map_err(|_| {
        usage_error(
            format!("`{text}` is not a lesson code (expected e.g. M0-L001)"),
            Some("list the lesson codes with --list-lessons"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_modules_parse_and_bad_ones_are_usage_errors() {
        assert_eq!(parse_code("M00-L002").unwrap(), LessonCode::new(0, 2));
        // Issue 13: any case, as --modules.
        assert_eq!(parse_code("m0-l001").unwrap(), LessonCode::new(0, 1));
        assert_eq!(
            parse_code("Lesson_m3-L010").unwrap(),
            LessonCode::new(3, 10)
        );
        assert_eq!(parse_module("M3").unwrap(), 3);
        assert_eq!(parse_module("12").unwrap(), 12);
        let err = parse_module("X1").unwrap_err();
        assert!(err.downcast_ref::<crate::UsageError>().is_some());
        assert!(parse_code("M1").is_err());
    }
}

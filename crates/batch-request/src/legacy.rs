//! Legacy templates: the Python scripts' `prompt = f"""` ... `"""` files.
//!
//! The body is read as a Python f-string: `{{` and `}}` are literal braces, and each `{...}`
//! expression must be one the old scripts filled in (listed in [`EXPRESSIONS`], copied
//! exactly); it maps to the placeholder with the same meaning. Any other expression is an
//! error that names it, so no `{lesson_details...}` text can reach a request.
//! Like the old scripts, the body is trimmed of leading and trailing whitespace.

use std::path::Path;

use crate::Error;
use crate::template::{Placeholder, Segment, count_lines};

/// The expressions of the old scripts' templates and what each one means.
pub const EXPRESSIONS: [(&str, Placeholder); 13] = [
    ("lesson_details['LESSON_CODE']", Placeholder::LessonCode),
    ("lesson_details['LESSON_TITLE']", Placeholder::LessonTitle),
    (
        "lesson_details.get('MODULE_CODE', 'M0')",
        Placeholder::ModuleCode,
    ),
    (
        "lesson_details.get('MODULE_NAME', MODULE_METADATA.get(lesson_details.get('MODULE_CODE', 'M0'), {}).get('MODULE_NAME', 'Unknown Module'))",
        Placeholder::ModuleTitle,
    ),
    (
        "lesson_details.get('SPECIFIC_FOCUS', 'General')",
        Placeholder::Section,
    ),
    ("lesson_details['COMPLEXITY']", Placeholder::Complexity),
    (
        "'Foundation' if lesson_details['COMPLEXITY'] == 'F' else 'Intermediate' if lesson_details['COMPLEXITY'] == 'I' else 'Advanced' if lesson_details['COMPLEXITY'] == 'A' else 'Expert'",
        Placeholder::ComplexityLabel,
    ),
    ("lesson_details['TIME']", Placeholder::DurationMinutes),
    (
        "MODULE_METADATA.get(lesson_details.get('MODULE_CODE', 'M0'), {}).get('AUDIENCE_DESCRIPTION', DEFAULT_AUDIENCE)",
        Placeholder::Audience,
    ),
    ("DEFAULT_FIRM_TYPE", Placeholder::Organization),
    (
        "lesson_details['LIST_PREREQUISITES']",
        Placeholder::Prerequisites,
    ),
    (
        "lesson_details['RELATED_LESSON_CODES']",
        Placeholder::RelatedLessons,
    ),
    (
        "MODULE_METADATA.get(lesson_details.get('MODULE_CODE', 'M0'), {}).get('INDUSTRY_DOMAIN', DEFAULT_INDUSTRY)",
        Placeholder::Domain,
    ),
];

const OPENING: &str = "prompt";

/// The f-string body when `text` is a legacy template (`prompt = f"""` first, after
/// whitespace), else `None`. The body runs to the end of the text; the closing `"""` is
/// found by [`parse`].
pub(crate) fn detect(text: &str) -> Option<&str> {
    let rest = text.trim_start_matches('\u{feff}').trim_start();
    let rest = rest.strip_prefix(OPENING)?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=')?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix(['f', 'F'])?;
    rest.strip_prefix("\"\"\"")
}

/// Parses the body that [`detect`] returned; `text` is the whole file, for line numbers.
pub(crate) fn parse(body: &str, text: &str, origin: &Path) -> Result<Vec<Segment>, Error> {
    let Some(end) = body.rfind("\"\"\"") else {
        return Err(Error::UnterminatedLegacyTemplate {
            path: origin.to_owned(),
        });
    };
    let first_line = 1 + count_lines(&text[..text.len() - body.len()]);
    let leading = body.len() - body.trim_start().len();
    let mut line = first_line + count_lines(&body[..leading]);
    let body = body[..end].trim();
    let body_line = line;

    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = body;
    while let Some(start) = rest.find(['{', '}']) {
        let before = &rest[..start];
        line += count_lines(before);
        literal.push_str(before);
        let brace = &rest[start..];
        if brace.starts_with("{{") || brace.starts_with("}}") {
            literal.push_str(&brace[..1]);
            rest = &brace[2..];
            continue;
        }
        if let Some(tail) = brace.strip_prefix('}') {
            // Python rejects a lone `}`; the old scripts passed it through, and so do we.
            literal.push('}');
            rest = tail;
            continue;
        }
        let Some(close) = matching_brace(brace) else {
            return Err(Error::UnclosedLegacyExpression {
                path: origin.to_owned(),
                line,
            });
        };
        let expression = &brace[1..close];
        let placeholder = lookup(expression).ok_or_else(|| Error::UnknownLegacyExpression {
            path: origin.to_owned(),
            line,
            expression: expression.to_owned(),
        })?;
        if !literal.is_empty() {
            segments.push(Segment::Text(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Value(placeholder));
        line += count_lines(expression);
        rest = &brace[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    check_no_leftovers(&segments, body, origin, body_line)?;
    Ok(segments)
}

fn lookup(expression: &str) -> Option<Placeholder> {
    let expression = expression.trim();
    EXPRESSIONS
        .iter()
        .find(|(known, _)| *known == expression)
        .map(|(_, placeholder)| *placeholder)
}

/// The index of the `}` that closes the `{` at index 0, skipping nested braces and quoted
/// strings, as Python reads an f-string replacement field.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (index, c) in text.char_indices() {
        match (quote, c) {
            (Some(open), _) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') => depth += 1,
            (None, '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(index);
                }
            }
            (None, '\n') if depth == 1 => {
                // An expression never spans lines in the old templates; a brace left open
                // at the end of a line is a typo, and saying so beats swallowing the text.
                return None;
            }
            _ => {}
        }
    }
    None
}

/// A `{lesson_details` that survived as literal text (written `{{lesson_details...}}`) would
/// reach the model as an unfilled placeholder: refuse it, naming it.
fn check_no_leftovers(
    segments: &[Segment],
    body: &str,
    origin: &Path,
    first_line: usize,
) -> Result<(), Error> {
    const MARKER: &str = "{lesson_details";
    for segment in segments {
        if let Segment::Text(text) = segment
            && let Some(at) = text.find(MARKER)
        {
            let expression: String = text[at + 1..]
                .chars()
                .take_while(|&c| c != '}' && c != '\n')
                .collect();
            let line = body
                .find(&format!("{{{{{expression}"))
                .map_or(first_line, |pos| first_line + count_lines(&body[..pos]));
            return Err(Error::UnknownLegacyExpression {
                path: origin.to_owned(),
                line,
                expression,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;

    fn parse(text: &str) -> Result<Template, Error> {
        Template::parse(text, Path::new("legacy.md"))
    }

    fn text(value: &str) -> Segment {
        Segment::Text(value.to_owned())
    }

    #[test]
    fn detects_legacy_templates() {
        assert!(detect("prompt = f\"\"\"\nHi\n\"\"\"\n").is_some());
        assert!(detect("\u{feff}  prompt=f\"\"\"Hi\"\"\"").is_some());
        assert!(detect("# Lesson {{lesson_code}}").is_none());
        assert!(detect("prompt = \"\"\"not an f-string\"\"\"").is_none());
        assert!(detect("Here is a prompt = f\"\"\"").is_none());
    }

    #[test]
    fn maps_every_known_expression() {
        for (expression, placeholder) in EXPRESSIONS {
            let template =
                parse(&format!("prompt = f\"\"\"\nA {{{expression}}} B\n\"\"\"\n")).unwrap();
            assert!(template.is_legacy());
            assert_eq!(
                template.segments(),
                &[text("A "), Segment::Value(placeholder), text(" B")],
                "{expression}"
            );
        }
    }

    #[test]
    fn doubled_braces_are_literal_and_body_is_trimmed() {
        let template =
            parse("prompt = f\"\"\"\n\n  {{\"rule\": 1}} {DEFAULT_FIRM_TYPE} }\n\"\"\"\n").unwrap();
        assert_eq!(
            template.segments(),
            &[
                text("{\"rule\": 1} "),
                Segment::Value(Placeholder::Organization),
                text(" }")
            ]
        );
    }

    #[test]
    fn unknown_expression_is_named_with_its_line() {
        let err = parse("prompt = f\"\"\"\nLine two\n{lesson_details['LESSON_CODE']}\n- Time: {lesson_details['DURATION']} min\n\"\"\"").unwrap_err();
        let Error::UnknownLegacyExpression {
            line, expression, ..
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            (*line, expression.as_str()),
            (4, "lesson_details['DURATION']")
        );
        assert_eq!(
            err.to_string(),
            "legacy.md:4: unknown expression `{lesson_details['DURATION']}` in legacy template"
        );
    }

    #[test]
    fn nested_braces_and_quotes_stay_inside_one_expression() {
        let err =
            parse("prompt = f\"\"\"{MODULE_METADATA.get('M}', {}).get('X')}\"\"\"").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLegacyExpression { expression, line: 1, .. } if expression == "MODULE_METADATA.get('M}', {}).get('X')"),
            "{err:?}"
        );
    }

    #[test]
    fn escaped_lesson_details_cannot_survive() {
        let err = parse("prompt = f\"\"\"\nok\nsee {{lesson_details['LESSON_CODE']}}\n\"\"\"")
            .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLegacyExpression { expression, line: 3, .. } if expression == "lesson_details['LESSON_CODE']"),
            "{err:?}"
        );
    }

    #[test]
    fn unclosed_and_unterminated() {
        let err = parse("prompt = f\"\"\"\n{lesson_details['LESSON_CODE'\n\"\"\"").unwrap_err();
        assert!(
            matches!(err, Error::UnclosedLegacyExpression { line: 2, .. }),
            "{err:?}"
        );
        let err = parse("prompt = f\"\"\"\nno end").unwrap_err();
        assert!(
            matches!(err, Error::UnterminatedLegacyTemplate { .. }),
            "{err:?}"
        );
    }
}

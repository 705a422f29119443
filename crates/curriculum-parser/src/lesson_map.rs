//! Format A, the lesson map: `# M0: Title — Lesson Map` (or `# Module 0: Title`) module headings,
//! `## L001: Title [F]` lesson headings, and other headings one level below the module as sections.

use comrak::nodes::{AstNode, NodeValue};

use crate::builder::{Builder, Found};
use crate::error::Error;
use crate::text::{inline_text, lesson_code_heading, module_heading, split_tag};

/// Reads the top-level headings of an outline into a [`Builder`], one piece of the outline at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// The level of the open module heading: headings one level deeper are sections.
    module_level: Option<u8>,
    section: Option<String>,
}

impl Reader {
    /// Reads the top-level headings of a piece that has `lines_before` lines of the outline before it.
    pub(crate) fn read<'a>(
        &mut self,
        root: &'a AstNode<'a>,
        lines_before: usize,
        builder: &mut Builder<'_>,
    ) -> Result<(), Error> {
        for node in root.children() {
            let (level, line) = {
                let ast = node.data.borrow();
                match ast.value {
                    NodeValue::Heading(heading) => {
                        (heading.level, lines_before + ast.sourcepos.start.line)
                    }
                    _ => continue,
                }
            };
            let text = inline_text(node);
            if let Some((number, title)) = module_heading(&text) {
                builder.start_module(number, title, line)?;
                self.module_level = Some(level);
                self.section = None;
            } else if let Some((number, rest)) = lesson_code_heading(&text) {
                let (title, tag) = split_tag(rest);
                builder.push_lesson(Found {
                    number: Some(number),
                    title,
                    tag,
                    section: self.section.as_deref(),
                    line,
                })?;
            } else if self
                .module_level
                .is_some_and(|module_level| level == module_level + 1)
            {
                self.section = Some(text);
            } else if self.module_level.is_none() && level == 1 {
                builder.offer_title(text);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::{Curriculum, Error, Format, ParseOptions, Warning, parse_with};

    fn parse(text: &str) -> Result<Curriculum, Error> {
        let options = ParseOptions {
            format: Some(Format::LessonMap),
        };
        parse_with(text, Path::new("map.md"), &options)
    }

    /// Each lesson as `code | title | tag | section | line`.
    fn lessons(text: &str) -> Vec<String> {
        let curriculum = parse(text).unwrap();
        curriculum
            .lessons()
            .map(|lesson| {
                let tag = lesson.complexity.map(|tag| tag.to_string());
                format!(
                    "{} | {} | {} | {} | {}",
                    lesson.code,
                    lesson.title,
                    tag.as_deref().unwrap_or("-"),
                    lesson.section.as_deref().unwrap_or("-"),
                    lesson.line
                )
            })
            .collect()
    }

    #[test]
    fn modules_lessons_and_sections() {
        let text = r#"# Data Governance — Content Structure

Complexity Legend
[F] Foundational — Basic concepts, prerequisites
[I] Intermediate — Applied practice

<!-- File: DG-01-fundamentals—lesson-map.md -->
# M0: Data Governance Fundamentals & Principles — Lesson Map
## Core Concepts & Landscape
## L001: What Is Data Governance? Scope, Value & Myths [F]
## L002: Governance vs Management vs Stewardship [I]
## Foundations for Practitioners
## L003: Reading a Governance Charter [F-I]

<!-- File: DG-02-operating-model—lesson-map.md -->
# M1: Operating Model, Roles & RACI – Lesson Map
## L001: Why Operating Models Fail [I-A]
## Roles
## L002: The Data Owner [F]
"#;
        let curriculum = parse(text).unwrap();
        assert_eq!(
            curriculum.title.as_deref(),
            Some("Data Governance — Content Structure")
        );
        assert_eq!(curriculum.format, Format::LessonMap);
        let modules: Vec<_> = curriculum
            .modules
            .iter()
            .map(|module| (module.number, module.title.as_str(), module.line))
            .collect();
        assert_eq!(
            modules,
            [
                (0, "Data Governance Fundamentals & Principles", 8),
                (1, "Operating Model, Roles & RACI", 16)
            ]
        );
        assert_eq!(
            lessons(text),
            [
                "M0-L001 | What Is Data Governance? Scope, Value & Myths | F | Core Concepts & Landscape | 10",
                "M0-L002 | Governance vs Management vs Stewardship | I | Core Concepts & Landscape | 11",
                "M0-L003 | Reading a Governance Charter | F-I | Foundations for Practitioners | 13",
                "M1-L001 | Why Operating Models Fail | I-A | - | 17",
                "M1-L002 | The Data Owner | F | Roles | 19",
            ]
        );
        assert!(curriculum.warnings.is_empty());
    }

    #[test]
    fn codes_use_the_written_numbers() {
        let text = "# M3: Metadata\n## L010: Ten [F]\n## L002: Two\n## L1000: A Thousand [E]\n";
        assert_eq!(
            lessons(text),
            [
                "M3-L010 | Ten | F | - | 2",
                "M3-L002 | Two | - | - | 3",
                "M3-L1000 | A Thousand | E | - | 4",
            ]
        );
    }

    #[test]
    fn markup_in_headings_is_not_part_of_the_title() {
        let text = r#"# **M0**: *Fundamentals* — Lesson Map ##
## L001: Using `GRANT` and `REVOKE` [I] ##
## L002: The [DAMA](https://dama.org) Wheel <!-- check the edition --> [F]
## L003: *Emphasised* **Strong** Title *[F-I]*
## L004:   Extra   spaces   [ I - A ]
"#;
        assert_eq!(parse(text).unwrap().modules[0].title, "Fundamentals");
        assert_eq!(
            lessons(text),
            [
                "M0-L001 | Using GRANT and REVOKE | I | - | 2",
                "M0-L002 | The DAMA Wheel | F | - | 3",
                "M0-L003 | Emphasised Strong Title | F-I | - | 4",
                "M0-L004 | Extra spaces | I-A | - | 5",
            ]
        );
    }

    #[test]
    fn unicode_punctuation_is_kept_and_nbsp_normalised() {
        let text = "# M0:\u{a0}Fundamentals\u{a0}— Lesson Map\n\
                    ## L001: Lineage → Impact: “Who” Owns What’s Next\u{2011}Gen & Why [I-A]\n\
                    ## L002:\u{a0}Non\u{a0}breaking\u{202f}spaces\u{a0}[F]\n";
        assert_eq!(parse(text).unwrap().modules[0].title, "Fundamentals");
        assert_eq!(
            lessons(text),
            [
                "M0-L001 | Lineage → Impact: “Who” Owns What’s Next\u{2011}Gen & Why | I-A | - | 2",
                "M0-L002 | Non breaking spaces | F | - | 3",
            ]
        );
    }

    #[test]
    fn crlf_and_bom() {
        let text = "\u{feff}# M0: Fundamentals — Lesson Map\r\n## Core\r\n\r\n## L001: What Is It? [F]\r\n";
        assert_eq!(lessons(text), ["M0-L001 | What Is It? | F | Core | 4"]);
    }

    #[test]
    fn a_title_may_contain_an_em_dash() {
        let text = "# M14: Program Execution, KPIs & Change — Capstone — Lesson Map\n## L001: Capstone Brief [A]\n";
        assert_eq!(
            parse(text).unwrap().modules[0].title,
            "Program Execution, KPIs & Change — Capstone"
        );
    }

    #[test]
    fn deeper_headings_and_prose_are_not_sections_or_lessons() {
        let text = r#"# M0: Fundamentals
## Section
## L001: First [F]
### Objectives
- L002: a bullet is not a lesson heading [F]

L003: nor is a paragraph [F]
## L002: Second [F]
"#;
        assert_eq!(
            lessons(text),
            [
                "M0-L001 | First | F | Section | 3",
                "M0-L002 | Second | F | Section | 8"
            ]
        );
    }

    #[test]
    fn modules_may_be_spelled_out() {
        let text = "# Module 1: Operating Model — Lesson Map\n## L001: Roles [F]\n# M2\n## L001: Untitled Module [I]\n";
        let curriculum = parse(text).unwrap();
        assert_eq!(curriculum.modules[0].title, "Operating Model");
        assert_eq!(
            lessons(text),
            [
                "M1-L001 | Roles | F | - | 2",
                "M2-L001 | Untitled Module | I | - | 4"
            ]
        );
        assert_eq!(
            curriculum.warnings,
            [Warning {
                line: 3,
                message: "module M2 has no title".to_owned()
            }]
        );
    }

    #[test]
    fn sections_reset_at_each_module() {
        let text = "# M0: A\n## Section A\n## L001: One [F]\n# M1: B\n## L001: Two [F]\n";
        assert_eq!(
            lessons(text),
            [
                "M0-L001 | One | F | Section A | 3",
                "M1-L001 | Two | F | - | 5"
            ]
        );
    }

    #[test]
    fn a_module_without_lessons_is_kept_with_a_warning() {
        let text = "# M0: A\n## L001: One [F]\n# M1: Truncated — Lesson Map\n## Section\n";
        let curriculum = parse(text).unwrap();
        assert_eq!(curriculum.modules.len(), 2);
        assert_eq!(curriculum.modules[1].title, "Truncated");
        assert_eq!(
            curriculum.warnings,
            [Warning {
                line: 3,
                message: "module M1 has no lessons".to_owned()
            }]
        );
    }

    #[test]
    fn an_empty_title_is_kept_with_a_warning() {
        let curriculum = parse("# M0: A\n## L001: [F]\n").unwrap();
        assert_eq!(curriculum.modules[0].lessons[0].title, "");
        assert_eq!(
            curriculum.warnings[0].message,
            "lesson M0-L001 has no title"
        );
    }

    #[test]
    fn duplicate_lesson_names_both_lines() {
        let err =
            parse("# M0: A\n## L001: One [F]\n## L002: Two [F]\n## L001: Again [F]\n").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::DuplicateLesson { path, line: 4, first_line: 2, code }
                    if path == &PathBuf::from("map.md") && code.to_string() == "M0-L001"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "map.md:4: lesson M0-L001 appears twice (first at line 2)"
        );
    }

    #[test]
    fn duplicate_module_names_both_lines() {
        let err = parse("# M0: A\n## L001: One [F]\n# M00: B\n").unwrap_err();
        assert!(
            matches!(
                err,
                Error::DuplicateModule {
                    line: 3,
                    first_line: 1,
                    number: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn lesson_before_any_module() {
        let err = parse("# Title\n## L001: Orphan [F]\n# M0: A\n").unwrap_err();
        assert!(
            matches!(&err, Error::LessonOutsideModule { line: 2, title, .. } if title == "Orphan"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_complexity_tag() {
        let err = parse("# M0: A\n## L001: One [F]\n## L002: Two [X-I]\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownComplexity { line: 3, tag, .. } if tag == "X-I"),
            "{err:?}"
        );
    }
}

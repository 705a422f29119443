//! Format A, the lesson map: `# M0: Title — Lesson Map` (or `# Module 0: Title`) module headings,
//! `## L001: Title [F]` lesson headings, and other headings one level below the module as sections.
//! Lines that look like module or lesson headings but are not read as one
//! (in a heading, a paragraph or a list item) are warned about.

use comrak::nodes::{AstNode, NodeValue};

use crate::builder::{Builder, Found};
use crate::error::Error;
use crate::near_miss::{self, Expect};
use crate::text::{inline_lines, inline_text, lesson_code_heading, module_heading, split_tag};

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
                let line = lines_before + ast.sourcepos.start.line;
                match ast.value {
                    NodeValue::Heading(heading) => (heading.level, line),
                    NodeValue::Paragraph => {
                        drop(ast);
                        for (index, text) in inline_lines(node).iter().enumerate() {
                            let near_miss = near_miss::paragraph_line(
                                text,
                                Expect::ModulesAndLessons,
                                self.section_level(),
                            );
                            if let Some(near_miss) = near_miss {
                                builder.near_miss(line + index, near_miss)?;
                            }
                        }
                        continue;
                    }
                    NodeValue::List(_) => {
                        drop(ast);
                        self.read_list(node, lines_before, builder)?;
                        continue;
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
            } else if let Some(near_miss) =
                near_miss::heading(&text, level, self.module_level, Expect::ModulesAndLessons)
                && builder.near_miss(line, near_miss)?
            {
                // Neither a section nor the title: a module or lesson heading with a typo.
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

    /// The level of a lesson heading here: one below the module's.
    fn section_level(&self) -> u8 {
        self.module_level
            .map_or(2, |level| level.saturating_add(1).min(6))
    }

    /// Warns about the items of a list (and of its nested lists) that are lessons written as items.
    fn read_list<'a>(
        &self,
        list: &'a AstNode<'a>,
        lines_before: usize,
        builder: &mut Builder<'_>,
    ) -> Result<(), Error> {
        for item in list.children() {
            for child in item.children() {
                let (is_paragraph, is_list) = {
                    let value = &child.data.borrow().value;
                    (
                        matches!(value, NodeValue::Paragraph),
                        matches!(value, NodeValue::List(_)),
                    )
                };
                match (is_paragraph, is_list) {
                    (true, _) if child.previous_sibling().is_none() => {
                        let text = inline_text(child);
                        let near_miss = near_miss::list_item(
                            &text,
                            Expect::ModulesAndLessons,
                            self.section_level(),
                        );
                        if let Some(near_miss) = near_miss {
                            let line = lines_before + item.data.borrow().sourcepos.start.line;
                            builder.near_miss(line, near_miss)?;
                        }
                    }
                    (_, true) => self.read_list(child, lines_before, builder)?,
                    _ => {}
                }
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

    /// The warnings of an outline, each as `line: message`.
    fn warnings(text: &str) -> Vec<String> {
        let curriculum = parse(text).unwrap();
        curriculum
            .warnings
            .iter()
            .map(|warning| format!("{}: {}", warning.line, warning.message))
            .collect()
    }

    /// Issue 12: heading typos no longer drop lessons silently; accepted forms never warn.
    #[test]
    fn lines_that_look_like_headings_but_are_not_warn() {
        let check = |typo: &str, expected: &str| {
            let text = format!("# M0: A\n## L001: One [F]\n{typo}\n## L003: Three [F]\n");
            assert_eq!(warnings(&text), [expected], "{typo}");
            // The typo is no lesson and no section.
            assert_eq!(
                lessons(&text),
                ["M0-L001 | One | F | - | 2", "M0-L003 | Three | F | - | 4"]
            );
        };
        check(
            "## L02 Title [F]",
            "3: `## L02 Title [F]` is not read as a lesson heading: expected `## L02: Title [F]`; add a colon after L02",
        );
        check(
            "## L002 Title [F]",
            "3: `## L002 Title [F]` is not read as a lesson heading: expected `## L002: Title [F]`; add a colon after L002",
        );
        check(
            "## L02 …",
            "3: `## L02 …` is not read as a lesson heading: expected `## L02: …`; add a colon after L02",
        );
        check(
            "##L002: Title [F]",
            "3: `##L002: Title [F]` is not a heading: expected `## L002: Title [F]`; add a space after `##`",
        );
        check(
            "- L002: Title [F]",
            "3: `L002: Title [F]` is not read as a lesson (a list item is not a heading): expected `## L002: Title [F]`; write it as a heading",
        );
        check(
            "L002: Title [F]",
            "3: `L002: Title [F]` is not read as a lesson (the line is not a heading): expected `## L002: Title [F]`; start the line with `## `",
        );
        check(
            "## Lesson 2: Title [F]",
            "3: `## Lesson 2: Title [F]` is not read as a lesson heading: expected `## L002: Title [F]`; a lesson heading starts with its code, `L002`",
        );
    }

    /// What the readers accept never warns, nor do sections named like codes.
    #[test]
    fn accepted_forms_and_code_like_sections_do_not_warn() {
        let text = r#"# Course — Content Structure
# M0: Zero — Lesson Map
## M365 Governance
## L001 - Spaced Dash [F]
## L002 — Em Dash [F]
## L003 : Spaced Colon [F]
### L004: Deeper [F]
## **L005**: *Markup* [F]
L006: Setext
---
## L2 Support
## L007: In L2 Support [F]
# Module 1: One – Lesson Map
## L001: One [F]
# M2 — Two
## L001: One [F]
# M3 : Three
## L01: One [F]
"#;
        assert!(warnings(text).is_empty(), "{:?}", warnings(text));
        let curriculum = parse(text).unwrap();
        assert_eq!(curriculum.lesson_count(), 10);
        let lesson = curriculum.lesson("M0-L007".parse().unwrap()).unwrap();
        assert_eq!(lesson.section.as_deref(), Some("L2 Support"));
    }

    #[test]
    fn a_module_heading_typo_warns_at_its_line() {
        let text = "# M0: A\n## L001: One [F]\n# M1 B — Lesson Map\n## L002: Two [F]\n";
        assert_eq!(
            warnings(text),
            [
                "3: `# M1 B — Lesson Map` is not read as a module heading: expected `# M1: B — Lesson Map`; add a colon after M1"
            ]
        );
        let text = "# M0: A\n## L001: One [F]\n#M1: B\n## L002: Two [F]\n";
        assert_eq!(
            warnings(text),
            ["3: `#M1: B` is not a heading: expected `# M1: B`; add a space after `#`"]
        );
    }

    #[test]
    fn gaps_and_going_back_in_lesson_numbers_warn() {
        assert_eq!(
            warnings("# M0: A\n## L001: One [F]\n## L003: Three [F]\n## L007: Seven [F]\n"),
            [
                "3: M0-L002 is missing: numbers jump from L001 to L003; renumber the lessons or add the missing ones",
                "4: M0-L004 to M0-L006 are missing: numbers jump from L003 to L007; renumber the lessons or add the missing ones",
            ]
        );
        assert_eq!(
            warnings("# M0: A\n## L001: One [F]\n# M1: B\n## L003: Three [F]\n"),
            [
                "4: M1-L001 to M1-L002 are missing: module M1's lessons start at L003; renumber the lessons or add the missing ones"
            ]
        );
        assert_eq!(
            warnings(
                "# M0: A\n## L001: One [F]\n## L003: Three [F]\n## L002: Two [F]\n## L004: Four [F]\n"
            ),
            [
                "4: lesson M0-L002 comes after M0-L003 (line 3): lesson numbers go back; renumber or move it"
            ]
        );
        // Numbers restart in every module (or go on from the module before), may start at L000,
        // and may be written with fewer digits.
        assert_eq!(
            warnings(
                "# M0: A\n## L001: One\n## L002: Two\n# M1: B\n## L003: Three\n# M2: C\n# M3: D\n## L004: Four\n"
            ),
            ["6: module M2 has no lessons"]
        );
        assert!(
            warnings("# M0: A\n## L000: Zero\n## L1: One\n## L02: Two\n# M1: B\n## L001: One\n")
                .is_empty()
        );
    }

    /// Issue 12: `## L005: ` and `## L00` became lessons with no title, paid for and answered with junk.
    #[test]
    fn an_empty_title_is_an_error() {
        for (text, line, code) in [
            ("# M0: A\n## L001: One [F]\n## L005: \n", 3, "M0-L005"),
            ("# M4: A\n## L00\n", 2, "M4-L000"),
            ("# M0: A\n## L001: [F]\n", 2, "M0-L001"),
            ("# M0: A\n## L001: <!-- todo -->\n", 2, "M0-L001"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, Error::EmptyTitle { line: l, code: c, .. } if *l == line && c.to_string() == code),
                "{text:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "map.md:{line}: lesson {code} has no title (a lesson line looks like `## L001: What Is Data Governance? [F]`)"
                )
            );
        }
    }

    /// Issue 12: numbers out of range gave "no lessons found".
    #[test]
    fn a_number_too_large_is_an_error() {
        for (text, line, code) in [
            ("# M4294967296: Huge\n## L001: One [F]\n", 1, "M4294967296"),
            (
                "# M0: A\n## L99999999999999999999: Huge [F]\n",
                2,
                "L99999999999999999999",
            ),
            (
                "# M0: A\n## L001: One [F]\n##L1234567890: Huge\n",
                3,
                "L1234567890",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, Error::NumberTooLarge { line: l, code: c, .. } if *l == line && c == code),
                "{text:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "map.md:{line}: the number in `{code}` is too large (module and lesson numbers have at most 9 digits)"
                )
            );
        }
        // Nine digits fit.
        assert_eq!(lessons("# M0: A\n## L999999999: Big [F]\n").len(), 1);
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

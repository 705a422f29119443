//! Format B, the nested outline: `## Module 1: Title` (or `## M1: Title`) headings
//! or `- **Module 1: Title**` list items,
//! group headings and nested bullets below them.
//! `*Lab: ...*` items are labs; other items are sections when they have child items that are not labs,
//! and lessons otherwise (so a lesson may carry its own labs).
//! Headings, items and paragraph lines that look like module headings but are not read as one are warned about.

use comrak::nodes::{AstNode, NodeValue};

use crate::builder::{Builder, Found};
use crate::error::Error;
use crate::near_miss::{self, Expect};
use crate::text::{
    Tag, inline_lines, inline_text, lab_title, module_heading, module_item, split_tag,
};

/// Reads the headings and lists of an outline into a [`Builder`], one piece of the outline at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// The level of the open module heading: deeper headings are groups, others end the module.
    module_level: Option<u8>,
    group: Option<String>,
}

impl Reader {
    /// Reads the headings and lists of a piece that has `lines_before` lines of the outline before it.
    pub(crate) fn read<'a>(
        &mut self,
        root: &'a AstNode<'a>,
        lines_before: usize,
        builder: &mut Builder<'_>,
    ) -> Result<(), Error> {
        for node in root.children() {
            let (heading_level, line) = {
                let ast = node.data.borrow();
                match ast.value {
                    NodeValue::Heading(heading) => {
                        (heading.level, lines_before + ast.sourcepos.start.line)
                    }
                    NodeValue::List(_) => {
                        drop(ast);
                        let mut entries = Vec::new();
                        list_entries(node, lines_before, &mut entries);
                        read_entries(entries, lines_before, self.group.as_deref(), builder)?;
                        continue;
                    }
                    NodeValue::Paragraph => {
                        let line = lines_before + ast.sourcepos.start.line;
                        drop(ast);
                        for (index, text) in inline_lines(node).iter().enumerate() {
                            // Only `#`-lines: in prose, `Module 2: ...` may be just prose.
                            if !text.starts_with('#') {
                                continue;
                            }
                            if let Some(near_miss) =
                                near_miss::paragraph_line(text, Expect::Modules, 2)
                            {
                                builder.near_miss(line + index, near_miss)?;
                            }
                        }
                        continue;
                    }
                    _ => continue,
                }
            };
            let text = inline_text(node);
            if let Some((number, title)) = module_heading(&text) {
                builder.start_module(number, title, line)?;
                self.module_level = Some(heading_level);
                self.group = None;
                continue;
            }
            if let Some(near_miss) =
                near_miss::heading(&text, heading_level, self.module_level, Expect::Modules)
            {
                builder.near_miss(line, near_miss)?;
            }
            if self
                .module_level
                .is_some_and(|module_level| heading_level > module_level)
            {
                self.group = Some(text);
            } else {
                if self.module_level.take().is_some() {
                    builder.close_module();
                }
                self.group = None;
                if heading_level == 1 {
                    builder.offer_title(text);
                }
            }
        }
        Ok(())
    }
}

/// A list item and its text, read once.
struct Entry<'a> {
    item: &'a AstNode<'a>,
    line: usize,
    text: String,
}

/// Reads list entries of a piece that has `lines_before` lines of the outline before it.
fn read_entries(
    entries: Vec<Entry<'_>>,
    lines_before: usize,
    section: Option<&str>,
    builder: &mut Builder<'_>,
) -> Result<(), Error> {
    for Entry { item, line, text } in entries {
        if let Some((number, title)) = module_item(&text) {
            builder.start_module(number, title, line)?;
            read_entries(
                child_entries(item, lines_before),
                lines_before,
                None,
                builder,
            )?;
            builder.close_module();
            continue;
        }
        if let Some(title) = lab_title(&text) {
            builder.push_lab(title, section, line);
            continue;
        }
        if let Some(near_miss) = near_miss::module_list_item(&text) {
            builder.near_miss(line, near_miss)?;
        }
        let children = child_entries(item, lines_before);
        if children
            .iter()
            .any(|child| lab_title(&child.text).is_none())
        {
            let (name, _tag) = split_tag(&text);
            read_entries(children, lines_before, Some(name), builder)?;
            continue;
        }
        let (title, tag) = split_tag(&text);
        // Untagged bullets outside modules are prose (an overview, prerequisites), not lessons.
        if builder.is_open() || tag != Tag::Absent {
            builder.push_lesson(Found {
                number: None,
                title,
                tag,
                section,
                line,
            })?;
        }
        // The lesson's own labs (all its children are labs) sit under the lesson.
        read_entries(children, lines_before, Some(title), builder)?;
    }
    Ok(())
}

/// The items of a list, each with its text and its line in the outline.
fn list_entries<'a>(list: &'a AstNode<'a>, lines_before: usize, entries: &mut Vec<Entry<'a>>) {
    for item in list.children() {
        match item_text(item) {
            Some(text) => entries.push(Entry {
                item,
                line: lines_before + item.data.borrow().sourcepos.start.line,
                text,
            }),
            // An item with no text of its own (it starts with a code block, say) adds no level:
            // its children stand in its place.
            None => entries.extend(child_entries(item, lines_before)),
        }
    }
}

/// The items of an item's nested lists.
fn child_entries<'a>(item: &'a AstNode<'a>, lines_before: usize) -> Vec<Entry<'a>> {
    let mut entries = Vec::new();
    for child in item.children() {
        if matches!(child.data.borrow().value, NodeValue::List(_)) {
            list_entries(child, lines_before, &mut entries);
        }
    }
    entries
}

/// The text of an item's first paragraph, if it has one and it is not empty.
fn item_text<'a>(item: &'a AstNode<'a>) -> Option<String> {
    let paragraph = item.first_child()?;
    if !matches!(paragraph.data.borrow().value, NodeValue::Paragraph) {
        return None;
    }
    Some(inline_text(paragraph)).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Curriculum, Error, Format, ParseOptions, Warning, parse_with};

    fn parse(text: &str) -> Result<Curriculum, Error> {
        let options = ParseOptions {
            format: Some(Format::Nested),
        };
        parse_with(text, Path::new("nested.md"), &options)
    }

    /// Each lesson as `code | title | tag | section | line`, each lab as `lab | title | section | line`.
    fn items(text: &str) -> Vec<String> {
        let curriculum = parse(text).unwrap();
        let mut items = Vec::new();
        for module in &curriculum.modules {
            for lesson in &module.lessons {
                let tag = lesson.complexity.map(|tag| tag.to_string());
                items.push(format!(
                    "{} | {} | {} | {} | {}",
                    lesson.code,
                    lesson.title,
                    tag.as_deref().unwrap_or("-"),
                    lesson.section.as_deref().unwrap_or("-"),
                    lesson.line
                ));
            }
            for lab in &module.labs {
                items.push(format!(
                    "lab M{} | {} | {} | {}",
                    module.number,
                    lab.title,
                    lab.section.as_deref().unwrap_or("-"),
                    lab.line
                ));
            }
        }
        items
    }

    #[test]
    fn heading_modules_with_groups_and_nested_bullets() {
        let text = r#"# AI Engineering Curriculum

## Overview
- Who this is for
- What you will build

## Module 1: AI Foundation & Tool Fluency
### Core Concepts
- Tokenization & Input Structure [F-I]
- Context Windows
  - Why Limits Exist [F]
  - Chunking Strategies [I]
    - *Lab: Chunk a 300-page PDF*
- *Lab: Count Tokens Three Ways*

### Tooling
1. Prompt Playgrounds [F]
2. **API Keys** & `.env` Files [F]

## Module 2: Retrieval
- Embeddings 101 [F]

## Appendix
- Further reading
"#;
        let curriculum = parse(text).unwrap();
        assert_eq!(
            curriculum.title.as_deref(),
            Some("AI Engineering Curriculum")
        );
        assert_eq!(curriculum.format, Format::Nested);
        let modules: Vec<_> = curriculum
            .modules
            .iter()
            .map(|module| (module.number, module.title.as_str(), module.line))
            .collect();
        assert_eq!(
            modules,
            [(1, "AI Foundation & Tool Fluency", 7), (2, "Retrieval", 20)]
        );
        assert_eq!(
            items(text),
            [
                "M1-L001 | Tokenization & Input Structure | F-I | Core Concepts | 9",
                "M1-L002 | Why Limits Exist | F | Context Windows | 11",
                "M1-L003 | Chunking Strategies | I | Context Windows | 12",
                "M1-L004 | Prompt Playgrounds | F | Tooling | 17",
                "M1-L005 | API Keys & .env Files | F | Tooling | 18",
                "lab M1 | Chunk a 300-page PDF | Chunking Strategies | 13",
                "lab M1 | Count Tokens Three Ways | Core Concepts | 14",
                "M2-L001 | Embeddings 101 | F | - | 21",
            ]
        );
        assert_eq!(curriculum.lesson_count(), 6);
    }

    #[test]
    fn bold_item_modules() {
        let text = r#"# Data Engineering Track

- **Module 1: Data Engineering Foundations**
  - Core Concepts
    - What Is a Data Pipeline? [F]
    - Batch vs Streaming [F-I]
    - *Lab: Build Your First Pipeline*
  - Storage
    - Row vs Columnar Formats [I]
- **Module 2: Orchestration** (Weeks 3–4)
  - DAGs & Dependencies [I]
  - Backfills
"#;
        let curriculum = parse(text).unwrap();
        let titles: Vec<_> = curriculum
            .modules
            .iter()
            .map(|module| module.title.as_str())
            .collect();
        assert_eq!(
            titles,
            ["Data Engineering Foundations", "Orchestration (Weeks 3–4)"]
        );
        assert_eq!(
            items(text),
            [
                "M1-L001 | What Is a Data Pipeline? | F | Core Concepts | 5",
                "M1-L002 | Batch vs Streaming | F-I | Core Concepts | 6",
                "M1-L003 | Row vs Columnar Formats | I | Storage | 9",
                "lab M1 | Build Your First Pipeline | Core Concepts | 7",
                "M2-L001 | DAGs & Dependencies | I | - | 11",
                "M2-L002 | Backfills | - | - | 12",
            ]
        );
    }

    #[test]
    fn module_headings_may_use_codes_and_items_without_bold() {
        let text =
            "## M1: Data Foundations\n- Pipelines [F]\n\n- Module 2: Orchestration\n  - DAGs [I]\n";
        assert_eq!(
            items(text),
            [
                "M1-L001 | Pipelines | F | - | 2",
                "M2-L001 | DAGs | I | - | 5"
            ]
        );
    }

    #[test]
    fn a_section_name_drops_its_tag() {
        let text = "## Module 1: A\n- Context Windows [F-I]\n  - Why Limits Exist [F]\n";
        assert_eq!(
            items(text),
            ["M1-L001 | Why Limits Exist | F | Context Windows | 3"]
        );
    }

    #[test]
    fn items_without_text_add_no_level() {
        let text = "## Module 1: A\n- Group\n  - ```\n    code\n    ```\n    - Nested Lesson [F]\n";
        assert_eq!(items(text), ["M1-L001 | Nested Lesson | F | Group | 6"]);
    }

    #[test]
    fn a_heading_at_the_module_level_ends_the_module() {
        let text =
            "## Module 1: A\n- One [F]\n## Resources\n- A link\n### Deeper\n- Another link\n";
        assert_eq!(items(text), ["M1-L001 | One | F | - | 2"]);
    }

    #[test]
    fn loose_lists_and_multi_paragraph_items() {
        let text = "## Module 1: A\n\n- One [F]\n\n  Some detail about it.\n\n- Two [I]\n";
        assert_eq!(
            items(text),
            ["M1-L001 | One | F | - | 3", "M1-L002 | Two | I | - | 7"]
        );
    }

    #[test]
    fn a_module_with_only_labs_is_kept_with_a_warning() {
        let text = "## Module 1: A\n- One [F]\n## Module 2: Labs Only\n- *Lab: Capstone*\n";
        let curriculum = parse(text).unwrap();
        assert_eq!(curriculum.modules[1].labs.len(), 1);
        assert_eq!(
            curriculum.warnings,
            [Warning {
                line: 3,
                message: "module M2 has no lessons".to_owned()
            }]
        );
    }

    #[test]
    fn a_tagged_bullet_before_any_module_is_an_error() {
        let err = parse("# Course\n- Orphan Lesson [F]\n## Module 1: A\n- One [F]\n").unwrap_err();
        assert!(
            matches!(&err, Error::LessonOutsideModule { line: 2, title, .. } if title == "Orphan Lesson"),
            "{err:?}"
        );
    }

    /// Issue 12: module typos in a nested outline are warned about at their line.
    #[test]
    fn module_typos_warn() {
        let curriculum = parse(
            "## Module 1: A\n- One [F]\n\n##Module 2: B\n- **Module 3 C**\n  - Group\n    - Two\n## Module 4 D\n- L2 Support Triage\n",
        )
        .unwrap();
        let warnings: Vec<String> = curriculum
            .warnings
            .iter()
            .map(|warning| format!("{}: {}", warning.line, warning.message))
            .collect();
        assert_eq!(
            warnings,
            [
                "4: `##Module 2: B` is not a heading: expected `## Module 2: B`; add a space after `##`",
                "5: `Module 3 C` is not read as a module: expected `Module 3: C`; add a colon after Module 3",
                "8: `## Module 4 D` is not read as a module heading: expected `## Module 4: D`; add a colon after Module 4",
            ]
        );
        // Lesson-like bullets are lessons here; lesson-like headings are groups.
        assert_eq!(
            items("## Module 1: A\n### L2 Basics\n- L2 Support Triage\n"),
            ["M1-L001 | L2 Support Triage | - | L2 Basics | 3"]
        );
    }

    #[test]
    fn a_module_heading_typo_is_named_when_its_lessons_have_no_module() {
        let err = parse("## Module 1: A\n- One [F]\n## Module 2 B\n- Two [F]\n").unwrap_err();
        assert!(
            matches!(&err, Error::MisreadModuleHeading { line: 3, previous: None, source, .. }
                if matches!(**source, Error::LessonOutsideModule { line: 4, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_lesson_without_a_title_is_an_error() {
        let err = parse("## Module 1: A\n- One [F]\n- [I]\n").unwrap_err();
        assert!(
            matches!(&err, Error::EmptyTitle { line: 3, code, .. } if code.to_string() == "M1-L002"),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_module_number() {
        let err = parse("## Module 1: A\n- One [F]\n- **Module 1: B**\n  - Two [F]\n").unwrap_err();
        assert!(
            matches!(
                err,
                Error::DuplicateModule {
                    line: 3,
                    first_line: 1,
                    number: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_complexity_tag() {
        let err = parse("## Module 1: A\n- One [F]\n  - Two [Q]\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownComplexity { line: 3, tag, .. } if tag == "Q"),
            "{err:?}"
        );
    }
}

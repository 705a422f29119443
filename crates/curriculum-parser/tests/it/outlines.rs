//! The small outlines: both nested module styles, and a lesson map with CRLF, a BOM and markup.

use curriculum_parser::{Format, parse_file};

use crate::{fixture, lesson_rows};

#[test]
fn nested_with_module_headings() {
    let curriculum = parse_file(&fixture("outlines/nested-module-headings.md")).unwrap();
    assert_eq!(curriculum.format, Format::Nested);
    assert_eq!(
        curriculum.title.as_deref(),
        Some("AI Engineering for Developers")
    );
    let modules: Vec<_> = curriculum
        .modules
        .iter()
        .map(|module| {
            (
                module.number,
                module.title.as_str(),
                module.line,
                module.labs.len(),
            )
        })
        .collect();
    assert_eq!(
        modules,
        [
            (1, "AI Foundation & Tool Fluency", 9, 2),
            (2, "Prompt Engineering", 25, 1),
            (3, "Retrieval-Augmented Generation", 39, 0),
        ]
    );
    assert_eq!(
        lesson_rows(&curriculum),
        [
            "M1-L001 | How Large Language Models Generate Text | F | Core Concepts | 12",
            "M1-L002 | Tokenization & Input Structure | F-I | Core Concepts | 13",
            "M1-L003 | Why Context Limits Exist | F | Context Windows | 15",
            "M1-L004 | Chunking Long Documents | I | Context Windows | 16",
            "M1-L005 | Chat Completions: Roles & Messages | F | Working with the API | 20",
            "M1-L006 | Sampling: temperature, top_p & Determinism | I | Working with the API | 21",
            "M1-L007 | Structured Output with JSON Schema | I-A | Working with the API | 22",
            "M2-L001 | Prompt Engineering Principles | F | Principles | 28",
            "M2-L002 | Few-Shot Examples That Generalise | I | Principles | 29",
            "M2-L003 | Chain of Thought → When It Helps | I-A | Prompt Patterns | 31",
            "M2-L004 | Self-Critique & Revision Loops | A | Prompt Patterns | 32",
            "M2-L005 | Building an Evaluation Set | I | Evaluation | 35",
            "M2-L006 | LLM-as-Judge: Pitfalls & Calibration | A | Evaluation | 36",
            "M3-L001 | Embeddings & Vector Search | F-I | - | 40",
            "M3-L002 | Hybrid Search: BM25 + Vectors | I-A | - | 41",
            "M3-L003 | Re-Ranking & Citation Grounding | A | - | 42",
        ]
    );
    let labs: Vec<_> = curriculum
        .modules
        .iter()
        .flat_map(|module| &module.labs)
        .map(|lab| (lab.title.as_str(), lab.section.as_deref(), lab.line))
        .collect();
    assert_eq!(
        labs,
        [
            ("Count Tokens Three Ways", Some("Core Concepts"), 17),
            (
                "Extract Invoices into JSON",
                Some("Structured Output with JSON Schema"),
                23
            ),
            ("Grade 100 Answers Automatically", Some("Evaluation"), 37),
        ]
    );
}

#[test]
fn nested_with_module_items() {
    let curriculum = parse_file(&fixture("outlines/nested-module-items.md")).unwrap();
    assert_eq!(curriculum.format, Format::Nested);
    let titles: Vec<_> = curriculum
        .modules
        .iter()
        .map(|module| module.title.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Data Engineering Foundations",
            "Orchestration & Reliability",
            "Streaming (Advanced Track)"
        ]
    );
    assert_eq!(
        lesson_rows(&curriculum),
        [
            "M1-L001 | What Is a Data Pipeline? | F | Core Concepts | 7",
            "M1-L002 | Batch vs Streaming Processing | F-I | Core Concepts | 8",
            "M1-L003 | Row vs Columnar Formats: CSV, Parquet & ORC | I | Storage | 11",
            "M1-L004 | Partitioning & File Sizing | I-A | Storage | 12",
            "M2-L001 | DAGs, Dependencies & Retries | I | Scheduling | 15",
            "M2-L002 | Backfills Without Tears | I-A | Scheduling | 16",
            "M2-L003 | Data Contracts Between Teams | A | - | 17",
            "M3-L001 | Event Time vs Processing Time | A | - | 20",
            "M3-L002 | Exactly\u{2011}Once Semantics: Myth & Reality | E | - | 21",
        ]
    );
    let labs: Vec<_> = curriculum
        .modules
        .iter()
        .map(|module| {
            module
                .labs
                .iter()
                .map(|lab| lab.title.as_str())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        labs,
        [
            vec!["Build Your First Pipeline"],
            vec!["Recover From a Failed Nightly Run"],
            vec![]
        ]
    );
}

#[test]
fn lesson_map_with_crlf_bom_and_markup() {
    let curriculum = parse_file(&fixture("outlines/lesson-map-crlf-bom.md")).unwrap();
    assert_eq!(curriculum.format, Format::LessonMap);
    assert_eq!(curriculum.modules[0].title, "Fundamentals");
    assert_eq!(curriculum.modules[0].line, 1);
    assert_eq!(
        lesson_rows(&curriculum),
        [
            "M0-L001 | What Is Data Governance? | F | Core Concepts | 5",
            "M0-L002 | Using GRANT & Roles | I-A | Core Concepts | 6",
        ]
    );
}

/// Issue 12 added warnings for typos, gaps and going back in numbers: the author's outlines have none.
#[test]
fn the_outlines_have_no_warnings() {
    for name in [
        "datagov/Content Structure.md",
        "outlines/lesson-map-crlf-bom.md",
        "outlines/nested-module-headings.md",
        "outlines/nested-module-items.md",
    ] {
        let curriculum = parse_file(&fixture(name)).unwrap();
        assert!(
            curriculum.warnings.is_empty(),
            "{name}: {:?}",
            curriculum.warnings
        );
    }
}

//! The Data Governance outline: the author's main curriculum, in the lesson-map format.

use curriculum_parser::{Complexity, Format, Level, parse_file};

use crate::{fixture, lesson_rows};

const MODULE_TITLES: [&str; 15] = [
    "Data Governance Fundamentals & Principles",
    "Operating Model, Roles & RACI",
    "Policies, Standards & Controls",
    "Metadata, Catalog & Business Glossary",
    "Data Quality Governance",
    "Lineage, Traceability & Impact Analysis",
    "Access, Privacy & Ethics Governance",
    "Data Lifecycle, Retention & Records",
    "Data Sharing, Contracts & Intercompany Governance",
    "Risk, Compliance & Audit",
    "Cloud/SaaS Governance & Platform Guardrails",
    "Analytics & BI Governance",
    "AI/ML Governance & Responsible AI",
    "Stewardship Workflows & Issue Management",
    "Program Execution, KPIs & Change — Capstone",
];

#[test]
fn fifteen_modules_and_336_lessons() {
    let curriculum = parse_file(&fixture("datagov/Content Structure.md")).unwrap();
    assert_eq!(curriculum.format, Format::LessonMap);
    assert_eq!(
        curriculum.title.as_deref(),
        Some("Data Governance — Content Structure")
    );
    assert_eq!(curriculum.modules.len(), 15);
    assert_eq!(curriculum.lesson_count(), 336);
    assert!(curriculum.warnings.is_empty(), "{:?}", curriculum.warnings);
    for (index, module) in curriculum.modules.iter().enumerate() {
        assert_eq!(module.number as usize, index);
        assert_eq!(module.title, MODULE_TITLES[index]);
        // Lesson numbers restart at L001 in every module and run without gaps.
        for (position, lesson) in module.lessons.iter().enumerate() {
            assert_eq!(lesson.code.module(), module.number);
            assert_eq!(
                lesson.code.lesson() as usize,
                position + 1,
                "{}",
                lesson.code
            );
            assert!(lesson.complexity.is_some(), "{} has no tag", lesson.code);
            assert!(lesson.section.is_some(), "{} has no section", lesson.code);
        }
    }
    let counts: Vec<usize> = curriculum
        .modules
        .iter()
        .map(|module| module.lessons.len())
        .collect();
    assert_eq!(
        counts,
        [24, 22, 24, 24, 24, 22, 24, 22, 22, 22, 22, 22, 24, 20, 18]
    );
}

#[test]
fn exact_lessons() {
    let curriculum = parse_file(&fixture("datagov/Content Structure.md")).unwrap();
    let rows = lesson_rows(&curriculum);
    for expected in [
        "M0-L001 | What Is Data Governance? Scope, Value & Myths | F | Core Concepts & Landscape | 14",
        "M0-L008 | “Govern the Data That Matters”: Prioritising Critical Data Elements | I | Principles & Guiding Values | 23",
        "M1-L001 | What an Operating Model Is (and Isn’t) | F | Operating Model Design | 49",
        "M3-L018 | Metric Definitions: “Active Customer”, “Churn” & Friends | I | Business Glossary | 138",
        "M12-L013 | Model Risk Management: Lessons from SR 11\u{2011}7 | A | Model Lifecycle | 440",
        "M14-L011 | Overcoming Resistance: “We’ve Always Done It This Way” | I-A | Change Management | 504",
        "M14-L018 | Course Wrap-Up: Your Next Steps as a Governance Leader | F | Capstone | 513",
    ] {
        assert!(
            rows.iter().any(|row| row == expected),
            "missing: {expected}"
        );
    }
    let lesson = curriculum.lesson("M12-L017".parse().unwrap()).unwrap();
    assert_eq!(lesson.title, "Decommissioning Models Safely");
    assert_eq!(
        lesson.complexity,
        Some(Complexity::single(Level::Intermediate))
    );
    assert_eq!(lesson.line, 444);
    // Numeric comparison: the zero-padded module code finds the same lesson.
    assert_eq!(
        curriculum.lesson("M00-L001".parse().unwrap()).unwrap().line,
        14
    );
}

#[test]
fn tags_include_ranges() {
    let curriculum = parse_file(&fixture("datagov/Content Structure.md")).unwrap();
    let count = |tag: &str| {
        curriculum
            .lessons()
            .filter(|lesson| lesson.complexity.map(|c| c.to_string()).as_deref() == Some(tag))
            .count()
    };
    for tag in ["F", "I", "A", "E", "F-I", "I-A", "A-E"] {
        assert!(count(tag) > 0, "no lesson tagged {tag}");
    }
}

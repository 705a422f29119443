//! Which lessons a run asks for, and what state each lesson of the outline is in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use curriculum_parser::{Curriculum, Lesson, LessonCode};
use lesson_writer::{FileProvenance, Manifest};
use serde::Serialize;

use crate::Error;
use crate::round::RequestHasher;

/// The user's choice of lessons.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Exactly these lessons (empty: all).
    pub only: Vec<LessonCode>,
    /// Only lessons of these module numbers (empty: all).
    pub modules: Vec<u32>,
    /// At most this many lessons to generate, in outline order.
    pub limit: Option<usize>,
    /// Regenerate lessons that have a file, overwriting them (edited ones too).
    pub force: bool,
    /// Also regenerate the stale lessons in scope (not those edited by hand).
    pub stale: bool,
}

/// Why a lesson's request differs from the one that produced its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleReason {
    /// The lesson's title changed in the outline.
    TitleChanged,
    /// The model changed.
    ModelChanged,
    /// The template, the settings or another part of the lesson's outline entry changed.
    RequestChanged,
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StaleReason::TitleChanged => "title changed",
            StaleReason::ModelChanged => "model changed",
            StaleReason::RequestChanged => "template, settings or outline entry changed",
        })
    }
}

/// Where a lesson of the outline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LessonState {
    /// No file (or an empty one).
    NotGenerated,
    /// A file written from the request the lesson would get now, or one of unknown
    /// provenance (written before the manifest existed).
    Generated {
        /// Whether the manifest knows the file.
        known: bool,
    },
    /// A file from an earlier request (see [`StaleReason`]).
    Stale {
        /// What changed.
        reason: StaleReason,
    },
    /// A file changed after it was written; only `--force` replaces it.
    EditedByHand,
}

/// One lesson with its state and file.
#[derive(Debug, Clone, Serialize)]
pub struct LessonStatus {
    /// The lesson.
    pub code: LessonCode,
    /// Its state.
    pub state: LessonState,
    /// Its file, when it has one.
    pub file: Option<PathBuf>,
}

/// The state of every lesson of `curriculum`, in outline order, one at a time.
/// `check_edits` reads the files the manifest knows to tell edited ones apart (otherwise a
/// known file counts as unedited).
///
/// # Errors
///
/// [`Error::Writer`] when a lesson file cannot be read.
pub(crate) fn lesson_states<'a>(
    curriculum: &'a Curriculum,
    existing: &'a BTreeMap<LessonCode, PathBuf>,
    manifest: &'a Manifest,
    hasher: &'a RequestHasher<'_>,
    model: &'a str,
    check_edits: bool,
) -> impl Iterator<Item = Result<(&'a Lesson, LessonStatus), Error>> {
    curriculum.lessons().map(move |lesson| {
        let file = existing.get(&lesson.code).cloned();
        let state = match (&file, manifest.lessons.get(&lesson.code)) {
            (None, _) => LessonState::NotGenerated,
            (Some(_), None) => LessonState::Generated { known: false },
            (Some(path), Some(entry)) => {
                let edited = check_edits
                    && manifest.provenance_of(lesson.code, path)? == FileProvenance::EditedByHand;
                if edited {
                    LessonState::EditedByHand
                } else if entry
                    .request_sha256
                    .as_deref()
                    .is_some_and(|recorded| recorded != hasher.hash(lesson))
                {
                    LessonState::Stale {
                        reason: stale_reason(lesson, entry, model),
                    }
                } else {
                    LessonState::Generated { known: true }
                }
            }
        };
        Ok((
            lesson,
            LessonStatus {
                code: lesson.code,
                state,
                file,
            },
        ))
    })
}

/// What changed between a manifest entry's request and `lesson`'s now.
pub(crate) fn stale_reason(
    lesson: &Lesson,
    entry: &lesson_writer::ManifestEntry,
    model: &str,
) -> StaleReason {
    if entry
        .title
        .as_deref()
        .is_some_and(|title| title != lesson.title)
    {
        StaleReason::TitleChanged
    } else if entry
        .model
        .as_deref()
        .is_some_and(|answered| !answered.starts_with(model))
    {
        StaleReason::ModelChanged
    } else {
        StaleReason::RequestChanged
    }
}

/// Checks that `--only` and `--modules` name lessons and modules of the outline.
pub(crate) fn check_selection(
    curriculum: &Curriculum,
    selection: &Selection,
    outline: &Path,
) -> Result<(), Error> {
    if let Some(code) = selection
        .only
        .iter()
        .find(|code| curriculum.lesson(**code).is_none())
    {
        return Err(Error::UnknownLesson {
            code: *code,
            outline: outline.to_path_buf(),
        });
    }
    if let Some(number) = selection
        .modules
        .iter()
        .find(|number| curriculum.module(**number).is_none())
    {
        return Err(Error::UnknownModule {
            number: *number,
            outline: outline.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether `lesson` is in the selection's scope (`--only`, `--modules`).
pub(crate) fn in_scope(selection: &Selection, lesson: &Lesson) -> bool {
    (selection.only.is_empty() || selection.only.contains(&lesson.code))
        && (selection.modules.is_empty() || selection.modules.contains(&lesson.code.module()))
}

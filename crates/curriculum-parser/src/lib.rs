//! Turns a course outline written in Markdown into modules and lessons.

#![warn(missing_docs)]

mod model;

pub use model::{
    Complexity, Curriculum, Format, Lab, Lesson, LessonCode, Level, Module, ParseComplexityError,
    ParseLessonCodeError, Warning,
};

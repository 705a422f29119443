//! Collects modules and lessons as a format reader finds them, and enforces the rules both formats share:
//! unique module numbers, unique lesson codes within a module, lessons only inside a module.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::model::{Curriculum, Format, Lab, Lesson, LessonCode, Module, Warning};
use crate::text::Tag;

/// A lesson as a reader found it, before the rules are checked.
pub(crate) struct Found<'t> {
    /// The number written in the outline (`L007` gives 7), or `None` to number in document order.
    pub(crate) number: Option<u32>,
    pub(crate) title: &'t str,
    pub(crate) tag: Tag<'t>,
    pub(crate) section: Option<&'t str>,
    pub(crate) line: usize,
}

pub(crate) struct Builder<'o> {
    origin: &'o Path,
    title: Option<String>,
    modules: Vec<Module>,
    /// Whether lessons may be added to the last module.
    open: bool,
    /// Lesson number to line, for the last module.
    lesson_lines: HashMap<u32, usize>,
    n_lessons: usize,
    warnings: Vec<Warning>,
    /// The section of the last lesson, shared with the next lessons of the same section.
    section: Option<Arc<str>>,
}

impl<'o> Builder<'o> {
    pub(crate) fn new(origin: &'o Path) -> Self {
        Builder {
            origin,
            title: None,
            modules: Vec::new(),
            open: false,
            lesson_lines: HashMap::new(),
            n_lessons: 0,
            warnings: Vec::new(),
            section: None,
        }
    }

    /// Takes `title` as the curriculum's title if it is the first offered before any module.
    pub(crate) fn offer_title(&mut self, title: String) {
        if self.title.is_none() && self.modules.is_empty() && !title.is_empty() {
            self.title = Some(title);
        }
    }

    pub(crate) fn start_module(
        &mut self,
        number: u32,
        title: &str,
        line: usize,
    ) -> Result<(), Error> {
        if let Some(first) = self.modules.iter().find(|module| module.number == number) {
            return Err(Error::DuplicateModule {
                path: self.origin.to_path_buf(),
                line,
                first_line: first.line,
                number,
            });
        }
        if title.is_empty() {
            self.warnings.push(Warning {
                line,
                message: format!("module M{number} has no title"),
            });
        }
        if let Some(previous) = self.modules.last_mut() {
            shrink(previous);
        }
        self.modules.push(Module {
            number,
            title: title.to_owned(),
            line,
            lessons: Vec::new(),
            labs: Vec::new(),
        });
        self.open = true;
        self.lesson_lines.clear();
        Ok(())
    }

    /// Ends the current module: lessons after this point are outside any module.
    pub(crate) fn close_module(&mut self) {
        self.open = false;
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    pub(crate) fn push_lesson(&mut self, found: Found<'_>) -> Result<(), Error> {
        let module = match self.modules.last_mut() {
            Some(module) if self.open => module,
            _ => {
                return Err(Error::LessonOutsideModule {
                    path: self.origin.to_path_buf(),
                    line: found.line,
                    title: found.title.to_owned(),
                });
            }
        };
        let complexity = match found.tag {
            Tag::Absent => None,
            Tag::Known(complexity) => Some(complexity),
            Tag::Unknown(tag) => {
                return Err(Error::UnknownComplexity {
                    path: self.origin.to_path_buf(),
                    line: found.line,
                    tag: tag.to_owned(),
                });
            }
        };
        let number = match found.number {
            Some(number) => number,
            None => u32::try_from(module.lessons.len() + 1).unwrap_or(u32::MAX),
        };
        let code = LessonCode::new(module.number, number);
        if let Some(&first_line) = self.lesson_lines.get(&number) {
            return Err(Error::DuplicateLesson {
                path: self.origin.to_path_buf(),
                line: found.line,
                first_line,
                code,
            });
        }
        self.lesson_lines.insert(number, found.line);
        if found.title.is_empty() {
            self.warnings.push(Warning {
                line: found.line,
                message: format!("lesson {code} has no title"),
            });
        }
        let section = found.section.map(|name| match &self.section {
            Some(last) if **last == *name => Arc::clone(last),
            _ => Arc::<str>::from(name),
        });
        self.section.clone_from(&section);
        module.lessons.push(Lesson {
            code,
            title: found.title.to_owned(),
            complexity,
            section,
            line: found.line,
        });
        self.n_lessons += 1;
        Ok(())
    }

    /// Records a lab in the current module; a lab outside any module is dropped.
    pub(crate) fn push_lab(&mut self, title: &str, section: Option<&str>, line: usize) {
        if let Some(module) = self.modules.last_mut().filter(|_| self.open) {
            module.labs.push(Lab {
                title: title.to_owned(),
                section: section.map(str::to_owned),
                line,
            });
        }
    }

    pub(crate) fn n_lessons(&self) -> usize {
        self.n_lessons
    }

    pub(crate) fn first_module_line(&self) -> Option<usize> {
        self.modules.first().map(|module| module.line)
    }

    pub(crate) fn finish(mut self, format: Format) -> Curriculum {
        if let Some(last) = self.modules.last_mut() {
            shrink(last);
        }
        self.modules.shrink_to_fit();
        for module in self
            .modules
            .iter()
            .filter(|module| module.lessons.is_empty())
        {
            self.warnings.push(Warning {
                line: module.line,
                message: format!("module {} has no lessons", module.code()),
            });
        }
        self.warnings.sort_by_key(|warning| warning.line);
        Curriculum {
            title: self.title,
            format,
            modules: self.modules,
            warnings: self.warnings,
        }
    }
}

/// Gives back the room a module's lists grew beyond their lessons and labs:
/// a list of 40 lessons has room for 64, and a course may have 100,000 lessons.
fn shrink(module: &mut Module) {
    module.lessons.shrink_to_fit();
    module.labs.shrink_to_fit();
}

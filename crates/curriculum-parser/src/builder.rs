//! Collects modules and lessons as a format reader finds them, and enforces the rules both formats share:
//! unique module numbers, unique lesson codes within a module, lessons only inside a module,
//! titled lessons; and warns about lines that look like headings but are not read as one,
//! and about gaps and going back in a module's lesson numbers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::model::{Curriculum, Format, Lab, Lesson, LessonCode, Module, Warning};
use crate::near_miss::NearMiss;
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
    /// Since the last module heading, the last line that looks like a module heading but is not
    /// read as one, with its warning's message: the likely cause of a rule the lessons after it break.
    misread_module: Option<(usize, String)>,
    /// The first line that looks like a module or lesson heading but is not read as one.
    first_near_miss: Option<Warning>,
    /// The highest lesson number of the modules before the last one that had lessons,
    /// for outlines that number lessons on across modules.
    highest_before: Option<u32>,
    /// The numbers (and lines) of the last module's lines that look like lesson headings
    /// but are not read as one, so that their absence is not also reported as a gap.
    missed_lessons: Vec<(u32, usize)>,
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
            misread_module: None,
            first_near_miss: None,
            highest_before: None,
            missed_lessons: Vec::new(),
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
        self.end_module();
        self.modules.push(Module {
            number,
            title: title.to_owned(),
            line,
            lessons: Vec::new(),
            labs: Vec::new(),
        });
        self.open = true;
        self.misread_module = None;
        Ok(())
    }

    /// Records a line that looks like a module or lesson heading but is not read as one;
    /// returns whether it did (not for a lesson-like line whose number a lesson of the module has).
    ///
    /// # Errors
    ///
    /// [`Error::NumberTooLarge`] for a number with too many digits.
    pub(crate) fn near_miss(&mut self, line: usize, near_miss: NearMiss) -> Result<bool, Error> {
        let message = match near_miss {
            NearMiss::TooLarge { code } => {
                return Err(Error::NumberTooLarge {
                    path: self.origin.to_path_buf(),
                    line,
                    code,
                });
            }
            NearMiss::Module { message } => {
                self.misread_module = Some((line, message.clone()));
                message
            }
            NearMiss::Lesson { number, message } => {
                if let Some(number) = number.filter(|_| self.open) {
                    // A lesson of that number exists: this is a heading named so
                    // (`## L2 Support`), not a lesson that went missing.
                    if self.lesson_lines.contains_key(&number) {
                        return Ok(false);
                    }
                    self.missed_lessons.push((number, line));
                }
                message
            }
        };
        let warning = Warning { line, message };
        if self.first_near_miss.is_none() {
            self.first_near_miss = Some(warning.clone());
        }
        self.warnings.push(warning);
        Ok(true)
    }

    /// The first line that looks like a module or lesson heading but is not read as one.
    pub(crate) fn first_near_miss(&self) -> Option<&Warning> {
        self.first_near_miss.as_ref()
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
                let err = Error::LessonOutsideModule {
                    path: self.origin.to_path_buf(),
                    line: found.line,
                    title: found.title.to_owned(),
                };
                return Err(self.blame_misread_module(err, 0));
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
            let err = Error::DuplicateLesson {
                path: self.origin.to_path_buf(),
                line: found.line,
                first_line,
                code,
            };
            return Err(self.blame_misread_module(err, first_line));
        }
        if found.title.is_empty() {
            return Err(Error::EmptyTitle {
                path: self.origin.to_path_buf(),
                line: found.line,
                code,
            });
        }
        self.lesson_lines.insert(number, found.line);
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
        self.end_module();
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

impl Builder<'_> {
    /// `err`, broken by a lesson after a line that looks like a module heading but is not read as
    /// one (and, for a duplicate, whose first is before that line), as caused by that line.
    fn blame_misread_module(&self, err: Error, first_line: usize) -> Error {
        match &self.misread_module {
            Some((line, problem)) if *line > first_line => Error::MisreadModuleHeading {
                path: self.origin.to_path_buf(),
                line: *line,
                problem: problem.clone(),
                previous: self
                    .modules
                    .last()
                    .filter(|_| self.open)
                    .map(|module| module.number),
                source: Box::new(err),
            },
            _ => err,
        }
    }

    /// Ends the last module: warns about gaps and going back in its lesson numbers,
    /// and gives back the room its lists grew beyond their lessons.
    fn end_module(&mut self) {
        let Some(module) = self.modules.last_mut() else {
            return;
        };
        shrink(module);
        let mut numbers: Vec<(u32, usize)> = self
            .lesson_lines
            .iter()
            .map(|(&number, &line)| (number, line))
            .chain(self.missed_lessons.drain(..))
            .collect();
        self.lesson_lines.clear();
        numbers.sort_unstable();
        numbers.dedup_by_key(|(number, _)| *number);
        let code = |lesson: u32| LessonCode::new(module.number, lesson);
        // Numbers restart at L001 in every module, or go on from the module before's.
        let mut expected = match (numbers.first(), self.highest_before) {
            (Some(&(first, _)), Some(highest)) if first == highest.saturating_add(1) => first,
            _ => 1,
        };
        if let Some(&(highest, _)) = numbers.last() {
            self.highest_before = Some(highest);
        }
        let mut before = None;
        for (number, line) in numbers {
            if number > expected {
                let missing = if number - expected == 1 {
                    format!("{} is missing", code(expected))
                } else {
                    format!("{} to {} are missing", code(expected), code(number - 1))
                };
                let jump = match before {
                    Some(before) => format!("numbers jump from L{before:03} to L{number:03}"),
                    None => format!("module {}'s lessons start at L{number:03}", module.code()),
                };
                self.warnings.push(Warning {
                    line,
                    message: format!(
                        "{missing}: {jump}; renumber the lessons or add the missing ones"
                    ),
                });
            }
            expected = expected.max(number.saturating_add(1));
            before = Some(number);
        }
        let mut highest: Option<&Lesson> = None;
        for lesson in &module.lessons {
            match highest {
                Some(high) if lesson.code < high.code => self.warnings.push(Warning {
                    line: lesson.line,
                    message: format!(
                        "lesson {} comes after {} (line {}): lesson numbers go back; renumber or move it",
                        lesson.code, high.code, high.line
                    ),
                }),
                _ => highest = Some(lesson),
            }
        }
    }
}

/// Gives back the room a module's lists grew beyond their lessons and labs:
/// a list of 40 lessons has room for 64, and a course may have 100,000 lessons.
fn shrink(module: &mut Module) {
    module.lessons.shrink_to_fit();
    module.labs.shrink_to_fit();
}

//! Integration tests of lesson-writer: fixtures in, lesson files and a summary out.

mod anthropic;
mod cleanup;
mod outcomes;
mod props;
mod quality;
mod safety;
mod support;
mod writing;

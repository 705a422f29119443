//! Integration tests of lesson-writer.

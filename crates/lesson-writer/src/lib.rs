//! Turns Batch API output and error files into cleaned lesson files, written atomically,
//! with a summary of what was written, skipped and failed.

#![warn(missing_docs)]

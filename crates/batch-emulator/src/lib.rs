//! A local OpenAI Files + Batches API server, for offline runs, end-to-end tests and local models.

#![warn(missing_docs)]

//! Which request produced which lesson: file names, provenance, counts, retries.

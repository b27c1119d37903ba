//! Output formats (grouped, out-dir, progress, summary) — being written.

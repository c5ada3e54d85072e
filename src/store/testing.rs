//! Test helpers for other modules' tests: a store without naming a backend.

use std::path::Path;
use std::sync::Arc;

use super::Backend;

/// A fresh (or reopened) embedded store at `path`; panics on failure.
pub fn open(path: &Path) -> Arc<dyn Backend> {
    super::open_embedded(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

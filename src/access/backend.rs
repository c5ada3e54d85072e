//! Persistence seam: the engine stores one JSON document per organization through this
//! trait, implemented by the daemon's store (SQLite or Postgres) and by [`MemoryBackend`]
//! for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::AccessError;

/// Where organization documents live.
pub trait AccessBackend: Send + Sync {
    /// Every stored (organization id, JSON document), read once at start; a failure
    /// is [`AccessError::Backend`].
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError>;
    /// Replaces an organization's document durably and atomically; on `Err`
    /// ([`AccessError::Backend`]) the old document must still be the stored one.
    fn save(&self, org: &str, json: &str) -> Result<(), AccessError>;
}

/// In-memory backend with switchable failures, for tests and for running without a store.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    docs: Mutex<BTreeMap<String, String>>,
    fail_saves: AtomicBool,
    fail_loads: AtomicBool,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend pre-filled with documents (e.g. to test loading corrupt data).
    pub fn with_documents(docs: impl IntoIterator<Item = (String, String)>) -> Self {
        let backend = Self::default();
        backend.lock().extend(docs);
        backend
    }

    /// Makes every following `save` fail (or succeed again).
    pub fn set_fail_saves(&self, fail: bool) {
        self.fail_saves.store(fail, Ordering::SeqCst);
    }

    /// Makes every following `load_all` fail (or succeed again).
    pub fn set_fail_loads(&self, fail: bool) {
        self.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// The stored document of an organization.
    pub fn document(&self, org: &str) -> Option<String> {
        self.lock().get(org).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A panic while holding this lock cannot leave the map half-written.
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AccessBackend for MemoryBackend {
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError> {
        if self.fail_loads.load(Ordering::SeqCst) {
            return Err(AccessError::Backend("injected load failure".into()));
        }
        Ok(self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn save(&self, org: &str, json: &str) -> Result<(), AccessError> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(AccessError::Backend("injected save failure".into()));
        }
        self.lock().insert(org.to_owned(), json.to_owned());
        Ok(())
    }
}

//! Persistence seam: the engine stores one JSON document per organization through this
//! trait, implemented by the daemon's store (SQLite or Postgres) and by [`MemoryBackend`]
//! for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::AccessError;
pub use crate::directory::Fenced;

/// Organization documents written after a version ([`AccessBackend::documents_since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentChanges {
    /// The version the reader is at once it has these documents.
    pub version: u64,
    /// (organization id, JSON document) written after the asked version; every
    /// document when it was 0. Documents are never deleted.
    pub documents: Vec<(String, String)>,
}

/// Where organization documents live. A backend several daemons share keeps a
/// version every save moves, as `directory`'s backend does; one only one
/// process opens (SQLite) may report 0 forever.
pub trait AccessBackend: Send + Sync {
    /// Every stored (organization id, JSON document); a failure is
    /// [`AccessError::Backend`].
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError>;
    /// Replaces an organization's document durably and atomically, whatever the
    /// version; on `Err` ([`AccessError::Backend`]) the old document must still be
    /// the stored one.
    fn save(&self, org: &str, json: &str) -> Result<(), AccessError>;
    /// The version of the stored documents, cheaply (polled a few times a second).
    fn version(&self) -> Result<u64, AccessError>;
    /// The documents saved after version `since` (all of them for 0), read in one
    /// snapshot with the version they bring the reader to.
    fn documents_since(&self, since: u64) -> Result<DocumentChanges, AccessError>;
    /// [`AccessBackend::save`] only if the stored version is still `expected`,
    /// atomically with that check; [`Fenced::Moved`] otherwise.
    fn save_at(&self, expected: u64, org: &str, json: &str) -> Result<Fenced, AccessError>;
}

/// Documents with the version each was saved at, and the newest version.
#[derive(Debug, Default)]
struct Documents {
    version: u64,
    docs: BTreeMap<String, (u64, String)>,
}

/// In-memory backend with switchable failures, for tests and for running without a
/// store; versioned like a shared backend, so two engines over one `MemoryBackend`
/// behave as two daemons on one database.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    docs: Mutex<Documents>,
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
        {
            let mut d = backend.lock();
            d.version = 1;
            d.docs.extend(docs.into_iter().map(|(k, v)| (k, (1, v))));
        }
        backend
    }

    /// Makes every following `save` fail (or succeed again).
    pub fn set_fail_saves(&self, fail: bool) {
        self.fail_saves.store(fail, Ordering::SeqCst);
    }

    /// Makes every following load fail (or succeed again).
    pub fn set_fail_loads(&self, fail: bool) {
        self.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// The stored document of an organization.
    pub fn document(&self, org: &str) -> Option<String> {
        self.lock().docs.get(org).map(|(_, d)| d.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Documents> {
        // A panic while holding this lock cannot leave the map half-written.
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_loads(&self) -> Result<(), AccessError> {
        match self.fail_loads.load(Ordering::SeqCst) {
            true => Err(AccessError::Backend("injected load failure".into())),
            false => Ok(()),
        }
    }

    /// Saves at the next version (the map is locked by the caller).
    fn write(&self, d: &mut Documents, org: &str, json: &str) -> Result<u64, AccessError> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(AccessError::Backend("injected save failure".into()));
        }
        d.version += 1;
        d.docs.insert(org.to_owned(), (d.version, json.to_owned()));
        Ok(d.version)
    }
}

impl AccessBackend for MemoryBackend {
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError> {
        Ok(self.documents_since(0)?.documents)
    }

    fn save(&self, org: &str, json: &str) -> Result<(), AccessError> {
        let mut d = self.lock();
        self.write(&mut d, org, json).map(|_| ())
    }

    fn version(&self) -> Result<u64, AccessError> {
        self.check_loads()?;
        Ok(self.lock().version)
    }

    fn documents_since(&self, since: u64) -> Result<DocumentChanges, AccessError> {
        self.check_loads()?;
        let d = self.lock();
        Ok(DocumentChanges {
            version: d.version,
            documents: d
                .docs
                .iter()
                .filter(|(_, (v, _))| *v > since)
                .map(|(k, (_, json))| (k.clone(), json.clone()))
                .collect(),
        })
    }

    fn save_at(&self, expected: u64, org: &str, json: &str) -> Result<Fenced, AccessError> {
        let mut d = self.lock();
        if d.version != expected {
            return Ok(Fenced::Moved);
        }
        self.write(&mut d, org, json).map(Fenced::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_are_fenced_and_readers_get_only_newer_documents() {
        let b = MemoryBackend::new();
        assert_eq!(b.save_at(0, "m-a", "1"), Ok(Fenced::Applied(1)));
        assert_eq!(b.save_at(0, "m-b", "1"), Ok(Fenced::Moved));
        assert_eq!(b.document("m-b"), None, "a stale save writes nothing");
        assert_eq!(b.save_at(1, "m-b", "2"), Ok(Fenced::Applied(2)));
        let newer = b.documents_since(1).unwrap();
        assert_eq!(
            (newer.version, newer.documents),
            (2, vec![("m-b".to_string(), "2".to_string())])
        );
        assert_eq!(b.load_all().map(|d| d.len()), Ok(2));
        b.set_fail_saves(true);
        assert!(b.save_at(2, "m-a", "3").is_err());
        assert_eq!(b.version(), Ok(2));
        b.set_fail_loads(true);
        assert!(b.version().is_err() && b.documents_since(0).is_err());
    }
}

//! An in-memory [`DirectoryBackend`] for tests (this module's and other
//! modules'), with an injectable failure so a test can prove that a refused
//! write leaves the directory unchanged.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::backend::{DirectoryBackend, Record, RecordKind, RecordOp};
use super::error::DirectoryError;

/// Records in a map keyed by (kind, id). `apply` is atomic by construction:
/// it either fails before touching the map or applies every op under one lock.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    records: Mutex<BTreeMap<(RecordKind, String), Record>>,
    fail: AtomicBool,
    applies: AtomicU64,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend that starts with these records (e.g. to test loading corrupt data).
    pub fn with_records(records: Vec<Record>) -> Self {
        let b = Self::default();
        {
            let mut map = b.lock();
            for r in records {
                map.insert((r.kind, r.id.clone()), r);
            }
        }
        b
    }

    /// While `true`, every `apply` fails with an error and changes nothing.
    pub fn set_fail(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    /// A copy of the stored records, sorted by (kind, id).
    pub fn records(&self) -> Vec<Record> {
        self.lock().values().cloned().collect()
    }

    /// How many `apply` calls succeeded: lets tests check that no-ops write nothing.
    pub fn apply_count(&self) -> u64 {
        self.applies.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(RecordKind, String), Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DirectoryBackend for MemoryBackend {
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError> {
        Ok(self.records())
    }

    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(DirectoryError::Backend("injected failure".to_string()));
        }
        let mut map = self.lock();
        for op in ops {
            match op {
                RecordOp::Put(r) => {
                    map.insert((r.kind, r.id.clone()), r);
                }
                RecordOp::Delete { kind, id } => {
                    map.remove(&(kind, id));
                }
            }
        }
        self.applies.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Record {
        Record {
            kind: RecordKind::User,
            id: id.into(),
            org_id: "m-x".into(),
            json: "{}".into(),
        }
    }

    #[test]
    fn put_delete_and_injected_failure() {
        let b = MemoryBackend::new();
        assert_eq!(
            b.apply(vec![RecordOp::Put(rec("a")), RecordOp::Put(rec("b"))]),
            Ok(())
        );
        assert_eq!(b.records().len(), 2);
        b.set_fail(true);
        assert!(
            b.apply(vec![RecordOp::Delete {
                kind: RecordKind::User,
                id: "a".into()
            }])
            .is_err()
        );
        assert_eq!(b.records().len(), 2, "failed apply changed nothing");
        b.set_fail(false);
        assert_eq!(
            b.apply(vec![RecordOp::Delete {
                kind: RecordKind::User,
                id: "a".into()
            }]),
            Ok(())
        );
        assert_eq!(b.load_all().map(|r| r.len()), Ok(1));
        assert_eq!(b.apply_count(), 2);
        assert_eq!(
            MemoryBackend::with_records(vec![rec("z")]).records(),
            vec![rec("z")]
        );
    }
}

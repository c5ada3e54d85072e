//! An in-memory [`DirectoryBackend`] for tests (this module's and other
//! modules'), with an injectable failure so a test can prove that a refused
//! write leaves the directory unchanged.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::backend::{DirectoryBackend, Fenced, Record, RecordChanges, RecordKind, RecordOp};
use super::error::DirectoryError;

/// The stored records with the version each was last written at; a deleted
/// record stays as `None` (a tombstone), so a reader catching up sees the delete.
#[derive(Debug, Default)]
struct Versioned {
    version: u64,
    records: BTreeMap<(RecordKind, String), (u64, Option<Record>)>,
}

/// Records in a map keyed by (kind, id), versioned as a shared backend is, so two
/// directories over one `MemoryBackend` behave as two daemons on one database.
/// `apply` is atomic by construction: it either fails before touching the map
/// or applies every op under one lock.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    records: Mutex<Versioned>,
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
            map.version = 1;
            for r in records {
                map.records.insert((r.kind, r.id.clone()), (1, Some(r)));
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
        live(&self.lock())
    }

    /// How many `apply` calls succeeded: lets tests check that no-ops write nothing.
    pub fn apply_count(&self) -> u64 {
        self.applies.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Versioned> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies `ops` at the next version (the map is locked by the caller).
    fn write(&self, map: &mut Versioned, ops: Vec<RecordOp>) -> Result<u64, DirectoryError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(DirectoryError::Backend("injected failure".to_string()));
        }
        let v = map.version + 1;
        for op in ops {
            match op {
                RecordOp::Put(r) => {
                    map.records.insert((r.kind, r.id.clone()), (v, Some(r)));
                }
                RecordOp::Delete { kind, id } => {
                    if let Some(slot) = map.records.get_mut(&(kind, id)) {
                        *slot = (v, None);
                    }
                }
            }
        }
        map.version = v;
        self.applies.fetch_add(1, Ordering::SeqCst);
        Ok(v)
    }
}

fn live(map: &Versioned) -> Vec<Record> {
    map.records
        .values()
        .filter_map(|(_, r)| r.clone())
        .collect()
}

impl DirectoryBackend for MemoryBackend {
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError> {
        Ok(self.records())
    }

    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError> {
        let mut map = self.lock();
        self.write(&mut map, ops).map(|_| ())
    }

    fn version(&self) -> Result<u64, DirectoryError> {
        Ok(self.lock().version)
    }

    fn records_since(&self, since: u64) -> Result<RecordChanges, DirectoryError> {
        let map = self.lock();
        if since == 0 {
            return Ok(RecordChanges {
                version: map.version,
                records: live(&map),
                deleted: Vec::new(),
                full: true,
            });
        }
        let mut changes = RecordChanges {
            version: map.version,
            ..RecordChanges::default()
        };
        for ((kind, id), (v, r)) in &map.records {
            match r {
                _ if *v <= since => {}
                Some(r) => changes.records.push(r.clone()),
                None => changes.deleted.push((*kind, id.clone())),
            }
        }
        Ok(changes)
    }

    fn apply_at(&self, expected: u64, ops: Vec<RecordOp>) -> Result<Fenced, DirectoryError> {
        let mut map = self.lock();
        if map.version != expected {
            return Ok(Fenced::Moved);
        }
        self.write(&mut map, ops).map(Fenced::Applied)
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

    #[test]
    fn versions_fence_writes_and_name_what_changed() {
        let b = MemoryBackend::new();
        assert_eq!(b.version(), Ok(0));
        assert_eq!(
            b.apply_at(0, vec![RecordOp::Put(rec("a")), RecordOp::Put(rec("b"))]),
            Ok(Fenced::Applied(1))
        );
        assert_eq!(
            b.apply_at(0, vec![RecordOp::Put(rec("c"))]),
            Ok(Fenced::Moved),
            "a stale writer writes nothing"
        );
        assert_eq!(b.records().len(), 2);
        let gone = RecordOp::Delete {
            kind: RecordKind::User,
            id: "a".into(),
        };
        assert_eq!(b.apply_at(1, vec![gone]), Ok(Fenced::Applied(2)));
        let delta = b.records_since(1).unwrap();
        assert_eq!(
            (delta.version, delta.records, delta.deleted, delta.full),
            (2, vec![], vec![(RecordKind::User, "a".to_string())], false)
        );
        let all = b.records_since(0).unwrap();
        assert_eq!(
            (all.version, all.records, all.full),
            (2, vec![rec("b")], true)
        );
        assert!(b.records_since(2).unwrap().records.is_empty());
        b.set_fail(true);
        assert!(b.apply_at(2, vec![RecordOp::Put(rec("d"))]).is_err());
        assert_eq!(b.version(), Ok(2), "a failed write moves nothing");
    }
}

//! Directory persistence: each entity one JSON row in table `directory`, written
//! through the group-committing writer like every other write. One process owns
//! the file, so nothing else moves the data: the version stays 0 and every
//! write passes its fence.

use rusqlite::{Connection, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::directory::{
    DirectoryBackend, DirectoryError, Fenced, Record, RecordChanges, RecordKind, RecordOp,
};

/// Every directory record (also read by `export`).
pub(super) fn load_records(c: &Connection) -> crate::store::Result<Vec<Record>> {
    let mut st = c.prepare("SELECT kind, id, org_id, json FROM directory ORDER BY kind, id")?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, id, org_id, json) = row?;
        let kind = RecordKind::parse(&kind).ok_or_else(|| {
            crate::store::StoreError::Io(format!("directory row {id}: unknown kind {kind:?}"))
        })?;
        out.push(Record {
            kind,
            id,
            org_id,
            json,
        });
    }
    Ok(out)
}

impl DirectoryBackend for SqliteStore {
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError> {
        self.read_blocking(load_records)
            .map_err(|e| DirectoryError::Backend(e.to_string()))
    }

    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError> {
        self.write_blocking(move |c| {
            for op in &ops {
                match op {
                    RecordOp::Put(r) => {
                        c.execute_cached(
                            "INSERT INTO directory (kind, id, org_id, json) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (kind, id) DO UPDATE SET org_id = excluded.org_id, json = excluded.json",
                            params![r.kind.as_str(), r.id, r.org_id, r.json],
                        )?;
                    }
                    RecordOp::Delete { kind, id } => {
                        c.execute_cached("DELETE FROM directory WHERE kind = ?1 AND id = ?2", params![kind.as_str(), id])?;
                    }
                }
            }
            Ok(((), vec![]))
        })
        .map_err(|e| DirectoryError::Backend(e.to_string()))
    }

    fn version(&self) -> Result<u64, DirectoryError> {
        Ok(0)
    }

    fn records_since(&self, _since: u64) -> Result<RecordChanges, DirectoryError> {
        Ok(RecordChanges {
            version: 0,
            records: self.load_all()?,
            deleted: Vec::new(),
            full: true,
        })
    }

    fn apply_at(&self, _expected: u64, ops: Vec<RecordOp>) -> Result<Fenced, DirectoryError> {
        self.apply(ops).map(|()| Fenced::Applied(0))
    }
}

//! Access-control persistence: one JSON document per organization (rules, roles),
//! written through the group-committing writer. One process owns the file: the
//! version stays 0 and every save passes its fence.

use rusqlite::params;

use super::cached::CachedSql;

use super::SqliteStore;
use crate::access::{AccessBackend, AccessError, DocumentChanges, Fenced};

impl AccessBackend for SqliteStore {
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError> {
        self.read_blocking(|c| {
            let mut st = c.prepare("SELECT org_id, json FROM access ORDER BY org_id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .map_err(|e| AccessError::Backend(e.to_string()))
    }

    fn save(&self, org: &str, json: &str) -> Result<(), AccessError> {
        let (org, json) = (org.to_string(), json.to_string());
        self.write_blocking(move |c| {
            c.execute_cached(
                "INSERT INTO access (org_id, json) VALUES (?1, ?2) ON CONFLICT (org_id) DO UPDATE SET json = excluded.json",
                params![org, json],
            )?;
            Ok(((), vec![]))
        })
        .map_err(|e| AccessError::Backend(e.to_string()))
    }

    fn version(&self) -> Result<u64, AccessError> {
        Ok(0)
    }

    fn documents_since(&self, _since: u64) -> Result<DocumentChanges, AccessError> {
        Ok(DocumentChanges {
            version: 0,
            documents: self.load_all()?,
        })
    }

    fn save_at(&self, _expected: u64, org: &str, json: &str) -> Result<Fenced, AccessError> {
        self.save(org, json).map(|()| Fenced::Applied(0))
    }
}

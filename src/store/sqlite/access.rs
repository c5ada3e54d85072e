//! Access-control persistence: one JSON document per organization (rules, roles),
//! written through the group-committing writer.

use rusqlite::params;

use super::cached::CachedSql;

use super::SqliteStore;
use crate::access::{AccessBackend, AccessError};

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
}

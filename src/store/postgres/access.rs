//! The access rules' persistence in PostgreSQL (`AccessBackend` for
//! [`PgStore`]): one JSON document per organization in `access_documents`,
//! stamped with the access version of the save that wrote it; saves are fenced by
//! the `access` version row ([`versions`]). Documents are never deleted, so a
//! catch-up is the documents above the reader's version.

use std::sync::atomic::Ordering;

use super::blocking::block_on;
use super::ops::Sql;
use super::versions::{self, Kind};
use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::access::{AccessBackend, AccessError, DocumentChanges, Fenced};
use crate::store::StoreError;

/// A store error as the access engine's backend error.
fn backend(e: StoreError) -> AccessError {
    AccessError::Backend(e.to_string())
}

/// The documents saved after `since` and the version they bring the reader to,
/// in one statement, hence one snapshot.
async fn documents_since(c: &dyn Sql, since: u64) -> Op<DocumentChanges> {
    let st = c
        .prepared(
            "SELECT v.version, d.org_id, d.json
             FROM store_versions v
             LEFT JOIN access_documents d ON d.version > $1
             WHERE v.kind = 'access'",
        )
        .await?;
    let mut changes = DocumentChanges::default();
    for row in c.rows(&st, &[&versions::to_db(since)]).await? {
        changes.version = versions::from_db(row.get(0));
        if let (Some(org), Some(json)) = (row.get(1), row.get(2)) {
            changes.documents.push((org, json));
        }
    }
    Ok(changes)
}

/// Saves `org`'s document at the next access version if the stored one is
/// `expected` (`None`: whatever it is).
async fn save(c: &dyn Sql, expected: Option<u64>, org: &str, json: &str) -> Op<(Fenced, Touched)> {
    let Some(version) = versions::lock_next(c, Kind::Access, expected).await? else {
        return Ok((Fenced::Moved, Vec::new()));
    };
    let st = c
        .prepared(
            "INSERT INTO access_documents (org_id, json, version) VALUES ($1, $2, $3)
             ON CONFLICT (org_id) DO UPDATE SET json = excluded.json, version = excluded.version",
        )
        .await?;
    c.affected(&st, &[&org, &json, &versions::to_db(version)])
        .await?;
    versions::set(c, Kind::Access, version).await?;
    Ok((Fenced::Applied(version), Vec::new()))
}

impl PgStore {
    /// One fenced (or, with `None`, unfenced) save, retried whole on a
    /// serialization failure or deadlock.
    fn save_document(
        &self,
        expected: Option<u64>,
        org: &str,
        json: &str,
    ) -> Result<Fenced, AccessError> {
        let written = block_on(async { write_tx!(self, |tx| save(&tx, expected, org, json)) })
            .and_then(|r| r)
            .map_err(backend)?;
        if matches!(written, Fenced::Applied(_)) {
            // Other daemons refresh now rather than at their next poll.
            self.publish_state(crate::store::StateChange::Access);
        }
        Ok(written)
    }
}

impl AccessBackend for PgStore {
    fn load_all(&self) -> Result<Vec<(String, String)>, AccessError> {
        self.documents_since(0).map(|c| c.documents)
    }

    fn save(&self, org: &str, json: &str) -> Result<(), AccessError> {
        self.save_document(None, org, json).map(|_| ())
    }

    fn version(&self) -> Result<u64, AccessError> {
        block_on(async { read_tx!(self, |c| versions::current(&c, Kind::Access)) })
            .and_then(|r| r)
            .map_err(backend)
    }

    fn documents_since(&self, since: u64) -> Result<DocumentChanges, AccessError> {
        block_on(async { read_tx!(self, |c| documents_since(&c, since)) })
            .and_then(|r| r)
            .map_err(backend)
    }

    fn save_at(&self, expected: u64, org: &str, json: &str) -> Result<Fenced, AccessError> {
        self.save_document(Some(expected), org, json)
    }
}

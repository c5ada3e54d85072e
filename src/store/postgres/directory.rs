//! The directory's persistence in PostgreSQL (`DirectoryBackend` for
//! [`PgStore`]): one row per record in `directory_records`, stamped with the
//! directory version of the write that last touched it; deletes leave a tombstone
//! (`json` NULL) so that other daemons catching up see them. Writes are fenced by
//! the `directory` version row ([`versions`]); a catch-up is one statement that
//! reads the version and every row above the reader's.
//!
//! Cost: a catch-up moves only the changed rows, so a daemon holding 10,000
//! users pays for the few records a write touched, not for the directory.
//! Tombstones are one short row per deleted token, stamped with the time of
//! the delete (`deleted_ms`); housekeeping prunes them after a day and moves the
//! `directory_pruned` version row to the highest version it deleted. A reader
//! behind that version (a daemon cut off for longer) gets a full load, since a
//! delta could miss a delete.

use std::sync::atomic::Ordering;

use super::blocking::block_on;
use super::ops::Sql;
use super::versions::{self, Kind};
use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::directory::{
    DirectoryBackend, DirectoryError, Fenced, Record, RecordChanges, RecordKind, RecordOp,
    last_op_per_record,
};
use crate::store::StoreError;

/// A store error as the directory's backend error.
fn backend(e: StoreError) -> DirectoryError {
    DirectoryError::Backend(e.to_string())
}

/// The records written after `since` (all live ones for 0, or when tombstones
/// after `since` were pruned) and the version they bring the reader to, in one
/// statement, hence one snapshot.
async fn records_since(c: &dyn Sql, since: u64) -> Op<RecordChanges> {
    let st = c
        .prepared(
            "SELECT v.version, p.version > $1, r.kind, r.id, r.org_id, r.json
             FROM store_versions v
             JOIN store_versions p ON p.kind = 'directory_pruned'
             LEFT JOIN directory_records r
                 ON r.version > (CASE WHEN p.version <= $1 THEN $1 ELSE 0 END)
             WHERE v.kind = 'directory'",
        )
        .await?;
    let rows = c.rows(&st, &[&versions::to_db(since)]).await?;
    // Whether the deltas after `since` are whole: no tombstone above it pruned.
    let whole = since > 0 && rows.first().is_some_and(|r| !r.get::<_, bool>(1));
    let full = !whole;
    let mut changes = RecordChanges {
        full,
        ..RecordChanges::default()
    };
    for row in rows {
        changes.version = versions::from_db(row.get(0));
        let Some(kind) = row.get::<_, Option<String>>(2) else {
            continue;
        };
        let id: String = row.get(3);
        let kind = RecordKind::parse(&kind).ok_or_else(|| {
            OpError::Store(StoreError::Io(format!(
                "directory row {id}: unknown kind {kind:?}"
            )))
        })?;
        match row.get::<_, Option<String>>(5) {
            Some(json) => changes.records.push(Record {
                kind,
                id,
                org_id: row.get(4),
                json,
            }),
            None if full => {}
            None => changes.deleted.push((kind, id)),
        }
    }
    Ok(changes)
}

/// Writes `ops` at the next directory version if the stored one is `expected`
/// (`None`: whatever it is). Puts and deletes are one statement each.
async fn apply(c: &dyn Sql, expected: Option<u64>, ops: &[RecordOp]) -> Op<(Fenced, Touched)> {
    let Some(version) = versions::lock_next(c, Kind::Directory, expected).await? else {
        return Ok((Fenced::Moved, Vec::new()));
    };
    let v = versions::to_db(version);
    let (mut kinds, mut ids, mut orgs, mut jsons) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut gone_kinds, mut gone_ids) = (Vec::new(), Vec::new());
    for op in ops {
        match op {
            RecordOp::Put(r) => {
                kinds.push(r.kind.as_str());
                ids.push(r.id.as_str());
                orgs.push(r.org_id.as_str());
                jsons.push(r.json.as_str());
            }
            RecordOp::Delete { kind, id } => {
                gone_kinds.push(kind.as_str());
                gone_ids.push(id.as_str());
            }
        }
    }
    if !kinds.is_empty() {
        let st = c
            .prepared(
                "INSERT INTO directory_records (kind, id, org_id, json, version)
                 SELECT k, i, o, j, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                     AS t(k, i, o, j)
                 ON CONFLICT (kind, id) DO UPDATE
                 SET org_id = excluded.org_id, json = excluded.json, version = excluded.version",
            )
            .await?;
        c.affected(&st, &[&kinds, &ids, &orgs, &jsons, &v]).await?;
    }
    if !gone_kinds.is_empty() {
        let st = c
            .prepared(
                "UPDATE directory_records r SET json = NULL, version = $3, deleted_ms = mg_now_ms()
                 FROM unnest($1::text[], $2::text[]) AS t(k, i)
                 WHERE r.kind = t.k AND r.id = t.i AND r.json IS NOT NULL",
            )
            .await?;
        c.affected(&st, &[&gone_kinds, &gone_ids, &v]).await?;
    }
    versions::set(c, Kind::Directory, version).await?;
    Ok((Fenced::Applied(version), Vec::new()))
}

impl PgStore {
    /// One fenced (or, with `None`, unfenced) directory write, retried whole on
    /// a serialization failure or deadlock.
    fn write_records(
        &self,
        expected: Option<u64>,
        ops: Vec<RecordOp>,
    ) -> Result<Fenced, DirectoryError> {
        let ops = last_op_per_record(ops);
        let written = block_on(async { write_tx!(self, |tx| apply(&tx, expected, &ops)) })
            .and_then(|r| r)
            .map_err(backend)?;
        if matches!(written, Fenced::Applied(_)) {
            // Other daemons refresh now rather than at their next poll.
            self.publish_state(crate::store::StateChange::Directory);
        }
        Ok(written)
    }
}

impl DirectoryBackend for PgStore {
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError> {
        self.records_since(0).map(|c| c.records)
    }

    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError> {
        self.write_records(None, ops).map(|_| ())
    }

    fn version(&self) -> Result<u64, DirectoryError> {
        block_on(async { read_tx!(self, |c| versions::current(&c, Kind::Directory)) })
            .and_then(|r| r)
            .map_err(backend)
    }

    fn records_since(&self, since: u64) -> Result<RecordChanges, DirectoryError> {
        block_on(async { read_tx!(self, |c| records_since(&c, since)) })
            .and_then(|r| r)
            .map_err(backend)
    }

    fn apply_at(&self, expected: u64, ops: Vec<RecordOp>) -> Result<Fenced, DirectoryError> {
        self.write_records(Some(expected), ops)
    }
}

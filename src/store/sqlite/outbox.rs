//! The event outbox in SQLite (tables `outbox`, `outbox_marks`, migration 8).
//! Rows of a delivery are inserted by [`record`] inside the delivery's own job, so
//! they share its transaction and its fsync.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::cached::CachedSql;
use crate::store::Result;
use crate::store::outbox::{MAX_READ, Outbox, OutboxEvent, OutboxRow};

/// Inserts `events` in order inside the current transaction; returns the sequence
/// number of the last (0 when there are none).
pub(super) fn record(c: &Connection, events: &[OutboxEvent]) -> Result<i64> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut st = c.prepare_cached("INSERT INTO outbox (kind, org, line) VALUES (?1, ?2, ?3)")?;
    for e in events {
        st.execute(params![e.kind, e.org, e.line])?;
    }
    Ok(c.last_insert_rowid())
}

/// Rows above `after`, at most `limit.min(MAX_READ)` (also read by `export`).
pub(super) fn after(c: &Connection, after: i64, limit: usize) -> Result<Vec<OutboxRow>> {
    let limit = limit.min(MAX_READ) as i64;
    let mut st = c.prepare_cached(
        "SELECT seq, kind, org, line FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            event: OutboxEvent {
                kind: r.get(1)?,
                org: r.get(2)?,
                line: r.get(3)?,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn mark(c: &Connection, marks: &[(String, i64)], delete_through: i64) -> Result<()> {
    c.execute_cached("DELETE FROM outbox_marks", [])?;
    let mut st =
        c.prepare_cached("INSERT OR REPLACE INTO outbox_marks (sink, seq) VALUES (?1, ?2)")?;
    for (sink, seq) in marks {
        st.execute(params![sink, seq])?;
    }
    c.execute_cached("DELETE FROM outbox WHERE seq <= ?1", [delete_through])?;
    Ok(())
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn outbox_append(&self, events: Vec<OutboxEvent>) -> Result<i64> {
        self.write(move |c| Ok((record(c, &events)?, vec![]))).await
    }

    async fn outbox_after(&self, from: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.read(move |c| after(c, from, limit)).await
    }

    async fn outbox_marks(&self) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT sink, seq FROM outbox_marks ORDER BY sink")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn outbox_mark(&self, marks: Vec<(String, i64)>, delete_through: i64) -> Result<()> {
        self.write(move |c| Ok((mark(c, &marks, delete_through)?, vec![])))
            .await
    }
}

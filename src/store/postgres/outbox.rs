//! The event outbox on PostgreSQL (tables `outbox`, `outbox_counter`,
//! `outbox_marks`); a delivery's events are written by its batch (`batch`).
//!
//! Sequence numbers come from the one row of `outbox_counter`, advanced with
//! `RETURNING` inside the writing transaction and held locked until its commit:
//! they are handed out in commit order, so a reader that has seen `n` never later
//! sees a row below `n` appear, and they are never reused (not a SEQUENCE, whose
//! numbers commit out of order and leave gaps). That row serializes every
//! event-writing commit of every daemon, so [`record`] is the last statement of
//! its transaction: the lock is held for the insert and the commit only, never
//! while the delivery itself runs (docs/postgres-progress.md has the measurement).
//!
//! Rows and marks belong to the daemon that wrote them ([`PgStore::node`]): each
//! daemon's events reader drains its own rows into its own sinks, as each daemon
//! logs what it did. A daemon's rows wait for it while it is down (its node name
//! comes from its data directory, so a restart finds them).

use async_trait::async_trait;

use super::ops::{Sql, execute, query, query_one};
use std::sync::atomic::Ordering;

use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::store::Result;
use crate::store::outbox::{MAX_READ, Outbox, OutboxEvent, OutboxRow};

/// Appends `events` in order inside the caller's transaction, which must commit
/// right after (the counter row stays locked until then); returns the sequence
/// number of the last, 0 (taking no lock) when there are none.
pub(super) async fn record(tx: &dyn Sql, node: &str, events: &[OutboxEvent]) -> Op<i64> {
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len() as i64;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let orgs: Vec<&str> = events.iter().map(|e| e.org.as_str()).collect();
    let lines: Vec<&str> = events.iter().map(|e| e.line.as_str()).collect();
    // One statement takes the numbers and inserts the rows: one round trip
    // under the counter's lock before the commit, not two.
    let last: i64 = query_one(
        tx,
        "WITH taken AS (UPDATE outbox_counter SET seq = seq + $1 RETURNING seq),
              added AS (
                  INSERT INTO outbox (seq, node, kind, org, line)
                  SELECT taken.seq - $1 + e.i, $5, e.kind, e.org, e.line
                  FROM taken, unnest($2::text[], $3::text[], $4::text[])
                       WITH ORDINALITY AS e(kind, org, line, i))
         SELECT seq FROM taken",
        &[&n, &kinds, &orgs, &lines, &node],
    )
    .await?
    .get(0);
    Ok(last)
}

async fn after(tx: &dyn Sql, node: &str, after: i64, limit: usize) -> Op<Vec<OutboxRow>> {
    let limit = limit.min(MAX_READ) as i64;
    let rows = query(
        tx,
        "SELECT seq, kind, org, line FROM outbox WHERE node = $3 AND seq > $1
         ORDER BY seq LIMIT $2",
        &[&after, &limit, &node],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| OutboxRow {
            seq: r.get(0),
            event: OutboxEvent {
                kind: r.get(1),
                org: r.get(2),
                line: r.get(3),
            },
        })
        .collect())
}

async fn marks(tx: &dyn Sql, node: &str) -> Op<Vec<(String, i64)>> {
    let rows = query(
        tx,
        "SELECT sink, seq FROM outbox_marks WHERE node = $1 ORDER BY sink COLLATE \"C\"",
        &[&node],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Replaces the marks and deletes the rows up to `delete_through` (no counter
/// lock: deleting never hands out a number).
async fn mark(
    tx: &dyn Sql,
    node: &str,
    marks: &[(String, i64)],
    delete_through: i64,
) -> Op<((), Touched)> {
    execute(tx, "DELETE FROM outbox_marks WHERE node = $1", &[&node]).await?;
    let sinks: Vec<&str> = marks.iter().map(|(s, _)| s.as_str()).collect();
    let seqs: Vec<i64> = marks.iter().map(|(_, n)| *n).collect();
    execute(
        tx,
        "INSERT INTO outbox_marks (node, sink, seq)
         SELECT $3, * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (node, sink) DO UPDATE SET seq = excluded.seq",
        &[&sinks, &seqs, &node],
    )
    .await?;
    execute(
        tx,
        "DELETE FROM outbox WHERE node = $2 AND seq <= $1",
        &[&delete_through, &node],
    )
    .await?;
    Ok(((), Touched::new()))
}

async fn append(tx: &dyn Sql, node: &str, events: &[OutboxEvent]) -> Op<(i64, Touched)> {
    Ok((record(tx, node, events).await?, Touched::new()))
}

#[async_trait]
impl Outbox for PgStore {
    async fn outbox_append(&self, events: Vec<OutboxEvent>) -> Result<i64> {
        write_tx!(self, |tx| append(&tx, &self.node, &events))
    }

    async fn outbox_after(&self, from: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        read_tx!(self, |tx| after(&tx, &self.node, from, limit))
    }

    async fn outbox_marks(&self) -> Result<Vec<(String, i64)>> {
        read_tx!(self, |tx| marks(&tx, &self.node))
    }

    async fn outbox_mark(&self, marks: Vec<(String, i64)>, delete_through: i64) -> Result<()> {
        write_tx!(self, |tx| mark(&tx, &self.node, &marks, delete_through))
    }
}

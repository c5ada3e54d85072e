//! The outbound queue in SQLite (tables `queue_messages`, `queue_recipients`,
//! migration 4). Writes go through the group-committing writer, so an enqueue is
//! durable when it returns.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::store::queue::{DueMessage, NewOutbound, OutboundQueue, QueuedMessage, QueuedRecipient};
use crate::store::{DeliveryEvents, Refused, Result, StoreError, Stored, Target};

fn insert(c: &Connection, m: &NewOutbound, now_ms: i64) -> Result<i64> {
    c.execute_cached(
        "INSERT INTO queue_messages (sender, on_behalf_of, from_header, message_id, owner_org,
             owner_mailbox, trace_id, envelope_id, enqueued_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            m.sender,
            m.on_behalf_of,
            m.from_header,
            m.message_id,
            m.owner_org,
            m.owner_mailbox,
            m.trace_id,
            m.envelope_id,
            now_ms,
            &m.body[..]
        ],
    )?;
    let id = c.last_insert_rowid();
    let mut st = c.prepare(
        "INSERT INTO queue_recipients (message_id, recipient, notify_failure, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in &m.recipients {
        st.execute(params![id, r.address, r.notify_failure, now_ms])?;
    }
    Ok(id)
}

/// A recipient from the columns `id, recipient, notify_failure, attempts,
/// next_attempt_ms, last_error` (also read by `export`).
pub(super) fn recipient(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedRecipient> {
    Ok(QueuedRecipient {
        id: r.get(0)?,
        recipient: r.get(1)?,
        notify_failure: r.get(2)?,
        attempts: r.get(3)?,
        next_attempt_ms: r.get(4)?,
        last_error: r.get(5)?,
    })
}

fn due(c: &Connection, now_ms: i64, limit: usize) -> Result<Vec<DueMessage>> {
    let mut st = c.prepare(
        "SELECT id, sender, on_behalf_of, from_header, message_id, owner_org, owner_mailbox,
                trace_id, envelope_id, enqueued_ms
         FROM queue_messages
         WHERE id IN (SELECT message_id FROM queue_recipients WHERE next_attempt_ms <= ?1)
         ORDER BY id LIMIT ?2",
    )?;
    let messages = st
        .query_map(params![now_ms, limit as i64], |r| {
            Ok(QueuedMessage {
                id: r.get(0)?,
                sender: r.get(1)?,
                on_behalf_of: r.get(2)?,
                from_header: r.get(3)?,
                message_id: r.get(4)?,
                owner_org: r.get(5)?,
                owner_mailbox: r.get(6)?,
                trace_id: r.get(7)?,
                envelope_id: r.get(8)?,
                enqueued_ms: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rst = c.prepare(
        "SELECT id, recipient, notify_failure, attempts, next_attempt_ms, last_error FROM queue_recipients
         WHERE message_id = ?1 AND next_attempt_ms <= ?2 ORDER BY id",
    )?;
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let recipients = rst
            .query_map(params![message.id, now_ms], recipient)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(DueMessage {
            message,
            recipients,
        });
    }
    Ok(out)
}

fn finish(c: &Connection, recipient_id: i64) -> Result<()> {
    let message: Option<i64> = c
        .query_row_cached(
            "DELETE FROM queue_recipients WHERE id = ?1 RETURNING message_id",
            [recipient_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(m) = message {
        c.execute_cached(
            "DELETE FROM queue_messages WHERE id = ?1
               AND NOT EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = ?1)",
            [m],
        )?;
    }
    Ok(())
}

#[async_trait]
impl OutboundQueue for SqliteStore {
    async fn enqueue(&self, message: NewOutbound, now_ms: i64) -> Result<i64> {
        self.write(move |c| Ok((insert(c, &message, now_ms)?, vec![])))
            .await
    }

    async fn deliver_and_enqueue(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        message: NewOutbound,
        events: Option<DeliveryEvents>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        self.write(move |c| {
            // No local copy (a DSN on its way out): no body row either.
            let (results, touched) = if targets.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                super::ops::deliver(c, &body, internal_date, &targets)?
            };
            insert(c, &message, internal_date)?;
            if let Some(events) = &events {
                super::outbox::record(c, &events(&results))?;
            }
            Ok((results, touched))
        })
        .await
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueMessage>> {
        self.read(move |c| due(c, now_ms, limit)).await
    }

    async fn queued_body(&self, message_id: i64) -> Result<Vec<u8>> {
        self.read(move |c| {
            c.query_row_cached(
                "SELECT body FROM queue_messages WHERE id = ?1",
                [message_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound("queued message"))
        })
        .await
    }

    async fn next_attempt_ms(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row_cached(
                "SELECT min(next_attempt_ms) FROM queue_recipients",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn finish_recipient(&self, recipient_id: i64) -> Result<()> {
        self.write(move |c| Ok((finish(c, recipient_id)?, vec![])))
            .await
    }

    async fn defer_recipient(&self, recipient_id: i64, next_ms: i64, error: String) -> Result<()> {
        self.write(move |c| {
            c.execute_cached(
                "UPDATE queue_recipients SET state = 'deferred', attempts = attempts + 1,
                     next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![recipient_id, next_ms, error],
            )?;
            Ok(((), vec![]))
        })
        .await
    }

    async fn oldest_enqueued_ms(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(
                c.query_row_cached("SELECT min(enqueued_ms) FROM queue_messages", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn queued_recipients(&self) -> Result<usize> {
        self.read(|c| {
            let n: i64 =
                c.query_row_cached("SELECT count(*) FROM queue_recipients", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }
}

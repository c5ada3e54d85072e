//! The outbound queue in SQLite (tables `queue_messages`, `queue_recipients`,
//! migration 4). Writes go through the group-committing writer, so an enqueue is
//! durable when it returns.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::store::queue::{DueMessage, NewOutbound, OutboundQueue, QueuedMessage, QueuedRecipient};
use crate::store::{Refused, Result, StoreError, Stored, Target};

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
            .query_map(params![message.id, now_ms], |r| {
                Ok(QueuedRecipient {
                    id: r.get(0)?,
                    recipient: r.get(1)?,
                    notify_failure: r.get(2)?,
                    attempts: r.get(3)?,
                    next_attempt_ms: r.get(4)?,
                    last_error: r.get(5)?,
                })
            })?
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
impl OutboundQueue for Arc<SqliteStore> {
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
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        self.write(move |c| {
            // No local copy (a DSN on its way out): no body row either.
            let (results, touched) = if targets.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                super::ops::deliver(c, &body, internal_date, &targets)?
            };
            insert(c, &message, internal_date)?;
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

    async fn queued_recipients(&self) -> Result<usize> {
        self.read(|c| {
            let n: i64 =
                c.query_row_cached("SELECT count(*) FROM queue_recipients", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::NewRecipient;

    fn new(recipients: &[&str]) -> NewOutbound {
        NewOutbound {
            sender: "alice@acme.test".into(),
            on_behalf_of: None,
            from_header: "alice@acme.test".into(),
            message_id: "m1@acme.test".into(),
            owner_org: "m-1".into(),
            owner_mailbox: "u-1".into(),
            trace_id: "t".into(),
            envelope_id: Some("env-1".into()),
            recipients: recipients
                .iter()
                .map(|s| NewRecipient {
                    address: s.to_string(),
                    notify_failure: !s.starts_with('b'),
                })
                .collect(),
            body: Arc::from(&b"Subject: x\r\n\r\nhi\r\n"[..]),
        }
    }

    #[tokio::test]
    async fn enqueue_due_defer_and_finish() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.sqlite")).unwrap());
        let id = store
            .enqueue(new(&["a@x.test", "b@x.test"]), 1000)
            .await
            .unwrap();
        assert!(store.due(999, 10).await.unwrap().is_empty());
        let due = store.due(1000, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].recipients.len(), 2);
        assert_eq!(due[0].message.envelope_id.as_deref(), Some("env-1"));
        assert!(due[0].recipients[0].notify_failure && !due[0].recipients[1].notify_failure);
        assert_eq!(
            store.queued_body(id).await.unwrap(),
            b"Subject: x\r\n\r\nhi\r\n"
        );
        let (a, b) = (due[0].recipients[0].id, due[0].recipients[1].id);
        store
            .defer_recipient(a, 5000, "451 busy".into())
            .await
            .unwrap();
        assert_eq!(store.next_attempt_ms().await.unwrap(), Some(1000));
        store.finish_recipient(b).await.unwrap();
        assert_eq!(store.next_attempt_ms().await.unwrap(), Some(5000));
        let later = store.due(5000, 10).await.unwrap();
        assert_eq!(later[0].recipients[0].attempts, 1);
        assert_eq!(
            later[0].recipients[0].last_error.as_deref(),
            Some("451 busy")
        );
        store.finish_recipient(a).await.unwrap();
        assert_eq!(store.queued_recipients().await.unwrap(), 0);
        assert!(
            store.queued_body(id).await.is_err(),
            "the message goes with its last recipient"
        );
        assert_eq!(store.next_attempt_ms().await.unwrap(), None);
    }

    #[tokio::test]
    async fn deliver_and_enqueue_is_one_write() {
        use crate::store::{FolderKind, FolderRef, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.sqlite")).unwrap());
        store.create_mailbox("u-1", 1 << 20).await.unwrap();
        let commits = |s: &SqliteStore| {
            s.writer_stats()
                .commits
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let before = commits(&store);
        let targets = vec![Target {
            folder: FolderRef::Kind("u-1".into(), FolderKind::SentItems),
            flags: vec![],
        }];
        let m = new(&["a@x.test"]);
        let body = m.body.clone();
        let stored = store
            .deliver_and_enqueue(body, 1000, targets, m)
            .await
            .unwrap();
        assert!(stored[0].is_ok());
        assert_eq!(commits(&store), before + 1, "one transaction");
        assert_eq!(store.queued_recipients().await.unwrap(), 1);
    }
}

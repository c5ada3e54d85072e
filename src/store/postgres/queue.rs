//! The outbound queue on PostgreSQL (tables `queue_messages`,
//! `queue_recipients`), shared by every daemon on the database.
//!
//! Owns the leases that keep daemons apart. [`OutboundQueue::due`] leases the
//! recipients it returns to this store (`lease_owner` = [`PgStore`]'s owner id,
//! `lease_until_ms` = the database's clock + the lease time), taking them with
//! `FOR UPDATE SKIP LOCKED`, so two daemons asking at once never get the same
//! recipient and never wait for each other. A recipient is free for `due` when it
//! has no lease, when its lease has expired (its holder crashed or outlived the
//! lease: a takeover, counted in `WriterStats::lease_takeovers`), or when this
//! same store holds it: the queue runner (one per daemon) calls `due` only after
//! settling its previous batch, so a lease of its own found then belongs to an
//! attempt that ended in a store error, and is taken again rather than left to
//! expire.
//!
//! Finishing and deferring are fenced: they change a recipient only while no
//! other store holds its lease. A late call from a store whose lease was taken
//! over changes nothing and returns `Ok` (counted in `WriterStats::lease_fenced`):
//! the new holder settles the recipient, which may then be sent twice (at least
//! once, never lost). The lease time ([`queue_lease`]) is longer than a whole
//! attempt, so this happens only to a daemon that stalled or lost the database.
//!
//! Leases are judged by the database's clock (`mg_now_ms()`), schedules
//! (`next_attempt_ms`) by the caller's `now_ms` as on SQLite.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Row;

use super::ops::{self, Sql, execute, query, query_opt};
use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::store::queue::{DueMessage, NewOutbound, OutboundQueue, QueuedMessage, QueuedRecipient};
use crate::store::{DeliveryEvents, Refused, Result, StoreError, Stored, Target};

/// The lease a daemon takes on the recipients of one `due` batch: longer than a
/// whole attempt of the queue runner (src/smtp/queue/runner.rs). A batch is one
/// connection; its transfers take seconds, and a smarthost that stalls costs at
/// most one timeout, because the runner drops the connection on the first
/// failed exchange and defers the rest of the batch without the network. The
/// longest stall is a command timeout (connecting) followed by a data timeout;
/// the lease is twice that, and at least a minute.
pub fn queue_lease(command_timeout: Duration, data_timeout: Duration) -> Duration {
    ((command_timeout + data_timeout) * 2).max(Duration::from_secs(60))
}

/// [`queue_lease`] for the default `[smtp]` timeouts (300 s command, 600 s
/// data): 30 minutes. A crashed daemon's recipients wait that long at most.
pub const DEFAULT_QUEUE_LEASE: Duration = Duration::from_secs(30 * 60);

/// A lease id unique to one store instance (one daemon's pool): the process id
/// and 64 random bits, so a restarted daemon never inherits its predecessor's
/// leases by accident.
pub(super) fn new_owner() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// What a lease-taking `due` found: the recipients now leased, and how many of
/// them were taken over from another store's expired lease.
struct Taken {
    recipients: BTreeMap<i64, Vec<QueuedRecipient>>,
    takeovers: u64,
}

/// Whether a recipient found leased by `previous` is a takeover by `owner`: a
/// lease of another store (only an expired one is ever taken).
fn is_takeover(previous: Option<&str>, owner: &str) -> bool {
    previous.is_some_and(|p| p != owner)
}

fn recipient_of(r: &Row) -> Op<QueuedRecipient> {
    let attempts: i32 = r.get("attempts");
    Ok(QueuedRecipient {
        id: r.get("id"),
        recipient: r.get("recipient"),
        notify_failure: r.get("notify_failure"),
        attempts: u32::try_from(attempts)
            .map_err(|_| OpError::Store(StoreError::Io(format!("attempts {attempts}"))))?,
        next_attempt_ms: r.get("next_attempt_ms"),
        last_error: r.get("last_error"),
    })
}

fn message_of(r: &Row) -> QueuedMessage {
    QueuedMessage {
        id: r.get("id"),
        sender: r.get("sender"),
        on_behalf_of: r.get("on_behalf_of"),
        from_header: r.get("from_header"),
        message_id: r.get("message_id"),
        owner_org: r.get("owner_org"),
        owner_mailbox: r.get("owner_mailbox"),
        trace_id: r.get("trace_id"),
        envelope_id: r.get("envelope_id"),
        enqueued_ms: r.get("enqueued_ms"),
    }
}

/// Stores the message (its body once) and one row per recipient due at `now_ms`.
pub(super) async fn insert(tx: &dyn Sql, m: &NewOutbound, now_ms: i64) -> Op<i64> {
    let row = ops::query_one(
        tx,
        "INSERT INTO queue_messages (sender, on_behalf_of, from_header, message_id, owner_org,
             owner_mailbox, trace_id, envelope_id, enqueued_ms, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        &[
            &m.sender,
            &m.on_behalf_of,
            &m.from_header,
            &m.message_id,
            &m.owner_org,
            &m.owner_mailbox,
            &m.trace_id,
            &m.envelope_id,
            &now_ms,
            &&m.body[..],
        ],
    )
    .await?;
    let id: i64 = row.get(0);
    let addresses: Vec<&str> = m.recipients.iter().map(|r| r.address.as_str()).collect();
    let notify: Vec<bool> = m.recipients.iter().map(|r| r.notify_failure).collect();
    execute(
        tx,
        "INSERT INTO queue_recipients (message_id, recipient, notify_failure, next_attempt_ms)
         SELECT $1, a, n, $4 FROM unnest($2::text[], $3::boolean[]) WITH ORDINALITY AS t(a, n, i)
         ORDER BY i",
        &[&id, &addresses, &notify, &now_ms],
    )
    .await?;
    Ok(id)
}

async fn enqueue(tx: &dyn Sql, m: &NewOutbound, now_ms: i64) -> Op<(i64, Touched)> {
    Ok((insert(tx, m, now_ms).await?, Touched::new()))
}

/// Leases the due, free recipients of the oldest `limit` messages that have any.
async fn lease_due(
    tx: &dyn Sql,
    owner: &str,
    lease_ms: i64,
    now_ms: i64,
    limit: usize,
) -> Op<(Taken, Touched)> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Which messages (unlocked: a recipient another daemon takes meanwhile is
    // skipped below, and a message may then come back with fewer recipients).
    let messages: Vec<i64> = query(
        tx,
        "SELECT DISTINCT message_id FROM queue_recipients
         WHERE next_attempt_ms <= $1
           AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until_ms <= mg_now_ms())
         ORDER BY message_id LIMIT $3",
        &[&now_ms, &owner, &limit],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if messages.is_empty() {
        return Ok((
            Taken {
                recipients: BTreeMap::new(),
                takeovers: 0,
            },
            Touched::new(),
        ));
    }
    // SKIP LOCKED passes over rows another `due` is taking right now; a row
    // changed and committed since this statement began is checked again on its
    // new version (READ COMMITTED), so a lease just taken is seen.
    let rows = query(
        tx,
        "WITH free AS (
             SELECT id, lease_owner AS previous FROM queue_recipients
             WHERE message_id = ANY($1) AND next_attempt_ms <= $2
               AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until_ms <= mg_now_ms())
             FOR UPDATE SKIP LOCKED)
         UPDATE queue_recipients r SET lease_owner = $3, lease_until_ms = mg_now_ms() + $4
         FROM free WHERE r.id = free.id
         RETURNING r.id, r.message_id, r.recipient, r.notify_failure, r.attempts,
                   r.next_attempt_ms, r.last_error, free.previous",
        &[&messages, &now_ms, &owner, &lease_ms],
    )
    .await?;
    let mut taken = Taken {
        recipients: BTreeMap::new(),
        takeovers: 0,
    };
    for r in &rows {
        let previous: Option<String> = r.get("previous");
        if is_takeover(previous.as_deref(), owner) {
            taken.takeovers += 1;
        }
        taken
            .recipients
            .entry(r.get("message_id"))
            .or_default()
            .push(recipient_of(r)?);
    }
    Ok((taken, Touched::new()))
}

/// The messages of `taken`, oldest first, each with its recipients by id.
async fn due_messages(tx: &dyn Sql, mut taken: Taken) -> Op<Vec<DueMessage>> {
    let ids: Vec<i64> = taken.recipients.keys().copied().collect();
    let rows = query(
        tx,
        "SELECT id, sender, on_behalf_of, from_header, message_id, owner_org, owner_mailbox,
                trace_id, envelope_id, enqueued_ms
         FROM queue_messages WHERE id = ANY($1) ORDER BY id",
        &[&ids],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let message = message_of(r);
        let mut recipients = taken.recipients.remove(&message.id).unwrap_or_default();
        recipients.sort_by_key(|r| r.id);
        out.push(DueMessage {
            message,
            recipients,
        });
    }
    Ok(out)
}

/// Whether a settle of `recipient_id` by `owner` was fenced: the row is there
/// and another store holds it.
async fn held_by_another(tx: &dyn Sql, recipient_id: i64, owner: &str) -> Op<bool> {
    Ok(query_opt(
        tx,
        "SELECT 1 FROM queue_recipients WHERE id = $1 AND lease_owner IS NOT NULL
           AND lease_owner <> $2",
        &[&recipient_id, &owner],
    )
    .await?
    .is_some())
}

/// Removes the recipient unless another store holds it; the message goes with
/// its last recipient. Returns whether the call was fenced.
async fn finish(tx: &dyn Sql, recipient_id: i64, owner: &str) -> Op<(bool, Touched)> {
    // The message row first: two daemons finishing its last two recipients at
    // once would otherwise each still see the other's and both keep the message.
    let Some(message) = query_opt(
        tx,
        "SELECT m.id FROM queue_messages m JOIN queue_recipients r ON r.message_id = m.id
         WHERE r.id = $1 FOR UPDATE OF m",
        &[&recipient_id],
    )
    .await?
    else {
        return Ok((false, Touched::new()));
    };
    let message_id: i64 = message.get(0);
    let removed = execute(
        tx,
        "DELETE FROM queue_recipients WHERE id = $1
           AND (lease_owner IS NULL OR lease_owner = $2)",
        &[&recipient_id, &owner],
    )
    .await?;
    if removed == 0 {
        return Ok((
            held_by_another(tx, recipient_id, owner).await?,
            Touched::new(),
        ));
    }
    execute(
        tx,
        "DELETE FROM queue_messages WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = $1)",
        &[&message_id],
    )
    .await?;
    Ok((false, Touched::new()))
}

/// Records a failed attempt and the next one, releasing the lease, unless
/// another store holds it. Returns whether the call was fenced.
async fn defer(
    tx: &dyn Sql,
    recipient_id: i64,
    owner: &str,
    next_ms: i64,
    error: &str,
) -> Op<(bool, Touched)> {
    let changed = execute(
        tx,
        "UPDATE queue_recipients SET attempts = attempts + 1, next_attempt_ms = $3,
             last_error = $4, lease_owner = NULL, lease_until_ms = NULL
         WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2)",
        &[&recipient_id, &owner, &next_ms, &error],
    )
    .await?;
    let fenced = changed == 0 && held_by_another(tx, recipient_id, owner).await?;
    Ok((fenced, Touched::new()))
}

async fn release(tx: &dyn Sql, owner: &str) -> Op<(u64, Touched)> {
    let released = execute(
        tx,
        "UPDATE queue_recipients SET lease_owner = NULL, lease_until_ms = NULL
         WHERE lease_owner = $1",
        &[&owner],
    )
    .await?;
    Ok((released, Touched::new()))
}

impl PgStore {
    /// Gives up every lease this store holds, for a clean shutdown after the
    /// queue runner stopped: another daemon may then take the recipients at
    /// once instead of after the lease (an attempt cut short may have been sent
    /// already; it is sent again, at least once). Returns how many were held.
    pub async fn release_queue_leases(&self) -> Result<u64> {
        write_tx!(self, |tx| release(&tx, &self.owner))
    }

    /// Counts and reports a settle that another store's lease fenced off.
    fn note_fenced(&self, fenced: bool, recipient_id: i64, what: &str) {
        if fenced {
            self.stats.lease_fenced.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                recipient_id,
                what,
                "outbound queue: another daemon took this recipient over (its lease expired); \
                 it settles it, this attempt's outcome is dropped"
            );
        }
    }
}

#[async_trait]
impl OutboundQueue for PgStore {
    async fn enqueue(&self, message: NewOutbound, now_ms: i64) -> Result<i64> {
        write_tx!(self, |tx| enqueue(&tx, &message, now_ms))
    }

    async fn deliver_and_enqueue(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        message: NewOutbound,
        events: Option<DeliveryEvents>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        // The local copies, the queue entry and the events in one transaction
        // (the events last: the outbox counter is locked until the commit),
        // batched with the other deliveries into the same mailbox.
        self.batch
            .submit(super::batch::Job {
                body,
                internal_date,
                targets,
                extra: super::batch::Extra::Enqueue(Box::new(message), events),
            })
            .await
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueMessage>> {
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let taken = write_tx!(self, |tx| lease_due(
            &tx,
            &self.owner,
            lease_ms,
            now_ms,
            limit
        ))?;
        self.stats
            .lease_takeovers
            .fetch_add(taken.takeovers, Ordering::Relaxed);
        if taken.recipients.is_empty() {
            return Ok(Vec::new());
        }
        read_tx!(self, |tx| due_messages(&tx, taken))
    }

    async fn queued_body(&self, message_id: i64) -> Result<Vec<u8>> {
        read_tx!(self, |tx| async move {
            Ok(query_opt(
                &tx,
                "SELECT body FROM queue_messages WHERE id = $1",
                &[&message_id],
            )
            .await?
            .ok_or(OpError::Store(StoreError::NotFound("queued message")))?
            .get(0))
        })
    }

    /// The earliest time this daemon may attempt anything: a recipient another
    /// store holds counts at its lease's expiry at the earliest (else a runner
    /// would wake again and again while another daemon is sending it); one this
    /// store holds, or nobody, at its schedule.
    async fn next_attempt_ms(&self) -> Result<Option<i64>> {
        let owner = &self.owner;
        read_tx!(self, |tx| async move {
            Ok(ops::query_one(
                &tx,
                "SELECT min(CASE WHEN lease_owner <> $1 AND lease_until_ms > mg_now_ms()
                                 THEN greatest(next_attempt_ms, lease_until_ms)
                                 ELSE next_attempt_ms END)
                 FROM queue_recipients",
                &[owner],
            )
            .await?
            .get(0))
        })
    }

    async fn finish_recipient(&self, recipient_id: i64) -> Result<()> {
        let fenced = write_tx!(self, |tx| finish(&tx, recipient_id, &self.owner))?;
        self.note_fenced(fenced, recipient_id, "finish");
        Ok(())
    }

    async fn defer_recipient(&self, recipient_id: i64, next_ms: i64, error: String) -> Result<()> {
        let fenced = write_tx!(self, |tx| defer(
            &tx,
            recipient_id,
            &self.owner,
            next_ms,
            &error
        ))?;
        self.note_fenced(fenced, recipient_id, "defer");
        Ok(())
    }

    async fn queued_recipients(&self) -> Result<usize> {
        read_tx!(self, |tx| async move {
            let n: i64 = ops::query_one(&tx, "SELECT count(*) FROM queue_recipients", &[])
                .await?
                .get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
    }

    async fn release_leases(&self) -> Result<u64> {
        self.release_queue_leases().await
    }

    async fn oldest_enqueued_ms(&self) -> Result<Option<i64>> {
        read_tx!(self, |tx| async move {
            Ok(
                ops::query_one(&tx, "SELECT min(enqueued_ms) FROM queue_messages", &[])
                    .await?
                    .get(0),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_outlasts_a_stalled_attempt() {
        let lease = queue_lease(Duration::from_secs(300), Duration::from_secs(600));
        assert_eq!(lease, DEFAULT_QUEUE_LEASE);
        assert!(lease > Duration::from_secs(300 + 600));
        assert_eq!(
            queue_lease(Duration::from_secs(1), Duration::from_secs(2)),
            Duration::from_secs(60),
            "never shorter than a minute"
        );
    }

    #[test]
    fn only_another_stores_lease_is_a_takeover() {
        assert!(is_takeover(Some("a"), "b"));
        assert!(!is_takeover(Some("b"), "b"), "its own lease");
        assert!(!is_takeover(None, "b"), "a free recipient");
    }

    #[test]
    fn owner_ids_differ_per_store() {
        let (a, b) = (new_owner(), new_owner());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", std::process::id())), "{a}");
    }
}

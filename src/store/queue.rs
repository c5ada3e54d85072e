//! The outbound queue's storage contract: messages accepted on submission for
//! remote recipients wait here, durably, until the smarthost takes or refuses them.
//!
//! The body is stored once per message; each remote recipient is its own row with
//! its own schedule, so one recipient's retry never resends to the others.

use std::sync::Arc;

use async_trait::async_trait;

use super::{DeliveryEvents, Refused, Result, Stored, Target};

/// A message to queue: who sent it, for whom, and the bytes to relay.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// The envelope sender (MAIL FROM).
    pub sender: String,
    /// The submitter's own address when sending on behalf of `sender`.
    pub on_behalf_of: Option<String>,
    /// The From header address, for the events.
    pub from_header: String,
    /// The Message-ID header without brackets, for the events.
    pub message_id: String,
    /// The submitter's organization and mailbox, where a bounce (DSN) is filed.
    pub owner_org: String,
    pub owner_mailbox: String,
    /// The traceId of the submission, so SENT and BOUNCED join its flow.
    pub trace_id: String,
    /// RFC 3461 ENVID from MAIL FROM, echoed in a DSN.
    pub envelope_id: Option<String>,
    pub recipients: Vec<NewRecipient>,
    pub body: Arc<[u8]>,
}

/// One remote recipient to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub address: String,
    /// RFC 3461 NOTIFY: false when the sender asked for no failure DSN.
    pub notify_failure: bool,
}

/// A queued message, without its body (fetched once per delivery attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: i64,
    pub sender: String,
    pub on_behalf_of: Option<String>,
    pub from_header: String,
    pub message_id: String,
    pub owner_org: String,
    pub owner_mailbox: String,
    pub trace_id: String,
    pub envelope_id: Option<String>,
    pub enqueued_ms: i64,
}

/// One remote recipient of a queued message and its schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub id: i64,
    pub recipient: String,
    pub notify_failure: bool,
    /// Delivery attempts that failed temporarily so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// A message with its recipients that are due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    pub message: QueuedMessage,
    pub recipients: Vec<QueuedRecipient>,
}

/// What the queue runner and the submission path need from storage.
#[async_trait]
pub trait OutboundQueue: Send + Sync {
    /// Stores the message and one row per recipient, due at `now_ms`; returns when
    /// durable, so the submission may then answer 250.
    async fn enqueue(&self, message: NewOutbound, now_ms: i64) -> Result<i64>;
    /// [`Store::deliver`](super::Store::deliver) and [`enqueue`](Self::enqueue) in
    /// one transaction: a submission's local copies, Sent Items copy and queue entry
    /// become durable together or not at all, and with them the events `events`
    /// computes from the outcome (into the [`Outbox`](super::Outbox)).
    async fn deliver_and_enqueue(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        message: NewOutbound,
        events: Option<DeliveryEvents>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>>;
    /// Messages with at least one recipient due at `now_ms`, oldest first, at most
    /// `limit` messages; for the queue runner only, which settles every recipient
    /// returned before it asks again. A backend shared by many daemons leases the
    /// recipients it returns to the calling store, so no other daemon gets them
    /// while they are in flight (a lease outlives a whole attempt; the store's own
    /// unsettled leases are returned again). To look without taking, use
    /// [`queued_recipients`](Self::queued_recipients) and
    /// [`oldest_enqueued_ms`](Self::oldest_enqueued_ms).
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueMessage>>;
    /// The body of a queued message.
    async fn queued_body(&self, message_id: i64) -> Result<Vec<u8>>;
    /// The earliest scheduled attempt, if anything is queued.
    async fn next_attempt_ms(&self) -> Result<Option<i64>>;
    /// Removes a recipient that was delivered or bounced; the message goes with its
    /// last recipient. An unknown recipient is no error. With leases it is fenced:
    /// when another store has taken the recipient over (this attempt outlived its
    /// lease), nothing changes and the call still returns `Ok`; that store settles
    /// it, so the recipient may be sent twice but is never lost.
    async fn finish_recipient(&self, recipient_id: i64) -> Result<()>;
    /// Records a temporary failure and the next attempt (and releases a lease);
    /// fenced like [`finish_recipient`](Self::finish_recipient).
    async fn defer_recipient(&self, recipient_id: i64, next_ms: i64, error: String) -> Result<()>;
    /// Recipients still queued (all messages).
    async fn queued_recipients(&self) -> Result<usize>;
    /// Gives back what this daemon's runner holds (its stop: another daemon on a
    /// shared store may take them at once rather than after the lease); returns
    /// how many. A store one daemon owns leases nothing.
    async fn release_leases(&self) -> Result<u64> {
        Ok(0)
    }
    /// When the oldest queued message was enqueued, if any: the metrics page's
    /// queue age, read without leasing anything.
    async fn oldest_enqueued_ms(&self) -> Result<Option<i64>>;
}

//! The event outbox: email and audit events kept in the store until every event
//! sink has them.
//!
//! Owns the interface ([`Outbox`], and [`Store::deliver_recording`](super::Store)
//! which adds a delivery's events to the delivery's own commit), its row types and
//! its limits. An event written with the write it reports is durable exactly when
//! that write is: a 250 sent after the commit can no longer lose its events to a
//! crash. The reader (`events`) drains the rows in sequence order and records per
//! sink how far it got ([`Outbox::outbox_mark`]); rows every sink has passed are
//! deleted. Sequence numbers only grow, also across deletes and reopens, so a
//! sink's mark stays meaningful. The store never interprets an event: `kind`,
//! `org` and `line` are the events module's.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Refused, Result, Stored};

/// Most rows one [`Outbox::outbox_after`] returns, whatever the caller asks: a
/// reader's memory and a read's time stay bounded however far the sinks are behind.
pub const MAX_READ: usize = 1024;

/// One event waiting for the sinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// What the event is, for the sinks' filters (an email `eventName` or an
    /// audit `log_type`).
    pub kind: String,
    /// The organization it belongs to (routing to its email monitoring sink);
    /// empty when none.
    pub org: String,
    /// The record as the sinks write it (one JSON object), carrying its stable id.
    pub line: String,
}

/// An event in the outbox with its place in the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Increasing, never reused.
    pub seq: i64,
    pub event: OutboxEvent,
}

/// The events of a delivery, computed from its per-target outcome inside the
/// delivery's transaction. A backend may run it more than once (a retried batch),
/// so it must depend on its input alone.
pub type DeliveryEvents =
    Arc<dyn Fn(&[std::result::Result<Stored, Refused>]) -> Vec<OutboxEvent> + Send + Sync>;

/// The outbox's own operations (the rows of a delivery go in with it, through
/// `Store::deliver_recording` and `OutboundQueue::deliver_and_enqueue`).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Appends events not tied to another write (logins, access decisions) in one
    /// commit of their own; returns the sequence number of the last (0 if none).
    async fn outbox_append(&self, events: Vec<OutboxEvent>) -> Result<i64>;
    /// Rows with a sequence number above `after`, ascending, at most
    /// `limit.min(MAX_READ)`.
    async fn outbox_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxRow>>;
    /// The mark of every sink recorded so far: (sink name, last sequence number it has).
    async fn outbox_marks(&self) -> Result<Vec<(String, i64)>>;
    /// Replaces the recorded marks with `marks` (a sink not named is forgotten)
    /// and deletes the rows up to `delete_through`, in one commit.
    async fn outbox_mark(&self, marks: Vec<(String, i64)>, delete_through: i64) -> Result<()>;
}

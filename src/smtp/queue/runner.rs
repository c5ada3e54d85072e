//! The queue runner: one task that relays due entries to the smarthost, one
//! connection per batch, and settles each recipient: sent (removed, event),
//! deferred (backoff) or bounced (event, DSN into the sender's Inbox, removed).
//!
//! It wakes when submission enqueues, when the earliest scheduled retry is due, and
//! stops on the daemon's draining token. Everything it knows is in the store, so a
//! new runner on the same store (after a restart) picks up where the last one was.
//!
//! Several daemons on one database each run a runner: `due` leases what it
//! returns, so they never hold the same recipient, and the runner settles its
//! whole batch before asking again (the store relies on that: its own leases
//! come back to it). A settle fenced off because another daemon took the
//! recipient over returns `Ok`; the runner goes on with its batch and that
//! daemon settles the recipient (sent twice at worst, never lost).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::client::{Connection, RelaySettings, Reply};
use super::dsn;
use crate::clock::now_ms;
use crate::events::email::{BouncedRecipient, EmailEvent};
use crate::smtp::SmtpContext;
use crate::smtp::delivery::store_copies;
use crate::store::queue::{DueMessage, OutboundQueue, QueuedMessage, QueuedRecipient};
use crate::store::{FolderKind, FolderRef, Target};

/// Most messages offered on one connection.
const BATCH: usize = 100;
/// How long to sleep with nothing queued (an enqueue wakes the runner earlier).
const IDLE: Duration = Duration::from_secs(3600);

/// What became of one recipient in an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Sent,
    /// A 4xx or no usable connection: try again later.
    Retry(String),
    /// A 5xx: bounce now.
    Fail {
        status: String,
        reason: String,
    },
}

impl From<&Reply> for Verdict {
    fn from(reply: &Reply) -> Verdict {
        if reply.is_positive() {
            Verdict::Sent
        } else if reply.is_permanent() {
            Verdict::Fail {
                status: reply.status_or_default(),
                reason: reply.to_string(),
            }
        } else {
            Verdict::Retry(reply.to_string())
        }
    }
}

/// The queue runner and everything it needs.
pub struct Runner {
    pub queue: Arc<dyn OutboundQueue>,
    /// The SMTP context: events, our host name (the DSN's reporting MTA) and the
    /// local delivery path DSNs take.
    pub ctx: Arc<SmtpContext>,
    pub relay: Arc<RelaySettings>,
    pub backoff: Backoff,
    pub wake: Arc<Notify>,
}

impl Runner {
    /// Runs until `stop` is cancelled. An attempt cut short by `stop` is tried again
    /// by the next runner (a message may then arrive twice, never not at all).
    pub async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let pass = tokio::select! {
                r = self.pass() => r,
                _ = stop.cancelled() => break,
            };
            let wait = match pass {
                Ok(Some(next)) => {
                    Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0)).min(IDLE)
                }
                Ok(None) => IDLE,
                Err(e) => {
                    tracing::error!(error = %e, "outbound queue: store failure; retrying later");
                    self.backoff.initial
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // A batch cut short by the stop: another daemon may take it now.
        match self.queue.release_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recipients = n, "outbound queue: leases given back at stop"),
            Err(e) => {
                tracing::warn!(error = %e, "outbound queue: leases not given back; they expire")
            }
        }
    }

    /// Delivers everything due; returns the next scheduled attempt.
    async fn pass(&self) -> crate::store::Result<Option<i64>> {
        loop {
            let due = self.queue.due(now_ms(), BATCH).await?;
            if due.is_empty() {
                return self.queue.next_attempt_ms().await;
            }
            self.batch(due).await?;
        }
    }

    /// One connection for a batch of due messages.
    async fn batch(&self, due: Vec<DueMessage>) -> crate::store::Result<()> {
        let mut conn = Connection::open(self.relay.clone())
            .await
            .map_err(|e| e.to_string());
        for DueMessage {
            message,
            recipients,
        } in due
        {
            let body = self.queue.queued_body(message.id).await?;
            let verdicts: Vec<Verdict> = match &mut conn {
                Ok(c) => {
                    let to: Vec<String> = recipients.iter().map(|r| r.recipient.clone()).collect();
                    match c.send(&message.sender, &to, &body).await {
                        Ok(replies) => replies.iter().map(Verdict::from).collect(),
                        Err(e) => {
                            let e = e.to_string();
                            conn = Err(e.clone());
                            vec![Verdict::Retry(e); recipients.len()]
                        }
                    }
                }
                Err(e) => vec![Verdict::Retry(e.clone()); recipients.len()],
            };
            for (r, v) in recipients.iter().zip(verdicts) {
                self.settle(&message, r, v, &body).await?;
            }
        }
        if let Ok(c) = conn {
            c.quit().await;
        }
        Ok(())
    }

    async fn settle(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
        verdict: Verdict,
        body: &[u8],
    ) -> crate::store::Result<()> {
        match verdict {
            Verdict::Sent => {
                self.queue.finish_recipient(r.id).await?;
                self.ctx.events.email_in(
                    &m.owner_org,
                    &m.trace_id,
                    EmailEvent::OutgoingEmailSent {
                        recipient: r.recipient.clone(),
                        sender: m.on_behalf_of.clone(),
                        from: if m.from_header.is_empty() {
                            m.sender.clone()
                        } else {
                            m.from_header.clone()
                        },
                        message_id: m.message_id.clone(),
                    },
                );
                Ok(())
            }
            Verdict::Retry(error) => {
                let failures = r.attempts.saturating_add(1);
                match self
                    .backoff
                    .next_attempt_ms(failures, m.enqueued_ms, now_ms())
                {
                    Some(next) => {
                        tracing::info!(recipient = %r.recipient, attempt = failures, error = %error, "outbound: deferred");
                        self.queue.defer_recipient(r.id, next, error).await
                    }
                    None => {
                        let reason = format!(
                            "Delivery time expired after {} attempts; last error: {error}",
                            failures
                        );
                        self.bounce(m, r, "4.4.7", &reason, body).await
                    }
                }
            }
            Verdict::Fail { status, reason } => self.bounce(m, r, &status, &reason, body).await,
        }
    }

    /// The event, the DSN in the sender's Inbox (unless NOTIFY said otherwise),
    /// then the row goes: a crash in between repeats the DSN rather than losing it.
    async fn bounce(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
        status: &str,
        reason: &str,
        body: &[u8],
    ) -> crate::store::Result<()> {
        self.ctx.events.email_in(
            &m.owner_org,
            &m.trace_id,
            EmailEvent::OutgoingEmailBounced {
                bounced_recipient: BouncedRecipient {
                    email_address: r.recipient.clone(),
                    reason: reason.to_string(),
                    status: status.to_string(),
                },
                destination: self.relay.host.clone(),
                reason: reason.to_string(),
            },
        );
        if r.notify_failure {
            self.file_dsn(m, r, status, reason, body).await?;
        }
        self.queue.finish_recipient(r.id).await
    }

    async fn file_dsn(
        &self,
        m: &QueuedMessage,
        r: &QueuedRecipient,
        status: &str,
        reason: &str,
        body: &[u8],
    ) -> crate::store::Result<()> {
        let failure = dsn::Failure {
            reporting_mta: &self.ctx.hostname,
            remote_mta: &self.relay.host,
            sender: &m.sender,
            envelope_id: m.envelope_id.as_deref(),
            recipient: &r.recipient,
            status,
            diagnostic: reason,
            arrival_ms: m.enqueued_ms,
        };
        match dsn::build(&failure, body, now_ms() / 1000) {
            Ok(report) => {
                let target = Target {
                    folder: FolderRef::Kind(m.owner_mailbox.clone(), FolderKind::Inbox),
                    flags: vec![],
                    properties: Vec::new(),
                };
                let owners = [m.owner_org.as_str()];
                let stored = store_copies(
                    &self.ctx,
                    Arc::from(report),
                    now_ms(),
                    vec![target],
                    &owners,
                    None,
                    None,
                )
                .await?;
                if let Some(Err(refused)) = stored.first() {
                    tracing::warn!(mailbox = %m.owner_mailbox, %refused, "outbound: the DSN could not be filed");
                }
            }
            Err(e) => tracing::error!(error = %e, "outbound: cannot build a DSN"),
        }
        Ok(())
    }
}

//! SMTP: the MX listener (mail for the organizations' domains, no relaying) and the
//! submission listeners (587 with STARTTLS required before AUTH, 465 implicit TLS),
//! with local delivery that answers 250 only once the message is durable in every
//! recipient mailbox.
//!
//! `session` is the protocol state machine, `reader` frames input, `message` reads
//! and adds headers, `delivery` stores and emits the events, `queue` relays mail for
//! other domains to the smarthost. Command lines are parsed by smtp-proto. Decisions
//! come from `access`, data goes to `store`; it never touches SQL, `server` or
//! another protocol.

pub mod body;
pub mod delivery;
pub mod delivery_events;
mod dns;
pub mod message;
pub mod queue;
pub mod reader;
pub mod sender_auth;
mod session;
pub mod start;
mod submit;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::access::login::Authenticator;
use crate::directory::Directory;
use crate::events::Events;
use crate::net::listener::{Protocol, Session};
use crate::net::rate::RateLimiter;
use crate::store::{Quota, Store};

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Port 25: inbound mail for local domains; no AUTH.
    Mx,
    /// Port 587: AUTH required, and only after STARTTLS.
    Submission,
    /// Port 465: AUTH required; TLS from the first byte.
    Submissions,
}

impl Flavor {
    fn is_submission(self) -> bool {
        self != Flavor::Mx
    }
}

/// SMTP limits from the config.
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Errors tolerated before the session is closed with 421.
    pub max_errors: u32,
    /// MX messages per minute per client IP (0: no limit).
    pub message_rate_per_ip: u32,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    /// Memory for message data in flight, shared by every session; beyond it, disk.
    pub body_budget: Arc<body::BodyBudget>,
}

/// What every SMTP session shares.
pub struct SmtpContext {
    pub hostname: String,
    pub store: Arc<dyn Store>,
    pub directory: Arc<Directory>,
    pub auth: Arc<Authenticator>,
    pub events: Events,
    pub limits: SmtpLimits,
    /// The outbound queue when `[smtp.relay]` is configured; without it,
    /// submission refuses remote recipients.
    pub outbound: Option<Arc<queue::Outbound>>,
    /// `limits.message_rate_per_ip` applied to MX transactions.
    pub mx_rate: RateLimiter,
    /// SPF, DKIM and DMARC of MX mail.
    pub sender_auth: sender_auth::SenderAuth,
    /// Quotas read for RCPT's full-mailbox check, by mailbox, with when read.
    pub quota_hints: DashMap<String, (Instant, Quota)>,
}

/// How long RCPT trusts a quota it read. The check at RCPT only spares the client
/// a DATA that would bounce; the store enforces the quota exactly, in the
/// delivering transaction (then a DSN tells the sender), so a second-old figure is
/// good enough and saves a store read per recipient under load.
const QUOTA_HINT_TTL: Duration = Duration::from_secs(1);

impl SmtpContext {
    /// The mailbox's quota as read within the last second; `None` when the
    /// store cannot tell (no mailbox yet).
    pub async fn recent_quota(&self, mailbox: &str) -> Option<Quota> {
        if let Some(hint) = self.quota_hints.get(mailbox)
            && hint.0.elapsed() < QUOTA_HINT_TTL
        {
            return Some(hint.1);
        }
        let quota = self.store.quota(mailbox).await.ok()?;
        if self.quota_hints.len() >= 10_000 {
            self.quota_hints
                .retain(|_, h| h.0.elapsed() < QUOTA_HINT_TTL);
        }
        self.quota_hints
            .insert(mailbox.to_string(), (Instant::now(), quota));
        Some(quota)
    }

    /// The quota a mailbox is created with: the directory's figure (MB).
    pub fn quota_bytes(&self, org: &str, mailbox: &str) -> u64 {
        self.directory.mailbox_quota_bytes(org, mailbox)
    }
}

/// The SMTP protocol on one listener.
pub struct SmtpService {
    pub flavor: Flavor,
    pub ctx: Arc<SmtpContext>,
}

impl Protocol for SmtpService {
    fn busy_reply(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections, try again later\r\n"
    }

    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(session::run(self.flavor, self.ctx.clone(), session))
    }
}

#[cfg(test)]
mod tests;

//! IMAP4rev1 + IMAP4rev2 (RFC 3501, RFC 9051) sessions over the shared store.
//!
//! `content` is pure message logic (structure, sections, search text); the session
//! modules own the protocol state and talk to the store. imap-codec parses commands;
//! `extended` strips the few argument forms it lacks (ESEARCH RETURN, LIST-EXTENDED)
//! and `searchres` replaces the SEARCHRES `$` marker before handing the rest to it.
//! Message analysis comes from `message`, decisions from `access`, data from `store`;
//! it never touches SQL, files, `server` or another protocol.

mod command;
mod compress;
pub mod content;
mod extended;
mod fetch;
mod lexer;
mod mailbox_view;
mod multiappend;
mod names;
mod or_chain;
mod reader;
pub mod recent;
mod response;
mod search;
mod searchres;
mod sequence;
mod session;
mod shared;
pub mod start;
mod subscriptions;
mod uid_runs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::access::login::Authenticator;
use crate::directory::Directory;
use crate::events::Events;
use crate::net::listener::{Protocol, Session};
use crate::store::Store;

/// What every IMAP session shares; built once by `Daemon::start`.
pub struct ImapContext {
    pub hostname: String,
    pub store: Arc<dyn Store>,
    pub directory: Arc<Directory>,
    pub auth: Arc<Authenticator>,
    pub events: Events,
    /// APPENDLIMIT and the largest literal accepted (`limits.max_message_size`).
    pub max_message_size: u32,
    /// Which messages some session has already seen as \Recent.
    pub recent: Arc<recent::RecentClaims>,
    /// Subscriptions to names without a folder (kept by the store's tags).
    pub subscriptions: subscriptions::Orphans,
}

impl ImapContext {
    /// The quota a mailbox is created with: the directory's figure (MB).
    fn quota_bytes(&self, org: &str, user: &str) -> u64 {
        self.directory.mailbox_quota_bytes(org, user)
    }
}

/// The IMAP protocol on one listener (`imap` with STARTTLS, `imaps` implicit TLS).
pub struct ImapService {
    pub ctx: Arc<ImapContext>,
}

impl Protocol for ImapService {
    fn busy_reply(&self) -> &'static [u8] {
        b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
    }

    fn serve(self: Arc<Self>, session: Session) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(session::run(self.ctx.clone(), session))
    }
}

#[cfg(test)]
mod tests;

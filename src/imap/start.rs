//! Builds the IMAP service (the `imap` and `imaps` listeners) from the daemon's
//! shared handles. Owns only this assembly; must not import `server`.

use std::sync::Arc;

use super::{ImapContext, ImapService};
use crate::net::Services;
use crate::shared::Shared;

/// The protocol for the `imap` (STARTTLS) and `imaps` (implicit TLS) listeners.
pub fn services(shared: &Shared) -> Services {
    let config = &shared.config;
    let imap = Arc::new(ImapService {
        ctx: Arc::new(ImapContext {
            hostname: config.server.hostname.clone(),
            store: shared.store.clone(),
            directory: shared.directory.clone(),
            auth: shared.auth.clone(),
            events: shared.events.clone(),
            max_message_size: u32::try_from(config.limits.max_message_size).unwrap_or(u32::MAX),
            recent: Default::default(),
            subscriptions: super::subscriptions::Orphans::new(shared.store.clone()),
        }),
    });
    Services {
        listeners: vec![("imap", imap.clone()), ("imaps", imap)],
        ..Services::default()
    }
}

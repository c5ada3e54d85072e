//! The bundle of handles the daemon builds once at start and hands to every
//! protocol's start function (`smtp::start`, `imap::start`, `admin::start`, later
//! `ews::start`), so protocols get their state without importing `server`.
//!
//! Handles only: no logic lives here, and nothing here may import a protocol or
//! `server`. It sits above `store`, `directory`, `access` and `events` and below
//! the protocols.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::access::AccessEngine;
use crate::access::login::Authenticator;
use crate::config::Config;
use crate::directory::Directory;
use crate::events::{Events, Metrics};
use crate::store::Backend;
use crate::tls::CertResolver;

/// A refusal to start: the operator's to fix (one line naming what and where).
/// Exit code 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Everything a protocol may need to build its service, built once.
#[derive(Clone)]
pub struct Shared {
    /// The configuration the daemon started with.
    pub config: Arc<Config>,
    /// The message store (also the directory's and access engine's backend).
    pub store: Arc<dyn Backend>,
    /// Organizations, users, groups, aliases.
    pub directory: Arc<Directory>,
    /// Access control rules and impersonation roles.
    pub access: Arc<AccessEngine>,
    /// Password logins with their access-rule check and audit events.
    pub auth: Arc<Authenticator>,
    /// Email and audit event sinks.
    pub events: Events,
    /// The daemon's metrics registry.
    pub metrics: Arc<Metrics>,
    /// The listeners' certificates (hot-reloaded on SIGHUP).
    pub resolver: Arc<CertResolver>,
    /// Cancelled when the daemon starts draining: background work stops.
    pub draining: CancellationToken,
}

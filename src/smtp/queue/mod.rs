//! The outbound half of SMTP: mail that submission accepted for other domains waits
//! in a persistent queue in the store and a runner task relays it to the configured
//! smarthost, retrying with exponential backoff, and bouncing with a DSN into the
//! sender's Inbox when the smarthost refuses or the lifetime runs out.
//!
//! `backoff` is the schedule, `client` the SMTP client, `dsn` the bounce message,
//! `runner` the task that ties them to the store and the events.

pub mod backoff;
pub mod client;
pub mod dsn;
mod runner;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use backoff::Backoff;
pub use client::RelaySettings;
pub use runner::Runner;

use crate::config::{RelaySection, TlsMode};
use crate::store::queue::OutboundQueue;
use crate::tls::TlsError;

/// Why `[smtp.relay]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueConfigError {
    /// TLS to the smarthost is on but no CA names whom to trust.
    #[error("smtp.relay.ca: required with TLS")]
    CaRequired,
    /// The CA file cannot be read or holds no usable certificate.
    #[error(transparent)]
    Ca(#[from] TlsError),
}

/// What submission needs to queue a message: the queue and the runner's bell
/// (rung after each enqueue).
pub struct Outbound {
    pub queue: Arc<dyn OutboundQueue>,
    pub wake: Arc<Notify>,
}

/// The smarthost settings and retry policy from `[smtp.relay]`; `ca` is the
/// resolved CA path. Errors name the config key.
pub fn relay_settings(
    relay: &RelaySection,
    ca: Option<&Path>,
    hello: &str,
    command_timeout: Duration,
    data_timeout: Duration,
) -> Result<(RelaySettings, Backoff), QueueConfigError> {
    let connector = match (relay.tls, ca) {
        (TlsMode::None, _) => None,
        (_, Some(path)) => Some(connector(path)?),
        (_, None) => return Err(QueueConfigError::CaRequired),
    };
    let settings = RelaySettings {
        host: relay.host.clone(),
        port: relay.port,
        tls: relay.tls,
        connector,
        auth: relay.username.clone().zip(relay.password.clone()),
        hello: hello.to_string(),
        command_timeout,
        data_timeout,
    };
    let backoff = Backoff {
        initial: Duration::from_secs(relay.retry_initial_secs),
        max: Duration::from_secs(relay.retry_max_secs),
        lifetime: Duration::from_secs(relay.lifetime_secs),
    };
    Ok((settings, backoff))
}

/// A TLS connector that trusts exactly the certificates in the PEM file at `path`
/// (`smtp.relay.ca`).
pub fn connector(path: &Path) -> Result<tokio_rustls::TlsConnector, TlsError> {
    crate::tls::connector_trusting(path, "smtp.relay.ca")
}

#[cfg(test)]
mod tests;

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

/// What submission needs to queue a message: the queue and the runner's bell
/// (rung after each enqueue).
pub struct Outbound {
    pub queue: Arc<dyn OutboundQueue>,
    pub wake: Arc<Notify>,
}

/// The smarthost settings and retry policy from `[smtp.relay]`; `ca` is the
/// resolved CA path. Errors name the config key.
pub fn from_config(
    relay: &RelaySection,
    ca: Option<&Path>,
    hello: &str,
    command_timeout: Duration,
    data_timeout: Duration,
) -> Result<(RelaySettings, Backoff), String> {
    let connector = match (relay.tls, ca) {
        (TlsMode::None, _) => None,
        (_, Some(path)) => Some(connector(path)?),
        (_, None) => return Err("smtp.relay.ca: required with TLS".into()),
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

/// A TLS connector that trusts exactly the certificates in the PEM file at `path`.
pub fn connector(path: &Path) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let where_ = |e: &dyn std::fmt::Display| format!("smtp.relay.ca ({}): {e}", path.display());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| where_(&e))? {
        roots
            .add(cert.map_err(|e| where_(&e))?)
            .map_err(|e| where_(&e))?;
    }
    if roots.is_empty() {
        return Err(where_(&"no certificates in the file"));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests;

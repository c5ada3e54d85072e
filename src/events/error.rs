//! The events module's one error type. Messages name the sink or config key that
//! failed, as operators read them in the start-up refusal or the reload log line.

use crate::tls::TlsError;

/// Why a sink could not be configured, started or fed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// `[events]` is invalid; the message names the key (`events.sinks ("x").url: …`).
    #[error("{0}")]
    Config(String),
    /// A sink's writer could not be opened (file, spool, runtime); names the sink.
    #[error("{0}")]
    Sink(String),
    /// The CA file of an https sink is unusable; names the file.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An HTTP receiver was not reached, timed out, or refused a batch.
    #[error("{0}")]
    Delivery(String),
    /// The reload thread could not run.
    #[error("{0}")]
    Reload(String),
}

//! What admin actions act on, and the glue they share: running blocking directory
//! and access calls off the async threads, mapping module errors to AWS error
//! types, and the wire form of timestamps and ARNs.

use std::sync::Arc;

use super::error::ApiError;
use crate::access::{AccessEngine, AccessError};
use crate::directory::{Directory, DirectoryError};
use crate::store::{Backend, StoreError};

/// Most tags one resource may carry (WorkMail's limit).
pub const MAX_TAGS: usize = 50;

/// The daemon state the admin API drives.
pub struct AdminState {
    /// Organizations, entities, domains, permissions.
    pub directory: Arc<Directory>,
    /// Access control rules and impersonation roles.
    pub access: Arc<AccessEngine>,
    /// Mailboxes (quota, size) and tags.
    pub store: Arc<dyn Backend>,
    /// The event sinks, for the email monitoring configuration's routing.
    pub events: crate::events::Events,
    /// Mailbox export jobs (Start/Describe/List/CancelMailboxExportJob).
    pub exports: Arc<crate::export::ExportJobs>,
    /// The access keys requests are signed with, and their rotations.
    pub secrets: Arc<dyn super::keys::AdminSecrets>,
    /// ARN region (`admin.region`).
    pub region: String,
    /// ARN account (`admin.account`).
    pub account: String,
}

impl AdminState {
    /// Runs a blocking call (argon2, fsync) on the blocking pool, so the async
    /// threads keep serving other connections.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AdminState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| internal(format!("admin task failed: {e}")))?
    }

    /// The organization's ARN, the key tags are stored under.
    pub fn org_arn(&self, org_id: &str) -> String {
        crate::access::arn::org_arn(&self.region, &self.account, org_id)
    }
}

/// A server-side failure: AWS's generic `InternalFailure`, HTTP 500.
pub fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new("InternalFailure", 500, message)
}

/// Epoch milliseconds to the epoch seconds (a JSON number) AWS JSON 1.1 uses for timestamps.
pub fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> ApiError {
        ApiError::workmail(e.aws_type(), e.message())
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        ApiError::new(e.aws_type(), e.http_status(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    /// An unreachable shared store is AWS's retryable `ServiceUnavailable`
    /// (boto3 and the AWS CLI retry it); anything else a server failure.
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(_) => ApiError::new("ServiceUnavailable", 503, e.to_string()),
            other => internal(other.to_string()),
        }
    }
}

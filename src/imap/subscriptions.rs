//! Subscriptions to names that have no folder (RFC 9051 6.3.7: a subscription is
//! to a name, and DELETE does not end it; SUBSCRIBE may name a mailbox that
//! does not exist). A folder's own subscription is its `subscribed` flag in the
//! store; the names without a folder are kept as tags of one synthetic ARN per
//! mailbox (the store's place for small per-key settings), key = folder name.

use std::sync::Arc;

use crate::store::{Result, StoreError, Tags};

/// At most this many subscriptions to names without a folder per mailbox.
const MAX_ORPHANS: usize = 1000;

/// The ARN under which a mailbox's subscriptions to absent names are kept.
fn arn(mailbox_id: &str) -> String {
    format!("arn:mailgate:imap:subscriptions:{mailbox_id}")
}

/// Subscriptions to names without a folder, per mailbox.
#[derive(Clone)]
pub struct Orphans {
    tags: Arc<dyn Tags>,
}

impl Orphans {
    /// Orphan subscriptions kept in `tags`.
    pub fn new(tags: Arc<dyn Tags>) -> Orphans {
        Orphans { tags }
    }

    /// The subscribed names of `mailbox_id` that have no folder, sorted.
    pub async fn list(&self, mailbox_id: &str) -> Result<Vec<String>> {
        let (tags, arn) = (self.tags.clone(), arn(mailbox_id));
        let found = blocking(move || tags.tags_blocking(&arn)).await?;
        Ok(found.into_iter().map(|(k, _)| k).collect())
    }

    /// Subscribes `name`, which has no folder; false when the mailbox already
    /// holds the most such subscriptions allowed.
    pub async fn add(&self, mailbox_id: &str, name: &str) -> Result<bool> {
        let (tags, arn) = (self.tags.clone(), arn(mailbox_id));
        let tag = vec![(name.to_string(), String::new())];
        blocking(move || tags.tag_blocking(&arn, tag, MAX_ORPHANS)).await
    }

    /// Ends the subscription to `name` (no error when there is none).
    pub async fn remove(&self, mailbox_id: &str, name: &str) -> Result<()> {
        let (tags, arn) = (self.tags.clone(), arn(mailbox_id));
        let keys = vec![name.to_string()];
        blocking(move || tags.untag_blocking(&arn, keys)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(format!("subscriptions task: {e}")))?
}

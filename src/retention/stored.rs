//! Where an organization's policy lives: one tag, `policy`, holding the policy's
//! JSON, under the pseudo-ARN `mailgate:retention-policy/<organization id>` in
//! the store's tag table (as email monitoring keeps its configuration). One key
//! makes a Put one durable write, and the table already exists in every backend
//! and in the conformance suite; the pseudo-ARN is no organization ARN, so
//! ListTagsForResource never shows it.

use super::policy::RetentionPolicy;
use crate::store::{StoreError, Tags};

const KEY: &str = "policy";

fn arn(org: &str) -> String {
    format!("mailgate:retention-policy/{org}")
}

/// The organization's policy, if one is set. Blocking.
pub fn load<T: Tags + ?Sized>(tags: &T, org: &str) -> Result<Option<RetentionPolicy>, StoreError> {
    let Some((_, json)) = tags
        .tags_blocking(&arn(org))?
        .into_iter()
        .find(|(k, _)| k == KEY)
    else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| StoreError::Io(format!("retention policy of {org} is unreadable: {e}")))
}

/// Sets or replaces the organization's policy. Blocking; durable on return.
pub fn save<T: Tags + ?Sized>(
    tags: &T,
    org: &str,
    policy: &RetentionPolicy,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(policy).map_err(|e| StoreError::Io(e.to_string()))?;
    tags.tag_blocking(&arn(org), vec![(KEY.into(), json)], 1)?;
    Ok(())
}

/// Removes the organization's policy (a no-op when none is set). Blocking.
pub fn remove<T: Tags + ?Sized>(tags: &T, org: &str) -> Result<(), StoreError> {
    tags.untag_blocking(&arn(org), vec![KEY.into()])
}

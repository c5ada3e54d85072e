//! The tag (key-value) contract: resource tags of the admin API (TagResource,
//! ListTagsForResource, UntagResource) and small per-key settings stored as tags
//! under a synthetic ARN. Owns only the interface; backends implement it.

use super::Result;

/// The synthetic keys whose tags are records written often (mailbox export
/// jobs' progress) that no daemon caches: on a shared store their writes move
/// no version and tell no other daemon (settings kept as tags, like email
/// monitoring, do both).
pub const RECORDS_PREFIX: &str = "mailgate:mailbox-export/";

/// Whether other daemons cache what is kept under `arn` (see [`RECORDS_PREFIX`]).
pub fn cached(arn: &str) -> bool {
    !arn.starts_with(RECORDS_PREFIX)
}

/// One tag: key and value.
pub type Tag = (String, String);

/// Tags keyed by ARN. Blocking calls, for the admin API's blocking pool; writes
/// are durable when they return.
pub trait Tags: Send + Sync {
    /// The tags of `arn`, sorted by key.
    fn tags_blocking(&self, arn: &str) -> Result<Vec<Tag>>;
    /// Adds or overwrites tags of `arn` in one transaction. Returns false, and
    /// changes nothing, when `arn` would then carry more than `max` tags.
    fn tag_blocking(&self, arn: &str, tags: Vec<Tag>, max: usize) -> Result<bool>;
    /// Writes `tags` of `arn` (overwriting, no limit) only if its tag `guard`
    /// holds `expected` (`None`: `arn` has no such tag), in one transaction; returns
    /// whether it wrote. A compare-and-set for records kept as tags that several
    /// daemons sharing the store update (export jobs): a writer that lost the
    /// race reads again instead of overwriting.
    fn tag_if_blocking(
        &self,
        arn: &str,
        guard: &str,
        expected: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<bool>;
    /// Removes the given keys from `arn` (unknown keys are ignored).
    fn untag_blocking(&self, arn: &str, keys: Vec<String>) -> Result<()>;
}

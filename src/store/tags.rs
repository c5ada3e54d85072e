//! The tag (key-value) contract: resource tags of the admin API (TagResource,
//! ListTagsForResource, UntagResource) and small per-key settings stored as tags
//! under a synthetic ARN. Owns only the interface; backends implement it.

use super::Result;

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

//! [`Tags`] on PostgreSQL (table `tags`, keyed by ARN).
//!
//! The calls are blocking (the admin API runs them on tokio's blocking pool):
//! each blocks on the runtime of the calling thread (`blocking::block_on`, as
//! the directory's calls do), whose pooled connections it uses; a call from a
//! thread outside any runtime answers an error instead.
//!
//! Every write of cached tags moves the `tags` version row, which daemons
//! caching settings kept as tags (email monitoring) poll; records kept as
//! tags that nobody caches (`store::tags::RECORDS_PREFIX`) move nothing.
//!
//! The tag limit is checked in the writing transaction, under a transaction
//! advisory lock per ARN, so two daemons tagging one resource at once cannot
//! together pass it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::blocking::block_on;
use super::ops::{Sql, execute, query};
use super::versions::{self, Kind};
use super::{MAX_RETRIES, Op, OpError, PgStore, Touched, backoff};
use crate::store::rules::tags_fit;
use crate::store::tags::cached;
use crate::store::{Result, Tag, Tags};

/// The first key of the advisory locks taken per ARN ("tags" in ASCII); the
/// second is the ARN's hash. Two-key locks never meet the one-key migration lock.
const TAG_LOCK: i32 = 0x7461_6773;

async fn load(tx: &dyn Sql, arn: &str) -> Op<Vec<Tag>> {
    let rows = query(
        tx,
        "SELECT key, value FROM tags WHERE arn = $1 ORDER BY key COLLATE \"C\"",
        &[&arn],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Serializes the writes of one ARN's tags for the rest of the transaction.
async fn lock(tx: &dyn Sql, arn: &str) -> Op<()> {
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&TAG_LOCK, &arn],
    )
    .await?;
    Ok(())
}

/// Adds or overwrites `tags` (the last value of a key given twice wins) unless
/// `arn` would then carry more than `max`; returns whether it did.
async fn tag(tx: &dyn Sql, arn: &str, tags: &[Tag], max: usize) -> Op<(bool, Touched)> {
    lock(tx, arn).await?;
    let existing: Vec<String> = load(tx, arn).await?.into_iter().map(|(k, _)| k).collect();
    if !tags_fit(&existing, tags, max) {
        return Ok((false, Touched::new()));
    }
    upsert(tx, arn, tags).await?;
    Ok((true, Touched::new()))
}

/// Writes `tags` if `arn`'s tag `guard` holds `expected`; returns whether it did.
async fn tag_if(
    tx: &dyn Sql,
    arn: &str,
    guard: &str,
    expected: Option<&str>,
    tags: &[Tag],
) -> Op<(bool, Touched)> {
    lock(tx, arn).await?;
    let held = query(
        tx,
        "SELECT value FROM tags WHERE arn = $1 AND key = $2",
        &[&arn, &guard],
    )
    .await?;
    let held: Option<String> = held.first().map(|r| r.get(0));
    if held.as_deref() != expected {
        return Ok((false, Touched::new()));
    }
    upsert(tx, arn, tags).await?;
    Ok((true, Touched::new()))
}

/// Moves the `tags` version for a write of `arn` that other daemons cache.
async fn moved(tx: &dyn Sql, arn: &str) -> Op<()> {
    if cached(arn) {
        versions::bump(tx, Kind::Tags).await?;
    }
    Ok(())
}

/// Adds or overwrites `tags` of `arn` and moves the `tags` version.
async fn upsert(tx: &dyn Sql, arn: &str, tags: &[Tag]) -> Op<()> {
    let latest: BTreeMap<&str, &str> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let keys: Vec<&str> = latest.keys().copied().collect();
    let values: Vec<&str> = latest.values().copied().collect();
    execute(
        tx,
        "INSERT INTO tags (arn, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
         ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
        &[&arn, &keys, &values],
    )
    .await?;
    moved(tx, arn).await
}

async fn untag(tx: &dyn Sql, arn: &str, keys: &[String]) -> Op<((), Touched)> {
    execute(
        tx,
        "DELETE FROM tags WHERE arn = $1 AND key = ANY($2)",
        &[&arn, &keys],
    )
    .await?;
    moved(tx, arn).await?;
    Ok(((), Touched::new()))
}

impl Tags for PgStore {
    fn tags_blocking(&self, arn: &str) -> Result<Vec<Tag>> {
        block_on(async { read_tx!(self, |tx| load(&tx, arn)) })?
    }

    fn tag_blocking(&self, arn: &str, tags: Vec<Tag>, max: usize) -> Result<bool> {
        let done = block_on(async { write_tx!(self, |tx| tag(&tx, arn, &tags, max)) })??;
        if done {
            self.told(arn);
        }
        Ok(done)
    }

    fn tag_if_blocking(
        &self,
        arn: &str,
        guard: &str,
        expected: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<bool> {
        let done =
            block_on(async { write_tx!(self, |tx| tag_if(&tx, arn, guard, expected, &tags)) })??;
        if done {
            self.told(arn);
        }
        Ok(done)
    }

    fn untag_blocking(&self, arn: &str, keys: Vec<String>) -> Result<()> {
        block_on(async { write_tx!(self, |tx| untag(&tx, arn, &keys)) })??;
        self.told(arn);
        Ok(())
    }
}

impl PgStore {
    /// Tells the other daemons that tags they cache (settings such as email
    /// monitoring) changed.
    fn told(&self, arn: &str) {
        if cached(arn) {
            self.publish_state(crate::store::StateChange::Tags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocking call from a thread with no runtime is an error naming the
    /// fix, not a panic (no database needed: it fails before connecting).
    #[test]
    fn a_call_outside_a_runtime_is_an_error() {
        let settings = super::super::Settings {
            url: "postgres://nobody@127.0.0.1:1/none".into(),
            pool_size: 1,
        };
        let store = PgStore::with_pool(&settings).unwrap();
        let e = store.tags_blocking("arn").unwrap_err().to_string();
        assert!(e.contains("outside a tokio runtime"), "{e}");
        let e = store
            .tag_blocking("arn", vec![("k".into(), "v".into())], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokio runtime"), "{e}");
    }
}

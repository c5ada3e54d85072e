//! Resource tags (TagResource / ListTagsForResource / UntagResource), keyed by
//! ARN. Blocking calls for the admin API's blocking pool; writes go through the
//! group-committing writer like every other write.

use rusqlite::{Connection, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::store::Result;

/// One tag: key and value.
pub type Tag = (String, String);

fn load(c: &Connection, arn: &str) -> Result<Vec<Tag>> {
    let mut st = c.prepare("SELECT key, value FROM tags WHERE arn = ?1 ORDER BY key")?;
    let rows = st.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl SqliteStore {
    /// The tags of `arn`, sorted by key.
    pub fn tags_blocking(&self, arn: &str) -> Result<Vec<Tag>> {
        self.read_blocking(|c| load(c, arn))
    }

    /// Adds or overwrites tags of `arn` in one transaction. Returns false, and
    /// changes nothing, when `arn` would then carry more than `max` tags.
    pub fn tag_blocking(&self, arn: &str, tags: Vec<Tag>, max: usize) -> Result<bool> {
        let arn = arn.to_string();
        self.write_blocking(move |c| {
            let mut keys: std::collections::BTreeSet<String> =
                load(c, &arn)?.into_iter().map(|(k, _)| k).collect();
            keys.extend(tags.iter().map(|(k, _)| k.clone()));
            if keys.len() > max {
                return Ok((false, vec![]));
            }
            for (k, v) in &tags {
                c.execute_cached(
                    "INSERT INTO tags (arn, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
                    params![arn, k, v],
                )?;
            }
            Ok((true, vec![]))
        })
    }

    /// Removes the given keys from `arn` (unknown keys are ignored).
    pub fn untag_blocking(&self, arn: &str, keys: Vec<String>) -> Result<()> {
        let arn = arn.to_string();
        self.write_blocking(move |c| {
            for k in &keys {
                c.execute_cached(
                    "DELETE FROM tags WHERE arn = ?1 AND key = ?2",
                    params![arn, k],
                )?;
            }
            Ok(((), vec![]))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn tags_are_set_overwritten_limited_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(
            store
                .tag_blocking("a", vec![t("x", "1"), t("y", "2")], 3)
                .unwrap()
        );
        assert!(store.tag_blocking("a", vec![t("x", "3")], 3).unwrap());
        assert!(
            !store
                .tag_blocking("a", vec![t("p", "1"), t("q", "1")], 3)
                .unwrap()
        );
        assert_eq!(
            store.tags_blocking("a").unwrap(),
            vec![t("x", "3"), t("y", "2")]
        );
        store
            .untag_blocking("a", vec!["x".into(), "nope".into()])
            .unwrap();
        assert_eq!(store.tags_blocking("a").unwrap(), vec![t("y", "2")]);
        assert!(store.tags_blocking("b").unwrap().is_empty());
    }
}

//! [`Tags`] on SQLite: table `tags`, keyed by ARN. Reads on the reader pool;
//! writes go through the group-committing writer like every other write.

use rusqlite::{Connection, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::store::rules::tags_fit;
use crate::store::{Result, Tag, Tags};

fn load(c: &Connection, arn: &str) -> Result<Vec<Tag>> {
    let mut st = c.prepare("SELECT key, value FROM tags WHERE arn = ?1 ORDER BY key")?;
    let rows = st.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Tags for SqliteStore {
    fn tags_blocking(&self, arn: &str) -> Result<Vec<Tag>> {
        self.read_blocking(|c| load(c, arn))
    }

    fn tag_blocking(&self, arn: &str, tags: Vec<Tag>, max: usize) -> Result<bool> {
        let arn = arn.to_string();
        self.write_blocking(move |c| {
            let existing: Vec<String> = load(c, &arn)?.into_iter().map(|(k, _)| k).collect();
            if !tags_fit(&existing, &tags, max) {
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

    fn untag_blocking(&self, arn: &str, keys: Vec<String>) -> Result<()> {
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

//! [`Tags`] on SQLite: table `tags`, keyed by ARN. Reads on the reader pool;
//! writes go through the group-committing writer like every other write.

use rusqlite::{Connection, OptionalExtension, params};

use super::cached::CachedSql;

use super::SqliteStore;
use crate::store::rules::tags_fit;
use crate::store::{Result, Tag, Tags};

fn load(c: &Connection, arn: &str) -> Result<Vec<Tag>> {
    let mut st = c.prepare("SELECT key, value FROM tags WHERE arn = ?1 ORDER BY key")?;
    let rows = st.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Adds or overwrites `tags` of `arn`.
fn upsert(c: &Connection, arn: &str, tags: &[Tag]) -> Result<()> {
    for (k, v) in tags {
        c.execute_cached(
            "INSERT INTO tags (arn, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
            params![arn, k, v],
        )?;
    }
    Ok(())
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
            upsert(c, &arn, &tags)?;
            Ok((true, vec![]))
        })
    }

    fn tag_if_blocking(
        &self,
        arn: &str,
        guard: &str,
        expected: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<bool> {
        let (arn, guard) = (arn.to_string(), guard.to_string());
        let expected = expected.map(str::to_string);
        self.write_blocking(move |c| {
            let held: Option<String> = c
                .prepare_cached("SELECT value FROM tags WHERE arn = ?1 AND key = ?2")?
                .query_row(params![arn, guard], |r| r.get(0))
                .optional()?;
            if held != expected {
                return Ok((false, vec![]));
            }
            upsert(c, &arn, &tags)?;
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

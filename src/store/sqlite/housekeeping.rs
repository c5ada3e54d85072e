//! [`Housekeeping`] on SQLite: pruning the change feed (the rule is
//! `store::housekeeping`'s). One daemon owns the file, so there is no shared
//! state and no directory tombstone to prune (deletes remove the row).

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::store::housekeeping::{Housekeeping, prune_through};
use crate::store::{ChangeKind, MailboxId, Result};

#[async_trait]
impl Housekeeping for SqliteStore {
    async fn feed_candidates(&self, keep_latest: usize) -> Result<Vec<String>> {
        let keep = i64::try_from(keep_latest).unwrap_or(i64::MAX);
        self.read(move |c| {
            // One pass over the (mailbox_id, seq) index.
            let mut st = c.prepare_cached(
                "SELECT mailbox_id FROM changes GROUP BY mailbox_id HAVING count(*) > ?1
                 ORDER BY mailbox_id",
            )?;
            let rows = st.query_map([keep], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }

    async fn prune_feed(
        &self,
        mailbox: &MailboxId,
        older_than_ms: i64,
        keep_latest: usize,
        batch: usize,
    ) -> Result<u64> {
        let mailbox = mailbox.to_string();
        self.write(move |c| {
            prune_feed(c, &mailbox, older_than_ms, keep_latest, batch).map(|n| (n, Vec::new()))
        })
        .await
    }
}

/// One batch of [`Housekeeping::prune_feed`] in the writer's transaction.
fn prune_feed(
    c: &Connection,
    mailbox: &str,
    older_than_ms: i64,
    keep_latest: usize,
    batch: usize,
) -> Result<u64> {
    let keep = i64::try_from(keep_latest).unwrap_or(i64::MAX);
    let batch = i64::try_from(batch).unwrap_or(i64::MAX);
    // The newest change beyond the kept latest ones, if any.
    let newest_old: Option<i64> = c
        .prepare_cached(
            "SELECT seq FROM changes WHERE mailbox_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2",
        )?
        .query_map(params![mailbox, keep], |r| r.get(0))?
        .next()
        .transpose()?;
    let Some(newest_old) = newest_old else {
        return Ok(0);
    };
    let oldest: Vec<(i64, i64)> = c
        .prepare_cached(
            "SELECT seq, at_ms FROM changes WHERE mailbox_id = ?1 AND seq <= ?2
             ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![mailbox, newest_old, batch], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let Some(through) = prune_through(&oldest, older_than_ms) else {
        return Ok(0);
    };
    c.prepare_cached(
        "UPDATE folders SET pruned_modseq = max(pruned_modseq, e.modseq)
         FROM (SELECT folder_id, max(modseq) AS modseq FROM changes
               WHERE mailbox_id = ?1 AND seq <= ?2 AND kind = ?3 GROUP BY folder_id) AS e
         WHERE folders.id = e.folder_id",
    )?
    .execute(params![mailbox, through, ChangeKind::Expunged.as_str()])?;
    c.prepare_cached("UPDATE mailboxes SET pruned_seq = max(pruned_seq, ?2) WHERE id = ?1")?
        .execute(params![mailbox, through])?;
    let gone = c
        .prepare_cached("DELETE FROM changes WHERE mailbox_id = ?1 AND seq <= ?2")?
        .execute(params![mailbox, through])?;
    Ok(gone as u64)
}

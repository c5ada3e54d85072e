//! [`Housekeeping`] on PostgreSQL: pruning the change feed (the rule is
//! `store::housekeeping`'s), deleting expired `shared_state` rows, and pruning
//! directory tombstones.
//!
//! A feed prune locks its mailbox row first (the lock order of every write), so
//! the feed it cuts and the `pruned_seq`/`pruned_modseq` it moves change in one
//! commit that readers see whole: `changes_since` and `expunged_since` read the
//! horizon in the same statement as the rows. A tombstone prune deletes
//! tombstones older than the horizon and moves the `directory_pruned` version
//! row to the highest version it deleted, in one commit; `records_since` reads
//! that row with the records, so a reader behind it gets a full load instead of
//! a delta missing deletes.

use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::ops::{execute, lock_mailboxes, query, query_opt};
use super::{MAX_RETRIES, Op, OpError, PgStore, backoff};
use crate::store::housekeeping::{Housekeeping, prune_through};
use crate::store::{ChangeKind, MailboxId, Result};

#[async_trait]
impl Housekeeping for PgStore {
    async fn feed_candidates(&self, keep_latest: usize) -> Result<Vec<String>> {
        let keep = i64::try_from(keep_latest).unwrap_or(i64::MAX);
        // Seqs are dense per mailbox: change_seq - pruned_seq bounds its rows.
        read_tx!(self, |c| async {
            let rows = query(
                &c,
                "SELECT id FROM mailboxes WHERE change_seq - pruned_seq > $1 ORDER BY id",
                &[&keep],
            )
            .await?;
            Ok::<_, OpError>(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    async fn prune_feed(
        &self,
        mailbox: &MailboxId,
        older_than_ms: i64,
        keep_latest: usize,
        batch: usize,
    ) -> Result<u64> {
        let keep = i64::try_from(keep_latest).unwrap_or(i64::MAX);
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let owned = [mailbox.to_string()];
        write_tx!(self, |tx| async {
            if lock_mailboxes(&tx, &owned).await?.is_empty() {
                return Ok((0, Vec::new()));
            }
            let newest_old = query_opt(
                &tx,
                "SELECT seq FROM changes WHERE mailbox_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2",
                &[&mailbox, &keep],
            )
            .await?;
            let Some(newest_old) = newest_old.map(|r| r.get::<_, i64>(0)) else {
                return Ok((0, Vec::new()));
            };
            let oldest: Vec<(i64, i64)> = query(
                &tx,
                "SELECT seq, at_ms FROM changes WHERE mailbox_id = $1 AND seq <= $2
                 ORDER BY seq LIMIT $3",
                &[&mailbox, &newest_old, &batch],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let Some(through) = prune_through(&oldest, older_than_ms) else {
                return Ok((0, Vec::new()));
            };
            execute(
                &tx,
                "UPDATE folders f SET pruned_modseq = GREATEST(f.pruned_modseq, e.modseq)
                 FROM (SELECT folder_id, max(modseq) AS modseq FROM changes
                       WHERE mailbox_id = $1 AND seq <= $2 AND kind = $3 GROUP BY folder_id) e
                 WHERE f.id = e.folder_id",
                &[&mailbox, &through, &ChangeKind::Expunged.as_str()],
            )
            .await?;
            execute(
                &tx,
                "UPDATE mailboxes SET pruned_seq = GREATEST(pruned_seq, $2) WHERE id = $1",
                &[&mailbox, &through],
            )
            .await?;
            let gone = execute(
                &tx,
                "DELETE FROM changes WHERE mailbox_id = $1 AND seq <= $2",
                &[&mailbox, &through],
            )
            .await?;
            Ok::<_, OpError>((gone, Vec::new()))
        })
    }

    async fn delete_expired_shared_state(&self, now_ms: i64, batch: usize) -> Result<u64> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        write_tx!(self, |tx| async {
            let gone = execute(
                &tx,
                "DELETE FROM shared_state WHERE key IN
                     (SELECT key FROM shared_state WHERE expires_ms <= $1 LIMIT $2)",
                &[&now_ms, &batch],
            )
            .await?;
            Ok::<_, OpError>((gone, Vec::new()))
        })
    }

    async fn prune_tombstones(&self, older_than_ms: i64) -> Result<u64> {
        write_tx!(self, |tx| async {
            let rows = query(
                &tx,
                "WITH gone AS (DELETE FROM directory_records
                     WHERE json IS NULL AND COALESCE(deleted_ms, 0) < $1 RETURNING version)
                 UPDATE store_versions SET version = GREATEST(version,
                     (SELECT COALESCE(max(version), 0) FROM gone))
                 WHERE kind = 'directory_pruned'
                 RETURNING (SELECT count(*) FROM gone)",
                &[&older_than_ms],
            )
            .await?;
            let gone = rows.first().map_or(0, |r| r.get::<_, i64>(0));
            Ok::<_, OpError>((u64::try_from(gone).unwrap_or(0), Vec::new()))
        })
    }
}

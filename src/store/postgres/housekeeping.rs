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

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::super::testing::{available, create_database};
    use super::*;
    use crate::directory::{DirectoryBackend, Record, RecordKind, RecordOp};
    use crate::store::shared_state::SharedState;

    async fn store(dir: &std::path::Path) -> PgStore {
        let url = create_database(dir).await;
        PgStore::open(&Settings { url, pool_size: 2 })
            .await
            .unwrap()
    }

    fn token(id: &str) -> RecordOp {
        RecordOp::Put(Record {
            kind: RecordKind::PersonalAccessToken,
            id: id.into(),
            org_id: "o".into(),
            json: format!("{{\"id\":\"{id}\"}}"),
        })
    }

    fn gone(id: &str) -> RecordOp {
        RecordOp::Delete {
            kind: RecordKind::PersonalAccessToken,
            id: id.into(),
        }
    }

    fn ids(records: &[Record]) -> Vec<&str> {
        let mut v: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        v.sort();
        v
    }

    /// A reader behind the pruned tombstones gets the whole directory (so it
    /// cannot miss a delete); one at or past them still gets deltas.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_behind_pruned_tombstones_reloads_everything() {
        if !available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        s.apply(vec![token("t1"), token("t2")]).unwrap();
        let behind = s.version().unwrap();
        s.apply(vec![gone("t1")]).unwrap();
        let at_delete = s.version().unwrap();
        s.apply(vec![token("t3")]).unwrap();
        let delta = s.records_since(behind).unwrap();
        assert!(!delta.full);
        assert_eq!(
            delta.deleted,
            vec![(RecordKind::PersonalAccessToken, "t1".into())]
        );

        // A tombstone made just now is younger than a day: kept.
        let day_ago = crate::clock::now_ms() - 86_400_000;
        assert_eq!(s.prune_tombstones(day_ago).await.unwrap(), 0);
        assert!(!s.records_since(behind).unwrap().full);

        let later = crate::clock::now_ms() + 3_600_000;
        assert_eq!(s.prune_tombstones(later).await.unwrap(), 1);
        assert_eq!(s.prune_tombstones(later).await.unwrap(), 0, "nothing left");
        let all = s.records_since(behind).unwrap();
        assert!(all.full, "behind the pruned delete: everything");
        assert_eq!(ids(&all.records), ["t2", "t3"]);
        assert!(all.deleted.is_empty());
        assert_eq!(all.version, s.version().unwrap());
        let delta = s.records_since(at_delete).unwrap();
        assert!(!delta.full, "past the pruned delete: a delta");
        assert_eq!(ids(&delta.records), ["t3"]);
        assert!(s.records_since(0).unwrap().full);
        // A token put again after its tombstone went is live again.
        s.apply(vec![token("t1")]).unwrap();
        assert_eq!(
            ids(&s.records_since(0).unwrap().records),
            ["t1", "t2", "t3"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_shared_state_rows_are_deleted_in_batches() {
        if !available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        // k0..k2 expire at 100, k3 and k4 at 1,000.
        let mut set = |_: &[Option<String>]| {
            (0..5)
                .map(|i| Some(("v".to_string(), if i < 3 { 100 } else { 1000 })))
                .collect()
        };
        s.update_shared(&keys, 0, &mut set).await.unwrap();
        assert_eq!(s.delete_expired_shared_state(50, 10).await.unwrap(), 0);
        assert_eq!(s.delete_expired_shared_state(500, 2).await.unwrap(), 2);
        assert_eq!(s.delete_expired_shared_state(500, 10).await.unwrap(), 1);
        assert_eq!(s.delete_expired_shared_state(500, 10).await.unwrap(), 0);
        let mut seen = Vec::new();
        let mut read = |v: &[Option<String>]| {
            seen = v.to_vec();
            v.iter().map(|_| None).collect()
        };
        s.update_shared(&keys, 500, &mut read).await.unwrap();
        assert_eq!(
            seen.iter().filter(|v| v.is_some()).count(),
            2,
            "k3, k4 live"
        );
    }
}

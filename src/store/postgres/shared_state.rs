//! [`SharedState`] on PostgreSQL: one row per key in `shared_state`, each key
//! locked with a transaction-scoped advisory lock (so a key that has no row yet
//! is locked too), read, rewritten and committed in one transaction. Expired rows
//! read as absent and are swept in small batches now and then.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::ops::Sql;
use super::{MAX_RETRIES, Op, PgStore, backoff};
use crate::store::Result;
use crate::store::shared_state::{SharedState, Update};

/// One sweep of expired rows every this many updates (per daemon), of at most
/// [`SWEEP_ROWS`] rows: the table stays as small as what is live, and no update
/// pays for a large delete.
const SWEEP_EVERY: u64 = 256;
const SWEEP_ROWS: i64 = 500;

/// Updates since this daemon started, for the sweep's turn.
static UPDATES: AtomicU64 = AtomicU64::new(0);

#[async_trait]
impl SharedState for PgStore {
    async fn update_shared(&self, keys: &[String], now_ms: i64, update: Update<'_>) -> Result<()> {
        let mut sorted: Vec<String> = keys.to_vec();
        sorted.sort();
        sorted.dedup();
        let sweep = UPDATES.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
        write_tx!(self, |tx| async {
            rewrite(&tx, keys, &sorted, now_ms, &mut *update).await?;
            if sweep {
                super::ops::execute(
                    &tx,
                    "DELETE FROM shared_state WHERE key IN \
                     (SELECT key FROM shared_state WHERE expires_ms <= $1 LIMIT $2)",
                    &[&now_ms, &SWEEP_ROWS],
                )
                .await?;
            }
            Ok::<_, super::OpError>(((), Vec::new()))
        })
    }
}

/// Locks `sorted` (the keys in one order for every daemon: no deadlock between
/// two updates), reads `keys`, writes what `update` computes.
async fn rewrite(
    tx: &dyn Sql,
    keys: &[String],
    sorted: &[String],
    now_ms: i64,
    update: Update<'_>,
) -> Op<()> {
    for key in sorted {
        super::ops::query(
            tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 19))",
            &[key],
        )
        .await?;
    }
    let rows = super::ops::query(
        tx,
        "SELECT key, value FROM shared_state WHERE key = ANY($1) AND expires_ms > $2",
        &[&keys, &now_ms],
    )
    .await?;
    let current: Vec<Option<String>> = keys
        .iter()
        .map(|k| {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == k)
                .map(|r| r.get::<_, String>(1))
        })
        .collect();
    let new = update(&current);
    for (key, value) in keys.iter().zip(new) {
        match value {
            Some((value, expires_ms)) => {
                super::ops::execute(
                    tx,
                    "INSERT INTO shared_state (key, value, expires_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
                     expires_ms = EXCLUDED.expires_ms",
                    &[key, &value, &expires_ms],
                )
                .await?;
            }
            None => {
                super::ops::execute(tx, "DELETE FROM shared_state WHERE key = $1", &[key]).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::super::PgStore;
    use super::super::store_tests::two_daemons;
    use super::super::testing::available;
    use crate::access::FailurePolicy;
    use crate::access::throttle::Throttle;
    use crate::store::Backend;
    use crate::store::shared_state::SharedState;

    /// Reads `key` at `now` (rewriting it to expire a long while later).
    async fn read(store: &PgStore, key: &str, now: i64) -> Option<String> {
        let mut seen = None;
        let mut keep = |v: &[Option<String>]| {
            seen = v[0].clone();
            vec![v[0].clone().map(|v| (v, now + 1_000_000))]
        };
        store
            .update_shared(&[key.to_string()], now, &mut keep)
            .await
            .unwrap();
        seen
    }

    #[tokio::test]
    async fn values_are_written_expire_and_are_removed() {
        if !available() {
            return;
        }
        let (_dir, a, b) = two_daemons().await;
        let key = ["k".to_string()];
        a.update_shared(&key, 1_000, &mut |v| {
            assert_eq!(v, &[None]);
            vec![Some(("one".into(), 2_000))]
        })
        .await
        .unwrap();
        assert_eq!(read(&b, "k", 2_000).await, None, "expired at 2000");
        a.update_shared(&key, 2_000, &mut |v| {
            assert_eq!(v, &[None]);
            vec![Some(("one".into(), 2_500))]
        })
        .await
        .unwrap();
        assert_eq!(read(&b, "k", 2_499).await.as_deref(), Some("one"));
        a.update_shared(&key, 3_000, &mut |_| vec![Some(("two".into(), 9_000))])
            .await
            .unwrap();
        a.update_shared(&key, 3_001, &mut |_| vec![None])
            .await
            .unwrap();
        assert_eq!(read(&b, "k", 3_002).await, None, "removed");
    }

    /// Two daemons × 4 tasks × 25 read-increment-writes of one key: none lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_from_two_daemons_are_serialized() {
        if !available() {
            return;
        }
        let (_dir, a, b) = two_daemons().await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = if t % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    store
                        .update_shared(&["n".to_string(), "other".to_string()], 1, &mut |v| {
                            let n: u64 = v[0].as_deref().map_or(0, |s| s.parse().unwrap());
                            vec![Some(((n + 1).to_string(), i64::MAX)), None]
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(read(&a, "n", 2).await.as_deref(), Some("200"));
    }

    #[tokio::test]
    async fn a_singleton_job_is_held_by_one_daemon_at_a_time() {
        if !available() {
            return;
        }
        let (_dir, a, b) = two_daemons().await;
        let held = a.singleton("sweep").await.unwrap().expect("free at first");
        assert!(b.singleton("sweep").await.unwrap().is_none(), "held by A");
        assert!(
            b.singleton("another job").await.unwrap().is_some(),
            "jobs are separate"
        );
        drop(held);
        // The lock goes with A's connection, closed in the background.
        let mut taken = None;
        for _ in 0..100 {
            taken = b.singleton("sweep").await.unwrap();
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(taken.is_some(), "B never got the job A let go");
    }

    /// Counts the attempts from one address that the throttles (taken in turn)
    /// admit at one instant, each failing.
    async fn admitted(throttles: &[Throttle], ip: IpAddr) -> usize {
        let mut n = 0;
        for i in 0..40 {
            let t = &throttles[i % throttles.len()];
            let account = format!("name:guess{i}");
            if t.admit(ip, &account, 5_000_000).await.is_ok() {
                n += 1;
                t.record_failure(ip, &account, 5_000_000).await;
            }
        }
        n
    }

    #[tokio::test]
    async fn two_daemons_give_an_address_no_more_guesses_than_one() {
        if !available() {
            return;
        }
        let (_dir, a, b) = two_daemons().await;
        let policy = FailurePolicy::default();
        let one = admitted(
            &[Throttle::local(policy.clone())],
            "192.0.2.1".parse().unwrap(),
        )
        .await;
        let (a, b): (Arc<dyn Backend>, Arc<dyn Backend>) = (a, b);
        let shared = [
            Throttle::for_store(policy.clone(), a),
            Throttle::for_store(policy, b),
        ];
        let two = admitted(&shared, "192.0.2.2".parse().unwrap()).await;
        assert_eq!(one, 5, "the threshold");
        assert_eq!(two, one, "two daemons admitted more guesses than one");
    }

    #[tokio::test]
    async fn an_account_budget_is_shared_too() {
        if !available() {
            return;
        }
        let (_dir, a, b) = two_daemons().await;
        let (a, b): (Arc<dyn Backend>, Arc<dyn Backend>) = (a, b);
        let policy = FailurePolicy::default();
        let burst = policy.burst as usize;
        let shared = [
            Throttle::for_store(policy.clone(), a),
            Throttle::for_store(policy, b),
        ];
        // A new address for every guess: only the account's budget stops them.
        let mut admitted = 0;
        for i in 0..(4 * burst) {
            let ip = IpAddr::from([198, 51, 100, i as u8]);
            let t = &shared[i % 2];
            if t.admit(ip, "user:victim", 7_000_000).await.is_ok() {
                admitted += 1;
                t.record_failure(ip, "user:victim", 7_000_000).await;
            }
        }
        assert_eq!(admitted, burst);
    }
}

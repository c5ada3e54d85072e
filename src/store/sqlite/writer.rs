//! The single writer thread and its group commit.
//!
//! Every write is a closure run on one dedicated connection. The thread takes the
//! first queued write, then everything else already queued (up to `MAX_BATCH`), runs
//! them in one transaction, each inside its own savepoint so one failing write does
//! not spoil its neighbours, commits once (one WAL fsync under `synchronous=FULL`),
//! and only then answers each caller. Under load many writes share one fsync; a lone
//! write pays exactly one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;

use super::cached::CachedSql;

use crate::store::{Result, StoreError};

/// Upper bound on writes per transaction, so one commit never grows without limit.
const MAX_BATCH: usize = 256;

/// Called after the batch's commit with its outcome; sends the caller its answer.
pub(super) type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// A write: runs inside the batch transaction and returns its completion.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// Handle to the writer thread; dropping every handle stops the thread.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// Counters of the writer: how well group commit is batching.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (one WAL fsync each).
    pub commits: AtomicU64,
    /// Writes performed.
    pub writes: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(conn: Connection) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, &thread_stats))?;
        Ok(Writer { jobs: tx, stats })
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Queues a job; `Closed` when the writer is gone.
    pub(super) fn submit(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| StoreError::Closed)
    }
}

/// Runs `op` inside a savepoint: its effects are kept only if it returns `Ok`.
pub(super) fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_cached("SAVEPOINT op", [])?;
    match op(conn) {
        Ok(v) => {
            conn.execute_cached("RELEASE op", [])?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_cached("ROLLBACK TO op", [])?;
            conn.execute_cached("RELEASE op", [])?;
            Err(e)
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, stats: &WriterStats) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_cached("BEGIN IMMEDIATE", []) {
            // Dropping the jobs unanswered makes each caller see a failed write.
            tracing::error!(error = %e, jobs = batch.len(), "store: cannot begin a transaction");
            continue;
        }
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch {
            completions.push(job(&conn));
            #[cfg(test)]
            failpoint::after_op();
        }
        let outcome = conn.execute_cached("COMMIT", []).map(drop).map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "store: commit failed; the batch is rolled back");
            StoreError::Io(format!("commit failed: {e}"))
        });
        if outcome.is_ok() {
            stats.commits.fetch_add(1, Ordering::Relaxed);
        }
        for complete in completions {
            complete(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Io(e.to_string())),
            });
        }
    }
}

/// Test-only crash injection: abort the process after N write ops, mid-batch.
#[cfg(test)]
pub(crate) mod failpoint {
    use std::sync::atomic::{AtomicU64, Ordering};

    static ABORT_AFTER: AtomicU64 = AtomicU64::new(u64::MAX);

    pub fn abort_after(ops: u64) {
        ABORT_AFTER.store(ops, Ordering::SeqCst);
    }

    pub(super) fn after_op() {
        let left = ABORT_AFTER.load(Ordering::SeqCst);
        if left == u64::MAX {
            return;
        }
        if left <= 1 {
            std::process::abort();
        }
        ABORT_AFTER.store(left - 1, Ordering::SeqCst);
    }
}

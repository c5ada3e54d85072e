//! The single writer thread and its group commit.
//!
//! Every write is a job run on one dedicated connection. The thread takes the
//! first queued job, then everything else already queued (up to `MAX_BATCH`), runs
//! them in one transaction, commits once (one WAL fsync under `synchronous=FULL`),
//! and only then answers each caller. Under load many writes share one fsync; a lone
//! write pays exactly one.
//!
//! Jobs run side by side without savepoints: a savepoint per job made SQLite copy
//! every page the job touched into its statement journal first, and the pages a
//! delivery touches (its folder, its mailbox, the right edges of the indexes) are
//! the same for every job of a batch: that copying cost a tenth of the ingest rate.
//! When a job fails, its partial changes must not reach the commit, so the batch is
//! rolled back and run again with one savepoint per job: only the failed job's
//! changes are then undone, and its neighbours commit.
//!
//! Writes that are on their way can be announced (`Writer::expect`): an SMTP
//! session does so from the start of DATA until it submits the delivery. When a
//! batch is assembled while writes are announced, the thread waits up to
//! `LINGER` for as many more jobs as were announced, so they share the fsync. An
//! fsync costs far more than its own wait: each one is a flush request to the
//! disk and a round of sleeps and wake-ups for the writer and every session in
//! the batch. With nothing announced (IMAP flag changes, a lone delivery) a write
//! commits at once. Measured with smtp-source (20 sessions): batches grew from 2.8
//! to 5.3 messages, and mailgate's CPU per message fell from about 233 to 205 µs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::cached::CachedSql;
use crate::store::{ExpectedWrite, Result, StoreError, WriterStats};

/// Upper bound on writes per transaction, so one commit never grows without limit.
const MAX_BATCH: usize = 256;

/// The longest a batch waits for announced writes: the most an announcement can
/// add to a commit's latency (a client stalled mid-DATA costs no more than this).
pub(super) const LINGER: Duration = Duration::from_micros(500);

/// A queued write. It may run twice (see the module comment), so it depends only
/// on the database and its own inputs, and keeps the result of its last run.
pub(super) trait Job: Send {
    /// Runs the write inside the batch transaction; false when it failed.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's commit succeeded (`Ok`) or failed.
    fn answer(self: Box<Self>, commit: Result<()>);
}

/// Handle to the writer thread; dropping every handle stops the thread.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    stats: Arc<WriterStats>,
    /// Writes announced and not yet submitted.
    expected: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the writer thread on `conn`; a batch waits at most `linger` for
    /// announced writes.
    pub(super) fn spawn(conn: Connection, linger: Duration) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(WriterStats::default());
        let expected = Arc::new(AtomicUsize::new(0));
        let (thread_stats, thread_expected) = (stats.clone(), expected.clone());
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, linger, &thread_stats, &thread_expected))?;
        Ok(Writer {
            jobs: tx,
            stats,
            expected,
        })
    }

    /// Announces a write that will be submitted soon.
    pub(super) fn expect(&self) -> ExpectedWrite {
        ExpectedWrite::counted_in(self.expected.clone())
    }

    /// Writes announced and not yet submitted.
    pub(super) fn announced(&self) -> usize {
        self.expected.load(Ordering::Relaxed)
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Queues a job; `Closed` when the writer is gone.
    pub(super) fn submit(&self, job: Box<dyn Job>) -> Result<()> {
        self.jobs.send(job).map_err(|_| StoreError::Closed)
    }
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    linger: Duration,
    stats: &WriterStats,
    expected: &AtomicUsize,
) {
    while let Some(mut batch) = next_batch(&rx, linger, stats, expected) {
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let outcome = commit_batch(&conn, &mut batch, stats).map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, jobs = batch.len(), "store: the batch is rolled back");
            StoreError::Io(format!("commit failed: {e}"))
        });
        if outcome.is_ok() {
            stats.commits.fetch_add(1, Ordering::Relaxed);
        }
        for job in batch {
            job.answer(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Io(e.to_string())),
            });
        }
    }
}

/// The next batch: the first job (waiting for it), everything queued behind it
/// and, while writes are announced, up to that many more arriving within
/// `linger`. `None` once every handle is gone.
fn next_batch(
    rx: &mpsc::Receiver<Box<dyn Job>>,
    linger: Duration,
    stats: &WriterStats,
    expected: &AtomicUsize,
) -> Option<Vec<Box<dyn Job>>> {
    let mut batch = Vec::with_capacity(16);
    batch.push(rx.recv().ok()?);
    batch.extend(rx.try_iter().take(MAX_BATCH - 1));
    let announced = expected.load(Ordering::Relaxed);
    if announced > 0 {
        stats.lingered.fetch_add(1, Ordering::Relaxed);
        // Only the writes announced now: waiting for later announcements too
        // made every batch wait out the whole linger under load.
        let want = (batch.len() + announced).min(MAX_BATCH);
        let deadline = Instant::now() + linger;
        while batch.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }
    Some(batch)
}

/// Runs the batch in one transaction and commits it; on a failed job, runs it
/// again with one savepoint per job.
fn commit_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    stats: &WriterStats,
) -> rusqlite::Result<()> {
    conn.execute_cached("BEGIN IMMEDIATE", [])?;
    let clean = batch.iter_mut().all(|job| {
        let ok = job.run(conn);
        #[cfg(test)]
        failpoint::after_op();
        ok
    });
    if !clean {
        stats.redone.fetch_add(1, Ordering::Relaxed);
        conn.execute_cached("ROLLBACK", [])?;
        conn.execute_cached("BEGIN IMMEDIATE", [])?;
        for job in batch.iter_mut() {
            conn.execute_cached("SAVEPOINT job", [])?;
            if !job.run(conn) {
                conn.execute_cached("ROLLBACK TO job", [])?;
            }
            conn.execute_cached("RELEASE job", [])?;
        }
    }
    conn.execute_cached("COMMIT", [])?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, Sender, channel};

    use super::*;

    /// Inserts `row` into `t`, then fails if told to (after its insert, so the
    /// insert must be undone), or blocks until `gate` opens.
    struct TestJob {
        row: i64,
        fail: bool,
        gate: Option<(Sender<()>, Receiver<()>)>,
        runs: u32,
        answers: Sender<(i64, bool, u32)>,
    }

    impl Job for TestJob {
        fn run(&mut self, conn: &Connection) -> bool {
            if let Some((started, gate)) = self.gate.take() {
                started.send(()).unwrap();
                gate.recv().unwrap();
            }
            self.runs += 1;
            conn.execute("INSERT INTO t VALUES (?1)", [self.row])
                .unwrap();
            !self.fail
        }

        fn answer(self: Box<Self>, commit: Result<()>) {
            let ok = commit.is_ok() && !self.fail;
            self.answers.send((self.row, ok, self.runs)).unwrap();
        }
    }

    #[test]
    fn a_failed_job_is_undone_and_its_neighbours_commit() {
        let (dir, writer) = table_writer(LINGER);
        let reader = Connection::open(dir.path().join("w.sqlite")).unwrap();
        let (answers, answered) = channel();
        let job = |row, fail, gate| {
            Box::new(TestJob {
                row,
                fail,
                gate,
                runs: 0,
                answers: answers.clone(),
            })
        };
        // The first job holds the writer until the next three are queued, so
        // those three share the next batch.
        let (open, gate) = channel();
        let (started, running) = channel();
        writer.submit(job(0, false, Some((started, gate)))).unwrap();
        running.recv().unwrap();
        for (row, fail) in [(1, false), (2, true), (3, false)] {
            writer.submit(job(row, fail, None)).unwrap();
        }
        open.send(()).unwrap();
        let mut got: Vec<(i64, bool, u32)> = (0..4).map(|_| answered.recv().unwrap()).collect();
        got.sort();
        assert_eq!(
            got,
            [(0, true, 1), (1, true, 2), (2, false, 2), (3, true, 1)],
            "1 and 2 ran again with savepoints; 3 only then"
        );
        let rows: Vec<i64> = reader
            .prepare("SELECT row FROM t ORDER BY row")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows, [0, 1, 3], "the failed job's insert was undone");
        assert_eq!(writer.stats().redone.load(Ordering::Relaxed), 1);
        assert_eq!(writer.stats().commits.load(Ordering::Relaxed), 2);
    }

    fn table_writer(linger: Duration) -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.sqlite")).unwrap();
        conn.execute_batch("CREATE TABLE t (row INTEGER)").unwrap();
        (dir, Writer::spawn(conn, linger).unwrap())
    }

    fn plain_job(row: i64, answers: &Sender<(i64, bool, u32)>) -> Box<TestJob> {
        Box::new(TestJob {
            row,
            fail: false,
            gate: None,
            runs: 0,
            answers: answers.clone(),
        })
    }

    #[test]
    fn an_announced_write_shares_the_commit_of_the_write_before_it() {
        // A long linger, so the test does not depend on the machine's speed.
        let (_dir, writer) = table_writer(Duration::from_secs(30));
        let (answers, answered) = channel();
        let coming = writer.expect();
        assert_eq!(writer.announced(), 1);
        writer.submit(plain_job(1, &answers)).unwrap();
        // The first write waits for the announced one...
        assert!(
            answered.recv_timeout(Duration::from_millis(200)).is_err(),
            "committed without waiting for the announced write"
        );
        writer.submit(plain_job(2, &answers)).unwrap();
        drop(coming);
        assert_eq!(writer.announced(), 0);
        // ...and both commit together.
        let mut got: Vec<i64> = (0..2).map(|_| answered.recv().unwrap().0).collect();
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(writer.stats().commits.load(Ordering::Relaxed), 1);
        assert_eq!(writer.stats().lingered.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_announcement_delays_a_commit_by_at_most_the_linger() {
        let (_dir, writer) = table_writer(LINGER);
        let (answers, answered) = channel();
        // Nothing announced: no waiting.
        writer.submit(plain_job(1, &answers)).unwrap();
        answered.recv().unwrap();
        assert_eq!(writer.stats().lingered.load(Ordering::Relaxed), 0);
        // Announced but never submitted (a client that stalls mid-DATA).
        let _stalled = writer.expect();
        let started = std::time::Instant::now();
        writer.submit(plain_job(2, &answers)).unwrap();
        assert_eq!(answered.recv().unwrap(), (2, true, 1));
        assert!(started.elapsed() >= LINGER, "{:?}", started.elapsed());
        assert_eq!(writer.stats().lingered.load(Ordering::Relaxed), 1);
        assert_eq!(writer.stats().commits.load(Ordering::Relaxed), 2);
    }
}

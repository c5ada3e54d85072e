//! Group commit of deliveries on PostgreSQL: `deliver`, `deliver_recording` and
//! `deliver_and_enqueue` that arrive while a delivery into the same mailbox is
//! committing run together in the next transaction (one BEGIN, one lock of each
//! mailbox, one COMMIT and WAL flush), as SQLite's writer thread batches all
//! writes. Without it a hot mailbox is bounded by one transaction per message,
//! each queueing on the mailbox's row lock.
//!
//! Owns the lanes (deliveries queued per mailbox while a batch of that mailbox
//! is in flight), the driver task that runs a lane's batches one after another,
//! and the transaction of a batch. Ordering and durability are those of one
//! delivery: every mailbox of the batch is locked first, in ascending order, in
//! one statement ([`ops::lock_mailboxes`]), so two daemons' batches cannot wait
//! on each other in a cycle; folders are then locked per copy under their
//! mailbox's lock, and the counters move per copy inside the transaction (commit
//! order); each caller is answered only after the commit that holds its message.
//! A refused copy (over quota, no such folder) is a per-target result and fails
//! nothing else. A serialization failure or deadlock runs the whole batch again
//! after a jittered pause; any other failure runs the batch's deliveries again
//! one by one, each in its own transaction, so only the failing one fails; an
//! outage ([`StoreError::Unavailable`]) answers every caller with it.
//!
//! Never delays a lone delivery: a lane with nothing in flight starts at once,
//! and only what queued while a transaction ran is batched (no timers). The
//! grouping ([`Lanes`], [`lane_key`], [`lock_order`]) is pure and tested here;
//! the database tests are in `batch_tests`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tokio::sync::oneshot;

use super::ops::{self, Sql};
use super::{
    MAX_RETRIES, Op, OpError, Touched, backoff, notify, outbox, pool_error, queue, wake_watchers,
};
use crate::store::queue::NewOutbound;
use crate::store::{
    DeliveryEvents, FolderRef, Refused, Result, StoreError, Stored, Target, WriterStats,
};

/// Deliveries in one transaction at most: bounds the time the batch holds its
/// mailboxes' locks (readers never wait on them; other writers do).
pub(super) const MAX_JOBS: usize = 64;

/// Body bytes in one transaction at most (a larger message goes alone).
pub(super) const MAX_BYTES: usize = 16 << 20;

/// The per-target outcome of one delivery.
pub(super) type Outcome = Vec<std::result::Result<Stored, Refused>>;

/// What a delivery writes besides its copies.
pub(super) enum Extra {
    /// Nothing (`deliver`).
    Nothing,
    /// Outbox events computed from its outcome (`deliver_recording`).
    Events(DeliveryEvents),
    /// An outbound queue entry, and events if any (`deliver_and_enqueue`).
    Enqueue(Box<NewOutbound>, Option<DeliveryEvents>),
}

/// One delivery submitted to the batcher.
pub(super) struct Job {
    pub body: Arc<[u8]>,
    pub internal_date: i64,
    pub targets: Vec<Target>,
    pub extra: Extra,
}

impl Job {
    fn events(&self) -> Option<&DeliveryEvents> {
        match &self.extra {
            Extra::Nothing => None,
            Extra::Events(events) => Some(events),
            Extra::Enqueue(_, events) => events.as_ref(),
        }
    }
}

/// Which lane a delivery queues in: deliveries of one lane contend for the same
/// mailbox lock, so batching them is what saves transactions; different lanes
/// run in parallel on the pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum LaneKey {
    /// The first (in lock order) mailbox a target names.
    Mailbox(String),
    /// The lowest folder id, when the targets name folders only (their mailbox
    /// is known only after a query).
    Folder(i64),
}

/// The lane of a delivery into `targets`; `None` for no targets (a queue entry
/// alone, which locks no mailbox and runs at once on its own).
pub(super) fn lane_key(targets: &[Target]) -> Option<LaneKey> {
    let mailbox = targets
        .iter()
        .filter_map(|t| match &t.folder {
            FolderRef::Kind(mailbox, _) => Some(mailbox),
            FolderRef::Id(_) => None,
        })
        .min();
    if let Some(mailbox) = mailbox {
        return Some(LaneKey::Mailbox(mailbox.clone()));
    }
    targets
        .iter()
        .filter_map(|t| match t.folder {
            FolderRef::Id(id) => Some(id),
            FolderRef::Kind(..) => None,
        })
        .min()
        .map(LaneKey::Folder)
}

/// The mailboxes of a whole batch in the order they are locked: ascending
/// (byte order, as `COLLATE "C"` sorts them), each once.
pub(super) fn lock_order(mut mailboxes: Vec<String>) -> Vec<String> {
    mailboxes.sort();
    mailboxes.dedup();
    mailboxes
}

/// Jobs queued per lane. A lane is present while a driver runs it: [`Lanes::push`]
/// says when a new driver must start, and [`Lanes::take`] removes a drained
/// lane in the same step that finds it empty, so a job is never left queued
/// without a driver.
pub(super) struct Lanes<K, J> {
    lanes: HashMap<K, VecDeque<J>>,
}

impl<K: Hash + Eq + Clone, J> Lanes<K, J> {
    pub fn new() -> Self {
        Lanes {
            lanes: HashMap::new(),
        }
    }

    /// Queues `job` in lane `key`; true when the lane was idle, so the caller
    /// must start its driver.
    pub fn push(&mut self, key: K, job: J) -> bool {
        match self.lanes.get_mut(&key) {
            Some(queue) => {
                queue.push_back(job);
                false
            }
            None => {
                self.lanes.insert(key, VecDeque::from([job]));
                true
            }
        }
    }

    /// The next batch of lane `key`, oldest first: at least one job, then more
    /// while under `max_jobs` and `max_bytes` (by `bytes`). Empty when the lane
    /// has drained; the lane is then idle (removed).
    pub fn take(
        &mut self,
        key: &K,
        max_jobs: usize,
        max_bytes: usize,
        bytes: impl Fn(&J) -> usize,
    ) -> Vec<J> {
        let Some(queue) = self.lanes.get_mut(key) else {
            return Vec::new();
        };
        let mut batch = Vec::new();
        let mut size = 0usize;
        while let Some(next) = queue.front() {
            let n = bytes(next);
            if !batch.is_empty() && (batch.len() >= max_jobs || size.saturating_add(n) > max_bytes)
            {
                break;
            }
            size = size.saturating_add(n);
            batch.extend(queue.pop_front());
        }
        if batch.is_empty() {
            self.lanes.remove(key);
        }
        batch
    }

    /// Drops lane `key` and what it holds (its driver ended abnormally: the
    /// queued callers are answered by their channels closing).
    pub fn abandon(&mut self, key: &K) {
        self.lanes.remove(key);
    }

    /// Jobs queued and not yet taken, in every lane.
    pub fn queued(&self) -> usize {
        self.lanes.values().map(VecDeque::len).sum()
    }
}

/// A queued delivery and where its answer goes.
struct Pending {
    job: Job,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// The group committer of one [`PgStore`](super::PgStore): what a driver task
/// needs, owned (the task outlives the call that started it).
pub(super) struct Batcher {
    lanes: Mutex<Lanes<LaneKey, Pending>>,
    pool: Pool,
    stats: Arc<WriterStats>,
    watchers: notify::Watchers,
    hub: Arc<notify::Hub>,
    /// The daemon whose outbox rows the batches write.
    node: String,
}

/// Answers the queued callers of a lane whose driver was dropped (a panic, or
/// the runtime shutting down) by closing their channels.
struct LaneGuard<'a> {
    batcher: &'a Batcher,
    key: &'a LaneKey,
    done: bool,
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Ok(mut lanes) = self.batcher.lanes.lock()
        {
            lanes.abandon(self.key);
        }
    }
}

impl Batcher {
    pub fn new(
        pool: Pool,
        stats: Arc<WriterStats>,
        watchers: notify::Watchers,
        hub: Arc<notify::Hub>,
        node: String,
    ) -> Arc<Batcher> {
        Arc::new(Batcher {
            lanes: Mutex::new(Lanes::new()),
            pool,
            stats,
            watchers,
            hub,
            node,
        })
    }

    /// The same committer writing outbox rows as daemon `node` (set at start,
    /// before any delivery).
    pub fn for_node(&self, node: String) -> Arc<Batcher> {
        Batcher::new(
            self.pool.clone(),
            self.stats.clone(),
            self.watchers.clone(),
            self.hub.clone(),
            node,
        )
    }

    /// Deliveries queued behind a batch in flight (for tests and metrics).
    pub fn queued(&self) -> usize {
        self.lanes.lock().map(|l| l.queued()).unwrap_or(0)
    }

    /// Runs `job` in the next transaction of its lane and answers after the
    /// commit that holds it.
    pub async fn submit(self: &Arc<Self>, job: Job) -> Result<Outcome> {
        let Some(key) = lane_key(&job.targets) else {
            return self.run(vec![job]).await.pop().unwrap_or_else(lost);
        };
        let (reply, answer) = oneshot::channel();
        let start = self
            .lanes
            .lock()
            .map_err(|_| StoreError::Io("postgres: delivery lanes poisoned".into()))?
            .push(key.clone(), Pending { job, reply });
        if start {
            tokio::spawn(self.clone().drive(key));
        }
        answer.await.unwrap_or_else(|_| lost())
    }

    /// Runs lane `key`'s batches until it drains.
    async fn drive(self: Arc<Self>, key: LaneKey) {
        let mut guard = LaneGuard {
            batcher: &self,
            key: &key,
            done: false,
        };
        loop {
            let batch = match self.lanes.lock() {
                Ok(mut lanes) => lanes.take(&key, MAX_JOBS, MAX_BYTES, |p| p.job.body.len()),
                Err(_) => return,
            };
            if batch.is_empty() {
                guard.done = true;
                return;
            }
            let (jobs, replies): (Vec<Job>, Vec<_>) =
                batch.into_iter().map(|p| (p.job, p.reply)).unzip();
            let answers = self.run(jobs).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that gave up has nothing to hear.
                let _ = reply.send(answer);
            }
        }
    }

    /// One answer per job, in order: the batch in one transaction, or after a
    /// failure that is not an outage, each job in its own.
    async fn run(&self, jobs: Vec<Job>) -> Vec<Result<Outcome>> {
        let n = jobs.len();
        match self.commit(&jobs).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(StoreError::Unavailable(why)) => (0..n)
                .map(|_| Err(StoreError::Unavailable(why.clone())))
                .collect(),
            Err(e) if n == 1 => vec![Err(e)],
            Err(_) => {
                let mut answers = Vec::with_capacity(n);
                for job in &jobs {
                    answers.push(
                        self.commit(std::slice::from_ref(job))
                            .await
                            .map(|mut o| o.pop().unwrap_or_default()),
                    );
                }
                answers
            }
        }
    }

    /// `jobs` in one transaction, run again whole after a serialization failure
    /// or deadlock; wakes the watchers of what it wrote after the commit.
    async fn commit(&self, jobs: &[Job]) -> Result<Vec<Outcome>> {
        let mut attempt = 0u32;
        loop {
            let outcome: Op<_> = async {
                let mut client = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| OpError::Store(pool_error(e)))?;
                let tx = client.transaction().await?;
                let written = write_batch(&tx, &self.node, jobs).await?;
                tx.commit().await?;
                Ok(written)
            }
            .await;
            match outcome {
                Ok((outcomes, touched)) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .writes
                        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                    wake_watchers(&self.watchers, &self.hub, touched);
                    return Ok(outcomes);
                }
                Err(e) if e.retryable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    self.stats.redone.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.into_store()),
            }
        }
    }
}

/// The answer of a caller whose batch was dropped before it answered.
fn lost() -> Result<Outcome> {
    Err(StoreError::Io(
        "postgres: the delivery's batch ended before its commit".into(),
    ))
}

/// The statements of a batch: every mailbox locked first in [`lock_order`],
/// then each delivery (its copies, its queue entry) in submission order, and
/// the outbox events of all of them last (one statement under the outbox
/// counter's lock, held only until the commit).
async fn write_batch(tx: &dyn Sql, node: &str, jobs: &[Job]) -> Op<(Vec<Outcome>, Touched)> {
    let mailboxes = ops::target_mailboxes(tx, jobs.iter().flat_map(|j| &j.targets)).await?;
    let locked = lock_order(mailboxes);
    ops::lock_mailboxes(tx, &locked).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut touched = Touched::new();
    let mut events = Vec::new();
    for job in jobs {
        let (outcome, moved) = if job.targets.is_empty() {
            (Outcome::new(), Touched::new())
        } else {
            ops::deliver_locked(tx, &job.body, job.internal_date, &job.targets, &locked).await?
        };
        if let Extra::Enqueue(message, _) = &job.extra {
            queue::insert(tx, message, job.internal_date).await?;
        }
        if let Some(compute) = job.events() {
            events.extend(compute(&outcome));
        }
        touched.extend(moved);
        outcomes.push(outcome);
    }
    outbox::record(tx, node, &events).await?;
    Ok((outcomes, touched))
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod db_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FolderKind;

    fn to(folder: FolderRef) -> Target {
        Target {
            folder,
            flags: vec![],
            properties: vec![],
        }
    }

    fn inbox(mailbox: &str) -> Target {
        to(FolderRef::Kind(mailbox.into(), FolderKind::Inbox))
    }

    #[test]
    fn a_delivery_queues_in_the_lane_of_its_first_mailbox_in_lock_order() {
        let targets = vec![inbox("m"), to(FolderRef::Id(3)), inbox("b"), inbox("z")];
        assert_eq!(lane_key(&targets), Some(LaneKey::Mailbox("b".into())));
        // The same mailboxes in another order: the same lane.
        let reversed: Vec<Target> = targets.into_iter().rev().collect();
        assert_eq!(lane_key(&reversed), Some(LaneKey::Mailbox("b".into())));
    }

    #[test]
    fn folders_alone_queue_by_their_lowest_id_and_no_target_goes_alone() {
        let targets = vec![to(FolderRef::Id(9)), to(FolderRef::Id(4))];
        assert_eq!(lane_key(&targets), Some(LaneKey::Folder(4)));
        assert_eq!(lane_key(&[]), None);
    }

    #[test]
    fn a_batch_locks_its_mailboxes_ascending_once_each_in_byte_order() {
        let order = lock_order(vec![
            "b@x".into(),
            "B@x".into(),
            "a@x".into(),
            "b@x".into(),
            "a@x".into(),
        ]);
        assert_eq!(order, vec!["B@x", "a@x", "b@x"]);
        assert!(lock_order(vec![]).is_empty());
    }

    #[test]
    fn the_first_job_of_an_idle_lane_starts_a_driver_and_later_ones_queue() {
        let mut lanes: Lanes<&str, u32> = Lanes::new();
        assert!(lanes.push("a", 1), "idle lane: start a driver");
        assert!(!lanes.push("a", 2), "driver running: queue");
        assert!(lanes.push("b", 10), "another lane runs in parallel");
        assert_eq!(lanes.queued(), 3);
        assert_eq!(lanes.take(&"a", 64, usize::MAX, |_| 1), vec![1, 2]);
        // While the batch runs the lane stays busy: a new job queues behind it.
        assert!(!lanes.push("a", 3));
        assert_eq!(lanes.take(&"a", 64, usize::MAX, |_| 1), vec![3]);
        // Drained: the take that finds it empty makes it idle again.
        assert!(lanes.take(&"a", 64, usize::MAX, |_| 1).is_empty());
        assert!(lanes.push("a", 4), "idle again: a new driver");
        assert_eq!(lanes.queued(), 2);
    }

    #[test]
    fn a_batch_is_bounded_by_jobs_and_bytes_but_always_takes_one() {
        let mut lanes: Lanes<&str, usize> = Lanes::new();
        for size in [10, 10, 10, 10, 10] {
            lanes.push("a", size);
        }
        assert_eq!(lanes.take(&"a", 2, usize::MAX, |&n| n), vec![10, 10]);
        assert_eq!(lanes.take(&"a", 64, 25, |&n| n), vec![10, 10]);
        assert_eq!(lanes.take(&"a", 64, 25, |&n| n), vec![10]);
        // A job larger than the byte bound goes alone, not never.
        lanes.push("a", 100);
        lanes.push("a", 1);
        assert_eq!(lanes.take(&"a", 64, 25, |&n| n), vec![100]);
        assert_eq!(lanes.take(&"a", 64, 25, |&n| n), vec![1]);
        assert!(lanes.take(&"a", 64, 25, |&n| n).is_empty());
    }

    #[test]
    fn taking_from_an_unknown_or_abandoned_lane_gives_nothing() {
        let mut lanes: Lanes<&str, u32> = Lanes::new();
        assert!(lanes.take(&"x", 64, usize::MAX, |_| 1).is_empty());
        lanes.push("x", 1);
        lanes.push("x", 2);
        lanes.abandon(&"x");
        assert_eq!(lanes.queued(), 0);
        assert!(lanes.take(&"x", 64, usize::MAX, |_| 1).is_empty());
        assert!(lanes.push("x", 3), "an abandoned lane starts afresh");
    }
}

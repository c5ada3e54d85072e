//! One sink: a bounded in-memory queue that producers feed with `try_send` (never
//! blocking) and a writer thread running the sink's [`Worker`]. The filter that
//! decides what is offered lives with the set of running sinks ([`super::Events`]),
//! so a reload can change it without touching the queue.
//!
//! A reload replaces a sink's worker in band: [`Sink::replace`] puts the new worker
//! in the same queue as the records, so everything queued before it is written by
//! the old worker (to the old file, into the spool) and everything after by the new
//! one. A sink is stopped by dropping it: the thread drains the queue, calls
//! [`Worker::finish`] and ends, which [`Sink::take_exit`] lets the caller wait for.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::SinkConfig;
use super::metrics::SinkStats;
use super::spool::Spool;

/// Records a sink may hold in memory before new ones are dropped (and counted).
pub const QUEUE: usize = 65_536;

/// Records a worker gets at once at most.
const BATCH: usize = 4096;

/// After writing a short batch the writer lets records gather this long before
/// it waits on the queue again. Producers (SMTP sessions, two or more records per
/// message) then enqueue without waking a sleeping thread each time: under load
/// the writer wakes a few hundred times a second instead of once per record.
const LINGER: Duration = Duration::from_millis(2);

/// What a record is, for the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An email event, by `eventName`.
    Email(&'static str),
    /// An audit record, by `log_type`.
    Audit(&'static str),
}

/// One serialised record (a JSON object without the newline), shared by the sinks.
#[derive(Debug, Clone)]
pub struct Record {
    /// What the record is, for filters and the in-memory test sink.
    pub kind: Kind,
    /// The JSON object, serialised once and shared by every sink.
    pub line: Arc<str>,
    /// Its outbox sequence number (see [`super::outbox`]); 0 when it did not come
    /// through the outbox.
    pub seq: i64,
}

/// `["*"]`, a set of names, or nothing.
#[derive(Debug, Clone)]
enum Select {
    All,
    Some(HashSet<String>),
}

impl Select {
    fn from(values: &[String]) -> Select {
        if values.iter().any(|v| v == "*") {
            Select::All
        } else {
            Select::Some(values.iter().cloned().collect())
        }
    }
    fn matches(&self, name: &str) -> bool {
        match self {
            Select::All => true,
            Select::Some(set) => set.contains(name),
        }
    }
}

/// Which records a sink receives: pure, decided before anything is queued.
#[derive(Debug, Clone)]
pub struct Filter {
    email: Select,
    audit: Select,
}

impl Filter {
    /// Everything.
    pub fn all() -> Filter {
        Filter {
            email: Select::All,
            audit: Select::All,
        }
    }

    /// The filter a sink's config describes.
    pub fn of(c: &SinkConfig) -> Filter {
        Filter {
            email: Select::from(&c.email_events),
            audit: Select::from(&c.audit_logs),
        }
    }

    /// Whether a record of this kind goes to the sink.
    pub fn matches(&self, kind: Kind) -> bool {
        match kind {
            Kind::Email(n) => self.email.matches(n),
            Kind::Audit(t) => self.audit.matches(t),
        }
    }
}

/// The sink-specific part, run on the sink's own thread.
pub trait Worker: Send + 'static {
    /// Takes a batch of records (already filtered). Returns once they are written
    /// (file, stdout) or safely spooled (HTTP): true when all of them are, false
    /// when some may not be (the outbox then keeps them for another try).
    fn write(&mut self, batch: &[Record]) -> bool;
    /// Timed work (fsync interval, rotation by age, HTTP delivery and retries);
    /// returns how long the thread may wait for records before calling it again.
    fn tick(&mut self) -> Duration;
    /// Called once when every producer is gone, and before a reload replaces the
    /// worker: whatever is buffered is made durable.
    fn finish(&mut self) {}
    /// Called when this worker takes over from the one it replaces (after that one
    /// finished), to re-read state the old one changed (a file's size).
    fn resume(&mut self) {}
    /// Hands the on-disk spool over to the replacement of the same name (HTTP
    /// sinks); the rest of the worker is dropped.
    fn into_spool(self: Box<Self>) -> Option<Spool> {
        None
    }
}

/// Builds a sink's next worker from its current one (called on the sink's thread,
/// after the current one finished).
pub type Replace = Box<dyn FnOnce(Box<dyn Worker>) -> Box<dyn Worker> + Send>;

/// What travels through a sink's queue: records, and in-band worker replacements.
enum Msg {
    Record(Record),
    Replace(Replace, SyncSender<()>),
}

/// A running sink, shared by every clone of the [`Events`](super::Events) handle.
pub struct Sink {
    /// The configured name (metrics label, spool directory, log group ARN).
    pub name: String,
    tx: SyncSender<Msg>,
    /// The sink's counters, shared with its writer thread.
    pub stats: SinkStats,
    /// Records queued so far (counted after a successful `try_send`, so the
    /// writer may briefly be ahead of it, never behind).
    queued: AtomicU64,
    /// Records the worker has taken care of, with a condvar for [`Sink::flush`].
    progress: Arc<(Mutex<u64>, Condvar)>,
    /// How far the outbox records went: see [`Sink::outbox_progress`].
    outbox: Arc<OutboxProgress>,
    /// Disconnects once the writer thread has ended; taken by whoever stops the sink.
    exit: Mutex<Option<Receiver<()>>>,
}

/// Starts the writer thread of a prepared sink (see [`Sink::prepare`]); dropping
/// it instead ends the thread without writing anything.
pub struct Starter(SyncSender<Box<dyn Worker>>);

impl Starter {
    /// Hands the worker to the waiting thread.
    pub fn start(self, worker: Box<dyn Worker>) {
        let _ = self.0.send(worker);
    }
}

impl Sink {
    /// Starts the writer thread for `worker`.
    pub fn spawn(name: &str, stats: SinkStats, worker: impl Worker) -> std::io::Result<Arc<Sink>> {
        let (sink, starter) = Sink::prepare(name, stats)?;
        starter.start(Box::new(worker));
        Ok(sink)
    }

    /// Creates the queue and a thread that waits for its worker: producers may
    /// offer records at once (they wait in the queue), and the worker starts
    /// writing only when [`Starter::start`] says so. A reload uses the gap to
    /// let stopped and replaced sinks finish first.
    pub fn prepare(name: &str, stats: SinkStats) -> std::io::Result<(Arc<Sink>, Starter)> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let (start_tx, start_rx) = sync_channel::<Box<dyn Worker>>(1);
        let (exit_tx, exit_rx) = sync_channel::<()>(1);
        let progress = Arc::new((Mutex::new(0u64), Condvar::new()));
        let outbox = Arc::new(OutboxProgress::default());
        let (p, s, o) = (progress.clone(), stats.clone(), outbox.clone());
        std::thread::Builder::new()
            .name(format!("events-{name}"))
            .spawn(move || {
                if let Ok(worker) = start_rx.recv() {
                    run(rx, worker, p, s, &o);
                }
                drop(exit_tx);
            })?;
        Ok((
            Arc::new(Sink {
                name: name.into(),
                tx,
                stats,
                queued: AtomicU64::new(0),
                progress,
                outbox,
                exit: Mutex::new(Some(exit_rx)),
            }),
            Starter(start_tx),
        ))
    }

    /// Queues a record without blocking; a full queue drops and counts it.
    pub fn offer(&self, record: Record) -> bool {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::AcqRel);
                self.stats.lag.inc();
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.inc();
                false
            }
        }
    }

    /// The outbox sequence number up to which every record offered to this sink
    /// is written (in order, without a failed write before it), and whether a
    /// write failed since the last call: the outbox reader offers again from that
    /// number. Meaningful once [`Sink::flush`] returned true.
    pub fn outbox_progress(&self) -> (i64, bool) {
        (
            self.outbox.written.load(Ordering::Acquire),
            self.outbox.failed.swap(false, Ordering::AcqRel),
        )
    }

    /// Sets where the outbox reader starts: records up to `seq` count as written.
    pub fn outbox_resume_at(&self, seq: i64) {
        self.outbox.written.store(seq, Ordering::Release);
        self.outbox.failed.store(false, Ordering::Release);
    }

    /// Waits until everything queued so far has been handled, up to `limit`.
    pub fn flush(&self, limit: Duration) -> bool {
        let target = self.queued.load(Ordering::Acquire);
        let (done, cv) = &*self.progress;
        let Ok(guard) = done.lock() else {
            return false;
        };
        cv.wait_timeout_while(guard, limit, |n| *n < target)
            .map(|(n, _)| *n >= target)
            .unwrap_or(false)
    }

    /// Queues the replacement of the worker behind the records already queued;
    /// the returned receiver gets a message once the new worker runs. Waits for
    /// room in the queue until `deadline` (None: the sink is stuck or gone).
    pub fn replace(&self, build: Replace, deadline: Instant) -> Option<Receiver<()>> {
        let (ack_tx, ack_rx) = sync_channel(1);
        let mut msg = Msg::Replace(build, ack_tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return Some(ack_rx),
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return None,
            }
        }
    }

    /// The receiver that disconnects once the writer thread has ended (after the
    /// last handle to the sink is dropped and its queue drained); only once.
    pub fn take_exit(&self) -> Option<Receiver<()>> {
        self.exit.lock().ok()?.take()
    }
}

/// How far a sink got with the records of the outbox.
#[derive(Default)]
struct OutboxProgress {
    /// The last sequence number written with nothing failed before it.
    written: AtomicI64,
    /// A write failed since the reader last looked: `written` stops there.
    failed: AtomicBool,
}

impl OutboxProgress {
    /// Notes the outcome of one written batch.
    fn note(&self, batch: &[Record], ok: bool) {
        let Some(last) = batch.iter().map(|r| r.seq).max().filter(|s| *s > 0) else {
            return;
        };
        if !ok {
            self.failed.store(true, Ordering::Release);
        } else if !self.failed.load(Ordering::Acquire) {
            self.written.fetch_max(last, Ordering::AcqRel);
        }
    }
}

fn run(
    rx: Receiver<Msg>,
    mut worker: Box<dyn Worker>,
    progress: Arc<(Mutex<u64>, Condvar)>,
    stats: SinkStats,
    outbox: &OutboxProgress,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut wait = worker.tick();
    loop {
        let (first, mut control) = match rx.recv_timeout(wait) {
            Ok(Msg::Record(first)) => (Some(first), None),
            Ok(Msg::Replace(build, ack)) => (None, Some((build, ack))),
            Err(RecvTimeoutError::Timeout) => {
                wait = worker.tick();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                worker.finish();
                return;
            }
        };
        if let Some(first) = first {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(Msg::Record(more)) => batch.push(more),
                    Ok(Msg::Replace(build, ack)) => {
                        control = Some((build, ack));
                        break;
                    }
                    Err(_) => break,
                }
            }
            stats.lag.dec_by(batch.len() as i64);
            let ok = worker.write(&batch);
            outbox.note(&batch, ok);
            let (count, cv) = &*progress;
            if let Ok(mut n) = count.lock() {
                *n += batch.len() as u64;
            }
            cv.notify_all();
            let short = batch.len() < BATCH;
            batch.clear();
            if short && control.is_none() {
                std::thread::sleep(LINGER);
            }
        }
        if let Some((build, ack)) = control {
            worker.finish();
            worker = build(worker);
            worker.resume();
            let _ = ack.send(());
        }
        wait = worker.tick();
    }
}

/// Counts every record as dropped: stands in when a replacement could not be
/// built on the sink's thread (its spool would not open), so producers still never wait.
pub struct Discard {
    /// Counts the dropped records.
    pub stats: SinkStats,
}

impl Worker for Discard {
    fn write(&mut self, batch: &[Record]) -> bool {
        self.stats.dropped.inc_by(batch.len() as u64);
        false
    }
    fn tick(&mut self) -> Duration {
        Duration::from_secs(3600)
    }
}

/// Lines on standard output, for journald or a container log collector.
pub struct Stdout {
    /// Counts lines written (sent) and failed writes.
    pub stats: SinkStats,
}

impl Worker for Stdout {
    fn write(&mut self, batch: &[Record]) -> bool {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let res = batch
            .iter()
            .try_for_each(|r| writeln!(out, "{}", r.line))
            .and_then(|_| out.flush());
        match res {
            Ok(()) => {
                self.stats.sent.inc_by(batch.len() as u64);
                true
            }
            Err(_) => {
                self.stats.failed.inc();
                self.stats.dropped.inc_by(batch.len() as u64);
                false
            }
        }
    }
    fn tick(&mut self) -> Duration {
        Duration::from_secs(3600)
    }
}

/// Records parsed back into JSON values, for tests.
pub struct Memory {
    /// Email events received so far.
    pub email: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Audit records received so far.
    pub audit: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Worker for Memory {
    fn write(&mut self, batch: &[Record]) -> bool {
        for r in batch {
            let into = match r.kind {
                Kind::Email(_) => &self.email,
                Kind::Audit(_) => &self.audit,
            };
            if let (Ok(mut all), Ok(v)) = (into.lock(), serde_json::from_str(&r.line)) {
                all.push(v);
            }
        }
        true
    }
    fn tick(&mut self) -> Duration {
        Duration::from_secs(3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose writes hang until the gate opens.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Worker for Stuck {
        fn write(&mut self, _batch: &[Record]) -> bool {
            let _ = self.0.recv();
            true
        }
        fn tick(&mut self) -> Duration {
            Duration::from_secs(3600)
        }
    }

    #[test]
    fn a_stuck_sink_never_blocks_producers_and_counts_what_it_drops() {
        let (gate, wait) = std::sync::mpsc::channel();
        let stats = SinkStats::default();
        let sink = Sink::spawn("stuck", stats.clone(), Stuck(wait)).unwrap();
        let record = Record {
            kind: Kind::Audit("authentication"),
            line: "{}".into(),
            seq: 0,
        };
        let started = std::time::Instant::now();
        let taken = (0..2 * QUEUE)
            .filter(|_| sink.offer(record.clone()))
            .count();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!((QUEUE..=QUEUE + BATCH).contains(&taken), "{taken}");
        assert_eq!(stats.dropped.get() as usize, 2 * QUEUE - taken);
        assert!(
            !sink.flush(Duration::from_millis(50)),
            "nothing written yet"
        );
        drop(gate);
        assert!(
            sink.flush(Duration::from_secs(5)),
            "the rest is written once it moves"
        );
    }

    #[test]
    fn filters_select_by_event_name_and_log_type() {
        let mut c = crate::events::config::EventsSection::default().effective_sinks()[0].clone();
        let f = Filter::of(&c);
        assert!(f.matches(Kind::Email("OUTGOING_EMAIL_SENT")));
        assert!(!f.matches(Kind::Audit("authentication")));
        c.email_events = vec!["OUTGOING_EMAIL_SENT".into()];
        c.audit_logs = vec!["access_control".into()];
        let f = Filter::of(&c);
        assert!(f.matches(Kind::Email("OUTGOING_EMAIL_SENT")));
        assert!(!f.matches(Kind::Email("MAILBOX_EMAIL_DELIVERED")));
        assert!(f.matches(Kind::Audit("access_control")));
        assert!(!f.matches(Kind::Audit("authentication")));
    }
}

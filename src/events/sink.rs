//! One sink: a bounded in-memory queue that producers feed with `try_send` (never
//! blocking), a filter, and a writer thread running the sink's [`Worker`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::config::SinkConfig;
use super::metrics::SinkStats;

/// Records a sink may hold in memory before new ones are dropped (and counted).
pub const QUEUE: usize = 65_536;

/// Records a worker gets at once at most.
const BATCH: usize = 4096;

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
    /// (file, stdout) or safely spooled (HTTP).
    fn write(&mut self, batch: &[Record]);
    /// Timed work (fsync interval, rotation by age, HTTP delivery and retries);
    /// returns how long the thread may wait for records before calling it again.
    fn tick(&mut self) -> Duration;
    /// Called once when every producer is gone.
    fn finish(&mut self) {}
}

/// A running sink, shared by every clone of the [`Events`](super::Events) handle.
pub struct Sink {
    /// The configured name (metrics label, spool directory, log group ARN).
    pub name: String,
    /// Which records the producers offer to this sink.
    pub filter: Filter,
    tx: SyncSender<Record>,
    /// The sink's counters, shared with its writer thread.
    pub stats: SinkStats,
    /// Records queued so far (counted after a successful `try_send`, so the
    /// writer may briefly be ahead of it, never behind).
    queued: AtomicU64,
    /// Records the worker has taken care of, with a condvar for [`Sink::flush`].
    progress: Arc<(Mutex<u64>, Condvar)>,
}

impl Sink {
    /// Starts the writer thread for `worker`.
    pub fn spawn(
        name: &str,
        filter: Filter,
        stats: SinkStats,
        worker: impl Worker,
    ) -> std::io::Result<Arc<Sink>> {
        let (tx, rx) = sync_channel::<Record>(QUEUE);
        let progress = Arc::new((Mutex::new(0u64), Condvar::new()));
        let (p, s) = (progress.clone(), stats.clone());
        std::thread::Builder::new()
            .name(format!("events-{name}"))
            .spawn(move || run(rx, worker, p, s))?;
        Ok(Arc::new(Sink {
            name: name.into(),
            filter,
            tx,
            stats,
            queued: AtomicU64::new(0),
            progress,
        }))
    }

    /// Queues a record without blocking; a full queue drops and counts it.
    pub fn offer(&self, record: Record) -> bool {
        match self.tx.try_send(record) {
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
}

fn run(
    rx: Receiver<Record>,
    mut worker: impl Worker,
    progress: Arc<(Mutex<u64>, Condvar)>,
    stats: SinkStats,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut wait = worker.tick();
    loop {
        match rx.recv_timeout(wait) {
            Ok(first) => {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                stats.lag.dec_by(batch.len() as i64);
                worker.write(&batch);
                let (count, cv) = &*progress;
                if let Ok(mut n) = count.lock() {
                    *n += batch.len() as u64;
                }
                cv.notify_all();
                batch.clear();
                wait = worker.tick();
            }
            Err(RecvTimeoutError::Timeout) => wait = worker.tick(),
            Err(RecvTimeoutError::Disconnected) => {
                worker.finish();
                return;
            }
        }
    }
}

/// Lines on standard output, for journald or a container log collector.
pub struct Stdout {
    /// Counts lines written (sent) and failed writes.
    pub stats: SinkStats,
}

impl Worker for Stdout {
    fn write(&mut self, batch: &[Record]) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let res = batch
            .iter()
            .try_for_each(|r| writeln!(out, "{}", r.line))
            .and_then(|_| out.flush());
        match res {
            Ok(()) => {
                self.stats.sent.inc_by(batch.len() as u64);
            }
            Err(_) => {
                self.stats.failed.inc();
                self.stats.dropped.inc_by(batch.len() as u64);
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
    fn write(&mut self, batch: &[Record]) {
        for r in batch {
            let into = match r.kind {
                Kind::Email(_) => &self.email,
                Kind::Audit(_) => &self.audit,
            };
            if let (Ok(mut all), Ok(v)) = (into.lock(), serde_json::from_str(&r.line)) {
                all.push(v);
            }
        }
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
        fn write(&mut self, _batch: &[Record]) {
            let _ = self.0.recv();
        }
        fn tick(&mut self) -> Duration {
            Duration::from_secs(3600)
        }
    }

    #[test]
    fn a_stuck_sink_never_blocks_producers_and_counts_what_it_drops() {
        let (gate, wait) = std::sync::mpsc::channel();
        let stats = SinkStats::default();
        let sink = Sink::spawn("stuck", Filter::all(), stats.clone(), Stuck(wait)).unwrap();
        let record = Record {
            kind: Kind::Audit("authentication"),
            line: "{}".into(),
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

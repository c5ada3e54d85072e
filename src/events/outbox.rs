//! Records through the store's outbox: what makes an event durable before its
//! sinks have it, and the reader that drains the outbox into the sinks.
//!
//! Once [`super::Events::attach_outbox`] ran, every record reaches the sinks from
//! the outbox (`store::outbox`), in sequence order, and from nowhere else:
//! - the email events of a delivery are rows of the delivery's own commit
//!   (`smtp::delivery` renders them with [`email_row`]): durable when the 250 is;
//! - every other record (audit records of logins, access decisions and mailbox
//!   access; email events not tied to a store write) is queued in memory and
//!   appended by the appender thread in batches of at most [`APPEND_BATCH`], one
//!   commit each (shared with other writes by group commit). Guarantee for those:
//!   durable within about one commit (a few milliseconds) after they happened,
//!   not before the reply that follows the decision; a kill -9 in that window
//!   loses them, as does a full queue ([`APPEND_QUEUE`], counted as dropped).
//!
//! The reader thread offers each sink the rows after the last one it wrote,
//! filtered and routed as direct records were, waits until the sink wrote them
//! (a file: `write(2)` done; HTTP: spooled), and records per sink how far it got
//! ([`Outbox::outbox_mark`], at most every [`MARK_EVERY`]); rows every sink
//! passed are deleted. A sink whose write fails keeps its rows and is offered
//! them again after a growing pause; the others go on. So each record reaches
//! every sink at least once, with the id it was rendered with.
//!
//! Once per sink file: after a crash, the rows a sink wrote but had not marked are
//! offered again. Before its first offer the reader takes the ids of the last N
//! records of each file sink's file (N: the rows pending for that sink, see
//! [`super::file::last_ids`]) and skips rows carrying one of them; since the
//! sink writes nothing but outbox rows in order, those last N lines are exactly
//! where a written-but-unmarked row can be. A torn last line is cut when the file
//! is opened. HTTP receivers and stdout readers de-duplicate by id as before.
//! Power loss: what a file sink wrote but has not fsynced yet may be lost after
//! the outbox deleted it; `fsync = "always"` closes that window.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::config::{AUDIT_LOG_TYPES, EMAIL_EVENT_NAMES};
use super::email::EmailEvent;
use super::sink::{Kind, Record};
use super::{Entry, SinkSet};
use crate::store::outbox::{MAX_READ, Outbox, OutboxEvent, OutboxRow};

/// Records waiting for the appender before new ones are dropped.
pub const APPEND_QUEUE: usize = 65_536;
/// Most records one appender commit takes.
pub const APPEND_BATCH: usize = 256;
/// Most rows the reader offers in one round.
const READ_BATCH: usize = 512;
/// How often the marks are written while rows flow (and once the outbox is idle):
/// marking after every round would add a write to most group commits.
pub const MARK_EVERY: Duration = Duration::from_millis(100);
/// The reader looks at the outbox at least this often without being woken.
const POLL: Duration = Duration::from_millis(50);
/// Once woken, the reader lets rows gather this long before it reads. With a
/// round (a read, a hand-over to each sink thread, a wait for their writes) per
/// delivery, mailgate spent about 15% more CPU per message than before the
/// outbox; with this wait about 8% (smtp-source, 20 sessions), and events reach
/// the sinks up to 20 ms later.
const GATHER: Duration = Duration::from_millis(20);
/// How long a round waits for a sink to write what it was offered.
const WRITE_WAIT: Duration = Duration::from_secs(1);
/// Pauses before a failed sink is offered its rows again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// The most pending rows read at start to size a file sink's de-duplication.
const DEDUPE_SCAN: usize = 1 << 20;

/// The outbox half of an [`super::Events`] handle.
pub(super) struct Attached {
    appender: SyncSender<OutboxEvent>,
    state: Arc<State>,
}

/// What the producers, the appender and the reader share.
#[derive(Default)]
struct State {
    /// Records given to the appender / appended (or given up on).
    queued: AtomicU64,
    appended: AtomicU64,
    /// Records dropped: appender queue full, or their commit failed.
    dropped: AtomicU64,
    /// Set to wake the reader; the reader's round count and whether its last
    /// round found every sink caught up.
    wake: Mutex<bool>,
    woken: Condvar,
    rounds: Mutex<(u64, bool)>,
    round_done: Condvar,
}

impl State {
    fn wake(&self) {
        if let Ok(mut w) = self.wake.lock() {
            *w = true;
        }
        self.woken.notify_one();
    }

    fn wait_for_wake(&self, limit: Duration) {
        let Ok(w) = self.wake.lock() else { return };
        if let Ok((mut w, _)) = self.woken.wait_timeout_while(w, limit, |w| !*w) {
            *w = false;
        }
    }

    fn round_finished(&self, idle: bool) {
        if let Ok(mut r) = self.rounds.lock() {
            *r = (r.0 + 1, idle);
        }
        self.round_done.notify_all();
    }
}

/// An email event as an outbox row: rendered once, with a fresh `eventId`, now.
pub fn email_row(org: &str, trace_id: &str, event: &EmailEvent) -> OutboxEvent {
    OutboxEvent {
        kind: event.name().into(),
        org: org.into(),
        line: event.to_line(trace_id, &super::new_id(), crate::clock::now_ms()),
    }
}

/// The filter kind a row's `kind` names (None: unknown, offered to no sink).
pub(super) fn kind_of(name: &str) -> Option<Kind> {
    if let Some(n) = EMAIL_EVENT_NAMES.iter().find(|n| **n == name) {
        return Some(Kind::Email(n));
    }
    AUDIT_LOG_TYPES
        .iter()
        .find(|t| **t == name)
        .map(|t| Kind::Audit(t))
}

impl Attached {
    /// Starts the appender and the reader on `store`; they end once every
    /// [`super::Events`] handle is gone.
    pub(super) fn start(
        store: Arc<dyn Outbox>,
        sinks: Weak<arc_swap::ArcSwap<SinkSet>>,
        routes: Weak<arc_swap::ArcSwap<HashMap<String, String>>>,
    ) -> std::io::Result<Attached> {
        let runtime = tokio::runtime::Handle::current();
        let state = Arc::new(State::default());
        let (tx, rx) = sync_channel(APPEND_QUEUE);
        let (s, st, rt) = (store.clone(), state.clone(), runtime.clone());
        std::thread::Builder::new()
            .name("events-append".into())
            .spawn(move || append(rx, &*s, &st, &rt))?;
        let st = state.clone();
        std::thread::Builder::new()
            .name("events-outbox".into())
            .spawn(move || {
                let mut reader = Reader {
                    store,
                    runtime,
                    sinks,
                    routes,
                    state: st,
                    cursors: HashMap::new(),
                    marked: HashMap::new(),
                    deleted: 0,
                    last_mark: Instant::now(),
                    seen: 0,
                };
                reader.run();
            })?;
        Ok(Attached {
            appender: tx,
            state,
        })
    }

    /// Queues a record for the appender; never blocks (a full queue drops it).
    pub(super) fn append(&self, event: OutboxEvent) {
        match self.appender.try_send(event) {
            Ok(()) => {
                self.state.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.state.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Tells the reader that rows were committed.
    pub(super) fn wake(&self) {
        self.state.wake();
    }

    /// Records lost before reaching the outbox.
    pub(super) fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything queued so far is appended and the reader finished a
    /// round, begun after that, with every sink caught up (and marked).
    pub(super) fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let target = self.state.queued.load(Ordering::Acquire);
        while self.state.appended.load(Ordering::Acquire) < target {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let Ok(r) = self.state.rounds.lock() else {
            return false;
        };
        let start = r.0;
        drop(r);
        self.state.wake();
        let Ok(r) = self.state.rounds.lock() else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.state
            .round_done
            .wait_timeout_while(r, left, |(n, idle)| *n < start + 2 || !*idle)
            .map(|(r, _)| r.0 >= start + 2 && r.1)
            .unwrap_or(false)
    }
}

/// The appender thread: batches queued records into commits of their own.
fn append(
    rx: Receiver<OutboxEvent>,
    store: &dyn Outbox,
    state: &State,
    runtime: &tokio::runtime::Handle,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(APPEND_BATCH);
        batch.push(first);
        batch.extend(rx.try_iter().take(APPEND_BATCH - 1));
        let n = batch.len() as u64;
        if let Err(e) = runtime.block_on(store.outbox_append(batch)) {
            state.dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(error = %e, records = n, "events: cannot append to the outbox; records dropped");
        }
        state.appended.fetch_add(n, Ordering::AcqRel);
        state.wake();
    }
}

/// Where one sink is in the outbox.
struct Cursor {
    /// Every row up to here was offered (or is not for this sink).
    offered: i64,
    /// Every row up to here is written by the sink (or not for it).
    written: i64,
    /// The last row actually handed to the sink.
    last_record: i64,
    /// A failed write: no offers before this, and the next pause.
    retry_at: Option<Instant>,
    pause: Duration,
    /// Ids the sink's file already holds (after a crash), up to row `skip_until`.
    skip: HashSet<String>,
    skip_until: i64,
}

impl Cursor {
    fn at(seq: i64) -> Cursor {
        Cursor {
            offered: seq,
            written: seq,
            last_record: seq,
            retry_at: None,
            pause: RETRY_FIRST,
            skip: HashSet::new(),
            skip_until: 0,
        }
    }
}

/// The reader thread's state.
struct Reader {
    store: Arc<dyn Outbox>,
    runtime: tokio::runtime::Handle,
    sinks: Weak<arc_swap::ArcSwap<SinkSet>>,
    routes: Weak<arc_swap::ArcSwap<HashMap<String, String>>>,
    state: Arc<State>,
    cursors: HashMap<String, Cursor>,
    /// The marks as last written, and the rows deleted up to then.
    marked: HashMap<String, i64>,
    deleted: i64,
    last_mark: Instant,
    /// The highest sequence number read so far.
    seen: i64,
}

impl Reader {
    fn run(&mut self) {
        let marks = loop {
            match self.runtime.block_on(self.store.outbox_marks()) {
                Ok(m) => break m,
                Err(e) => {
                    tracing::error!(error = %e, "events: cannot read the outbox marks; retrying");
                    std::thread::sleep(RETRY_MAX);
                }
            }
        };
        self.marked = marks.into_iter().collect();
        let mut first = true;
        loop {
            let Some(sinks) = self.sinks.upgrade() else {
                return;
            };
            let set = sinks.load_full();
            drop(sinks);
            let routes = match self.routes.upgrade() {
                Some(r) => r.load_full(),
                None => return,
            };
            if first {
                self.start_cursors(&set, &routes);
                first = false;
            }
            let (full, idle) = match self.round(&set, &routes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "events: outbox read failed");
                    (false, false)
                }
            };
            drop(set);
            self.state.round_finished(idle);
            if !full {
                self.state.wait_for_wake(POLL);
                std::thread::sleep(GATHER);
            }
        }
    }

    /// Sets every configured sink's cursor from its mark, and the ids its file
    /// already holds of the rows pending for it.
    fn start_cursors(&mut self, set: &SinkSet, routes: &HashMap<String, String>) {
        for e in &set.0 {
            let mark = self.marked.get(&e.sink.name).copied().unwrap_or(0);
            let mut c = Cursor::at(mark);
            if let Some(path) = &e.file {
                let (pending, last) = self.pending_for(e, routes, mark);
                c.skip = super::file::last_ids(path, pending);
                c.skip_until = last;
                if pending > 0 {
                    tracing::info!(sink = %e.sink.name, pending, already_written = c.skip.len(), "events: resuming from the outbox; records the file already has are skipped");
                }
            }
            e.sink.outbox_resume_at(mark);
            self.cursors.insert(e.sink.name.clone(), c);
        }
    }

    /// How many rows after `mark` go to sink `e`, and the last of them.
    fn pending_for(&self, e: &Entry, routes: &HashMap<String, String>, mark: i64) -> (usize, i64) {
        let (mut n, mut after) = (0, mark);
        while n < DEDUPE_SCAN {
            let rows = match self
                .runtime
                .block_on(self.store.outbox_after(after, MAX_READ))
            {
                Ok(r) if !r.is_empty() => r,
                _ => break,
            };
            after = rows.last().map_or(after, |r| r.seq);
            n += rows.iter().filter(|r| wanted(e, routes, r)).count();
        }
        (n, after)
    }

    /// One round: reads the rows after the least-advanced sink, offers each sink
    /// its part, waits for the writes, and marks. Returns whether the read was
    /// full (more rows wait) and whether every sink is caught up.
    fn round(
        &mut self,
        set: &SinkSet,
        routes: &HashMap<String, String>,
    ) -> crate::store::Result<(bool, bool)> {
        let now = Instant::now();
        // Sinks started since (a reload) begin where the others are.
        let floor = self
            .cursors
            .values()
            .map(|c| c.written)
            .min()
            .unwrap_or(self.seen);
        for e in &set.0 {
            if !self.cursors.contains_key(&e.sink.name) {
                e.sink.outbox_resume_at(floor);
                self.cursors.insert(e.sink.name.clone(), Cursor::at(floor));
            }
        }
        self.cursors
            .retain(|name, _| set.0.iter().any(|e| &e.sink.name == name));
        let ready = |c: &Cursor| c.retry_at.is_none_or(|t| t <= now);
        let from = self
            .cursors
            .values()
            .filter(|c| ready(c))
            .map(|c| c.offered)
            .min()
            .unwrap_or(self.seen);
        let rows = self
            .runtime
            .block_on(self.store.outbox_after(from, READ_BATCH))?;
        let full = rows.len() >= READ_BATCH;
        if let Some(last) = rows.last() {
            self.seen = self.seen.max(last.seq);
        }
        let mut offered_to = Vec::new();
        for e in &set.0 {
            let Some(c) = self.cursors.get_mut(&e.sink.name) else {
                continue;
            };
            // A sink still writing an earlier round's rows gets no more yet: at
            // most one round's rows wait in its queue, which never fills.
            if !ready(c) || !e.sink.flush(Duration::ZERO) {
                continue;
            }
            c.retry_at = None;
            let mut any = false;
            let mut passed = c.offered;
            for r in rows.iter().filter(|r| r.seq > c.offered) {
                let known = !c.skip.is_empty()
                    && r.seq <= c.skip_until
                    && super::file::record_id(&r.event.line).is_some_and(|id| c.skip.contains(&id));
                if let Some(kind) =
                    kind_of(&r.event.kind).filter(|_| !known && wanted(e, routes, r))
                {
                    let record = Record {
                        kind,
                        line: r.event.line.as_str().into(),
                        seq: r.seq,
                    };
                    if !e.sink.offer(record) {
                        break;
                    }
                    c.last_record = r.seq;
                    any = true;
                }
                passed = r.seq;
            }
            c.offered = passed;
            if c.offered >= c.skip_until && !c.skip.is_empty() {
                c.skip = HashSet::new();
            }
            if any {
                offered_to.push(e);
            }
        }
        let offered_to: HashSet<&str> = offered_to.iter().map(|e| e.sink.name.as_str()).collect();
        let mut idle = !full;
        for e in &set.0 {
            let Some(c) = self.cursors.get_mut(&e.sink.name) else {
                continue;
            };
            let wait = if offered_to.contains(e.sink.name.as_str()) {
                WRITE_WAIT
            } else {
                Duration::ZERO
            };
            // Progress is read only once the sink's queue is empty, so that a
            // failure is never followed by a later success that hides it.
            if !e.sink.flush(wait) {
                idle = false;
                continue;
            }
            let (written, failed) = e.sink.outbox_progress();
            if failed {
                tracing::warn!(sink = %e.sink.name, "event sink write failed; its records stay in the outbox");
                c.offered = c.written.max(written);
                c.written = c.offered;
                e.sink.outbox_resume_at(c.written);
                c.retry_at = Some(now + c.pause);
                c.pause = (c.pause * 2).min(RETRY_MAX);
                idle = false;
                continue;
            }
            if written >= c.last_record {
                c.written = c.offered;
                c.pause = RETRY_FIRST;
            } else {
                c.written = c.written.max(written);
                idle = false;
            }
            idle &= c.written >= self.seen;
        }
        self.mark(idle)?;
        Ok((full, idle))
    }

    /// Writes the marks when they moved, at most every [`MARK_EVERY`] unless the
    /// outbox is idle, and deletes what every sink has.
    fn mark(&mut self, idle: bool) -> crate::store::Result<()> {
        let now: HashMap<String, i64> = self
            .cursors
            .iter()
            .map(|(n, c)| (n.clone(), c.written))
            .collect();
        // With no sink at all, rows go as soon as they are read.
        let through = now.values().copied().min().unwrap_or(self.seen);
        let moved = now != self.marked || through > self.deleted;
        if !moved || (!idle && self.last_mark.elapsed() < MARK_EVERY) {
            return Ok(());
        }
        let marks: Vec<(String, i64)> = now.iter().map(|(n, s)| (n.clone(), *s)).collect();
        self.runtime
            .block_on(self.store.outbox_mark(marks, through))?;
        self.marked = now;
        self.deleted = through;
        self.last_mark = Instant::now();
        Ok(())
    }
}

/// Whether a row goes to the sink: its filter, or its organization's route.
fn wanted(e: &Entry, routes: &HashMap<String, String>, r: &OutboxRow) -> bool {
    let Some(kind) = kind_of(&r.event.kind) else {
        return false;
    };
    e.filter.matches(kind)
        || (!r.event.org.is_empty()
            && routes.get(&r.event.org).map(String::as_str) == Some(e.sink.name.as_str()))
}

/// The path a file sink writes, for its de-duplication at start.
pub(super) fn file_path(c: &super::config::SinkConfig, base: &std::path::Path) -> Option<PathBuf> {
    (c.kind == super::config::SinkKind::File).then(|| base.join(c.path.clone().unwrap_or_default()))
}

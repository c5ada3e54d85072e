//! `mailgate migrate --from sqlite:PATH --to postgres://…`: copies a stopped
//! single-node store into an empty PostgreSQL database, then compares both.
//!
//! Owns the migration's plan and its checks: parsing the two locations, the
//! refusals (a running or foreign source, a target that holds data or cannot
//! hold a part the source has), the order of the copy, and the verification.
//! The SQL lives with each backend: reading in `sqlite::export`, writing in
//! `postgres::import`. The mail store is copied table by table with every
//! identity a client keeps (ids, UIDs, MODSEQs, item ids, change counters, the
//! feed); the directory, access rules, tags, outbound queue and event outbox go
//! through the target's store traits, so they work once the PostgreSQL backend
//! has them, and until then the migration refuses a source that holds any.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::outbox::{Outbox, OutboxEvent};
use super::postgres::{PgStore, import};
use super::queue::{NewOutbound, OutboundQueue, QueuedRecipient};
use super::sqlite::export::Export;
use super::{StoreError, Tag, Tags};
use crate::access::AccessBackend;
use crate::directory::{DirectoryBackend, RecordOp};

/// Rows handed from the reader to the writer at once, and their bytes at most
/// (a body may exceed it alone): with a channel of [`IN_FLIGHT`] batches this
/// bounds the memory a migration holds, whatever the store's size.
const BATCH_ROWS: usize = 2000;
const BATCH_BYTES: usize = 8 << 20;
const IN_FLIGHT: usize = 4;
/// Directory records per `DirectoryBackend::apply`, events per `outbox_append`.
const RECORDS_PER_APPLY: usize = 500;
const EVENTS_PER_APPEND: usize = 1000;

/// Why a migration did not finish; `main` maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A malformed `--from` or `--to`.
    #[error("{0}")]
    Usage(String),
    /// Nothing was written: the source or the target is not fit (running
    /// daemon, not a store, target holds data, a part the target cannot hold).
    #[error("{0}")]
    Refused(String),
    /// The target server could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The copy failed part way; the target may hold part of the data.
    #[error("{0}")]
    Failed(String),
    /// Everything was copied but the comparison found differences.
    #[error("the copy differs from the source:\n{}", .0.mismatches.join("\n"))]
    Mismatch(Report),
}

/// What a finished migration says: one line per part, and the differences.
#[derive(Debug, Default)]
pub struct Report {
    /// The summary printed on success: what was copied, what was lost.
    pub lines: Vec<String>,
    /// Each difference the verification found (empty on success).
    pub mismatches: Vec<String>,
}

/// The store file named by `--from sqlite:PATH` (`sqlite://PATH` too).
pub fn parse_from(from: &str) -> Result<PathBuf, MigrateError> {
    let path = from
        .strip_prefix("sqlite:")
        .map(|p| p.strip_prefix("//").unwrap_or(p))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            MigrateError::Usage(format!(
                "--from {from:?}: expected sqlite:PATH (the store file, e.g. sqlite:data/store.sqlite)"
            ))
        })?;
    Ok(PathBuf::from(path))
}

/// The database named by `--to postgres://…`, checked for form.
pub fn parse_to(to: &str) -> Result<String, MigrateError> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(MigrateError::Usage(format!(
            "--to: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got {:?}",
            super::postgres::redact(to)
        )));
    }
    to.parse::<tokio_postgres::Config>()
        .map_err(|e| MigrateError::Usage(format!("--to {}: {e}", super::postgres::redact(to))))?;
    Ok(to.to_string())
}

/// A mailbox row of the mail store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailboxRow {
    pub id: String,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub next_uidvalidity: i64,
    pub created_ms: i64,
    /// The highest pruned feed seq (store::housekeeping).
    pub pruned_seq: i64,
}

/// A folder row (its message counts are recounted by the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FolderRow {
    pub id: i64,
    pub mailbox_id: String,
    pub name: String,
    pub kind: Option<String>,
    pub folder_class: String,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highest_modseq: i64,
    pub subscribed: bool,
    pub item_id: String,
    pub change_counter: i64,
    /// The highest MODSEQ of a pruned expunge (store::housekeeping).
    pub pruned_modseq: i64,
}

/// A stored body, once however many messages share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyRow {
    pub id: i64,
    pub size: i64,
    pub data: Vec<u8>,
}

/// A message row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub folder_id: i64,
    pub uid: i64,
    pub modseq: i64,
    pub flags: String,
    pub internal_date: i64,
    pub size: i64,
    pub body_id: i64,
    pub item_id: String,
}

/// An item property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PropRow {
    pub item_id: String,
    pub name: String,
    pub value: Vec<u8>,
}

/// A body cache slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheRow {
    pub body_id: i64,
    pub consumer: String,
    pub data: Vec<u8>,
}

/// A change feed row (expunges among them: QRESYNC's VANISHED reads those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangeRow {
    pub seq: i64,
    pub mailbox_id: String,
    pub folder_id: i64,
    pub kind: String,
    pub uid: i64,
    pub modseq: i64,
    pub item_id: String,
    /// When the change was recorded, epoch ms (pruning's age).
    pub at_ms: i64,
}

/// One row of the mail store, in the order the copy writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MailRow {
    Mailbox(MailboxRow),
    Folder(FolderRow),
    Body(BodyRow),
    Message(MessageRow),
    Prop(PropRow),
    Cache(CacheRow),
    Change(ChangeRow),
}

impl MailRow {
    /// About how many bytes the row holds, for batching.
    fn weight(&self) -> usize {
        64 + match self {
            MailRow::Body(b) => b.data.len(),
            MailRow::Prop(p) => p.value.len(),
            MailRow::Cache(c) => c.data.len(),
            _ => 0,
        }
    }
}

/// A queued message as the source holds it: what `OutboundQueue::enqueue`
/// takes, and each recipient's schedule, which it cannot take.
#[derive(Debug, Clone)]
pub(crate) struct QueuedRow {
    pub message: NewOutbound,
    pub enqueued_ms: i64,
    pub schedule: Vec<QueuedRecipient>,
}

/// A sink's place in the outbox: (sink name, last sequence number it has).
pub(crate) type OutboxMark = (String, i64);

/// A digest of a folder's messages in UID order (UID, MODSEQ, flags, item id,
/// internal date, size, body id): 64-bit FNV-1a, enough to tell a copy that
/// differs from one that does not.
#[derive(Debug, Clone)]
pub(crate) struct UidDigest {
    hash: u64,
    n: u64,
}

impl Default for UidDigest {
    fn default() -> Self {
        UidDigest {
            hash: 0xcbf2_9ce4_8422_2325,
            n: 0,
        }
    }
}

impl UidDigest {
    fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds the next message (in UID order).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        uid: i64,
        modseq: i64,
        flags: &str,
        item_id: &str,
        internal_date: i64,
        size: i64,
        body_id: i64,
    ) {
        for v in [uid, modseq, internal_date, size, body_id] {
            self.eat(&v.to_le_bytes());
        }
        for s in [flags, item_id] {
            self.eat(&(s.len() as u64).to_le_bytes());
            self.eat(s.as_bytes());
        }
        self.n += 1;
    }

    /// Messages added so far.
    pub(crate) fn count(&self) -> u64 {
        self.n
    }

    /// The digest of the messages added so far.
    pub(crate) fn finish(&self) -> u64 {
        self.hash
    }
}

/// What a client sees of one folder, compared between source and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FolderCheck {
    pub id: i64,
    pub mailbox: String,
    pub name: String,
    pub uidvalidity: i64,
    pub uidnext: i64,
    pub highest_modseq: i64,
    pub messages: u64,
    /// [`UidDigest`] of its messages.
    pub digest: u64,
}

/// What a client sees of one mailbox: (id, quota, bytes used, next
/// UIDVALIDITY, latest change feed seq).
pub(crate) type MailboxCheck = (String, i64, i64, i64, i64);

/// The differences between the mailboxes of the source and of the target.
pub(crate) fn compare_mailboxes(source: &[MailboxCheck], target: &[MailboxCheck]) -> Vec<String> {
    let theirs: std::collections::BTreeMap<&str, &MailboxCheck> =
        target.iter().map(|m| (m.0.as_str(), m)).collect();
    let ours: std::collections::BTreeSet<&str> = source.iter().map(|m| m.0.as_str()).collect();
    let mut out = Vec::new();
    for s in source {
        match theirs.get(s.0.as_str()) {
            None => out.push(format!("mailbox {}: missing in the target", s.0)),
            Some(t) if *t != s => out.push(format!(
                "mailbox {}: (quota, used, next UIDVALIDITY, latest change) {:?} in the source, \
                 {:?} in the target",
                s.0,
                (s.1, s.2, s.3, s.4),
                (t.1, t.2, t.3, t.4)
            )),
            Some(_) => {}
        }
    }
    for t in target.iter().filter(|t| !ours.contains(t.0.as_str())) {
        out.push(format!("mailbox {}: only in the target", t.0));
    }
    out
}

/// The differences between the folders of the source and of the target (both
/// ordered by mailbox and name), one line each; empty when they agree.
pub(crate) fn compare_folders(source: &[FolderCheck], target: &[FolderCheck]) -> Vec<String> {
    use std::collections::BTreeMap;
    let key = |f: &FolderCheck| (f.mailbox.clone(), f.name.clone());
    let theirs: BTreeMap<_, _> = target.iter().map(|f| (key(f), f)).collect();
    let mut out = Vec::new();
    for s in source {
        let Some(t) = theirs.get(&key(s)) else {
            out.push(format!("{}/{}: missing in the target", s.mailbox, s.name));
            continue;
        };
        let mut differ = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!(
                    "{}/{}: {what} {a} in the source, {b} in the target",
                    s.mailbox, s.name
                ));
            }
        };
        differ("id", s.id.to_string(), t.id.to_string());
        differ(
            "UIDVALIDITY",
            s.uidvalidity.to_string(),
            t.uidvalidity.to_string(),
        );
        differ("UIDNEXT", s.uidnext.to_string(), t.uidnext.to_string());
        differ(
            "HIGHESTMODSEQ",
            s.highest_modseq.to_string(),
            t.highest_modseq.to_string(),
        );
        differ("messages", s.messages.to_string(), t.messages.to_string());
        differ(
            "UID/MODSEQ/flags digest",
            format!("{:016x}", s.digest),
            format!("{:016x}", t.digest),
        );
    }
    let ours: std::collections::BTreeSet<_> = source.iter().map(key).collect();
    for t in target {
        if !ours.contains(&key(t)) {
            out.push(format!("{}/{}: only in the target", t.mailbox, t.name));
        }
    }
    out
}

/// Carries the outbox's sink marks over to the target's new sequence numbers
/// while the events are appended in order: a mark `m` (source numbering) becomes
/// the target number of the last event with a source number `<= m` (0 if none).
#[derive(Debug, Default)]
pub(crate) struct MarkMap {
    /// Marks not yet placed, ascending by source seq.
    pending: Vec<OutboxMark>,
    placed: Vec<OutboxMark>,
}

impl MarkMap {
    /// The source's marks, none placed yet.
    pub(crate) fn new(mut marks: Vec<OutboxMark>) -> MarkMap {
        marks.sort_by_key(|m| std::cmp::Reverse(m.1));
        MarkMap {
            pending: marks,
            placed: Vec::new(),
        }
    }

    /// Whether a mark falls before the event numbered `seq` (source): then every
    /// event before it must be appended, and [`MarkMap::place_before`] called.
    pub(crate) fn due_before(&self, seq: i64) -> bool {
        self.pending.last().is_some_and(|m| m.1 < seq)
    }

    /// Places the marks below `seq` at `last_target`, the target number of the
    /// last event appended so far.
    pub(crate) fn place_before(&mut self, seq: i64, last_target: i64) {
        while self.pending.last().is_some_and(|m| m.1 < seq) {
            if let Some((sink, _)) = self.pending.pop() {
                self.placed.push((sink, last_target));
            }
        }
    }

    /// Every mark, placed; the ones past the last event at `last_target`.
    pub(crate) fn finish(mut self, last_target: i64) -> Vec<OutboxMark> {
        self.place_before(i64::MAX, last_target);
        while let Some((sink, _)) = self.pending.pop() {
            self.placed.push((sink, last_target));
        }
        self.placed.sort();
        self.placed
    }
}

/// The source, shared with the blocking threads that read it.
type Source = Arc<Mutex<Export>>;

/// The source reader, or an error if a reader thread panicked with it.
fn lock(source: &Source) -> super::Result<std::sync::MutexGuard<'_, Export>> {
    source
        .lock()
        .map_err(|_| StoreError::Io("source reader poisoned".into()))
}

/// Reads the source on a blocking thread, handing what `read` sends through a
/// channel of `capacity` items: the reader waits while the writer is behind.
fn stream<T: Send + 'static>(
    source: &Source,
    capacity: usize,
    read: impl FnOnce(&Export, &mut dyn FnMut(T) -> super::Result<()>) -> super::Result<()>
    + Send
    + 'static,
) -> (
    tokio::sync::mpsc::Receiver<T>,
    tokio::task::JoinHandle<super::Result<()>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let source = source.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let s = lock(&source)?;
        read(&s, &mut |item| {
            tx.blocking_send(item).map_err(|_| StoreError::Closed)
        })
    });
    (rx, reader)
}

/// Runs `f` on the source on a blocking thread.
async fn on_source<T: Send + 'static>(
    source: &Source,
    f: impl FnOnce(&Export) -> super::Result<T> + Send + 'static,
) -> Result<T, MigrateError> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || f(&*lock(&source)?))
        .await
        .map_err(|e| MigrateError::Failed(format!("reading the source: {e}")))?
        .map_err(|e| MigrateError::Failed(format!("reading the source: {e}")))
}

/// Runs a blocking call of the target's (the directory, access and tag traits
/// are blocking) on a blocking thread.
async fn on_target<T: Send + 'static>(
    target: &Arc<PgStore>,
    f: impl FnOnce(&PgStore) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || f(&target))
        .await
        .map_err(|e| e.to_string())?
}

/// How many directory records and access rule documents the target holds,
/// through their traits (an error where the target lacks the part).
async fn held_records(target: &Arc<PgStore>) -> (Result<usize, String>, Result<usize, String>) {
    let directory = on_target(target, |t| {
        DirectoryBackend::load_all(t)
            .map(|r| r.len())
            .map_err(|e| e.to_string())
    })
    .await;
    let access = on_target(target, |t| {
        AccessBackend::load_all(t)
            .map(|r| r.len())
            .map_err(|e| e.to_string())
    })
    .await;
    (directory, access)
}

/// How much the source holds of each part beside the mail store.
#[derive(Debug, Default)]
struct RestCounts {
    directory: usize,
    access: usize,
    tag_arns: usize,
    tags: usize,
    queue_messages: i64,
    queue_recipients: i64,
    outbox: i64,
    outbox_marks: usize,
}

/// Copies the store at `from` (`sqlite:PATH`) into the database `to`
/// (`postgres://…`) and compares them; see the module doc.
pub async fn run(from: &str, to: &str) -> Result<Report, MigrateError> {
    let path = parse_from(from)?;
    let url = parse_to(to)?;
    let source = open_source(&path).await?;
    let target = open_target(&url).await?;
    let rest = refuse_unfit_target(&source, &target).await?;

    let mut report = Report::default();
    copy_mail(&source, &target).await?;
    copy_rest(&source, &target, &rest, &mut report).await?;
    verify(&source, &target, &rest, &mut report).await?;
    if report.mismatches.is_empty() {
        Ok(report)
    } else {
        Err(MigrateError::Mismatch(report))
    }
}

async fn open_source(path: &Path) -> Result<Source, MigrateError> {
    let path = path.to_path_buf();
    let export = tokio::task::spawn_blocking(move || Export::open(&path))
        .await
        .map_err(|e| MigrateError::Failed(e.to_string()))?
        .map_err(|e| match e {
            StoreError::Conflict(why) => MigrateError::Refused(why),
            other => MigrateError::Refused(other.to_string()),
        })?;
    Ok(Arc::new(Mutex::new(export)))
}

/// Connects and runs the schema migrations (a newer schema, or a server that
/// would lose acknowledged commits, is refused).
async fn open_target(url: &str) -> Result<Arc<PgStore>, MigrateError> {
    import::open(url).await.map(Arc::new).map_err(|e| match e {
        StoreError::SchemaTooNew { .. } => MigrateError::Refused(e.to_string()),
        StoreError::Io(m) if m.contains("synchronous_commit") => MigrateError::Refused(m),
        other => MigrateError::Unavailable(format!("{}: {other}", super::postgres::redact(url))),
    })
}

/// Refuses a target that holds data, or that cannot hold a part the source
/// has (today: everything but the mail store): before anything is written.
async fn refuse_unfit_target(
    source: &Source,
    target: &Arc<PgStore>,
) -> Result<RestCounts, MigrateError> {
    let held = import::tables_holding_data(target)
        .await
        .map_err(|e| MigrateError::Failed(e.to_string()))?;
    if !held.is_empty() {
        return Err(MigrateError::Refused(format!(
            "the target already holds data (tables {}): migrate only into an empty database",
            held.join(", ")
        )));
    }
    let rest = on_source(source, |s| {
        let (queue_messages, queue_recipients) = s.queue_counts()?;
        let tags = s.tags()?;
        Ok(RestCounts {
            directory: s.directory()?.len(),
            access: s.access()?.len(),
            tag_arns: tags.len(),
            tags: tags.iter().map(|(_, t)| t.len()).sum(),
            queue_messages,
            queue_recipients,
            outbox: s.outbox_count()?,
            outbox_marks: s.outbox_marks()?.len(),
        })
    })
    .await?;
    // Each part: can the target hold it (the probe answers), and is it empty?
    let mut unfit = Vec::new();
    let mut note = |what: String, has: bool, probe: Result<bool, String>| match probe {
        Ok(true) => unfit.push(format!("the target already holds {what}")),
        Ok(false) => {}
        Err(e) if has => unfit.push(format!(
            "the source holds {what} the target cannot take: {e}"
        )),
        // Nothing to copy, and the target cannot hold any: nothing to lose.
        Err(_) => {}
    };
    let (directory, access) = held_records(target).await;
    note(
        format!("directory records ({})", rest.directory),
        rest.directory > 0,
        directory.map(|n| n > 0),
    );
    note(
        format!("access rule documents ({})", rest.access),
        rest.access > 0,
        access.map(|n| n > 0),
    );
    // The trait cannot list every ARN: the probe only asks whether tags work
    // (emptiness is checked on the table, by `tables_holding_data`).
    let probe = on_target(target, |t| {
        t.tags_blocking("arn:mailgate:migrate-probe")
            .map(|_| false)
            .map_err(|e| e.to_string())
    })
    .await;
    note(format!("tags ({})", rest.tags), rest.tags > 0, probe);
    let probe = target
        .queued_recipients()
        .await
        .map(|n| n > 0)
        .map_err(|e| e.to_string());
    note(
        format!(
            "queued messages ({} messages, {} recipients)",
            rest.queue_messages, rest.queue_recipients
        ),
        rest.queue_recipients > 0,
        probe,
    );
    let probe = match (target.outbox_after(0, 1).await, target.outbox_marks().await) {
        (Ok(rows), Ok(marks)) => Ok(!rows.is_empty() || !marks.is_empty()),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    };
    note(
        format!(
            "event outbox rows ({} events, {} sink marks)",
            rest.outbox, rest.outbox_marks
        ),
        rest.outbox > 0 || rest.outbox_marks > 0,
        probe,
    );
    if unfit.is_empty() {
        Ok(rest)
    } else {
        Err(MigrateError::Refused(format!(
            "nothing was copied: {}",
            unfit.join("; ")
        )))
    }
}

/// The mail store in one transaction: rows stream from a reader thread in
/// bounded batches to the target's COPY.
async fn copy_mail(source: &Source, target: &Arc<PgStore>) -> Result<(), MigrateError> {
    let next_body_id = on_source(source, |s| s.next_body_id()).await?;
    let (rx, reader) = stream(source, IN_FLIGHT, |s, send| {
        let (mut batch, mut bytes) = (Vec::new(), 0usize);
        s.mail(&mut |row| {
            bytes += row.weight();
            batch.push(row);
            if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
                bytes = 0;
                send(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            send(batch)?;
        }
        // The end: only now may the target commit.
        send(Vec::new())
    });
    let written = import::copy_mail(target, rx, next_body_id).await;
    let read = reader
        .await
        .map_err(|e| MigrateError::Failed(e.to_string()))?;
    match (written, read) {
        (Err(StoreError::Conflict(why)), _) => Err(MigrateError::Refused(why)),
        (Err(e), Ok(()) | Err(StoreError::Closed)) => Err(MigrateError::Failed(format!(
            "copying the mail store (rolled back, the target holds none of it): {e}"
        ))),
        (Err(_), Err(e)) => Err(MigrateError::Failed(format!(
            "reading the source (rolled back, the target holds none of the mail store): {e}"
        ))),
        (Ok(()), Err(e)) => Err(MigrateError::Failed(format!(
            "reading the source after its last row: {e}"
        ))),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// A failure after the mail store was committed.
fn part_failed(what: &str, e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Failed(format!(
        "copying {what}: {e} (the mail store is already in the target: drop and recreate the \
         database before running the migration again)"
    ))
}

/// The directory, access rules, tags, outbound queue and outbox, through the
/// target's traits; parts the source has none of are not touched.
async fn copy_rest(
    source: &Source,
    target: &Arc<PgStore>,
    rest: &RestCounts,
    report: &mut Report,
) -> Result<(), MigrateError> {
    if rest.directory > 0 {
        let records = on_source(source, |s| s.directory()).await?;
        on_target(target, move |t| {
            let mut records = records.into_iter().map(RecordOp::Put).peekable();
            while records.peek().is_some() {
                let chunk: Vec<RecordOp> = records.by_ref().take(RECORDS_PER_APPLY).collect();
                t.apply(chunk).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| part_failed("the directory", e))?;
    }
    if rest.access > 0 {
        let docs = on_source(source, |s| s.access()).await?;
        on_target(target, move |t| {
            docs.iter().try_for_each(|(org, json)| {
                AccessBackend::save(t, org, json).map_err(|e| e.to_string())
            })
        })
        .await
        .map_err(|e| part_failed("the access rules", e))?;
    }
    if rest.tags > 0 {
        let tags = on_source(source, |s| s.tags()).await?;
        on_target(target, move |t| {
            for (arn, tags) in tags {
                if !t
                    .tag_blocking(&arn, tags, usize::MAX)
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!("{arn}: refused"));
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| part_failed("the tags", e))?;
    }
    if rest.queue_recipients > 0 {
        let deferred = copy_queue(source, target).await?;
        report.lines.push(format!(
            "queue: {deferred} recipients had failed attempts; their attempt counts, next \
             attempt times and last errors are not carried over (OutboundQueue::enqueue cannot \
             take them): every recipient is due at once and its retry backoff starts again; the \
             enqueue time, which bounds the message's lifetime, is kept"
        ));
    }
    if rest.outbox > 0 || rest.outbox_marks > 0 {
        copy_outbox(source, target).await?;
    }
    Ok(())
}

/// Queued messages one at a time through `OutboundQueue::enqueue`, at their
/// original enqueue time; returns how many recipients had failed attempts (whose
/// schedule the trait cannot carry).
async fn copy_queue(source: &Source, target: &Arc<PgStore>) -> Result<usize, MigrateError> {
    let (mut rx, reader) = stream(source, IN_FLIGHT, |s, send| s.queue(send));
    let (mut written, mut deferred) = (Ok(()), 0);
    while let Some(row) = rx.recv().await {
        deferred += row.schedule.iter().filter(|r| r.attempts > 0).count();
        if let Err(e) = target.enqueue(row.message, row.enqueued_ms).await {
            written = Err(e);
            break;
        }
    }
    drop(rx);
    written.map_err(|e| part_failed("the outbound queue", e))?;
    reader
        .await
        .map_err(|e| part_failed("the outbound queue", e))?
        .map_err(|e| part_failed("the outbound queue", e))?;
    Ok(deferred)
}

/// The outbox's events in order, in batches, and the sinks' marks renumbered
/// ([`MarkMap`]).
async fn copy_outbox(source: &Source, target: &Arc<PgStore>) -> Result<(), MigrateError> {
    let marks = on_source(source, |s| s.outbox_marks()).await?;
    let (mut rx, reader) = stream(source, EVENTS_PER_APPEND, |s, send| s.outbox(send));
    let mut map = MarkMap::new(marks);
    let mut chunk: Vec<OutboxEvent> = Vec::new();
    let mut last = 0i64;
    let fail = |e: StoreError| part_failed("the event outbox", e);
    while let Some(row) = rx.recv().await {
        if map.due_before(row.seq) || chunk.len() >= EVENTS_PER_APPEND {
            if !chunk.is_empty() {
                last = target
                    .outbox_append(std::mem::take(&mut chunk))
                    .await
                    .map_err(fail)?;
            }
            map.place_before(row.seq, last);
        }
        chunk.push(row.event);
    }
    if !chunk.is_empty() {
        last = target.outbox_append(chunk).await.map_err(fail)?;
    }
    target
        .outbox_mark(map.finish(last), 0)
        .await
        .map_err(fail)?;
    reader
        .await
        .map_err(|e| part_failed("the event outbox", e))?
        .map_err(fail)
}

/// Compares what clients see in both stores and fills the report.
async fn verify(
    source: &Source,
    target: &Arc<PgStore>,
    rest: &RestCounts,
    report: &mut Report,
) -> Result<(), MigrateError> {
    let failed = |e: StoreError| MigrateError::Failed(format!("verifying: {e}"));
    let (ours, boxes, bodies, changes) = on_source(source, |s| {
        Ok((
            s.folder_checks()?,
            s.mailbox_checks()?,
            s.bodies()?,
            s.changes()?,
        ))
    })
    .await?;
    let theirs = import::folder_checks(target).await.map_err(failed)?;
    let their_boxes = import::mailbox_checks(target).await.map_err(failed)?;
    report
        .mismatches
        .extend(compare_mailboxes(&boxes, &their_boxes));
    let (t_bodies, t_changes) = import::counts(target).await.map_err(failed)?;
    report.mismatches.extend(compare_folders(&ours, &theirs));
    let messages: u64 = ours.iter().map(|f| f.messages).sum();
    report.lines.push(format!(
        "mail: {} mailboxes, {} folders, {messages} messages, {bodies} bodies, {changes} feed rows",
        boxes.len(),
        ours.len()
    ));
    let mut counted = Vec::new();
    let count = |out: &mut Vec<String>, what: &str, a: i64, b: i64| {
        if a != b {
            out.push(format!("{what}: {a} in the source, {b} in the target"));
        }
    };
    count(&mut counted, "bodies", bodies, t_bodies);
    count(&mut counted, "change feed rows", changes, t_changes);
    if rest.directory > 0 || rest.access > 0 {
        let (directory, access) = held_records(target).await;
        let failed = |e| MigrateError::Failed(format!("verifying: {e}"));
        let (directory, access) = (directory.map_err(failed)?, access.map_err(failed)?);
        count(
            &mut counted,
            "directory records",
            rest.directory as i64,
            directory as i64,
        );
        count(
            &mut counted,
            "access rule documents",
            rest.access as i64,
            access as i64,
        );
    }
    if rest.tags > 0 {
        let tags = on_source(source, |s| s.tags()).await?;
        let differ = on_target(target, move |t| {
            let mut differ = Vec::new();
            for (arn, theirs) in tags {
                let ours: Vec<Tag> = t.tags_blocking(&arn).map_err(|e| e.to_string())?;
                if ours != theirs {
                    differ.push(arn);
                }
            }
            Ok(differ)
        })
        .await
        .map_err(|e| MigrateError::Failed(format!("verifying the tags: {e}")))?;
        counted.extend(differ.iter().map(|arn| format!("tags of {arn} differ")));
    }
    if rest.queue_recipients > 0 {
        let n = target.queued_recipients().await.map_err(failed)?;
        count(
            &mut counted,
            "queued recipients",
            rest.queue_recipients,
            n as i64,
        );
    }
    if rest.outbox > 0 {
        let mut n = 0i64;
        let mut after = 0;
        loop {
            let rows = target
                .outbox_after(after, super::outbox::MAX_READ)
                .await
                .map_err(failed)?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            n += rows.len() as i64;
        }
        count(&mut counted, "outbox events", rest.outbox, n);
    }
    report.mismatches.extend(counted);
    report.lines.push(format!(
        "directory: {} records; access rules: {} organizations; tags: {} on {} resources; \
         queue: {} messages, {} recipients; outbox: {} events, {} sink marks",
        rest.directory,
        rest.access,
        rest.tags,
        rest.tag_arns,
        rest.queue_messages,
        rest.queue_recipients,
        rest.outbox,
        rest.outbox_marks
    ));
    report.lines.push(if report.mismatches.is_empty() {
        "verified: every mailbox's quota, use, UIDVALIDITY counter and feed position, every folder's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, message count and \
         UID/MODSEQ/flags digest, and the counts above, agree"
            .into()
    } else {
        format!("{} differences", report.mismatches.len())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_must_name_an_sqlite_file() {
        assert_eq!(
            parse_from("sqlite:data/store.sqlite").unwrap(),
            PathBuf::from("data/store.sqlite")
        );
        assert_eq!(
            parse_from("sqlite:///var/lib/mailgate/store.sqlite").unwrap(),
            PathBuf::from("/var/lib/mailgate/store.sqlite")
        );
        for bad in ["data/store.sqlite", "sqlite:", "postgres://x/y", ""] {
            let e = parse_from(bad).unwrap_err();
            assert!(
                matches!(&e, MigrateError::Usage(m) if m.contains("sqlite:PATH")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn to_must_be_a_postgres_url_and_errors_hide_the_password() {
        assert!(parse_to("postgres://mg:pw@127.0.0.1:5432/mail").is_ok());
        assert!(parse_to("postgresql://mg@localhost/mail").is_ok());
        let e = parse_to("mysql://mg:s3cret@db/mail")
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgres://") && !e.contains("s3cret"), "{e}");
        let e = parse_to("postgres://mg:s3cret@db:notaport/mail")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    fn folder(name: &str, uidnext: i64, digest: u64) -> FolderCheck {
        FolderCheck {
            id: 1,
            mailbox: "u".into(),
            name: name.into(),
            uidvalidity: 7,
            uidnext,
            highest_modseq: 3,
            messages: 2,
            digest,
        }
    }

    #[test]
    fn folders_that_differ_are_named_with_what_differs() {
        let a = [folder("INBOX", 3, 10), folder("Old", 1, 0)];
        assert!(compare_folders(&a, &a).is_empty());
        let b = [folder("INBOX", 4, 11), folder("New", 1, 0)];
        let diff = compare_folders(&a, &b);
        assert_eq!(diff.len(), 4, "{diff:?}");
        assert!(
            diff[0].contains("INBOX: UIDNEXT 3 in the source, 4"),
            "{diff:?}"
        );
        assert!(diff[1].contains("digest"), "{diff:?}");
        assert!(diff[2].contains("u/Old: missing"), "{diff:?}");
        assert!(diff[3].contains("u/New: only in the target"), "{diff:?}");
    }

    #[test]
    fn mailboxes_that_differ_are_named() {
        let a = vec![
            ("u".to_string(), 10, 5, 7, 3),
            ("v".to_string(), 10, 0, 2, 0),
        ];
        assert!(compare_mailboxes(&a, &a).is_empty());
        let b = vec![
            ("u".to_string(), 10, 5, 7, 4),
            ("w".to_string(), 1, 0, 1, 0),
        ];
        let diff = compare_mailboxes(&a, &b);
        assert_eq!(diff.len(), 3, "{diff:?}");
        assert!(diff[0].contains("mailbox u:") && diff[0].contains("(10, 5, 7, 4)"));
        assert!(diff[1].contains("mailbox v: missing"));
        assert!(diff[2].contains("mailbox w: only in the target"));
    }

    #[test]
    fn the_digest_sees_every_field_and_the_order() {
        let d = |msgs: &[(i64, i64, &str)]| {
            let mut d = UidDigest::default();
            for (uid, modseq, flags) in msgs {
                d.push(*uid, *modseq, flags, "i", 0, 1, 1);
            }
            (d.count(), d.finish())
        };
        let base = d(&[(1, 2, "\\Seen"), (2, 3, "")]);
        assert_eq!(base.0, 2);
        assert_eq!(base, d(&[(1, 2, "\\Seen"), (2, 3, "")]));
        assert_ne!(base, d(&[(1, 2, ""), (2, 3, "\\Seen")]));
        assert_ne!(base, d(&[(2, 3, ""), (1, 2, "\\Seen")]));
        assert_ne!(base, d(&[(1, 2, "\\Seen"), (2, 4, "")]));
        assert_ne!(base, d(&[(1, 2, "\\Seen"), (3, 3, "")]));
    }

    /// Appends events with source numbers `seqs` (target numbers from 100 on),
    /// chunked as `copy_outbox` does, and returns the marks placed.
    fn carry(marks: &[(&str, i64)], seqs: &[i64]) -> Vec<OutboxMark> {
        let mut map = MarkMap::new(marks.iter().map(|(s, m)| (s.to_string(), *m)).collect());
        let (mut appended, mut chunk, mut last) = (99i64, 0, 0);
        for &seq in seqs {
            if map.due_before(seq) {
                if chunk > 0 {
                    appended += chunk;
                    last = appended;
                    chunk = 0;
                }
                map.place_before(seq, last);
            }
            chunk += 1;
        }
        if chunk > 0 {
            last = appended + chunk;
        }
        map.finish(last)
    }

    #[test]
    fn outbox_marks_follow_their_events_to_the_new_numbers() {
        // Events 11..=15 are left; sink a has seen up to 12, b all, c none,
        // d up to 13 (a gap in the source numbers before 15).
        let got = carry(
            &[("a", 12), ("b", 20), ("c", 3), ("d", 13)],
            &[11, 12, 13, 15],
        );
        assert_eq!(
            got,
            vec![
                ("a".into(), 101),
                ("b".into(), 103),
                ("c".into(), 0),
                ("d".into(), 102)
            ]
        );
        assert_eq!(carry(&[("a", 5)], &[]), vec![("a".into(), 0)]);
    }
}

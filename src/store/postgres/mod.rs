//! The PostgreSQL store (issue 19): many daemons on one database behaving as one
//! server. Work in progress: the mail core of [`Store`] is here; the outbound
//! queue, directory, access rules, tags and event outbox are not yet, and their
//! methods answer [`unsupported`] errors, so `store::open` refuses this backend
//! until they exist (see docs/postgres-progress.md).
//!
//! Owns the PostgreSQL [`Backend`]: the connection pool (deadpool-postgres), the
//! schema and its migrations (`schema`), the SQL of each operation (`ops`), the
//! retry of a whole transaction on a serialization failure or deadlock, and the
//! in-process wake-ups of watchers after each commit (cross-daemon LISTEN/NOTIFY
//! comes later). Named only by `store`'s factory and the conformance suite.
//!
//! Durability: PostgreSQL acknowledges a commit after its WAL flush when
//! `synchronous_commit` is on, which [`schema::prepare`] checks at open; its own
//! group commit replaces the SQLite writer thread. Bodies are `bytea`, stored
//! once per delivery however many mailboxes receive it.

pub(crate) mod import;
mod ops;
mod schema;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::queue::{DueMessage, NewOutbound, OutboundQueue};
use super::{
    Backend, CacheConsumer, Change, CopyOutcome, DeliveryEvents, ExpectedWrite, FlagOp,
    FlagOutcome, Folder, ItemChange, MailboxId, MessageMeta, NewMessage, Outbox, OutboxEvent,
    OutboxRow, Property, Quota, Refused, Result, Store, StoreError, Stored, Tag, Tags, Target,
    WriterStats,
};
use crate::access::{AccessBackend, AccessError};
use crate::directory::{DirectoryBackend, DirectoryError, Record, RecordOp};

/// Mailboxes whose change feed moved in a write, with the newest sequence number.
type Touched = Vec<(String, i64)>;

/// How an operation failed: the store's own answer, or the database's (which
/// [`OpError::retryable`] sorts into "run the whole transaction again" and not).
#[derive(Debug)]
pub(crate) enum OpError {
    Store(StoreError),
    Db(tokio_postgres::Error),
}

/// What every operation returns.
pub(crate) type Op<T> = std::result::Result<T, OpError>;

impl From<tokio_postgres::Error> for OpError {
    fn from(e: tokio_postgres::Error) -> Self {
        OpError::Db(e)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

impl OpError {
    /// Whether running the transaction again may succeed: a serialization
    /// failure, a deadlock, or a row that a concurrent commit removed from under
    /// a reference (a body freed while a copy linked it).
    fn retryable(&self) -> bool {
        let OpError::Db(e) = self else { return false };
        e.code().is_some_and(is_retryable_state)
    }

    fn into_store(self) -> StoreError {
        match self {
            OpError::Store(e) => e,
            OpError::Db(e) => pg_error(e),
        }
    }
}

/// The SQLSTATEs [`OpError::retryable`] retries.
fn is_retryable_state(code: &SqlState) -> bool {
    *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::FOREIGN_KEY_VIOLATION
}

/// A database error as a store error, with the server's message and SQLSTATE.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Io(format!(
            "postgres: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Io(format!("postgres: {e}")),
    }
}

/// The error of a part of [`Backend`] this backend does not have yet: never a
/// silent stub.
pub(crate) fn unsupported(what: &str) -> StoreError {
    StoreError::Io(format!(
        "{what} is not yet supported by the postgres backend"
    ))
}

/// Times a transaction is run again after a serialization failure or deadlock.
const MAX_RETRIES: u32 = 8;

/// The pause before retry `attempt` (1-based): exponential from 2 ms, capped at
/// 256 ms, with full jitter so that colliding writers spread out.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 2u64 << attempt.min(7);
    Duration::from_millis(rand::random_range(1..=cap_ms))
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `postgres://user[:password]@host[:port]/db`.
    pub url: String,
    /// Connections this daemon keeps at most.
    pub pool_size: usize,
}

/// The PostgreSQL-backed [`Backend`].
pub struct PgStore {
    pool: Pool,
    stats: WriterStats,
    /// Writes announced ([`Store::expect_write`]) and not yet submitted; kept for
    /// the contract, PostgreSQL's group commit does not wait for them.
    announced: Arc<AtomicUsize>,
    watchers: Arc<DashMap<String, watch::Sender<i64>>>,
}

/// Runs a write transaction: `$body` (an `ops` call naming `$tx`) returns the
/// value and the mailboxes whose feed moved; the transaction commits, watchers
/// wake, and a serialization failure or deadlock runs it all again after a
/// jittered pause.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let mut attempt = 0u32;
        loop {
            let outcome: Op<_> = async {
                let mut client = store.client().await?;
                let $tx = client.transaction().await?;
                let (value, touched) = $body.await?;
                $tx.commit().await?;
                Ok((value, touched))
            }
            .await;
            match outcome {
                Ok((value, touched)) => {
                    store.stats.commits.fetch_add(1, Ordering::Relaxed);
                    store.stats.writes.fetch_add(1, Ordering::Relaxed);
                    store.wake(touched);
                    break Ok(value);
                }
                Err(e) if e.retryable() && attempt < MAX_RETRIES => {
                    attempt += 1;
                    store.stats.redone.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => break Err(e.into_store()),
            }
        }
    }};
}

/// Runs a read on a pooled connection, outside a transaction: every read is
/// one statement (one snapshot) but `folders`, whose mailbox check comes first.
macro_rules! read_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let outcome: Op<_> = async {
            let $tx = store.client().await?;
            $body.await
        }
        .await;
        outcome.map_err(OpError::into_store)
    }};
}

impl PgStore {
    /// Connects, checks the server's settings, migrates the schema (refusing a
    /// newer one) and returns the store with its pool.
    pub async fn open(settings: &Settings) -> Result<PgStore> {
        prepare(&settings.url).await?;
        PgStore::with_pool(settings)
    }

    /// The store over a pool that connects on demand, for a database that
    /// [`prepare`] has already made ready.
    fn with_pool(settings: &Settings) -> Result<PgStore> {
        let config: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|e| StoreError::Io(format!("store.url: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Io(format!("postgres pool: {e}")))?;
        Ok(PgStore {
            pool,
            stats: WriterStats::default(),
            announced: Arc::new(AtomicUsize::new(0)),
            watchers: Arc::new(DashMap::new()),
        })
    }

    async fn client(&self) -> Op<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| OpError::Store(StoreError::Io(format!("postgres pool: {e}"))))
    }

    /// Tells watchers of each touched mailbox its newest sequence number, never
    /// moving a watcher backwards (two commits may report in either order).
    fn wake(&self, touched: Touched) {
        for (mailbox, seq) in touched {
            if let Some(w) = self.watchers.get(&mailbox) {
                w.send_if_modified(|v| {
                    let newer = seq > *v;
                    if newer {
                        *v = seq;
                    }
                    newer
                });
            }
        }
    }
}

/// Connects once with its own connection, checks the settings and migrates.
async fn prepare(url: &str) -> Result<()> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg_error)?;
    let task = tokio::spawn(connection);
    let prepared = schema::prepare(&mut client, &redact(url)).await;
    drop(client);
    let _ = task.await;
    prepared
}

/// A URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Backend for PgStore {
    fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    fn announced_writes(&self) -> usize {
        self.announced.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Store for PgStore {
    fn expect_write(&self) -> ExpectedWrite {
        ExpectedWrite::counted_in(self.announced.clone())
    }

    async fn create_mailbox(&self, mailbox: &MailboxId, quota_bytes: u64) -> Result<()> {
        write_tx!(self, |tx| ops::create_mailbox(&tx, mailbox, quota_bytes))
    }

    async fn folders(&self, mailbox: &MailboxId) -> Result<Vec<Folder>> {
        read_tx!(self, |tx| ops::folders(&tx, mailbox))
    }

    async fn create_folder_of_class(
        &self,
        mailbox: &MailboxId,
        name: &str,
        folder_class: &str,
    ) -> Result<Folder> {
        write_tx!(self, |tx| ops::create_folder(
            &tx,
            mailbox,
            name,
            folder_class
        ))
    }

    async fn delete_folder(&self, folder_id: i64) -> Result<()> {
        write_tx!(self, |tx| ops::delete_folder(&tx, folder_id))
    }

    async fn deliver(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        write_tx!(self, |tx| ops::deliver(&tx, &body, internal_date, &targets))
    }

    async fn deliver_recording(
        &self,
        _body: Arc<[u8]>,
        _internal_date: i64,
        _targets: Vec<Target>,
        _events: DeliveryEvents,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        Err(unsupported("the event outbox (deliver_recording)"))
    }

    async fn append_all(
        &self,
        folder_id: i64,
        messages: Vec<NewMessage>,
    ) -> Result<std::result::Result<Vec<Stored>, Refused>> {
        write_tx!(self, |tx| ops::append_all(&tx, folder_id, &messages))
    }

    async fn replace_message(
        &self,
        folder_id: i64,
        uid: u32,
        message: NewMessage,
    ) -> Result<std::result::Result<Stored, Refused>> {
        write_tx!(self, |tx| ops::replace_message(
            &tx, folder_id, uid, &message
        ))
    }

    async fn messages(&self, folder_id: i64, first: u32, last: u32) -> Result<Vec<MessageMeta>> {
        read_tx!(self, |tx| ops::messages(&tx, folder_id, first, last))
    }

    async fn messages_newest_first(
        &self,
        folder_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageMeta>> {
        read_tx!(self, |tx| ops::messages_newest_first(
            &tx, folder_id, offset, limit
        ))
    }

    async fn uids_dated_before(
        &self,
        folder_id: i64,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<u32>> {
        read_tx!(self, |tx| ops::uids_dated_before(
            &tx, folder_id, before_ms, limit
        ))
    }

    async fn bodies(&self, body_ids: Vec<i64>) -> Result<Vec<Option<Vec<u8>>>> {
        read_tx!(self, |tx| ops::bodies(&tx, &body_ids))
    }

    async fn store_flags(
        &self,
        folder_id: i64,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        write_tx!(self, |tx| ops::store_flags(
            &tx,
            folder_id,
            &uids,
            op,
            &flags,
            unchanged_since
        ))
    }

    async fn change_item(
        &self,
        folder_id: i64,
        uid: u32,
        change: ItemChange,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        write_tx!(self, |tx| ops::change_item(
            &tx,
            folder_id,
            uid,
            &change,
            unchanged_since
        ))
    }

    async fn properties(
        &self,
        item_ids: Vec<String>,
    ) -> Result<std::collections::HashMap<String, Vec<Property>>> {
        read_tx!(self, |tx| ops::properties(&tx, &item_ids))
    }

    async fn expunge(&self, folder_id: i64, uids: Vec<u32>) -> Result<Vec<u32>> {
        write_tx!(self, |tx| ops::expunge(&tx, folder_id, &uids))
    }

    async fn changes_since(
        &self,
        mailbox: &MailboxId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Change>> {
        read_tx!(self, |tx| ops::changes_since(
            &tx, mailbox, after_seq, limit
        ))
    }

    async fn expunged_since(
        &self,
        mailbox: &MailboxId,
        folder_id: i64,
        modseq: u64,
    ) -> Result<Vec<u32>> {
        read_tx!(self, |tx| ops::expunged_since(
            &tx, mailbox, folder_id, modseq
        ))
    }

    async fn latest_change(&self, mailbox: &MailboxId) -> Result<i64> {
        read_tx!(self, |tx| ops::latest_change(&tx, mailbox))
    }

    fn watch(&self, mailbox: &MailboxId) -> watch::Receiver<i64> {
        self.watchers
            .entry(mailbox.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    async fn rename_folder(&self, folder_id: i64, new_name: &str) -> Result<()> {
        write_tx!(self, |tx| ops::rename_folder(&tx, folder_id, new_name))
    }

    async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<()> {
        write_tx!(self, |tx| ops::set_subscribed(&tx, folder_id, subscribed))
    }

    async fn copy_messages(
        &self,
        from_folder: i64,
        uids: Vec<u32>,
        to_folder: i64,
        remove_source: bool,
    ) -> Result<std::result::Result<CopyOutcome, Refused>> {
        write_tx!(self, |tx| ops::copy_messages(
            &tx,
            from_folder,
            &uids,
            to_folder,
            remove_source
        ))
    }

    async fn body_cache(&self, body_id: i64, consumer: CacheConsumer) -> Result<Option<Vec<u8>>> {
        read_tx!(self, |tx| ops::body_cache(&tx, body_id, consumer))
    }

    async fn put_body_cache(
        &self,
        body_id: i64,
        consumer: CacheConsumer,
        data: Vec<u8>,
    ) -> Result<()> {
        write_tx!(self, |tx| ops::put_body_cache(
            &tx, body_id, consumer, &data
        ))
    }

    async fn messages_by_item_ids(
        &self,
        item_ids: Vec<String>,
    ) -> Result<Vec<Option<(Folder, MessageMeta)>>> {
        read_tx!(self, |tx| ops::messages_by_item_ids(&tx, &item_ids))
    }

    async fn folder_by_item_id(&self, item_id: &str) -> Result<Folder> {
        read_tx!(self, |tx| ops::folder_by_item_id(&tx, item_id))
    }

    async fn quota(&self, mailbox: &MailboxId) -> Result<Quota> {
        read_tx!(self, |tx| ops::quota(&tx, mailbox))
    }

    async fn set_quota(&self, mailbox: &MailboxId, limit_bytes: u64) -> Result<()> {
        write_tx!(self, |tx| ops::set_quota(&tx, mailbox, limit_bytes))
    }
}

// What the next slices bring (docs/postgres-progress.md): until then each
// method says so instead of pretending.

#[async_trait]
impl OutboundQueue for PgStore {
    async fn enqueue(&self, _message: NewOutbound, _now_ms: i64) -> Result<i64> {
        Err(unsupported("the outbound queue"))
    }

    async fn deliver_and_enqueue(
        &self,
        _body: Arc<[u8]>,
        _internal_date: i64,
        _targets: Vec<Target>,
        _message: NewOutbound,
        _events: Option<DeliveryEvents>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        Err(unsupported("the outbound queue"))
    }

    async fn due(&self, _now_ms: i64, _limit: usize) -> Result<Vec<DueMessage>> {
        Err(unsupported("the outbound queue"))
    }

    async fn queued_body(&self, _message_id: i64) -> Result<Vec<u8>> {
        Err(unsupported("the outbound queue"))
    }

    async fn next_attempt_ms(&self) -> Result<Option<i64>> {
        Err(unsupported("the outbound queue"))
    }

    async fn finish_recipient(&self, _recipient_id: i64) -> Result<()> {
        Err(unsupported("the outbound queue"))
    }

    async fn defer_recipient(
        &self,
        _recipient_id: i64,
        _next_ms: i64,
        _error: String,
    ) -> Result<()> {
        Err(unsupported("the outbound queue"))
    }

    async fn queued_recipients(&self) -> Result<usize> {
        Err(unsupported("the outbound queue"))
    }
}

#[async_trait]
impl Outbox for PgStore {
    async fn outbox_append(&self, _events: Vec<OutboxEvent>) -> Result<i64> {
        Err(unsupported("the event outbox"))
    }

    async fn outbox_after(&self, _after: i64, _limit: usize) -> Result<Vec<OutboxRow>> {
        Err(unsupported("the event outbox"))
    }

    async fn outbox_marks(&self) -> Result<Vec<(String, i64)>> {
        Err(unsupported("the event outbox"))
    }

    async fn outbox_mark(&self, _marks: Vec<(String, i64)>, _delete_through: i64) -> Result<()> {
        Err(unsupported("the event outbox"))
    }
}

impl Tags for PgStore {
    fn tags_blocking(&self, _arn: &str) -> Result<Vec<Tag>> {
        Err(unsupported("tags"))
    }

    fn tag_blocking(&self, _arn: &str, _tags: Vec<Tag>, _max: usize) -> Result<bool> {
        Err(unsupported("tags"))
    }

    fn untag_blocking(&self, _arn: &str, _keys: Vec<String>) -> Result<()> {
        Err(unsupported("tags"))
    }
}

impl DirectoryBackend for PgStore {
    fn load_all(&self) -> std::result::Result<Vec<Record>, DirectoryError> {
        Err(DirectoryError::Backend(
            unsupported("the directory").to_string(),
        ))
    }

    fn apply(&self, _ops: Vec<RecordOp>) -> std::result::Result<(), DirectoryError> {
        Err(DirectoryError::Backend(
            unsupported("the directory").to_string(),
        ))
    }
}

impl AccessBackend for PgStore {
    fn load_all(&self) -> std::result::Result<Vec<(String, String)>, AccessError> {
        Err(AccessError::Backend(
            unsupported("access rules").to_string(),
        ))
    }

    fn save(&self, _org: &str, _json: &str) -> std::result::Result<(), AccessError> {
        Err(AccessError::Backend(
            unsupported("access rules").to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_serialization_failures_deadlocks_and_lost_references_only() {
        assert!(is_retryable_state(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(is_retryable_state(&SqlState::T_R_DEADLOCK_DETECTED));
        assert!(is_retryable_state(&SqlState::FOREIGN_KEY_VIOLATION));
        assert!(!is_retryable_state(&SqlState::UNIQUE_VIOLATION));
        assert!(!is_retryable_state(&SqlState::SYNTAX_ERROR));
        assert!(!OpError::Store(StoreError::NotFound("x")).retryable());
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(
                d >= Duration::from_millis(1) && d <= Duration::from_millis(256),
                "{d:?}"
            );
        }
    }

    #[test]
    fn urls_in_messages_lose_their_password() {
        assert_eq!(
            redact("postgres://mg:s3cret@db.test:5432/mail"),
            "postgres://mg@db.test:5432/mail"
        );
        assert_eq!(redact("postgres://mg@db/mail"), "postgres://mg@db/mail");
        assert_eq!(redact("postgres://db/mail"), "postgres://db/mail");
    }

    #[test]
    fn unsupported_parts_say_so() {
        let e = unsupported("the outbound queue").to_string();
        assert!(
            e.contains("not yet supported by the postgres backend"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod store_tests;

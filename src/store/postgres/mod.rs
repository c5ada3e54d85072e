//! The PostgreSQL store (issue 19): many daemons on one database behaving as one
//! server: the mail core of [`Store`], the outbound queue (`queue`), the event
//! outbox (`outbox`), tags (`tags`), the directory and the access rules
//! (`directory`, `access`, fenced by `versions`), shared secrets and the login
//! throttle's shared state (see docs/postgres-progress.md).
//!
//! Owns the PostgreSQL [`Backend`]: the connection pool (deadpool-postgres) and
//! its TLS (`tls`), the schema and its migrations (`schema`), the SQL of each
//! operation (`ops`), the retry of a whole transaction on a serialization failure
//! or deadlock, and the wake-ups of watchers after each commit: in-process at
//! once, in other daemons through LISTEN/NOTIFY (`notify`). Named only by
//! `store`'s factory and the conformance suite.
//!
//! Durability: PostgreSQL acknowledges a commit after its WAL flush when
//! `synchronous_commit` is on, which [`schema::prepare`] checks at open; its own
//! group commit replaces the SQLite writer thread, and deliveries queued behind
//! one into the same mailbox share its next transaction (`batch`). Bodies are
//! `bytea`, stored once per delivery however many mailboxes receive it.

mod batch;
pub(crate) mod import;
mod notify;
mod ops;
mod schema;
#[cfg(test)]
pub(crate) mod testing;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{broadcast, watch};
use tokio_postgres::error::SqlState;

use super::{
    Backend, CacheConsumer, Change, CopyOutcome, DeliveryEvents, ExpectedWrite, FlagOp,
    FlagOutcome, Folder, ItemChange, MailboxId, MessageMeta, NewMessage, Property, Quota, Refused,
    Result, StateChange, Store, StoreError, Stored, Target, WriterStats,
};
pub use notify::SAFETY_POLL;

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
/// A lost connection or a server shutting down, starting or full is
/// [`StoreError::Unavailable`]: temporary, answered "try again later".
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => {
            let text = format!("postgres: {} (SQLSTATE {})", db.message(), db.code().code());
            if is_unavailable_state(db.code()) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Io(text)
            }
        }
        // No server answer at all: the connection broke or never opened. The
        // cause (a TLS or I/O error) is in the source chain, not the text.
        None => {
            let mut text = format!("postgres: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            StoreError::Unavailable(text)
        }
    }
}
/// The first key of [`Backend::singleton`]'s advisory locks ("sing" in ASCII);
/// the second is the job name's hash.
const SINGLETON_LOCK: i32 = 0x7369_6e67;

/// A connection the pool could not give: the server's refusal as [`pg_error`]
/// says, a timeout as unavailable.
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        deadpool_postgres::PoolError::Timeout(_) => {
            StoreError::Unavailable(format!("postgres pool: {e}"))
        }
        e => StoreError::Io(format!("postgres pool: {e}")),
    }
}

/// SQLSTATEs that mean "the server is not there right now": class 08
/// (connection exception), 57P01-57P03 (shutdown, crash, starting up) and 53300
/// (too many connections).
fn is_unavailable_state(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
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
    /// `postgres://user[:password]@host[:port]/db`, with libpq's `sslmode` and
    /// `sslrootcert` if wanted (see `tls`).
    pub url: String,
    /// Connections this daemon keeps at most.
    pub pool_size: usize,
}

/// The PostgreSQL-backed [`Backend`].
pub struct PgStore {
    pool: Pool,
    stats: Arc<WriterStats>,
    /// This store's id as a holder of outbound queue leases (`queue`).
    /// The daemon this store serves, for the rows only it reads (its event
    /// outbox); stable across restarts ([`PgStore::with_node`]). Empty for tools.
    node: String,
    owner: String,
    /// How long a lease taken by `due` lasts ([`queue::queue_lease`]).
    lease: Duration,
    /// Writes announced ([`Store::expect_write`]) and not yet submitted; kept for
    /// the contract, PostgreSQL's group commit does not wait for them.
    announced: Arc<AtomicUsize>,
    watchers: notify::Watchers,
    /// How every connection is made (the pool's, the listener's).
    connector: tls::Connector,
    /// Cross-daemon wake-ups: sender, listener, their counters.
    hub: Arc<notify::Hub>,
    /// The group commit of deliveries (`batch`).
    batch: Arc<batch::Batcher>,
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

// After the macros, which they use.
mod access;
mod blocking;
mod directory;
mod housekeeping;
mod outbox;
pub(crate) mod queue;
mod secrets;
mod shared_state;
#[cfg(test)]
mod shared_tests;
mod tags;
mod versions;

impl PgStore {
    /// Connects, checks the server's settings, migrates the schema (refusing a
    /// newer one) and returns the store with its pool.
    /// Other daemons' writes wake this store's watchers only once
    /// [`PgStore::start_notify`] has run.
    pub async fn open(settings: &Settings) -> Result<PgStore> {
        let store = PgStore::with_pool(settings)?;
        prepare(&store.connector, &settings.url).await?;
        Ok(store)
    }

    /// Starts this daemon's NOTIFY sender and its LISTEN connection on the
    /// current runtime, with a safety poll of watched mailboxes every `poll`;
    /// they end when the store is dropped. Once; a second call does nothing.
    pub fn start_notify(&self, poll: Duration) {
        notify::start(
            &self.hub,
            self.pool.clone(),
            self.connector.clone(),
            self.watchers.clone(),
            poll,
        );
    }

    /// After committing directory, access-rule or tag data: tells the other
    /// daemons to reload it (they see it on [`Backend::state_changes`]).
    #[allow(dead_code)] // Called by the directory/access/tags parts (issue 19).
    pub(crate) fn publish_state(&self, change: StateChange) {
        self.hub.state_changed(change);
    }

    /// The same store with outbound queue leases of `lease` (default
    /// [`queue::DEFAULT_QUEUE_LEASE`]; [`queue::queue_lease`] derives it from the
    /// SMTP timeouts). Tests shorten it to see a takeover without waiting.
    pub fn with_queue_lease(mut self, lease: Duration) -> PgStore {
        self.lease = lease;
        self
    }

    /// The same store serving the daemon named `node` (its event outbox rows).
    pub fn with_node(mut self, node: String) -> PgStore {
        self.batch = self.batch.for_node(node.clone());
        self.node = node;
        self
    }

    /// The store over a pool that connects on demand, for a database that
    /// [`prepare`] has already made ready.
    fn with_pool(settings: &Settings) -> Result<PgStore> {
        let connector = tls::Connector::from_url(&settings.url)?;
        let manager = Manager::from_config(
            connector.config.clone(),
            connector.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Io(format!("postgres pool: {e}")))?;
        let stats = Arc::new(WriterStats::default());
        let watchers: notify::Watchers = Arc::new(DashMap::new());
        let hub = Arc::new(notify::Hub::default());
        let batch = batch::Batcher::new(
            pool.clone(),
            stats.clone(),
            watchers.clone(),
            hub.clone(),
            String::new(),
        );
        Ok(PgStore {
            pool,
            stats,
            owner: queue::new_owner(),
            node: String::new(),
            lease: queue::DEFAULT_QUEUE_LEASE,
            announced: Arc::new(AtomicUsize::new(0)),
            watchers,
            connector,
            hub,
            batch,
        })
    }

    async fn client(&self) -> Op<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| OpError::Store(pool_error(e)))
    }

    /// Tells watchers of each touched mailbox its newest sequence number, never
    /// moving a watcher backwards (two commits may report in either order), and
    /// hands the mailboxes to the NOTIFY sender for other daemons.
    fn wake(&self, touched: Touched) {
        wake_watchers(&self.watchers, &self.hub, touched);
    }
}

/// [`PgStore::wake`] for a holder of the watchers and the hub (`batch`).
fn wake_watchers(watchers: &notify::Watchers, hub: &notify::Hub, touched: Touched) {
    for (mailbox, seq) in touched {
        notify::advance(watchers, &mailbox, seq);
        hub.mail_written(&mailbox);
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.hub.stop.cancel();
    }
}

/// Connects once with its own connection, checks the settings and migrates.
async fn prepare(connector: &tls::Connector, url: &str) -> Result<()> {
    let mut client = connector.connect().await?;
    schema::prepare(&mut client, &redact(url)).await
}

/// `check-config`'s look at the database of `url`, changing nothing: it answers,
/// `synchronous_commit` is not off, and its schema is not newer than this build.
pub async fn check(url: &str) -> Result<()> {
    let connector = tls::Connector::from_url(url)?;
    let client = connector.connect().await.map_err(|e| {
        let why = match e {
            StoreError::Io(why) => why,
            other => other.to_string(),
        };
        StoreError::Io(format!(
            "store.url ({}): cannot connect: {why}",
            redact(url)
        ))
    })?;
    schema::check(&client, &redact(url)).await
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

    fn shared_state(&self) -> Option<&dyn super::shared_state::SharedState> {
        Some(self)
    }

    fn backend_metrics(&self) -> Option<crate::store::BackendMetrics> {
        let pool = self.pool.status();
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.hub.stats;
        Some(crate::store::BackendMetrics {
            pool_max: pool.max_size as u64,
            pool_open: pool.size as u64,
            pool_in_use: pool.size.saturating_sub(pool.available) as u64,
            pool_waiting: pool.waiting as u64,
            write_retries: n(&self.stats.redone),
            notify_received: n(&s.received),
            notify_lag_sum_ms: n(&s.lag_sum_ms),
            notify_last_lag_ms: n(&s.last_lag_ms),
            notify_max_lag_ms: n(&s.max_lag_ms),
            notify_sent: n(&s.sent),
            notify_send_failures: n(&s.send_failures),
            listener_reconnects: n(&s.reconnects),
        })
    }

    fn state_changes(&self) -> Option<broadcast::Receiver<StateChange>> {
        Some(self.hub.subscribe())
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn node(&self) -> &str {
        &self.node
    }

    /// A session advisory lock on a connection taken out of the pool: held
    /// while the guard lives, released when its connection closes (a daemon that
    /// dies lets the next one take the job at once).
    fn singleton<'a>(
        &'a self,
        name: &'a str,
    ) -> super::backend::BoxFuture<'a, Result<Option<super::backend::Singleton>>> {
        Box::pin(async move {
            let client =
                deadpool_postgres::Object::take(self.pool.get().await.map_err(pool_error)?);
            let held: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))",
                    &[&SINGLETON_LOCK, &name],
                )
                .await
                .map_err(pg_error)?
                .get(0);
            Ok(held.then(|| super::backend::Singleton(Box::new(client))))
        })
    }

    fn shared_secret(&self, name: &str, fresh: &dyn Fn() -> String) -> Result<Option<String>> {
        self.secret(name, fresh).map(Some)
    }

    fn replace_shared_secret(&self, name: &str, expected: &str, new: &str) -> Result<bool> {
        self.replace_secret(name, expected, new)
    }

    fn state_version(&self, kind: super::Versioned) -> Result<u64> {
        let kind = match kind {
            super::Versioned::Tags => versions::Kind::Tags,
            super::Versioned::Secrets => versions::Kind::Secrets,
        };
        blocking::block_on(async { read_tx!(self, |tx| versions::current(&tx, kind)) })?
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
        self.batch
            .submit(batch::Job {
                body,
                internal_date,
                targets,
                extra: batch::Extra::Nothing,
            })
            .await
    }

    async fn deliver_recording(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        events: DeliveryEvents,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        self.batch
            .submit(batch::Job {
                body,
                internal_date,
                targets,
                extra: batch::Extra::Events(events),
            })
            .await
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
    fn a_server_that_is_not_there_is_unavailable_not_a_failure() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ] {
            assert!(is_unavailable_state(&code), "{code:?}");
        }
        for code in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
        ] {
            assert!(!is_unavailable_state(&code), "{code:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let (client, _) = match tokio_postgres::connect(
            "postgres://mg@127.0.0.1:1/mail?connect_timeout=2",
            tokio_postgres::NoTls,
        )
        .await
        {
            Ok(_) => panic!("connected to port 1"),
            Err(e) => (pg_error(e), ()),
        };
        assert!(matches!(client, StoreError::Unavailable(_)), "{client:?}");
    }
}

#[cfg(test)]
mod daemon_tests;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod store_tests;

#[cfg(test)]
mod queue_tests;

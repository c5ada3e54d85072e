//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, one writer thread
//! doing group commit, and a small pool of reader connections.
//!
//! Owns the SQLite [`Backend`]: its schema and migrations, its SQL, its writer
//! thread. Named only by `store`'s factory; everything else reaches it as
//! `dyn Backend`. Its behaviour is specified by `store::conformance`; the tests
//! here are SQLite's own (schema, corruption, WAL, writer batching, crashes).
//!
//! Bodies live in the database (table `bodies`), once per delivery however many
//! mailboxes receive it, so a message and its metadata become durable in the same
//! fsync.

mod access;
mod cached;
mod directory;
pub(crate) mod export;
mod housekeeping;
mod ops;
mod outbox;
mod queue;
mod schema;
mod tags;
#[cfg(test)]
pub(crate) mod testing;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dashmap::DashMap;
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::{
    Backend, CacheConsumer, Change, CopyOutcome, DeliveryEvents, ExpectedWrite, FlagOp,
    FlagOutcome, Folder, ItemChange, MailboxId, MessageMeta, NewMessage, Property, Quota, Refused,
    Result, Store, StoreError, Stored, Target, WriterStats,
};
use writer::Writer;

#[cfg(test)]
pub(crate) use writer::failpoint;

/// Most idle reader connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// Async reads running at once. Each holds a connection with its own page cache;
/// unbounded, a login storm (10,000 IMAP sessions each reading its folder) opened
/// a connection per blocking thread, hundreds, and the daemon reached GiBs.
const MAX_CONCURRENT_READS: usize = MAX_IDLE_READERS;

/// Mailboxes whose change feed moved in a write, with the newest sequence number.
type Touched = Vec<(String, i64)>;

/// The SQLite-backed [`Backend`]: a handle on state shared with the blocking
/// threads that run its reads.
pub struct SqliteStore {
    shared: Arc<Shared>,
}

/// The store's state: the writer, the reader pool and the watchers.
struct Shared {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// Bounds the async reads (and so the open reader connections).
    read_permits: tokio::sync::Semaphore,
    watchers: Arc<DashMap<String, watch::Sender<i64>>>,
}

impl SqliteStore {
    /// Opens or creates the store; refuses a corrupt file or a newer schema.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = schema::open_writer(path)?;
        let writer = Writer::spawn(conn, writer::LINGER)
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
        let shared = Shared {
            path: path.to_path_buf(),
            writer,
            readers: Mutex::new(Vec::new()),
            read_permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_READS),
            watchers: Arc::new(DashMap::new()),
        };
        Ok(SqliteStore {
            shared: Arc::new(shared),
        })
    }

    /// Queues a write and returns its receiver; the answer comes after the commit.
    fn submit<T: Send + 'static>(
        &self,
        op: impl FnMut(&Connection) -> Result<(T, Touched)> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T>>> {
        let (tx, rx) = oneshot::channel();
        self.shared.writer.submit(Box::new(PendingWrite {
            op,
            result: None,
            tx,
            watchers: self.shared.watchers.clone(),
        }))?;
        Ok(rx)
    }

    /// Runs a write and waits until it is durable.
    async fn write<T: Send + 'static>(
        &self,
        op: impl FnMut(&Connection) -> Result<(T, Touched)> + Send + 'static,
    ) -> Result<T> {
        self.submit(op)?
            .await
            .map_err(|_| StoreError::Io("the write was not performed".into()))?
    }

    /// Runs a write from a blocking thread (directory persistence).
    pub fn write_blocking<T: Send + 'static>(
        &self,
        op: impl FnMut(&Connection) -> Result<(T, Touched)> + Send + 'static,
    ) -> Result<T> {
        self.submit(op)?
            .blocking_recv()
            .map_err(|_| StoreError::Io("the write was not performed".into()))?
    }

    /// Runs a read on a pooled connection (blocking; callers are on blocking threads).
    pub fn read_blocking<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.shared.read_blocking(op)
    }

    /// Runs a read on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .shared
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.read_blocking(op))
            .await
            .map_err(|e| StoreError::Io(format!("reader task failed: {e}")))?
    }
}

impl Shared {
    /// Runs a read on a pooled connection, opening one when the pool is empty.
    fn read_blocking<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().map_err(|_| StoreError::Closed)?.pop();
        let conn = match conn {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let out = op(&conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < MAX_IDLE_READERS
        {
            pool.push(conn);
        }
        out
    }
}

/// A write in the writer's queue: the operation, the result of its last run, and
/// whom to answer.
struct PendingWrite<T, F> {
    op: F,
    result: Option<Result<(T, Touched)>>,
    tx: oneshot::Sender<Result<T>>,
    watchers: Arc<DashMap<String, watch::Sender<i64>>>,
}

impl<T, F> writer::Job for PendingWrite<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<(T, Touched)> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.op)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<()>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(Ok((value, touched)))) => {
                // Watchers learn of a change only once it is durable.
                for (mailbox, seq) in touched {
                    if let Some(w) = self.watchers.get(&mailbox) {
                        w.send_replace(seq);
                    }
                }
                Ok(value)
            }
            (_, Some(Err(e))) | (Err(e), _) => Err(e),
            (Ok(()), None) => Err(StoreError::Io("the write was not performed".into())),
        };
        let _ = self.tx.send(answer);
    }
}

impl Backend for SqliteStore {
    fn writer_stats(&self) -> &WriterStats {
        self.shared.writer.stats()
    }

    fn announced_writes(&self) -> usize {
        self.shared.writer.announced()
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn expect_write(&self) -> ExpectedWrite {
        self.shared.writer.expect()
    }

    async fn create_mailbox(&self, mailbox: &MailboxId, quota_bytes: u64) -> Result<()> {
        let mailbox = mailbox.to_string();
        self.write(move |c| ops::create_mailbox(c, &mailbox, quota_bytes))
            .await
    }

    async fn folders(&self, mailbox: &MailboxId) -> Result<Vec<Folder>> {
        let mailbox = mailbox.to_string();
        self.read(move |c| ops::folders(c, &mailbox)).await
    }

    async fn create_folder_of_class(
        &self,
        mailbox: &MailboxId,
        name: &str,
        folder_class: &str,
    ) -> Result<Folder> {
        let (mailbox, name, class) = (
            mailbox.to_string(),
            name.to_string(),
            folder_class.to_string(),
        );
        self.write(move |c| ops::create_folder(c, &mailbox, &name, &class))
            .await
    }

    async fn delete_folder(&self, folder_id: i64) -> Result<()> {
        self.write(move |c| ops::delete_folder(c, folder_id)).await
    }

    async fn deliver(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        self.write(move |c| ops::deliver(c, &body, internal_date, &targets))
            .await
    }

    async fn deliver_recording(
        &self,
        body: Arc<[u8]>,
        internal_date: i64,
        targets: Vec<Target>,
        events: DeliveryEvents,
    ) -> Result<Vec<std::result::Result<Stored, Refused>>> {
        self.write(move |c| {
            let (results, touched) = ops::deliver(c, &body, internal_date, &targets)?;
            outbox::record(c, &events(&results))?;
            Ok((results, touched))
        })
        .await
    }

    async fn append_all(
        &self,
        folder_id: i64,
        messages: Vec<NewMessage>,
    ) -> Result<std::result::Result<Vec<Stored>, Refused>> {
        self.write(move |c| ops::append_all(c, folder_id, &messages))
            .await
    }

    async fn replace_message(
        &self,
        folder_id: i64,
        uid: u32,
        message: NewMessage,
    ) -> Result<std::result::Result<Stored, Refused>> {
        self.write(move |c| ops::replace_message(c, folder_id, uid, &message))
            .await
    }

    async fn messages(&self, folder_id: i64, first: u32, last: u32) -> Result<Vec<MessageMeta>> {
        self.read(move |c| ops::messages(c, folder_id, first, last))
            .await
    }

    async fn uids_dated_before(
        &self,
        folder_id: i64,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<u32>> {
        self.read(move |c| ops::uids_dated_before(c, folder_id, before_ms, limit))
            .await
    }

    async fn messages_newest_first(
        &self,
        folder_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<MessageMeta>> {
        self.read(move |c| ops::messages_newest_first(c, folder_id, offset, limit))
            .await
    }

    async fn bodies(&self, body_ids: Vec<i64>) -> Result<Vec<Option<Vec<u8>>>> {
        self.read(move |c| ops::bodies(c, &body_ids)).await
    }

    async fn store_flags(
        &self,
        folder_id: i64,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        self.write(move |c| ops::store_flags(c, folder_id, &uids, op, &flags, unchanged_since))
            .await
    }

    async fn change_item(
        &self,
        folder_id: i64,
        uid: u32,
        change: ItemChange,
        unchanged_since: Option<u64>,
    ) -> Result<FlagOutcome> {
        self.write(move |c| ops::change_item(c, folder_id, uid, &change, unchanged_since))
            .await
    }

    async fn properties(
        &self,
        item_ids: Vec<String>,
    ) -> Result<std::collections::HashMap<String, Vec<Property>>> {
        self.read(move |c| ops::properties(c, &item_ids)).await
    }

    async fn expunge(&self, folder_id: i64, uids: Vec<u32>) -> Result<Vec<u32>> {
        self.write(move |c| ops::expunge(c, folder_id, &uids)).await
    }

    async fn changes_since(
        &self,
        mailbox: &MailboxId,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Change>> {
        let mailbox = mailbox.to_string();
        self.read(move |c| ops::changes_since(c, &mailbox, after_seq, limit))
            .await
    }

    async fn expunged_since(
        &self,
        mailbox: &MailboxId,
        folder_id: i64,
        modseq: u64,
    ) -> Result<Vec<u32>> {
        let mailbox = mailbox.to_string();
        self.read(move |c| ops::expunged_since(c, &mailbox, folder_id, modseq))
            .await
    }

    async fn latest_change(&self, mailbox: &MailboxId) -> Result<i64> {
        let mailbox = mailbox.to_string();
        self.read(move |c| ops::latest_change(c, &mailbox)).await
    }

    fn watch(&self, mailbox: &MailboxId) -> watch::Receiver<i64> {
        self.shared
            .watchers
            .entry(mailbox.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    async fn rename_folder(&self, folder_id: i64, new_name: &str) -> Result<()> {
        let new_name = new_name.to_string();
        self.write(move |c| ops::rename_folder(c, folder_id, &new_name))
            .await
    }

    async fn set_subscribed(&self, folder_id: i64, subscribed: bool) -> Result<()> {
        self.write(move |c| ops::set_subscribed(c, folder_id, subscribed))
            .await
    }

    async fn copy_messages(
        &self,
        from_folder: i64,
        uids: Vec<u32>,
        to_folder: i64,
        remove_source: bool,
    ) -> Result<std::result::Result<CopyOutcome, Refused>> {
        self.write(move |c| ops::copy_messages(c, from_folder, &uids, to_folder, remove_source))
            .await
    }

    async fn body_cache(&self, body_id: i64, consumer: CacheConsumer) -> Result<Option<Vec<u8>>> {
        self.read(move |c| ops::body_cache(c, body_id, consumer))
            .await
    }

    async fn put_body_cache(
        &self,
        body_id: i64,
        consumer: CacheConsumer,
        data: Vec<u8>,
    ) -> Result<()> {
        self.write(move |c| ops::put_body_cache(c, body_id, consumer, &data))
            .await
    }

    async fn messages_by_item_ids(
        &self,
        item_ids: Vec<String>,
    ) -> Result<Vec<Option<(Folder, MessageMeta)>>> {
        self.read(move |c| ops::messages_by_item_ids(c, &item_ids))
            .await
    }

    async fn folder_by_item_id(&self, item_id: &str) -> Result<Folder> {
        let item_id = item_id.to_string();
        self.read(move |c| ops::folder_by_item_id(c, &item_id))
            .await
    }

    async fn quota(&self, mailbox: &MailboxId) -> Result<Quota> {
        let mailbox = mailbox.to_string();
        self.read(move |c| ops::quota(c, &mailbox)).await
    }

    async fn set_quota(&self, mailbox: &MailboxId, limit_bytes: u64) -> Result<()> {
        let mailbox = mailbox.to_string();
        self.write(move |c| ops::set_quota(c, &mailbox, limit_bytes))
            .await
    }
}

#[cfg(test)]
mod tests;

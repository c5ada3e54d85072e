//! The SQL of each mail operation on PostgreSQL. Every function runs inside one
//! transaction that its caller commits (and retries whole on a serialization
//! failure or deadlock); writes return the mailboxes whose change feed moved.
//!
//! Locking: a write first locks the rows of every mailbox it touches, in
//! ascending id order ([`lock_mailboxes`]), and only then its folders. Every
//! counter (UIDVALIDITY, UIDNEXT, MODSEQ, the feed's `seq`, quota use) is a
//! column of one of those rows, updated with `RETURNING` inside the transaction,
//! so counters are handed out in commit order and no reader ever sees one below
//! a value it has already seen.

use std::collections::HashMap;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::{Op, OpError, Touched};
use crate::clock::now_ms;
use crate::store::rules::{
    FlagStep, flag_step, flags_from_text, flags_to_text, merge_properties, new_item_id,
    valid_folder_name,
};
use crate::store::{
    CacheConsumer, Change, ChangeKind, CopyOutcome, DEFAULT_FOLDERS, FlagOp, FlagOutcome,
    FlagUpdate, Folder, FolderKind, FolderRef, ItemChange, MessageMeta, NewMessage, Property,
    Quota, Refused, StoreError, Stored, Target, change_key, flag_change_kind, normalize_flags,
};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Where an operation's statements run: a write's transaction, or a pooled
/// connection directly for a read (saving its BEGIN and COMMIT round trips).
/// Statements are prepared once per connection (deadpool's statement cache).
#[async_trait]
pub(super) trait Sql: Sync {
    async fn prepared(&self, sql: &str) -> Op<Statement>;
    async fn rows(&self, st: &Statement, params: Params<'_>) -> Op<Vec<Row>>;
    async fn affected(&self, st: &Statement, params: Params<'_>) -> Op<u64>;
    async fn batch(&self, sql: &str) -> Op<()>;
}

/// [`Sql`] for a deadpool handle: a transaction and a connection have the same
/// methods under the same names.
macro_rules! impl_sql {
    ($handle:ty) => {
        #[async_trait]
        impl Sql for $handle {
            async fn prepared(&self, sql: &str) -> Op<Statement> {
                Ok(self.prepare_cached(sql).await?)
            }
            async fn rows(&self, st: &Statement, params: Params<'_>) -> Op<Vec<Row>> {
                Ok(self.query(st, params).await?)
            }
            async fn affected(&self, st: &Statement, params: Params<'_>) -> Op<u64> {
                Ok(self.execute(st, params).await?)
            }
            async fn batch(&self, sql: &str) -> Op<()> {
                Ok(self.batch_execute(sql).await?)
            }
        }
    };
}

impl_sql!(deadpool_postgres::Transaction<'_>);
impl_sql!(deadpool_postgres::Object);

/// Runs `sql` (prepared once per connection) and returns its rows.
pub(super) async fn query(tx: &dyn Sql, sql: &str, params: Params<'_>) -> Op<Vec<Row>> {
    let st = tx.prepared(sql).await?;
    tx.rows(&st, params).await
}

/// The first row of `sql`, if any.
pub(super) async fn query_opt(tx: &dyn Sql, sql: &str, params: Params<'_>) -> Op<Option<Row>> {
    Ok(query(tx, sql, params).await?.into_iter().next())
}

/// The one row `sql` must return; `Io` when it returns none.
pub(super) async fn query_one(tx: &dyn Sql, sql: &str, params: Params<'_>) -> Op<Row> {
    query_opt(tx, sql, params)
        .await?
        .ok_or_else(|| OpError::Store(StoreError::Io(format!("no row from {sql}"))))
}

/// Runs `sql` and returns the number of rows it changed.
pub(super) async fn execute(tx: &dyn Sql, sql: &str, params: Params<'_>) -> Op<u64> {
    let st = tx.prepared(sql).await?;
    tx.affected(&st, params).await
}

fn not_found(what: &'static str) -> OpError {
    OpError::Store(StoreError::NotFound(what))
}

fn conflict(text: String) -> OpError {
    OpError::Store(StoreError::Conflict(text))
}

/// A stored counter as a UID or UIDVALIDITY; `Io` if it left the 32-bit range.
fn u32_of(v: i64) -> Op<u32> {
    u32::try_from(v)
        .map_err(|_| OpError::Store(StoreError::Io(format!("counter {v} out of range"))))
}

/// Every UID of a folder, ascending.
async fn folder_uids(tx: &dyn Sql, folder_id: i64) -> Op<Vec<u32>> {
    query(
        tx,
        "SELECT uid FROM messages WHERE folder_id = $1 ORDER BY uid",
        &[&folder_id],
    )
    .await?
    .iter()
    .map(|r| u32_of(r.get(0)))
    .collect()
}

/// Locks the rows of `mailboxes` (those that exist) in ascending id order: the
/// first lock every write takes, so two writes never wait on each other in a
/// cycle. Returns the ids that exist.
pub(super) async fn lock_mailboxes(tx: &dyn Sql, mailboxes: &[String]) -> Op<Vec<String>> {
    let mut ids: Vec<String> = mailboxes.to_vec();
    ids.sort();
    ids.dedup();
    let rows = query(
        tx,
        "SELECT id FROM mailboxes WHERE id = ANY($1) ORDER BY id COLLATE \"C\" FOR UPDATE",
        &[&ids],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The mailbox of a folder, read without a lock (a folder never changes mailbox).
async fn mailbox_of(tx: &dyn Sql, folder_id: i64) -> Op<Option<String>> {
    Ok(query_opt(
        tx,
        "SELECT mailbox_id FROM folders WHERE id = $1",
        &[&folder_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Locks a folder's mailbox, then reads the folder: `NotFound` if it is gone.
async fn lock_folder(tx: &dyn Sql, folder_id: i64) -> Op<Folder> {
    let mailbox = mailbox_of(tx, folder_id)
        .await?
        .ok_or_else(|| not_found("folder"))?;
    lock_mailboxes(tx, &[mailbox]).await?;
    folder_by_id(tx, folder_id).await
}

/// Appends to the change feed under the mailbox's counter; returns the new `seq`.
async fn record_change(
    tx: &dyn Sql,
    mailbox: &str,
    folder_id: i64,
    kind: ChangeKind,
    uid: u32,
    modseq: u64,
    item_id: &str,
) -> Op<i64> {
    let row = query_one(
        tx,
        "WITH s AS (UPDATE mailboxes SET change_seq = change_seq + 1 WHERE id = $1 RETURNING change_seq)
         INSERT INTO changes (mailbox_id, seq, folder_id, kind, uid, modseq, item_id)
         SELECT $1, s.change_seq, $2, $3, $4, $5, $6 FROM s RETURNING seq",
        &[&mailbox, &folder_id, &kind.as_str(), &i64::from(uid), &(modseq as i64), &item_id],
    )
    .await?;
    Ok(row.get(0))
}

async fn next_uidvalidity(tx: &dyn Sql, mailbox: &str) -> Op<u32> {
    let row = query_one(
        tx,
        "UPDATE mailboxes SET next_uidvalidity = next_uidvalidity + 1 WHERE id = $1 RETURNING next_uidvalidity - 1",
        &[&mailbox],
    )
    .await?;
    u32_of(row.get(0))
}

/// Moves the ChangeKey of the folder above `name`, if any.
async fn touch_parent(tx: &dyn Sql, mailbox: &str, name: &str) -> Op<()> {
    if let Some((parent, _)) = name.rsplit_once('/') {
        execute(
            tx,
            "UPDATE folders SET change_counter = change_counter + 1 WHERE mailbox_id = $1 AND name = $2",
            &[&mailbox, &parent],
        )
        .await?;
    }
    Ok(())
}

async fn insert_folder(
    tx: &dyn Sql,
    mailbox: &str,
    name: &str,
    kind: Option<FolderKind>,
    class: &str,
) -> Op<(i64, String)> {
    let uidvalidity = i64::from(next_uidvalidity(tx, mailbox).await?);
    let item_id = new_item_id();
    let row = query_one(
        tx,
        "INSERT INTO folders (mailbox_id, name, kind, folder_class, uidvalidity, uidnext, highest_modseq, subscribed, item_id)
         VALUES ($1, $2, $3, $4, $5, 1, 1, true, $6) RETURNING id",
        &[&mailbox, &name, &kind.map(FolderKind::as_str), &class, &uidvalidity, &item_id],
    )
    .await?;
    touch_parent(tx, mailbox, name).await?;
    Ok((row.get(0), item_id))
}

pub(super) async fn create_mailbox(
    tx: &dyn Sql,
    mailbox: &str,
    quota_bytes: u64,
) -> Op<((), Touched)> {
    let seed = (now_ms() / 1000).clamp(1, u32::MAX as i64 / 2);
    let inserted = execute(
        tx,
        "INSERT INTO mailboxes (id, quota_bytes, used_bytes, next_uidvalidity, created_ms)
         VALUES ($1, $2, 0, $3, $4) ON CONFLICT (id) DO NOTHING",
        &[
            &mailbox,
            &(quota_bytes.min(i64::MAX as u64) as i64),
            &seed,
            &now_ms(),
        ],
    )
    .await?;
    if inserted == 0 {
        return Ok(((), vec![]));
    }
    for (name, kind, class) in DEFAULT_FOLDERS {
        insert_folder(tx, mailbox, name, Some(*kind), class).await?;
    }
    Ok(((), vec![]))
}

const FOLDER_COLUMNS: &str =
    "f.id, f.mailbox_id, f.name, f.kind, f.folder_class, f.uidvalidity, f.uidnext,
    f.highest_modseq, f.subscribed, f.item_id, f.change_counter, f.message_count, f.unseen_count";

fn folder_from_row(r: &Row) -> Op<Folder> {
    let kind: Option<String> = r.get(3);
    let item_id: String = r.get(9);
    let change_key = change_key(&item_id, r.get::<_, i64>(10) as u64);
    Ok(Folder {
        id: r.get(0),
        mailbox_id: r.get(1),
        name: r.get(2),
        kind: kind.as_deref().and_then(FolderKind::parse),
        folder_class: r.get(4),
        uidvalidity: u32_of(r.get(5))?,
        uidnext: u32_of(r.get(6))?,
        highest_modseq: r.get::<_, i64>(7) as u64,
        subscribed: r.get(8),
        item_id,
        change_key,
        messages: u32_of(r.get(11))?,
        unseen: u32_of(r.get(12))?,
    })
}

pub(super) async fn folders(tx: &dyn Sql, mailbox: &str) -> Op<Vec<Folder>> {
    if query_opt(tx, "SELECT 1 FROM mailboxes WHERE id = $1", &[&mailbox])
        .await?
        .is_none()
    {
        return Err(not_found("mailbox"));
    }
    let rows = query(
        tx,
        &format!(
            "SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.mailbox_id = $1 ORDER BY f.name COLLATE \"C\""
        ),
        &[&mailbox],
    )
    .await?;
    rows.iter().map(folder_from_row).collect()
}

async fn folder_by_id(tx: &dyn Sql, id: i64) -> Op<Folder> {
    let row = query_opt(
        tx,
        &format!("SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.id = $1"),
        &[&id],
    )
    .await?
    .ok_or_else(|| not_found("folder"))?;
    folder_from_row(&row)
}

async fn folder_id_named(tx: &dyn Sql, mailbox: &str, name: &str) -> Op<Option<i64>> {
    Ok(query_opt(
        tx,
        "SELECT id FROM folders WHERE mailbox_id = $1 AND name = $2",
        &[&mailbox, &name],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(super) async fn create_folder(
    tx: &dyn Sql,
    mailbox: &str,
    name: &str,
    folder_class: &str,
) -> Op<(Folder, Touched)> {
    if !valid_folder_name(name) {
        return Err(conflict(format!("invalid folder name {name:?}")));
    }
    if name.eq_ignore_ascii_case("inbox") {
        return Err(conflict("INBOX already exists".into()));
    }
    if lock_mailboxes(tx, &[mailbox.to_string()]).await?.is_empty() {
        return Err(not_found("mailbox"));
    }
    if folder_id_named(tx, mailbox, name).await?.is_some() {
        return Err(conflict(format!("folder {name:?} already exists")));
    }
    if let Some((parent, _)) = name.rsplit_once('/')
        && folder_id_named(tx, mailbox, parent).await?.is_none()
    {
        return Err(not_found("parent folder"));
    }
    let (id, item_id) = insert_folder(tx, mailbox, name, None, folder_class).await?;
    let seq = record_change(tx, mailbox, id, ChangeKind::FolderCreated, 0, 1, &item_id).await?;
    Ok((
        folder_by_id(tx, id).await?,
        vec![(mailbox.to_string(), seq)],
    ))
}

pub(super) async fn delete_folder(tx: &dyn Sql, folder_id: i64) -> Op<((), Touched)> {
    let folder = lock_folder(tx, folder_id).await?;
    if folder.kind.is_some() {
        return Err(conflict(format!(
            "{} is a default folder and cannot be deleted",
            folder.name
        )));
    }
    let child = query_opt(
        tx,
        "SELECT id FROM folders WHERE mailbox_id = $1 AND left(name, length($2) + 1) = $2 || '/' LIMIT 1",
        &[&folder.mailbox_id, &folder.name],
    )
    .await?;
    if child.is_some() {
        return Err(conflict(format!("{} has subfolders", folder.name)));
    }
    let uids = folder_uids(tx, folder_id).await?;
    remove_messages(tx, &folder, &uids).await?;
    execute(tx, "DELETE FROM folders WHERE id = $1", &[&folder_id]).await?;
    touch_parent(tx, &folder.mailbox_id, &folder.name).await?;
    let seq = record_change(
        tx,
        &folder.mailbox_id,
        folder_id,
        ChangeKind::FolderDeleted,
        0,
        folder.highest_modseq + 1,
        &folder.item_id,
    )
    .await?;
    Ok(((), vec![(folder.mailbox_id, seq)]))
}

/// Resolves a target folder to (folder id, mailbox id), without a lock.
async fn resolve_target(tx: &dyn Sql, target: &FolderRef) -> Op<Option<(i64, String)>> {
    let row = match target {
        FolderRef::Id(id) => {
            query_opt(
                tx,
                "SELECT id, mailbox_id FROM folders WHERE id = $1",
                &[id],
            )
            .await?
        }
        FolderRef::Kind(mailbox, kind) => {
            query_opt(
                tx,
                "SELECT id, mailbox_id FROM folders WHERE mailbox_id = $1 AND kind = $2",
                &[mailbox, &kind.as_str()],
            )
            .await?
        }
    };
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Charges `size` bytes to a mailbox if they fit under its quota: one
/// conditional UPDATE. `size` may be negative (a release).
async fn charge(tx: &dyn Sql, mailbox: &str, size: i64) -> Op<bool> {
    Ok(execute(
        tx,
        "UPDATE mailboxes SET used_bytes = used_bytes + $2 WHERE id = $1 AND used_bytes + $2 <= quota_bytes",
        &[&mailbox, &size],
    )
    .await?
        == 1)
}

pub(super) async fn deliver(
    tx: &dyn Sql,
    body: &[u8],
    internal_date: i64,
    targets: &[Target],
) -> Op<(Vec<Result<Stored, Refused>>, Touched)> {
    // The mailboxes first (a folder id's without a lock), locked in order;
    // then each target is resolved under the lock.
    let mailboxes = target_mailboxes(tx, targets.iter()).await?;
    lock_mailboxes(tx, &mailboxes).await?;
    deliver_locked(tx, body, internal_date, targets, &mailboxes).await
}

/// The mailboxes `targets` name or whose folders they name (a folder id's read
/// without a lock: a folder never changes mailbox), unsorted, for
/// [`lock_mailboxes`]. One statement for all the folder ids.
pub(super) async fn target_mailboxes(
    tx: &dyn Sql,
    targets: impl Iterator<Item = &Target>,
) -> Op<Vec<String>> {
    let mut mailboxes = Vec::new();
    let mut folder_ids = Vec::new();
    for target in targets {
        match &target.folder {
            FolderRef::Kind(mailbox, _) => mailboxes.push(mailbox.clone()),
            FolderRef::Id(id) => folder_ids.push(*id),
        }
    }
    if !folder_ids.is_empty() {
        let rows = query(
            tx,
            "SELECT DISTINCT mailbox_id FROM folders WHERE id = ANY($1)",
            &[&folder_ids],
        )
        .await?;
        mailboxes.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    Ok(mailboxes)
}

/// A delivery into `targets` by a transaction that already holds the locks of
/// `locked` (a target in another mailbox is refused as no such folder: its
/// mailbox is not locked). The counters move per copy under those locks.
pub(super) async fn deliver_locked(
    tx: &dyn Sql,
    body: &[u8],
    internal_date: i64,
    targets: &[Target],
    locked: &[String],
) -> Op<(Vec<Result<Stored, Refused>>, Touched)> {
    let size = body.len() as i64;
    let mut body_id: Option<i64> = None;
    let mut results = Vec::with_capacity(targets.len());
    let mut touched = Touched::new();
    for target in targets {
        // A folder that appeared after its mailbox was looked up is not locked.
        let resolved = resolve_target(tx, &target.folder)
            .await?
            .filter(|(_, mailbox)| locked.contains(mailbox));
        let Some((folder_id, mailbox)) = resolved else {
            results.push(Err(Refused::NoSuchFolder));
            continue;
        };
        // One statement per copy: the quota charge and the feed's counter (one
        // update of the mailbox row), the body with the first accepted copy,
        // the folder's counters, the message and its feed entry; no row when
        // the copy does not fit.
        let first_body: Option<&[u8]> = body_id.is_none().then_some(body);
        let item_id = new_item_id();
        let row = query_opt(
            tx,
            "WITH s AS (
                 UPDATE mailboxes SET used_bytes = used_bytes + $2, change_seq = change_seq + 1
                 WHERE id = $1 AND used_bytes + $2 <= quota_bytes RETURNING change_seq),
             b AS (
                 INSERT INTO bodies (size, data) SELECT $2, $3::bytea FROM s
                 WHERE $4::bigint IS NULL RETURNING id),
             f AS (
                 UPDATE folders SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1,
                     change_counter = change_counter + 1
                 WHERE id = $5 AND EXISTS (SELECT 1 FROM s)
                 RETURNING uidvalidity, uidnext - 1 AS uid, highest_modseq AS modseq),
             m AS (
                 INSERT INTO messages (folder_id, uid, modseq, flags, internal_date, size, body_id, item_id)
                 SELECT $5, f.uid, f.modseq, $6, $7, $2, COALESCE($4::bigint, (SELECT id FROM b)), $8
                 FROM f),
             c AS (
                 INSERT INTO changes (mailbox_id, seq, folder_id, kind, uid, modseq, item_id)
                 SELECT $1, s.change_seq, $5, $9, f.uid, f.modseq, $8 FROM s, f)
             SELECT f.uidvalidity, f.uid, f.modseq, s.change_seq,
                 COALESCE($4::bigint, (SELECT id FROM b)) FROM s, f",
            &[
                &mailbox,
                &size,
                &first_body,
                &body_id,
                &folder_id,
                &flags_to_text(&target.flags),
                &internal_date,
                &item_id,
                &ChangeKind::Created.as_str(),
            ],
        )
        .await?;
        let Some(row) = row else {
            results.push(Err(Refused::OverQuota));
            continue;
        };
        let (uidvalidity, uid, modseq, seq) = (
            u32_of(row.get(0))?,
            u32_of(row.get(1))?,
            row.get::<_, i64>(2),
            row.get::<_, i64>(3),
        );
        body_id.get_or_insert(row.get(4));
        insert_properties(tx, &item_id, &target.properties).await?;
        touched.push((mailbox, seq));
        results.push(Ok(Stored {
            folder_id,
            uidvalidity,
            uid,
            modseq: modseq as u64,
            item_id,
        }));
    }
    Ok((results, touched))
}

/// Every message into one folder, or none (a savepoint undoes a refused batch).
pub(super) async fn append_all(
    tx: &dyn Sql,
    folder_id: i64,
    messages: &[NewMessage],
) -> Op<(Result<Vec<Stored>, Refused>, Touched)> {
    tx.batch("SAVEPOINT append_all").await?;
    let mut stored = Vec::with_capacity(messages.len());
    let mut touched = Touched::new();
    for m in messages {
        let target = Target {
            folder: FolderRef::Id(folder_id),
            flags: m.flags.clone(),
            properties: m.properties.clone(),
        };
        let (mut results, t) = deliver(tx, &m.body, m.internal_date, &[target]).await?;
        match results.pop() {
            Some(Ok(s)) => {
                stored.push(s);
                touched.extend(t);
            }
            refused => {
                tx.batch("ROLLBACK TO SAVEPOINT append_all; RELEASE SAVEPOINT append_all")
                    .await?;
                let why = match refused {
                    Some(Err(r)) => r,
                    _ => Refused::NoSuchFolder,
                };
                return Ok((Err(why), Touched::new()));
            }
        }
    }
    tx.batch("RELEASE SAVEPOINT append_all").await?;
    Ok((Ok(stored), touched))
}

/// A message's metadata from the columns `uid, modseq, flags, internal_date,
/// size, body_id, item_id`, the first at index `at`.
fn meta_from_row(r: &Row, at: usize) -> Op<MessageMeta> {
    let flags: String = r.get(at + 2);
    Ok(MessageMeta {
        uid: u32_of(r.get(at))?,
        modseq: r.get::<_, i64>(at + 1) as u64,
        flags: flags_from_text(&flags),
        internal_date: r.get(at + 3),
        size: r.get::<_, i64>(at + 4) as u64,
        body_id: r.get(at + 5),
        item_id: r.get(at + 6),
    })
}

pub(super) async fn messages(
    tx: &dyn Sql,
    folder_id: i64,
    first: u32,
    last: u32,
) -> Op<Vec<MessageMeta>> {
    let rows = query(
        tx,
        "SELECT uid, modseq, flags, internal_date, size, body_id, item_id FROM messages
         WHERE folder_id = $1 AND uid BETWEEN $2 AND $3 ORDER BY uid",
        &[&folder_id, &i64::from(first), &i64::from(last)],
    )
    .await?;
    rows.iter().map(|r| meta_from_row(r, 0)).collect()
}

/// A page of a folder newest first, from index `messages_dated`.
pub(super) async fn messages_newest_first(
    tx: &dyn Sql,
    folder_id: i64,
    offset: usize,
    limit: usize,
) -> Op<Vec<MessageMeta>> {
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    let rows = query(
        tx,
        "SELECT uid, modseq, flags, internal_date, size, body_id, item_id FROM messages
         WHERE folder_id = $1 ORDER BY internal_date DESC, uid DESC LIMIT $2 OFFSET $3",
        &[&folder_id, &n(limit), &n(offset)],
    )
    .await?;
    rows.iter().map(|r| meta_from_row(r, 0)).collect()
}

pub(super) async fn uids_dated_before(
    tx: &dyn Sql,
    folder_id: i64,
    before_ms: i64,
    limit: usize,
) -> Op<Vec<u32>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        tx,
        "SELECT uid FROM (SELECT uid FROM messages WHERE folder_id = $1 AND internal_date < $2
         ORDER BY internal_date LIMIT $3) d ORDER BY uid",
        &[&folder_id, &before_ms, &limit],
    )
    .await?;
    rows.iter().map(|r| u32_of(r.get(0))).collect()
}

pub(super) async fn bodies(tx: &dyn Sql, body_ids: &[i64]) -> Op<Vec<Option<Vec<u8>>>> {
    let rows = query(
        tx,
        "SELECT id, data FROM bodies WHERE id = ANY($1)",
        &[&body_ids],
    )
    .await?;
    let found: HashMap<i64, Vec<u8>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(body_ids.iter().map(|id| found.get(id).cloned()).collect())
}

/// Takes one new MODSEQ of a folder (its ChangeKey moves with it).
async fn next_modseq(tx: &dyn Sql, folder_id: i64) -> Op<i64> {
    Ok(query_one(
        tx,
        "UPDATE folders SET highest_modseq = highest_modseq + 1, change_counter = change_counter + 1
         WHERE id = $1 RETURNING highest_modseq",
        &[&folder_id],
    )
    .await?
    .get(0))
}

async fn message_state(
    tx: &dyn Sql,
    folder_id: i64,
    uid: u32,
) -> Op<Option<(i64, String, String)>> {
    Ok(query_opt(
        tx,
        "SELECT modseq, flags, item_id FROM messages WHERE folder_id = $1 AND uid = $2",
        &[&folder_id, &i64::from(uid)],
    )
    .await?
    .map(|r| (r.get(0), r.get(1), r.get(2))))
}

async fn set_message_flags(
    tx: &dyn Sql,
    folder_id: i64,
    uid: u32,
    flags: &[String],
    modseq: i64,
) -> Op<()> {
    execute(
        tx,
        "UPDATE messages SET flags = $3, modseq = $4 WHERE folder_id = $1 AND uid = $2",
        &[&folder_id, &i64::from(uid), &flags.join(" "), &modseq],
    )
    .await?;
    Ok(())
}

pub(super) async fn store_flags(
    tx: &dyn Sql,
    folder_id: i64,
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> Op<(FlagOutcome, Touched)> {
    let folder = lock_folder(tx, folder_id).await?;
    let mut outcome = FlagOutcome::default();
    let mut new_modseq: Option<i64> = None;
    let mut last_seq = None;
    for &uid in uids {
        let Some((modseq, current, item_id)) = message_state(tx, folder_id, uid).await? else {
            continue;
        };
        let (next, kind) = match flag_step(modseq, &current, op, flags, unchanged_since) {
            FlagStep::Modified => {
                outcome.modified.push(uid);
                continue;
            }
            FlagStep::Same => continue,
            FlagStep::Set { next, kind } => (next, kind),
        };
        // One command shares one new MODSEQ (RFC 7162 allows it).
        let m = match new_modseq {
            Some(m) => m,
            None => *new_modseq.insert(next_modseq(tx, folder_id).await?),
        };
        set_message_flags(tx, folder_id, uid, &next, m).await?;
        last_seq = Some(
            record_change(
                tx,
                &folder.mailbox_id,
                folder_id,
                kind,
                uid,
                m as u64,
                &item_id,
            )
            .await?,
        );
        outcome.updated.push(FlagUpdate {
            uid,
            modseq: m as u64,
            flags: next,
        });
    }
    let touched = last_seq
        .map(|s| vec![(folder.mailbox_id, s)])
        .unwrap_or_default();
    Ok((outcome, touched))
}

async fn insert_properties(tx: &dyn Sql, item_id: &str, properties: &[Property]) -> Op<()> {
    for (name, value) in properties {
        execute(
            tx,
            "INSERT INTO item_props (item_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (item_id, name) DO UPDATE SET value = excluded.value",
            &[&item_id, name, value],
        )
        .await?;
    }
    Ok(())
}

async fn item_properties(tx: &dyn Sql, item_id: &str) -> Op<Vec<Property>> {
    let rows = query(
        tx,
        "SELECT name, value FROM item_props WHERE item_id = $1 ORDER BY name COLLATE \"C\"",
        &[&item_id],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) async fn properties(
    tx: &dyn Sql,
    item_ids: &[String],
) -> Op<HashMap<String, Vec<Property>>> {
    let rows = query(
        tx,
        "SELECT item_id, name, value FROM item_props WHERE item_id = ANY($1) ORDER BY item_id, name COLLATE \"C\"",
        &[&item_ids],
    )
    .await?;
    let mut out: HashMap<String, Vec<Property>> = HashMap::new();
    for r in &rows {
        out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
    }
    Ok(out)
}

pub(super) async fn change_item(
    tx: &dyn Sql,
    folder_id: i64,
    uid: u32,
    change: &ItemChange,
    unchanged_since: Option<u64>,
) -> Op<(FlagOutcome, Touched)> {
    let folder = lock_folder(tx, folder_id).await?;
    let (modseq, current, item_id) = message_state(tx, folder_id, uid)
        .await?
        .ok_or_else(|| not_found("message"))?;
    let mut outcome = FlagOutcome::default();
    if unchanged_since.is_some_and(|u| modseq as u64 > u) {
        outcome.modified.push(uid);
        return Ok((outcome, vec![]));
    }
    let current = normalize_flags(&flags_from_text(&current));
    let flags = change
        .flags
        .as_deref()
        .map(normalize_flags)
        .unwrap_or_else(|| current.clone());
    let before = item_properties(tx, &item_id).await?;
    let after = merge_properties(&before, change);
    if flags == current && after == before {
        return Ok((outcome, vec![]));
    }
    execute(tx, "DELETE FROM item_props WHERE item_id = $1", &[&item_id]).await?;
    insert_properties(tx, &item_id, &after).await?;
    let m = next_modseq(tx, folder_id).await?;
    set_message_flags(tx, folder_id, uid, &flags, m).await?;
    let kind = if after == before {
        flag_change_kind(&current, &flags)
    } else {
        ChangeKind::Flags
    };
    let seq = record_change(
        tx,
        &folder.mailbox_id,
        folder_id,
        kind,
        uid,
        m as u64,
        &item_id,
    )
    .await?;
    outcome.updated.push(FlagUpdate {
        uid,
        modseq: m as u64,
        flags,
    });
    Ok((outcome, vec![(folder.mailbox_id, seq)]))
}

/// A message taken out of a folder: its UID, the MODSEQ of the removal, its item id.
type Removed = (u32, u64, String);

/// Deletes message rows, their now-unreferenced bodies and their quota use
/// (the folder's mailbox is locked by the caller).
async fn remove_messages(tx: &dyn Sql, folder: &Folder, uids: &[u32]) -> Op<Vec<Removed>> {
    let mut removed = Vec::new();
    let mut modseq = None;
    for &uid in uids {
        let Some(row) = query_opt(
            tx,
            "DELETE FROM messages WHERE folder_id = $1 AND uid = $2 RETURNING size, body_id, item_id",
            &[&folder.id, &i64::from(uid)],
        )
        .await?
        else {
            continue;
        };
        let (size, body_id, item_id): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
        execute(tx, "DELETE FROM item_props WHERE item_id = $1", &[&item_id]).await?;
        execute(
            tx,
            "DELETE FROM bodies WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = $1)",
            &[&body_id],
        )
        .await?;
        execute(
            tx,
            "UPDATE mailboxes SET used_bytes = used_bytes - $2 WHERE id = $1",
            &[&folder.mailbox_id, &size],
        )
        .await?;
        let m = match modseq {
            Some(m) => m,
            None => *modseq.insert(next_modseq(tx, folder.id).await?),
        };
        removed.push((uid, m as u64, item_id));
    }
    Ok(removed)
}

pub(super) async fn replace_message(
    tx: &dyn Sql,
    folder_id: i64,
    uid: u32,
    message: &NewMessage,
) -> Op<(Result<Stored, Refused>, Touched)> {
    lock_folder(tx, folder_id).await?;
    let (_, _, old_item) = message_state(tx, folder_id, uid)
        .await?
        .ok_or_else(|| not_found("message"))?;
    tx.batch("SAVEPOINT replace_message").await?;
    let (_, mut touched) = expunge(tx, folder_id, &[uid]).await?;
    let target = Target {
        folder: FolderRef::Id(folder_id),
        flags: message.flags.clone(),
        properties: Vec::new(),
    };
    let (mut results, t) = deliver(tx, &message.body, message.internal_date, &[target]).await?;
    let mut stored = match results.pop() {
        Some(Ok(s)) => s,
        refused => {
            tx.batch("ROLLBACK TO SAVEPOINT replace_message; RELEASE SAVEPOINT replace_message")
                .await?;
            let why = match refused {
                Some(Err(r)) => r,
                _ => Refused::NoSuchFolder,
            };
            return Ok((Err(why), Touched::new()));
        }
    };
    execute(
        tx,
        "UPDATE messages SET item_id = $1 WHERE item_id = $2",
        &[&old_item, &stored.item_id],
    )
    .await?;
    if let Some((mailbox, seq)) = t.last() {
        execute(
            tx,
            "UPDATE changes SET item_id = $1 WHERE mailbox_id = $2 AND seq = $3",
            &[&old_item, mailbox, seq],
        )
        .await?;
    }
    insert_properties(tx, &old_item, &message.properties).await?;
    stored.item_id = old_item;
    touched.extend(t);
    tx.batch("RELEASE SAVEPOINT replace_message").await?;
    Ok((Ok(stored), touched))
}

pub(super) async fn expunge(tx: &dyn Sql, folder_id: i64, uids: &[u32]) -> Op<(Vec<u32>, Touched)> {
    let folder = lock_folder(tx, folder_id).await?;
    let removed = remove_messages(tx, &folder, uids).await?;
    let mut last_seq = None;
    for (uid, modseq, item_id) in &removed {
        last_seq = Some(
            record_change(
                tx,
                &folder.mailbox_id,
                folder_id,
                ChangeKind::Expunged,
                *uid,
                *modseq,
                item_id,
            )
            .await?,
        );
    }
    let touched = last_seq
        .map(|s| vec![(folder.mailbox_id.clone(), s)])
        .unwrap_or_default();
    Ok((removed.into_iter().map(|(u, _, _)| u).collect(), touched))
}

/// Creates the missing ancestors of `name` (RFC 9051 6.3.6).
async fn create_parents(tx: &dyn Sql, mailbox: &str, name: &str) -> Op<Option<i64>> {
    let mut last_seq = None;
    let mut end = 0;
    while let Some(pos) = name[end..].find('/') {
        let parent = &name[..end + pos];
        end += pos + 1;
        if folder_id_named(tx, mailbox, parent).await?.is_none() {
            let (id, item_id) = insert_folder(tx, mailbox, parent, None, "IPF.Note").await?;
            last_seq = Some(
                record_change(tx, mailbox, id, ChangeKind::FolderCreated, 0, 1, &item_id).await?,
            );
        }
    }
    Ok(last_seq)
}

pub(super) async fn rename_folder(
    tx: &dyn Sql,
    folder_id: i64,
    new_name: &str,
) -> Op<((), Touched)> {
    if !valid_folder_name(new_name) || new_name.eq_ignore_ascii_case("inbox") {
        return Err(conflict(format!("invalid folder name {new_name:?}")));
    }
    let folder = lock_folder(tx, folder_id).await?;
    let mailbox = folder.mailbox_id.clone();
    let old = folder.name.clone();
    if folder.kind == Some(FolderKind::Inbox) {
        // RFC 9051 6.3.6: renaming INBOX moves its messages to a new folder and
        // leaves INBOX in place, empty.
        if folder_id_named(tx, &mailbox, new_name).await?.is_some() {
            return Err(conflict(format!("folder {new_name:?} already exists")));
        }
        create_parents(tx, &mailbox, new_name).await?;
        let (id, item_id) = insert_folder(tx, &mailbox, new_name, None, "IPF.Note").await?;
        let created =
            record_change(tx, &mailbox, id, ChangeKind::FolderCreated, 0, 1, &item_id).await?;
        let uids = folder_uids(tx, folder_id).await?;
        let (outcome, touched) = Box::pin(copy_messages(tx, folder_id, &uids, id, true)).await?;
        if outcome.is_err() {
            return Err(OpError::Store(StoreError::Io(
                "moving the INBOX messages failed".into(),
            )));
        }
        let seq = touched.iter().map(|t| t.1).chain([created]).max();
        return Ok(((), seq.map(|s| vec![(mailbox, s)]).unwrap_or_default()));
    }
    if new_name == old || new_name.starts_with(&format!("{old}/")) {
        return Err(conflict(format!("cannot rename {old:?} to {new_name:?}")));
    }
    let subtree: Vec<(i64, String, i64, String)> = query(
        tx,
        "SELECT id, name, highest_modseq, item_id FROM folders WHERE mailbox_id = $1
         AND (name = $2 OR left(name, length($2) + 1) = $2 || '/') ORDER BY name COLLATE \"C\"",
        &[&mailbox, &old],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    for (_, name, _, _) in &subtree {
        let renamed = format!("{new_name}{}", &name[old.len()..]);
        if folder_id_named(tx, &mailbox, &renamed).await?.is_some() {
            return Err(conflict(format!("folder {renamed:?} already exists")));
        }
    }
    let mut last_seq = create_parents(tx, &mailbox, new_name).await?;
    touch_parent(tx, &mailbox, &old).await?;
    for (id, name, modseq, item_id) in &subtree {
        let renamed = format!("{new_name}{}", &name[old.len()..]);
        execute(
            tx,
            "UPDATE folders SET name = $2, change_counter = change_counter + 1 WHERE id = $1",
            &[id, &renamed],
        )
        .await?;
        last_seq = Some(
            record_change(
                tx,
                &mailbox,
                *id,
                ChangeKind::FolderRenamed,
                0,
                *modseq as u64,
                item_id,
            )
            .await?,
        );
    }
    touch_parent(tx, &mailbox, new_name).await?;
    Ok(((), last_seq.map(|s| vec![(mailbox, s)]).unwrap_or_default()))
}

pub(super) async fn set_subscribed(
    tx: &dyn Sql,
    folder_id: i64,
    subscribed: bool,
) -> Op<((), Touched)> {
    lock_folder(tx, folder_id).await?;
    execute(
        tx,
        "UPDATE folders SET subscribed = $2, change_counter = change_counter + 1 WHERE id = $1",
        &[&folder_id, &subscribed],
    )
    .await?;
    Ok(((), vec![]))
}

/// One source message of a copy.
struct CopySource {
    uid: u32,
    flags: String,
    internal_date: i64,
    size: i64,
    body_id: i64,
    item_id: String,
}

pub(super) async fn copy_messages(
    tx: &dyn Sql,
    from_folder: i64,
    uids: &[u32],
    to_folder: i64,
    remove_source: bool,
) -> Op<(Result<CopyOutcome, Refused>, Touched)> {
    let (Some(from_mb), Some(to_mb)) = (
        mailbox_of(tx, from_folder).await?,
        mailbox_of(tx, to_folder).await?,
    ) else {
        return Ok((Err(Refused::NoSuchFolder), vec![]));
    };
    lock_mailboxes(tx, &[from_mb, to_mb]).await?;
    let (from, to) = match (
        folder_by_id(tx, from_folder).await,
        folder_by_id(tx, to_folder).await,
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(OpError::Store(StoreError::NotFound(_))), _)
        | (_, Err(OpError::Store(StoreError::NotFound(_)))) => {
            return Ok((Err(Refused::NoSuchFolder), vec![]));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut wanted: Vec<i64> = uids.iter().map(|&u| i64::from(u)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let sources: Vec<CopySource> = query(
        tx,
        "SELECT uid, flags, internal_date, size, body_id, item_id FROM messages
         WHERE folder_id = $1 AND uid = ANY($2) ORDER BY uid",
        &[&from_folder, &wanted],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(CopySource {
            uid: u32_of(r.get(0))?,
            flags: r.get(1),
            internal_date: r.get(2),
            size: r.get(3),
            body_id: r.get(4),
            item_id: r.get(5),
        })
    })
    .collect::<Op<_>>()?;
    if sources.is_empty() {
        let outcome = CopyOutcome {
            uidvalidity: to.uidvalidity,
            pairs: vec![],
        };
        return Ok((Ok(outcome), vec![]));
    }
    let total: i64 = sources.iter().map(|s| s.size).sum();
    // A move inside one mailbox changes nothing in its usage.
    let same_mailbox_move = remove_source && from.mailbox_id == to.mailbox_id;
    if !same_mailbox_move && !charge(tx, &to.mailbox_id, total).await? {
        return Ok((Err(Refused::OverQuota), vec![]));
    }
    let n = sources.len() as i64;
    let row = query_one(
        tx,
        "UPDATE folders SET uidnext = uidnext + $2, highest_modseq = highest_modseq + 1,
         change_counter = change_counter + 1 WHERE id = $1
         RETURNING uidvalidity, uidnext - $2, highest_modseq",
        &[&to_folder, &n],
    )
    .await?;
    let (uidvalidity, first_uid, modseq): (u32, i64, i64) =
        (u32_of(row.get(0))?, row.get(1), row.get(2));
    if first_uid + n - 1 > u32::MAX as i64 {
        return Err(conflict("the target folder ran out of UIDs".into()));
    }
    let mut pairs = Vec::with_capacity(sources.len());
    let mut touched = Touched::new();
    let mut last_seq = 0;
    for (i, src) in sources.iter().enumerate() {
        let uid = (first_uid + i as i64) as u32;
        let item_id = new_item_id();
        execute(
            tx,
            "INSERT INTO messages (folder_id, uid, modseq, flags, internal_date, size, body_id, item_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &to_folder,
                &i64::from(uid),
                &modseq,
                &src.flags,
                &src.internal_date,
                &src.size,
                &src.body_id,
                &item_id,
            ],
        )
        .await?;
        execute(
            tx,
            "INSERT INTO item_props (item_id, name, value) SELECT $1, name, value FROM item_props WHERE item_id = $2",
            &[&item_id, &src.item_id],
        )
        .await?;
        last_seq = record_change(
            tx,
            &to.mailbox_id,
            to_folder,
            ChangeKind::Created,
            uid,
            modseq as u64,
            &item_id,
        )
        .await?;
        pairs.push((src.uid, uid));
    }
    if same_mailbox_move {
        // The sources' release below balances this charge.
        execute(
            tx,
            "UPDATE mailboxes SET used_bytes = used_bytes + $2 WHERE id = $1",
            &[&to.mailbox_id, &total],
        )
        .await?;
    }
    touched.push((to.mailbox_id.clone(), last_seq));
    if remove_source {
        let src_uids: Vec<u32> = sources.iter().map(|s| s.uid).collect();
        let removed = remove_messages(tx, &from, &src_uids).await?;
        for (uid, m, item_id) in &removed {
            last_seq = record_change(
                tx,
                &from.mailbox_id,
                from_folder,
                ChangeKind::Expunged,
                *uid,
                *m,
                item_id,
            )
            .await?;
        }
        touched.push((from.mailbox_id.clone(), last_seq));
    }
    Ok((Ok(CopyOutcome { uidvalidity, pairs }), touched))
}

pub(super) async fn body_cache(
    tx: &dyn Sql,
    body_id: i64,
    consumer: CacheConsumer,
) -> Op<Option<Vec<u8>>> {
    Ok(query_opt(
        tx,
        "SELECT data FROM body_cache WHERE body_id = $1 AND consumer = $2",
        &[&body_id, &consumer.as_str()],
    )
    .await?
    .map(|r| r.get(0)))
}

/// A body deleted meanwhile is silently not cached.
pub(super) async fn put_body_cache(
    tx: &dyn Sql,
    body_id: i64,
    consumer: CacheConsumer,
    data: &[u8],
) -> Op<((), Touched)> {
    execute(
        tx,
        "INSERT INTO body_cache (body_id, consumer, data)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM bodies WHERE id = $1)
         ON CONFLICT (body_id, consumer) DO UPDATE SET data = excluded.data",
        &[&body_id, &consumer.as_str(), &data],
    )
    .await?;
    Ok(((), vec![]))
}

pub(super) async fn messages_by_item_ids(
    tx: &dyn Sql,
    item_ids: &[String],
) -> Op<Vec<Option<(Folder, MessageMeta)>>> {
    let rows = query(
        tx,
        &format!(
            "SELECT m.uid, m.modseq, m.flags, m.internal_date, m.size, m.body_id, m.item_id, {FOLDER_COLUMNS}
             FROM messages m JOIN folders f ON f.id = m.folder_id WHERE m.item_id = ANY($1)"
        ),
        &[&item_ids],
    )
    .await?;
    let mut found: HashMap<String, (Folder, MessageMeta)> = HashMap::new();
    for r in &rows {
        let meta = meta_from_row(r, 0)?;
        let folder = folder_from_row_at(r, 7)?;
        found.insert(meta.item_id.clone(), (folder, meta));
    }
    Ok(item_ids.iter().map(|id| found.get(id).cloned()).collect())
}

/// [`folder_from_row`] for folder columns starting at `at`.
fn folder_from_row_at(r: &Row, at: usize) -> Op<Folder> {
    let kind: Option<String> = r.get(at + 3);
    let item_id: String = r.get(at + 9);
    let change_key = change_key(&item_id, r.get::<_, i64>(at + 10) as u64);
    Ok(Folder {
        id: r.get(at),
        mailbox_id: r.get(at + 1),
        name: r.get(at + 2),
        kind: kind.as_deref().and_then(FolderKind::parse),
        folder_class: r.get(at + 4),
        uidvalidity: u32_of(r.get(at + 5))?,
        uidnext: u32_of(r.get(at + 6))?,
        highest_modseq: r.get::<_, i64>(at + 7) as u64,
        subscribed: r.get(at + 8),
        item_id,
        change_key,
        messages: u32_of(r.get(at + 11))?,
        unseen: u32_of(r.get(at + 12))?,
    })
}

pub(super) async fn folder_by_item_id(tx: &dyn Sql, item_id: &str) -> Op<Folder> {
    let row = query_opt(
        tx,
        &format!("SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.item_id = $1"),
        &[&item_id],
    )
    .await?
    .ok_or_else(|| not_found("folder"))?;
    folder_from_row(&row)
}

pub(super) async fn latest_change(tx: &dyn Sql, mailbox: &str) -> Op<i64> {
    Ok(query_opt(
        tx,
        "SELECT change_seq FROM mailboxes WHERE id = $1",
        &[&mailbox],
    )
    .await?
    .map(|r| r.get(0))
    .unwrap_or(0))
}

pub(super) async fn expunged_since(
    tx: &dyn Sql,
    mailbox: &str,
    folder_id: i64,
    modseq: u64,
) -> Op<Vec<u32>> {
    // One statement, one snapshot: the folder's pruned horizon with the records.
    let rows = query(
        tx,
        "SELECT f.pruned_modseq, e.uid FROM folders f
         LEFT JOIN LATERAL (SELECT DISTINCT uid FROM changes
             WHERE mailbox_id = $1 AND folder_id = f.id AND kind = $3 AND modseq > $4) e ON true
         WHERE f.id = $2 ORDER BY e.uid",
        &[
            &mailbox,
            &folder_id,
            &ChangeKind::Expunged.as_str(),
            &(modseq as i64),
        ],
    )
    .await?;
    if rows
        .first()
        .is_some_and(|r| (modseq as i64) < r.get::<_, i64>(0))
    {
        return Err(OpError::Store(StoreError::FeedPruned));
    }
    rows.iter()
        .filter_map(|r| r.get::<_, Option<i64>>(1))
        .map(u32_of)
        .collect()
}

pub(super) async fn changes_since(
    tx: &dyn Sql,
    mailbox: &str,
    after_seq: i64,
    limit: usize,
) -> Op<Vec<Change>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // One statement, one snapshot: the mailbox's pruned horizon with the feed.
    let rows = query(
        tx,
        "SELECT m.pruned_seq, c.seq, c.folder_id, c.kind, c.uid, c.modseq, c.item_id
         FROM mailboxes m
         LEFT JOIN LATERAL (SELECT * FROM changes
             WHERE mailbox_id = m.id AND seq > $2 ORDER BY seq LIMIT $3) c ON true
         WHERE m.id = $1 ORDER BY c.seq",
        &[&mailbox, &after_seq, &limit],
    )
    .await?;
    if rows.first().is_some_and(|r| after_seq < r.get::<_, i64>(0)) {
        return Err(OpError::Store(StoreError::FeedPruned));
    }
    rows.iter()
        .filter(|r| r.get::<_, Option<i64>>(1).is_some())
        .map(|r| {
            // Column 0 is the horizon; the change is columns 1 to 6.
            let kind: String = r.get(3);
            let kind = ChangeKind::parse(&kind).ok_or_else(|| {
                OpError::Store(StoreError::Io(format!(
                    "unknown change kind {kind:?} in the change feed"
                )))
            })?;
            Ok(Change {
                seq: r.get(1),
                folder_id: r.get(2),
                kind,
                uid: u32_of(r.get(4))?,
                modseq: r.get::<_, i64>(5) as u64,
                item_id: r.get(6),
            })
        })
        .collect()
}

pub(super) async fn quota(tx: &dyn Sql, mailbox: &str) -> Op<Quota> {
    let row = query_opt(
        tx,
        "SELECT used_bytes, quota_bytes FROM mailboxes WHERE id = $1",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| not_found("mailbox"))?;
    Ok(Quota {
        used: row.get::<_, i64>(0) as u64,
        limit: row.get::<_, i64>(1) as u64,
    })
}

pub(super) async fn set_quota(tx: &dyn Sql, mailbox: &str, limit: u64) -> Op<((), Touched)> {
    if lock_mailboxes(tx, &[mailbox.to_string()]).await?.is_empty() {
        return Err(not_found("mailbox"));
    }
    execute(
        tx,
        "UPDATE mailboxes SET quota_bytes = $2 WHERE id = $1",
        &[&mailbox, &(limit.min(i64::MAX as u64) as i64)],
    )
    .await?;
    Ok(((), vec![]))
}

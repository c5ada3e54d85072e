//! Writing a migrated mail store into PostgreSQL (`mailgate migrate`), and
//! reading back what the migration compares.
//!
//! Owns the target side of the mail copy: the emptiness check, one transaction
//! for the whole mail store with a binary COPY per table, and the counters set
//! at the end. Ids are copied as they are (folder ids are named by the change
//! feed and by EWS sync, body ids by the body cache), and each identity
//! sequence restarts above everything copied.
//!
//! Column map, SQLite → PostgreSQL (every column of SQLite schema 13):
//! - `mailboxes`: id, quota_bytes, used_bytes, next_uidvalidity (the
//!   UIDVALIDITY counter), created_ms copied; `change_seq` (PostgreSQL only)
//!   set to the mailbox's highest copied feed seq; pruned_seq (the feed's
//!   pruned horizon, SQLite schema 13) copied.
//! - `folders`: id, mailbox_id, name, kind, folder_class, uidvalidity,
//!   uidnext, highest_modseq, subscribed (0/1 → boolean), item_id,
//!   change_counter (the folder ChangeKey), pruned_modseq copied; message_count and
//!   unseen_count not copied but recounted from the copied messages, what the
//!   trigger would have kept (it is disabled during the copy: a per-row
//!   update of one folder row, thousands of times in one transaction, is slow).
//! - `bodies`: id, size, data copied; the identity restarts at
//!   max(`body_ids.next`, max id + 1), so no body id is ever given twice.
//!   `body_ids` itself has no table here (the identity is the counter).
//! - `messages`: id, folder_id, uid, modseq, flags, internal_date, size,
//!   body_id, item_id copied.
//! - `item_props`: item_id, name, value copied.
//! - `body_cache`: body_id, consumer, data copied (derived data of the same
//!   build; cheap to keep, costly to derive again).
//! - `changes`: seq, mailbox_id, folder_id, kind, uid, modseq, item_id, at_ms copied.
//!   SQLite's seq is global, PostgreSQL's per mailbox: a mailbox's copied seqs
//!   are increasing with gaps, and every reader of the feed (changes_since,
//!   latest_change, watch, EWS sync states and watermarks, IMAP's cursor) is
//!   per mailbox and only asks for "seq > n", so a client's stored position
//!   stays valid and new changes continue above it (`change_seq` = max).
//! - `directory`, `access`, `tags`, `queue_*`, `outbox*`: not here; they go
//!   through the store traits (`store::migrate`).

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{PgStore, Settings, pg_error};
use crate::store::migrate::{FolderCheck, MailRow, MailboxCheck, UidDigest};
use crate::store::{Result, StoreError};

/// The mail tables, in the order they are filled.
const MAIL_TABLES: &[&str] = &[
    "mailboxes",
    "folders",
    "bodies",
    "messages",
    "item_props",
    "body_cache",
    "changes",
];

/// Tables of the other parts, by the names SQLite gives them: when one exists
/// in the target (once those parts land) it must be empty too.
const OTHER_TABLES: &[&str] = &[
    "directory_records",
    "access_documents",
    "tags",
    "queue_messages",
    "queue_recipients",
    "outbox",
    "outbox_marks",
];

/// Connections a migration uses: one for the copy, a few for the traits.
const POOL: usize = 4;

/// Opens the target, running its schema migrations first.
pub(crate) async fn open(url: &str) -> Result<PgStore> {
    PgStore::open(&Settings {
        url: url.to_string(),
        pool_size: POOL,
    })
    .await
}

/// The tables (of [`MAIL_TABLES`] and those of [`OTHER_TABLES`] that exist)
/// that hold at least one row.
pub(crate) async fn tables_holding_data(store: &PgStore) -> Result<Vec<String>> {
    let client = store.client().await.map_err(super::OpError::into_store)?;
    let mut held = Vec::new();
    for table in MAIL_TABLES.iter().chain(OTHER_TABLES) {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
            .await
            .map_err(pg_error)?
            .get(0);
        if !exists {
            continue;
        }
        let row = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM \"{table}\")"), &[])
            .await
            .map_err(pg_error)?;
        if row.get::<_, bool>(0) {
            held.push(table.to_string());
        }
    }
    Ok(held)
}

/// The table a row goes to: its COPY statement and column types.
fn copy_of(row: &MailRow) -> (&'static str, &'static [Type]) {
    const T: Type = Type::TEXT;
    const I: Type = Type::INT8;
    const B: Type = Type::BYTEA;
    match row {
        MailRow::Mailbox(_) => (
            "COPY mailboxes (id, quota_bytes, used_bytes, next_uidvalidity, created_ms, pruned_seq)
                 FROM STDIN BINARY",
            &[T, I, I, I, I, I],
        ),
        MailRow::Folder(_) => (
            "COPY folders (id, mailbox_id, name, kind, folder_class, uidvalidity, uidnext,
                 highest_modseq, subscribed, item_id, change_counter, pruned_modseq)
                 FROM STDIN BINARY",
            &[I, T, T, T, T, I, I, I, Type::BOOL, T, I, I],
        ),
        MailRow::Body(_) => (
            "COPY bodies (id, size, data) FROM STDIN BINARY",
            &[I, I, B],
        ),
        MailRow::Message(_) => (
            "COPY messages (id, folder_id, uid, modseq, flags, internal_date, size, body_id, item_id)
                 FROM STDIN BINARY",
            &[I, I, I, I, T, I, I, I, T],
        ),
        MailRow::Prop(_) => (
            "COPY item_props (item_id, name, value) FROM STDIN BINARY",
            &[T, T, B],
        ),
        MailRow::Cache(_) => (
            "COPY body_cache (body_id, consumer, data) FROM STDIN BINARY",
            &[I, T, B],
        ),
        MailRow::Change(_) => (
            "COPY changes (mailbox_id, seq, folder_id, kind, uid, modseq, item_id, at_ms)
                 FROM STDIN BINARY",
            &[T, I, I, T, I, I, T, I],
        ),
    }
}

/// Writes one row into the COPY of its table.
async fn write_row(
    w: std::pin::Pin<&mut BinaryCopyInWriter>,
    row: &MailRow,
) -> std::result::Result<(), tokio_postgres::Error> {
    let values: Vec<&(dyn ToSql + Sync)> = match row {
        MailRow::Mailbox(m) => vec![
            &m.id,
            &m.quota_bytes,
            &m.used_bytes,
            &m.next_uidvalidity,
            &m.created_ms,
            &m.pruned_seq,
        ],
        MailRow::Folder(f) => vec![
            &f.id,
            &f.mailbox_id,
            &f.name,
            &f.kind,
            &f.folder_class,
            &f.uidvalidity,
            &f.uidnext,
            &f.highest_modseq,
            &f.subscribed,
            &f.item_id,
            &f.change_counter,
            &f.pruned_modseq,
        ],
        MailRow::Body(b) => vec![&b.id, &b.size, &b.data],
        MailRow::Message(m) => vec![
            &m.id,
            &m.folder_id,
            &m.uid,
            &m.modseq,
            &m.flags,
            &m.internal_date,
            &m.size,
            &m.body_id,
            &m.item_id,
        ],
        MailRow::Prop(p) => vec![&p.item_id, &p.name, &p.value],
        MailRow::Cache(c) => vec![&c.body_id, &c.consumer, &c.data],
        MailRow::Change(c) => vec![
            &c.mailbox_id,
            &c.seq,
            &c.folder_id,
            &c.kind,
            &c.uid,
            &c.modseq,
            &c.item_id,
            &c.at_ms,
        ],
    };
    w.write(&values).await
}

/// Counters and counts that follow from the copied rows, then the identity
/// sequences above every copied id ($1: the source's next body id).
const FINISH: &str = "
UPDATE mailboxes m SET change_seq = GREATEST(c.seq, m.pruned_seq)
    FROM (SELECT mailbox_id, max(seq) AS seq FROM changes GROUP BY mailbox_id) c
    WHERE m.id = c.mailbox_id;
UPDATE folders f SET message_count = c.n, unseen_count = c.unseen
    FROM (SELECT folder_id, count(*) AS n, sum(unseen(flags)) AS unseen FROM messages GROUP BY folder_id) c
    WHERE f.id = c.folder_id;
ALTER TABLE messages ENABLE TRIGGER messages_counted;
SELECT setval(pg_get_serial_sequence('folders', 'id'),
    GREATEST((SELECT max(id) FROM folders), (SELECT max(folder_id) FROM changes), 0) + 1, false);
SELECT setval(pg_get_serial_sequence('messages', 'id'),
    COALESCE((SELECT max(id) FROM messages), 0) + 1, false);
";

/// Copies the mail rows arriving on `rows` (grouped by table, in
/// [`MAIL_TABLES`] order) in one transaction, then sets the counters; commits
/// only once an empty batch says the source was read to its end (a channel
/// closed without it rolls everything back). `Conflict` when the target
/// turned out to hold mail after all (checked again under the table locks).
pub(crate) async fn copy_mail(
    store: &PgStore,
    mut rows: mpsc::Receiver<Vec<MailRow>>,
    next_body_id: i64,
) -> Result<()> {
    let mut client = store.client().await.map_err(super::OpError::into_store)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE; ALTER TABLE messages DISABLE TRIGGER messages_counted;",
        MAIL_TABLES.join(", ")
    ))
    .await
    .map_err(pg_error)?;
    let any: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM mailboxes)", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if any {
        return Err(StoreError::Conflict(
            "the target already holds mailboxes: migrate only into an empty database".into(),
        ));
    }
    let mut current: Option<(&'static str, std::pin::Pin<Box<BinaryCopyInWriter>>)> = None;
    let mut complete = false;
    while let Some(batch) = rows.recv().await {
        if batch.is_empty() {
            complete = true;
            break;
        }
        for row in &batch {
            let (sql, types) = copy_of(row);
            if current.as_ref().is_none_or(|(s, _)| *s != sql) {
                if let Some((_, mut w)) = current.take() {
                    w.as_mut().finish().await.map_err(pg_error)?;
                }
                let sink = tx.copy_in::<_, Bytes>(sql).await.map_err(pg_error)?;
                current = Some((sql, Box::pin(BinaryCopyInWriter::new(sink, types))));
            }
            if let Some((_, w)) = current.as_mut() {
                write_row(w.as_mut(), row).await.map_err(pg_error)?;
            }
        }
    }
    if !complete {
        // The reader stopped early: the transaction rolls back with `tx`.
        return Err(StoreError::Io(
            "the source ended before its last row was read".into(),
        ));
    }
    if let Some((_, mut w)) = current.take() {
        w.as_mut().finish().await.map_err(pg_error)?;
    }
    tx.batch_execute(FINISH).await.map_err(pg_error)?;
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('bodies', 'id'),
             GREATEST(COALESCE((SELECT max(id) FROM bodies), 0) + 1, $1), false)",
        &[&next_body_id.max(1)],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}

/// What a client sees of each folder, ordered by (mailbox, name), as
/// `sqlite::export` reads it from the source.
pub(crate) async fn folder_checks(store: &PgStore) -> Result<Vec<FolderCheck>> {
    let client = store.client().await.map_err(super::OpError::into_store)?;
    let folders = client
        .query(
            "SELECT id, mailbox_id, name, uidvalidity, uidnext, highest_modseq FROM folders
             ORDER BY mailbox_id COLLATE \"C\", name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(pg_error)?;
    let page = client
        .prepare(
            "SELECT uid, modseq, flags, item_id, internal_date, size, body_id FROM messages
             WHERE folder_id = $1 AND uid > $2 ORDER BY uid LIMIT 5000",
        )
        .await
        .map_err(pg_error)?;
    let mut out = Vec::with_capacity(folders.len());
    for f in &folders {
        let id: i64 = f.get(0);
        let mut digest = UidDigest::default();
        let mut after = 0i64;
        loop {
            let rows = client
                .query(&page, &[&id, &after])
                .await
                .map_err(pg_error)?;
            for r in &rows {
                after = r.get(0);
                digest.push(
                    after,
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                );
            }
            if rows.len() < 5000 {
                break;
            }
        }
        out.push(FolderCheck {
            id,
            mailbox: f.get(1),
            name: f.get(2),
            uidvalidity: f.get(3),
            uidnext: f.get(4),
            highest_modseq: f.get(5),
            messages: digest.count(),
            digest: digest.finish(),
        });
    }
    Ok(out)
}

/// What a client sees of each mailbox, as `sqlite::export` reads it.
pub(crate) async fn mailbox_checks(store: &PgStore) -> Result<Vec<MailboxCheck>> {
    let client = store.client().await.map_err(super::OpError::into_store)?;
    let rows = client
        .query(
            "SELECT id, quota_bytes, used_bytes, next_uidvalidity, change_seq FROM mailboxes
             ORDER BY id COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// (bodies, change feed rows) in the target.
pub(crate) async fn counts(store: &PgStore) -> Result<(i64, i64)> {
    let client = store.client().await.map_err(super::OpError::into_store)?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM bodies), (SELECT count(*) FROM changes)",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok((row.get(0), row.get(1)))
}

//! Opening the database file: corruption check, pragmas, versioned migrations.

use std::path::Path;

use rusqlite::Connection;

use crate::store::{Result, StoreError};

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`
/// (`PRAGMA user_version`). Append, never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY,
    quota_bytes INTEGER NOT NULL,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    next_uidvalidity INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id),
    name TEXT NOT NULL,
    kind TEXT,
    folder_class TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    subscribed INTEGER NOT NULL,
    item_id TEXT NOT NULL UNIQUE,
    UNIQUE (mailbox_id, name)
) STRICT;
CREATE TABLE bodies (
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
) STRICT;
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    folder_id INTEGER NOT NULL REFERENCES folders(id),
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    internal_date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body_id INTEGER NOT NULL REFERENCES bodies(id),
    item_id TEXT NOT NULL UNIQUE,
    UNIQUE (folder_id, uid)
) STRICT;
CREATE INDEX messages_body ON messages (body_id);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id TEXT NOT NULL,
    folder_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL
) STRICT;
CREATE INDEX changes_mailbox ON changes (mailbox_id, seq);
CREATE TABLE directory (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT;
"#,
    r#"
CREATE TABLE access (
    org_id TEXT PRIMARY KEY,
    json TEXT NOT NULL
) STRICT;
"#,
    r#"
CREATE TABLE tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
) STRICT;
"#,
    r#"
CREATE TABLE queue_messages (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    on_behalf_of TEXT,
    from_header TEXT NOT NULL,
    message_id TEXT NOT NULL,
    owner_org TEXT NOT NULL,
    owner_mailbox TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    envelope_id TEXT,
    enqueued_ms INTEGER NOT NULL,
    body BLOB NOT NULL
) STRICT;
CREATE TABLE queue_recipients (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES queue_messages(id),
    recipient TEXT NOT NULL,
    notify_failure INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT
) STRICT;
CREATE INDEX queue_due ON queue_recipients (next_attempt_ms);
CREATE INDEX queue_by_message ON queue_recipients (message_id);
"#,
    r#"
CREATE TABLE body_cache (
    body_id INTEGER PRIMARY KEY REFERENCES bodies(id) ON DELETE CASCADE,
    data BLOB NOT NULL
) STRICT;
"#,
    // 6: every change names its item (message or folder); a folder counts its
    // changes for its ChangeKey. Rows of items still present get their ids.
    r#"
ALTER TABLE changes ADD COLUMN item_id TEXT NOT NULL DEFAULT '';
UPDATE changes SET item_id = COALESCE(
    (SELECT m.item_id FROM messages m WHERE m.folder_id = changes.folder_id AND m.uid = changes.uid), '')
    WHERE kind IN ('created', 'flags');
UPDATE changes SET item_id = COALESCE(
    (SELECT f.item_id FROM folders f WHERE f.id = changes.folder_id), '')
    WHERE kind IN ('folder_created', 'folder_deleted', 'folder_renamed');
ALTER TABLE folders ADD COLUMN change_counter INTEGER NOT NULL DEFAULT 0;
"#,
    // 7: one derived-cache slot per (body, consumer); the old slot was IMAP's.
    r#"
CREATE TABLE body_cache_v7 (
    body_id INTEGER NOT NULL REFERENCES bodies(id) ON DELETE CASCADE,
    consumer TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (body_id, consumer)
) STRICT;
INSERT INTO body_cache_v7 (body_id, consumer, data)
    SELECT body_id, 'imap_structure', data FROM body_cache;
DROP TABLE body_cache;
ALTER TABLE body_cache_v7 RENAME TO body_cache;
"#,
    // 8: the event outbox (store::outbox). AUTOINCREMENT: a sequence number is
    // never reused, also once every row was deleted, so a sink's mark stays valid.
    r#"
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    org TEXT NOT NULL,
    line TEXT NOT NULL
) STRICT;
CREATE TABLE outbox_marks (
    sink TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) STRICT;
"#,
    // 9: body ids come from a counter, so the id of an expunged body is never
    // given to a new one (SQLite reuses the highest rowid once it is deleted).
    r#"
CREATE TABLE body_ids (next INTEGER NOT NULL) STRICT;
INSERT INTO body_ids (next) SELECT COALESCE(MAX(id), 0) + 1 FROM bodies;
"#,
    // 10: item properties the message bytes cannot carry (store::Property), by
    // item id, which an edited draft keeps.
    r#"
CREATE TABLE item_props (
    item_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (item_id, name)
) STRICT, WITHOUT ROWID;
"#,
    // 11: each folder's message and unseen counts kept by triggers, so reading a
    // folder (every EWS item lookup does) no longer counts its messages: 2 ms a
    // read at 10,000 messages before.
    r#"
ALTER TABLE folders ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN unseen_count INTEGER NOT NULL DEFAULT 0;
UPDATE folders SET
    message_count = (SELECT count(*) FROM messages m WHERE m.folder_id = folders.id),
    unseen_count = (SELECT count(*) FROM messages m WHERE m.folder_id = folders.id
        AND (' ' || m.flags || ' ') NOT LIKE '% \Seen %');
CREATE TRIGGER messages_counted_in AFTER INSERT ON messages BEGIN
    UPDATE folders SET message_count = message_count + 1,
        unseen_count = unseen_count + ((' ' || NEW.flags || ' ') NOT LIKE '% \Seen %')
    WHERE id = NEW.folder_id;
END;
CREATE TRIGGER messages_counted_out AFTER DELETE ON messages BEGIN
    UPDATE folders SET message_count = message_count - 1,
        unseen_count = unseen_count - ((' ' || OLD.flags || ' ') NOT LIKE '% \Seen %')
    WHERE id = OLD.folder_id;
END;
CREATE TRIGGER messages_recounted AFTER UPDATE OF flags, folder_id ON messages BEGIN
    UPDATE folders SET message_count = message_count - 1,
        unseen_count = unseen_count - ((' ' || OLD.flags || ' ') NOT LIKE '% \Seen %')
    WHERE id = OLD.folder_id;
    UPDATE folders SET message_count = message_count + 1,
        unseen_count = unseen_count + ((' ' || NEW.flags || ' ') NOT LIKE '% \Seen %')
    WHERE id = NEW.folder_id;
END;
"#,
    // 12: the retention sweeper finds a folder's messages older than a date
    // (Store::uids_dated_before) without reading the whole folder.
    r#"
CREATE INDEX messages_dated ON messages (folder_id, internal_date);
"#,
    // 13: feed pruning (store::housekeeping): when each change was recorded
    // (rows already there count from the upgrade), the highest pruned seq of
    // each mailbox and the highest pruned expunge MODSEQ of each folder.
    r#"
ALTER TABLE changes ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE changes SET at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
ALTER TABLE mailboxes ADD COLUMN pruned_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN pruned_modseq INTEGER NOT NULL DEFAULT 0;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Opens (creating if absent) the store file for writing, after checking that an
/// existing file is an intact SQLite database, and brings its schema up to date.
pub fn open_writer(path: &Path) -> Result<Connection> {
    check_header(path)?;
    let conn = open(path)?;
    let integrity: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| corrupt(path, e.to_string()))?;
    if integrity != "ok" {
        return Err(corrupt(path, integrity));
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| io(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "{}: cannot enable WAL (got {mode})",
            path.display()
        )));
    }
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens another connection to an already-open store, for reading. Readers
/// keep SQLite's default 2 MiB page cache, not the writer's 16: there are up to
/// eight of them, each would fill its private cache with message bodies (128 MiB
/// in all), and the kernel's page cache holds the file anyway.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    conn.execute_batch("PRAGMA cache_size = -2000;")
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| io(path, e))?;
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives
    // power loss. Group commit in the writer keeps that to one fsync per batch.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16000;",
    )
    .map_err(|e| classify(path, e))?;
    // Every hot statement stays prepared: parsing SQL per message showed in profiles.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Io(format!("{}: {e}", path.display()))),
    };
    let mut head = [0u8; 16];
    let n = f
        .read(&mut head)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    if n == 0 {
        return Ok(()); // an empty file is a new database
    }
    if n < 16 || &head != SQLITE_MAGIC {
        return Err(corrupt(path, "not an SQLite database (bad header)".into()));
    }
    Ok(())
}

fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| io(path, e))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        let tx = conn.unchecked_transaction().map_err(|e| io(path, e))?;
        tx.execute_batch(sql).map_err(|e| io(path, e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| io(path, e))?;
        tx.commit().map_err(|e| io(path, e))?;
        tracing::info!(store = %path.display(), version, "store schema migrated");
    }
    Ok(())
}

fn corrupt(path: &Path, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        detail,
    }
}

fn io(path: &Path, e: rusqlite::Error) -> StoreError {
    classify(path, e)
}

/// "file is not a database" and friends are corruption, anything else is I/O.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => corrupt(path, e.to_string()),
        _ => StoreError::Io(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_store_is_migrated_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn garbage_file_is_reported_corrupt_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        std::fs::write(&path, b"this is not a database at all, not even close").unwrap();
        let e = open_writer(&path).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"this is not a database at all, not even close"
        );
    }

    #[test]
    fn damaged_pages_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let conn = open_writer(&path).unwrap();
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
            for i in 0..200 {
                conn.execute(
                    "INSERT INTO directory (kind, id, org_id, json) VALUES ('user', ?1, 'o', ?2)",
                    rusqlite::params![format!("id{i}"), "x".repeat(500)],
                )
                .unwrap();
            }
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .unwrap();
        }
        // Scribble over the middle of the file, past the header page.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 3000] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let e = open_writer(&path).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    }

    /// A store file written before the change feed carried item ids and before
    /// the cache had a slot per consumer opens, is upgraded, and keeps its data.
    #[test]
    fn a_version_5_store_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let conn = open(&path).unwrap();
            for sql in &MIGRATIONS[..5] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
            conn.execute_batch(
                "INSERT INTO mailboxes VALUES ('u', 1000, 2, 10, 0);
                 INSERT INTO folders VALUES (1, 'u', 'INBOX', 'inbox', 'IPF.Note', 7, 3, 4, 1, 'f-1');
                 INSERT INTO bodies VALUES (1, 1, x'61');
                 INSERT INTO bodies VALUES (2, 1, x'62');
                 INSERT INTO messages VALUES (1, 1, 2, 3, '', 0, 1, 2, 'm-2');
                 INSERT INTO changes (mailbox_id, folder_id, kind, uid, modseq) VALUES
                     ('u', 1, 'created', 1, 2), ('u', 1, 'created', 2, 3),
                     ('u', 1, 'expunged', 1, 4), ('u', 1, 'folder_renamed', 0, 4);
                 INSERT INTO body_cache VALUES (2, CAST('structure' AS BLOB));",
            )
            .unwrap();
        }
        let conn = open_writer(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let ids: Vec<(String, String)> = conn
            .prepare("SELECT kind, item_id FROM changes ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let ids: Vec<(&str, &str)> = ids.iter().map(|(k, i)| (&k[..], &i[..])).collect();
        assert_eq!(
            ids,
            [
                ("created", ""),
                ("created", "m-2"),
                ("expunged", ""),
                ("folder_renamed", "f-1")
            ],
            "rows of items still present name them"
        );
        let counter: i64 = conn
            .query_row("SELECT change_counter FROM folders", [], |r| r.get(0))
            .unwrap();
        assert_eq!(counter, 0);
        let cache: (i64, String, Vec<u8>) = conn
            .query_row("SELECT body_id, consumer, data FROM body_cache", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(cache, (2, "imap_structure".into(), b"structure".to_vec()));
        // The cache still goes with its body.
        conn.execute_batch("DELETE FROM messages; DELETE FROM bodies;")
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM body_cache", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        drop(conn);
        assert!(open_writer(&path).is_ok(), "reopens at the new version");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        {
            let conn = open_writer(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let e = open_writer(&path).unwrap_err();
        assert!(matches!(e, StoreError::SchemaTooNew { .. }), "{e}");
    }
}

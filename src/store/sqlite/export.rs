//! Reading a whole SQLite store for `mailgate migrate`, without changing it.
//!
//! Owns the source side of a migration: opening the file read-only (refusing
//! one a running daemon still has open, one that is not a store, and one whose
//! schema is not this build's), and streaming every table row by row in one
//! read transaction (one consistent snapshot), so a 10 GB store never needs
//! 10 GB of memory: rusqlite steps a cursor, and the caller's sink decides how
//! many rows it holds. Every column of every table is read here; the mapping to
//! PostgreSQL (and why a column is not copied) is in `postgres::import`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::schema::SCHEMA_VERSION;
use crate::directory::Record;
use crate::store::migrate::{
    BodyRow, CacheRow, ChangeRow, FolderCheck, FolderRow, MailRow, MailboxCheck, MailboxRow,
    MessageRow, OutboxMark, PropRow, QueuedRow, UidDigest,
};
use crate::store::outbox::{MAX_READ, OutboxRow};
use crate::store::queue::{NewOutbound, NewRecipient};
use crate::store::{Result, StoreError, Tag};

/// Byte offset of SQLite's "DMS" lock in the `-shm` file (unix VFS:
/// `UNIX_SHM_BASE + SQLITE_SHM_NLOCK` = 120 + 8). Every connection that has
/// the WAL index open holds a read lock on it.
const SHM_DMS_BYTE: i64 = 128;

/// A store file opened read-only inside one read transaction.
pub(crate) struct Export {
    conn: Connection,
    path: PathBuf,
    /// Held so that no lock check of ours is released early (closing a file
    /// drops its process's POSIX locks on it); see [`in_use`].
    _shm: Option<File>,
}

/// Whether another connection (a running daemon) has the store at `path`
/// open: someone holds a lock on the DMS byte of its `-shm` file. Checked with
/// an open-file-description lock query, which sees the daemon's POSIX locks
/// and takes none. Returns the open `-shm` file (if any) to keep while the
/// store is read.
pub(crate) fn in_use(path: &Path) -> io::Result<(bool, Option<File>)> {
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let file = match File::open(PathBuf::from(shm)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((false, None)),
        Err(e) => return Err(e),
    };
    // SAFETY: `flock` is plain data; fcntl(F_OFD_GETLK) reads and writes only it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = SHM_DMS_BYTE;
    fl.l_len = 1;
    // SAFETY: a valid descriptor and a valid `flock` pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short, Some(file)))
}

fn refused(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Conflict(format!("{}: {why}", path.display()))
}

impl Export {
    /// Opens the store at `path` read-only and starts the read transaction.
    /// Refusals (`Conflict`): no such file, a running daemon has it open, not
    /// an SQLite store, a schema other than this build's.
    pub(crate) fn open(path: &Path) -> Result<Export> {
        if !path.is_file() {
            return Err(refused(path, "no such store file"));
        }
        let (busy, shm) = in_use(path).map_err(|e| refused(path, e))?;
        if busy {
            return Err(refused(
                path,
                "the store is open in another process (a running mailgate?): stop the daemon first",
            ));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| refused(path, e))?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
            .map_err(|e| refused(path, e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| refused(path, format!("not a mailgate store ({e})")))?;
        if version != SCHEMA_VERSION {
            return Err(refused(
                path,
                format!(
                    "store schema version {version}, this mailgate migrates version {SCHEMA_VERSION} \
                     (run this mailgate's `serve` on it once to upgrade it, stop it, then migrate)"
                ),
            ));
        }
        // One snapshot for everything read below.
        conn.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM mailboxes;")
            .map_err(|e| refused(path, e))?;
        Ok(Export {
            conn,
            path: path.to_path_buf(),
            _shm: shm,
        })
    }

    fn io(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Io(format!("{}: {e}", self.path.display()))
    }

    /// Every row of the mail store, table by table in the order the target's
    /// foreign keys need (mailboxes, folders, bodies, messages, properties,
    /// body cache, change feed), each table in id order.
    pub(crate) fn mail(&self, sink: &mut dyn FnMut(MailRow) -> Result<()>) -> Result<()> {
        self.each(
            "SELECT id, quota_bytes, used_bytes, next_uidvalidity, created_ms, pruned_seq
             FROM mailboxes ORDER BY id",
            |r| {
                Ok(MailRow::Mailbox(MailboxRow {
                    id: r.get(0)?,
                    quota_bytes: r.get(1)?,
                    used_bytes: r.get(2)?,
                    next_uidvalidity: r.get(3)?,
                    created_ms: r.get(4)?,
                    pruned_seq: r.get(5)?,
                }))
            },
            sink,
        )?;
        // message_count and unseen_count are not read: the target recounts them
        // from the messages it receives (postgres::import).
        self.each(
            "SELECT id, mailbox_id, name, kind, folder_class, uidvalidity, uidnext, highest_modseq,
                    subscribed, item_id, change_counter, pruned_modseq FROM folders ORDER BY id",
            |r| {
                Ok(MailRow::Folder(FolderRow {
                    id: r.get(0)?,
                    mailbox_id: r.get(1)?,
                    name: r.get(2)?,
                    kind: r.get(3)?,
                    folder_class: r.get(4)?,
                    uidvalidity: r.get(5)?,
                    uidnext: r.get(6)?,
                    highest_modseq: r.get(7)?,
                    subscribed: r.get::<_, i64>(8)? != 0,
                    item_id: r.get(9)?,
                    change_counter: r.get(10)?,
                    pruned_modseq: r.get(11)?,
                }))
            },
            sink,
        )?;
        self.each(
            "SELECT id, size, data FROM bodies ORDER BY id",
            |r| {
                Ok(MailRow::Body(BodyRow {
                    id: r.get(0)?,
                    size: r.get(1)?,
                    data: r.get(2)?,
                }))
            },
            sink,
        )?;
        self.each(
            "SELECT id, folder_id, uid, modseq, flags, internal_date, size, body_id, item_id
             FROM messages ORDER BY id",
            |r| {
                Ok(MailRow::Message(MessageRow {
                    id: r.get(0)?,
                    folder_id: r.get(1)?,
                    uid: r.get(2)?,
                    modseq: r.get(3)?,
                    flags: r.get(4)?,
                    internal_date: r.get(5)?,
                    size: r.get(6)?,
                    body_id: r.get(7)?,
                    item_id: r.get(8)?,
                }))
            },
            sink,
        )?;
        self.each(
            "SELECT item_id, name, value FROM item_props ORDER BY item_id, name",
            |r| {
                Ok(MailRow::Prop(PropRow {
                    item_id: r.get(0)?,
                    name: r.get(1)?,
                    value: r.get(2)?,
                }))
            },
            sink,
        )?;
        self.each(
            "SELECT body_id, consumer, data FROM body_cache ORDER BY body_id, consumer",
            |r| {
                Ok(MailRow::Cache(CacheRow {
                    body_id: r.get(0)?,
                    consumer: r.get(1)?,
                    data: r.get(2)?,
                }))
            },
            sink,
        )?;
        self.each(
            "SELECT seq, mailbox_id, folder_id, kind, uid, modseq, item_id, at_ms FROM changes
             ORDER BY seq",
            |r| {
                Ok(MailRow::Change(ChangeRow {
                    seq: r.get(0)?,
                    mailbox_id: r.get(1)?,
                    folder_id: r.get(2)?,
                    kind: r.get(3)?,
                    uid: r.get(4)?,
                    modseq: r.get(5)?,
                    item_id: r.get(6)?,
                    at_ms: r.get(7)?,
                }))
            },
            sink,
        )
    }

    /// Runs `sql` and hands each row, converted by `row`, to `sink`.
    fn each<T>(
        &self,
        sql: &str,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        sink: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.io(e))?;
        let mut rows = st.query([]).map_err(|e| self.io(e))?;
        while let Some(r) = rows.next().map_err(|e| self.io(e))? {
            sink(row(r).map_err(|e| self.io(e))?)?;
        }
        Ok(())
    }

    fn count(&self, sql: &str) -> Result<i64> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| self.io(e))
    }

    /// The next body id the store would hand out (`body_ids`): the target's
    /// body ids continue above it, so an expunged body's id is never reused.
    pub(crate) fn next_body_id(&self) -> Result<i64> {
        self.count("SELECT COALESCE(MAX(next), 1) FROM body_ids")
    }

    /// How many bodies the store holds.
    pub(crate) fn bodies(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM bodies")
    }

    /// How many change feed rows the store holds.
    pub(crate) fn changes(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM changes")
    }

    /// What a client sees of each mailbox (its latest change is the highest
    /// seq of its feed rows, as `latest_change` answers).
    pub(crate) fn mailbox_checks(&self) -> Result<Vec<MailboxCheck>> {
        let mut out = Vec::new();
        self.each(
            "SELECT m.id, m.quota_bytes, m.used_bytes, m.next_uidvalidity,
                    COALESCE((SELECT max(seq) FROM changes c WHERE c.mailbox_id = m.id), 0)
             FROM mailboxes m ORDER BY m.id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            &mut |m| {
                out.push(m);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// What a client sees of each folder, for the comparison after the copy,
    /// ordered by (mailbox, name): the counters and a digest of the messages.
    pub(crate) fn folder_checks(&self) -> Result<Vec<FolderCheck>> {
        let mut folders: Vec<FolderCheck> = Vec::new();
        self.each(
            "SELECT id, mailbox_id, name, uidvalidity, uidnext, highest_modseq FROM folders
             ORDER BY mailbox_id, name",
            |r| {
                Ok(FolderCheck {
                    id: r.get(0)?,
                    mailbox: r.get(1)?,
                    name: r.get(2)?,
                    uidvalidity: r.get(3)?,
                    uidnext: r.get(4)?,
                    highest_modseq: r.get(5)?,
                    messages: 0,
                    digest: UidDigest::default().finish(),
                })
            },
            &mut |f| {
                folders.push(f);
                Ok(())
            },
        )?;
        let mut st = self
            .conn
            .prepare(
                "SELECT uid, modseq, flags, item_id, internal_date, size, body_id FROM messages
                 WHERE folder_id = ?1 ORDER BY uid",
            )
            .map_err(|e| self.io(e))?;
        for f in &mut folders {
            let mut digest = UidDigest::default();
            let mut rows = st.query([f.id]).map_err(|e| self.io(e))?;
            while let Some(r) = rows.next().map_err(|e| self.io(e))? {
                let mut read = || -> rusqlite::Result<()> {
                    digest.push(
                        r.get(0)?,
                        r.get(1)?,
                        &r.get::<_, String>(2)?,
                        &r.get::<_, String>(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    );
                    Ok(())
                };
                read().map_err(|e| self.io(e))?;
            }
            f.messages = digest.count();
            f.digest = digest.finish();
        }
        Ok(folders)
    }

    /// Every directory record.
    pub(crate) fn directory(&self) -> Result<Vec<Record>> {
        super::directory::load_records(&self.conn)
    }

    /// Every organization's access rule document: (organization id, JSON).
    pub(crate) fn access(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        self.each(
            "SELECT org_id, json FROM access ORDER BY org_id",
            |r| Ok((r.get(0)?, r.get(1)?)),
            &mut |doc| {
                out.push(doc);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Every tag, grouped by ARN: (ARN, its tags sorted by key).
    pub(crate) fn tags(&self) -> Result<Vec<(String, Vec<Tag>)>> {
        let mut out: Vec<(String, Vec<Tag>)> = Vec::new();
        self.each(
            "SELECT arn, key, value FROM tags ORDER BY arn, key",
            |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
            &mut |(arn, key, value)| {
                match out.last_mut() {
                    Some((last, tags)) if *last == arn => tags.push((key, value)),
                    _ => out.push((arn, vec![(key, value)])),
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// How many (queued messages, queued recipients) the store holds.
    pub(crate) fn queue_counts(&self) -> Result<(i64, i64)> {
        Ok((
            self.count("SELECT count(*) FROM queue_messages")?,
            self.count("SELECT count(*) FROM queue_recipients")?,
        ))
    }

    /// Every queued message with its recipients, one at a time (a queued body
    /// may be large).
    pub(crate) fn queue(&self, sink: &mut dyn FnMut(QueuedRow) -> Result<()>) -> Result<()> {
        // `state` ('queued', 'deferred') is not read: it follows from `attempts`.
        let mut recipients = self
            .conn
            .prepare(
                "SELECT id, recipient, notify_failure, attempts, next_attempt_ms, last_error
                 FROM queue_recipients WHERE message_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.io(e))?;
        self.each(
            "SELECT id, sender, on_behalf_of, from_header, message_id, owner_org, owner_mailbox,
                    trace_id, envelope_id, enqueued_ms, body FROM queue_messages ORDER BY id",
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(9)?,
                    NewOutbound {
                        sender: r.get(1)?,
                        on_behalf_of: r.get(2)?,
                        from_header: r.get(3)?,
                        message_id: r.get(4)?,
                        owner_org: r.get(5)?,
                        owner_mailbox: r.get(6)?,
                        trace_id: r.get(7)?,
                        envelope_id: r.get(8)?,
                        recipients: Vec::new(),
                        body: r.get::<_, Vec<u8>>(10)?.into(),
                    },
                ))
            },
            &mut |(id, enqueued_ms, mut message): (i64, i64, NewOutbound)| {
                let schedule = recipients
                    .query_map([id], super::queue::recipient)
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(|e| self.io(e))?;
                message.recipients = schedule
                    .iter()
                    .map(|r| NewRecipient {
                        address: r.recipient.clone(),
                        notify_failure: r.notify_failure,
                    })
                    .collect();
                sink(QueuedRow {
                    message,
                    enqueued_ms,
                    schedule,
                })
            },
        )
    }

    /// How many events wait in the outbox.
    pub(crate) fn outbox_count(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM outbox")
    }

    /// The outbox's events in sequence order, a bounded page at a time.
    pub(crate) fn outbox(&self, sink: &mut dyn FnMut(OutboxRow) -> Result<()>) -> Result<()> {
        let mut last = 0;
        loop {
            let rows = super::outbox::after(&self.conn, last, MAX_READ)?;
            let Some(end) = rows.last().map(|r| r.seq) else {
                return Ok(());
            };
            rows.into_iter().try_for_each(&mut *sink)?;
            last = end;
        }
    }

    /// Every sink's mark in the outbox.
    pub(crate) fn outbox_marks(&self) -> Result<Vec<OutboxMark>> {
        let mut out = Vec::new();
        self.each(
            "SELECT sink, seq FROM outbox_marks ORDER BY sink",
            |r| Ok((r.get(0)?, r.get(1)?)),
            &mut |m| {
                out.push(m);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

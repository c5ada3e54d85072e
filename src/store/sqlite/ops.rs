//! The SQL of each store operation. Writes run inside the writer's transaction and
//! return the mailboxes whose change feed they advanced.

use rusqlite::{Connection, OptionalExtension, params};

use super::cached::CachedSql;

use super::Touched;
use crate::clock::now_ms;
use crate::store::rules::{
    FlagStep, flag_step, flags_from_text, flags_to_text, merge_properties, new_item_id,
    valid_folder_name,
};
use crate::store::{
    CacheConsumer, Change, ChangeKind, CopyOutcome, DEFAULT_FOLDERS, FlagOp, FlagOutcome,
    FlagUpdate, Folder, FolderKind, FolderRef, ItemChange, MessageMeta, NewMessage, Property,
    Quota, Refused, Result, StoreError, Stored, Target, change_key, flag_change_kind,
    normalize_flags,
};

/// Appends to the change feed and returns the new sequence number. `item_id` is
/// the message's (or, for folder changes, the folder's).
fn record_change(
    c: &Connection,
    mailbox: &str,
    folder_id: i64,
    kind: ChangeKind,
    uid: u32,
    modseq: u64,
    item_id: &str,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO changes (mailbox_id, folder_id, kind, uid, modseq, item_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
        params![mailbox, folder_id, kind.as_str(), uid, modseq as i64, item_id, now_ms()],
    )?;
    Ok(c.last_insert_rowid())
}

/// Takes the next UIDVALIDITY of a mailbox: strictly increasing, seeded from the clock
/// so a re-created mailbox never reuses one.
fn next_uidvalidity(c: &Connection, mailbox: &str) -> Result<u32> {
    let v: i64 = c.prepare_cached("UPDATE mailboxes SET next_uidvalidity = next_uidvalidity + 1 WHERE id = ?1 RETURNING next_uidvalidity - 1")?.query_row(
        [mailbox],
        |r| r.get(0),
    )?;
    Ok(v as u32)
}

/// Moves the ChangeKey of the folder above `name`, if any: its set of subfolders
/// (EWS ChildFolderCount) changed.
fn touch_parent(c: &Connection, mailbox: &str, name: &str) -> Result<()> {
    if let Some((parent, _)) = name.rsplit_once('/') {
        c.prepare_cached(
            "UPDATE folders SET change_counter = change_counter + 1 WHERE mailbox_id = ?1 AND name = ?2",
        )?
        .execute(params![mailbox, parent])?;
    }
    Ok(())
}

/// Creates a folder row (its parent's ChangeKey moves) and returns its id and item id.
fn insert_folder(
    c: &Connection,
    mailbox: &str,
    name: &str,
    kind: Option<FolderKind>,
    class: &str,
) -> Result<(i64, String)> {
    let uidvalidity = next_uidvalidity(c, mailbox)?;
    let item_id = new_item_id();
    c.prepare_cached("INSERT INTO folders (mailbox_id, name, kind, folder_class, uidvalidity, uidnext, highest_modseq, subscribed, item_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, 1, 1, ?6)")?.execute(
        params![mailbox, name, kind.map(FolderKind::as_str), class, uidvalidity, item_id],
    )?;
    let id = c.last_insert_rowid();
    touch_parent(c, mailbox, name)?;
    Ok((id, item_id))
}

pub(super) fn create_mailbox(
    c: &Connection,
    mailbox: &str,
    quota_bytes: u64,
) -> Result<((), Touched)> {
    let seed = (now_ms() / 1000).clamp(1, u32::MAX as i64 / 2);
    let inserted = c.prepare_cached("INSERT OR IGNORE INTO mailboxes (id, quota_bytes, used_bytes, next_uidvalidity, created_ms) VALUES (?1, ?2, 0, ?3, ?4)")?.execute(
        params![mailbox, quota_bytes as i64, seed, now_ms()],
    )?;
    if inserted == 0 {
        return Ok(((), vec![]));
    }
    for (name, kind, class) in DEFAULT_FOLDERS {
        insert_folder(c, mailbox, name, Some(*kind), class)?;
    }
    Ok(((), vec![]))
}

const FOLDER_COLUMNS: &str =
    "f.id, f.mailbox_id, f.name, f.kind, f.folder_class, f.uidvalidity, f.uidnext,
    f.highest_modseq, f.subscribed, f.item_id, f.change_counter, f.message_count, f.unseen_count";

fn folder_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Folder> {
    let kind: Option<String> = r.get(3)?;
    let item_id: String = r.get(9)?;
    let change_key = change_key(&item_id, r.get::<_, i64>(10)? as u64);
    Ok(Folder {
        id: r.get(0)?,
        mailbox_id: r.get(1)?,
        name: r.get(2)?,
        kind: kind.as_deref().and_then(FolderKind::parse),
        folder_class: r.get(4)?,
        uidvalidity: r.get(5)?,
        uidnext: r.get(6)?,
        highest_modseq: r.get::<_, i64>(7)? as u64,
        subscribed: r.get(8)?,
        item_id,
        change_key,
        messages: r.get(11)?,
        unseen: r.get(12)?,
    })
}

pub(super) fn folders(c: &Connection, mailbox: &str) -> Result<Vec<Folder>> {
    let exists: Option<i64> = c
        .query_row_cached("SELECT 1 FROM mailboxes WHERE id = ?1", [mailbox], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound("mailbox"));
    }
    let mut st = c.prepare_cached(&format!(
        "SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.mailbox_id = ?1 ORDER BY f.name"
    ))?;
    let rows = st.query_map([mailbox], folder_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn folder_by_id(c: &Connection, id: i64) -> Result<Folder> {
    c.query_row_cached(
        &format!("SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.id = ?1"),
        [id],
        folder_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("folder"))
}

pub(super) fn create_folder(
    c: &Connection,
    mailbox: &str,
    name: &str,
    folder_class: &str,
) -> Result<(Folder, Touched)> {
    if !valid_folder_name(name) {
        return Err(StoreError::Conflict(format!(
            "invalid folder name {name:?}"
        )));
    }
    if name.eq_ignore_ascii_case("inbox") {
        return Err(StoreError::Conflict("INBOX already exists".into()));
    }
    let existing: Option<i64> = c
        .query_row_cached(
            "SELECT id FROM folders WHERE mailbox_id = ?1 AND name = ?2",
            params![mailbox, name],
            |r| r.get(0),
        )
        .optional()?;
    if existing.is_some() {
        return Err(StoreError::Conflict(format!(
            "folder {name:?} already exists"
        )));
    }
    if let Some((parent, _)) = name.rsplit_once('/') {
        let p: Option<i64> = c
            .query_row_cached(
                "SELECT id FROM folders WHERE mailbox_id = ?1 AND name = ?2",
                params![mailbox, parent],
                |r| r.get(0),
            )
            .optional()?;
        if p.is_none() {
            return Err(StoreError::NotFound("parent folder"));
        }
    }
    let mailbox_exists: Option<i64> = c
        .query_row_cached("SELECT 1 FROM mailboxes WHERE id = ?1", [mailbox], |r| {
            r.get(0)
        })
        .optional()?;
    if mailbox_exists.is_none() {
        return Err(StoreError::NotFound("mailbox"));
    }
    let (id, item_id) = insert_folder(c, mailbox, name, None, folder_class)?;
    let seq = record_change(c, mailbox, id, ChangeKind::FolderCreated, 0, 1, &item_id)?;
    Ok((folder_by_id(c, id)?, vec![(mailbox.to_string(), seq)]))
}

pub(super) fn delete_folder(c: &Connection, folder_id: i64) -> Result<((), Touched)> {
    let folder = folder_by_id(c, folder_id)?;
    if folder.kind.is_some() {
        return Err(StoreError::Conflict(format!(
            "{} is a default folder and cannot be deleted",
            folder.name
        )));
    }
    let child: Option<i64> = c
        .query_row_cached(
            "SELECT id FROM folders WHERE mailbox_id = ?1 AND substr(name, 1, length(?2) + 1) = ?2 || '/' LIMIT 1",
            params![folder.mailbox_id, folder.name],
            |r| r.get(0),
        )
        .optional()?;
    if child.is_some() {
        return Err(StoreError::Conflict(format!(
            "{} has subfolders",
            folder.name
        )));
    }
    let uids: Vec<u32> = {
        let mut st = c.prepare_cached("SELECT uid FROM messages WHERE folder_id = ?1")?;
        st.query_map([folder_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    remove_messages(c, &folder, &uids)?;
    c.prepare_cached("DELETE FROM folders WHERE id = ?1")?
        .execute([folder_id])?;
    touch_parent(c, &folder.mailbox_id, &folder.name)?;
    let seq = record_change(
        c,
        &folder.mailbox_id,
        folder_id,
        ChangeKind::FolderDeleted,
        0,
        folder.highest_modseq + 1,
        &folder.item_id,
    )?;
    Ok(((), vec![(folder.mailbox_id, seq)]))
}

/// Resolves a target folder to (folder id, mailbox id).
fn resolve_target(c: &Connection, target: &FolderRef) -> Result<Option<(i64, String)>> {
    Ok(match target {
        FolderRef::Id(id) => c
            .query_row_cached(
                "SELECT id, mailbox_id FROM folders WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
        FolderRef::Kind(mailbox, kind) => c
            .query_row_cached(
                "SELECT id, mailbox_id FROM folders WHERE mailbox_id = ?1 AND kind = ?2",
                params![mailbox, kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
    })
}

pub(super) fn deliver(
    c: &Connection,
    body: &[u8],
    internal_date: i64,
    targets: &[Target],
) -> Result<(Vec<std::result::Result<Stored, Refused>>, Touched)> {
    let size = body.len() as i64;
    // Body ids are never reused (`body_ids`): readers key derived data on them
    // (`body_cache`) and may still hold the id of a body expunged meanwhile.
    let body_id: i64 = c.query_row_cached(
        "UPDATE body_ids SET next = next + 1 RETURNING next - 1",
        [],
        |r| r.get(0),
    )?;
    c.prepare_cached("INSERT INTO bodies (id, size, data) VALUES (?1, ?2, ?3)")?
        .execute(params![body_id, size, body])?;
    let mut results = Vec::with_capacity(targets.len());
    let mut touched = Touched::new();
    for target in targets {
        let Some((folder_id, mailbox)) = resolve_target(c, &target.folder)? else {
            results.push(Err(Refused::NoSuchFolder));
            continue;
        };
        let room: bool = c
            .prepare_cached("SELECT used_bytes + ?2 <= quota_bytes FROM mailboxes WHERE id = ?1")?
            .query_row(params![mailbox, size], |r| r.get(0))?;
        if !room {
            results.push(Err(Refused::OverQuota));
            continue;
        }
        let (uidvalidity, uid, modseq): (u32, u32, i64) = c.prepare_cached("UPDATE folders SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1, change_counter = change_counter + 1 WHERE id = ?1
             RETURNING uidvalidity, uidnext - 1, highest_modseq")?.query_row(
            [folder_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let item_id = new_item_id();
        c.prepare_cached("INSERT INTO messages (folder_id, uid, modseq, flags, internal_date, size, body_id, item_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?.execute(
            params![folder_id, uid, modseq, flags_to_text(&target.flags), internal_date, size, body_id, item_id],
        )?;
        insert_properties(c, &item_id, &target.properties)?;
        c.prepare_cached("UPDATE mailboxes SET used_bytes = used_bytes + ?2 WHERE id = ?1")?
            .execute(params![mailbox, size])?;
        let seq = record_change(
            c,
            &mailbox,
            folder_id,
            ChangeKind::Created,
            uid,
            modseq as u64,
            &item_id,
        )?;
        touched.push((mailbox, seq));
        results.push(Ok(Stored {
            folder_id,
            uidvalidity,
            uid,
            modseq: modseq as u64,
            item_id,
        }));
    }
    if results.iter().all(|r| r.is_err()) {
        c.prepare_cached("DELETE FROM bodies WHERE id = ?1")?
            .execute([body_id])?;
    }
    Ok((results, touched))
}

/// Delivers each message to one folder inside a nested savepoint, undone whole
/// when any message is refused (MULTIAPPEND is all or nothing).
pub(super) fn append_all(
    c: &Connection,
    folder_id: i64,
    messages: &[NewMessage],
) -> Result<(std::result::Result<Vec<Stored>, Refused>, Touched)> {
    c.execute_batch("SAVEPOINT append_all")?;
    let mut stored = Vec::with_capacity(messages.len());
    let mut touched = Touched::new();
    for m in messages {
        let target = Target {
            folder: FolderRef::Id(folder_id),
            flags: m.flags.clone(),
            properties: Vec::new(),
        };
        // A store error returns through `?`: the enclosing savepoint of the write
        // rolls back, this one with it.
        let (mut results, t) = deliver(c, &m.body, m.internal_date, &[target])?;
        match results.pop() {
            Some(Ok(s)) => {
                insert_properties(c, &s.item_id, &m.properties)?;
                stored.push(s);
                touched.extend(t);
            }
            refused => {
                c.execute_batch("ROLLBACK TO append_all; RELEASE append_all")?;
                let why = match refused {
                    Some(Err(r)) => r,
                    _ => Refused::NoSuchFolder,
                };
                return Ok((Err(why), Touched::new()));
            }
        }
    }
    c.execute_batch("RELEASE append_all")?;
    Ok((Ok(stored), touched))
}

/// A message's metadata from the columns `uid, modseq, flags, internal_date, size,
/// body_id, item_id`, the first at index `at`.
fn meta_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MessageMeta> {
    let flags: String = r.get(at + 2)?;
    Ok(MessageMeta {
        uid: r.get(at)?,
        modseq: r.get::<_, i64>(at + 1)? as u64,
        flags: flags_from_text(&flags),
        internal_date: r.get(at + 3)?,
        size: r.get::<_, i64>(at + 4)? as u64,
        body_id: r.get(at + 5)?,
        item_id: r.get(at + 6)?,
    })
}

pub(super) fn messages(
    c: &Connection,
    folder_id: i64,
    first: u32,
    last: u32,
) -> Result<Vec<MessageMeta>> {
    let mut st = c.prepare_cached(
        "SELECT uid, modseq, flags, internal_date, size, body_id, item_id FROM messages
         WHERE folder_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
    )?;
    let rows = st.query_map(params![folder_id, first, last], |r| meta_from_row(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The oldest messages of a folder dated before a time, by UID: read from index
/// `messages_dated` (folder, internal date), never the whole folder.
pub(super) const UIDS_DATED_BEFORE: &str = "SELECT uid FROM (SELECT uid FROM messages
     WHERE folder_id = ?1 AND internal_date < ?2 ORDER BY internal_date LIMIT ?3)
 ORDER BY uid";

pub(super) fn uids_dated_before(
    c: &Connection,
    folder_id: i64,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<u32>> {
    let mut st = c.prepare_cached(UIDS_DATED_BEFORE)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st.query_map(params![folder_id, before_ms, limit], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<u32>>>()?)
}

/// A page of a folder newest first, from index `messages_dated`.
pub(super) fn messages_newest_first(
    c: &Connection,
    folder_id: i64,
    offset: usize,
    limit: usize,
) -> Result<Vec<MessageMeta>> {
    let mut st = c.prepare_cached(
        "SELECT uid, modseq, flags, internal_date, size, body_id, item_id FROM messages
         WHERE folder_id = ?1 ORDER BY internal_date DESC, uid DESC LIMIT ?2 OFFSET ?3",
    )?;
    let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    let rows = st.query_map(params![folder_id, n(limit), n(offset)], |r| {
        meta_from_row(r, 0)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Bodies in the order asked, read in one transaction so that the batch is one
/// snapshot.
pub(super) fn bodies(c: &Connection, body_ids: &[i64]) -> Result<Vec<Option<Vec<u8>>>> {
    let tx = c.unchecked_transaction()?;
    let mut st = tx.prepare_cached("SELECT data FROM bodies WHERE id = ?1")?;
    let mut out = Vec::with_capacity(body_ids.len());
    for id in body_ids {
        out.push(st.query_row([id], |r| r.get(0)).optional()?);
    }
    Ok(out)
}

pub(super) fn store_flags(
    c: &Connection,
    folder_id: i64,
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> Result<(FlagOutcome, Touched)> {
    let folder = folder_by_id(c, folder_id)?;
    let mut outcome = FlagOutcome::default();
    let mut new_modseq: Option<i64> = None;
    let mut last_seq = None;
    for &uid in uids {
        let row: Option<(i64, String, String)> = c
            .query_row_cached(
                "SELECT modseq, flags, item_id FROM messages WHERE folder_id = ?1 AND uid = ?2",
                params![folder_id, uid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((modseq, current, item_id)) = row else {
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
            None => {
                let m: i64 = c.prepare_cached("UPDATE folders SET highest_modseq = highest_modseq + 1, change_counter = change_counter + 1 WHERE id = ?1 RETURNING highest_modseq")?.query_row(
                    [folder_id],
                    |r| r.get(0),
                )?;
                new_modseq = Some(m);
                m
            }
        };
        c.prepare_cached(
            "UPDATE messages SET flags = ?3, modseq = ?4 WHERE folder_id = ?1 AND uid = ?2",
        )?
        .execute(params![folder_id, uid, next.join(" "), m])?;
        last_seq = Some(record_change(
            c,
            &folder.mailbox_id,
            folder_id,
            kind,
            uid,
            m as u64,
            &item_id,
        )?);
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

fn insert_properties(c: &Connection, item_id: &str, properties: &[Property]) -> Result<()> {
    if properties.is_empty() {
        return Ok(());
    }
    let mut st = c.prepare_cached(
        "INSERT INTO item_props (item_id, name, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (item_id, name) DO UPDATE SET value = excluded.value",
    )?;
    for (name, value) in properties {
        st.execute(params![item_id, name, value])?;
    }
    Ok(())
}

fn item_properties(c: &Connection, item_id: &str) -> Result<Vec<Property>> {
    let mut st =
        c.prepare_cached("SELECT name, value FROM item_props WHERE item_id = ?1 ORDER BY name")?;
    let rows = st.query_map([item_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn properties(
    c: &Connection,
    item_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<Property>>> {
    let mut out = std::collections::HashMap::new();
    for id in item_ids {
        let props = item_properties(c, id)?;
        if !props.is_empty() {
            out.insert(id.clone(), props);
        }
    }
    Ok(out)
}

/// One message's flags and properties changed under one new MODSEQ, recorded in
/// the feed as a flag change (what EWS sync and IMAP CONDSTORE both read as
/// "this item changed").
pub(super) fn change_item(
    c: &Connection,
    folder_id: i64,
    uid: u32,
    change: &ItemChange,
    unchanged_since: Option<u64>,
) -> Result<(FlagOutcome, Touched)> {
    let folder = folder_by_id(c, folder_id)?;
    let (modseq, current, item_id): (i64, String, String) = c
        .query_row_cached(
            "SELECT modseq, flags, item_id FROM messages WHERE folder_id = ?1 AND uid = ?2",
            params![folder_id, uid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or(StoreError::NotFound("message"))?;
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
    let before = item_properties(c, &item_id)?;
    let after = merge_properties(&before, change);
    if flags == current && after == before {
        return Ok((outcome, vec![]));
    }
    c.prepare_cached("DELETE FROM item_props WHERE item_id = ?1")?
        .execute([&item_id])?;
    insert_properties(c, &item_id, &after)?;
    let m: i64 = c.prepare_cached("UPDATE folders SET highest_modseq = highest_modseq + 1, change_counter = change_counter + 1 WHERE id = ?1 RETURNING highest_modseq")?.query_row(
        [folder_id],
        |r| r.get(0),
    )?;
    c.prepare_cached(
        "UPDATE messages SET flags = ?3, modseq = ?4 WHERE folder_id = ?1 AND uid = ?2",
    )?
    .execute(params![folder_id, uid, flags.join(" "), m])?;
    let seq = record_change(
        c,
        &folder.mailbox_id,
        folder_id,
        if after == before {
            flag_change_kind(&current, &flags)
        } else {
            ChangeKind::Flags
        },
        uid,
        m as u64,
        &item_id,
    )?;
    outcome.updated.push(FlagUpdate {
        uid,
        modseq: m as u64,
        flags,
    });
    Ok((outcome, vec![(folder.mailbox_id, seq)]))
}

/// A message taken out of a folder: its UID, the MODSEQ of the removal, its item id.
type Removed = (u32, u64, String);

/// Deletes message rows, their now-unreferenced bodies and their quota use.
fn remove_messages(c: &Connection, folder: &Folder, uids: &[u32]) -> Result<Vec<Removed>> {
    let mut removed = Vec::new();
    let mut modseq = None;
    for &uid in uids {
        let row: Option<(i64, i64, String)> = c
            .query_row_cached(
                "DELETE FROM messages WHERE folder_id = ?1 AND uid = ?2 RETURNING size, body_id, item_id",
                params![folder.id, uid],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((size, body_id, item_id)) = row else {
            continue;
        };
        c.prepare_cached("DELETE FROM item_props WHERE item_id = ?1")?
            .execute([&item_id])?;
        c.prepare_cached("DELETE FROM bodies WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = ?1)")?.execute(
            [body_id],
        )?;
        c.prepare_cached("UPDATE mailboxes SET used_bytes = used_bytes - ?2 WHERE id = ?1")?
            .execute(params![folder.mailbox_id, size])?;
        let m = match modseq {
            Some(m) => m,
            None => {
                let m: i64 = c.prepare_cached("UPDATE folders SET highest_modseq = highest_modseq + 1, change_counter = change_counter + 1 WHERE id = ?1 RETURNING highest_modseq")?.query_row(
                    [folder.id],
                    |r| r.get(0),
                )?;
                modseq = Some(m);
                m
            }
        };
        removed.push((uid, m as u64, item_id));
    }
    Ok(removed)
}

/// Replaces message `uid` of a folder by `message` in one step: the old one is
/// expunged and the new one stored under a new UID (IMAP messages never change)
/// but with the old item id (EWS items keep their id when edited).
pub(super) fn replace_message(
    c: &Connection,
    folder_id: i64,
    uid: u32,
    message: &NewMessage,
) -> Result<(std::result::Result<Stored, Refused>, Touched)> {
    let old_item: String = c
        .query_row_cached(
            "SELECT item_id FROM messages WHERE folder_id = ?1 AND uid = ?2",
            params![folder_id, uid],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(StoreError::NotFound("message"))?;
    c.execute_batch("SAVEPOINT replace_message")?;
    let (_, mut touched) = expunge(c, folder_id, &[uid])?;
    let target = Target {
        folder: FolderRef::Id(folder_id),
        flags: message.flags.clone(),
        properties: Vec::new(),
    };
    let (mut results, t) = deliver(c, &message.body, message.internal_date, &[target])?;
    let mut stored = match results.pop() {
        Some(Ok(s)) => s,
        refused => {
            c.execute_batch("ROLLBACK TO replace_message; RELEASE replace_message")?;
            return Ok((
                Err(match refused {
                    Some(Err(r)) => r,
                    _ => Refused::NoSuchFolder,
                }),
                Touched::new(),
            ));
        }
    };
    c.prepare_cached("UPDATE messages SET item_id = ?1 WHERE item_id = ?2")?
        .execute(params![old_item, stored.item_id])?;
    // The new message's Created row in the feed (the last change deliver made).
    if let Some((_, seq)) = t.last() {
        c.prepare_cached("UPDATE changes SET item_id = ?1 WHERE seq = ?2")?
            .execute(params![old_item, seq])?;
    }
    insert_properties(c, &old_item, &message.properties)?;
    stored.item_id = old_item;
    touched.extend(t);
    c.execute_batch("RELEASE replace_message")?;
    Ok((Ok(stored), touched))
}

pub(super) fn expunge(c: &Connection, folder_id: i64, uids: &[u32]) -> Result<(Vec<u32>, Touched)> {
    let folder = folder_by_id(c, folder_id)?;
    let removed = remove_messages(c, &folder, uids)?;
    let mut last_seq = None;
    for (uid, modseq, item_id) in &removed {
        last_seq = Some(record_change(
            c,
            &folder.mailbox_id,
            folder_id,
            ChangeKind::Expunged,
            *uid,
            *modseq,
            item_id,
        )?);
    }
    let touched = last_seq
        .map(|s| vec![(folder.mailbox_id.clone(), s)])
        .unwrap_or_default();
    Ok((removed.into_iter().map(|(u, _, _)| u).collect(), touched))
}

/// Creates the missing ancestors of `name` (RFC 9051 6.3.6: a RENAME creates the
/// superior names it needs); returns the change sequence numbers it recorded.
fn create_parents(c: &Connection, mailbox: &str, name: &str) -> Result<Option<i64>> {
    let mut last_seq = None;
    let mut end = 0;
    while let Some(pos) = name[end..].find('/') {
        let parent = &name[..end + pos];
        end += pos + 1;
        let exists: Option<i64> = c
            .prepare_cached("SELECT id FROM folders WHERE mailbox_id = ?1 AND name = ?2")?
            .query_row(params![mailbox, parent], |r| r.get(0))
            .optional()?;
        if exists.is_none() {
            let (id, item_id) = insert_folder(c, mailbox, parent, None, "IPF.Note")?;
            last_seq = Some(record_change(
                c,
                mailbox,
                id,
                ChangeKind::FolderCreated,
                0,
                1,
                &item_id,
            )?);
        }
    }
    Ok(last_seq)
}

pub(super) fn rename_folder(
    c: &Connection,
    folder_id: i64,
    new_name: &str,
) -> Result<((), Touched)> {
    if !valid_folder_name(new_name) || new_name.eq_ignore_ascii_case("inbox") {
        return Err(StoreError::Conflict(format!(
            "invalid folder name {new_name:?}"
        )));
    }
    let folder = folder_by_id(c, folder_id)?;
    let mailbox = folder.mailbox_id.clone();
    let old = folder.name.clone();
    let taken = |name: &str| -> Result<bool> {
        Ok(
            c.prepare_cached("SELECT 1 FROM folders WHERE mailbox_id = ?1 AND name = ?2")?
                .query_row(params![mailbox, name], |r| r.get::<_, i64>(0))
                .optional()?
                .is_some(),
        )
    };
    if folder.kind == Some(FolderKind::Inbox) {
        // RFC 9051 6.3.6: renaming INBOX moves its messages to a new folder and
        // leaves INBOX in place, empty; INBOX's subfolders stay where they are.
        if taken(new_name)? {
            return Err(StoreError::Conflict(format!(
                "folder {new_name:?} already exists"
            )));
        }
        create_parents(c, &mailbox, new_name)?;
        let (id, item_id) = insert_folder(c, &mailbox, new_name, None, "IPF.Note")?;
        let last_seq = Some(record_change(
            c,
            &mailbox,
            id,
            ChangeKind::FolderCreated,
            0,
            1,
            &item_id,
        )?);
        let uids: Vec<u32> = {
            let mut st =
                c.prepare_cached("SELECT uid FROM messages WHERE folder_id = ?1 ORDER BY uid")?;
            st.query_map([folder_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let (outcome, touched) = copy_messages(c, folder_id, &uids, id, true)?;
        if outcome.is_err() {
            return Err(StoreError::Io("moving the INBOX messages failed".into()));
        }
        let seq = touched.iter().map(|t| t.1).chain(last_seq).max();
        return Ok(((), seq.map(|s| vec![(mailbox, s)]).unwrap_or_default()));
    }
    if new_name == old || new_name.starts_with(&format!("{old}/")) {
        return Err(StoreError::Conflict(format!(
            "cannot rename {old:?} to {new_name:?}"
        )));
    }
    // The folder and everything below it, with the names they will get.
    let subtree: Vec<(i64, String, i64, String)> = {
        let mut st = c.prepare_cached(
            "SELECT id, name, highest_modseq, item_id FROM folders WHERE mailbox_id = ?1
             AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/') ORDER BY name",
        )?;
        st.query_map(params![mailbox, old], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    for (_, name, _, _) in &subtree {
        let renamed = format!("{new_name}{}", &name[old.len()..]);
        if taken(&renamed)? {
            return Err(StoreError::Conflict(format!(
                "folder {renamed:?} already exists"
            )));
        }
    }
    let mut last_seq = create_parents(c, &mailbox, new_name)?;
    touch_parent(c, &mailbox, &old)?;
    for (id, name, modseq, item_id) in &subtree {
        let renamed = format!("{new_name}{}", &name[old.len()..]);
        c.prepare_cached(
            "UPDATE folders SET name = ?2, change_counter = change_counter + 1 WHERE id = ?1",
        )?
        .execute(params![id, renamed])?;
        last_seq = Some(record_change(
            c,
            &mailbox,
            *id,
            ChangeKind::FolderRenamed,
            0,
            *modseq as u64,
            item_id,
        )?);
    }
    touch_parent(c, &mailbox, new_name)?;
    Ok(((), last_seq.map(|s| vec![(mailbox, s)]).unwrap_or_default()))
}

pub(super) fn set_subscribed(
    c: &Connection,
    folder_id: i64,
    subscribed: bool,
) -> Result<((), Touched)> {
    let n = c
        .prepare_cached(
            "UPDATE folders SET subscribed = ?2, change_counter = change_counter + 1 WHERE id = ?1",
        )?
        .execute(params![folder_id, subscribed])?;
    if n == 0 {
        return Err(StoreError::NotFound("folder"));
    }
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

pub(super) fn copy_messages(
    c: &Connection,
    from_folder: i64,
    uids: &[u32],
    to_folder: i64,
    remove_source: bool,
) -> Result<(std::result::Result<CopyOutcome, Refused>, Touched)> {
    let (from, to) = match (folder_by_id(c, from_folder), folder_by_id(c, to_folder)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(StoreError::NotFound(_)), _) | (_, Err(StoreError::NotFound(_))) => {
            return Ok((Err(Refused::NoSuchFolder), vec![]));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut wanted = uids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut sources = Vec::with_capacity(wanted.len());
    {
        let mut st = c.prepare_cached(
            "SELECT flags, internal_date, size, body_id, item_id FROM messages WHERE folder_id = ?1 AND uid = ?2",
        )?;
        for uid in wanted {
            let row = st
                .query_row(params![from_folder, uid], |r| {
                    Ok(CopySource {
                        uid,
                        flags: r.get(0)?,
                        internal_date: r.get(1)?,
                        size: r.get(2)?,
                        body_id: r.get(3)?,
                        item_id: r.get(4)?,
                    })
                })
                .optional()?;
            sources.extend(row);
        }
    }
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
    if !same_mailbox_move {
        let room: bool = c
            .prepare_cached("SELECT used_bytes + ?2 <= quota_bytes FROM mailboxes WHERE id = ?1")?
            .query_row(params![to.mailbox_id, total], |r| r.get(0))?;
        if !room {
            return Ok((Err(Refused::OverQuota), vec![]));
        }
    }
    let n = sources.len() as i64;
    // One new MODSEQ for the whole copy, as store_flags does for one command.
    let (uidvalidity, first_uid, modseq): (u32, i64, i64) = c
        .prepare_cached(
            "UPDATE folders SET uidnext = uidnext + ?2, highest_modseq = highest_modseq + 1,
             change_counter = change_counter + 1 WHERE id = ?1 RETURNING uidvalidity, uidnext - ?2, highest_modseq",
        )?
        .query_row(params![to_folder, n], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if first_uid + n - 1 > u32::MAX as i64 {
        return Err(StoreError::Conflict(
            "the target folder ran out of UIDs".into(),
        ));
    }
    let mut pairs = Vec::with_capacity(sources.len());
    let mut touched = Touched::new();
    let mut last_seq = 0;
    for (i, src) in sources.iter().enumerate() {
        let uid = (first_uid + i as i64) as u32;
        let item_id = new_item_id();
        c.prepare_cached(
            "INSERT INTO messages (folder_id, uid, modseq, flags, internal_date, size, body_id, item_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            to_folder,
            uid,
            modseq,
            src.flags,
            src.internal_date,
            src.size,
            src.body_id,
            item_id
        ])?;
        c.prepare_cached(
            "INSERT INTO item_props (item_id, name, value) SELECT ?1, name, value FROM item_props WHERE item_id = ?2",
        )?
        .execute(params![item_id, src.item_id])?;
        last_seq = record_change(
            c,
            &to.mailbox_id,
            to_folder,
            ChangeKind::Created,
            uid,
            modseq as u64,
            &item_id,
        )?;
        pairs.push((src.uid, uid));
    }
    c.prepare_cached("UPDATE mailboxes SET used_bytes = used_bytes + ?2 WHERE id = ?1")?
        .execute(params![to.mailbox_id, total])?;
    touched.push((to.mailbox_id.clone(), last_seq));
    if remove_source {
        let src_uids: Vec<u32> = sources.iter().map(|s| s.uid).collect();
        // The copies reference the bodies now, so none is freed here.
        let removed = remove_messages(c, &from, &src_uids)?;
        for (uid, m, item_id) in &removed {
            last_seq = record_change(
                c,
                &from.mailbox_id,
                from_folder,
                ChangeKind::Expunged,
                *uid,
                *m,
                item_id,
            )?;
        }
        touched.push((from.mailbox_id.clone(), last_seq));
    }
    Ok((Ok(CopyOutcome { uidvalidity, pairs }), touched))
}

pub(super) fn body_cache(
    c: &Connection,
    body_id: i64,
    consumer: CacheConsumer,
) -> Result<Option<Vec<u8>>> {
    Ok(
        c.prepare_cached("SELECT data FROM body_cache WHERE body_id = ?1 AND consumer = ?2")?
            .query_row(params![body_id, consumer.as_str()], |r| r.get(0))
            .optional()?,
    )
}

/// A body deleted meanwhile (its last message expunged) is silently not cached.
pub(super) fn put_body_cache(
    c: &Connection,
    body_id: i64,
    consumer: CacheConsumer,
    data: &[u8],
) -> Result<((), Touched)> {
    c.prepare_cached(
        "INSERT INTO body_cache (body_id, consumer, data) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM bodies WHERE id = ?1)
         ON CONFLICT (body_id, consumer) DO UPDATE SET data = excluded.data",
    )?
    .execute(params![body_id, consumer.as_str(), data])?;
    Ok(((), vec![]))
}

/// Messages by item id, in one snapshot; each folder read once.
pub(super) fn messages_by_item_ids(
    c: &Connection,
    item_ids: &[String],
) -> Result<Vec<Option<(Folder, MessageMeta)>>> {
    let tx = c.unchecked_transaction()?;
    let mut st = tx.prepare_cached(
        "SELECT folder_id, uid, modseq, flags, internal_date, size, body_id, item_id
         FROM messages WHERE item_id = ?1",
    )?;
    let mut folders: std::collections::HashMap<i64, Folder> = Default::default();
    let mut out = Vec::with_capacity(item_ids.len());
    for id in item_ids {
        let Some((folder_id, meta)) = st
            .query_row([id], |r| Ok((r.get::<_, i64>(0)?, meta_from_row(r, 1)?)))
            .optional()?
        else {
            out.push(None);
            continue;
        };
        let folder = match folders.get(&folder_id) {
            Some(f) => f.clone(),
            None => {
                let f = folder_by_id(&tx, folder_id)?;
                folders.insert(folder_id, f.clone());
                f
            }
        };
        out.push(Some((folder, meta)));
    }
    Ok(out)
}

pub(super) fn folder_by_item_id(c: &Connection, item_id: &str) -> Result<Folder> {
    c.query_row_cached(
        &format!("SELECT {FOLDER_COLUMNS} FROM folders f WHERE f.item_id = ?1"),
        [item_id],
        folder_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("folder"))
}

pub(super) fn latest_change(c: &Connection, mailbox: &str) -> Result<i64> {
    // Pruning keeps a mailbox's latest changes, so its highest seq stays; the
    // pruned seq is a floor all the same.
    Ok(c.prepare_cached(
        "SELECT max(COALESCE((SELECT MAX(seq) FROM changes WHERE mailbox_id = ?1), 0),
                    COALESCE((SELECT pruned_seq FROM mailboxes WHERE id = ?1), 0))",
    )?
    .query_row([mailbox], |r| r.get(0))?)
}

/// [`StoreError::FeedPruned`] when the feed of `mailbox` was pruned past
/// `after_seq`. Asked after the feed was read: a prune committed before that
/// read is seen here, one committed after it did not touch what was read.
fn check_feed_reaches(c: &Connection, mailbox: &str, after_seq: i64) -> Result<()> {
    let pruned: Option<i64> = c
        .prepare_cached("SELECT pruned_seq FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?;
    match pruned {
        Some(p) if after_seq < p => Err(StoreError::FeedPruned),
        _ => Ok(()),
    }
}

pub(super) fn expunged_since(
    c: &Connection,
    mailbox: &str,
    folder_id: i64,
    modseq: u64,
) -> Result<Vec<u32>> {
    let mut st = c.prepare_cached(
        "SELECT DISTINCT uid FROM changes
         WHERE mailbox_id = ?1 AND folder_id = ?2 AND kind = ?3 AND modseq > ?4 ORDER BY uid",
    )?;
    let rows = st.query_map(
        params![
            mailbox,
            folder_id,
            ChangeKind::Expunged.as_str(),
            modseq as i64
        ],
        |r| r.get(0),
    )?;
    let uids = rows.collect::<std::result::Result<Vec<u32>, _>>()?;
    // As in check_feed_reaches: the horizon is read after the records.
    let pruned: Option<i64> = c
        .prepare_cached("SELECT pruned_modseq FROM folders WHERE id = ?1")?
        .query_row([folder_id], |r| r.get(0))
        .optional()?;
    match pruned {
        Some(p) if (modseq as i64) < p => Err(StoreError::FeedPruned),
        _ => Ok(uids),
    }
}

pub(super) fn changes_since(
    c: &Connection,
    mailbox: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Change>> {
    let mut st = c.prepare_cached(
        "SELECT seq, folder_id, kind, uid, modseq, item_id FROM changes WHERE mailbox_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = st.query_map(params![mailbox, after_seq, limit as i64], |r| {
        let kind: String = r.get(2)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            kind,
            r.get(3)?,
            r.get::<_, i64>(4)?,
            r.get(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, folder_id, kind, uid, modseq, item_id) = row?;
        let kind = ChangeKind::parse(&kind).ok_or_else(|| {
            StoreError::Io(format!("unknown change kind {kind:?} in the change feed"))
        })?;
        out.push(Change {
            seq,
            folder_id,
            kind,
            uid,
            modseq: modseq as u64,
            item_id,
        });
    }
    check_feed_reaches(c, mailbox, after_seq)?;
    Ok(out)
}

pub(super) fn quota(c: &Connection, mailbox: &str) -> Result<Quota> {
    c.prepare_cached("SELECT used_bytes, quota_bytes FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| {
            Ok(Quota {
                used: r.get::<_, i64>(0)? as u64,
                limit: r.get::<_, i64>(1)? as u64,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound("mailbox"))
}

pub(super) fn set_quota(c: &Connection, mailbox: &str, limit: u64) -> Result<((), Touched)> {
    let n = c
        .prepare_cached("UPDATE mailboxes SET quota_bytes = ?2 WHERE id = ?1")?
        .execute(params![mailbox, limit as i64])?;
    if n == 0 {
        return Err(StoreError::NotFound("mailbox"));
    }
    Ok(((), vec![]))
}

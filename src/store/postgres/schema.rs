//! Preparing a database for the store: the settings check (`synchronous_commit`)
//! and versioned migrations, run once under an advisory lock so that daemons
//! starting together never migrate twice.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::{Result, StoreError};

/// Migrations in order; migration `i` brings the schema from version `i` to
/// `i + 1` (table `schema_version`). Append, never edit a released one.
///
/// Ids of folders, bodies and messages come from identity columns: they only
/// name rows, nobody orders by them. Every counter a client orders by (UIDs,
/// MODSEQ, UIDVALIDITY, the change feed's `seq`) is a column of a locked row,
/// taken inside the writing transaction, so it is handed out in commit order.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY,
    quota_bytes BIGINT NOT NULL,
    used_bytes BIGINT NOT NULL DEFAULT 0,
    next_uidvalidity BIGINT NOT NULL,
    change_seq BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);
CREATE TABLE folders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id),
    name TEXT NOT NULL,
    kind TEXT,
    folder_class TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uidnext BIGINT NOT NULL,
    highest_modseq BIGINT NOT NULL,
    subscribed BOOLEAN NOT NULL,
    item_id TEXT NOT NULL UNIQUE,
    change_counter BIGINT NOT NULL DEFAULT 0,
    message_count BIGINT NOT NULL DEFAULT 0,
    unseen_count BIGINT NOT NULL DEFAULT 0,
    UNIQUE (mailbox_id, name)
);
CREATE TABLE bodies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL
);
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    folder_id BIGINT NOT NULL REFERENCES folders(id),
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    flags TEXT NOT NULL,
    internal_date BIGINT NOT NULL,
    size BIGINT NOT NULL,
    body_id BIGINT NOT NULL REFERENCES bodies(id),
    item_id TEXT NOT NULL UNIQUE,
    UNIQUE (folder_id, uid)
);
CREATE INDEX messages_body ON messages (body_id);
CREATE INDEX messages_dated ON messages (folder_id, internal_date);
CREATE TABLE changes (
    mailbox_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    folder_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, seq)
);
CREATE TABLE body_cache (
    body_id BIGINT NOT NULL REFERENCES bodies(id) ON DELETE CASCADE,
    consumer TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (body_id, consumer)
);
CREATE TABLE item_props (
    item_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (item_id, name)
);
-- Each folder's message and unseen counts, kept by a trigger so reading a
-- folder never counts its messages (as SQLite's schema 11 does).
CREATE FUNCTION unseen(flags TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN position(' \seen ' IN lower(' ' || flags || ' ')) > 0 THEN 0 ELSE 1 END $$;
CREATE FUNCTION messages_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE folders SET message_count = message_count - 1,
            unseen_count = unseen_count - unseen(OLD.flags) WHERE id = OLD.folder_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE folders SET message_count = message_count + 1,
            unseen_count = unseen_count + unseen(NEW.flags) WHERE id = NEW.folder_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_counted AFTER INSERT OR DELETE OR UPDATE OF flags, folder_id
    ON messages FOR EACH ROW EXECUTE FUNCTION messages_count();
"#,
    r#"
-- The event outbox, the outbound queue with leases, and tags (postgres/outbox.rs,
-- queue.rs, tags.rs).
-- The database's clock in epoch milliseconds: every daemon judges leases by it,
-- so their own clocks may disagree.
CREATE FUNCTION mg_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS
    $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;
-- One row: the outbox's last sequence number, taken under its row lock at the
-- end of the writing transaction (commit order, never reused; not a SEQUENCE).
CREATE TABLE outbox_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    seq BIGINT NOT NULL
);
INSERT INTO outbox_counter (seq) VALUES (0);
-- Each row belongs to the daemon that wrote it (`node`): every daemon drains
-- its own events into its own sinks, and its sinks' marks are its own.
CREATE TABLE outbox (
    seq BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    org TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX outbox_by_node ON outbox (node, seq);
CREATE TABLE outbox_marks (
    node TEXT NOT NULL,
    sink TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (node, sink)
);
CREATE TABLE queue_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender TEXT NOT NULL,
    on_behalf_of TEXT,
    from_header TEXT NOT NULL,
    message_id TEXT NOT NULL,
    owner_org TEXT NOT NULL,
    owner_mailbox TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    envelope_id TEXT,
    enqueued_ms BIGINT NOT NULL,
    body BYTEA NOT NULL
);
-- A recipient is leased (lease_owner, lease_until_ms on the database's clock)
-- by the store that took it in `due` until it is finished or deferred.
CREATE TABLE queue_recipients (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES queue_messages(id),
    recipient TEXT NOT NULL,
    notify_failure BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until_ms BIGINT
);
CREATE INDEX queue_due ON queue_recipients (next_attempt_ms);
CREATE INDEX queue_by_message ON queue_recipients (message_id);
CREATE TABLE tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);
"#,
    r#"
-- Values every daemon shares, each with an expiry (store::shared_state): the
-- login throttle's counters.
CREATE TABLE shared_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX shared_state_expiry ON shared_state (expires_ms);
"#,
    r#"
-- The directory and the access rules (issue 19): every daemon holds them in
-- memory. A write locks its kind's version row (FOR UPDATE), checks it is the
-- version its writer validated against, writes its rows stamped with the next
-- version and moves the row; readers catch up with the rows above the version
-- they hold. Deleted directory records stay as tombstones (json NULL) so a
-- reader sees the delete.
CREATE TABLE store_versions (
    kind TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO store_versions (kind, version) VALUES ('directory', 0), ('access', 0);
CREATE TABLE directory_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    json TEXT,
    version BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX directory_records_version ON directory_records (version);
CREATE TABLE access_documents (
    org_id TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX access_documents_version ON access_documents (version);
-- Secrets every daemon must share (token-signing keys, the generated admin
-- access key): the first daemon's INSERT wins, everyone reads the row.
CREATE TABLE shared_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- Version rows for state every daemon caches that has no catch-up read of its
-- own: tags (email monitoring is configured as tags) and the shared secrets
-- (rotations). A write moves its row; a daemon's 300 ms poll reads it.
INSERT INTO store_versions (kind, version) VALUES ('tags', 0), ('secrets', 0);
"#,
    r#"
-- Housekeeping (store::housekeeping). The change feed is pruned: when each
-- change was recorded (rows already there count from this upgrade: a constant
-- default, so no table rewrite; later rows take the database's clock), the
-- highest pruned seq of each mailbox and the highest pruned expunge MODSEQ of
-- each folder, which tell a reader its position is older than what is kept.
DO $$ BEGIN
    EXECUTE format('ALTER TABLE changes ADD COLUMN at_ms BIGINT NOT NULL DEFAULT %s', mg_now_ms());
END $$;
ALTER TABLE changes ALTER COLUMN at_ms SET DEFAULT mg_now_ms();
ALTER TABLE mailboxes ADD COLUMN pruned_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE folders ADD COLUMN pruned_modseq BIGINT NOT NULL DEFAULT 0;
-- Directory tombstones are pruned a day after the delete; the highest pruned
-- version is kept so a reader behind it reloads the whole directory.
ALTER TABLE directory_records ADD COLUMN deleted_ms BIGINT;
INSERT INTO store_versions (kind, version) VALUES ('directory_pruned', 0);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key under which migrations run ("mailgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d61_696c_6761_7465;

/// Checks the server's settings and brings the schema up to date; refuses a
/// schema newer than this build and a server that acknowledges commits before
/// they are durable.
pub async fn prepare(client: &mut Client, url_for_errors: &str) -> Result<()> {
    check_settings(client).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    let migrated = migrate(client, url_for_errors).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error);
    migrated?;
    unlocked.map(|_| ())
}

/// `synchronous_commit` must be on (or stronger): a 250 or an APPEND's OK is
/// only as durable as the commit before it.
async fn check_settings(client: &Client) -> Result<()> {
    let row = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(pg_error)?;
    let value: String = row.get(0);
    check_synchronous_commit(&value)
}

/// The pure part of [`check_settings`]: every setting but `off` waits for the
/// local WAL flush before a commit returns (`remote_*` wait for a standby too);
/// anything else is refused, naming the setting.
pub fn check_synchronous_commit(value: &str) -> Result<()> {
    match value {
        "on" | "local" | "remote_write" | "remote_apply" => Ok(()),
        other => Err(StoreError::Io(format!(
            "PostgreSQL setting synchronous_commit is {other:?}; mailgate needs it \"on\" \
             (acknowledged mail must be durable): ALTER SYSTEM SET synchronous_commit = on"
        ))),
    }
}

/// `check-config`'s look, changing nothing: the settings, and a schema no newer
/// than this build (an older or absent one is fine: the daemon migrates it).
pub async fn check(client: &Client, url_for_errors: &str) -> Result<()> {
    check_settings(client).await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    let found: Option<i64> = if exists {
        client
            .query_one("SELECT max(version) FROM schema_version", &[])
            .await
            .map_err(pg_error)?
            .get(0)
    } else {
        None
    };
    check_version(found.unwrap_or(0), url_for_errors)
}

/// Refuses a schema written by a newer mailgate. Pure.
fn check_version(found: i64, url_for_errors: &str) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: url_for_errors.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

async fn migrate(client: &mut Client, url_for_errors: &str) -> Result<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await
        .map_err(pg_error)?;
    let found: Option<i64> = client
        .query_opt("SELECT max(version) FROM schema_version", &[])
        .await
        .map_err(pg_error)?
        .and_then(|r| r.get(0));
    let found = found.unwrap_or(0);
    check_version(found, url_for_errors)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute("DELETE FROM schema_version", &[])
            .await
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_durable_synchronous_commit_settings_pass() {
        for ok in ["on", "local", "remote_write", "remote_apply"] {
            assert!(check_synchronous_commit(ok).is_ok(), "{ok}");
        }
        for bad in ["off", "", "ON "] {
            let e = check_synchronous_commit(bad).unwrap_err().to_string();
            assert!(e.contains("synchronous_commit"), "{e}");
        }
    }
}

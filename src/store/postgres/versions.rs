//! The version rows (`store_versions`, one per kind: `directory`, `access`,
//! `tags`, `secrets`) that fence the writes of data every daemon holds in memory. A write locks its
//! kind's row `FOR UPDATE` inside its transaction, so writes of one kind are
//! serialised and numbered in commit order; a reader's catch-up reads the row in
//! the same statement as the rows above the version it holds.
//!
//! One row per kind (not one for both) so that a directory write does not make
//! every daemon reload its access rules, and the other way round.

use super::ops::Sql;
use super::{Op, OpError};
use crate::store::StoreError;

/// The kind whose version a write moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Directory records.
    Directory,
    /// Access-rule documents.
    Access,
    /// Resource tags (email monitoring's settings are tags).
    Tags,
    /// The shared secrets (rotations).
    Secrets,
}

impl Kind {
    /// The row's key in `store_versions`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::Access => "access",
            Kind::Tags => "tags",
            Kind::Secrets => "secrets",
        }
    }
}

/// A stored version (a non-negative BIGINT) as the traits' `u64`.
pub(super) fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A trait version as a BIGINT parameter.
pub(super) fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The current version of `kind`, one indexed row read.
pub(super) async fn current(c: &dyn Sql, kind: Kind) -> Op<u64> {
    let st = c
        .prepared("SELECT version FROM store_versions WHERE kind = $1")
        .await?;
    let rows = c.rows(&st, &[&kind.as_str()]).await?;
    match rows.first() {
        Some(r) => Ok(from_db(r.get(0))),
        None => Err(missing(kind)),
    }
}

/// Locks `kind`'s row for the rest of the transaction and returns the next
/// version, or `None` when the stored one is not `expected` (some other writer
/// moved it). `expected = None` takes the next version whatever the current one.
pub(super) async fn lock_next(c: &dyn Sql, kind: Kind, expected: Option<u64>) -> Op<Option<u64>> {
    let st = c
        .prepared("SELECT version FROM store_versions WHERE kind = $1 FOR UPDATE")
        .await?;
    let rows = c.rows(&st, &[&kind.as_str()]).await?;
    let current = rows
        .first()
        .map(|r| from_db(r.get(0)))
        .ok_or_else(|| missing(kind))?;
    Ok(next_version(current, expected))
}

/// The pure decision of [`lock_next`].
pub(super) fn next_version(current: u64, expected: Option<u64>) -> Option<u64> {
    match expected {
        Some(e) if e != current => None,
        _ => Some(current + 1),
    }
}

/// Moves `kind`'s row one up (locking it for the rest of the transaction), for
/// writes that need no fence, only a number pollers can compare.
pub(super) async fn bump(c: &dyn Sql, kind: Kind) -> Op<u64> {
    let next = lock_next(c, kind, None)
        .await?
        .ok_or_else(|| missing(kind))?;
    set(c, kind, next).await?;
    Ok(next)
}

/// Moves `kind`'s (locked) row to `version`.
pub(super) async fn set(c: &dyn Sql, kind: Kind, version: u64) -> Op<()> {
    let st = c
        .prepared("UPDATE store_versions SET version = $2 WHERE kind = $1")
        .await?;
    c.affected(&st, &[&kind.as_str(), &to_db(version)]).await?;
    Ok(())
}

fn missing(kind: Kind) -> OpError {
    OpError::Store(StoreError::Io(format!(
        "postgres: no {} row in store_versions (schema damaged)",
        kind.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_write_goes_ahead_only_at_the_expected_version() {
        assert_eq!(next_version(4, Some(4)), Some(5));
        assert_eq!(next_version(5, Some(4)), None, "moved by another writer");
        assert_eq!(next_version(0, Some(1)), None);
        assert_eq!(next_version(7, None), Some(8), "unfenced writes always go");
    }

    #[test]
    fn versions_convert_without_wrapping() {
        assert_eq!(from_db(-1), 0);
        assert_eq!(from_db(9), 9);
        assert_eq!(to_db(u64::MAX), i64::MAX);
        assert_eq!(Kind::Directory.as_str(), "directory");
        assert_eq!(Kind::Access.as_str(), "access");
    }
}

//! The persistence interface the `store` module implements. The store keeps each
//! directory entity as an opaque JSON record keyed by (kind, id); the directory
//! owns the meaning of the JSON and all invariants.

use std::str::FromStr;

use super::error::DirectoryError;

/// Which table a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// An [`Organization`](super::model::Organization).
    Organization,
    /// A [`User`](super::model::User) (with the permissions on its mailbox).
    User,
    /// A [`Group`](super::model::Group) (with its members).
    Group,
    /// A [`Resource`](super::model::Resource) (with delegates and permissions).
    Resource,
    /// A [`PersonalAccessToken`](super::pat::PersonalAccessToken) (its hash, never the secret).
    PersonalAccessToken,
}

impl RecordKind {
    /// The stored spelling: "organization", "user", "group", "resource",
    /// "personal_access_token".
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Organization => "organization",
            RecordKind::User => "user",
            RecordKind::Group => "group",
            RecordKind::Resource => "resource",
            RecordKind::PersonalAccessToken => "personal_access_token",
        }
    }

    /// Parses the stored spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "organization" => Some(RecordKind::Organization),
            "user" => Some(RecordKind::User),
            "group" => Some(RecordKind::Group),
            "resource" => Some(RecordKind::Resource),
            "personal_access_token" => Some(RecordKind::PersonalAccessToken),
            _ => None,
        }
    }
}

/// A stored record kind that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record kind {0:?}")]
pub struct UnknownRecordKind(pub String);

impl FromStr for RecordKind {
    type Err = UnknownRecordKind;
    fn from_str(s: &str) -> Result<Self, UnknownRecordKind> {
        RecordKind::parse(s).ok_or_else(|| UnknownRecordKind(s.to_string()))
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One persisted directory entity: the store keeps it opaque (JSON) and keyed by (kind, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Table.
    pub kind: RecordKind,
    /// Entity id (unique within its kind).
    pub id: String,
    /// Owning organization (the organization's own id for organization records),
    /// so a store can list or drop one tenant's records.
    pub org_id: String,
    /// The entity as JSON.
    pub json: String,
}

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOp {
    /// Insert or replace the record with this (kind, id).
    Put(Record),
    /// Remove the record with this (kind, id) if present.
    Delete {
        /// Table.
        kind: RecordKind,
        /// Entity id.
        id: String,
    },
}

/// The outcome of a write fenced by the version its writer last loaded
/// ([`DirectoryBackend::apply_at`], `AccessBackend::save_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    /// Written; the stored data is now at this version.
    Applied(u64),
    /// Nothing written: another writer moved the version since the caller
    /// loaded. The caller reloads, validates again and retries.
    Moved,
}

/// What changed after a version ([`DirectoryBackend::records_since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordChanges {
    /// The version the reader is at once it has applied these changes.
    pub version: u64,
    /// Records written after the asked version (every stored record when `full`).
    pub records: Vec<Record>,
    /// Records deleted after the asked version (empty when `full`).
    pub deleted: Vec<(RecordKind, String)>,
    /// `records` is every stored record, not a delta: the reader replaces its state.
    pub full: bool,
}

/// Where the directory keeps its records. Implementations must be safe to call
/// from any thread; one directory calls the writing methods while holding its
/// write lock, so its own calls never overlap.
///
/// A backend several daemons share keeps a version: a counter every write moves,
/// which makes writes fenced ([`DirectoryBackend::apply_at`]) and readers able to
/// catch up ([`DirectoryBackend::records_since`]). A backend only one process
/// opens (SQLite) may report version 0 forever: nobody else can move it.
pub trait DirectoryBackend: Send + Sync {
    /// Every stored record, in any order. A failure is [`DirectoryError::Backend`].
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError>;
    /// Applies the ops atomically and durably before returning, whatever the
    /// version (an import, a backend with one writer); on `Err`
    /// ([`DirectoryError::Backend`]) nothing was applied.
    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError>;
    /// The version of the stored records, cheaply (the refresher asks it a few
    /// times a second).
    fn version(&self) -> Result<u64, DirectoryError>;
    /// What changed after version `since` (everything, `full`, when `since` is 0
    /// or the backend cannot tell), read in one snapshot with the version it
    /// brings the reader to.
    fn records_since(&self, since: u64) -> Result<RecordChanges, DirectoryError>;
    /// [`DirectoryBackend::apply`] only if the stored version is still
    /// `expected`, atomically with that check; [`Fenced::Moved`] otherwise.
    fn apply_at(&self, expected: u64, ops: Vec<RecordOp>) -> Result<Fenced, DirectoryError>;
}

/// Times a fenced write is validated and tried again after other writers moved
/// the version under it, before it gives up with a backend error.
pub const MAX_FENCED_ATTEMPTS: u32 = 16;

/// The pause before fenced attempt `attempt` (0-based): none before the first
/// retry, then random up to 2 ms doubling to 128 ms, so that a writer that keeps
/// losing to a busy one is not starved (the winner is usually between writes
/// when the loser comes back).
pub fn fenced_retry_pause(attempt: u32) -> std::time::Duration {
    if attempt < 2 {
        return std::time::Duration::ZERO;
    }
    let cap_ms = 1u64 << attempt.min(7);
    std::time::Duration::from_millis(rand::random_range(1..=cap_ms))
}

/// The ops of one batch with at most one op per (kind, id), the last one
/// winning: a backend can then write them in one set-based statement.
pub fn last_op_per_record(ops: Vec<RecordOp>) -> Vec<RecordOp> {
    let mut by_key = std::collections::BTreeMap::new();
    for op in ops {
        let key = match &op {
            RecordOp::Put(r) => (r.kind, r.id.clone()),
            RecordOp::Delete { kind, id } => (*kind, id.clone()),
        };
        by_key.insert(key, op);
    }
    by_key.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::{Record, RecordKind, RecordOp, last_op_per_record};

    #[test]
    fn retries_pause_with_jitter_within_bounds() {
        use super::fenced_retry_pause as pause;
        assert_eq!(
            pause(0),
            std::time::Duration::ZERO,
            "the first try goes at once"
        );
        assert_eq!(
            pause(1),
            std::time::Duration::ZERO,
            "so does the first retry"
        );
        for attempt in 2..40 {
            let p = pause(attempt);
            assert!(p >= std::time::Duration::from_millis(1), "{attempt}: {p:?}");
            assert!(
                p <= std::time::Duration::from_millis(128),
                "{attempt}: {p:?}"
            );
        }
    }

    #[test]
    fn one_op_per_record_and_the_last_wins() {
        let put = |id: &str, json: &str| {
            RecordOp::Put(Record {
                kind: RecordKind::User,
                id: id.into(),
                org_id: "m-x".into(),
                json: json.into(),
            })
        };
        let del = |id: &str| RecordOp::Delete {
            kind: RecordKind::User,
            id: id.into(),
        };
        let pat = RecordOp::Delete {
            kind: RecordKind::PersonalAccessToken,
            id: "a".into(),
        };
        let ops = vec![
            put("a", "1"),
            put("b", "1"),
            del("a"),
            pat.clone(),
            put("b", "2"),
        ];
        assert_eq!(
            last_op_per_record(ops),
            vec![del("a"), put("b", "2"), pat],
            "sorted by (kind, id), one each, the later op kept"
        );
        assert!(last_op_per_record(Vec::new()).is_empty());
    }

    #[test]
    fn kind_spellings_round_trip() {
        for k in [
            RecordKind::Organization,
            RecordKind::User,
            RecordKind::Group,
            RecordKind::Resource,
            RecordKind::PersonalAccessToken,
        ] {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
            assert_eq!(k.as_str().parse::<RecordKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(RecordKind::parse("User"), None);
        assert!("mailbox".parse::<RecordKind>().is_err());
    }
}

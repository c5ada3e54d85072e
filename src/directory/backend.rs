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

/// Where the directory keeps its records. Implementations must be safe to call
/// from any thread; the directory calls `apply` while holding its write lock,
/// so calls never overlap.
pub trait DirectoryBackend: Send + Sync {
    /// Every stored record, in any order. Called once, at open. A failure is
    /// [`DirectoryError::Backend`].
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError>;
    /// Applies the ops atomically and durably before returning; on `Err`
    /// ([`DirectoryError::Backend`]) nothing was applied.
    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::RecordKind;

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

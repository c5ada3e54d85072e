//! What users, groups and resources share for storage, indexing and change
//! sets, so lifecycle and address operations are written once, generically.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backend::RecordKind;
use super::error::DirectoryError;
use super::model::{EntityBase, EntityKind, EntityState, Group, Resource, User};
use super::state::OrgData;
use super::tx::Tx;

/// What users, groups and resources have in common for storage and indexing.
pub(crate) trait Entity: Clone + PartialEq + Serialize + DeserializeOwned {
    const KIND: EntityKind;
    const RECORD: RecordKind;
    fn base(&self) -> &EntityBase;
    fn base_mut(&mut self) -> &mut EntityBase;
    fn table(org: &OrgData) -> &BTreeMap<String, Self>;
    fn table_mut(org: &mut OrgData) -> &mut BTreeMap<String, Self>;
    fn pending(tx: &Tx) -> &BTreeMap<String, Self>;
    fn pending_mut(tx: &mut Tx) -> &mut BTreeMap<String, Self>;
    /// Called when the entity is disabled or deleted: sessions must re-check.
    fn revoke_credentials(&mut self) {}
    /// Drops kind-specific data (hash, members, delegates, grants) from a tombstone.
    fn strip_for_tombstone(&mut self);
}

macro_rules! entity_impl {
    ($field:ident) => {
        fn base(&self) -> &EntityBase {
            &self.base
        }
        fn base_mut(&mut self) -> &mut EntityBase {
            &mut self.base
        }
        fn table(org: &OrgData) -> &BTreeMap<String, Self> {
            &org.$field
        }
        fn table_mut(org: &mut OrgData) -> &mut BTreeMap<String, Self> {
            &mut org.$field
        }
        fn pending(tx: &Tx) -> &BTreeMap<String, Self> {
            &tx.$field
        }
        fn pending_mut(tx: &mut Tx) -> &mut BTreeMap<String, Self> {
            &mut tx.$field
        }
    };
}

impl Entity for User {
    const KIND: EntityKind = EntityKind::User;
    const RECORD: RecordKind = RecordKind::User;
    entity_impl!(users);
    fn revoke_credentials(&mut self) {
        self.credential_epoch = self.credential_epoch.saturating_add(1);
    }
    fn strip_for_tombstone(&mut self) {
        self.password_hash = None;
        self.permissions.clear();
    }
}

impl Entity for Group {
    const KIND: EntityKind = EntityKind::Group;
    const RECORD: RecordKind = RecordKind::Group;
    entity_impl!(groups);
    fn strip_for_tombstone(&mut self) {
        self.members.clear();
    }
}

impl Entity for Resource {
    const KIND: EntityKind = EntityKind::Resource;
    const RECORD: RecordKind = RecordKind::Resource;
    entity_impl!(resources);
    fn strip_for_tombstone(&mut self) {
        self.delegates.clear();
        self.permissions.clear();
    }
}

/// Runs a generic function with the entity type matching a runtime kind:
/// `dispatch!(kind, f(args…))` calls `f::<User>`, `f::<Group>` or `f::<Resource>`.
macro_rules! dispatch {
    ($kind:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $kind {
            $crate::directory::model::EntityKind::User => $f::<$crate::directory::model::User>($($arg),*),
            $crate::directory::model::EntityKind::Group => $f::<$crate::directory::model::Group>($($arg),*),
            $crate::directory::model::EntityKind::Resource => {
                $f::<$crate::directory::model::Resource>($($arg),*)
            }
        }
    };
}
pub(crate) use dispatch;

/// EntityState unless the entity is live (not a tombstone).
pub(crate) fn require_live(b: &EntityBase) -> Result<(), DirectoryError> {
    match b.is_deleted() {
        true => Err(DirectoryError::EntityState(format!("{} is deleted", b.id))),
        false => Ok(()),
    }
}

/// EntityState unless the entity is ENABLED: members, delegates and grantees
/// must be enabled when they are added.
pub(crate) fn require_enabled(b: &EntityBase) -> Result<(), DirectoryError> {
    match b.state {
        EntityState::Enabled => Ok(()),
        s => Err(DirectoryError::EntityState(format!("{} is {s}", b.id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_requirements() {
        let mut b = EntityBase::new("e".into(), "m-a", "n", false, 0);
        assert!(require_live(&b).is_ok());
        assert!(matches!(
            require_enabled(&b),
            Err(DirectoryError::EntityState(_))
        ));
        b.state = EntityState::Enabled;
        assert!(require_enabled(&b).is_ok());
        b.state = EntityState::Deleted;
        assert!(matches!(
            require_live(&b),
            Err(DirectoryError::EntityState(_))
        ));
    }

    #[test]
    fn revoking_credentials_bumps_only_users() {
        let mut u = User {
            base: EntityBase::new("u".into(), "m-a", "u", false, 0),
            display_name: String::new(),
            first_name: None,
            last_name: None,
            role: crate::directory::model::UserRole::User,
            password_hash: None,
            credential_epoch: 4,
            mailbox_quota_mb: 1,
            contact: Default::default(),
            permissions: Vec::new(),
        };
        u.revoke_credentials();
        assert_eq!(u.credential_epoch, 5);
        assert_eq!(<User as Entity>::KIND, EntityKind::User);
        assert_eq!(<Resource as Entity>::RECORD, RecordKind::Resource);
        assert_eq!(<Group as Entity>::KIND, EntityKind::Group);
    }
}

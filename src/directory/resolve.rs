//! The one function behind every WorkMail input that accepts "an ID, a name or
//! an email" (EntityId, MemberId, GranteeId, ResourceId, UserId, GroupId).
//!
//! Order: exact id (tombstones included, so a deleted entity answers with its
//! state instead of "not found"), then address (live entities), then name (live
//! entities, case-insensitive). A name that matches entities of two allowed
//! kinds is refused as ambiguous rather than guessed.

use super::entity::Entity;
use super::error::DirectoryError;
use super::model::{EntityKind, EntitySummary, Group, Resource, User};
use super::service::Directory;
use super::state::{State, addr_key, name_key};
use super::validate;

/// Every kind, for inputs that accept users, groups and resources.
pub const ANY_KIND: &[EntityKind] = &[EntityKind::User, EntityKind::Group, EntityKind::Resource];
/// Users and groups: members, delegates and grantees.
pub const USER_OR_GROUP: &[EntityKind] = &[EntityKind::User, EntityKind::Group];

/// What an identifier named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) kind: EntityKind,
    pub(crate) id: String,
}

impl State {
    /// Resolves an "ID, name or email" input within an active organization to an
    /// entity of one of `kinds`.
    pub(crate) fn resolve(
        &self,
        org: &str,
        ident: &str,
        kinds: &[EntityKind],
    ) -> Result<Resolved, DirectoryError> {
        validate::identifier(ident)?;
        let od = self.active_org(org)?;
        let key = addr_key(ident);
        if let Some((kind, owner_org)) = self.entities.get(key.as_ref())
            && owner_org == org
            && kinds.contains(kind)
        {
            return Ok(Resolved {
                kind: *kind,
                id: key.into_owned(),
            });
        }
        if ident.contains('@')
            && let Some(owner) = self.addresses.get(key.as_ref())
            && owner.org == org
            && kinds.contains(&owner.kind)
        {
            return Ok(Resolved {
                kind: owner.kind,
                id: owner.id.clone(),
            });
        }
        let nk = name_key(ident);
        let mut hits = kinds
            .iter()
            .filter_map(|k| od.names.get(&(*k, nk.clone())).map(|id| (*k, id)));
        match (hits.next(), hits.next()) {
            (Some((kind, id)), None) => Ok(Resolved {
                kind,
                id: id.clone(),
            }),
            (Some(_), Some(_)) => Err(DirectoryError::InvalidParameter(format!(
                "{ident} names more than one kind of entity; use its id or email"
            ))),
            (None, _) => Err(DirectoryError::EntityNotFound(format!(
                "no {} named {ident} in {org}",
                kinds_text(kinds)
            ))),
        }
    }

    /// Resolves to an entity of exactly one kind and returns its id.
    pub(crate) fn resolve_one<E: Entity>(
        &self,
        org: &str,
        ident: &str,
    ) -> Result<String, DirectoryError> {
        self.resolve(org, ident, &[E::KIND]).map(|r| r.id)
    }

    /// Id, name and kind of an entity known to exist.
    pub(crate) fn summary(&self, org: &str, kind: EntityKind, id: &str) -> Option<EntitySummary> {
        let name = match kind {
            EntityKind::User => self.get::<User>(org, id).map(|e| &e.base.name),
            EntityKind::Group => self.get::<Group>(org, id).map(|e| &e.base.name),
            EntityKind::Resource => self.get::<Resource>(org, id).map(|e| &e.base.name),
        }?;
        Some(EntitySummary {
            id: id.to_string(),
            name: name.clone(),
            kind,
        })
    }
}

fn kinds_text(kinds: &[EntityKind]) -> String {
    let names: Vec<&str> = kinds
        .iter()
        .map(|k| match k {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Resource => "resource",
        })
        .collect();
    names.join(" or ")
}

impl Directory {
    /// Resolves an "ID, name or email" input to the entity it names, among
    /// `kinds` (see [`ANY_KIND`], [`USER_OR_GROUP`]). The admin layer uses it for
    /// inputs this module has no operation for.
    pub fn resolve_identifier(
        &self,
        org_id: &str,
        identifier: &str,
        kinds: &[EntityKind],
    ) -> Result<EntitySummary, DirectoryError> {
        let st = self.read();
        let r = st.resolve(org_id, identifier, kinds)?;
        st.summary(org_id, r.kind, &r.id)
            .ok_or_else(|| DirectoryError::EntityNotFound(identifier.to_string()))
    }

    /// DescribeEntity: the user, group or resource that owns an address.
    pub fn describe_entity(
        &self,
        org_id: &str,
        email: &str,
    ) -> Result<EntitySummary, DirectoryError> {
        let addr = validate::email(email)?;
        let st = self.read();
        st.active_org(org_id)?;
        let owner = st
            .addresses
            .get(&addr)
            .filter(|o| o.org == org_id)
            .ok_or_else(|| {
                DirectoryError::EntityNotFound(format!("no entity has address {addr}"))
            })?;
        st.summary(org_id, owner.kind, &owner.id)
            .ok_or_else(|| DirectoryError::EntityNotFound(addr.clone()))
    }
}

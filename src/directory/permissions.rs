//! Mailbox permissions (reference §3.1–3.4): on a user's or resource's mailbox,
//! to a user or group grantee, a set of FULL_ACCESS / SEND_AS / SEND_ON_BEHALF.
//! Grants live inside the owner's record. Put replaces the grantee's set;
//! Delete removes it. Groups have no mailbox, so they are never owners.

use std::collections::BTreeSet;

use super::entity::{Entity, require_enabled, require_live};
use super::error::DirectoryError;
use super::model::{
    EntityKind, Group, MailboxGrant, MemberType, Permission, Resource, User, UserRole,
};
use super::resolve::{ANY_KIND, Resolved};
use super::service::Directory;
use super::state::State;
use super::tx::Tx;

/// An entity that owns a mailbox and therefore carries grants.
pub(crate) trait Mailbox {
    fn grants(&self) -> &Vec<MailboxGrant>;
    fn grants_mut(&mut self) -> &mut Vec<MailboxGrant>;
}

impl Mailbox for User {
    fn grants(&self) -> &Vec<MailboxGrant> {
        &self.permissions
    }
    fn grants_mut(&mut self) -> &mut Vec<MailboxGrant> {
        &mut self.permissions
    }
}

impl Mailbox for Resource {
    fn grants(&self) -> &Vec<MailboxGrant> {
        &self.permissions
    }
    fn grants_mut(&mut self) -> &mut Vec<MailboxGrant> {
        &mut self.permissions
    }
}

impl Directory {
    /// PutMailboxPermissions: replaces the grantee's permission set on the
    /// owner's mailbox (an empty set removes the grant). The owner is a live user
    /// (not REMOTE_USER, which has no mailbox) or resource; the grantee an ENABLED
    /// user or group other than the owner. FULL_ACCESS may go to a group: its
    /// members (nested) get it.
    pub fn put_mailbox_permissions(
        &self,
        org_id: &str,
        owner: &str,
        grantee: &str,
        values: &[Permission],
    ) -> Result<(), DirectoryError> {
        let values: BTreeSet<Permission> = values.iter().copied().collect();
        self.mutate(|st, tx| {
            let owner = resolve_owner(st, org_id, owner)?;
            let grantee = resolve_grantee(st, org_id, grantee)?;
            if grantee.id == owner.id {
                return Err(DirectoryError::InvalidParameter(
                    "an owner already has every right on its own mailbox".into(),
                ));
            }
            let grantee_base = match grantee.kind {
                EntityKind::User => st.get::<User>(org_id, &grantee.id).map(|e| &e.base),
                _ => st.get::<Group>(org_id, &grantee.id).map(|e| &e.base),
            }
            .ok_or_else(|| DirectoryError::EntityNotFound(grantee.id.clone()))?;
            require_enabled(grantee_base)?;
            let grantee_type = match grantee.kind {
                EntityKind::User => MemberType::User,
                _ => MemberType::Group,
            };
            edit_grants(st, tx, org_id, &owner, |grants| {
                grants.retain(|g| g.grantee_id != grantee.id);
                if !values.is_empty() {
                    grants.push(MailboxGrant {
                        grantee_id: grantee.id.clone(),
                        grantee_type,
                        values: values.clone(),
                    });
                    grants.sort_by(|a, b| a.grantee_id.cmp(&b.grantee_id));
                }
            })
        })
    }

    /// DeleteMailboxPermissions: removes the grantee's grant (no-op if none).
    pub fn delete_mailbox_permissions(
        &self,
        org_id: &str,
        owner: &str,
        grantee: &str,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let owner = resolve_owner(st, org_id, owner)?;
            let grantee = st.resolve(org_id, grantee, ANY_KIND)?;
            edit_grants(st, tx, org_id, &owner, |grants| {
                grants.retain(|g| g.grantee_id != grantee.id)
            })
        })
    }

    /// ListMailboxPermissions: the grants on a mailbox, sorted by grantee id.
    pub fn list_mailbox_permissions(
        &self,
        org_id: &str,
        owner: &str,
    ) -> Result<Vec<MailboxGrant>, DirectoryError> {
        let st = self.read();
        let owner = resolve_owner(&st, org_id, owner)?;
        let grants = match owner.kind {
            EntityKind::User => st
                .get::<User>(org_id, &owner.id)
                .map(|u| u.permissions.clone()),
            _ => st
                .get::<Resource>(org_id, &owner.id)
                .map(|r| r.permissions.clone()),
        };
        grants.ok_or(DirectoryError::EntityNotFound(owner.id))
    }
}

/// Resolves a mailbox owner: a live user with a mailbox, or a live resource.
fn resolve_owner(st: &State, org: &str, ident: &str) -> Result<Resolved, DirectoryError> {
    let r = st.resolve(org, ident, ANY_KIND)?;
    match r.kind {
        EntityKind::Group => Err(DirectoryError::InvalidParameter(
            "a group has no mailbox to grant permissions on".into(),
        )),
        EntityKind::User => {
            let u = st
                .get::<User>(org, &r.id)
                .ok_or_else(|| DirectoryError::EntityNotFound(r.id.clone()))?;
            require_live(&u.base)?;
            if u.role != UserRole::User {
                return Err(DirectoryError::InvalidParameter(format!(
                    "a {} has no mailbox",
                    u.role
                )));
            }
            Ok(r)
        }
        EntityKind::Resource => {
            let res = st
                .get::<Resource>(org, &r.id)
                .ok_or_else(|| DirectoryError::EntityNotFound(r.id.clone()))?;
            require_live(&res.base)?;
            Ok(r)
        }
    }
}

/// Resolves a grantee: a user or group (resources cannot hold permissions).
fn resolve_grantee(st: &State, org: &str, ident: &str) -> Result<Resolved, DirectoryError> {
    let r = st.resolve(org, ident, ANY_KIND)?;
    match r.kind {
        EntityKind::Resource => Err(DirectoryError::InvalidParameter(
            "a resource cannot be granted mailbox permissions".into(),
        )),
        _ => Ok(r),
    }
}

fn edit_grants(
    st: &State,
    tx: &mut Tx,
    org: &str,
    owner: &Resolved,
    f: impl FnOnce(&mut Vec<MailboxGrant>),
) -> Result<(), DirectoryError> {
    fn with<E: Entity + Mailbox>(
        st: &State,
        tx: &mut Tx,
        org: &str,
        id: &str,
        f: impl FnOnce(&mut Vec<MailboxGrant>),
    ) -> Result<(), DirectoryError> {
        f(tx.touch::<E>(st, org, id)?.grants_mut());
        Ok(())
    }
    match owner.kind {
        EntityKind::User => with::<User>(st, tx, org, &owner.id, f),
        _ => with::<Resource>(st, tx, org, &owner.id, f),
    }
}

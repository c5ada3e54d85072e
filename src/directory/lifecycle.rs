//! Entity lifecycle shared by users, groups and resources (reference §4.2):
//! created DISABLED; RegisterToWorkMail enables with a primary email;
//! DeregisterFromWorkMail disables (addresses kept, sessions cut); deletion
//! needs DISABLED and leaves a tombstone reachable by id only.

use super::entity::{Entity, dispatch, require_live};
use super::error::DirectoryError;
use super::model::{EntityBase, EntityState, Group, Resource, User};
use super::permissions::Mailbox;
use super::resolve::ANY_KIND;
use super::service::Directory;
use super::state::State;
use super::tx::Tx;
use super::validate::{self, MAX_ALIASES};
use crate::clock::now_ms_u64 as now_ms;

impl Directory {
    /// RegisterToWorkMail: enables a DISABLED user, group or resource with
    /// `email` as primary address. On an ENABLED entity it is a no-op if `email`
    /// is already its primary address, else EntityAlreadyRegistered; on a
    /// deleted one, EntityState. A previous primary address moves to the
    /// aliases, as with UpdatePrimaryEmailAddress.
    pub fn register_to_workmail(
        &self,
        org_id: &str,
        entity: &str,
        email: &str,
    ) -> Result<(), DirectoryError> {
        let addr = validate::email(email)?;
        let now = now_ms();
        self.mutate(|st, tx| {
            let r = st.resolve(org_id, entity, ANY_KIND)?;
            dispatch!(r.kind, register(st, tx, org_id, &r.id, &addr, now))
        })
    }

    /// DeregisterFromWorkMail: disables an entity (no-op if already DISABLED).
    /// Its addresses stay reserved; a user's live sessions see a new credential epoch.
    pub fn deregister_from_workmail(
        &self,
        org_id: &str,
        entity: &str,
    ) -> Result<(), DirectoryError> {
        let now = now_ms();
        self.mutate(|st, tx| {
            let r = st.resolve(org_id, entity, ANY_KIND)?;
            dispatch!(r.kind, deregister(st, tx, org_id, &r.id, now))
        })
    }
}

fn register<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
    addr: &str,
    now: u64,
) -> Result<(), DirectoryError> {
    let e = tx.touch::<E>(st, org, id)?;
    let b = e.base_mut();
    match b.state {
        EntityState::Deleted => Err(DirectoryError::EntityState(format!("{id} is deleted"))),
        EntityState::Enabled if b.email.as_deref() == Some(addr) => Ok(()),
        EntityState::Enabled => Err(DirectoryError::EntityAlreadyRegistered(format!(
            "{id} is already registered with another address"
        ))),
        EntityState::Disabled => {
            st.check_domain(org, addr)?;
            st.address_free(addr, id)?;
            set_primary(b, addr)?;
            b.state = EntityState::Enabled;
            b.enabled_date = Some(now);
            Ok(())
        }
    }
}

fn deregister<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
    now: u64,
) -> Result<(), DirectoryError> {
    let e = tx.touch::<E>(st, org, id)?;
    match e.base().state {
        EntityState::Deleted => Err(DirectoryError::EntityState(format!("{id} is deleted"))),
        EntityState::Disabled => Ok(()),
        EntityState::Enabled => {
            let b = e.base_mut();
            b.state = EntityState::Disabled;
            b.disabled_date = Some(now);
            e.revoke_credentials();
            Ok(())
        }
    }
}

/// Makes `addr` (validated, free, in a registered domain) the primary address.
/// An alias equal to `addr` is promoted; the old primary becomes an alias.
pub(crate) fn set_primary(b: &mut EntityBase, addr: &str) -> Result<(), DirectoryError> {
    if b.email.as_deref() == Some(addr) {
        return Ok(());
    }
    let alias_pos = b.aliases.iter().position(|a| a == addr);
    if alias_pos.is_none() && b.email.is_some() && b.aliases.len() >= MAX_ALIASES {
        return Err(DirectoryError::LimitExceeded(format!(
            "{} already has {MAX_ALIASES} aliases",
            b.id
        )));
    }
    if let Some(i) = alias_pos {
        b.aliases.remove(i);
    }
    if let Some(old) = b.email.take() {
        b.aliases.push(old);
        b.aliases.sort();
    }
    b.email = Some(addr.to_string());
    Ok(())
}

/// Turns a DISABLED entity into a tombstone (EntityState otherwise): frees its
/// name and addresses, drops its kind-specific data, bumps a user's credential
/// epoch, and removes every reference to it from groups, resources and grants.
pub(crate) fn tombstone<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
) -> Result<(), DirectoryError> {
    let now = now_ms();
    let e = tx.touch::<E>(st, org, id)?;
    require_live(e.base())?;
    if e.base().state != EntityState::Disabled {
        return Err(DirectoryError::EntityState(format!(
            "{id} must be disabled (deregistered) before it is deleted"
        )));
    }
    let b = e.base_mut();
    b.state = EntityState::Deleted;
    b.deleted_date = Some(now);
    b.email = None;
    b.aliases.clear();
    e.strip_for_tombstone();
    e.revoke_credentials();
    forget_references(st, tx, org, id)
}

/// Removes `id` from group members, resource delegates and mailbox grants.
fn forget_references(st: &State, tx: &mut Tx, org: &str, id: &str) -> Result<(), DirectoryError> {
    let Some(od) = st.orgs.get(org) else {
        return Ok(());
    };
    for g in od.groups.values() {
        if g.members.iter().any(|m| m.id == id) {
            tx.touch::<Group>(st, org, &g.base.id)?
                .members
                .retain(|m| m.id != id);
        }
    }
    for r in od.resources.values() {
        if r.delegates.iter().any(|m| m.id == id) {
            tx.touch::<Resource>(st, org, &r.base.id)?
                .delegates
                .retain(|m| m.id != id);
        }
    }
    drop_grants_to::<User>(st, tx, org, id)?;
    drop_grants_to::<Resource>(st, tx, org, id)
}

fn drop_grants_to<E: Entity + Mailbox>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
) -> Result<(), DirectoryError> {
    let Some(od) = st.orgs.get(org) else {
        return Ok(());
    };
    for owner in E::table(od).values() {
        if owner.grants().iter().any(|g| g.grantee_id == id) {
            tx.touch::<E>(st, org, &owner.base().id)?
                .grants_mut()
                .retain(|g| g.grantee_id != id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> EntityBase {
        EntityBase::new("u1".into(), "m-1", "bob", false, 0)
    }

    #[test]
    fn set_primary_moves_old_primary_to_aliases() {
        let mut b = base();
        assert_eq!(set_primary(&mut b, "a@x.test"), Ok(()));
        assert_eq!(b.email.as_deref(), Some("a@x.test"));
        assert!(b.aliases.is_empty());
        assert_eq!(set_primary(&mut b, "b@x.test"), Ok(()));
        assert_eq!(b.email.as_deref(), Some("b@x.test"));
        assert_eq!(b.aliases, vec!["a@x.test".to_string()]);
        // Promoting an alias swaps.
        assert_eq!(set_primary(&mut b, "a@x.test"), Ok(()));
        assert_eq!(b.email.as_deref(), Some("a@x.test"));
        assert_eq!(b.aliases, vec!["b@x.test".to_string()]);
    }

    #[test]
    fn set_primary_respects_the_alias_limit() {
        let mut b = base();
        b.email = Some("p@x.test".into());
        b.aliases = (0..MAX_ALIASES)
            .map(|i| format!("a{i:03}@x.test"))
            .collect();
        assert!(matches!(
            set_primary(&mut b, "new@x.test"),
            Err(DirectoryError::LimitExceeded(_))
        ));
        // Swapping with an existing alias does not grow the list.
        assert_eq!(set_primary(&mut b, "a000@x.test"), Ok(()));
        assert_eq!(b.aliases.len(), MAX_ALIASES);
    }
}

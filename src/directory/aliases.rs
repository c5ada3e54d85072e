//! Addresses after registration: CreateAlias, DeleteAlias, ListAliases and
//! UpdatePrimaryEmailAddress. Every address is lowercase, unique across users,
//! groups and resources, and in one of the organization's mail domains.

use super::entity::{Entity, dispatch, require_live};
use super::error::DirectoryError;
use super::lifecycle::set_primary;
use super::model::EntityState;
use super::resolve::ANY_KIND;
use super::service::Directory;
use super::state::State;
use super::tx::Tx;
use super::validate::{self, MAX_ALIASES};

impl Directory {
    /// CreateAlias: adds an address to an ENABLED user, group or resource.
    /// No-op if it already is one of its aliases; EmailAddressInUse if it is any
    /// entity's primary address or another entity's alias; LimitExceeded past 100.
    pub fn create_alias(
        &self,
        org_id: &str,
        entity: &str,
        alias: &str,
    ) -> Result<(), DirectoryError> {
        let addr = validate::email(alias)?;
        self.mutate(|st, tx| {
            let r = st.resolve(org_id, entity, ANY_KIND)?;
            dispatch!(r.kind, add_alias(st, tx, org_id, &r.id, &addr))
        })
    }

    /// DeleteAlias: removes an alias (no-op if absent). The primary address
    /// cannot be removed this way (InvalidParameter).
    pub fn delete_alias(
        &self,
        org_id: &str,
        entity: &str,
        alias: &str,
    ) -> Result<(), DirectoryError> {
        let addr = validate::email(alias)?;
        self.mutate(|st, tx| {
            let r = st.resolve(org_id, entity, ANY_KIND)?;
            dispatch!(r.kind, remove_alias(st, tx, org_id, &r.id, &addr))
        })
    }

    /// ListAliases: the entity's aliases (primary address excluded), sorted.
    pub fn list_aliases(&self, org_id: &str, entity: &str) -> Result<Vec<String>, DirectoryError> {
        let st = self.read();
        let r = st.resolve(org_id, entity, ANY_KIND)?;
        dispatch!(r.kind, aliases_of(&st, org_id, &r.id))
    }

    /// UpdatePrimaryEmailAddress: makes `email` the primary address of an
    /// ENABLED entity; the old primary becomes an alias (or swaps with it).
    pub fn update_primary_email_address(
        &self,
        org_id: &str,
        entity: &str,
        email: &str,
    ) -> Result<(), DirectoryError> {
        let addr = validate::email(email)?;
        self.mutate(|st, tx| {
            let r = st.resolve(org_id, entity, ANY_KIND)?;
            dispatch!(r.kind, change_primary(st, tx, org_id, &r.id, &addr))
        })
    }
}

fn require_enabled_for_addresses(e: &impl Entity) -> Result<(), DirectoryError> {
    require_live(e.base())?;
    if e.base().state != EntityState::Enabled {
        return Err(DirectoryError::EntityState(format!(
            "{} must be registered (enabled) first",
            e.base().id
        )));
    }
    Ok(())
}

fn add_alias<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
    addr: &str,
) -> Result<(), DirectoryError> {
    let e = tx.touch::<E>(st, org, id)?;
    require_enabled_for_addresses(e)?;
    let b = e.base_mut();
    if b.aliases.iter().any(|a| a == addr) {
        return Ok(());
    }
    if b.email.as_deref() == Some(addr) {
        return Err(DirectoryError::EmailAddressInUse(format!(
            "{addr} is already the primary address"
        )));
    }
    st.check_domain(org, addr)?;
    st.address_free(addr, id)?;
    if b.aliases.len() >= MAX_ALIASES {
        return Err(DirectoryError::LimitExceeded(format!(
            "{id} already has {MAX_ALIASES} aliases"
        )));
    }
    b.aliases.push(addr.to_string());
    b.aliases.sort();
    Ok(())
}

fn remove_alias<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
    addr: &str,
) -> Result<(), DirectoryError> {
    let e = tx.touch::<E>(st, org, id)?;
    require_live(e.base())?;
    let b = e.base_mut();
    if b.email.as_deref() == Some(addr) {
        return Err(DirectoryError::InvalidParameter(format!(
            "{addr} is the primary address; change it with UpdatePrimaryEmailAddress"
        )));
    }
    b.aliases.retain(|a| a != addr);
    Ok(())
}

fn aliases_of<E: Entity>(st: &State, org: &str, id: &str) -> Result<Vec<String>, DirectoryError> {
    let e = st
        .get::<E>(org, id)
        .ok_or_else(|| DirectoryError::EntityNotFound(id.to_string()))?;
    require_live(e.base())?;
    Ok(e.base().aliases.clone())
}

fn change_primary<E: Entity>(
    st: &State,
    tx: &mut Tx,
    org: &str,
    id: &str,
    addr: &str,
) -> Result<(), DirectoryError> {
    let e = tx.touch::<E>(st, org, id)?;
    require_enabled_for_addresses(e)?;
    st.check_domain(org, addr)?;
    st.address_free(addr, id)?;
    set_primary(e.base_mut(), addr)
}

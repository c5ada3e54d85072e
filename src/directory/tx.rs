//! A change set: copies of the entities one mutation touches, edited while the
//! write lock is held, persisted as one atomic batch, and only then committed
//! to memory. Nothing in the live state changes until the backend said yes.

use std::collections::BTreeMap;

use super::backend::{RecordKind, RecordOp};
use super::entity::Entity;
use super::error::DirectoryError;
use super::model::{Group, Organization, Resource, User};
use super::pat::PersonalAccessToken;
use super::state::{State, entity_record, org_record, pat_record};

/// New versions of the organizations and entities a mutation touches.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    pub(crate) orgs: BTreeMap<String, Organization>,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) resources: BTreeMap<String, Resource>,
    /// Personal access tokens by id: `Some` to write, `None` to delete.
    pub(crate) pats: BTreeMap<String, Option<PersonalAccessToken>>,
}

impl Tx {
    /// A mutable copy of a live entity, made on first touch.
    pub(crate) fn touch<E: Entity>(
        &mut self,
        st: &State,
        org: &str,
        id: &str,
    ) -> Result<&mut E, DirectoryError> {
        if !E::pending(self).contains_key(id) {
            let live = st
                .get::<E>(org, id)
                .ok_or_else(|| DirectoryError::EntityNotFound(format!("no {} {id}", E::KIND)))?;
            E::pending_mut(self).insert(id.to_string(), live.clone());
        }
        E::pending_mut(self)
            .get_mut(id)
            .ok_or_else(|| DirectoryError::EntityNotFound(format!("no {} {id}", E::KIND)))
    }

    /// Adds a newly created entity.
    pub(crate) fn insert<E: Entity>(&mut self, e: E) {
        E::pending_mut(self).insert(e.base().id.clone(), e);
    }

    /// A mutable copy of a live organization, made on first touch.
    pub(crate) fn org_mut(
        &mut self,
        st: &State,
        org: &str,
    ) -> Result<&mut Organization, DirectoryError> {
        if !self.orgs.contains_key(org) {
            let live = st.orgs.get(org).ok_or_else(|| {
                DirectoryError::OrganizationNotFound(format!("no organization {org}"))
            })?;
            self.orgs.insert(org.to_string(), live.org.clone());
        }
        self.orgs
            .get_mut(org)
            .ok_or_else(|| DirectoryError::OrganizationNotFound(format!("no organization {org}")))
    }

    /// Adds a newly created organization.
    pub(crate) fn insert_org(&mut self, o: Organization) {
        self.orgs.insert(o.id.clone(), o);
    }

    /// Drops copies that ended up equal to the live version, so idempotent
    /// requests write nothing and do not bump the generation.
    pub(crate) fn prune(&mut self, st: &State) {
        self.orgs
            .retain(|id, o| st.orgs.get(id).map(|d| &d.org) != Some(o));
        prune_table::<User>(&mut self.users, st);
        prune_table::<Group>(&mut self.groups, st);
        prune_table::<Resource>(&mut self.resources, st);
        self.pats.retain(|id, p| st.pats.get(id) != p.as_ref());
    }

    /// Whether nothing is left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.orgs.is_empty()
            && self.users.is_empty()
            && self.groups.is_empty()
            && self.resources.is_empty()
            && self.pats.is_empty()
    }

    /// The batch of record writes for the backend.
    pub(crate) fn ops(&self) -> Result<Vec<RecordOp>, DirectoryError> {
        let ser = |e: serde_json::Error| DirectoryError::Backend(format!("cannot serialise: {e}"));
        let mut ops = Vec::new();
        for o in self.orgs.values() {
            ops.push(RecordOp::Put(org_record(o).map_err(ser)?));
        }
        for u in self.users.values() {
            ops.push(RecordOp::Put(entity_record(u).map_err(ser)?));
        }
        for g in self.groups.values() {
            ops.push(RecordOp::Put(entity_record(g).map_err(ser)?));
        }
        for r in self.resources.values() {
            ops.push(RecordOp::Put(entity_record(r).map_err(ser)?));
        }
        for (id, p) in &self.pats {
            ops.push(match p {
                Some(p) => RecordOp::Put(pat_record(p).map_err(ser)?),
                None => RecordOp::Delete {
                    kind: RecordKind::PersonalAccessToken,
                    id: id.clone(),
                },
            });
        }
        Ok(ops)
    }
}

fn prune_table<E: Entity>(table: &mut BTreeMap<String, E>, st: &State) {
    table.retain(|id, e| st.get::<E>(&e.base().org_id, id) != Some(e));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::{EntityBase, OrganizationState};

    #[test]
    fn prune_drops_unchanged_copies_and_touch_needs_a_live_entity() {
        let mut st = State::default();
        st.put_org(Organization {
            id: "m-a".into(),
            alias: "a".into(),
            state: OrganizationState::Active,
            default_mail_domain: "a.test".into(),
            mail_domains: vec!["a.test".into()],
            created: 0,
            inbound_dmarc_enforced: true,
        });
        st.put(Group {
            base: EntityBase::new("g1".into(), "m-a", "one", false, 0),
            members: Vec::new(),
        });
        let mut tx = Tx::default();
        assert!(tx.touch::<Group>(&st, "m-a", "g1").is_ok());
        assert!(tx.org_mut(&st, "m-a").is_ok());
        assert!(tx.touch::<Group>(&st, "m-a", "nope").is_err());
        assert!(tx.org_mut(&st, "m-nope").is_err());
        assert!(!tx.is_empty());
        tx.prune(&st);
        assert!(tx.is_empty(), "untouched copies are not written");
        if let Ok(g) = tx.touch::<Group>(&st, "m-a", "g1") {
            g.base.hidden_from_gal = true;
        }
        tx.prune(&st);
        assert_eq!(tx.ops().map(|o| o.len()).ok(), Some(1));
    }
}

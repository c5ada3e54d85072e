//! Resources (rooms, equipment) and their delegates (reference §3.5). A
//! resource that does not accept requests automatically needs a delegate to
//! answer them: otherwise InvalidConfiguration.

use super::entity::{require_enabled, require_live};
use super::error::DirectoryError;
use super::ids;
use super::lifecycle::tombstone;
use super::model::{
    BookingOptions, EntityBase, EntityKind, MemberRef, MemberType, NewResource, Resource,
    ResourceUpdate,
};
use super::resolve::USER_OR_GROUP;
use super::service::Directory;
use super::validate;
use crate::clock::now_ms_u64 as now_ms;

impl Directory {
    /// CreateResource: a new DISABLED resource with WorkMail's default booking
    /// options (accept, allow recurring, refuse conflicts). Returns its `r-…` id.
    pub fn create_resource(
        &self,
        org_id: &str,
        new: NewResource<'_>,
    ) -> Result<String, DirectoryError> {
        validate::resource_name(new.name)?;
        validate::not_reserved(new.name)?;
        if let Some(d) = new.description {
            if d.is_empty() {
                return Err(DirectoryError::InvalidParameter(
                    "Description must be 1-64 characters when given".into(),
                ));
            }
            validate::description(d)?;
        }
        let now = now_ms();
        self.mutate(|st, tx| {
            st.active_org(org_id)?;
            st.name_free(org_id, EntityKind::Resource, new.name, None)?;
            let id = st.fresh_id(ids::new_resource_id);
            tx.insert(Resource {
                base: EntityBase::new(id.clone(), org_id, new.name, new.hidden_from_gal, now),
                resource_type: new.resource_type,
                description: new.description.map(str::to_string),
                booking_options: BookingOptions::default(),
                delegates: Vec::new(),
                permissions: Vec::new(),
            });
            Ok(id)
        })
    }

    /// DescribeResource by id, name or email (a deleted resource by id only).
    pub fn describe_resource(
        &self,
        org_id: &str,
        resource: &str,
    ) -> Result<Resource, DirectoryError> {
        let st = self.read();
        let id = st.resolve_one::<Resource>(org_id, resource)?;
        st.get::<Resource>(org_id, &id)
            .cloned()
            .ok_or_else(|| DirectoryError::EntityNotFound(resource.to_string()))
    }

    /// ListResources: every resource that is not deleted, sorted by id.
    pub fn list_resources(&self, org_id: &str) -> Result<Vec<Resource>, DirectoryError> {
        let st = self.read();
        let od = st.active_org(org_id)?;
        Ok(od
            .resources
            .values()
            .filter(|r| !r.base.is_deleted())
            .cloned()
            .collect())
    }

    /// UpdateResource: name (NameAvailability), type, description (`""`
    /// clears), booking options and GAL visibility. Booking options that do not
    /// auto-accept while the resource has no delegate are InvalidConfiguration.
    pub fn update_resource(
        &self,
        org_id: &str,
        resource: &str,
        update: ResourceUpdate,
    ) -> Result<(), DirectoryError> {
        if let Some(n) = &update.name {
            validate::resource_name(n)?;
            validate::not_reserved(n)?;
        }
        if let Some(d) = &update.description {
            validate::description(d)?;
        }
        self.mutate(|st, tx| {
            let id = st.resolve_one::<Resource>(org_id, resource)?;
            if let Some(n) = &update.name {
                st.name_free(org_id, EntityKind::Resource, n, Some(&id))?;
            }
            let r = tx.touch::<Resource>(st, org_id, &id)?;
            require_live(&r.base)?;
            if let Some(n) = &update.name {
                r.base.name = n.clone();
            }
            if let Some(t) = update.resource_type {
                r.resource_type = t;
            }
            if let Some(d) = &update.description {
                r.description = Some(d.clone()).filter(|d| !d.is_empty());
            }
            if let Some(h) = update.hidden_from_gal {
                r.base.hidden_from_gal = h;
            }
            if let Some(b) = update.booking_options {
                r.booking_options = b;
                check_answerable(r)?;
            }
            Ok(())
        })
    }

    /// DeleteResource: the resource must be DISABLED.
    pub fn delete_resource(&self, org_id: &str, resource: &str) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let id = st.resolve_one::<Resource>(org_id, resource)?;
            tombstone::<Resource>(st, tx, org_id, &id)
        })
    }

    /// AssociateDelegateToResource: adds an ENABLED user or group as delegate of
    /// a live resource (no-op if already one).
    pub fn associate_delegate_to_resource(
        &self,
        org_id: &str,
        resource: &str,
        entity: &str,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let rid = st.resolve_one::<Resource>(org_id, resource)?;
            let m = st.resolve(org_id, entity, USER_OR_GROUP)?;
            let od = st.active_org(org_id)?;
            let (base, kind) = match m.kind {
                EntityKind::Group => (od.groups.get(&m.id).map(|g| &g.base), MemberType::Group),
                _ => (od.users.get(&m.id).map(|u| &u.base), MemberType::User),
            };
            require_enabled(base.ok_or_else(|| DirectoryError::EntityNotFound(m.id.clone()))?)?;
            let r = tx.touch::<Resource>(st, org_id, &rid)?;
            require_live(&r.base)?;
            if !r.delegates.iter().any(|d| d.id == m.id) {
                r.delegates.push(MemberRef { id: m.id, kind });
                r.delegates.sort();
            }
            Ok(())
        })
    }

    /// DisassociateDelegateFromResource: removes a delegate (no-op if not one).
    /// Removing the last delegate of a resource that does not auto-accept is
    /// InvalidConfiguration.
    pub fn disassociate_delegate_from_resource(
        &self,
        org_id: &str,
        resource: &str,
        entity: &str,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let rid = st.resolve_one::<Resource>(org_id, resource)?;
            let m = st.resolve(org_id, entity, USER_OR_GROUP)?;
            let r = tx.touch::<Resource>(st, org_id, &rid)?;
            require_live(&r.base)?;
            let before = r.delegates.len();
            r.delegates.retain(|d| d.id != m.id);
            if r.delegates.len() != before {
                check_answerable(r)?;
            }
            Ok(())
        })
    }

    /// ListResourceDelegates: sorted by id.
    pub fn list_resource_delegates(
        &self,
        org_id: &str,
        resource: &str,
    ) -> Result<Vec<MemberRef>, DirectoryError> {
        let st = self.read();
        let id = st.resolve_one::<Resource>(org_id, resource)?;
        let r = st
            .get::<Resource>(org_id, &id)
            .ok_or_else(|| DirectoryError::EntityNotFound(resource.to_string()))?;
        require_live(&r.base)?;
        Ok(r.delegates.clone())
    }
}

/// A resource must either accept requests automatically or have a delegate.
fn check_answerable(r: &Resource) -> Result<(), DirectoryError> {
    if !r.booking_options.auto_accept_requests && r.delegates.is_empty() {
        return Err(DirectoryError::InvalidConfiguration(format!(
            "{} neither accepts requests automatically nor has a delegate",
            r.base.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answerable_needs_auto_accept_or_a_delegate() {
        let mut r = Resource {
            base: EntityBase::new("r-1".into(), "m-a", "room", false, 0),
            resource_type: crate::directory::model::ResourceType::Room,
            description: None,
            booking_options: BookingOptions::default(),
            delegates: Vec::new(),
            permissions: Vec::new(),
        };
        assert!(check_answerable(&r).is_ok());
        r.booking_options.auto_accept_requests = false;
        assert!(matches!(
            check_answerable(&r),
            Err(DirectoryError::InvalidConfiguration(_))
        ));
        r.delegates.push(MemberRef {
            id: "u".into(),
            kind: MemberType::User,
        });
        assert!(check_answerable(&r).is_ok());
    }
}

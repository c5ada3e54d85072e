//! Organizations and their mail domains. A domain belongs to one organization
//! only, which is what makes every address globally unique and lets
//! `resolve_address` work without an organization.

use super::entity::Entity;
use super::error::DirectoryError;
use super::ids;
use super::model::{Group, MailDomain, Organization, OrganizationState, Resource, User};
use super::service::Directory;
use super::state::{OrgData, State, name_key};
use super::tx::Tx;
use super::validate;
use crate::clock::now_ms_u64 as now_ms;

impl Directory {
    /// CreateOrganization: a new Active organization whose first (and default)
    /// mail domain is `domain`. Returns the `m-…` id. The alias must be unique
    /// (NameAvailability); the domain must not belong to another organization
    /// (MailDomainInUse).
    pub fn create_organization(&self, alias: &str, domain: &str) -> Result<String, DirectoryError> {
        validate::org_alias(alias)?;
        let domain = validate::domain_name(domain)?;
        let now = now_ms();
        self.mutate(|st, tx| new_organization(st, tx, alias, &domain, now))
    }

    /// [`Directory::create_organization`] only while the directory holds no
    /// organization, decided in the same write: daemons provisioning one shared
    /// directory at once make one first organization (the others get `None`).
    pub fn create_first_organization(
        &self,
        alias: &str,
        domain: &str,
    ) -> Result<Option<String>, DirectoryError> {
        if !self.read().orgs.is_empty() {
            return Ok(None);
        }
        validate::org_alias(alias)?;
        let domain = validate::domain_name(domain)?;
        let now = now_ms();
        self.mutate(|st, tx| match st.orgs.is_empty() {
            true => new_organization(st, tx, alias, &domain, now).map(Some),
            false => Ok(None),
        })
    }

    /// DescribeOrganization.
    pub fn describe_organization(&self, org_id: &str) -> Result<Organization, DirectoryError> {
        self.read()
            .orgs
            .get(org_id)
            .map(|d| d.org.clone())
            .ok_or_else(|| {
                DirectoryError::OrganizationNotFound(format!("no organization {org_id}"))
            })
    }

    /// PutInboundDmarcSettings.
    pub fn set_inbound_dmarc_enforced(
        &self,
        org_id: &str,
        enforced: bool,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            st.active_org(org_id)?;
            tx.org_mut(st, org_id)?.inbound_dmarc_enforced = enforced;
            Ok(())
        })
    }

    /// Whether inbound DMARC failures get the sender's policy in `org_id`; an
    /// unknown organization enforces (the safe side).
    pub fn inbound_dmarc_enforced(&self, org_id: &str) -> bool {
        self.read()
            .orgs
            .get(org_id)
            .is_none_or(|d| d.org.inbound_dmarc_enforced)
    }

    /// ListOrganizations: all organizations, sorted by id.
    pub fn list_organizations(&self) -> Vec<Organization> {
        self.read().orgs.values().map(|d| d.org.clone()).collect()
    }

    /// RegisterMailDomain. Registering a domain the organization already has is
    /// a no-op; one owned by another organization is MailDomainInUse.
    pub fn register_mail_domain(&self, org_id: &str, domain: &str) -> Result<(), DirectoryError> {
        let domain = validate::domain_name(domain)?;
        self.mutate(|st, tx| {
            st.active_org(org_id)?;
            match st.domains.get(&domain) {
                Some(owner) if owner == org_id => Ok(()),
                Some(_) => Err(DirectoryError::MailDomainInUse(format!(
                    "{domain} belongs to another organization"
                ))),
                None => {
                    tx.org_mut(st, org_id)?.mail_domains.push(domain.clone());
                    Ok(())
                }
            }
        })
    }

    /// DeregisterMailDomain. MailDomainInUse while the domain is the default or
    /// any user, group or resource (enabled or disabled) has an address in it.
    /// A domain the organization does not have is a no-op, as the WorkMail
    /// model lists no MailDomainNotFound for this operation.
    pub fn deregister_mail_domain(&self, org_id: &str, domain: &str) -> Result<(), DirectoryError> {
        let domain = validate::domain_name(domain)?;
        self.mutate(|st, tx| {
            let od = st.active_org(org_id)?;
            if !od.org.mail_domains.contains(&domain) {
                return Ok(());
            }
            if od.org.default_mail_domain == domain {
                return Err(DirectoryError::MailDomainInUse(format!(
                    "{domain} is the default mail domain; choose another default first"
                )));
            }
            if let Some(addr) = first_address_in(od, &domain) {
                return Err(DirectoryError::MailDomainInUse(format!(
                    "{domain} is still used by {addr}"
                )));
            }
            tx.org_mut(st, org_id)?
                .mail_domains
                .retain(|d| *d != domain);
            Ok(())
        })
    }

    /// UpdateDefaultMailDomain. The domain must be registered (MailDomainNotFound).
    pub fn update_default_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<(), DirectoryError> {
        let domain = validate::domain_name(domain)?;
        self.mutate(|st, tx| {
            let od = st.active_org(org_id)?;
            if !od.org.mail_domains.contains(&domain) {
                return Err(DirectoryError::MailDomainNotFound(format!(
                    "{domain} is not a mail domain of {org_id}"
                )));
            }
            tx.org_mut(st, org_id)?.default_mail_domain = domain.clone();
            Ok(())
        })
    }

    /// ListMailDomains: sorted by name, with the default flagged.
    pub fn list_mail_domains(&self, org_id: &str) -> Result<Vec<MailDomain>, DirectoryError> {
        let st = self.read();
        let od = st.active_org(org_id)?;
        let mut out: Vec<MailDomain> = od
            .org
            .mail_domains
            .iter()
            .map(|d| MailDomain {
                name: d.clone(),
                is_default: *d == od.org.default_mail_domain,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// The first address of a live entity of the organization that is in `domain`.
fn first_address_in(od: &OrgData, domain: &str) -> Option<String> {
    fn scan<E: Entity>(od: &OrgData, domain: &str) -> Option<String> {
        E::table(od)
            .values()
            .flat_map(|e| e.base().addresses())
            .find(|a| validate::email_domain(a) == domain)
            .map(str::to_string)
    }
    scan::<User>(od, domain)
        .or_else(|| scan::<Group>(od, domain))
        .or_else(|| scan::<Resource>(od, domain))
}

impl State {
    /// Refuses an address whose domain is not one of the organization's.
    pub(crate) fn check_domain(&self, org_id: &str, addr: &str) -> Result<(), DirectoryError> {
        let domain = validate::email_domain(addr);
        match self.domains.get(domain) {
            Some(owner) if owner == org_id => Ok(()),
            _ => Err(DirectoryError::MailDomainNotFound(format!(
                "{domain} is not a mail domain of {org_id}"
            ))),
        }
    }
}

/// Adds a new Active organization to the change set after checking that its
/// alias and domain are free; returns its id.
fn new_organization(
    st: &State,
    tx: &mut Tx,
    alias: &str,
    domain: &str,
    now: u64,
) -> Result<String, DirectoryError> {
    if st.org_aliases.contains_key(&name_key(alias)) {
        return Err(DirectoryError::NameAvailability(format!(
            "organization alias {alias} is taken"
        )));
    }
    if st.domains.contains_key(domain) {
        return Err(DirectoryError::MailDomainInUse(format!(
            "{domain} belongs to another organization"
        )));
    }
    let mut id = ids::new_org_id();
    while st.orgs.contains_key(&id) {
        id = ids::new_org_id();
    }
    tx.insert_org(Organization {
        id: id.clone(),
        alias: alias.to_string(),
        state: OrganizationState::Active,
        default_mail_domain: domain.to_string(),
        mail_domains: vec![domain.to_string()],
        created: now,
        inbound_dmarc_enforced: true,
    });
    Ok(id)
}

//! Users: CreateUser, DescribeUser, ListUsers, UpdateUser, DeleteUser,
//! ResetPassword and the mailbox quota. Password hashing happens before the
//! write lock is taken, so a slow argon2 run never blocks lookups.

use super::entity::{Entity, require_live};
use super::error::DirectoryError;
use super::ids;
use super::lifecycle::tombstone;
use super::model::{
    ContactDetails, DEFAULT_QUOTA_MB, EntityBase, EntityKind, NewUser, User, UserRole, UserUpdate,
};
use super::password::{self, PhcString};
use super::service::Directory;
use super::validate;
use crate::clock::now_ms_u64 as now_ms;

impl Directory {
    /// CreateUser: a new DISABLED user (RegisterToWorkMail enables it). Returns
    /// its UUID. The name must be free among the organization's users
    /// (NameAvailability) and not reserved (ReservedName); a given password must
    /// meet the policy (InvalidPassword).
    pub fn create_user(&self, org_id: &str, new: NewUser<'_>) -> Result<String, DirectoryError> {
        validate::user_name(new.name)?;
        validate::not_reserved(new.name)?;
        validate::attribute("DisplayName", new.display_name)?;
        if let Some(f) = new.first_name {
            validate::attribute("FirstName", f)?;
        }
        if let Some(l) = new.last_name {
            validate::attribute("LastName", l)?;
        }
        let role = settable_role(new.role.unwrap_or(UserRole::User))?;
        {
            // Refuse cheaply before paying for a hash.
            let st = self.read();
            st.active_org(org_id)?;
            st.name_free(org_id, EntityKind::User, new.name, None)?;
        }
        let hash = match new.password {
            Some(p) => {
                password::check_password_policy(p)?;
                Some(PhcString::new(password::hash_password(p)?))
            }
            None => None,
        };
        let now = now_ms();
        self.mutate(|st, tx| {
            st.active_org(org_id)?;
            st.name_free(org_id, EntityKind::User, new.name, None)?;
            let id = st.fresh_id(ids::new_entity_uuid);
            tx.insert(User {
                base: EntityBase::new(id.clone(), org_id, new.name, new.hidden_from_gal, now),
                display_name: new.display_name.to_string(),
                first_name: non_empty(new.first_name),
                last_name: non_empty(new.last_name),
                role,
                password_hash: hash.clone(),
                credential_epoch: 0,
                mailbox_quota_mb: DEFAULT_QUOTA_MB,
                contact: ContactDetails::default(),
                permissions: Vec::new(),
            });
            Ok(id)
        })
    }

    /// DescribeUser by id, name or email. A deleted user is found by id only,
    /// with state DELETED.
    pub fn describe_user(&self, org_id: &str, user: &str) -> Result<User, DirectoryError> {
        let st = self.read();
        let id = st.resolve_one::<User>(org_id, user)?;
        st.get::<User>(org_id, &id)
            .cloned()
            .ok_or_else(|| DirectoryError::EntityNotFound(user.to_string()))
    }

    /// ListUsers: every user that is not deleted, sorted by id.
    pub fn list_users(&self, org_id: &str) -> Result<Vec<User>, DirectoryError> {
        self.with_users(org_id, |users| users.cloned().collect())
    }

    /// Lends the users that are not deleted, sorted by id, to `f` under the read
    /// lock: a page of ListUsers over 10,000 users then clones one page, not all.
    pub fn with_users<R>(
        &self,
        org_id: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = &User>) -> R,
    ) -> Result<R, DirectoryError> {
        let st = self.read();
        let od = st.active_org(org_id)?;
        Ok(f(&mut od.users.values().filter(|u| !u.base.is_deleted())))
    }

    /// UpdateUser: changes the given attributes. A role change bumps the
    /// credential epoch (a REMOTE_USER cannot log in).
    pub fn update_user(
        &self,
        org_id: &str,
        user: &str,
        update: UserUpdate,
    ) -> Result<(), DirectoryError> {
        if let Some(r) = update.role {
            settable_role(r)?;
        }
        for (field, v) in [
            ("DisplayName", &update.display_name),
            ("FirstName", &update.first_name),
            ("LastName", &update.last_name),
        ] {
            if let Some(v) = v {
                validate::attribute(field, v)?;
            }
        }
        for (field, v) in contact_fields(&update.contact) {
            if let Some(v) = v {
                validate::attribute(field, v)?;
            }
        }
        self.mutate(|st, tx| {
            let id = st.resolve_one::<User>(org_id, user)?;
            let u = tx.touch::<User>(st, org_id, &id)?;
            require_live(&u.base)?;
            if let Some(role) = update.role
                && role != u.role
            {
                u.role = role;
                u.revoke_credentials();
            }
            if let Some(d) = &update.display_name {
                u.display_name = d.clone();
            }
            if let Some(f) = &update.first_name {
                u.first_name = non_empty(Some(f));
            }
            if let Some(l) = &update.last_name {
                u.last_name = non_empty(Some(l));
            }
            if let Some(h) = update.hidden_from_gal {
                u.base.hidden_from_gal = h;
            }
            merge_contact(&mut u.contact, &update.contact);
            Ok(())
        })
    }

    /// DeleteUser: the user must be DISABLED (EntityState otherwise). Frees its
    /// name and addresses, removes it from groups, delegates and grants, and
    /// keeps a tombstone so its id is never reused and live sessions see DELETED.
    /// Its personal access tokens are deleted with it.
    pub fn delete_user(&self, org_id: &str, user: &str) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let id = st.resolve_one::<User>(org_id, user)?;
            tombstone::<User>(st, tx, org_id, &id)?;
            super::pats::drop_user_tokens(st, tx, &id);
            Ok(())
        })
    }

    /// ResetPassword: checks the policy, stores a new argon2id hash and bumps
    /// the credential epoch so sessions opened with the old password end.
    pub fn reset_password(
        &self,
        org_id: &str,
        user: &str,
        new_password: &str,
    ) -> Result<(), DirectoryError> {
        password::check_password_policy(new_password)?;
        {
            let st = self.read();
            let id = st.resolve_one::<User>(org_id, user)?;
            if let Some(u) = st.get::<User>(org_id, &id) {
                require_live(&u.base)?;
            }
        }
        let hash = PhcString::new(password::hash_password(new_password)?);
        self.mutate(|st, tx| {
            let id = st.resolve_one::<User>(org_id, user)?;
            let u = tx.touch::<User>(st, org_id, &id)?;
            require_live(&u.base)?;
            u.password_hash = Some(hash.clone());
            u.revoke_credentials();
            Ok(())
        })
    }

    /// UpdateMailboxQuota: 1–51,200 MB, for a live user with a mailbox.
    pub fn update_mailbox_quota(
        &self,
        org_id: &str,
        user: &str,
        quota_mb: u32,
    ) -> Result<(), DirectoryError> {
        validate::quota(quota_mb)?;
        self.mutate(|st, tx| {
            let id = st.resolve_one::<User>(org_id, user)?;
            let u = tx.touch::<User>(st, org_id, &id)?;
            require_live(&u.base)?;
            if u.role != UserRole::User {
                return Err(DirectoryError::InvalidParameter(format!(
                    "a {} has no mailbox",
                    u.role
                )));
            }
            u.mailbox_quota_mb = quota_mb;
            Ok(())
        })
    }

    /// The user's mailbox quota in MB (GetMailboxDetails' `MailboxQuota`).
    pub fn get_mailbox_quota(&self, org_id: &str, user: &str) -> Result<u32, DirectoryError> {
        let st = self.read();
        let id = st.resolve_one::<User>(org_id, user)?;
        st.get::<User>(org_id, &id)
            .filter(|u| !u.base.is_deleted())
            .map(|u| u.mailbox_quota_mb)
            .ok_or_else(|| DirectoryError::EntityNotFound(format!("no mailbox for {user}")))
    }

    /// The quota a mailbox is created with, in bytes: the directory's figure, or
    /// the default for a mailbox it has none for (a resource's).
    pub fn mailbox_quota_bytes(&self, org_id: &str, mailbox: &str) -> u64 {
        let mb = self
            .get_mailbox_quota(org_id, mailbox)
            .unwrap_or(super::DEFAULT_QUOTA_MB);
        u64::from(mb) * 1024 * 1024
    }
}

/// Only USER and REMOTE_USER can be set through the API.
fn settable_role(role: UserRole) -> Result<UserRole, DirectoryError> {
    match role {
        UserRole::User | UserRole::RemoteUser => Ok(role),
        other => Err(DirectoryError::InvalidParameter(format!(
            "role {other} cannot be set"
        ))),
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|v| !v.is_empty()).map(str::to_string)
}

fn contact_fields(c: &ContactDetails) -> [(&'static str, &Option<String>); 10] {
    [
        ("Initials", &c.initials),
        ("Telephone", &c.telephone),
        ("Street", &c.street),
        ("JobTitle", &c.job_title),
        ("City", &c.city),
        ("Company", &c.company),
        ("ZipCode", &c.zip_code),
        ("Department", &c.department),
        ("Country", &c.country),
        ("Office", &c.office),
    ]
}

/// Each `Some` in `update` replaces the stored value; `Some("")` clears it.
fn merge_contact(stored: &mut ContactDetails, update: &ContactDetails) {
    let pairs: [(&mut Option<String>, &Option<String>); 10] = [
        (&mut stored.initials, &update.initials),
        (&mut stored.telephone, &update.telephone),
        (&mut stored.street, &update.street),
        (&mut stored.job_title, &update.job_title),
        (&mut stored.city, &update.city),
        (&mut stored.company, &update.company),
        (&mut stored.zip_code, &update.zip_code),
        (&mut stored.department, &update.department),
        (&mut stored.country, &update.country),
        (&mut stored.office, &update.office),
    ];
    for (dst, src) in pairs {
        if let Some(v) = src {
            *dst = non_empty(Some(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_and_remote_user_are_settable() {
        assert_eq!(settable_role(UserRole::User), Ok(UserRole::User));
        assert_eq!(
            settable_role(UserRole::RemoteUser),
            Ok(UserRole::RemoteUser)
        );
        assert!(settable_role(UserRole::Resource).is_err());
        assert!(settable_role(UserRole::SystemUser).is_err());
    }

    #[test]
    fn contact_merge_sets_and_clears() {
        let mut c = ContactDetails {
            city: Some("Oslo".into()),
            office: Some("4F".into()),
            ..Default::default()
        };
        let u = ContactDetails {
            city: Some(String::new()),
            company: Some("Acme".into()),
            ..Default::default()
        };
        merge_contact(&mut c, &u);
        assert_eq!(c.city, None);
        assert_eq!(c.company.as_deref(), Some("Acme"));
        assert_eq!(c.office.as_deref(), Some("4F"));
    }
}

//! Hot-path lookups for the protocol modules: read lock only, hash-map hits,
//! no serialisation. Each answers "no" (None, empty, `No`) rather than an error,
//! because protocols map every miss to the same refusal.

use super::model::{EntityKind, EntityState, MemberType, Permission, User, UserRole};
use super::password::{PhcString, verify_dummy, verify_password};
use super::service::Directory;
use super::state::{State, addr_key};

/// Who receives mail sent to an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A user (a REMOTE_USER too: delivery decides what to do with one).
    User {
        /// Organization id.
        org: String,
        /// User id.
        id: String,
    },
    /// A group: expand it with [`Directory::expand_recipients`].
    Group {
        /// Organization id.
        org: String,
        /// Group id.
        id: String,
    },
    /// A resource mailbox.
    Resource {
        /// Organization id.
        org: String,
        /// Resource id.
        id: String,
    },
}

/// What a login name resolves to: enough for the caller to verify the password
/// and decide, without holding the directory lock during argon2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCandidate {
    /// User id.
    pub user_id: String,
    /// Organization id.
    pub org_id: String,
    /// ENABLED or DISABLED (a DISABLED user must be refused after the hash check).
    pub state: EntityState,
    /// The stored hash; `None` when the user has no password.
    pub password_hash: Option<PhcString>,
    /// Credential epoch at lookup time, to store in the session.
    pub credential_epoch: u64,
}

impl LoginCandidate {
    /// Checks a password against the stored hash, spending the same time as a
    /// real check when the user has no password (and then answering `false`).
    /// Runs argon2: call it outside any lock, on a blocking thread.
    pub fn verify(&self, password: &str) -> bool {
        match &self.password_hash {
            Some(h) => verify_password(h.as_str(), password),
            None => verify_dummy(password),
        }
    }
}

/// A user's rights on a mailbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Read and write the whole mailbox.
    pub full_access: bool,
    /// Send as the owner.
    pub send_as: bool,
    /// Send on behalf of the owner.
    pub send_on_behalf: bool,
}

impl Rights {
    /// Every right: what an owner has on its own mailbox.
    pub const ALL: Rights = Rights {
        full_access: true,
        send_as: true,
        send_on_behalf: true,
    };

    /// No right.
    pub const NONE: Rights = Rights {
        full_access: false,
        send_as: false,
        send_on_behalf: false,
    };
}

impl Directory {
    /// The ENABLED user, group or resource (in an Active organization) that owns
    /// an address, primary or alias, compared case-insensitively.
    pub fn resolve_address(&self, address: &str) -> Option<Recipient> {
        let st = self.read();
        let owner = st.addresses.get(addr_key(address).as_ref())?;
        let od = st.active_org(&owner.org).ok()?;
        let (org, id) = (owner.org.clone(), owner.id.clone());
        match owner.kind {
            EntityKind::User => {
                let u = od.users.get(&owner.id)?;
                (u.base.state == EntityState::Enabled).then_some(Recipient::User { org, id })
            }
            EntityKind::Group => {
                let g = od.groups.get(&owner.id)?;
                (g.base.state == EntityState::Enabled).then_some(Recipient::Group { org, id })
            }
            EntityKind::Resource => {
                let r = od.resources.get(&owner.id)?;
                (r.base.state == EntityState::Enabled).then_some(Recipient::Resource { org, id })
            }
        }
    }

    /// Who gets `postmaster@domain` when the organization has not made it an address
    /// of its own (an alias, user or group named so always wins, through
    /// [`Self::resolve_address`]): RFC 5321 4.5.1 requires every served domain to
    /// accept it. WorkMail has no administrator account in the directory, so it is the
    /// organization's first enabled mailbox user, by creation.
    pub fn default_postmaster(&self, domain: &str) -> Option<Recipient> {
        let org = self.domain_owner(domain)?;
        let st = self.read();
        let od = st.active_org(&org).ok()?;
        od.users
            .values()
            .filter(|u| {
                u.role == UserRole::User
                    && u.base.state == EntityState::Enabled
                    && u.base.email.is_some()
            })
            .min_by(|a, b| (a.base.created, &a.base.id).cmp(&(b.base.created, &b.base.id)))
            .map(|u| Recipient::User {
                org: org.clone(),
                id: u.base.id.clone(),
            })
    }

    /// The organization whose registered mail domain this is (case-insensitive), so
    /// SMTP can tell "unknown user here" (550 5.1.1) from "not our domain" (relay).
    pub fn domain_owner(&self, domain: &str) -> Option<String> {
        let st = self.read();
        let org = st
            .domains
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())?;
        st.active_org(org).ok().map(|_| org.clone())
    }

    /// The users mail to a group reaches: ENABLED mailbox users, through ENABLED
    /// nested groups, deduplicated, sorted by id; empty for an unknown or
    /// disabled group. Cycle-safe even on hand-edited data.
    pub fn expand_recipients(&self, org_id: &str, group_id: &str) -> Vec<String> {
        let st = self.read();
        match st.active_org(org_id) {
            Ok(od) => st.expand_group(od, group_id),
            Err(_) => Vec::new(),
        }
    }

    /// Finds a mailbox user by primary address or alias (case-insensitive) for
    /// IMAP/SMTP/EWS login. REMOTE_USERs (no mailbox) and deleted users are not
    /// found; DISABLED users are, so the caller can log the precise reason.
    pub fn login_lookup(&self, login: &str) -> Option<LoginCandidate> {
        let st = self.read();
        let owner = st.addresses.get(addr_key(login).as_ref())?;
        if owner.kind != EntityKind::User {
            return None;
        }
        let od = st.active_org(&owner.org).ok()?;
        let u = od.users.get(&owner.id)?;
        if u.role != UserRole::User || u.base.is_deleted() {
            return None;
        }
        Some(LoginCandidate {
            user_id: u.base.id.clone(),
            org_id: u.base.org_id.clone(),
            state: u.base.state,
            password_hash: u.password_hash.clone(),
            credential_epoch: u.credential_epoch,
        })
    }

    /// The rights of a user on a user's or resource's mailbox: all of them on
    /// its own; otherwise the union of grants to the user and to ENABLED groups
    /// containing it (nested). Nothing when either side is not ENABLED.
    pub fn mailbox_rights(
        &self,
        org_id: &str,
        grantee_user_id: &str,
        owner_entity_id: &str,
    ) -> Rights {
        self.read().rights(org_id, grantee_user_id, owner_entity_id)
    }

    /// The mailbox that owns an address a user wants to send from, and the user's
    /// grants on it (all of them for the user's own addresses), for `access::mailbox`
    /// to decide on. `None` when nothing could let the user send from it: an unknown
    /// or group address, another organization's, or a user who is not enabled.
    pub fn sender_grants(
        &self,
        org_id: &str,
        user_id: &str,
        address: &str,
    ) -> Option<(String, Rights)> {
        let st = self.read();
        let owner = st.addresses.get(addr_key(address).as_ref())?;
        if owner.org != org_id || owner.kind == EntityKind::Group {
            return None;
        }
        st.get::<User>(org_id, user_id)
            .filter(|u| u.base.state == EntityState::Enabled)?;
        let rights = if owner.id == user_id {
            Rights::ALL
        } else {
            st.rights(org_id, user_id, &owner.id)
        };
        Some((owner.id.clone(), rights))
    }

    /// A user's state and credential epoch, for live sessions to compare with
    /// what they saw at login. `None` for an unknown id.
    pub fn user_epoch(&self, user_id: &str) -> Option<(EntityState, u64)> {
        let st = self.read();
        let (kind, org) = st.entities.get(user_id)?;
        if *kind != EntityKind::User {
            return None;
        }
        st.get::<User>(org, user_id)
            .map(|u| (u.base.state, u.credential_epoch))
    }
}

impl State {
    /// See [`Directory::mailbox_rights`].
    pub(crate) fn rights(&self, org_id: &str, user_id: &str, owner_id: &str) -> Rights {
        let Ok(od) = self.active_org(org_id) else {
            return Rights::NONE;
        };
        let user_ok = od
            .users
            .get(user_id)
            .is_some_and(|u| u.base.state == EntityState::Enabled);
        if !user_ok {
            return Rights::NONE;
        }
        let grants = if let Some(o) = od.users.get(owner_id) {
            if o.base.state != EntityState::Enabled {
                return Rights::NONE;
            }
            if owner_id == user_id {
                return Rights::ALL;
            }
            &o.permissions
        } else if let Some(r) = od.resources.get(owner_id) {
            if r.base.state != EntityState::Enabled {
                return Rights::NONE;
            }
            &r.permissions
        } else {
            return Rights::NONE;
        };
        let mut out = Rights::NONE;
        for g in grants {
            let applies = match g.grantee_type {
                MemberType::User => g.grantee_id == user_id,
                MemberType::Group => self.user_in_group(od, &g.grantee_id, user_id),
            };
            if applies {
                for p in &g.values {
                    match p {
                        Permission::FullAccess => out.full_access = true,
                        Permission::SendAs => out.send_as = true,
                        Permission::SendOnBehalf => out.send_on_behalf = true,
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_constants_and_passwordless_candidates() {
        assert_eq!(Rights::default(), Rights::NONE);
        assert_ne!(Rights::ALL, Rights::NONE);
        let c = LoginCandidate {
            user_id: "u".into(),
            org_id: "m".into(),
            state: EntityState::Enabled,
            password_hash: None,
            credential_epoch: 0,
        };
        assert!(!c.verify(""));
    }
}

//! Groups and membership (reference §3.6). Members are users or groups;
//! nesting is allowed, cycles are refused (InvalidParameter) so that expansion
//! always terminates on well-formed data.

use std::collections::HashSet;

use super::entity::{require_enabled, require_live};
use super::error::DirectoryError;
use super::ids;
use super::lifecycle::tombstone;
use super::model::{
    EntityBase, EntityKind, EntityState, Group, GroupMember, MemberRef, MemberType, User, UserRole,
};
use super::resolve::USER_OR_GROUP;
use super::service::Directory;
use super::state::{OrgData, State};
use super::validate;
use crate::clock::now_ms_u64 as now_ms;

impl Directory {
    /// CreateGroup: a new DISABLED group. Returns its UUID.
    pub fn create_group(
        &self,
        org_id: &str,
        name: &str,
        hidden_from_gal: bool,
    ) -> Result<String, DirectoryError> {
        validate::group_name(name)?;
        validate::not_reserved(name)?;
        let now = now_ms();
        self.mutate(|st, tx| {
            st.active_org(org_id)?;
            st.name_free(org_id, EntityKind::Group, name, None)?;
            let id = st.fresh_id(ids::new_entity_uuid);
            tx.insert(Group {
                base: EntityBase::new(id.clone(), org_id, name, hidden_from_gal, now),
                members: Vec::new(),
            });
            Ok(id)
        })
    }

    /// DescribeGroup by id, name or email (a deleted group by id only).
    pub fn describe_group(&self, org_id: &str, group: &str) -> Result<Group, DirectoryError> {
        let st = self.read();
        let id = st.resolve_one::<Group>(org_id, group)?;
        st.get::<Group>(org_id, &id)
            .cloned()
            .ok_or_else(|| DirectoryError::EntityNotFound(group.to_string()))
    }

    /// ListGroups: every group that is not deleted, sorted by id.
    pub fn list_groups(&self, org_id: &str) -> Result<Vec<Group>, DirectoryError> {
        let st = self.read();
        let od = st.active_org(org_id)?;
        Ok(od
            .groups
            .values()
            .filter(|g| !g.base.is_deleted())
            .cloned()
            .collect())
    }

    /// UpdateGroup: today only the GAL visibility.
    pub fn update_group(
        &self,
        org_id: &str,
        group: &str,
        hidden_from_gal: Option<bool>,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let id = st.resolve_one::<Group>(org_id, group)?;
            let g = tx.touch::<Group>(st, org_id, &id)?;
            require_live(&g.base)?;
            if let Some(h) = hidden_from_gal {
                g.base.hidden_from_gal = h;
            }
            Ok(())
        })
    }

    /// DeleteGroup: the group must be DISABLED. It leaves every group it was
    /// in, every resource it was a delegate of, and every grant it held.
    pub fn delete_group(&self, org_id: &str, group: &str) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let id = st.resolve_one::<Group>(org_id, group)?;
            tombstone::<Group>(st, tx, org_id, &id)
        })
    }

    /// AssociateMemberToGroup: adds an ENABLED user or group to a live group
    /// (no-op if already a member). A group that would contain itself, directly
    /// or through nesting, is refused with InvalidParameter.
    pub fn associate_member_to_group(
        &self,
        org_id: &str,
        group: &str,
        member: &str,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let gid = st.resolve_one::<Group>(org_id, group)?;
            let m = st.resolve(org_id, member, USER_OR_GROUP)?;
            let od = st.active_org(org_id)?;
            let g = od
                .groups
                .get(&gid)
                .ok_or_else(|| DirectoryError::EntityNotFound(gid.clone()))?;
            require_live(&g.base)?;
            let kind = match m.kind {
                EntityKind::Group => {
                    let mg = od
                        .groups
                        .get(&m.id)
                        .ok_or_else(|| DirectoryError::EntityNotFound(m.id.clone()))?;
                    require_enabled(&mg.base)?;
                    if m.id == gid || contains_group(od, &m.id, &gid) {
                        return Err(DirectoryError::InvalidParameter(format!(
                            "adding {} to {gid} would make a group contain itself",
                            m.id
                        )));
                    }
                    MemberType::Group
                }
                _ => {
                    let mu = od
                        .users
                        .get(&m.id)
                        .ok_or_else(|| DirectoryError::EntityNotFound(m.id.clone()))?;
                    require_enabled(&mu.base)?;
                    MemberType::User
                }
            };
            let g = tx.touch::<Group>(st, org_id, &gid)?;
            if !g.members.iter().any(|x| x.id == m.id) {
                g.members.push(MemberRef { id: m.id, kind });
                g.members.sort();
            }
            Ok(())
        })
    }

    /// DisassociateMemberFromGroup: removes a member (no-op if not a member).
    pub fn disassociate_member_from_group(
        &self,
        org_id: &str,
        group: &str,
        member: &str,
    ) -> Result<(), DirectoryError> {
        self.mutate(|st, tx| {
            let gid = st.resolve_one::<Group>(org_id, group)?;
            let m = st.resolve(org_id, member, USER_OR_GROUP)?;
            let g = tx.touch::<Group>(st, org_id, &gid)?;
            require_live(&g.base)?;
            g.members.retain(|x| x.id != m.id);
            Ok(())
        })
    }

    /// ListGroupMembers: direct members with their names and states, sorted by id.
    pub fn list_group_members(
        &self,
        org_id: &str,
        group: &str,
    ) -> Result<Vec<GroupMember>, DirectoryError> {
        let st = self.read();
        let gid = st.resolve_one::<Group>(org_id, group)?;
        let od = st.active_org(org_id)?;
        let g = od
            .groups
            .get(&gid)
            .ok_or_else(|| DirectoryError::EntityNotFound(gid.clone()))?;
        require_live(&g.base)?;
        Ok(g.members
            .iter()
            .filter_map(|m| {
                let b = match m.kind {
                    MemberType::User => od.users.get(&m.id).map(|u| &u.base),
                    MemberType::Group => od.groups.get(&m.id).map(|g| &g.base),
                }?;
                Some(GroupMember {
                    id: m.id.clone(),
                    name: b.name.clone(),
                    kind: m.kind,
                    state: b.state,
                    enabled_date: b.enabled_date,
                    disabled_date: b.disabled_date,
                })
            })
            .collect())
    }

    /// ListGroupsForEntity: the live groups a user or group is a direct member of, sorted by id.
    pub fn list_groups_for_entity(
        &self,
        org_id: &str,
        entity: &str,
    ) -> Result<Vec<Group>, DirectoryError> {
        let st = self.read();
        let r = st.resolve(org_id, entity, USER_OR_GROUP)?;
        let od = st.active_org(org_id)?;
        let live = match r.kind {
            EntityKind::Group => od.groups.get(&r.id).map(|g| &g.base),
            _ => od.users.get(&r.id).map(|u| &u.base),
        };
        if let Some(b) = live {
            require_live(b)?;
        }
        Ok(od
            .groups
            .values()
            .filter(|g| !g.base.is_deleted() && g.members.iter().any(|m| m.id == r.id))
            .cloned()
            .collect())
    }
}

/// Whether `target` is reachable from `from` through member groups (any state).
pub(crate) fn contains_group(od: &OrgData, from: &str, target: &str) -> bool {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack = vec![from];
    while let Some(gid) = stack.pop() {
        if !seen.insert(gid) {
            continue;
        }
        let Some(g) = od.groups.get(gid) else {
            continue;
        };
        for m in &g.members {
            if m.kind == MemberType::Group {
                if m.id == target {
                    return true;
                }
                stack.push(&m.id);
            }
        }
    }
    false
}

impl State {
    /// Whether the ENABLED user is in the ENABLED group, directly or through
    /// ENABLED nested groups. A disabled group passes on nothing: neither mail
    /// nor permissions.
    pub(crate) fn user_in_group(&self, od: &OrgData, group_id: &str, user_id: &str) -> bool {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![group_id];
        while let Some(gid) = stack.pop() {
            if !seen.insert(gid) {
                continue;
            }
            let Some(g) = od.groups.get(gid) else {
                continue;
            };
            if g.base.state != EntityState::Enabled {
                continue;
            }
            for m in &g.members {
                match m.kind {
                    MemberType::User if m.id == user_id => return true,
                    MemberType::User => {}
                    MemberType::Group => stack.push(&m.id),
                }
            }
        }
        false
    }

    /// The ENABLED mailbox users in an ENABLED group, expanded through ENABLED
    /// nested groups, deduplicated and sorted by id. Cycle-safe.
    pub(crate) fn expand_group(&self, od: &OrgData, group_id: &str) -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut users: Vec<&str> = Vec::new();
        let mut stack = vec![group_id];
        while let Some(gid) = stack.pop() {
            if !seen.insert(gid) {
                continue;
            }
            let Some(g) = od.groups.get(gid) else {
                continue;
            };
            if g.base.state != EntityState::Enabled {
                continue;
            }
            for m in &g.members {
                match m.kind {
                    MemberType::Group => stack.push(&m.id),
                    MemberType::User => {
                        if od.users.get(&m.id).is_some_and(is_mail_user) {
                            users.push(&m.id);
                        }
                    }
                }
            }
        }
        users.sort_unstable();
        users.dedup();
        users.into_iter().map(str::to_string).collect()
    }
}

/// An ENABLED user with a mailbox here (REMOTE_USERs have none).
pub(crate) fn is_mail_user(u: &User) -> bool {
    u.base.state == EntityState::Enabled && u.role == UserRole::User
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::{Organization, OrganizationState};

    fn enabled_group(id: &str, members: &[(&str, MemberType)]) -> Group {
        let mut base = EntityBase::new(id.into(), "m-a", id, false, 0);
        base.state = EntityState::Enabled;
        Group {
            base,
            members: members
                .iter()
                .map(|(m, k)| MemberRef {
                    id: (*m).into(),
                    kind: *k,
                })
                .collect(),
        }
    }

    fn enabled_user(id: &str) -> User {
        let mut base = EntityBase::new(id.into(), "m-a", id, false, 0);
        base.state = EntityState::Enabled;
        User {
            base,
            display_name: String::new(),
            first_name: None,
            last_name: None,
            role: UserRole::User,
            password_hash: None,
            credential_epoch: 0,
            mailbox_quota_mb: 1,
            contact: Default::default(),
            permissions: Vec::new(),
        }
    }

    /// Stored data with a cycle (a -> b -> a), as a hand-edited store could hold.
    fn cyclic() -> State {
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
        st.put(enabled_user("u1"));
        st.put(enabled_user("u2"));
        st.put(enabled_group(
            "a",
            &[("b", MemberType::Group), ("u1", MemberType::User)],
        ));
        st.put(enabled_group(
            "b",
            &[
                ("a", MemberType::Group),
                ("u2", MemberType::User),
                ("u1", MemberType::User),
            ],
        ));
        st
    }

    #[test]
    fn traversals_terminate_on_cyclic_data() {
        let st = cyclic();
        let Some(od) = st.orgs.get("m-a") else {
            panic!("org missing");
        };
        assert_eq!(
            st.expand_group(od, "a"),
            vec!["u1".to_string(), "u2".to_string()]
        );
        assert!(st.user_in_group(od, "a", "u2"));
        assert!(!st.user_in_group(od, "a", "u3"));
        assert!(contains_group(od, "a", "b"));
        assert!(contains_group(od, "a", "a"), "a reaches itself through b");
        assert!(!contains_group(od, "a", "c"));
    }
}

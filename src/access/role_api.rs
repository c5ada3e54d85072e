//! WorkMail's impersonation role operations on the engine: Create, Get, Update, Delete,
//! List and GetImpersonationRoleEffect.

use super::engine::{AccessEngine, Change};
use super::error::AccessError;
use super::roles::{
    ImpersonationRole, ImpersonationRoleInput, ImpersonationRoleSummary, Role, RoleEffect,
    UserResolver, resolve_targets, validate_input,
};
use super::validate;

fn role_not_found() -> AccessError {
    AccessError::ResourceNotFound("impersonation role not found".into())
}

impl AccessEngine {
    /// CreateImpersonationRole: returns the new role's id (lowercase UUIDv4). A repeated
    /// `client_token` returns the id of the role it created, whatever the body, without
    /// creating another. Target users are resolved now; unknown ones are EntityNotFound.
    pub fn create_impersonation_role(
        &self,
        org: &str,
        input: ImpersonationRoleInput,
        client_token: Option<&str>,
        resolver: &dyn UserResolver,
        now_ms: u64,
    ) -> Result<String, AccessError> {
        if let Some(token) = client_token {
            validate::client_token(token)?;
        }
        let replay = |state: &super::engine::OrgState| {
            client_token.and_then(|t| state.client_tokens.get(t).cloned())
        };
        if let Some(id) = replay(self.org(org)?.as_ref()) {
            return Ok(id);
        }
        validate_input(&input)?;
        let targets = resolve_targets(org, &input.rules, resolver)?;
        let limit = self.limits().max_roles_per_org;
        self.mutate(org, |state| {
            // A concurrent retry with the same token may have won the race.
            if let Some(id) = replay(state) {
                return Ok(Change::Unchanged(id));
            }
            if state.roles.len() >= limit {
                return Err(AccessError::LimitExceeded(format!(
                    "an organization may have at most {limit} impersonation roles"
                )));
            }
            let id = uuid::Uuid::new_v4().hyphenated().to_string();
            let role = Role::from_parts(
                ImpersonationRole {
                    impersonation_role_id: id.clone(),
                    name: input.name.clone(),
                    role_type: input.role_type,
                    description: input.description.clone(),
                    rules: input.rules.clone(),
                    date_created: now_ms,
                    date_modified: now_ms,
                    version: 1,
                },
                targets.clone(),
            )?;
            state.roles.push(role);
            if let Some(token) = client_token {
                state.client_tokens.insert(token.to_owned(), id.clone());
            }
            Ok(Change::Changed(id))
        })
    }

    /// GetImpersonationRole: the role with its rules as they were given.
    pub fn get_impersonation_role(
        &self,
        org: &str,
        role_id: &str,
    ) -> Result<ImpersonationRole, AccessError> {
        self.org(org)?
            .role(role_id)
            .map(|r| r.definition().clone())
            .ok_or_else(role_not_found)
    }

    /// UpdateImpersonationRole: replaces name, type, description and rules, bumps the
    /// version (invalidating tokens issued before) and DateModified.
    pub fn update_impersonation_role(
        &self,
        org: &str,
        role_id: &str,
        input: ImpersonationRoleInput,
        resolver: &dyn UserResolver,
        now_ms: u64,
    ) -> Result<(), AccessError> {
        validate_input(&input)?;
        if self.org(org)?.role(role_id).is_none() {
            return Err(role_not_found());
        }
        let targets = resolve_targets(org, &input.rules, resolver)?;
        self.mutate(org, |state| {
            let slot = state
                .roles
                .iter_mut()
                .find(|r| r.id() == role_id)
                .ok_or_else(role_not_found)?;
            let old = slot.definition();
            *slot = Role::from_parts(
                ImpersonationRole {
                    impersonation_role_id: old.impersonation_role_id.clone(),
                    name: input.name.clone(),
                    role_type: input.role_type,
                    description: input.description.clone(),
                    rules: input.rules.clone(),
                    date_created: old.date_created,
                    date_modified: now_ms,
                    version: old.version.saturating_add(1),
                },
                targets.clone(),
            )?;
            Ok(Change::Changed(()))
        })
    }

    /// DeleteImpersonationRole: deleting an unknown role succeeds and changes nothing.
    /// Tokens of a deleted role stop verifying at once.
    pub fn delete_impersonation_role(&self, org: &str, role_id: &str) -> Result<(), AccessError> {
        self.mutate(org, |state| {
            let before = state.roles.len();
            state.roles.retain(|r| r.id() != role_id);
            if state.roles.len() == before {
                return Ok(Change::Unchanged(()));
            }
            state.client_tokens.retain(|_, id| id != role_id);
            Ok(Change::Changed(()))
        })
    }

    /// ListImpersonationRoles, in creation order (all of them: the per-organization
    /// limit keeps the list short; the admin API pages it).
    pub fn list_impersonation_roles(
        &self,
        org: &str,
    ) -> Result<Vec<ImpersonationRoleSummary>, AccessError> {
        Ok(self.org(org)?.roles.iter().map(Role::summary).collect())
    }

    /// GetImpersonationRoleEffect: may the role impersonate this user (id, name or
    /// email)? Unknown role: ResourceNotFound; unknown user: EntityNotFound; disabled
    /// user: EntityState.
    pub fn get_impersonation_role_effect(
        &self,
        org: &str,
        role_id: &str,
        target_user: &str,
        resolver: &dyn UserResolver,
    ) -> Result<RoleEffect, AccessError> {
        validate::entity_identifier("TargetUser", target_user)?;
        let state = self.org(org)?;
        let role = state.role(role_id).ok_or_else(role_not_found)?;
        role_effect(org, role, target_user, resolver)
    }
}

/// Resolves the target and applies the role's rules; shared by the test API and by
/// per-request EWS authorization so both give the same answer.
pub(super) fn role_effect(
    org: &str,
    role: &Role,
    target_user: &str,
    resolver: &dyn UserResolver,
) -> Result<RoleEffect, AccessError> {
    let user = resolver
        .resolve_user(org, target_user)
        .ok_or_else(|| AccessError::EntityNotFound("target user not found".into()))?;
    if !user.enabled {
        return Err(AccessError::EntityState("target user is disabled".into()));
    }
    Ok(role.evaluate(&user.id))
}

//! Impersonation roles: Create/Get/Update/Delete/List, Assume, GetImpersonationRoleEffect.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, page};
use crate::access::{
    AssumedRole, ImpersonationRoleInput, ImpersonationRoleSummary, ImpersonationRule, RoleEffect,
    RoleType,
};
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, secs};
use crate::clock::now_ms_u64 as now_ms;

/// An organization plus a role id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgRole {
    organization_id: String,
    impersonation_role_id: String,
}

/// CreateImpersonationRole input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    organization_id: String,
    client_token: Option<String>,
    name: String,
    #[serde(rename = "Type")]
    role_type: RoleType,
    description: Option<String>,
    rules: Vec<ImpersonationRule>,
}

/// CreateImpersonationRole output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    impersonation_role_id: String,
}

/// CreateImpersonationRole: target users are resolved through the directory now;
/// a repeated ClientToken returns the first role's id.
pub async fn create_impersonation_role(
    state: Arc<AdminState>,
    input: CreateIn,
) -> Result<CreateOut, ApiError> {
    state
        .blocking(move |s| {
            let id = s.access.create_impersonation_role(
                &input.organization_id,
                ImpersonationRoleInput {
                    name: input.name,
                    role_type: input.role_type,
                    description: input.description,
                    rules: input.rules,
                },
                input.client_token.as_deref(),
                &*s.directory,
                now_ms(),
            )?;
            Ok(CreateOut {
                impersonation_role_id: id,
            })
        })
        .await
}

/// GetImpersonationRole output (dates in epoch seconds).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetOut {
    impersonation_role_id: String,
    name: String,
    #[serde(rename = "Type")]
    role_type: RoleType,
    description: Option<String>,
    rules: Vec<ImpersonationRule>,
    date_created: f64,
    date_modified: f64,
}

/// GetImpersonationRole: ResourceNotFound for an unknown role.
pub async fn get_impersonation_role(
    state: Arc<AdminState>,
    input: OrgRole,
) -> Result<GetOut, ApiError> {
    let r = state
        .access
        .get_impersonation_role(&input.organization_id, &input.impersonation_role_id)?;
    Ok(GetOut {
        date_created: secs(r.date_created),
        date_modified: secs(r.date_modified),
        impersonation_role_id: r.impersonation_role_id,
        name: r.name,
        role_type: r.role_type,
        description: r.description,
        rules: r.rules,
    })
}

/// UpdateImpersonationRole input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateIn {
    organization_id: String,
    impersonation_role_id: String,
    name: String,
    #[serde(rename = "Type")]
    role_type: RoleType,
    description: Option<String>,
    rules: Vec<ImpersonationRule>,
}

/// UpdateImpersonationRole: replaces the role; tokens issued before stop working.
pub async fn update_impersonation_role(
    state: Arc<AdminState>,
    input: UpdateIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.access.update_impersonation_role(
            &input.organization_id,
            &input.impersonation_role_id,
            ImpersonationRoleInput {
                name: input.name,
                role_type: input.role_type,
                description: input.description,
                rules: input.rules,
            },
            &*s.directory,
            now_ms(),
        )
    })
    .await
}

/// DeleteImpersonationRole: an unknown role is a successful no-op.
pub async fn delete_impersonation_role(
    state: Arc<AdminState>,
    input: OrgRole,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.access
            .delete_impersonation_role(&input.organization_id, &input.impersonation_role_id)
    })
    .await
}

/// ListImpersonationRoles input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One role of ListImpersonationRoles.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleSummary {
    impersonation_role_id: String,
    name: String,
    #[serde(rename = "Type")]
    role_type: RoleType,
    date_created: f64,
    date_modified: f64,
}

impl From<ImpersonationRoleSummary> for RoleSummary {
    fn from(r: ImpersonationRoleSummary) -> RoleSummary {
        RoleSummary {
            date_created: secs(r.date_created),
            date_modified: secs(r.date_modified),
            impersonation_role_id: r.impersonation_role_id,
            name: r.name,
            role_type: r.role_type,
        }
    }
}

/// ListImpersonationRoles output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    roles: Vec<RoleSummary>,
    next_token: Option<String>,
}

/// ListImpersonationRoles, in creation order, paged.
pub async fn list_impersonation_roles(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    let all = state
        .access
        .list_impersonation_roles(&input.organization_id)?;
    let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
    Ok(ListOut {
        roles: items.into_iter().map(RoleSummary::from).collect(),
        next_token,
    })
}

/// AssumeImpersonationRole: a signed bearer token valid for 900 seconds.
pub async fn assume_impersonation_role(
    state: Arc<AdminState>,
    input: OrgRole,
) -> Result<AssumedRole, ApiError> {
    Ok(state.access.assume_impersonation_role(
        &input.organization_id,
        &input.impersonation_role_id,
        now_ms(),
    )?)
}

/// GetImpersonationRoleEffect input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EffectIn {
    organization_id: String,
    impersonation_role_id: String,
    target_user: String,
}

/// GetImpersonationRoleEffect: may the role act in that user's mailbox?
pub async fn get_impersonation_role_effect(
    state: Arc<AdminState>,
    input: EffectIn,
) -> Result<RoleEffect, ApiError> {
    state
        .blocking(move |s| {
            Ok(s.access.get_impersonation_role_effect(
                &input.organization_id,
                &input.impersonation_role_id,
                &input.target_user,
                &*s.directory,
            )?)
        })
        .await
}

//! Access control rules: Put, Delete, List, GetAccessControlEffect.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{OrgIn, apply};
use crate::access::{AccessControlRule, AccessControlRuleInput, Effect, Protocol};
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, secs};
use crate::clock::now_ms_u64 as now_ms;

/// PutAccessControlRule input (members spelled out rather than flattened, so a
/// mistyped member is named in the ValidationException).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutIn {
    organization_id: String,
    name: String,
    effect: Effect,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ip_ranges: Vec<String>,
    #[serde(default)]
    not_ip_ranges: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    not_actions: Vec<String>,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    not_user_ids: Vec<String>,
    #[serde(default)]
    impersonation_role_ids: Vec<String>,
    #[serde(default)]
    not_impersonation_role_ids: Vec<String>,
}

impl From<PutIn> for AccessControlRuleInput {
    fn from(i: PutIn) -> AccessControlRuleInput {
        AccessControlRuleInput {
            name: i.name,
            effect: i.effect,
            description: i.description,
            ip_ranges: i.ip_ranges,
            not_ip_ranges: i.not_ip_ranges,
            actions: i.actions,
            not_actions: i.not_actions,
            user_ids: i.user_ids,
            not_user_ids: i.not_user_ids,
            impersonation_role_ids: i.impersonation_role_ids,
            not_impersonation_role_ids: i.not_impersonation_role_ids,
        }
    }
}

/// PutAccessControlRule: creates, or replaces the rule of that name; the rule
/// count limit is LimitExceeded.
pub async fn put_access_control_rule(
    state: Arc<AdminState>,
    input: PutIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        let org = input.organization_id.clone();
        s.access
            .put_access_control_rule(&org, input.into(), now_ms())
    })
    .await
}

/// DeleteAccessControlRule input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteIn {
    organization_id: String,
    name: String,
}

/// DeleteAccessControlRule: an unknown name is a successful no-op.
pub async fn delete_access_control_rule(
    state: Arc<AdminState>,
    input: DeleteIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.access
            .delete_access_control_rule(&input.organization_id, &input.name)
    })
    .await
}

/// One rule as ListAccessControlRules returns it (dates in epoch seconds).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleOut {
    name: String,
    effect: Effect,
    description: String,
    ip_ranges: Vec<String>,
    not_ip_ranges: Vec<String>,
    actions: Vec<Protocol>,
    not_actions: Vec<Protocol>,
    user_ids: Vec<String>,
    not_user_ids: Vec<String>,
    impersonation_role_ids: Vec<String>,
    not_impersonation_role_ids: Vec<String>,
    date_created: f64,
    date_modified: f64,
}

impl From<AccessControlRule> for RuleOut {
    fn from(r: AccessControlRule) -> RuleOut {
        RuleOut {
            date_created: secs(r.date_created),
            date_modified: secs(r.date_modified),
            name: r.name,
            effect: r.effect,
            description: r.description,
            ip_ranges: r.ip_ranges,
            not_ip_ranges: r.not_ip_ranges,
            actions: r.actions,
            not_actions: r.not_actions,
            user_ids: r.user_ids,
            not_user_ids: r.not_user_ids,
            impersonation_role_ids: r.impersonation_role_ids,
            not_impersonation_role_ids: r.not_impersonation_role_ids,
        }
    }
}

/// ListAccessControlRules output (the model has no pagination here).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    rules: Vec<RuleOut>,
}

/// ListAccessControlRules, in rule order.
pub async fn list_access_control_rules(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<ListOut, ApiError> {
    let rules = state
        .access
        .list_access_control_rules(&input.organization_id)?;
    Ok(ListOut {
        rules: rules.into_iter().map(RuleOut::from).collect(),
    })
}

/// GetAccessControlEffect input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EffectIn {
    organization_id: String,
    ip_address: String,
    action: String,
    user_id: Option<String>,
    impersonation_role_id: Option<String>,
}

/// GetAccessControlEffect output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EffectOut {
    effect: Effect,
    matched_rules: Vec<String>,
}

/// GetAccessControlEffect: the live decision; an unknown UserId is EntityNotFound.
pub async fn get_access_control_effect(
    state: Arc<AdminState>,
    input: EffectIn,
) -> Result<EffectOut, ApiError> {
    state
        .blocking(move |s| {
            let org = &input.organization_id;
            if let Some(user) = &input.user_id {
                s.directory.describe_user(org, user)?;
            }
            let decision = s.access.get_access_control_effect(
                org,
                &input.ip_address,
                &input.action,
                input.user_id.as_deref(),
                input.impersonation_role_id.as_deref(),
            )?;
            Ok(EffectOut {
                effect: decision.effect,
                matched_rules: decision.matched_rules,
            })
        })
        .await
}

//! Retention policies: PutRetentionPolicy, GetDefaultRetentionPolicy,
//! DeleteRetentionPolicy. Validation, storage and enforcement are
//! `crate::retention`'s; this maps them to the wire and to AWS errors.
//!
//! An organization has one policy (WorkMail's model). A Put without an Id, or
//! with the current policy's Id, replaces it; a Put with another Id while one
//! exists is LimitExceededException. Get with no policy is
//! EntityNotFoundException. Delete with an Id that is not the current
//! policy's, or with no policy set, changes nothing and succeeds (the operation
//! is idempotent and the model lists no not-found error for it). Every action
//! wants an Active organization (OrganizationNotFound / OrganizationState).

use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::Empty;
use super::common::OrgIn;
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::OrganizationState;
use crate::retention::RetentionPolicy;
use crate::retention::policy::{self, FolderConfigurationInput, PolicyError};
use crate::retention::stored;

/// Serialises Puts, so two concurrent Puts cannot both create "the" policy.
static PUT: Mutex<()> = Mutex::new(());

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> ApiError {
        match e {
            PolicyError::Invalid(m) => ApiError::invalid_parameter(m),
            PolicyError::Limit(m) => ApiError::workmail("LimitExceededException", m),
        }
    }
}

/// The organization must exist and be Active.
fn active(s: &AdminState, org_id: &str) -> Result<(), ApiError> {
    let org = s.directory.describe_organization(org_id)?;
    if org.state != OrganizationState::Active {
        return Err(ApiError::workmail(
            "OrganizationStateException",
            format!("organization {org_id} is {}", org.state),
        ));
    }
    Ok(())
}

/// PutRetentionPolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutIn {
    organization_id: String,
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    folder_configurations: Vec<FolderConfigurationInput>,
}

/// PutRetentionPolicy: validates, then creates or replaces the organization's policy.
pub async fn put_retention_policy(state: Arc<AdminState>, input: PutIn) -> Result<Empty, ApiError> {
    if let Some(id) = &input.id {
        policy::check_short_string("Id", id)?;
    }
    policy::check_short_string("Name", &input.name)?;
    if let Some(d) = &input.description {
        policy::check_description(d)?;
    }
    let folders = policy::folder_configurations(input.folder_configurations)?;
    state
        .blocking(move |s| {
            active(s, &input.organization_id)?;
            let _one_at_a_time = PUT.lock().unwrap_or_else(|p| p.into_inner());
            let current = stored::load(&*s.store, &input.organization_id)?;
            let id = policy::put_id(current.as_ref(), input.id.as_deref(), || {
                uuid::Uuid::new_v4().to_string()
            })?;
            let policy = RetentionPolicy {
                id,
                name: input.name,
                description: input.description,
                folder_configurations: folders,
            };
            stored::save(&*s.store, &input.organization_id, &policy)?;
            Ok(Empty {})
        })
        .await
}

/// GetDefaultRetentionPolicy: the policy, or EntityNotFound when none is set.
pub async fn get_default_retention_policy(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<RetentionPolicy, ApiError> {
    state
        .blocking(move |s| {
            active(s, &input.organization_id)?;
            stored::load(&*s.store, &input.organization_id)?.ok_or_else(|| {
                ApiError::workmail(
                    "EntityNotFoundException",
                    "the organization has no retention policy",
                )
            })
        })
        .await
}

/// DeleteRetentionPolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteIn {
    organization_id: String,
    id: String,
}

/// DeleteRetentionPolicy: removes the policy if `Id` names it.
pub async fn delete_retention_policy(
    state: Arc<AdminState>,
    input: DeleteIn,
) -> Result<Empty, ApiError> {
    policy::check_short_string("Id", &input.id)?;
    state
        .blocking(move |s| {
            active(s, &input.organization_id)?;
            let _one_at_a_time = PUT.lock().unwrap_or_else(|p| p.into_inner());
            let current = stored::load(&*s.store, &input.organization_id)?;
            if current.is_some_and(|p| p.id == input.id) {
                stored::remove(&*s.store, &input.organization_id)?;
            }
            Ok(Empty {})
        })
        .await
}

//! Mailbox permissions: Put, Delete, ListMailboxPermissions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, page};
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::{MemberType, Permission};

/// PutMailboxPermissions input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutIn {
    organization_id: String,
    entity_id: String,
    grantee_id: String,
    permission_values: Vec<Permission>,
}

/// PutMailboxPermissions: replaces the grantee's permission set on the mailbox.
pub async fn put_mailbox_permissions(
    state: Arc<AdminState>,
    input: PutIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.put_mailbox_permissions(
            &input.organization_id,
            &input.entity_id,
            &input.grantee_id,
            &input.permission_values,
        )
    })
    .await
}

/// DeleteMailboxPermissions input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteIn {
    organization_id: String,
    entity_id: String,
    grantee_id: String,
}

/// DeleteMailboxPermissions.
pub async fn delete_mailbox_permissions(
    state: Arc<AdminState>,
    input: DeleteIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.delete_mailbox_permissions(
            &input.organization_id,
            &input.entity_id,
            &input.grantee_id,
        )
    })
    .await
}

/// ListMailboxPermissions input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    entity_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One grant.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Grant {
    grantee_id: String,
    grantee_type: MemberType,
    permission_values: Vec<Permission>,
}

/// ListMailboxPermissions output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    permissions: Vec<Grant>,
    next_token: Option<String>,
}

/// ListMailboxPermissions, sorted by grantee id, paged.
pub async fn list_mailbox_permissions(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let all = s
                .directory
                .list_mailbox_permissions(&input.organization_id, &input.entity_id)?;
            let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            Ok(ListOut {
                permissions: items
                    .into_iter()
                    .map(|g| Grant {
                        grantee_id: g.grantee_id,
                        grantee_type: g.grantee_type,
                        permission_values: g.values.into_iter().collect(),
                    })
                    .collect(),
                next_token,
            })
        })
        .await
}

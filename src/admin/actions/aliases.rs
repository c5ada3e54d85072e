//! Entity addresses: CreateAlias, DeleteAlias, ListAliases,
//! UpdatePrimaryEmailAddress, and DescribeEntity (the entity an address names).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, page};
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::EntityKind;

/// CreateAlias / DeleteAlias input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasIn {
    organization_id: String,
    entity_id: String,
    alias: String,
}

/// CreateAlias: the address must be in one of the organization's domains and free.
pub async fn create_alias(state: Arc<AdminState>, input: AliasIn) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .create_alias(&input.organization_id, &input.entity_id, &input.alias)
    })
    .await
}

/// DeleteAlias.
pub async fn delete_alias(state: Arc<AdminState>, input: AliasIn) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .delete_alias(&input.organization_id, &input.entity_id, &input.alias)
    })
    .await
}

/// ListAliases input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    entity_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ListAliases output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    aliases: Vec<String>,
    next_token: Option<String>,
}

/// ListAliases: sorted, primary address excluded, paged.
pub async fn list_aliases(state: Arc<AdminState>, input: ListIn) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let all = s
                .directory
                .list_aliases(&input.organization_id, &input.entity_id)?;
            let (aliases, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            Ok(ListOut {
                aliases,
                next_token,
            })
        })
        .await
}

/// UpdatePrimaryEmailAddress input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrimaryIn {
    organization_id: String,
    entity_id: String,
    email: String,
}

/// UpdatePrimaryEmailAddress: an ENABLED entity's new primary address; the old
/// one stays as an alias (or swaps places with the alias promoted), so mail to
/// either still arrives, and logins, sending and events use the new one.
pub async fn update_primary_email_address(
    state: Arc<AdminState>,
    input: PrimaryIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.update_primary_email_address(
            &input.organization_id,
            &input.entity_id,
            &input.email,
        )
    })
    .await
}

/// DescribeEntity input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeIn {
    organization_id: String,
    email: String,
}

/// DescribeEntity output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    entity_id: String,
    name: String,
    #[serde(rename = "Type")]
    kind: EntityKind,
}

/// DescribeEntity: the user, group or resource whose primary address or alias
/// `Email` is (any state but deleted: a tombstone holds no address).
pub async fn describe_entity(
    state: Arc<AdminState>,
    input: DescribeIn,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            let e = s
                .directory
                .describe_entity(&input.organization_id, &input.email)?;
            Ok(DescribeOut {
                entity_id: e.id,
                name: e.name,
                kind: e.kind,
            })
        })
        .await
}

//! Tags on organizations: ListTagsForResource, TagResource, UntagResource. The
//! only taggable resource is an organization, named by its ARN.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, MAX_TAGS};

/// A tag on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    key: String,
    value: String,
}

/// ResourceNotFound unless `arn` is the ARN of an existing organization.
fn check_arn(s: &AdminState, arn: &str) -> Result<(), ApiError> {
    let known = s
        .directory
        .list_organizations()
        .iter()
        .any(|o| s.org_arn(&o.id) == arn);
    if known {
        Ok(())
    } else {
        Err(ApiError::workmail(
            "ResourceNotFoundException",
            "no organization has that ARN",
        ))
    }
}

/// Keys 1-128 characters, values up to 256 (the model's limits).
fn check_tag(key: &str, value: Option<&str>) -> Result<(), ApiError> {
    let key_ok = (1..=128).contains(&key.chars().count());
    let value_ok = value.is_none_or(|v| v.chars().count() <= 256);
    if key_ok && value_ok {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            "tag keys must be 1-128 characters and values at most 256",
        ))
    }
}

/// ListTagsForResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
}

/// ListTagsForResource output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    tags: Vec<Tag>,
}

/// ListTagsForResource, sorted by key.
pub async fn list_tags_for_resource(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            check_arn(s, &input.resource_arn)?;
            let tags = s.store.tags_blocking(&input.resource_arn)?;
            Ok(ListOut {
                tags: tags
                    .into_iter()
                    .map(|(key, value)| Tag { key, value })
                    .collect(),
            })
        })
        .await
}

/// TagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tags: Vec<Tag>,
}

/// TagResource: adds or overwrites; more than 50 tags in all is TooManyTags.
pub async fn tag_resource(state: Arc<AdminState>, input: TagIn) -> Result<Empty, ApiError> {
    state
        .blocking(move |s| {
            check_arn(s, &input.resource_arn)?;
            for t in &input.tags {
                check_tag(&t.key, Some(&t.value))?;
            }
            let tags = input.tags.into_iter().map(|t| (t.key, t.value)).collect();
            if s.store.tag_blocking(&input.resource_arn, tags, MAX_TAGS)? {
                Ok(Empty {})
            } else {
                Err(ApiError::workmail(
                    "TooManyTagsException",
                    format!("a resource may carry at most {MAX_TAGS} tags"),
                ))
            }
        })
        .await
}

/// UntagResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagIn {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// UntagResource: unknown keys are ignored.
pub async fn untag_resource(state: Arc<AdminState>, input: UntagIn) -> Result<Empty, ApiError> {
    state
        .blocking(move |s| {
            check_arn(s, &input.resource_arn)?;
            for k in &input.tag_keys {
                check_tag(k, None)?;
            }
            s.store
                .untag_blocking(&input.resource_arn, input.tag_keys)?;
            Ok(Empty {})
        })
        .await
}

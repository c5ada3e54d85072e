//! Groups: Create/Describe/List/Update/DeleteGroup, group membership, and the
//! groups an entity belongs to (ListGroupsForEntity).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, date, has_prefix, page};
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::{EntityState, Group, MemberType};

/// An organization plus a group by id, name or email.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgGroup {
    organization_id: String,
    group_id: String,
}

/// CreateGroup input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    organization_id: String,
    name: String,
    #[serde(default)]
    hidden_from_global_address_list: bool,
}

/// CreateGroup output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    group_id: String,
}

/// CreateGroup: a DISABLED group.
pub async fn create_group(state: Arc<AdminState>, input: CreateIn) -> Result<CreateOut, ApiError> {
    state
        .blocking(move |s| {
            let group_id = s.directory.create_group(
                &input.organization_id,
                &input.name,
                input.hidden_from_global_address_list,
            )?;
            Ok(CreateOut { group_id })
        })
        .await
}

/// DescribeGroup output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    group_id: String,
    name: String,
    email: Option<String>,
    state: EntityState,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
    hidden_from_global_address_list: bool,
}

/// DescribeGroup by id, name or email.
pub async fn describe_group(
    state: Arc<AdminState>,
    input: OrgGroup,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            let g = s
                .directory
                .describe_group(&input.organization_id, &input.group_id)?
                .base;
            Ok(DescribeOut {
                enabled_date: date(g.enabled_date),
                disabled_date: date(g.disabled_date),
                group_id: g.id,
                name: g.name,
                email: g.email,
                state: g.state,
                hidden_from_global_address_list: g.hidden_from_gal,
            })
        })
        .await
}

/// ListGroups (and ListResources) filters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameFilters {
    name_prefix: Option<String>,
    primary_email_prefix: Option<String>,
    state: Option<EntityState>,
}

impl NameFilters {
    /// Whether an entity passes every filter given.
    pub fn keeps(&self, e: &crate::directory::EntityBase) -> bool {
        has_prefix(Some(&e.name), self.name_prefix.as_deref())
            && has_prefix(e.email.as_deref(), self.primary_email_prefix.as_deref())
            && self.state.is_none_or(|s| s == e.state)
    }
}

/// ListGroups input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
    #[serde(default)]
    filters: NameFilters,
}

/// One group of ListGroups.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupSummary {
    id: String,
    email: Option<String>,
    name: String,
    state: EntityState,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
}

/// ListGroups output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    groups: Vec<GroupSummary>,
    next_token: Option<String>,
}

/// ListGroups: live groups sorted by id, filtered, paged.
pub async fn list_groups(state: Arc<AdminState>, input: ListIn) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let groups: Vec<Group> = s
                .directory
                .list_groups(&input.organization_id)?
                .into_iter()
                .filter(|g| input.filters.keeps(&g.base))
                .collect();
            let (items, next_token) = page(groups, input.max_results, input.next_token.as_deref())?;
            let groups = items
                .into_iter()
                .map(|g| GroupSummary {
                    enabled_date: date(g.base.enabled_date),
                    disabled_date: date(g.base.disabled_date),
                    id: g.base.id,
                    email: g.base.email,
                    name: g.base.name,
                    state: g.base.state,
                })
                .collect();
            Ok(ListOut { groups, next_token })
        })
        .await
}

/// UpdateGroup input: an absent HiddenFromGlobalAddressList leaves it as it is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateIn {
    organization_id: String,
    group_id: String,
    hidden_from_global_address_list: Option<bool>,
}

/// UpdateGroup: the GAL visibility of a live group (EntityState for a deleted one).
pub async fn update_group(state: Arc<AdminState>, input: UpdateIn) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.update_group(
            &input.organization_id,
            &input.group_id,
            input.hidden_from_global_address_list,
        )
    })
    .await
}

/// DeleteGroup: only a DISABLED group.
pub async fn delete_group(state: Arc<AdminState>, input: OrgGroup) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .delete_group(&input.organization_id, &input.group_id)
    })
    .await
}

/// Membership change input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemberIn {
    organization_id: String,
    group_id: String,
    member_id: String,
}

/// AssociateMemberToGroup: a user or group joins (no cycles).
pub async fn associate_member_to_group(
    state: Arc<AdminState>,
    input: MemberIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.associate_member_to_group(
            &input.organization_id,
            &input.group_id,
            &input.member_id,
        )
    })
    .await
}

/// DisassociateMemberFromGroup.
pub async fn disassociate_member_from_group(
    state: Arc<AdminState>,
    input: MemberIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.disassociate_member_from_group(
            &input.organization_id,
            &input.group_id,
            &input.member_id,
        )
    })
    .await
}

/// ListGroupMembers input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MembersIn {
    organization_id: String,
    group_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One member of ListGroupMembers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    id: String,
    name: String,
    #[serde(rename = "Type")]
    kind: MemberType,
    state: EntityState,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
}

/// ListGroupMembers output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MembersOut {
    members: Vec<Member>,
    next_token: Option<String>,
}

/// ListGroupMembers: direct members, paged.
pub async fn list_group_members(
    state: Arc<AdminState>,
    input: MembersIn,
) -> Result<MembersOut, ApiError> {
    state
        .blocking(move |s| {
            let all = s
                .directory
                .list_group_members(&input.organization_id, &input.group_id)?;
            let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            let members = items
                .into_iter()
                .map(|m| Member {
                    enabled_date: date(m.enabled_date),
                    disabled_date: date(m.disabled_date),
                    id: m.id,
                    name: m.name,
                    kind: m.kind,
                    state: m.state,
                })
                .collect();
            Ok(MembersOut {
                members,
                next_token,
            })
        })
        .await
}

/// ListGroupsForEntity filters (the model's `ListGroupsForEntityFilters`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntityGroupFilters {
    group_name_prefix: Option<String>,
}

impl EntityGroupFilters {
    /// Whether a group passes the name prefix, if one is given.
    fn keeps(&self, g: &Group) -> bool {
        has_prefix(Some(&g.base.name), self.group_name_prefix.as_deref())
    }
}

/// ListGroupsForEntity input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForEntityIn {
    organization_id: String,
    entity_id: String,
    #[serde(default)]
    filters: EntityGroupFilters,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One group of ListGroupsForEntity (the model's `GroupIdentifier`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupIdentifier {
    group_id: String,
    group_name: String,
}

/// ListGroupsForEntity output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForEntityOut {
    groups: Vec<GroupIdentifier>,
    next_token: Option<String>,
}

/// ListGroupsForEntity: the live groups a user or group is a direct member of,
/// sorted by id, filtered by name prefix, paged.
pub async fn list_groups_for_entity(
    state: Arc<AdminState>,
    input: ForEntityIn,
) -> Result<ForEntityOut, ApiError> {
    state
        .blocking(move |s| {
            let groups: Vec<Group> = s
                .directory
                .list_groups_for_entity(&input.organization_id, &input.entity_id)?
                .into_iter()
                .filter(|g| input.filters.keeps(g))
                .collect();
            let (items, next_token) = page(groups, input.max_results, input.next_token.as_deref())?;
            let groups = items
                .into_iter()
                .map(|g| GroupIdentifier {
                    group_id: g.base.id,
                    group_name: g.base.name,
                })
                .collect();
            Ok(ForEntityOut { groups, next_token })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::EntityBase;

    fn group(name: &str) -> Group {
        Group {
            base: EntityBase::new(format!("id-{name}"), "m-a", name, false, 0),
            members: Vec::new(),
        }
    }

    #[test]
    fn group_name_prefix_filters_case_insensitively() {
        let none = EntityGroupFilters::default();
        assert!(none.keeps(&group("Sales")));
        let sa = EntityGroupFilters {
            group_name_prefix: Some("sa".into()),
        };
        assert!(sa.keeps(&group("Sales")));
        assert!(!sa.keeps(&group("Support")));
        let long = EntityGroupFilters {
            group_name_prefix: Some("salesforce".into()),
        };
        assert!(
            !long.keeps(&group("Sales")),
            "a prefix longer than the name"
        );
    }

    #[test]
    fn filters_parse_in_the_model_spelling() {
        let input: ForEntityIn = crate::admin::input::parse(serde_json::json!({
            "OrganizationId": "m-1",
            "EntityId": "bob",
            "Filters": {"GroupNamePrefix": "eng"},
            "MaxResults": 5,
        }))
        .unwrap();
        assert_eq!(input.filters.group_name_prefix.as_deref(), Some("eng"));
        assert_eq!(input.max_results, Some(5));
        let bad = crate::admin::input::parse::<ForEntityIn>(serde_json::json!({
            "OrganizationId": "m-1",
            "EntityId": "bob",
            "Filters": {"GroupNamePrefix": 7},
        }));
        assert_eq!(bad.unwrap_err().kind, "ValidationException");
    }
}

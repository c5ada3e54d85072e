//! Resources: Create/Describe/List/Update/DeleteResource and their delegates.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, date, page};
use super::groups::NameFilters;
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::{
    BookingOptions, EntityState, MemberType, NewResource, Resource, ResourceType, ResourceUpdate,
};

/// An organization plus a resource by id, name or email.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgResource {
    organization_id: String,
    resource_id: String,
}

/// CreateResource input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    organization_id: String,
    name: String,
    #[serde(rename = "Type")]
    kind: ResourceType,
    description: Option<String>,
    #[serde(default)]
    hidden_from_global_address_list: bool,
}

/// CreateResource output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    resource_id: String,
}

/// CreateResource: a DISABLED room or equipment with WorkMail's booking defaults.
pub async fn create_resource(
    state: Arc<AdminState>,
    input: CreateIn,
) -> Result<CreateOut, ApiError> {
    state
        .blocking(move |s| {
            let resource_id = s.directory.create_resource(
                &input.organization_id,
                NewResource {
                    name: &input.name,
                    resource_type: input.kind,
                    description: input.description.as_deref(),
                    hidden_from_gal: input.hidden_from_global_address_list,
                },
            )?;
            Ok(CreateOut { resource_id })
        })
        .await
}

/// BookingOptions in the model's member names, in both directions. The model's
/// members are plain (non-nullable) `Boolean`s, which SDKs leave out when false,
/// so an absent member reads as `false`: UpdateResource replaces all three.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Booking {
    auto_accept_requests: bool,
    auto_decline_recurring_requests: bool,
    auto_decline_conflicting_requests: bool,
}

impl From<BookingOptions> for Booking {
    fn from(b: BookingOptions) -> Booking {
        Booking {
            auto_accept_requests: b.auto_accept_requests,
            auto_decline_recurring_requests: b.auto_decline_recurring_requests,
            auto_decline_conflicting_requests: b.auto_decline_conflicting_requests,
        }
    }
}

impl From<Booking> for BookingOptions {
    fn from(b: Booking) -> BookingOptions {
        BookingOptions {
            auto_accept_requests: b.auto_accept_requests,
            auto_decline_recurring_requests: b.auto_decline_recurring_requests,
            auto_decline_conflicting_requests: b.auto_decline_conflicting_requests,
        }
    }
}

/// DescribeResource output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    resource_id: String,
    email: Option<String>,
    name: String,
    #[serde(rename = "Type")]
    kind: ResourceType,
    booking_options: Booking,
    state: EntityState,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
    description: Option<String>,
    hidden_from_global_address_list: bool,
}

/// DescribeResource by id, name or email.
pub async fn describe_resource(
    state: Arc<AdminState>,
    input: OrgResource,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            let r = s
                .directory
                .describe_resource(&input.organization_id, &input.resource_id)?;
            Ok(DescribeOut {
                booking_options: r.booking_options.into(),
                enabled_date: date(r.base.enabled_date),
                disabled_date: date(r.base.disabled_date),
                resource_id: r.base.id,
                email: r.base.email,
                name: r.base.name,
                kind: r.resource_type,
                state: r.base.state,
                description: r.description,
                hidden_from_global_address_list: r.base.hidden_from_gal,
            })
        })
        .await
}

/// ListResources input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
    #[serde(default)]
    filters: NameFilters,
}

/// One resource of ListResources.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceSummary {
    id: String,
    email: Option<String>,
    name: String,
    #[serde(rename = "Type")]
    kind: ResourceType,
    state: EntityState,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
    description: Option<String>,
}

/// ListResources output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    resources: Vec<ResourceSummary>,
    next_token: Option<String>,
}

/// ListResources: live resources sorted by id, filtered, paged.
pub async fn list_resources(state: Arc<AdminState>, input: ListIn) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let all: Vec<Resource> = s
                .directory
                .list_resources(&input.organization_id)?
                .into_iter()
                .filter(|r| input.filters.keeps(&r.base))
                .collect();
            let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            let resources = items
                .into_iter()
                .map(|r| ResourceSummary {
                    enabled_date: date(r.base.enabled_date),
                    disabled_date: date(r.base.disabled_date),
                    id: r.base.id,
                    email: r.base.email,
                    name: r.base.name,
                    kind: r.resource_type,
                    state: r.base.state,
                    description: r.description,
                })
                .collect();
            Ok(ListOut {
                resources,
                next_token,
            })
        })
        .await
}

/// UpdateResource input: absent members leave the resource's value alone.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateIn {
    organization_id: String,
    resource_id: String,
    name: Option<String>,
    booking_options: Option<Booking>,
    /// The model's `NewResourceDescription`: 0-64 characters, `""` clears it.
    description: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<ResourceType>,
    hidden_from_global_address_list: Option<bool>,
}

impl UpdateIn {
    /// The directory's update: what the request names, nothing else.
    fn update(self) -> ResourceUpdate {
        ResourceUpdate {
            name: self.name,
            resource_type: self.kind,
            description: self.description,
            booking_options: self.booking_options.map(Into::into),
            hidden_from_gal: self.hidden_from_global_address_list,
        }
    }
}

/// UpdateResource: name (NameAvailability when taken), type, description,
/// booking options (InvalidConfiguration when the resource would neither accept
/// requests automatically nor have a delegate) and GAL visibility, all or nothing.
pub async fn update_resource(state: Arc<AdminState>, input: UpdateIn) -> Result<Empty, ApiError> {
    let (org, resource) = (input.organization_id.clone(), input.resource_id.clone());
    let update = input.update();
    apply(&state, move |s| {
        s.directory.update_resource(&org, &resource, update)
    })
    .await
}

/// DeleteResource: only a DISABLED resource.
pub async fn delete_resource(
    state: Arc<AdminState>,
    input: OrgResource,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .delete_resource(&input.organization_id, &input.resource_id)
    })
    .await
}

/// Delegate change input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DelegateIn {
    organization_id: String,
    resource_id: String,
    entity_id: String,
}

/// AssociateDelegateToResource.
pub async fn associate_delegate_to_resource(
    state: Arc<AdminState>,
    input: DelegateIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.associate_delegate_to_resource(
            &input.organization_id,
            &input.resource_id,
            &input.entity_id,
        )
    })
    .await
}

/// DisassociateDelegateFromResource.
pub async fn disassociate_delegate_from_resource(
    state: Arc<AdminState>,
    input: DelegateIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory.disassociate_delegate_from_resource(
            &input.organization_id,
            &input.resource_id,
            &input.entity_id,
        )
    })
    .await
}

/// ListResourceDelegates input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DelegatesIn {
    organization_id: String,
    resource_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One delegate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Delegate {
    id: String,
    #[serde(rename = "Type")]
    kind: MemberType,
}

/// ListResourceDelegates output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DelegatesOut {
    delegates: Vec<Delegate>,
    next_token: Option<String>,
}

/// ListResourceDelegates, sorted by id, paged.
pub async fn list_resource_delegates(
    state: Arc<AdminState>,
    input: DelegatesIn,
) -> Result<DelegatesOut, ApiError> {
    state
        .blocking(move |s| {
            let all = s
                .directory
                .list_resource_delegates(&input.organization_id, &input.resource_id)?;
            let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            Ok(DelegatesOut {
                delegates: items
                    .into_iter()
                    .map(|d| Delegate {
                        id: d.id,
                        kind: d.kind,
                    })
                    .collect(),
                next_token,
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::input::parse;
    use serde_json::json;

    #[test]
    fn absent_booking_members_read_as_false_and_absent_fields_stay_unset() {
        let input: UpdateIn = parse(json!({
            "OrganizationId": "m-1",
            "ResourceId": "room",
            "BookingOptions": {"AutoDeclineRecurringRequests": true},
        }))
        .unwrap();
        let u = input.update();
        assert_eq!(
            u.booking_options,
            Some(BookingOptions {
                auto_accept_requests: false,
                auto_decline_recurring_requests: true,
                auto_decline_conflicting_requests: false,
            })
        );
        assert_eq!((u.name, u.resource_type, u.description), (None, None, None));
        assert_eq!(u.hidden_from_gal, None);
    }

    #[test]
    fn every_member_maps_to_the_update() {
        let input: UpdateIn = parse(json!({
            "OrganizationId": "m-1",
            "ResourceId": "room",
            "Name": "hall",
            "Type": "EQUIPMENT",
            "Description": "",
            "HiddenFromGlobalAddressList": true,
        }))
        .unwrap();
        let u = input.update();
        assert_eq!(u.name.as_deref(), Some("hall"));
        assert_eq!(u.resource_type, Some(ResourceType::Equipment));
        assert_eq!(u.description.as_deref(), Some(""), "empty clears");
        assert_eq!(u.hidden_from_gal, Some(true));
        assert_eq!(u.booking_options, None);
    }

    #[test]
    fn bad_types_are_validation_errors() {
        for bad in [
            json!({"OrganizationId": "m-1", "ResourceId": "r", "Type": "KITCHEN"}),
            json!({"OrganizationId": "m-1", "ResourceId": "r", "BookingOptions": {"AutoAcceptRequests": "yes"}}),
            json!({"OrganizationId": "m-1", "ResourceId": "r", "BookingOptions": true}),
            json!({"OrganizationId": "m-1"}),
        ] {
            let e = parse::<UpdateIn>(bad.clone()).unwrap_err();
            assert_eq!(e.kind, "ValidationException", "{bad}");
        }
    }

    #[test]
    fn booking_round_trips_between_wire_and_directory() {
        let b = BookingOptions::default();
        let wire = serde_json::to_value(Booking::from(b)).unwrap();
        assert_eq!(
            wire,
            json!({"AutoAcceptRequests": true, "AutoDeclineRecurringRequests": false, "AutoDeclineConflictingRequests": true})
        );
        let back: Booking = serde_json::from_value(wire).unwrap();
        assert_eq!(BookingOptions::from(back), b);
    }
}

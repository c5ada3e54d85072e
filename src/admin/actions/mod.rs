//! Every WorkMail action the admin API answers, one small function each, grouped
//! by area. [`lookup`] maps an action name to a function that parses the input
//! member-by-member and serialises the output.

mod aliases;
mod common;
mod domains;
pub mod export;
mod groups;
pub mod monitoring;
mod orgs;
mod pats;
mod permissions;
mod resources;
mod retention;
mod roles;
mod rules;
mod secrets;
mod tags;
mod users;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::input;
use super::state::AdminState;

/// The future of one action call.
pub type ActionFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, ApiError>> + Send>>;
/// An action: state and the JSON input object to the JSON output.
pub type Action = fn(Arc<AdminState>, serde_json::Value) -> ActionFuture;

/// An empty output (`{}`), for actions that answer nothing.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// Parses `value` as `I`, runs `f`, serialises its output.
async fn run<I, O, F, Fut>(
    state: Arc<AdminState>,
    value: serde_json::Value,
    f: F,
) -> Result<serde_json::Value, ApiError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Arc<AdminState>, I) -> Fut,
    Fut: Future<Output = Result<O, ApiError>>,
{
    let input: I = input::parse(value)?;
    let output = f(state, input).await?;
    let mut value =
        serde_json::to_value(output).map_err(|e| super::state::internal(e.to_string()))?;
    strip_nulls(&mut value);
    Ok(value)
}

/// Drops `null` members: AWS leaves absent members out rather than sending null.
fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

macro_rules! action_table {
    ($($name:literal => $f:path),+ $(,)?) => {
        /// Every action name, in the model's spelling.
        pub const ACTIONS: &[&str] = &[$($name),+];

        /// The action of that name, if mailgate has it.
        pub fn lookup(name: &str) -> Option<Action> {
            match name {
                $($name => Some(|s, v| Box::pin(run(s, v, $f)) as ActionFuture),)+
                _ => None,
            }
        }
    };
}

action_table! {
    "CreateOrganization" => orgs::create_organization,
    "DescribeOrganization" => orgs::describe_organization,
    "ListOrganizations" => orgs::list_organizations,
    "PutInboundDmarcSettings" => orgs::put_inbound_dmarc_settings,
    "DescribeInboundDmarcSettings" => orgs::describe_inbound_dmarc_settings,
    "CreateUser" => users::create_user,
    "DescribeUser" => users::describe_user,
    "ListUsers" => users::list_users,
    "UpdateUser" => users::update_user,
    "DeleteUser" => users::delete_user,
    "ResetPassword" => users::reset_password,
    "GetMailboxDetails" => users::get_mailbox_details,
    "UpdateMailboxQuota" => users::update_mailbox_quota,
    "RegisterToWorkMail" => users::register_to_workmail,
    "DeregisterFromWorkMail" => users::deregister_from_workmail,
    "CreateGroup" => groups::create_group,
    "DescribeGroup" => groups::describe_group,
    "ListGroups" => groups::list_groups,
    "UpdateGroup" => groups::update_group,
    "DeleteGroup" => groups::delete_group,
    "AssociateMemberToGroup" => groups::associate_member_to_group,
    "DisassociateMemberFromGroup" => groups::disassociate_member_from_group,
    "ListGroupMembers" => groups::list_group_members,
    "ListGroupsForEntity" => groups::list_groups_for_entity,
    "CreateAlias" => aliases::create_alias,
    "DeleteAlias" => aliases::delete_alias,
    "ListAliases" => aliases::list_aliases,
    "UpdatePrimaryEmailAddress" => aliases::update_primary_email_address,
    "DescribeEntity" => aliases::describe_entity,
    "CreateResource" => resources::create_resource,
    "DescribeResource" => resources::describe_resource,
    "ListResources" => resources::list_resources,
    "UpdateResource" => resources::update_resource,
    "DeleteResource" => resources::delete_resource,
    "AssociateDelegateToResource" => resources::associate_delegate_to_resource,
    "DisassociateDelegateFromResource" => resources::disassociate_delegate_from_resource,
    "ListResourceDelegates" => resources::list_resource_delegates,
    "PutMailboxPermissions" => permissions::put_mailbox_permissions,
    "DeleteMailboxPermissions" => permissions::delete_mailbox_permissions,
    "ListMailboxPermissions" => permissions::list_mailbox_permissions,
    "RegisterMailDomain" => domains::register_mail_domain,
    "DeregisterMailDomain" => domains::deregister_mail_domain,
    "ListMailDomains" => domains::list_mail_domains,
    "GetMailDomain" => domains::get_mail_domain,
    "UpdateDefaultMailDomain" => domains::update_default_mail_domain,
    "PutAccessControlRule" => rules::put_access_control_rule,
    "DeleteAccessControlRule" => rules::delete_access_control_rule,
    "ListAccessControlRules" => rules::list_access_control_rules,
    "GetAccessControlEffect" => rules::get_access_control_effect,
    "CreateImpersonationRole" => roles::create_impersonation_role,
    "GetImpersonationRole" => roles::get_impersonation_role,
    "UpdateImpersonationRole" => roles::update_impersonation_role,
    "DeleteImpersonationRole" => roles::delete_impersonation_role,
    "ListImpersonationRoles" => roles::list_impersonation_roles,
    "AssumeImpersonationRole" => roles::assume_impersonation_role,
    "GetImpersonationRoleEffect" => roles::get_impersonation_role_effect,
    "ListTagsForResource" => tags::list_tags_for_resource,
    "TagResource" => tags::tag_resource,
    "UntagResource" => tags::untag_resource,
    "PutEmailMonitoringConfiguration" => monitoring::put_email_monitoring_configuration,
    "DescribeEmailMonitoringConfiguration" => monitoring::describe_email_monitoring_configuration,
    "DeleteEmailMonitoringConfiguration" => monitoring::delete_email_monitoring_configuration,
    "ListPersonalAccessTokens" => pats::list_personal_access_tokens,
    "GetPersonalAccessTokenMetadata" => pats::get_personal_access_token_metadata,
    "DeletePersonalAccessToken" => pats::delete_personal_access_token,
    "PutRetentionPolicy" => retention::put_retention_policy,
    "GetDefaultRetentionPolicy" => retention::get_default_retention_policy,
    "DeleteRetentionPolicy" => retention::delete_retention_policy,
    "StartMailboxExportJob" => export::start_mailbox_export_job,
    "DescribeMailboxExportJob" => export::describe_mailbox_export_job,
    "ListMailboxExportJobs" => export::list_mailbox_export_jobs,
    "CancelMailboxExportJob" => export::cancel_mailbox_export_job,
}

/// The `X-Amz-Target` prefix of mailgate's own actions, kept out of WorkMail's
/// namespace so no WorkMail client meets them by accident.
pub const EXTENSION_PREFIX: &str = "MailgateService.";

/// mailgate's own actions: (`mailgate admin` command, action name).
pub const EXTENSIONS: &[(&str, &str)] = &[
    ("create-personal-access-token", "CreatePersonalAccessToken"),
    ("rotate-token-keys", "RotateTokenKeys"),
    ("rotate-admin-key", "RotateAdminKey"),
];

/// The extension action of that name, if there is one.
pub fn lookup_extension(name: &str) -> Option<Action> {
    match name {
        "CreatePersonalAccessToken" => {
            Some(|s, v| Box::pin(run(s, v, pats::create_personal_access_token)) as ActionFuture)
        }
        "RotateTokenKeys" => {
            Some(|s, v| Box::pin(run(s, v, secrets::rotate_token_keys)) as ActionFuture)
        }
        "RotateAdminKey" => {
            Some(|s, v| Box::pin(run(s, v, secrets::rotate_admin_key)) as ActionFuture)
        }
        _ => None,
    }
}

//! Users and their mailboxes: Create/Describe/List/Update/DeleteUser,
//! ResetPassword, Register/DeregisterFromWorkMail (any entity), GetMailboxDetails,
//! UpdateMailboxQuota.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{OrgEntity, apply, date, has_prefix, page};
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::{
    ANY_KIND, ContactDetails, DEFAULT_QUOTA_MB, EntityKind, EntityState, NewUser, User, UserRole,
    UserUpdate,
};
use crate::store::StoreError;

const MB: u64 = 1024 * 1024;

/// An organization plus a user by id, name or email.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgUser {
    organization_id: String,
    user_id: String,
}

/// CreateUser input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    organization_id: String,
    name: String,
    display_name: String,
    password: Option<String>,
    role: Option<UserRole>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    hidden_from_global_address_list: bool,
}

/// CreateUser output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    user_id: String,
}

/// CreateUser: a DISABLED user; hashing the password runs off the async threads.
pub async fn create_user(state: Arc<AdminState>, input: CreateIn) -> Result<CreateOut, ApiError> {
    state
        .blocking(move |s| {
            let user_id = s.directory.create_user(
                &input.organization_id,
                NewUser {
                    name: &input.name,
                    display_name: &input.display_name,
                    password: input.password.as_deref(),
                    role: input.role,
                    first_name: input.first_name.as_deref(),
                    last_name: input.last_name.as_deref(),
                    hidden_from_gal: input.hidden_from_global_address_list,
                },
            )?;
            Ok(CreateOut { user_id })
        })
        .await
}

/// DescribeUser output (contact attributes flattened in).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    user_id: String,
    name: String,
    email: Option<String>,
    display_name: String,
    state: EntityState,
    user_role: UserRole,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
    mailbox_provisioned_date: Option<f64>,
    first_name: Option<String>,
    last_name: Option<String>,
    hidden_from_global_address_list: bool,
    #[serde(flatten)]
    contact: Contact,
}

/// The contact attributes in the model's member names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Contact {
    initials: Option<String>,
    telephone: Option<String>,
    street: Option<String>,
    job_title: Option<String>,
    city: Option<String>,
    company: Option<String>,
    zip_code: Option<String>,
    department: Option<String>,
    country: Option<String>,
    office: Option<String>,
}

impl From<ContactDetails> for Contact {
    fn from(c: ContactDetails) -> Contact {
        Contact {
            initials: c.initials,
            telephone: c.telephone,
            street: c.street,
            job_title: c.job_title,
            city: c.city,
            company: c.company,
            zip_code: c.zip_code,
            department: c.department,
            country: c.country,
            office: c.office,
        }
    }
}

/// DescribeUser by id, name or email.
pub async fn describe_user(
    state: Arc<AdminState>,
    input: OrgUser,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            let u = s
                .directory
                .describe_user(&input.organization_id, &input.user_id)?;
            // The mailbox is created when a USER is registered.
            let provisioned = u.base.enabled_date.filter(|_| u.role == UserRole::User);
            Ok(DescribeOut {
                enabled_date: date(u.base.enabled_date),
                disabled_date: date(u.base.disabled_date),
                mailbox_provisioned_date: date(provisioned),
                user_id: u.base.id,
                name: u.base.name,
                email: u.base.email,
                display_name: u.display_name,
                state: u.base.state,
                user_role: u.role,
                first_name: u.first_name,
                last_name: u.last_name,
                hidden_from_global_address_list: u.base.hidden_from_gal,
                contact: u.contact.into(),
            })
        })
        .await
}

/// ListUsers filters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserFilters {
    username_prefix: Option<String>,
    display_name_prefix: Option<String>,
    primary_email_prefix: Option<String>,
    state: Option<EntityState>,
    identity_provider_user_id_prefix: Option<String>,
}

impl UserFilters {
    fn keeps(&self, u: &User) -> bool {
        has_prefix(Some(&u.base.name), self.username_prefix.as_deref())
            && has_prefix(Some(&u.display_name), self.display_name_prefix.as_deref())
            && has_prefix(u.base.email.as_deref(), self.primary_email_prefix.as_deref())
            && self.state.is_none_or(|s| s == u.base.state)
            // mailgate has no identity provider: a prefix filter on it matches nobody.
            && self.identity_provider_user_id_prefix.is_none()
    }
}

/// ListUsers input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
    #[serde(default)]
    filters: UserFilters,
}

/// One user of ListUsers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserSummary {
    id: String,
    email: Option<String>,
    name: String,
    display_name: String,
    state: EntityState,
    user_role: UserRole,
    enabled_date: Option<f64>,
    disabled_date: Option<f64>,
}

/// ListUsers output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    users: Vec<UserSummary>,
    next_token: Option<String>,
}

/// ListUsers: live users sorted by id, filtered, paged.
pub async fn list_users(state: Arc<AdminState>, input: ListIn) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            s.directory.with_users(&input.organization_id, |all| {
                let kept: Vec<&User> = all.filter(|u| input.filters.keeps(u)).collect();
                let (items, next_token) =
                    page(kept, input.max_results, input.next_token.as_deref())?;
                let users = items
                    .into_iter()
                    .map(|u| UserSummary {
                        enabled_date: date(u.base.enabled_date),
                        disabled_date: date(u.base.disabled_date),
                        id: u.base.id.clone(),
                        email: u.base.email.clone(),
                        name: u.base.name.clone(),
                        display_name: u.display_name.clone(),
                        state: u.base.state,
                        user_role: u.role,
                    })
                    .collect();
                Ok(ListOut { users, next_token })
            })?
        })
        .await
}

/// UpdateUser input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateIn {
    organization_id: String,
    user_id: String,
    role: Option<UserRole>,
    display_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    hidden_from_global_address_list: Option<bool>,
    initials: Option<String>,
    telephone: Option<String>,
    street: Option<String>,
    job_title: Option<String>,
    city: Option<String>,
    company: Option<String>,
    zip_code: Option<String>,
    department: Option<String>,
    country: Option<String>,
    office: Option<String>,
}

/// UpdateUser: absent members stay; an empty string clears an attribute.
pub async fn update_user(state: Arc<AdminState>, input: UpdateIn) -> Result<Empty, ApiError> {
    let update = UserUpdate {
        role: input.role,
        display_name: input.display_name,
        first_name: input.first_name,
        last_name: input.last_name,
        hidden_from_gal: input.hidden_from_global_address_list,
        contact: ContactDetails {
            initials: input.initials,
            telephone: input.telephone,
            street: input.street,
            job_title: input.job_title,
            city: input.city,
            company: input.company,
            zip_code: input.zip_code,
            department: input.department,
            country: input.country,
            office: input.office,
        },
    };
    apply(&state, move |s| {
        s.directory
            .update_user(&input.organization_id, &input.user_id, update)
    })
    .await
}

/// DeleteUser: only a DISABLED user (EntityState otherwise). Its stored mail stays.
pub async fn delete_user(state: Arc<AdminState>, input: OrgUser) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .delete_user(&input.organization_id, &input.user_id)
    })
    .await
}

/// ResetPassword input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResetIn {
    organization_id: String,
    user_id: String,
    password: String,
}

/// ResetPassword: policy check and argon2id hash off the async threads.
pub async fn reset_password(state: Arc<AdminState>, input: ResetIn) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .reset_password(&input.organization_id, &input.user_id, &input.password)
    })
    .await
}

/// RegisterToWorkMail input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterIn {
    organization_id: String,
    entity_id: String,
    email: String,
}

/// RegisterToWorkMail: enables the entity; a mailbox user or a resource gets its
/// mailbox in the store (a no-op when it already has one).
pub async fn register_to_workmail(
    state: Arc<AdminState>,
    input: RegisterIn,
) -> Result<Empty, ApiError> {
    let mailbox = state
        .blocking(move |s| {
            let org = &input.organization_id;
            s.directory
                .register_to_workmail(org, &input.entity_id, &input.email)?;
            let entity = s
                .directory
                .resolve_identifier(org, &input.entity_id, ANY_KIND)?;
            Ok(match entity.kind {
                EntityKind::User => {
                    let u = s.directory.describe_user(org, &entity.id)?;
                    (u.role == UserRole::User).then_some((entity.id, u.mailbox_quota_mb))
                }
                EntityKind::Resource => Some((entity.id, DEFAULT_QUOTA_MB)),
                EntityKind::Group => None,
            })
        })
        .await?;
    if let Some((id, quota_mb)) = mailbox {
        state
            .store
            .create_mailbox(&id, u64::from(quota_mb) * MB)
            .await?;
    }
    Ok(Empty {})
}

/// DeregisterFromWorkMail: disables the entity; its mailbox data stays.
pub async fn deregister_from_workmail(
    state: Arc<AdminState>,
    input: OrgEntity,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .deregister_from_workmail(&input.organization_id, &input.entity_id)
    })
    .await
}

/// GetMailboxDetails output: quota in MB, size in MB.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetailsOut {
    mailbox_quota: u32,
    mailbox_size: f64,
}

/// GetMailboxDetails: the directory's quota and the store's size (0 before the
/// mailbox exists).
pub async fn get_mailbox_details(
    state: Arc<AdminState>,
    input: OrgUser,
) -> Result<DetailsOut, ApiError> {
    let (id, quota) = state
        .blocking(move |s| {
            let org = &input.organization_id;
            let id = s.directory.describe_user(org, &input.user_id)?.base.id;
            let quota = s.directory.get_mailbox_quota(org, &id)?;
            Ok((id, quota))
        })
        .await?;
    let used = match state.store.quota(&id).await {
        Ok(q) => q.used,
        Err(StoreError::NotFound(_)) => 0,
        Err(e) => return Err(e.into()),
    };
    Ok(DetailsOut {
        mailbox_quota: quota,
        mailbox_size: used as f64 / MB as f64,
    })
}

/// UpdateMailboxQuota input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QuotaIn {
    organization_id: String,
    user_id: String,
    mailbox_quota: i64,
}

/// UpdateMailboxQuota: the directory's quota, then the store's limit.
pub async fn update_mailbox_quota(
    state: Arc<AdminState>,
    input: QuotaIn,
) -> Result<Empty, ApiError> {
    let quota_mb = u32::try_from(input.mailbox_quota)
        .map_err(|_| ApiError::invalid_parameter("MailboxQuota is out of range"))?;
    let id = state
        .blocking(move |s| {
            let org = &input.organization_id;
            let id = s.directory.describe_user(org, &input.user_id)?.base.id;
            s.directory.update_mailbox_quota(org, &id, quota_mb)?;
            Ok(id)
        })
        .await?;
    match state.store.set_quota(&id, u64::from(quota_mb) * MB).await {
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(Empty {}),
        Err(e) => Err(e.into()),
    }
}

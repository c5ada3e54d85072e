//! Mail domains: Register, Deregister, List, GetMailDomain, UpdateDefaultMailDomain.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{apply, page};
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::directory::DirectoryError;

/// An organization plus a domain (RegisterMailDomain's ClientToken is ignored:
/// registering a domain twice is already a no-op or MailDomainInUse).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DomainIn {
    organization_id: String,
    domain_name: String,
}

/// RegisterMailDomain.
pub async fn register_mail_domain(
    state: Arc<AdminState>,
    input: DomainIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .register_mail_domain(&input.organization_id, &input.domain_name)
    })
    .await
}

/// DeregisterMailDomain: refused (MailDomainInUse) while an address or the default uses it.
pub async fn deregister_mail_domain(
    state: Arc<AdminState>,
    input: DomainIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .deregister_mail_domain(&input.organization_id, &input.domain_name)
    })
    .await
}

/// UpdateDefaultMailDomain.
pub async fn update_default_mail_domain(
    state: Arc<AdminState>,
    input: DomainIn,
) -> Result<Empty, ApiError> {
    apply(&state, move |s| {
        s.directory
            .update_default_mail_domain(&input.organization_id, &input.domain_name)
    })
    .await
}

/// ListMailDomains input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One domain of ListMailDomains.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DomainSummary {
    domain_name: String,
    default_domain: bool,
}

/// ListMailDomains output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    mail_domains: Vec<DomainSummary>,
    next_token: Option<String>,
}

/// ListMailDomains, in registration order, paged.
pub async fn list_mail_domains(state: Arc<AdminState>, input: ListIn) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let all = s.directory.list_mail_domains(&input.organization_id)?;
            let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
            Ok(ListOut {
                mail_domains: items
                    .into_iter()
                    .map(|d| DomainSummary {
                        domain_name: d.name,
                        default_domain: d.is_default,
                    })
                    .collect(),
                next_token,
            })
        })
        .await
}

/// GetMailDomain output. mailgate does not check DNS: a registered domain is
/// reported verified, with no records to publish.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetOut {
    records: Vec<()>,
    is_test_domain: bool,
    is_default: bool,
    ownership_verification_status: &'static str,
    dkim_verification_status: &'static str,
}

/// GetMailDomain: MailDomainNotFound for a domain the organization does not have.
pub async fn get_mail_domain(state: Arc<AdminState>, input: DomainIn) -> Result<GetOut, ApiError> {
    state
        .blocking(move |s| {
            let wanted = input.domain_name.to_ascii_lowercase();
            let domain = s
                .directory
                .list_mail_domains(&input.organization_id)?
                .into_iter()
                .find(|d| d.name == wanted)
                .ok_or_else(|| {
                    DirectoryError::MailDomainNotFound(format!(
                        "{wanted} is not a mail domain here"
                    ))
                })?;
            Ok(GetOut {
                records: Vec::new(),
                is_test_domain: false,
                is_default: domain.is_default,
                ownership_verification_status: "VERIFIED",
                dkim_verification_status: "VERIFIED",
            })
        })
        .await
}

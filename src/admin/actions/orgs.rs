//! CreateOrganization, DescribeOrganization, ListOrganizations.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{OrgIn, page};
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, secs};
use crate::clock::now_ms_u64 as now_ms;
use crate::directory::Organization;

/// One domain of CreateOrganization (HostedZoneId has no meaning here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DomainIn {
    domain_name: String,
}

/// CreateOrganization input (DirectoryId, KmsKeyArn and ClientToken are accepted and ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    alias: String,
    #[serde(default)]
    domains: Vec<DomainIn>,
}

/// CreateOrganization output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    organization_id: String,
}

/// The first domain becomes the default; without one the organization gets the
/// test domain `{alias}.test`. Installs the default allow-all access rule.
pub async fn create_organization(
    state: Arc<AdminState>,
    input: CreateIn,
) -> Result<CreateOut, ApiError> {
    state
        .blocking(move |s| {
            let mut domains = input.domains.into_iter().map(|d| d.domain_name);
            let first = domains
                .next()
                .unwrap_or_else(|| format!("{}.test", input.alias.to_ascii_lowercase()));
            let id = s.directory.create_organization(&input.alias, &first)?;
            for domain in domains {
                s.directory.register_mail_domain(&id, &domain)?;
            }
            s.access.create_organization_defaults(&id, now_ms())?;
            Ok(CreateOut {
                organization_id: id,
            })
        })
        .await
}

/// DescribeOrganization output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    organization_id: String,
    alias: String,
    state: &'static str,
    directory_type: &'static str,
    default_mail_domain: String,
    completed_date: f64,
    #[serde(rename = "ARN")]
    arn: String,
    interoperability_enabled: bool,
}

/// DescribeOrganization: state, default domain, ARN.
pub async fn describe_organization(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            let org = s.directory.describe_organization(&input.organization_id)?;
            Ok(DescribeOut {
                arn: s.org_arn(&org.id),
                state: org.state.as_str(),
                directory_type: "WorkMailDirectory",
                completed_date: secs(org.created),
                interoperability_enabled: false,
                organization_id: org.id,
                alias: org.alias,
                default_mail_domain: org.default_mail_domain,
            })
        })
        .await
}

/// One entry of ListOrganizations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    organization_id: String,
    alias: String,
    default_mail_domain: String,
    state: &'static str,
}

impl From<Organization> for Summary {
    fn from(o: Organization) -> Summary {
        Summary {
            state: o.state.as_str(),
            organization_id: o.id,
            alias: o.alias,
            default_mail_domain: o.default_mail_domain,
        }
    }
}

/// ListOrganizations output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    organization_summaries: Vec<Summary>,
    next_token: Option<String>,
}

/// ListOrganizations input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ListOrganizations, sorted by id.
pub async fn list_organizations(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            let (items, next_token) = page(
                s.directory.list_organizations(),
                input.max_results,
                input.next_token.as_deref(),
            )?;
            Ok(ListOut {
                organization_summaries: items.into_iter().map(Summary::from).collect(),
                next_token,
            })
        })
        .await
}

/// PutInboundDmarcSettings input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutDmarcIn {
    organization_id: String,
    enforced: bool,
}

/// PutInboundDmarcSettings: whether mail failing DMARC gets its domain's policy.
pub async fn put_inbound_dmarc_settings(
    state: Arc<AdminState>,
    input: PutDmarcIn,
) -> Result<Empty, ApiError> {
    state
        .blocking(move |s| {
            s.directory
                .set_inbound_dmarc_enforced(&input.organization_id, input.enforced)?;
            Ok(Empty {})
        })
        .await
}

/// DescribeInboundDmarcSettings output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DmarcOut {
    enforced: bool,
}

/// DescribeInboundDmarcSettings.
pub async fn describe_inbound_dmarc_settings(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<DmarcOut, ApiError> {
    state
        .blocking(move |s| {
            let org = s.directory.describe_organization(&input.organization_id)?;
            Ok(DmarcOut {
                enforced: org.inbound_dmarc_enforced,
            })
        })
        .await
}

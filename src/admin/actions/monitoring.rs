//! Email monitoring: PutEmailMonitoringConfiguration,
//! DescribeEmailMonitoringConfiguration, DeleteEmailMonitoringConfiguration.
//!
//! Decisions. The `LogGroupArn` names a configured event sink:
//! `arn:aws:logs:<admin.region>:<admin.account>:log-group:<sink name>:*` (the model
//! requires the trailing `:*`); an unknown sink, or another region or account, is
//! InvalidParameterException. While set, the organization's email events go to that
//! sink in addition to the default routing (every sink whose filter wants them), so
//! turning monitoring on never takes events away from the operator's own logs. The
//! `RoleArn` is checked against the model's shape and stored, never assumed. Both
//! are kept in the store's key-value table under the pseudo-ARN
//! `mailgate:email-monitoring/<organization id>` (not an organization ARN, so
//! ListTagsForResource never shows them) and re-applied at start.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::OrgIn;
use crate::admin::error::ApiError;
use crate::admin::state::AdminState;
use crate::events::Events;
use crate::store::Backend;

/// Where an organization's configuration is stored.
fn key(org: &str) -> String {
    format!("mailgate:email-monitoring/{org}")
}

/// The sink a log group ARN names, if the ARN is one of ours.
pub fn sink_of_log_group<'a>(arn: &'a str, region: &str, account: &str) -> Option<&'a str> {
    let name = arn
        .strip_prefix(&format!("arn:aws:logs:{region}:{account}:log-group:"))?
        .strip_suffix(":*")?;
    (!name.is_empty()).then_some(name)
}

/// The stored (RoleArn, LogGroupArn) of `org`, if any.
fn load(store: &Arc<dyn Backend>, org: &str) -> Result<Option<(String, String)>, ApiError> {
    let tags = store.tags_blocking(&key(org))?;
    let get = |k: &str| tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Ok(get("RoleArn").zip(get("LogGroupArn")))
}

/// Routes every organization with a stored configuration to its sink, and one
/// without to none; called at start, after a reload of the sinks, and when another
/// daemon on a shared store changed a configuration. A configuration naming a sink
/// that is no longer configured is logged and left in place (it applies again once
/// a start or reload configures the sink).
pub fn restore(
    store: &Arc<dyn Backend>,
    events: &Events,
    orgs: &[String],
    region: &str,
    account: &str,
) {
    for org in orgs {
        match load(store, org) {
            Ok(Some((_, log_group))) => {
                let sink = sink_of_log_group(&log_group, region, account).unwrap_or("");
                if !events.route_org(org, Some(sink)) {
                    tracing::warn!(organization = %org, log_group = %log_group, "email monitoring names a sink that is not configured");
                }
            }
            Ok(None) => {
                events.route_org(org, None);
            }
            Err(_) => {}
        }
    }
}

/// PutEmailMonitoringConfiguration input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutIn {
    organization_id: String,
    role_arn: String,
    log_group_arn: String,
}

/// PutEmailMonitoringConfiguration: sets or replaces the organization's configuration.
pub async fn put_email_monitoring_configuration(
    state: Arc<AdminState>,
    input: PutIn,
) -> Result<Empty, ApiError> {
    state
        .blocking(move |s| {
            s.directory.describe_organization(&input.organization_id)?;
            let role_ok = (20..=2048).contains(&input.role_arn.len())
                && input.role_arn.starts_with("arn:aws:iam:");
            if !role_ok {
                return Err(ApiError::invalid_parameter(
                    "RoleArn must be an IAM role ARN (arn:aws:iam:...)",
                ));
            }
            let sink = sink_of_log_group(&input.log_group_arn, &s.region, &s.account)
                .filter(|name| s.events.has_sink(name))
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "LogGroupArn must be arn:aws:logs:{}:{}:log-group:<sink>:* naming a configured event sink",
                        s.region, s.account
                    ))
                })?
                .to_string();
            let org = input.organization_id.clone();
            s.store.tag_blocking(
                &key(&org),
                vec![
                    ("RoleArn".into(), input.role_arn),
                    ("LogGroupArn".into(), input.log_group_arn),
                ],
                2,
            )?;
            s.events.route_org(&org, Some(&sink));
            Ok(Empty {})
        })
        .await
}

/// DescribeEmailMonitoringConfiguration output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    role_arn: String,
    log_group_arn: String,
}

/// DescribeEmailMonitoringConfiguration: ResourceNotFound when none is set.
pub async fn describe_email_monitoring_configuration(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<DescribeOut, ApiError> {
    state
        .blocking(move |s| {
            s.directory.describe_organization(&input.organization_id)?;
            match load(&s.store, &input.organization_id)? {
                Some((role_arn, log_group_arn)) => Ok(DescribeOut {
                    role_arn,
                    log_group_arn,
                }),
                None => Err(ApiError::workmail(
                    "ResourceNotFoundException",
                    "the organization has no email monitoring configuration",
                )),
            }
        })
        .await
}

/// DeleteEmailMonitoringConfiguration: a no-op when none is set.
pub async fn delete_email_monitoring_configuration(
    state: Arc<AdminState>,
    input: OrgIn,
) -> Result<Empty, ApiError> {
    state
        .blocking(move |s| {
            s.directory.describe_organization(&input.organization_id)?;
            s.store.untag_blocking(
                &key(&input.organization_id),
                vec!["RoleArn".into(), "LogGroupArn".into()],
            )?;
            s.events.route_org(&input.organization_id, None);
            Ok(Empty {})
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_group_arns_name_sinks() {
        let arn = "arn:aws:logs:local:000000000000:log-group:siem:*";
        assert_eq!(
            sink_of_log_group(arn, "local", "000000000000"),
            Some("siem")
        );
        assert_eq!(sink_of_log_group(arn, "eu-west-1", "000000000000"), None);
        assert_eq!(
            sink_of_log_group(
                "arn:aws:logs:local:000000000000:log-group:siem",
                "local",
                "000000000000"
            ),
            None
        );
        assert_eq!(
            sink_of_log_group(
                "arn:aws:logs:local:000000000000:log-group::*",
                "local",
                "000000000000"
            ),
            None
        );
    }
}

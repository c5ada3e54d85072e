//! Mailbox export jobs: StartMailboxExportJob, DescribeMailboxExportJob,
//! ListMailboxExportJobs, CancelMailboxExportJob. Wire shapes and input checks
//! only; the jobs themselves are `crate::export`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{date, page};
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, secs};
use crate::clock::now_ms_u64 as now_ms;
use crate::directory::{DirectoryError, EntityKind, OrganizationState};
use crate::export::job::{JobRecord, JobState};
use crate::export::jobs::{Cancelled, StartRefused};
use crate::export::{ExportJobs, naming};
use crate::shared::Shared;

/// The daemon's export job service: writes under `[export] root`, resumes the
/// jobs a previous run left RUNNING and, on a shared store, adopts those of
/// daemons that are gone (see `crate::export::jobs`).
pub fn start_jobs(shared: &Shared) -> Arc<ExportJobs> {
    let root = shared.config.data_path(&shared.config.export.root);
    let jobs = ExportJobs::new(shared.store.clone(), root);
    let orgs: Vec<String> = shared
        .directory
        .list_organizations()
        .into_iter()
        .map(|o| o.id)
        .collect();
    jobs.resume(orgs);
    if shared.store.is_shared() {
        let directory = shared.directory.clone();
        let orgs = move || {
            directory
                .list_organizations()
                .into_iter()
                .map(|o| o.id)
                .collect()
        };
        jobs.adopt_orphans(orgs, shared.draining.clone());
    }
    jobs
}

/// StartMailboxExportJob input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartIn {
    client_token: String,
    organization_id: String,
    entity_id: String,
    description: Option<String>,
    role_arn: String,
    kms_key_arn: String,
    s3_bucket_name: String,
    s3_prefix: String,
}

/// StartMailboxExportJob output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartOut {
    job_id: String,
}

/// Checks the members the model constrains; the prefix comes back normalized.
fn check_start(input: &StartIn) -> Result<String, String> {
    naming::check_client_token(&input.client_token)?;
    if let Some(d) = &input.description {
        naming::check_description(d)?;
    }
    naming::check_arn("RoleArn", "iam", &input.role_arn)?;
    naming::check_arn("KmsKeyArn", "kms", &input.kms_key_arn)?;
    naming::check_bucket(&input.s3_bucket_name)?;
    naming::normalize_prefix(&input.s3_prefix)
}

/// StartMailboxExportJob: validates, resolves the user or resource, applies
/// WorkMail's limits (LimitExceededException) and starts the job in the
/// background; a repeated ClientToken answers the first job's id.
pub async fn start_mailbox_export_job(
    state: Arc<AdminState>,
    input: StartIn,
) -> Result<StartOut, ApiError> {
    let prefix = check_start(&input).map_err(ApiError::invalid_parameter)?;
    let (job, new) = state
        .blocking(move |s| {
            let entity = s.directory.resolve_identifier(
                &input.organization_id,
                &input.entity_id,
                &[EntityKind::User, EntityKind::Resource],
            )?;
            let job_id = uuid::Uuid::new_v4().to_string();
            let record = JobRecord {
                s3_path: naming::s3_path(&input.s3_bucket_name, &prefix, &job_id),
                job_id,
                org_id: input.organization_id,
                entity_id: entity.id,
                description: input.description,
                role_arn: input.role_arn,
                kms_key_arn: input.kms_key_arn,
                bucket: input.s3_bucket_name,
                prefix,
                client_token: input.client_token,
                progress: 0,
                state: JobState::Running,
                error_info: None,
                start_ms: now_ms(),
                end_ms: None,
                owner: String::new(),
                lease_until_ms: 0,
            };
            s.exports
                .start_blocking(record, now_ms())
                .map_err(|e| match e {
                    StartRefused::Limit(l) => {
                        ApiError::workmail("LimitExceededException", l.to_string())
                    }
                    StartRefused::TokenReused => ApiError::invalid_parameter(e.to_string()),
                    StartRefused::Store(e) => e.into(),
                })
        })
        .await?;
    let job_id = job.job_id.clone();
    if new {
        state.exports.spawn(job);
    }
    Ok(StartOut { job_id })
}

/// An organization plus a job id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgJob {
    organization_id: String,
    job_id: String,
}

/// DescribeMailboxExportJob output (times in epoch seconds).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOut {
    entity_id: String,
    description: Option<String>,
    role_arn: String,
    kms_key_arn: String,
    s3_bucket_name: String,
    s3_prefix: String,
    s3_path: String,
    estimated_progress: u8,
    state: &'static str,
    error_info: Option<String>,
    start_time: f64,
    end_time: Option<f64>,
}

/// The organization must exist and be active (OrganizationNotFound/StateException).
fn check_org(state: &AdminState, org_id: &str) -> Result<(), ApiError> {
    let org = state.directory.describe_organization(org_id)?;
    if org.state != OrganizationState::Active {
        return Err(DirectoryError::OrganizationState(format!(
            "organization {org_id} is {}",
            org.state
        ))
        .into());
    }
    Ok(())
}

fn no_job(job_id: &str) -> ApiError {
    ApiError::workmail(
        "EntityNotFoundException",
        format!("no mailbox export job {job_id}"),
    )
}

/// The model's JobId pattern `[A-Za-z0-9-]+`, 1-63.
fn check_job_id(job_id: &str) -> Result<(), ApiError> {
    if (1..=63).contains(&job_id.len())
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter("JobId is not a valid job id"))
    }
}

/// DescribeMailboxExportJob: EntityNotFoundException for an unknown job.
pub async fn describe_mailbox_export_job(
    state: Arc<AdminState>,
    input: OrgJob,
) -> Result<DescribeOut, ApiError> {
    check_job_id(&input.job_id)?;
    state
        .blocking(move |s| {
            check_org(s, &input.organization_id)?;
            let j = s
                .exports
                .get_blocking(&input.organization_id, &input.job_id)?
                .ok_or_else(|| no_job(&input.job_id))?;
            Ok(DescribeOut {
                entity_id: j.entity_id,
                description: j.description,
                role_arn: j.role_arn,
                kms_key_arn: j.kms_key_arn,
                s3_bucket_name: j.bucket,
                s3_prefix: j.prefix,
                s3_path: j.s3_path,
                estimated_progress: j.progress,
                state: j.state.as_str(),
                error_info: j.error_info,
                start_time: secs(j.start_ms),
                end_time: date(j.end_ms),
            })
        })
        .await
}

/// ListMailboxExportJobs input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// One MailboxExportJob of a list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobOut {
    job_id: String,
    entity_id: String,
    description: Option<String>,
    s3_bucket_name: String,
    s3_path: String,
    estimated_progress: u8,
    state: &'static str,
    start_time: f64,
    end_time: Option<f64>,
}

/// ListMailboxExportJobs output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    jobs: Vec<JobOut>,
    next_token: Option<String>,
}

/// ListMailboxExportJobs: jobs started in the last seven days, newest first.
pub async fn list_mailbox_export_jobs(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    state
        .blocking(move |s| {
            check_org(s, &input.organization_id)?;
            let jobs = s.exports.list_blocking(&input.organization_id, now_ms())?;
            let (jobs, next_token) = page(jobs, input.max_results, input.next_token.as_deref())?;
            Ok(ListOut {
                jobs: jobs
                    .into_iter()
                    .map(|j| JobOut {
                        job_id: j.job_id,
                        entity_id: j.entity_id,
                        description: j.description,
                        s3_bucket_name: j.bucket,
                        s3_path: j.s3_path,
                        estimated_progress: j.progress,
                        state: j.state.as_str(),
                        start_time: secs(j.start_ms),
                        end_time: date(j.end_ms),
                    })
                    .collect(),
                next_token,
            })
        })
        .await
}

/// CancelMailboxExportJob input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelIn {
    client_token: String,
    organization_id: String,
    job_id: String,
}

/// CancelMailboxExportJob: a RUNNING job stops and leaves no zip; cancelling a
/// CANCELLED job again succeeds; one that already COMPLETED or FAILED cannot be
/// cancelled (InvalidParameterException).
pub async fn cancel_mailbox_export_job(
    state: Arc<AdminState>,
    input: CancelIn,
) -> Result<Empty, ApiError> {
    naming::check_client_token(&input.client_token).map_err(ApiError::invalid_parameter)?;
    check_job_id(&input.job_id)?;
    state
        .blocking(move |s| {
            check_org(s, &input.organization_id)?;
            match s
                .exports
                .cancel_blocking(&input.organization_id, &input.job_id, now_ms())?
            {
                Cancelled::Done => Ok(Empty {}),
                Cancelled::Unknown => Err(no_job(&input.job_id)),
                Cancelled::AlreadyEnded(st) => Err(ApiError::invalid_parameter(format!(
                    "mailbox export job {} is already {}",
                    input.job_id,
                    st.as_str()
                ))),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(f: impl FnOnce(&mut serde_json::Value)) -> StartIn {
        let mut v = serde_json::json!({
            "ClientToken": "t-1",
            "OrganizationId": "m-00000000000000000000000000000001",
            "EntityId": "alice",
            "RoleArn": "arn:aws:iam::000000000000:role/export",
            "KmsKeyArn": "arn:aws:kms:local:000000000000:key/k-1",
            "S3BucketName": "bucket-1",
            "S3Prefix": "a/b/",
        });
        f(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn start_inputs_are_checked_member_by_member() {
        assert_eq!(check_start(&input(|_| {})).unwrap(), "a/b");
        let bad: [(&str, serde_json::Value); 6] = [
            ("ClientToken", "".into()),
            ("Description", "x".repeat(1024).into()),
            ("RoleArn", "arn:aws:kms::000000000000:key/k-1".into()),
            ("KmsKeyArn", "arn:aws:iam::000000000000:role/export".into()),
            ("S3BucketName", "Bucket_1".into()),
            ("S3Prefix", "a/../b".into()),
        ];
        for (member, value) in bad {
            let e = check_start(&input(|v| v[member] = value)).unwrap_err();
            assert!(e.contains(member), "{member}: {e}");
        }
    }

    #[test]
    fn job_ids_follow_the_model_pattern() {
        assert!(check_job_id("0b6c1f2e-1234-4abc-8def-000000000000").is_ok());
        for bad in ["", "a_b", "a b", &"a".repeat(64)] {
            assert_eq!(
                check_job_id(bad).unwrap_err().kind,
                "InvalidParameterException"
            );
        }
    }
}

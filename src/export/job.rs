//! A mailbox export job as stored and answered (its record and states), the
//! summary JSON a finished job writes beside its zip, and WorkMail's limits on
//! starting one. Pure: no I/O, time passed in.

use serde::{Deserialize, Serialize};

/// Most jobs of one organization RUNNING at once (WorkMail's limit).
pub const MAX_CONCURRENT_PER_ORG: usize = 10;
/// A mailbox may be exported once per this window (WorkMail: once per 24 h).
pub const PER_MAILBOX_WINDOW_MS: u64 = 24 * 3600 * 1000;
/// ListMailboxExportJobs answers jobs started within this window (the model: "within
/// the last seven days"); older finished records are pruned.
pub const LIST_WINDOW_MS: u64 = 7 * 24 * 3600 * 1000;

/// How long a job's owner holds it without renewing its lease
/// ([`JobRecord::lease_until_ms`]): past it, another daemon sharing the store
/// adopts the job (its owner died or lost the database). The owner renews at
/// every progress write and at least every tenth of this.
pub const LEASE_MS: u64 = 5 * 60 * 1000;

/// The model's MailboxExportJobState. A job is RUNNING from the moment it is
/// accepted (the model has no queued state) until it ends in one of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
        }
    }
}

/// One job, as persisted (JSON) and as Describe/List answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub org_id: String,
    /// The user or resource id (its mailbox id).
    pub entity_id: String,
    pub description: Option<String>,
    pub role_arn: String,
    pub kms_key_arn: String,
    pub bucket: String,
    /// Normalized (no trailing `/`).
    pub prefix: String,
    pub s3_path: String,
    /// The ClientToken that started it: a repeat returns this job.
    pub client_token: String,
    /// EstimatedProgress, 0-100 (100 only once COMPLETED).
    pub progress: u8,
    pub state: JobState,
    pub error_info: Option<String>,
    /// Epoch milliseconds.
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    /// The daemon running it (`Backend::node`): only that daemon resumes it after
    /// a restart, so two daemons on a shared store never write one zip at once.
    #[serde(default)]
    pub owner: String,
    /// Epoch milliseconds until which `owner` holds the job; 0 in records from
    /// before leases (their lease is taken to end one [`LEASE_MS`] after the start).
    #[serde(default)]
    pub lease_until_ms: u64,
}

impl JobRecord {
    /// Whether a repeated StartMailboxExportJob with the same ClientToken asks for
    /// the same export (then it answers this job's id).
    pub fn same_request(&self, other: &JobRecord) -> bool {
        (
            &self.entity_id,
            &self.description,
            &self.role_arn,
            &self.kms_key_arn,
            &self.bucket,
            &self.prefix,
        ) == (
            &other.entity_id,
            &other.description,
            &other.role_arn,
            &other.kms_key_arn,
            &other.bucket,
            &other.prefix,
        )
    }
}

/// Why a start was refused by a limit (a `LimitExceededException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the organization already has {MAX_CONCURRENT_PER_ORG} mailbox export jobs running")]
    Concurrent,
    #[error("mailbox {0} was already exported in the last 24 hours")]
    Daily(String),
}

/// WorkMail's two limits, checked against the organization's `jobs`: at most ten
/// RUNNING, and one export per mailbox per 24 h. A job that FAILED or was
/// CANCELLED exported nothing and does not count against the mailbox's window, so
/// an operator can fix the cause and start again.
pub fn check_limits(jobs: &[JobRecord], entity_id: &str, now_ms: u64) -> Result<(), LimitError> {
    let running = jobs.iter().filter(|j| j.state == JobState::Running).count();
    if running >= MAX_CONCURRENT_PER_ORG {
        return Err(LimitError::Concurrent);
    }
    let recent = jobs.iter().any(|j| {
        j.entity_id == entity_id
            && matches!(j.state, JobState::Running | JobState::Completed)
            && now_ms.saturating_sub(j.start_ms) < PER_MAILBOX_WINDOW_MS
    });
    if recent {
        return Err(LimitError::Daily(entity_id.to_string()));
    }
    Ok(())
}

/// When a job's lease ends.
pub fn lease_end(job: &JobRecord) -> u64 {
    if job.lease_until_ms > 0 {
        job.lease_until_ms
    } else {
        job.start_ms.saturating_add(LEASE_MS)
    }
}

/// Whether daemon `me` may adopt `job`: RUNNING, another daemon's, its lease over.
pub fn adoptable(job: &JobRecord, me: &str, now_ms: u64) -> bool {
    job.state == JobState::Running && job.owner != me && now_ms >= lease_end(job)
}

/// Whether a record is old enough to drop: finished and started before the list
/// window (a RUNNING job is never dropped).
pub fn expired(job: &JobRecord, now_ms: u64) -> bool {
    job.state != JobState::Running && now_ms.saturating_sub(job.start_ms) >= LIST_WINDOW_MS
}

/// EstimatedProgress while running: the share of the items counted at the start
/// that are written, capped at 99 (100 means COMPLETED).
pub fn progress(done: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    // Cast: the value is at most 99.
    (done.saturating_mul(100) / total).min(99) as u8
}

/// The summary JSON WorkMail writes beside the export (reference §6.4): every
/// value a string, times in epoch milliseconds. `sha384Hash` is the lowercase hex
/// SHA-384 of the zip file's bytes, so a downloader can check the archive;
/// `totalBytes` counts the exported messages' MIME bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total_messages: String,
    pub total_folders: String,
    pub total_bytes: String,
    pub total_non_exportable_items: String,
    pub sha384_hash: String,
    pub start_time: String,
    pub end_time: String,
}

/// What a job counted while writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages: u64,
    pub folders: u64,
    pub bytes: u64,
    pub non_exportable: u64,
}

impl Summary {
    /// The summary of a finished export.
    pub fn new(t: Totals, sha384_hex: String, start_ms: u64, end_ms: u64) -> Summary {
        Summary {
            total_messages: t.messages.to_string(),
            total_folders: t.folders.to_string(),
            total_bytes: t.bytes.to_string(),
            total_non_exportable_items: t.non_exportable.to_string(),
            sha384_hash: sha384_hex,
            start_time: start_ms.to_string(),
            end_time: end_ms.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(entity: &str, state: JobState, start_ms: u64) -> JobRecord {
        JobRecord {
            job_id: format!("{entity}-{start_ms}"),
            org_id: "m-1".into(),
            entity_id: entity.into(),
            description: None,
            role_arn: "r".into(),
            kms_key_arn: "k".into(),
            bucket: "b".into(),
            prefix: "p".into(),
            s3_path: "b/p/x.zip".into(),
            client_token: "t".into(),
            progress: 0,
            state,
            error_info: None,
            start_ms,
            end_ms: None,
            owner: String::new(),
            lease_until_ms: 0,
        }
    }

    const DAY: u64 = PER_MAILBOX_WINDOW_MS;

    #[test]
    fn ten_running_jobs_per_organization() {
        let now = 10 * DAY;
        let mut jobs: Vec<JobRecord> = (0..9)
            .map(|i| job(&format!("u{i}"), JobState::Running, now))
            .collect();
        assert_eq!(check_limits(&jobs, "new", now), Ok(()));
        jobs.push(job("u9", JobState::Running, now));
        assert_eq!(check_limits(&jobs, "new", now), Err(LimitError::Concurrent));
        // Finished jobs do not count.
        jobs[0].state = JobState::Completed;
        assert_eq!(check_limits(&jobs, "new", now), Ok(()));
    }

    #[test]
    fn one_export_per_mailbox_per_day() {
        let now = 10 * DAY;
        let jobs = vec![job("alice", JobState::Completed, now - DAY + 1)];
        assert_eq!(
            check_limits(&jobs, "alice", now),
            Err(LimitError::Daily("alice".into()))
        );
        assert_eq!(check_limits(&jobs, "bob", now), Ok(()));
        let jobs = vec![job("alice", JobState::Completed, now - DAY)];
        assert_eq!(check_limits(&jobs, "alice", now), Ok(()));
        for state in [JobState::Failed, JobState::Cancelled] {
            let jobs = vec![job("alice", state, now - 1)];
            assert_eq!(check_limits(&jobs, "alice", now), Ok(()), "{state:?}");
        }
        let jobs = vec![job("alice", JobState::Running, now - 1)];
        assert!(check_limits(&jobs, "alice", now).is_err());
    }

    #[test]
    fn only_another_daemons_running_job_past_its_lease_is_adoptable() {
        let mut j = job("e", JobState::Running, 1_000);
        j.owner = "a".into();
        j.lease_until_ms = 5_000;
        assert!(!adoptable(&j, "b", 4_999));
        assert!(adoptable(&j, "b", 5_000));
        assert!(!adoptable(&j, "a", 9_999), "never one's own");
        j.state = JobState::Completed;
        assert!(!adoptable(&j, "b", 9_999), "only RUNNING");
        // A record from before leases: one lease after its start.
        j.state = JobState::Running;
        j.lease_until_ms = 0;
        assert_eq!(lease_end(&j), 1_000 + LEASE_MS);
        assert!(!adoptable(&j, "b", LEASE_MS));
        assert!(adoptable(&j, "b", 1_000 + LEASE_MS));
    }

    #[test]
    fn old_finished_records_expire_running_ones_never() {
        let now = 30 * DAY;
        assert!(expired(&job("a", JobState::Completed, now - 7 * DAY), now));
        assert!(!expired(
            &job("a", JobState::Completed, now - 7 * DAY + 1),
            now
        ));
        assert!(!expired(&job("a", JobState::Running, 0), now));
    }

    #[test]
    fn progress_is_capped_below_completion() {
        assert_eq!(progress(0, 0), 0);
        assert_eq!(progress(1, 4), 25);
        assert_eq!(progress(4, 4), 99);
        assert_eq!(progress(9, 4), 99);
    }

    #[test]
    fn summary_has_workmails_keys_as_strings() {
        let s = Summary::new(
            Totals {
                messages: 3,
                folders: 2,
                bytes: 1234,
                non_exportable: 1,
            },
            "ab".repeat(48),
            1_000,
            2_000,
        );
        let v = serde_json::to_value(&s).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = vec![
            "totalMessages",
            "totalFolders",
            "totalBytes",
            "totalNonExportableItems",
            "sha384Hash",
            "startTime",
            "endTime",
        ];
        want.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, want);
        assert_eq!(v["totalMessages"], "3");
        assert_eq!(v["totalNonExportableItems"], "1");
        assert_eq!(v["startTime"], "1000");
        assert_eq!(v["endTime"], "2000");
    }

    #[test]
    fn records_round_trip_and_compare_requests() {
        let a = job("alice", JobState::Running, 5);
        let text = serde_json::to_string(&a).unwrap();
        assert!(text.contains("\"RUNNING\""));
        assert_eq!(serde_json::from_str::<JobRecord>(&text).unwrap(), a);
        let mut b = a.clone();
        b.job_id = "other".into();
        assert!(a.same_request(&b));
        b.bucket = "c".into();
        assert!(!a.same_request(&b));
    }
}

//! The export job service: starts, lists, describes and cancels jobs, persists
//! their records, and runs each as a background task.
//!
//! Records are JSON values in the store's tag table under the synthetic key
//! `mailgate:mailbox-export/<organization id>` (one tag per job), so every store
//! backend keeps them without a table of their own, and they survive a restart.
//! Every read-modify-write of a record (progress, cancel, completion) is saved
//! only over the value it read (`Tags::tag_if_blocking`), reading again when
//! another writer came first, so a cancel is never overwritten by the job it
//! cancels, even when another daemon sharing the store runs the job. A start
//! is saved only over the organization's records version (a tag of its own),
//! so two starts on two daemons cannot together pass the limits.
//!
//! Restart semantics: a job found RUNNING when the daemon starts is resumed by
//! running it again from its first message (its partial zip is discarded and
//! rewritten; the export is not a point-in-time snapshot anyway). Its JobId,
//! StartTime and output path stay the same.
//!
//! On a store several daemons share, each job is leased by the daemon running
//! it (`owner`, `lease_until_ms`, renewed by every progress write and a
//! heartbeat); every write of a running job is fenced by the owner, and a job
//! whose lease ran out (its daemon died or lost the database) is adopted by
//! another daemon, which runs it again from its first message under its own
//! export root.
//!
//! Bounded work: at most [`RUNNING_AT_ONCE`] jobs of the whole daemon read the
//! store at a time (the others wait, RUNNING at 0 %); a job reads message
//! metadata in pages of [`PAGE_UIDS`] UIDs and bodies one at a time on the
//! store's reader pool, never the writer delivery uses, and hands them through a
//! channel of two to a writer thread of its own at a lower CPU priority (nice 10),
//! so memory stays at a few messages and compression yields to delivery.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::archive::{self, Entry};
use super::job::{self, JobRecord, JobState, LimitError, Summary, Totals};
use super::naming::{exportable, folder_entry, message_entry, object_dir, temp_zip_name};
use crate::store::{Backend, Folder, StoreError};

/// How often a running job renews its lease when it writes no progress.
const HEARTBEAT: Duration = Duration::from_millis(job::LEASE_MS / 10);
/// How often a daemon on a shared store looks for jobs whose owner is gone.
const ADOPT_EVERY: Duration = Duration::from_secs(60);

/// Jobs reading the store at once, daemon-wide.
pub const RUNNING_AT_ONCE: usize = 2;
/// UIDs per metadata page.
pub const PAGE_UIDS: u32 = 200;

/// Why a start was refused.
#[derive(Debug, thiserror::Error)]
pub enum StartRefused {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("ClientToken was already used for a different mailbox export request")]
    TokenReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a cancel found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// No such job in the organization.
    Unknown,
    /// Now (or already) CANCELLED.
    Done,
    /// It had ended otherwise (COMPLETED or FAILED) before the cancel.
    AlreadyEnded(JobState),
}

/// The export jobs of every organization.
pub struct ExportJobs {
    store: Arc<dyn Backend>,
    root: PathBuf,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    slots: Arc<Semaphore>,
}

fn key(org_id: &str) -> String {
    format!("{}{org_id}", crate::store::tags::RECORDS_PREFIX)
}

/// The tag counting an organization's starts: what a start is saved over. Not
/// a job id (those are UUIDs).
const STARTS: &str = "~starts";

/// How often a record write reads again after another writer came first
/// before it gives up (a handful of writers at most ever race on one record).
const ATTEMPTS: usize = 100;

type Result<T> = std::result::Result<T, StoreError>;

impl ExportJobs {
    /// Jobs writing under `root` (`[export] root`, resolved).
    pub fn new(store: Arc<dyn Backend>, root: PathBuf) -> Arc<ExportJobs> {
        Arc::new(ExportJobs {
            store,
            root,
            cancels: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(RUNNING_AT_ONCE)),
        })
    }

    /// Every record of an organization (blocking).
    fn load(&self, org_id: &str) -> Result<Vec<JobRecord>> {
        let tags = self.store.tags_blocking(&key(org_id))?;
        Ok(parse(tags).into_iter().map(|(r, _)| r).collect())
    }

    /// One job's record and the stored text it was read from.
    fn stored(&self, org_id: &str, job_id: &str) -> Result<Option<(JobRecord, String)>> {
        let tags = self.store.tags_blocking(&key(org_id))?;
        Ok(parse(tags).into_iter().find(|(r, _)| r.job_id == job_id))
    }

    /// Applies `change` to the stored record of a job and saves it over the
    /// text it read, reading again if another writer saved in between. `change`
    /// says whether to save; returns whether it saved (false: the record is
    /// gone or `change` declined).
    fn modify(
        &self,
        org_id: &str,
        job_id: &str,
        change: impl Fn(&mut JobRecord) -> bool,
    ) -> Result<bool> {
        for _ in 0..ATTEMPTS {
            let Some((mut record, read)) = self.stored(org_id, job_id)? else {
                return Ok(false);
            };
            if !change(&mut record) {
                return Ok(false);
            }
            let saved = self.store.tag_if_blocking(
                &key(org_id),
                job_id,
                Some(&read),
                vec![(job_id.to_string(), to_json(&record)?)],
            )?;
            if saved {
                return Ok(true);
            }
        }
        Err(busy(job_id))
    }

    /// The organization's jobs started within the last seven days, newest first
    /// (ties by id): the stable order ListMailboxExportJobs pages through.
    pub fn list_blocking(&self, org_id: &str, now_ms: u64) -> Result<Vec<JobRecord>> {
        let mut jobs: Vec<JobRecord> = self
            .load(org_id)?
            .into_iter()
            .filter(|j| now_ms.saturating_sub(j.start_ms) < job::LIST_WINDOW_MS)
            .collect();
        jobs.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then(a.job_id.cmp(&b.job_id)));
        Ok(jobs)
    }

    /// One job of an organization.
    pub fn get_blocking(&self, org_id: &str, job_id: &str) -> Result<Option<JobRecord>> {
        Ok(self.load(org_id)?.into_iter().find(|j| j.job_id == job_id))
    }

    /// Records a new RUNNING job after the ClientToken and limit checks, or returns
    /// the job an earlier call with the same ClientToken started (`false`).
    /// Records older than the list window are pruned here. The caller then
    /// [`ExportJobs::spawn`]s a new job.
    pub fn start_blocking(
        &self,
        mut new: JobRecord,
        now_ms: u64,
    ) -> std::result::Result<(JobRecord, bool), StartRefused> {
        new.owner = self.store.node().to_string();
        new.lease_until_ms = now_ms + job::LEASE_MS;
        let arn = key(&new.org_id);
        for _ in 0..ATTEMPTS {
            let tags = self.store.tags_blocking(&arn)?;
            let starts = tags
                .iter()
                .find(|(k, _)| k == STARTS)
                .map(|(_, v)| v.clone());
            let mut jobs: Vec<JobRecord> = parse(tags).into_iter().map(|(r, _)| r).collect();
            if let Some(old) = jobs.iter().find(|j| j.client_token == new.client_token) {
                return if old.same_request(&new) {
                    Ok((old.clone(), false))
                } else {
                    Err(StartRefused::TokenReused)
                };
            }
            let expired: Vec<String> = jobs
                .iter()
                .filter(|j| job::expired(j, now_ms))
                .map(|j| j.job_id.clone())
                .collect();
            if !expired.is_empty() {
                self.store.untag_blocking(&arn, expired)?;
                jobs.retain(|j| !job::expired(j, now_ms));
            }
            job::check_limits(&jobs, &new.entity_id, now_ms)?;
            let next = starts
                .as_deref()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let writes = vec![
                (STARTS.to_string(), next.to_string()),
                (new.job_id.clone(), to_json(&new)?),
            ];
            if self
                .store
                .tag_if_blocking(&arn, STARTS, starts.as_deref(), writes)?
            {
                return Ok((new, true));
            }
        }
        Err(busy(&new.job_id).into())
    }

    /// Whether `job` is RUNNING and this daemon's: only then may it write it.
    fn mine(&self, job: &JobRecord) -> bool {
        job.state == JobState::Running && job.owner == self.store.node()
    }

    /// Applies `f` to a RUNNING job of this daemon's and saves it with its lease
    /// renewed; a job that has ended (cancelled meanwhile, on any daemon) or was
    /// adopted by another daemon is left alone and `false` returned.
    fn update_running(&self, job: &JobRecord, f: impl Fn(&mut JobRecord)) -> Result<bool> {
        self.modify(&job.org_id, &job.job_id, |current| {
            let mine = self.mine(current);
            if mine {
                f(current);
                current.lease_until_ms = crate::clock::now_ms_u64() + job::LEASE_MS;
            }
            mine
        })
    }

    /// Adopts, in `org_ids`, every RUNNING job whose owner's lease ran out:
    /// each becomes this daemon's (saved over the record read, so of two daemons
    /// adopting at once one wins) and is returned for [`ExportJobs::spawn`].
    pub fn adopt_blocking(&self, org_ids: &[String], now_ms: u64) -> Result<Vec<JobRecord>> {
        let me = self.store.node().to_string();
        let mut adopted = Vec::new();
        for org in org_ids {
            for found in self.load(org)? {
                if !job::adoptable(&found, &me, now_ms) {
                    continue;
                }
                let taken = self.modify(org, &found.job_id, |current| {
                    let free = job::adoptable(current, &me, now_ms);
                    if free {
                        current.owner = me.clone();
                        current.lease_until_ms = now_ms + job::LEASE_MS;
                        current.progress = 0;
                    }
                    free
                })?;
                if taken && let Some(record) = self.get_blocking(org, &found.job_id)? {
                    tracing::warn!(
                        job_id = record.job_id,
                        previous_owner = found.owner,
                        "adopted a mailbox export job whose daemon stopped renewing it"
                    );
                    adopted.push(record);
                }
            }
        }
        Ok(adopted)
    }

    /// On a shared store: every [`ADOPT_EVERY`], adopts the jobs of daemons that
    /// are gone in the organizations `orgs` lists and runs them; stops when
    /// `stop` is cancelled.
    pub fn adopt_orphans(
        self: &Arc<Self>,
        orgs: impl Fn() -> Vec<String> + Send + Sync + 'static,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let orgs = Arc::new(orgs);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(ADOPT_EVERY) => {}
                }
                let (finder, orgs) = (me.clone(), orgs.clone());
                let found = tokio::task::spawn_blocking(move || {
                    finder.adopt_blocking(&orgs(), crate::clock::now_ms_u64())
                })
                .await;
                match found {
                    Ok(Ok(jobs)) => jobs.into_iter().for_each(|j| me.spawn(j)),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot look for orphaned export jobs")
                    }
                    Err(_) => {}
                }
            }
        })
    }

    /// CancelMailboxExportJob: a RUNNING job becomes CANCELLED at once and its
    /// task stops at the next message, removing its partial zip.
    pub fn cancel_blocking(&self, org_id: &str, job_id: &str, now_ms: u64) -> Result<Cancelled> {
        let cancelled = self.modify(org_id, job_id, |j| {
            let running = j.state == JobState::Running;
            if running {
                j.state = JobState::Cancelled;
                j.end_ms = Some(now_ms);
            }
            running
        })?;
        let outcome = match cancelled {
            true => Cancelled::Done,
            false => match self.get_blocking(org_id, job_id)? {
                None => Cancelled::Unknown,
                Some(j) if j.state == JobState::Cancelled => Cancelled::Done,
                Some(j) => Cancelled::AlreadyEnded(j.state),
            },
        };
        if outcome == Cancelled::Done
            && let Some(token) = self.cancel_token(job_id, false)
        {
            token.cancel();
        }
        Ok(outcome)
    }

    fn cancel_token(&self, job_id: &str, create: bool) -> Option<CancellationToken> {
        let mut map = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        if create {
            Some(map.entry(job_id.to_string()).or_default().clone())
        } else {
            map.get(job_id).cloned()
        }
    }

    /// Resumes, in the background, every job of this daemon found RUNNING in
    /// `org_ids` (at daemon start): each runs again from its first message. A
    /// job of a daemon that never comes back stays RUNNING (a shared store).
    pub fn resume(self: &Arc<Self>, org_ids: Vec<String>) -> tokio::task::JoinHandle<usize> {
        let me = self.clone();
        tokio::spawn(async move {
            let finder = me.clone();
            let found = tokio::task::spawn_blocking(move || {
                let mut running = Vec::new();
                for org in &org_ids {
                    match finder.load(org) {
                        // Only this daemon's own: another daemon on a shared
                        // store may be running its jobs right now.
                        Ok(jobs) => running.extend(jobs.into_iter().filter(|j| {
                            j.state == JobState::Running && j.owner == finder.store.node()
                        })),
                        Err(e) => tracing::warn!(org, error = %e, "cannot read export jobs"),
                    }
                }
                running
            })
            .await
            .unwrap_or_default();
            let n = found.len();
            for j in found {
                tracing::info!(job_id = j.job_id, "resuming mailbox export job");
                me.spawn(j);
            }
            n
        })
    }

    /// Runs a RUNNING job in the background (a tokio task), renewing its lease
    /// every [`HEARTBEAT`] while it waits or runs.
    pub fn spawn(self: &Arc<Self>, job: JobRecord) {
        let token = self.cancel_token(&job.job_id, true).unwrap_or_default();
        let me = self.clone();
        tokio::spawn(async move {
            let id = job.job_id.clone();
            let heartbeat = me.heartbeat(job.clone(), token.clone());
            me.clone().run(job, token).await;
            heartbeat.abort();
            me.cancels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Renews `job`'s lease every [`HEARTBEAT`]; cancels it locally once it is
    /// no longer this daemon's to run (cancelled or adopted elsewhere).
    fn heartbeat(
        self: &Arc<Self>,
        job: JobRecord,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let (m, j) = (me.clone(), job.clone());
                let renewed =
                    tokio::task::spawn_blocking(move || m.update_running(&j, |_| {})).await;
                if let Ok(Ok(false)) = renewed {
                    cancel.cancel();
                    return;
                }
            }
        })
    }

    async fn run(self: Arc<Self>, job: JobRecord, cancel: CancellationToken) {
        let _permit = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok(),
            _ = cancel.cancelled() => return,
        };
        let dir = object_dir(&self.root, &job.bucket, &job.prefix);
        let outcome = self.export(&job, &dir, &cancel).await;
        let me = self.clone();
        let job_id = job.job_id.clone();
        let finished = tokio::task::spawn_blocking(move || me.finish(&job, &dir, outcome)).await;
        let error = match finished {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(job_id, error, "mailbox export job could not record its end");
    }

    /// Publishes or discards a job's files, then records how it ended over the
    /// RUNNING record it read; a job cancelled meanwhile (on any daemon) keeps
    /// no files.
    fn finish(&self, job: &JobRecord, dir: &std::path::Path, outcome: Outcome) -> Result<()> {
        let running = self
            .get_blocking(&job.org_id, &job.job_id)?
            .is_some_and(|j| self.mine(&j));
        if !running {
            archive::discard(dir, &job.job_id);
            return Ok(());
        }
        let now = crate::clock::now_ms_u64();
        let (state, error_info) = match outcome {
            Outcome::Cancelled => {
                // Only a cancel stops a feed, and it records CANCELLED first; kept
                // consistent here all the same.
                archive::discard(dir, &job.job_id);
                (JobState::Cancelled, None)
            }
            Outcome::Failed(message) => {
                archive::discard(dir, &job.job_id);
                (JobState::Failed, Some(message))
            }
            Outcome::Written(totals, hash) => {
                let summary = Summary::new(totals, hash, job.start_ms, now);
                match archive::publish(dir, &job.job_id, &summary) {
                    Ok(()) => (JobState::Completed, None),
                    Err(e) => {
                        archive::discard(dir, &job.job_id);
                        (JobState::Failed, Some(write_error(job, &e)))
                    }
                }
            }
        };
        let recorded = self.modify(&job.org_id, &job.job_id, |current| {
            let running = self.mine(current);
            if running {
                current.state = state;
                current.error_info = error_info.clone();
                current.end_ms = Some(now);
                if state == JobState::Completed {
                    current.progress = 100;
                }
            }
            running
        })?;
        let cancelled = || {
            self.get_blocking(&job.org_id, &job.job_id)
                .map(|j| j.is_none_or(|j| j.state == JobState::Cancelled))
        };
        if !recorded && state == JobState::Completed && cancelled()? {
            // Cancelled between the check above and now: the files go (a job
            // adopted by another daemon keeps them: it writes the same names).
            archive::unpublish(dir, &job.job_id);
        }
        Ok(())
    }

    /// Writes the zip under its temporary name; what happened.
    async fn export(
        self: &Arc<Self>,
        job: &JobRecord,
        dir: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Outcome {
        let temp = dir.join(temp_zip_name(&job.job_id));
        let mkdir = {
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || std::fs::create_dir_all(dir)).await
        };
        match mkdir {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Outcome::Failed(write_error(job, &e)),
            Err(e) => return Outcome::Failed(write_error(job, &std::io::Error::other(e))),
        }
        let folders = match self.store.folders(&job.entity_id).await {
            Ok(f) => f,
            Err(StoreError::NotFound(_)) => Vec::new(),
            Err(e) => return Outcome::Failed(format!("Failed to read the mailbox: {e}")),
        };
        let (tx, rx) = mpsc::channel(2);
        let writer = match archive::spawn_writer(temp, rx) {
            Ok(w) => w,
            Err(e) => return Outcome::Failed(write_error(job, &e)),
        };
        let fed = self.feed(job, &folders, tx, cancel).await;
        let written = writer
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the export writer stopped")));
        match (fed, written) {
            (_, Err(e)) => Outcome::Failed(write_error(job, &e)),
            (Fed::Cancelled, Ok(_)) => Outcome::Cancelled,
            (Fed::ReadFailed(e), Ok(_)) => {
                Outcome::Failed(format!("Failed to read the mailbox: {e}"))
            }
            (Fed::All(totals), Ok(hash)) => Outcome::Written(totals, hash),
        }
    }

    /// Feeds every folder and message to the writer, in pages; counts them and
    /// records progress. Returns when done, cancelled, or the writer stopped.
    async fn feed(
        self: &Arc<Self>,
        job: &JobRecord,
        folders: &[Folder],
        tx: mpsc::Sender<Entry>,
        cancel: &CancellationToken,
    ) -> Fed {
        let mut totals = Totals::default();
        let total: u64 = folders
            .iter()
            .filter(|f| exportable(&f.folder_class))
            .map(|f| u64::from(f.messages))
            .sum();
        let mut shown = 0u8;
        for folder in folders {
            if !exportable(&folder.folder_class) {
                totals.non_exportable += u64::from(folder.messages);
                continue;
            }
            let entry = folder_entry(&folder.name);
            totals.folders += 1;
            if tx.send(Entry::Folder(entry.clone())).await.is_err() {
                return Fed::All(totals); // the writer failed; its error is the outcome
            }
            let mut first = 1u32;
            while first < folder.uidnext {
                let last = first.saturating_add(PAGE_UIDS - 1).min(folder.uidnext - 1);
                let metas = match self.store.messages(folder.id, first, last).await {
                    Ok(m) => m,
                    Err(StoreError::NotFound(_)) => break, // folder deleted meanwhile
                    Err(e) => return Fed::ReadFailed(e),
                };
                for meta in metas {
                    if cancel.is_cancelled() {
                        return Fed::Cancelled;
                    }
                    let body = match self.store.body(meta.body_id).await {
                        Ok(b) => b,
                        Err(StoreError::NotFound(_)) => continue, // expunged meanwhile
                        Err(e) => return Fed::ReadFailed(e),
                    };
                    totals.messages += 1;
                    totals.bytes += body.len() as u64;
                    let message = Entry::Message {
                        name: message_entry(&entry, meta.uid),
                        internal_date_ms: meta.internal_date,
                        body,
                    };
                    if tx.send(message).await.is_err() {
                        return Fed::All(totals);
                    }
                    let now = job::progress(totals.messages, total);
                    if now != shown {
                        shown = now;
                        if !self.record_progress(job, now).await {
                            return Fed::Cancelled;
                        }
                    }
                }
                if last == u32::MAX {
                    break;
                }
                first = last + 1;
            }
        }
        if cancel.is_cancelled() {
            return Fed::Cancelled;
        }
        Fed::All(totals)
    }

    /// Saves EstimatedProgress (advisory: a failed write is logged, the export
    /// goes on); false when the job is no longer RUNNING (cancelled through
    /// another daemon, whose cancel cannot reach this one's task otherwise).
    async fn record_progress(self: &Arc<Self>, job: &JobRecord, progress: u8) -> bool {
        let (me, job) = (self.clone(), job.clone());
        let r =
            tokio::task::spawn_blocking(move || me.update_running(&job, |j| j.progress = progress))
                .await;
        match r {
            Ok(Ok(running)) => running,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record export progress");
                true
            }
            Err(_) => true,
        }
    }
}

/// The job records among an organization's tags, each with its stored text
/// (the starts counter and unreadable records left out).
fn parse(tags: Vec<(String, String)>) -> Vec<(JobRecord, String)> {
    tags.into_iter()
        .filter(|(k, _)| k != STARTS)
        .filter_map(|(id, json)| match serde_json::from_str(&json) {
            Ok(r) => Some((r, json)),
            Err(e) => {
                tracing::warn!(job_id = id, error = %e, "unreadable export job record");
                None
            }
        })
        .collect()
}

fn to_json(job: &JobRecord) -> Result<String> {
    serde_json::to_string(job).map_err(|e| StoreError::Io(e.to_string()))
}

/// Writers kept coming first for [`ATTEMPTS`] rounds.
fn busy(job_id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "export job {job_id}: its record kept changing under this write; try again"
    ))
}

/// How feeding the writer ended.
enum Fed {
    All(Totals),
    Cancelled,
    ReadFailed(StoreError),
}

/// How a job's export ended, before it is recorded.
enum Outcome {
    Written(Totals, String),
    Cancelled,
    Failed(String),
}

/// ErrorInfo of a job that could not write its files: the S3 wording WorkMail's
/// users know, naming the bucket and prefix (never the local path).
fn write_error(job: &JobRecord, e: &std::io::Error) -> String {
    format!(
        "Unable to write to S3 bucket '{}' with prefix '{}': {e}",
        job.bucket, job.prefix
    )
}

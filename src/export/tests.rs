//! Export jobs end to end over the embedded store: fill a mailbox with a few
//! folders, run a job, unzip it, and compare every message's bytes and the
//! summary's SHA-384; plus limits, ClientToken repeats, cancel, an unwritable
//! root, and resuming after a restart.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha384};

use super::ExportJobs;
use super::job::{JobRecord, JobState, Summary};
use super::jobs::{Cancelled, StartRefused};
use crate::store::{Backend, FolderKind, FolderRef, Target};

/// Runs a blocking store call from a test's async body (writes must not block a
/// runtime thread unannounced).
fn bl<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

const ORG: &str = "m-00000000000000000000000000000001";

fn record(entity: &str, token: &str, bucket: &str) -> JobRecord {
    let job_id = uuid::Uuid::new_v4().to_string();
    JobRecord {
        s3_path: super::naming::s3_path(bucket, "exports/x", &job_id),
        job_id,
        org_id: ORG.into(),
        entity_id: entity.into(),
        description: Some("test".into()),
        role_arn: "arn:aws:iam::000000000000:role/export".into(),
        kms_key_arn: "arn:aws:kms:local:000000000000:key/k".into(),
        bucket: bucket.into(),
        prefix: "exports/x".into(),
        client_token: token.into(),
        progress: 0,
        state: JobState::Running,
        error_info: None,
        start_ms: crate::clock::now_ms_u64(),
        end_ms: None,
        owner: String::new(),
        lease_until_ms: 0,
    }
}

async fn deliver(store: &Arc<dyn Backend>, folder: FolderRef, body: &[u8], date: i64) {
    let r = store
        .deliver(
            Arc::from(body.to_vec()),
            date,
            vec![Target {
                folder,
                flags: vec![],
                properties: Vec::new(),
            }],
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
}

/// A mailbox with mail in INBOX, a nested folder, an empty folder, and a
/// contact item; returns the exported messages by zip entry name.
async fn fill(store: &Arc<dyn Backend>, mailbox: &str) -> Vec<(String, Vec<u8>)> {
    store.create_mailbox(mailbox, 1 << 30).await.unwrap();
    let nested = store.create_folder(mailbox, "Archive/2026").await.unwrap();
    store.create_folder(mailbox, "Empty").await.unwrap();
    let inbox = FolderRef::Kind(mailbox.into(), FolderKind::Inbox);
    let m1 = b"From: a@x.test\r\nSubject: one\r\n\r\nhello\r\n".to_vec();
    // Bytes a lossy copy would change: bare LF, NUL, 8-bit, no final CRLF.
    let m2 = b"Subject: two\nX: \xff\xfe\r\n\r\nbinary \x00 body".to_vec();
    let m3 = format!("Subject: three\r\n\r\n{}\r\n", "x".repeat(100_000)).into_bytes();
    deliver(store, inbox.clone(), &m1, 1_700_000_000_000).await;
    deliver(store, inbox, &m2, 1_700_000_100_000).await;
    deliver(store, FolderRef::Id(nested.id), &m3, 1_700_000_200_000).await;
    let contacts = FolderRef::Kind(mailbox.into(), FolderKind::Contacts);
    deliver(store, contacts, b"BEGIN:VCARD\r\nEND:VCARD\r\n", 0).await;
    vec![
        ("Archive/2026/0000000001.eml".into(), m3),
        ("INBOX/0000000001.eml".into(), m1),
        ("INBOX/0000000002.eml".into(), m2),
    ]
}

async fn wait_end(jobs: &ExportJobs, job_id: &str) -> JobRecord {
    for _ in 0..500 {
        let j = jobs.get_blocking(ORG, job_id).unwrap().unwrap();
        if j.state != JobState::Running {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {job_id} did not end");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_exports_every_message_byte_for_byte_with_a_matching_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    let expected = fill(&store, "alice").await;
    let root = dir.path().join("exports");
    let jobs = ExportJobs::new(store.clone(), root.clone());

    let now = crate::clock::now_ms_u64();
    let (job, new) = bl(|| jobs.start_blocking(record("alice", "t1", "bucket-1"), now)).unwrap();
    assert!(new);
    jobs.spawn(job.clone());
    let done = wait_end(&jobs, &job.job_id).await;
    assert_eq!(done.state, JobState::Completed, "{:?}", done.error_info);
    assert_eq!(done.progress, 100);
    assert!(done.end_ms.is_some());

    let out = root.join("bucket-1/exports/x");
    let zip_name = format!("{}.zip", job.job_id);
    let json_name = format!("{}.json", job.job_id);
    let mut want = vec![zip_name.clone(), json_name.clone()];
    want.sort();
    assert_eq!(files_in(&out), want, "only the zip and the summary remain");
    assert_eq!(done.s3_path, format!("bucket-1/exports/x/{zip_name}"));

    let zip_bytes = std::fs::read(out.join(&zip_name)).unwrap();
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(out.join(&json_name)).unwrap()).unwrap();
    assert_eq!(summary.sha384_hash, hex::encode(Sha384::digest(&zip_bytes)));
    assert_eq!(summary.total_messages, "3");
    assert_eq!(summary.total_non_exportable_items, "1");
    let total: usize = expected.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(summary.total_bytes, total.to_string());
    assert_eq!(summary.start_time, job.start_ms.to_string());

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    // Exportable folders only: the 8 IPF.Note/Appointment defaults + Archive/2026 + Empty.
    let dirs: Vec<&String> = names.iter().filter(|n| n.ends_with('/')).collect();
    assert_eq!(summary.total_folders, dirs.len().to_string());
    assert_eq!(dirs.len(), 10, "{dirs:?}");
    for d in ["INBOX/", "Archive/2026/", "Empty/", "Calendar/"] {
        assert!(names.iter().any(|n| n == d), "{d} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("Contacts")),
        "{names:?}"
    );
    let mut emls: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        if name.ends_with(".eml") {
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            emls.push((name, b));
        }
    }
    emls.sort();
    assert_eq!(emls, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_client_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    let jobs = ExportJobs::new(store.clone(), dir.path().join("exports"));
    let now = crate::clock::now_ms_u64();
    let (first, new) = bl(|| jobs.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
    assert!(new);
    // Same token, same request: the same job, not a new one.
    let (again, new) = bl(|| jobs.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
    assert_eq!((again.job_id.as_str(), new), (first.job_id.as_str(), false));
    // Same token, another request: refused.
    assert!(matches!(
        bl(|| jobs.start_blocking(record("alice", "t1", "b-2"), now)),
        Err(StartRefused::TokenReused)
    ));
    // Same mailbox within 24 h: LimitExceeded.
    assert!(matches!(
        bl(|| jobs.start_blocking(record("alice", "t2", "b-1"), now)),
        Err(StartRefused::Limit(_))
    ));
    // Ten running in the organization, then the eleventh is refused.
    for i in 1..10 {
        bl(|| jobs.start_blocking(record(&format!("u{i}"), &format!("c{i}"), "b-1"), now)).unwrap();
    }
    assert!(matches!(
        bl(|| jobs.start_blocking(record("u10", "c10", "b-1"), now)),
        Err(StartRefused::Limit(_))
    ));
    assert_eq!(jobs.list_blocking(ORG, now).unwrap().len(), 10);
    // A cancelled job frees its slot and does not block its mailbox.
    assert_eq!(
        bl(|| jobs.cancel_blocking(ORG, &first.job_id, now)).unwrap(),
        Cancelled::Done
    );
    assert_eq!(
        bl(|| jobs.cancel_blocking(ORG, &first.job_id, now)).unwrap(),
        Cancelled::Done
    );
    assert_eq!(
        bl(|| jobs.cancel_blocking(ORG, "nope", now)).unwrap(),
        Cancelled::Unknown
    );
    bl(|| jobs.start_blocking(record("alice", "t3", "b-1"), now)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_job_and_leaves_no_zip() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    fill(&store, "alice").await;
    let root = dir.path().join("exports");
    let jobs = ExportJobs::new(store.clone(), root.clone());
    let now = crate::clock::now_ms_u64();
    let (job, _) = bl(|| jobs.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
    jobs.spawn(job.clone());
    // No await between spawn and cancel: the task has not started writing yet.
    assert_eq!(
        bl(|| jobs.cancel_blocking(ORG, &job.job_id, now)).unwrap(),
        Cancelled::Done
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let j = jobs.get_blocking(ORG, &job.job_id).unwrap().unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    assert!(j.end_ms.is_some());
    assert!(
        files_in(&root.join("b-1/exports/x")).is_empty(),
        "{:?}",
        files_in(&root.join("b-1/exports/x"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_root_fails_the_job_with_error_info() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    fill(&store, "alice").await;
    // A regular file where the root should be: even root cannot create under it.
    let root = dir.path().join("not-a-dir");
    std::fs::write(&root, b"x").unwrap();
    let jobs = ExportJobs::new(store.clone(), root);
    let now = crate::clock::now_ms_u64();
    let (job, _) = bl(|| jobs.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
    jobs.spawn(job.clone());
    let j = wait_end(&jobs, &job.job_id).await;
    assert_eq!(j.state, JobState::Failed);
    let info = j.error_info.unwrap();
    assert!(
        info.contains("'b-1'") && info.contains("'exports/x'"),
        "{info}"
    );
    assert!(
        !info.contains("not-a-dir"),
        "no local path in ErrorInfo: {info}"
    );
    // A failed job does not hold the mailbox's daily slot.
    bl(|| jobs.start_blocking(record("alice", "t2", "b-1"), now)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    fill(&store, "alice").await;
    let root = dir.path().join("exports");
    let job = {
        let before = ExportJobs::new(store.clone(), root.clone());
        let now = crate::clock::now_ms_u64();
        let (job, _) = bl(|| before.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
        job // "crashed" before running it; leave a partial file behind
    };
    let out = root.join("b-1/exports/x");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join(super::naming::temp_zip_name(&job.job_id)),
        b"partial",
    )
    .unwrap();

    let after = ExportJobs::new(store.clone(), root.clone());
    assert_eq!(
        after
            .resume(vec![ORG.to_string(), "m-other".into()])
            .await
            .unwrap(),
        1
    );
    let j = wait_end(&after, &job.job_id).await;
    assert_eq!(j.state, JobState::Completed, "{:?}", j.error_info);
    assert_eq!(j.start_ms, job.start_ms);
    assert_eq!(files_in(&out).len(), 2, "{:?}", files_in(&out));
    let zip = std::fs::read(out.join(format!("{}.zip", job.job_id))).unwrap();
    assert!(
        zip::ZipArchive::new(std::io::Cursor::new(zip))
            .unwrap()
            .len()
            > 3
    );
}

/// Two daemons sharing a store (two `ExportJobs` with nothing in common but the
/// store) starting jobs at once never pass the organization's limit of ten
/// together, and a cancel through one stops the job the other runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_starting_at_once_never_pass_the_limit_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&dir.path().join("store.sqlite"));
    let now = crate::clock::now_ms_u64();
    let daemons = [
        ExportJobs::new(store.clone(), dir.path().join("a")),
        ExportJobs::new(store.clone(), dir.path().join("b")),
    ];
    let runtime = tokio::runtime::Handle::current();
    let started: usize = std::thread::scope(|s| {
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let (jobs, runtime) = (daemons[i % 2].clone(), runtime.clone());
                s.spawn(move || {
                    let _in = runtime.enter();
                    let r =
                        jobs.start_blocking(record(&format!("u{i}"), &format!("c{i}"), "b"), now);
                    match r {
                        Ok((_, true)) => 1,
                        Err(StartRefused::Limit(_)) => 0,
                        other => panic!("{:?}", other.map(|(j, n)| (j.job_id, n))),
                    }
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(
        started, 10,
        "exactly the limit, however the starts interleave"
    );
    assert_eq!(daemons[1].list_blocking(ORG, now).unwrap().len(), 10);

    // A job run by A, cancelled through B: A's task stops and keeps no file.
    let other = tempfile::tempdir().unwrap();
    let store = crate::store::testing::open(&other.path().join("store.sqlite"));
    fill(&store, "alice").await;
    let (a, b) = (
        ExportJobs::new(store.clone(), other.path().join("exports")),
        ExportJobs::new(store.clone(), other.path().join("unused")),
    );
    let (job, _) = bl(|| a.start_blocking(record("alice", "t1", "b-1"), now)).unwrap();
    assert_eq!(
        bl(|| b.cancel_blocking(ORG, &job.job_id, now)).unwrap(),
        Cancelled::Done
    );
    a.spawn(job.clone());
    let ended = wait_end(&a, &job.job_id).await;
    assert_eq!(ended.state, JobState::Cancelled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(files_in(&other.path().join("exports/b-1/exports/x")).is_empty());
}

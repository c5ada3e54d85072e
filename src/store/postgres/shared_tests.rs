//! Two daemons (two stores, two pools) on one database sharing the directory,
//! the access rules and the secrets: what one writes, the other enforces after
//! a refresh; concurrent writes all land; conflicting ones are validated again.
//! They need `MAILGATE_TEST_POSTGRES` (tests/pg.sh).

use std::sync::{Arc, Barrier};

use super::testing::{available, create_database};
use super::{PgStore, Settings};
use crate::access::{
    AccessControlRuleInput, AccessEngine, AccessLimits, Effect, Principal, Protocol, Request,
    TokenKeys,
};
use crate::directory::{Directory, DirectoryError, EntityState, NewUser};
use crate::store::Backend;

/// Two stores on one fresh database; the directory names it.
async fn two_stores() -> (tempfile::TempDir, Arc<PgStore>, Arc<PgStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let settings = Settings { url, pool_size: 4 };
    let a = Arc::new(PgStore::open(&settings).await.unwrap());
    let b = Arc::new(PgStore::open(&settings).await.unwrap());
    (dir, a, b)
}

/// Runs blocking directory work off the async workers, as the daemon does.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A thread of its own (one daemon's writer) inside the test's runtime, so
/// the store's blocking calls find it.
fn thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let _entered = runtime.enter();
        f()
    })
}

/// Runs each job on a thread of its own, all released at once (two daemons
/// racing); returns their results in order.
fn at_once<T: Send + 'static>(jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    let start = Arc::new(Barrier::new(jobs.len()));
    let running: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let start = start.clone();
            thread(move || {
                start.wait();
                job()
            })
        })
        .collect();
    running.into_iter().map(|t| t.join().unwrap()).collect()
}

fn user(name: &str) -> NewUser<'_> {
    NewUser {
        name,
        display_name: name,
        ..Default::default()
    }
}

/// Directory A with organization `acme` (acme.test), and directory B opened after.
fn directories(a: &Arc<PgStore>, b: &Arc<PgStore>) -> (Arc<Directory>, Arc<Directory>, String) {
    let da = Directory::open(a.clone()).unwrap();
    let org = da.create_organization("acme", "acme.test").unwrap();
    let db = Directory::open(b.clone()).unwrap();
    (Arc::new(da), Arc::new(db), org)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disabled_on_a_is_refused_by_b_after_its_refresh() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_stores().await;
    blocking(move || {
        let (da, db, org) = directories(&a, &b);
        let u = da.create_user(&org, user("ann")).unwrap();
        da.register_to_workmail(&org, &u, "ann@acme.test").unwrap();
        assert!(db.refresh().unwrap());
        assert_eq!(db.user_epoch(&u).map(|e| e.0), Some(EntityState::Enabled));
        let before = db.generation();
        da.deregister_from_workmail(&org, &u).unwrap();
        assert!(db.refresh().unwrap());
        assert_eq!(db.user_epoch(&u).map(|e| e.0), Some(EntityState::Disabled));
        assert!(db.generation() > before, "B's live sessions re-check");
        assert!(!db.refresh().unwrap(), "nothing new: one query, no reload");
        assert_eq!(da.export().unwrap(), db.export().unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_two_daemons_all_land() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_stores().await;
    blocking(move || {
        let (da, db, org) = directories(&a, &b);
        let writers = [(da.clone(), "a"), (db.clone(), "b")].map(|(d, tag)| {
            let org = org.clone();
            Box::new(move || {
                for i in 0..20 {
                    let name = format!("{tag}{i}");
                    d.create_user(&org, user(&name)).unwrap();
                }
            }) as Box<dyn FnOnce() + Send>
        });
        at_once(writers.into());
        da.refresh().unwrap();
        db.refresh().unwrap();
        assert_eq!(da.list_users(&org).unwrap().len(), 40);
        assert_eq!(db.list_users(&org).unwrap().len(), 40);
        assert_eq!(da.export().unwrap(), db.export().unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_claimed_on_both_daemons_at_once_goes_to_one() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_stores().await;
    blocking(move || {
        let (da, db, org) = directories(&a, &b);
        let ua = da.create_user(&org, user("ann")).unwrap();
        let ub = da.create_user(&org, user("bob")).unwrap();
        db.refresh().unwrap();
        for round in 0..10 {
            let addr = format!("shared{round}@acme.test");
            let claims = [(da.clone(), ua.clone()), (db.clone(), ub.clone())].map(|(d, u)| {
                let (org, addr) = (org.clone(), addr.clone());
                Box::new(move || {
                    // A registered user's further addresses are aliases.
                    match d.user_epoch(&u).map(|e| e.0) {
                        Some(EntityState::Enabled) => d.create_alias(&org, &u, &addr),
                        _ => d.register_to_workmail(&org, &u, &addr),
                    }
                }) as Box<dyn FnOnce() -> Result<(), DirectoryError> + Send>
            });
            let results = at_once(claims.into());
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "round {round}: {results:?}");
            for r in results.iter().filter_map(|r| r.as_ref().err()) {
                assert!(
                    matches!(r, DirectoryError::EmailAddressInUse(_)),
                    "the loser gets the directory's own answer: {r:?}"
                );
            }
        }
        da.refresh().unwrap();
        db.refresh().unwrap();
        assert_eq!(da.export().unwrap(), db.export().unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_rule_saved_on_a_is_enforced_by_b_after_its_refresh() {
    if !available() {
        return;
    }
    const ORG: &str = "m-0123456789abcdef0123456789abcdef";
    const ALICE: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    let (_dir, a, b) = two_stores().await;
    blocking(move || {
        let keys = TokenKeys::generate("k1");
        let open = |s: &Arc<PgStore>| {
            AccessEngine::open(s.clone(), AccessLimits::default(), keys.clone()).unwrap()
        };
        let (ea, eb) = (open(&a), open(&b));
        assert!(ea.create_organization_defaults(ORG, 1).unwrap());
        assert!(
            !eb.create_organization_defaults(ORG, 1).unwrap(),
            "B sees A's organization before creating its defaults"
        );
        let imap = Request {
            source_ip: "10.0.0.1".parse().unwrap(),
            action: Protocol::Imap,
            principal: Principal::User(ALICE),
        };
        assert!(eb.evaluate(ORG, &imap).allowed());
        let mut deny = AccessControlRuleInput::new("no-imap", Effect::Deny);
        deny.actions = vec!["IMAP".into()];
        ea.put_access_control_rule(ORG, deny, 2).unwrap();
        let before = eb.generation();
        assert!(eb.refresh().unwrap());
        assert!(!eb.evaluate(ORG, &imap).allowed());
        assert!(eb.generation() > before);
        assert!(!eb.refresh().unwrap());
        // Saves from both daemons keep each other's rules.
        eb.put_access_control_rule(ORG, AccessControlRuleInput::new("from-b", Effect::Allow), 3)
            .unwrap();
        ea.put_access_control_rule(ORG, AccessControlRuleInput::new("from-a", Effect::Allow), 4)
            .unwrap();
        eb.refresh().unwrap();
        let names = |e: &AccessEngine| -> Vec<String> {
            e.list_access_control_rules(ORG)
                .unwrap()
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(names(&ea).len(), 4, "{:?}", names(&ea));
        assert_eq!(names(&ea), names(&eb));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_made_once_and_shared() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_stores().await;
    blocking(move || {
        assert!(a.is_shared() && b.is_shared());
        let asks = [(a.clone(), "from-a"), (b.clone(), "from-b")].map(|(s, fresh)| {
            Box::new(move || {
                s.shared_secret("token_keys", &|| fresh.to_string())
                    .unwrap()
            }) as Box<dyn FnOnce() -> Option<String> + Send>
        });
        let got = at_once(asks.into());
        assert_eq!(got[0], got[1], "both daemons hold the same secret");
        assert!(matches!(got[0].as_deref(), Some("from-a" | "from-b")));
        let again = a.shared_secret("token_keys", &|| "later".into()).unwrap();
        assert_eq!(again, got[0], "never replaced");
        let other = b.shared_secret("admin_key", &|| "x".into()).unwrap();
        assert_eq!(other.as_deref(), Some("x"), "one row per name");
    })
    .await;
}

/// Two daemons' stores on one database, each with its own data directory and
/// the config naming it (what `server::provision` starts from).
struct TwoDaemons {
    a: (Arc<dyn Backend>, crate::config::Config),
    b: (Arc<dyn Backend>, crate::config::Config),
    _held: (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir),
}

async fn two_daemons() -> TwoDaemons {
    let (db, a, b) = two_stores().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = |dir: &tempfile::TempDir| {
        let mut c = crate::config::Config::embedded();
        c.server.data_dir = dir.path().to_path_buf();
        c
    };
    TwoDaemons {
        a: (a, config(&dir_a)),
        b: (b, config(&dir_b)),
        _held: (db, dir_a, dir_b),
    }
}

/// Daemon start-up (`server::provision`) on a shared backend: two daemons with
/// their own data directories provisioning one empty database at once make one
/// organization with its default rule, and share the token keys and the admin
/// key, which each also writes to its own credentials file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_provisioning_at_once_make_one_organization_and_share_keys() {
    use crate::admin::keys::AdminSecrets;
    use crate::server::provision::open_state;
    if !available() {
        return;
    }
    let daemons = two_daemons().await;
    let ((sa, ca), (sb, cb)) = (daemons.a.clone(), daemons.b.clone());
    let (pa, pb) = tokio::join!(open_state(&sa, &ca), open_state(&sb, &cb));
    let (pa, pb) = (pa.unwrap(), pb.unwrap());
    pa.directory.refresh().unwrap();
    pb.directory.refresh().unwrap();
    let orgs = pa.directory.list_organizations();
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(pb.directory.list_organizations(), orgs);
    pb.access.refresh().unwrap();
    let rules = pb.access.list_access_control_rules(&orgs[0].id).unwrap();
    assert_eq!(rules.len(), 1, "the default rule, once");
    let generated = |p: &crate::server::provision::State| p.secrets.admin_keys().last().cloned();
    assert_eq!(generated(&pa), generated(&pb), "one admin key");
    for c in [&ca, &cb] {
        let file = c.data_path(&c.admin.credentials);
        let (in_file, _) = crate::admin::credentials::load_existing(&file).unwrap();
        assert_eq!(Some(in_file), generated(&pa), "{}", file.display());
    }
    // One set of token keys: a token minted on A verifies on B.
    let keys_a = crate::server::secrets::token_keys(sa.as_ref(), &ca).unwrap();
    let keys_b = crate::server::secrets::token_keys(sb.as_ref(), &cb).unwrap();
    assert_eq!(keys_a.current, keys_b.current);
    assert!(
        !ca.data_path(&ca.access.token_keys).exists(),
        "a shared backend's keys are not written to the key file"
    );
}

/// Rotations through one daemon's admin API reach the other: B follows A's
/// token-key and admin-key rotations (its token keys, its accepted admin keys
/// and its credentials file), B then holds A's keys, and two daemons rotating
/// at once both succeed, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_on_one_daemon_reaches_the_other() {
    use crate::admin::keys::AdminSecrets;
    use crate::server::provision::open_state;
    if !available() {
        return;
    }
    let daemons = two_daemons().await;
    let ((sa, ca), (sb, cb)) = (daemons.a.clone(), daemons.b.clone());
    let pa = open_state(&sa, &ca).await.unwrap();
    let pb = open_state(&sb, &cb).await.unwrap();
    let (secrets_a, secrets_b) = (pa.secrets.clone(), pb.secrets.clone());
    let cb2 = cb.clone();
    let followed = move || {
        let (s, c) = (secrets_b.clone(), cb2.clone());
        async move {
            tokio::task::spawn_blocking(move || s.follow(&c))
                .await
                .unwrap()
        }
    };
    assert!(!followed().await.unwrap(), "nothing rotated yet");

    let old_kid = pa.access.token_keys().current.0.clone();
    let sa2 = secrets_a.clone();
    let kid = tokio::task::spawn_blocking(move || sa2.rotate_token_keys())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(kid, old_kid);
    assert!(followed().await.unwrap(), "B sees the rotation");
    let on_b = pb.access.token_keys();
    assert_eq!(on_b.current.0, kid);
    assert_eq!(on_b.previous.as_ref().map(|p| p.0.clone()), Some(old_kid));
    assert_eq!(on_b.current, pa.access.token_keys().current);
    assert!(!followed().await.unwrap(), "once");

    let old_key = secrets_a.admin_keys().last().cloned().unwrap();
    let sa2 = secrets_a.clone();
    let new_key = tokio::task::spawn_blocking(move || sa2.rotate_admin_key())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(secrets_a.admin_keys().last(), Some(&new_key));
    assert!(followed().await.unwrap());
    let on_b = pb.secrets.admin_keys();
    assert_eq!(on_b.last(), Some(&new_key));
    assert!(
        !on_b.contains(&old_key),
        "the old key is refused everywhere"
    );
    for c in [&ca, &cb] {
        let file = c.data_path(&c.admin.credentials);
        let (in_file, _) = crate::admin::credentials::load_existing(&file).unwrap();
        assert_eq!(in_file, new_key, "{}", file.display());
    }

    // Both at once: each retries over the other's write; the keys chain.
    let (x, y) = (secrets_a.clone(), pb.secrets.clone());
    let (kx, ky) = tokio::join!(
        tokio::task::spawn_blocking(move || x.rotate_token_keys()),
        tokio::task::spawn_blocking(move || y.rotate_token_keys()),
    );
    let (kx, ky) = (kx.unwrap().unwrap(), ky.unwrap().unwrap());
    assert_ne!(kx, ky);
    let stored = crate::server::secrets::token_keys(sa.as_ref(), &ca).unwrap();
    let ids = [stored.current.0.clone(), stored.previous.clone().unwrap().0];
    assert!(
        ids.contains(&kx) && ids.contains(&ky),
        "{ids:?} vs {kx} {ky}"
    );
}

/// Tag writes move the `tags` version another daemon polls (email monitoring
/// follows it without a notification); a refused write does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_writes_move_the_version_the_other_daemon_polls() {
    use crate::store::{Tags, Versioned};
    if !available() {
        return;
    }
    let (_dir, a, b) = two_stores().await;
    let start = b.state_version(Versioned::Tags).unwrap();
    assert!(
        a.tag_blocking("arn:x", vec![("k".into(), "v".into())], 5)
            .unwrap()
    );
    let tagged = b.state_version(Versioned::Tags).unwrap();
    assert!(tagged > start);
    let too_many = (0..6).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert!(!a.tag_blocking("arn:x", too_many, 5).unwrap());
    assert_eq!(
        b.state_version(Versioned::Tags).unwrap(),
        tagged,
        "refused: unmoved"
    );
    a.untag_blocking("arn:x", vec!["k".into()]).unwrap();
    assert!(b.state_version(Versioned::Tags).unwrap() > tagged);
    assert_eq!(
        b.state_version(Versioned::Secrets).unwrap(),
        0,
        "kinds move apart"
    );
    // Records nobody caches (export jobs' progress) move nothing.
    let moved = b.state_version(Versioned::Tags).unwrap();
    let records = format!("{}m-1", crate::store::tags::RECORDS_PREFIX);
    assert!(
        a.tag_blocking(&records, vec![("job".into(), "1".into())], 5)
            .unwrap()
    );
    assert!(
        a.tag_if_blocking(&records, "job", Some("1"), vec![("job".into(), "2".into())])
            .unwrap()
    );
    a.untag_blocking(&records, vec!["job".into()]).unwrap();
    assert_eq!(b.state_version(Versioned::Tags).unwrap(), moved);
}

/// Export jobs on a shared store: a job whose daemon stopped renewing its lease
/// (dead) is adopted by another daemon, only once, and run to completion there;
/// the old owner's late writes are fenced off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_job_of_a_daemon_that_is_gone_is_adopted_and_finished() {
    use crate::export::ExportJobs;
    use crate::export::job::{JobRecord, JobState, LEASE_MS};
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let settings = Settings { url, pool_size: 4 };
    let open = |node: &str| {
        let settings = Settings {
            url: settings.url.clone(),
            pool_size: 4,
        };
        let node = node.to_string();
        async move {
            let s: Arc<dyn Backend> =
                Arc::new(PgStore::open(&settings).await.unwrap().with_node(node));
            s
        }
    };
    let (a, b, c) = (open("a").await, open("b").await, open("c").await);
    let mailbox = "m-export-owner";
    a.create_mailbox(mailbox, 1 << 30).await.unwrap();
    let jobs_a = ExportJobs::new(a.clone(), dir.path().join("a"));
    let jobs_b = ExportJobs::new(b.clone(), dir.path().join("b"));
    let jobs_c = ExportJobs::new(c.clone(), dir.path().join("c"));
    let org = "m-00000000000000000000000000000009".to_string();
    let now = crate::clock::now_ms_u64();
    let record = JobRecord {
        job_id: "job-1".into(),
        org_id: org.clone(),
        entity_id: mailbox.into(),
        description: None,
        role_arn: "arn:aws:iam::000000000000:role/export".into(),
        kms_key_arn: "arn:aws:kms:local:000000000000:key/k".into(),
        bucket: "b".into(),
        prefix: "p".into(),
        s3_path: "s3://b/p/job-1".into(),
        client_token: "t".into(),
        progress: 0,
        state: JobState::Running,
        error_info: None,
        start_ms: now,
        end_ms: None,
        owner: String::new(),
        lease_until_ms: 0,
    };
    let (job, _) = blocking({
        let jobs_a = jobs_a.clone();
        move || jobs_a.start_blocking(record, now)
    })
    .await
    .unwrap();
    assert_eq!(job.owner, "a");
    let orgs = vec![org.clone()];
    // While A's lease runs, nobody adopts.
    let (jb, o) = (jobs_b.clone(), orgs.clone());
    assert!(
        blocking(move || jb.adopt_blocking(&o, now + 1000))
            .await
            .unwrap()
            .is_empty()
    );
    // A never ran it (gone): past the lease, B and C look at once; one adopts.
    let later = now + LEASE_MS + 1;
    let (jb, jc, o1, o2) = (jobs_b.clone(), jobs_c.clone(), orgs.clone(), orgs.clone());
    let (by_b, by_c) = tokio::join!(
        blocking(move || jb.adopt_blocking(&o1, later).unwrap()),
        blocking(move || jc.adopt_blocking(&o2, later).unwrap()),
    );
    assert_eq!(
        by_b.len() + by_c.len(),
        1,
        "adopted once: {by_b:?} {by_c:?}"
    );
    let (winner, adopted) = match by_b.into_iter().next() {
        Some(j) => (jobs_b.clone(), j),
        None => (jobs_c.clone(), by_c.into_iter().next().unwrap()),
    };
    assert_ne!(adopted.owner, "a");
    winner.spawn(adopted.clone());
    let ended = loop {
        let (w, o, id) = (winner.clone(), org.clone(), adopted.job_id.clone());
        let j = blocking(move || w.get_blocking(&o, &id).unwrap().unwrap()).await;
        if j.state != JobState::Running {
            break j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        (ended.state, ended.owner.as_str()),
        (JobState::Completed, adopted.owner.as_str())
    );
    // A comes back with its stale copy: its writes are fenced, it keeps no file.
    jobs_a.spawn(job.clone());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (w, o, id) = (winner.clone(), org.clone(), adopted.job_id.clone());
    let after = blocking(move || w.get_blocking(&o, &id).unwrap().unwrap()).await;
    assert_eq!(after, ended, "A's late run changed nothing");
    let a_files = std::fs::read_dir(dir.path().join("a/b/p"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(a_files, 0);
}

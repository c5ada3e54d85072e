//! Two directories over one versioned backend behave as two daemons on one
//! database: refresh brings the other's writes in and moves the generation,
//! a write made on stale state is validated again on the newest, and a write
//! that loses the race is retried (boundedly).

use std::sync::Mutex;

use super::*;
use crate::directory::{DirectoryBackend, EntityState, Fenced, RecordChanges, RecordOp};

fn new_user(name: &str) -> NewUser<'_> {
    NewUser {
        name,
        display_name: name,
        ..Default::default()
    }
}

/// Daemon A's directory (with an organization) and daemon B's, on one backend.
fn two_daemons() -> (Fx, Directory) {
    let a = fixture();
    let b = Directory::open(a.backend.clone()).expect("open b");
    (a, b)
}

#[test]
fn refresh_brings_in_the_other_daemons_writes_and_moves_the_generation() {
    let (a, b) = two_daemons();
    let u = a.dir.create_user(&a.org, new_user("ann")).expect("user");
    a.dir
        .register_to_workmail(&a.org, &u, "ann@example.test")
        .expect("register");
    assert!(b.resolve_address("ann@example.test").is_none(), "not yet");
    let before = b.generation();
    assert_eq!(b.refresh(), Ok(true));
    assert!(b.generation() > before);
    assert!(b.resolve_address("ann@example.test").is_some());
    assert_eq!(b.refresh(), Ok(false), "nothing new: no reload");
    let gen_now = b.generation();
    a.dir.deregister_from_workmail(&a.org, &u).expect("disable");
    assert_eq!(
        b.user_epoch(&u).map(|e| e.0),
        Some(EntityState::Enabled),
        "B still serves what it had"
    );
    assert_eq!(b.refresh(), Ok(true));
    assert_eq!(b.user_epoch(&u).map(|e| e.0), Some(EntityState::Disabled));
    assert!(b.generation() > gen_now, "live sessions on B re-check");
    assert_eq!(a.dir.export(), b.export(), "both hold the same directory");
}

#[test]
fn a_write_on_stale_state_is_validated_against_the_newest() {
    let (a, b) = two_daemons();
    a.dir.create_user(&a.org, new_user("dup")).expect("on A");
    // B has not refreshed, yet its write sees A's user first.
    assert_eq!(
        code(b.create_user(&a.org, new_user("dup"))),
        "NameAvailabilityException"
    );
    let other = b.create_user(&a.org, new_user("other")).expect("on B");
    assert!(a.dir.refresh().expect("refresh"));
    assert!(a.dir.describe_user(&a.org, &other).is_ok());
}

/// A backend that lets "another daemon" write just before some of this
/// daemon's fenced writes, so they find the version moved.
struct Racing {
    inner: Arc<MemoryBackend>,
    /// Runs before each fenced write while it returns true.
    before: Mutex<Box<dyn FnMut() -> bool + Send>>,
}

impl DirectoryBackend for Racing {
    fn load_all(&self) -> Result<Vec<Record>, DirectoryError> {
        self.inner.load_all()
    }
    fn apply(&self, ops: Vec<RecordOp>) -> Result<(), DirectoryError> {
        self.inner.apply(ops)
    }
    fn version(&self) -> Result<u64, DirectoryError> {
        self.inner.version()
    }
    fn records_since(&self, since: u64) -> Result<RecordChanges, DirectoryError> {
        self.inner.records_since(since)
    }
    fn apply_at(&self, expected: u64, ops: Vec<RecordOp>) -> Result<Fenced, DirectoryError> {
        let mut before = self.before.lock().unwrap_or_else(|e| e.into_inner());
        before();
        self.inner.apply_at(expected, ops)
    }
}

#[test]
fn a_write_that_loses_the_race_is_validated_again_and_retried() {
    let a = fixture();
    let a_dir = Arc::new(Directory::open(a.backend.clone()).expect("a"));
    let org = a.org.clone();
    let (racer, racer_org) = (a_dir.clone(), org.clone());
    let mut raced = 0;
    let b = Directory::open(Arc::new(Racing {
        inner: a.backend.clone(),
        before: Mutex::new(Box::new(move || {
            raced += 1;
            // A creates "taken" while B's first write is in flight, and
            // "unrelated" while its second is.
            let name = ["taken", "unrelated"].get(raced - 1);
            if let Some(name) = name {
                racer
                    .create_user(&racer_org, new_user(name))
                    .expect("racer");
            }
            true
        })),
    }))
    .expect("b");
    assert_eq!(
        code(b.create_user(&org, new_user("taken"))),
        "NameAvailabilityException",
        "the retry saw A's user and refused like any duplicate"
    );
    let mine = b
        .create_user(&org, new_user("mine"))
        .expect("retried and landed");
    assert!(b.describe_user(&org, &mine).is_ok());
    assert!(a_dir.refresh().expect("refresh"));
    let names: Vec<String> = a_dir
        .list_users(&org)
        .expect("list")
        .into_iter()
        .map(|u| u.base.name)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for n in ["taken", "unrelated", "mine"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
}

#[test]
fn a_write_that_always_loses_gives_up() {
    let a = fixture();
    let inner = a.backend.clone();
    let b = Directory::open(Arc::new(Racing {
        inner: a.backend.clone(),
        before: Mutex::new(Box::new(move || {
            // Another daemon's write that changes nothing but the version.
            let _ = inner.apply(vec![RecordOp::Delete {
                kind: crate::directory::RecordKind::PersonalAccessToken,
                id: "none".into(),
            }]);
            true
        })),
    }))
    .expect("b");
    let before = b.export();
    let e = b.create_user(&a.org, new_user("never")).unwrap_err();
    assert!(e.to_string().contains("gave up"), "{e}");
    assert_eq!(b.export(), before, "nothing was written or committed");
}

#[test]
fn a_failed_write_on_a_moves_nothing_on_b() {
    let (a, b) = two_daemons();
    a.dir.create_user(&a.org, new_user("kept")).expect("user");
    assert!(b.refresh().expect("refresh"));
    let held = b.export();
    a.backend.set_fail(true);
    assert!(a.dir.create_user(&a.org, new_user("lost")).is_err());
    assert_eq!(b.refresh(), Ok(false), "a failed write moved nothing");
    assert_eq!(b.export(), held);
}

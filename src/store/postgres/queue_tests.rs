//! PostgreSQL's own tests of what several daemons share (the behaviour one store
//! shows is in `store::conformance`): queue leases between two stores (two
//! daemons), takeover of a crashed daemon's leases, fenced settles, and the
//! outbox's commit-ordered sequence numbers. They need `MAILGATE_TEST_POSTGRES`
//! (tests/pg.sh).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::store_tests::{settings, two_daemons};
use super::testing::{available, create_database};
use super::*;
use crate::store::queue::{DueMessage, NewOutbound, NewRecipient, OutboundQueue};
use crate::store::{FolderKind, FolderRef, Outbox, OutboxEvent};

/// A message for `n` remote recipients.
fn outbound(tag: usize, n: usize) -> NewOutbound {
    NewOutbound {
        sender: "alice@acme.test".into(),
        on_behalf_of: None,
        from_header: "alice@acme.test".into(),
        message_id: format!("m{tag}@acme.test"),
        owner_org: "m-1".into(),
        owner_mailbox: "u-1".into(),
        trace_id: format!("t{tag}"),
        envelope_id: None,
        recipients: (0..n)
            .map(|i| NewRecipient {
                address: format!("r{i}@remote.test"),
                notify_failure: true,
            })
            .collect(),
        body: Arc::from(&b"Subject: x\r\n\r\nhi\r\n"[..]),
    }
}

/// Two stores (daemons) on one fresh database, the first with queue leases of
/// `short`, the second of a minute.
async fn short_and_long_leases(short: Duration) -> (tempfile::TempDir, Arc<PgStore>, Arc<PgStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = create_database(dir.path()).await;
    let open = async |lease| {
        Arc::new(
            PgStore::open(&settings(&url))
                .await
                .unwrap()
                .with_queue_lease(lease),
        )
    };
    let first = open(short).await;
    let second = open(Duration::from_secs(60)).await;
    (dir, first, second)
}

fn recipient_ids(due: &[DueMessage]) -> Vec<i64> {
    due.iter()
        .flat_map(|d| d.recipients.iter().map(|r| r.id))
        .collect()
}

/// Two daemons asking for due work at the same moment split it: no recipient
/// goes to both, none to neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_asking_at_once_never_get_the_same_recipient() {
    if !available() {
        return;
    }
    for round in 0..5 {
        let (_dir, a, b) = two_daemons().await;
        for m in 0..40 {
            a.enqueue(outbound(m, 3), 1000).await.unwrap();
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let take = |s: Arc<PgStore>| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                s.due(1000, 1000).await.unwrap()
            })
        };
        let (ta, tb) = (take(a.clone()), take(b.clone()));
        let (da, db) = (ta.await.unwrap(), tb.await.unwrap());
        let (ia, ib) = (recipient_ids(&da), recipient_ids(&db));
        let sa: BTreeSet<i64> = ia.iter().copied().collect();
        let sb: BTreeSet<i64> = ib.iter().copied().collect();
        assert_eq!(
            sa.len() + sb.len(),
            120,
            "round {round}: none lost, none twice"
        );
        assert!(
            sa.is_disjoint(&sb),
            "round {round}: a recipient went to both"
        );
        // Each daemon's own leases come back to it only; the other sees nothing due.
        assert!(
            recipient_ids(&a.due(1000, 1000).await.unwrap())
                .iter()
                .all(|id| sa.contains(id))
        );
        assert!(
            b.due(1000, 1000)
                .await
                .unwrap()
                .iter()
                .all(|d| d.recipients.iter().all(|r| sb.contains(&r.id)))
        );
        assert_eq!(a.stats.lease_takeovers.load(Ordering::Relaxed), 0);
    }
}

/// Two daemons running their queues side by side (take, settle, take again)
/// settle every recipient exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_settle_every_recipient_once() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    for m in 0..60 {
        a.enqueue(outbound(m, 2), 1000).await.unwrap();
    }
    let run = |s: Arc<PgStore>| {
        tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let due = s.due(1000, 7).await.unwrap();
                if due.is_empty() {
                    return sent;
                }
                for id in recipient_ids(&due) {
                    sent.push(id);
                    s.finish_recipient(id).await.unwrap();
                }
            }
        })
    };
    let (ra, rb) = (run(a.clone()), run(b.clone()));
    let mut sent = ra.await.unwrap();
    sent.extend(rb.await.unwrap());
    let unique: BTreeSet<i64> = sent.iter().copied().collect();
    assert_eq!((sent.len(), unique.len()), (120, 120), "each sent once");
    assert_eq!(a.queued_recipients().await.unwrap(), 0);
    assert_eq!(
        b.oldest_enqueued_ms().await.unwrap(),
        None,
        "every message went with its last recipient, whoever finished it"
    );
}

/// A daemon that dies holding leases (after the smarthost's 250, before
/// `finish`) loses them at expiry: another daemon takes the recipients over,
/// counts the takeover, and sends them again (at least once).
#[tokio::test]
async fn a_crashed_daemons_leases_are_taken_over_after_expiry() {
    if !available() {
        return;
    }
    let (_dir, crashing, survivor) = short_and_long_leases(Duration::from_millis(1500)).await;
    let id = crashing.enqueue(outbound(1, 2), 1000).await.unwrap();
    let held = recipient_ids(&crashing.due(1000, 10).await.unwrap());
    assert_eq!(held.len(), 2);
    drop(crashing);

    let before = crate::clock::now_ms();
    assert!(
        survivor.due(1000, 10).await.unwrap().is_empty(),
        "held until the lease expires"
    );
    let next = survivor.next_attempt_ms().await.unwrap().unwrap();
    assert!(
        next > before,
        "a lease held elsewhere counts at its expiry ({next}, now {before}), \
         so the runner does not spin"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let taken = survivor.due(1000, 10).await.unwrap();
    assert_eq!(recipient_ids(&taken), held);
    assert_eq!(taken[0].message.id, id);
    assert_eq!(
        survivor.stats.lease_takeovers.load(Ordering::Relaxed),
        2,
        "two takeovers counted"
    );
    assert_eq!(
        survivor.next_attempt_ms().await.unwrap(),
        Some(1000),
        "its own leases count at their schedule"
    );
    for r in held {
        survivor.finish_recipient(r).await.unwrap();
    }
    assert_eq!(survivor.queued_recipients().await.unwrap(), 0);
}

/// The old holder's late finish and defer, after another daemon took its
/// recipient over, change nothing: the new holder's recipient stays, with its
/// schedule, until the new holder settles it.
#[tokio::test]
async fn a_fenced_settle_leaves_the_new_holders_recipient_alone() {
    if !available() {
        return;
    }
    let (_dir, slow, other) = short_and_long_leases(Duration::from_millis(300)).await;
    slow.enqueue(outbound(1, 1), 1000).await.unwrap();
    let r = recipient_ids(&slow.due(1000, 10).await.unwrap())[0];
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(recipient_ids(&other.due(1000, 10).await.unwrap()), [r]);

    slow.finish_recipient(r).await.unwrap();
    slow.defer_recipient(r, 9_000, "451 late".into())
        .await
        .unwrap();
    assert_eq!(slow.stats.lease_fenced.load(Ordering::Relaxed), 2);
    assert_eq!(other.queued_recipients().await.unwrap(), 1, "still queued");
    let again = other.due(1000, 10).await.unwrap();
    let kept = &again[0].recipients[0];
    assert_eq!(
        (kept.id, kept.attempts, kept.last_error.as_deref()),
        (r, 0, None)
    );
    assert!(
        slow.due(1000, 10).await.unwrap().is_empty(),
        "nor does the old holder get it back"
    );

    other
        .defer_recipient(r, 5_000, "451 busy".into())
        .await
        .unwrap();
    assert_eq!(other.stats.lease_fenced.load(Ordering::Relaxed), 0);
    let later = slow.due(5_000, 10).await.unwrap();
    assert_eq!(
        later[0].recipients[0].attempts, 1,
        "a deferral frees the lease"
    );
    slow.finish_recipient(r).await.unwrap();
    assert_eq!(other.queued_recipients().await.unwrap(), 0);
    assert_eq!(other.oldest_enqueued_ms().await.unwrap(), None);
}

/// Outbox rows from concurrent writers on two daemons get unique, gap-free
/// sequence numbers in commit order: a reader polling all along never sees a
/// row appear below the highest number it has already read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_seqs_from_two_daemons_are_unique_and_in_commit_order() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    for w in 0..8 {
        a.create_mailbox(&format!("u{w}"), 1 << 30).await.unwrap();
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, done) = (a.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut high = 0i64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let mut after = 0;
                loop {
                    let rows = store.outbox_after(after, 1024).await.unwrap();
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    for row in rows {
                        if seen.insert(row.seq) {
                            assert!(row.seq > high, "{} appeared below {high}", row.seq);
                        }
                    }
                }
                high = seen.last().copied().unwrap_or(0);
                if finished {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..8usize {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            let mut rows = 0;
            for i in 0..20usize {
                let event = move |n: usize| OutboxEvent {
                    kind: "A".into(),
                    org: "m-1".into(),
                    line: format!("{w}-{i}-{n}"),
                };
                if i % 2 == 0 {
                    let n = 1 + i % 3;
                    store
                        .outbox_append((0..n).map(event).collect())
                        .await
                        .unwrap();
                    rows += n;
                } else {
                    let target = Target {
                        folder: FolderRef::Kind(format!("u{w}"), FolderKind::Inbox),
                        flags: vec![],
                        properties: vec![],
                    };
                    let events: DeliveryEvents =
                        Arc::new(move |_: &[std::result::Result<Stored, Refused>]| vec![event(0)]);
                    store
                        .deliver_recording(Arc::from(&b"x"[..]), 0, vec![target], events)
                        .await
                        .unwrap();
                    rows += 1;
                }
            }
            rows
        }));
    }
    let mut written = 0i64;
    for t in writers {
        written += t.await.unwrap() as i64;
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        (1..=written).collect::<Vec<_>>(),
        "unique and gap-free"
    );
}

/// A daemon stopping cleanly gives its leases back: another daemon takes the
/// recipients at once (no takeover to wait for), and nothing else is touched.
#[tokio::test]
async fn a_clean_stop_releases_the_leases_at_once() {
    if !available() {
        return;
    }
    let (_dir, a, b) = two_daemons().await;
    a.enqueue(outbound(1, 2), 1000).await.unwrap();
    b.enqueue(outbound(2, 1), 1000).await.unwrap();
    let held_by_b = recipient_ids(&b.due(1000, 1).await.unwrap());
    let held_by_a = recipient_ids(&a.due(1000, 10).await.unwrap());
    assert_eq!((held_by_a.len(), held_by_b.len()), (1, 2));
    assert_eq!(b.release_queue_leases().await.unwrap(), 2);
    assert_eq!(b.release_queue_leases().await.unwrap(), 0);
    let now_free = recipient_ids(&a.due(1000, 10).await.unwrap());
    assert_eq!(now_free.len(), 3, "b's two and a's own one");
    assert_eq!(a.stats.lease_takeovers.load(Ordering::Relaxed), 0);
}

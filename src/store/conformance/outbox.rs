//! The event outbox: a delivery's events commit with it (never without it, never
//! twice), rows come back in order in bounded reads, marks and deletes survive a
//! reopen, and sequence numbers are never reused.

use std::sync::Arc;

use super::*;
use crate::store::outbox::MAX_READ;
use crate::store::*;

fn event(kind: &str, line: String) -> OutboxEvent {
    OutboxEvent {
        kind: kind.into(),
        org: "m-1".into(),
        line,
    }
}

/// One row per target: `DELIVERED` or `BOUNCED`, the line naming `tag` and the target.
fn per_target(tag: String) -> DeliveryEvents {
    Arc::new(move |results: &[std::result::Result<Stored, Refused>]| {
        results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let kind = if r.is_ok() { "DELIVERED" } else { "BOUNCED" };
                event(kind, format!("{tag}:{i}"))
            })
            .collect()
    })
}

async fn all_rows(store: &Arc<dyn Backend>) -> Vec<OutboxRow> {
    let mut out: Vec<OutboxRow> = Vec::new();
    loop {
        let after = out.last().map_or(0, |r| r.seq);
        let more = store.outbox_after(after, MAX_READ).await.unwrap();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

fn lines(rows: &[OutboxRow]) -> Vec<String> {
    rows.iter().map(|r| r.event.line.clone()).collect()
}

pub async fn delivery_events_commit_with_the_delivery(mut ctx: Ctx) {
    let store = ctx.store.clone();
    store.create_mailbox("u", 1 << 30).await.unwrap();
    store.create_mailbox("full", 1).await.unwrap();
    let commits = |s: &Arc<dyn Backend>| {
        s.writer_stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = commits(&store);
    let results = store
        .deliver_recording(
            Arc::from(&b"hello"[..]),
            0,
            vec![inbox("u"), inbox("full")],
            per_target("m0".into()),
        )
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[1] == Err(Refused::OverQuota));
    assert_eq!(
        commits(&store),
        before + 1,
        "the events share the delivery's commit"
    );
    let rows = all_rows(&store).await;
    let kinds: Vec<&str> = rows.iter().map(|r| r.event.kind.as_str()).collect();
    assert_eq!(kinds, ["DELIVERED", "BOUNCED"], "computed from the outcome");
    assert_eq!(lines(&rows), ["m0:0", "m0:1"]);
    assert_eq!(rows[0].event.org, "m-1");

    // Failing writes in the same batches (a batch is then run again): every
    // delivery that succeeded has its row exactly once, a failed write none.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                s.create_folder("u", "Dup").await.map(|_| None)
            } else {
                s.deliver_recording(
                    Arc::from(&b"x"[..]),
                    0,
                    vec![inbox("u")],
                    per_target(format!("m{i}")),
                )
                .await
                .map(|_| Some(i))
            }
        }));
    }
    let mut delivered = vec!["m0:0".to_string(), "m0:1".to_string()];
    for t in tasks {
        if let Ok(Some(i)) = t.await.unwrap() {
            delivered.push(format!("m{i}:0"));
        }
    }
    assert_eq!(delivered.len(), 32);

    // A submission's queue entry carries its events too; without events, none.
    let m = super::persistence::outbound(&["a@x.test"]);
    store
        .deliver_and_enqueue(
            m.body.clone(),
            0,
            vec![inbox("u")],
            m.clone(),
            Some(per_target("q".into())),
        )
        .await
        .unwrap();
    delivered.push("q:0".into());
    store
        .deliver_and_enqueue(m.body.clone(), 0, vec![inbox("u")], m, None)
        .await
        .unwrap();

    // Durable with the messages: the same after a reopen.
    drop(store);
    ctx.reopen();
    let store = ctx.store.clone();
    let mut got = lines(&all_rows(&store).await);
    got.sort();
    delivered.sort();
    assert_eq!(got, delivered);
    assert_eq!(folder(&store, "u", FolderKind::Inbox).await.messages, 33);
}

pub async fn outbox_reads_in_order_in_bounded_batches_and_marks_survive_a_reopen(mut ctx: Ctx) {
    let store = ctx.store.clone();
    assert_eq!(store.outbox_append(Vec::new()).await.unwrap(), 0);
    let first: Vec<OutboxEvent> = (0..5).map(|i| event("A", format!("a{i}"))).collect();
    let s5 = store.outbox_append(first).await.unwrap();
    store.create_mailbox("u", 1 << 30).await.unwrap();
    store
        .deliver_recording(
            Arc::from(&b"x"[..]),
            0,
            vec![inbox("u")],
            per_target("d".into()),
        )
        .await
        .unwrap();
    let more: Vec<OutboxEvent> = (5..8).map(|i| event("A", format!("a{i}"))).collect();
    let last = store.outbox_append(more).await.unwrap();
    let rows = all_rows(&store).await;
    assert_eq!(
        lines(&rows),
        ["a0", "a1", "a2", "a3", "a4", "d:0", "a5", "a6", "a7"],
        "in commit order"
    );
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!((rows[4].seq, rows[8].seq), (s5, last));
    let page = store.outbox_after(0, 4).await.unwrap();
    assert_eq!(lines(&page), ["a0", "a1", "a2", "a3"]);
    let rest = store.outbox_after(page[3].seq, 100).await.unwrap();
    assert_eq!(rest.len(), 5);

    // Marks: one per sink; rows up to `delete_through` go, the others stay.
    let (s1, s3) = (rows[1].seq, rows[3].seq);
    store
        .outbox_mark(vec![("file".into(), s3), ("http".into(), s1)], s1)
        .await
        .unwrap();
    drop(store);
    ctx.reopen();
    let store = ctx.store.clone();
    assert_eq!(
        store.outbox_marks().await.unwrap(),
        [("file".to_string(), s3), ("http".to_string(), s1)]
    );
    assert_eq!(lines(&all_rows(&store).await)[0], "a2", "a0 and a1 deleted");

    // A sink no longer named is forgotten; everything delivered goes.
    store
        .outbox_mark(vec![("file".into(), last)], last)
        .await
        .unwrap();
    assert_eq!(
        store.outbox_marks().await.unwrap(),
        [("file".to_string(), last)]
    );
    assert!(all_rows(&store).await.is_empty());

    // Sequence numbers are never reused, even once the outbox was empty.
    drop(store);
    ctx.reopen();
    let store = ctx.store.clone();
    let next = store
        .outbox_append(vec![event("A", "again".into())])
        .await
        .unwrap();
    assert!(next > last, "{next} reuses a number up to {last}");

    // A read returns at most MAX_READ rows, however many are asked for.
    let many: Vec<OutboxEvent> = (0..MAX_READ + 10)
        .map(|i| event("A", format!("n{i}")))
        .collect();
    store.outbox_append(many).await.unwrap();
    assert_eq!(
        store.outbox_after(0, usize::MAX).await.unwrap().len(),
        MAX_READ
    );
    assert_eq!(all_rows(&store).await.len(), MAX_READ + 11);
}

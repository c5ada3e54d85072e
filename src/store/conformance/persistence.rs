//! What other modules keep in the store: the outbound queue, tags, the directory
//! and the access rules, each surviving a reopen.

use std::sync::Arc;

use super::*;
use crate::store::queue::{NewOutbound, NewRecipient};

/// A message from alice for `recipients` (those starting with `b` asked for no
/// failure DSN).
pub fn outbound(recipients: &[&str]) -> NewOutbound {
    NewOutbound {
        sender: "alice@acme.test".into(),
        on_behalf_of: None,
        from_header: "alice@acme.test".into(),
        message_id: "m1@acme.test".into(),
        owner_org: "m-1".into(),
        owner_mailbox: "u-1".into(),
        trace_id: "t".into(),
        envelope_id: Some("env-1".into()),
        recipients: recipients
            .iter()
            .map(|s| NewRecipient {
                address: s.to_string(),
                notify_failure: !s.starts_with('b'),
            })
            .collect(),
        body: Arc::from(&b"Subject: x\r\n\r\nhi\r\n"[..]),
    }
}

pub async fn queue_enqueue_due_defer_and_finish(mut ctx: Ctx) {
    let store = ctx.store.clone();
    let id = store
        .enqueue(outbound(&["a@x.test", "b@x.test"]), 1000)
        .await
        .unwrap();
    assert!(store.due(999, 10).await.unwrap().is_empty());
    let due = store.due(1000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recipients.len(), 2);
    assert_eq!(due[0].message.envelope_id.as_deref(), Some("env-1"));
    assert!(due[0].recipients[0].notify_failure && !due[0].recipients[1].notify_failure);
    assert_eq!(
        store.queued_body(id).await.unwrap(),
        b"Subject: x\r\n\r\nhi\r\n"
    );
    let (a, b) = (due[0].recipients[0].id, due[0].recipients[1].id);
    store
        .defer_recipient(a, 5000, "451 busy".into())
        .await
        .unwrap();
    assert_eq!(store.next_attempt_ms().await.unwrap(), Some(1000));
    store.finish_recipient(b).await.unwrap();
    assert_eq!(store.next_attempt_ms().await.unwrap(), Some(5000));
    // The schedule survives a restart.
    drop(store);
    ctx.reopen();
    let store = ctx.store.clone();
    let later = store.due(5000, 10).await.unwrap();
    assert_eq!(later[0].recipients[0].attempts, 1);
    assert_eq!(
        later[0].recipients[0].last_error.as_deref(),
        Some("451 busy")
    );
    store.finish_recipient(a).await.unwrap();
    assert_eq!(store.queued_recipients().await.unwrap(), 0);
    assert!(
        store.queued_body(id).await.is_err(),
        "the message goes with its last recipient"
    );
    assert_eq!(store.next_attempt_ms().await.unwrap(), None);
}

/// Runs the blocking half of a test (the directory's, access's and tags' calls
/// block on the writer) off the async threads.
async fn blocking(ctx: Ctx, f: impl FnOnce(Ctx) + Send + 'static) {
    tokio::task::spawn_blocking(move || f(ctx)).await.unwrap();
}

pub async fn tags_are_set_overwritten_limited_and_removed(ctx: Ctx) {
    blocking(ctx, |mut ctx| {
        let store = ctx.store.clone();
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(
            store
                .tag_blocking("a", vec![t("x", "1"), t("y", "2")], 3)
                .unwrap()
        );
        assert!(store.tag_blocking("a", vec![t("x", "3")], 3).unwrap());
        assert!(
            !store
                .tag_blocking("a", vec![t("p", "1"), t("q", "1")], 3)
                .unwrap()
        );
        assert_eq!(
            store.tags_blocking("a").unwrap(),
            vec![t("x", "3"), t("y", "2")]
        );
        store
            .untag_blocking("a", vec!["x".into(), "nope".into()])
            .unwrap();
        assert_eq!(store.tags_blocking("a").unwrap(), vec![t("y", "2")]);
        assert!(store.tags_blocking("b").unwrap().is_empty());
        drop(store);
        ctx.reopen();
        assert_eq!(ctx.store.tags_blocking("a").unwrap(), vec![t("y", "2")]);
    })
    .await;
}

/// A conditional tag write goes ahead only over the value it names (or its
/// absence), and writers that retry on a refusal lose no update between them.
pub async fn a_conditional_tag_write_goes_ahead_only_over_what_it_read(ctx: Ctx) {
    blocking(ctx, |ctx| {
        let store = ctx.store.clone();
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(
            store
                .tag_if_blocking("a", "v", None, vec![t("v", "0"), t("job", "x")])
                .unwrap()
        );
        assert!(
            !store
                .tag_if_blocking("a", "v", None, vec![t("v", "9")])
                .unwrap()
        );
        assert!(
            !store
                .tag_if_blocking("a", "v", Some("1"), vec![t("v", "9")])
                .unwrap()
        );
        assert_eq!(
            store.tags_blocking("a").unwrap(),
            vec![t("job", "x"), t("v", "0")],
            "refused writes changed nothing"
        );
        // Counters moved by four writers at once, each reading again when refused.
        let runtime = tokio::runtime::Handle::current();
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (store, runtime) = (store.clone(), runtime.clone());
                std::thread::spawn(move || {
                    let _in = runtime.enter();
                    for _ in 0..10 {
                        loop {
                            let now = store
                                .tags_blocking("a")
                                .unwrap()
                                .into_iter()
                                .find(|(k, _)| k == "v")
                                .map(|(_, v)| v)
                                .unwrap();
                            let next = (now.parse::<u32>().unwrap() + 1).to_string();
                            if store
                                .tag_if_blocking("a", "v", Some(&now), vec![("v".into(), next)])
                                .unwrap()
                            {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(
            store.tags_blocking("a").unwrap(),
            vec![t("job", "x"), t("v", "40")]
        );
    })
    .await;
}

/// Mailbox export jobs keep one JSON record per job as a tag (a description and
/// two ARNs make several KB), with no tag limit, read back after a reopen.
pub async fn tags_hold_records_of_several_kilobytes_unlimited(ctx: Ctx) {
    blocking(ctx, |mut ctx| {
        let key = "mailgate:mailbox-export/m-1";
        let big = format!("{{\"description\":\"{}\"}}", "é\n\"x".repeat(2_000));
        let many: Vec<(String, String)> = (0..60)
            .map(|i| (format!("job-{i:02}"), big.clone()))
            .collect();
        assert!(
            ctx.store
                .tag_blocking(key, many.clone(), usize::MAX)
                .unwrap()
        );
        ctx.reopen();
        assert_eq!(ctx.store.tags_blocking(key).unwrap(), many);
    })
    .await;
}

pub async fn directory_survives_a_reopen_of_the_store(ctx: Ctx) {
    use crate::directory::{Directory, NewUser, UserRole};
    blocking(ctx, |mut ctx| {
        let (org, user) = {
            let d = Directory::open(ctx.store.clone()).unwrap();
            let org = d.create_organization("acme", "acme.test").unwrap();
            let user = d
                .create_user(
                    &org,
                    NewUser {
                        name: "alice",
                        display_name: "Alice",
                        password: None,
                        role: Some(UserRole::User),
                        first_name: None,
                        last_name: None,
                        hidden_from_gal: false,
                    },
                )
                .unwrap();
            d.register_to_workmail(&org, &user, "alice@acme.test")
                .unwrap();
            (org, user)
        };
        ctx.reopen();
        let d = Directory::open(ctx.store.clone()).unwrap();
        assert_eq!(
            d.describe_user(&org, &user).unwrap().base.email.as_deref(),
            Some("alice@acme.test")
        );
        assert!(d.resolve_address("ALICE@acme.test").is_some());
    })
    .await;
}

/// Personal access tokens are directory records of their own kind: created, one
/// deleted, a use recorded; after a reopen the survivor still has its hash and its
/// DateLastUsed and the deleted one is gone.
pub async fn personal_access_tokens_survive_a_reopen_of_the_store(ctx: Ctx) {
    use crate::directory::{Directory, NewToken, pat};
    blocking(ctx, |mut ctx| {
        let (org, kept, kept_text, gone) = {
            let d = Directory::open(ctx.store.clone()).unwrap();
            let org = d.create_organization("acme", "acme.test").unwrap();
            crate::directory::testing::user(&d, &org, "alice", "Corr3ct-Horse");
            let new = |name| NewToken {
                user: "alice",
                name,
                lifetime_days: None,
                scopes: None,
            };
            let (kept, text) = d
                .create_personal_access_token(&org, new("kept"), 5)
                .unwrap();
            let (gone, _) = d
                .create_personal_access_token(&org, new("gone"), 6)
                .unwrap();
            d.delete_personal_access_token(&org, &gone.id).unwrap();
            d.note_token_use(&kept.id, 7);
            d.flush_token_uses().unwrap();
            (org, kept.id, text, gone.id)
        };
        ctx.reopen();
        let d = Directory::open(ctx.store.clone()).unwrap();
        let t = d.get_personal_access_token(&org, &kept).unwrap();
        assert_eq!((t.name.as_str(), t.last_used), ("kept", Some(7)));
        let (_, secret) = pat::parse_token(&kept_text).unwrap();
        assert!(t.secret_matches(secret));
        assert!(d.personal_access_token(&gone).is_none());
    })
    .await;
}

pub async fn access_rules_survive_a_reopen_of_the_store(ctx: Ctx) {
    use crate::access::{AccessEngine, AccessLimits, TokenKeys};
    blocking(ctx, |mut ctx| {
        let keys = TokenKeys::generate("k1");
        {
            let engine =
                AccessEngine::open(ctx.store.clone(), AccessLimits::default(), keys.clone())
                    .unwrap();
            assert!(
                engine
                    .create_organization_defaults("m-0123456789abcdef0123456789abcdef", 1)
                    .unwrap()
            );
        }
        ctx.reopen();
        let engine = AccessEngine::open(ctx.store.clone(), AccessLimits::default(), keys).unwrap();
        let rules = engine
            .list_access_control_rules("m-0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(rules.len(), 1);
    })
    .await;
}

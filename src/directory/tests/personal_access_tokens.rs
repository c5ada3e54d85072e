//! Personal access tokens: creation limits, listing, lookup, deletion, cascades,
//! persistence and DateLastUsed.

use super::*;
use crate::directory::pat::{self, MAX_TOKENS_PER_USER};

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 86_400_000;

fn new<'a>(user: &'a str, name: &'a str) -> NewToken<'a> {
    NewToken {
        user,
        name,
        lifetime_days: None,
        scopes: None,
    }
}

#[test]
fn create_returns_the_text_once_and_stores_only_its_hash() {
    let f = fixture();
    let alice = f.user("alice");
    let (t, text) = f
        .dir
        .create_personal_access_token(&f.org, new("alice@example.test", "phone"), NOW)
        .expect("create");
    assert_eq!(
        (t.user_id.as_str(), t.name.as_str()),
        (alice.as_str(), "phone")
    );
    assert_eq!(t.expires, NOW + 365 * DAY, "WorkMail's default lifetime");
    assert_eq!(t.scopes, ["IMAP", "SMTP", "EWS"]);
    let (id, secret) = pat::parse_token(&text).expect("token shape");
    assert_eq!(id, t.id);
    let records = f.backend.records();
    let stored: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::PersonalAccessToken)
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].json.contains(secret),
        "the secret is never stored"
    );
    assert!(
        f.dir
            .personal_access_token(id)
            .is_some_and(|p| p.secret_matches(secret))
    );
}

#[test]
fn create_refuses_bad_input_unknown_or_disabled_users_and_an_eleventh_token() {
    let f = fixture();
    let alice = f.user("alice");
    let bob = f.new_user("bob"); // never registered: DISABLED
    let make = |user: &str, name: &str, days: Option<i64>| {
        f.dir.create_personal_access_token(
            &f.org,
            NewToken {
                lifetime_days: days,
                ..new(user, name)
            },
            NOW,
        )
    };
    assert_eq!(code(make(&alice, "", None)), "InvalidParameterException");
    assert_eq!(code(make(&alice, "a<b", None)), "InvalidParameterException");
    assert_eq!(
        code(make(&alice, "x", Some(0))),
        "InvalidParameterException"
    );
    assert_eq!(
        code(make(&alice, "x", Some(3654))),
        "InvalidParameterException"
    );
    assert_eq!(code(make("nobody", "x", None)), "EntityNotFoundException");
    assert_eq!(code(make(&bob, "x", None)), "EntityStateException");
    let bad_scope = ["POP3".to_string()];
    assert_eq!(
        code(f.dir.create_personal_access_token(
            &f.org,
            NewToken {
                scopes: Some(&bad_scope),
                ..new(&alice, "x")
            },
            NOW
        )),
        "InvalidParameterException"
    );
    assert_eq!(
        code(f.dir.create_personal_access_token(
            "m-00000000000000000000000000000000",
            new(&alice, "x"),
            NOW
        )),
        "OrganizationNotFoundException"
    );
    for i in 0..MAX_TOKENS_PER_USER {
        assert_eq!(code(make(&alice, &format!("t{i}"), Some(1))), "ok");
    }
    assert_eq!(
        code(make(&alice, "one more", None)),
        "LimitExceededException"
    );
    assert_eq!(
        f.dir
            .list_personal_access_tokens(&f.org, None)
            .map(|l| l.len()),
        Ok(MAX_TOKENS_PER_USER)
    );
}

#[test]
fn list_get_and_delete() {
    let f = fixture();
    f.user("alice");
    f.user("carol");
    let (a1, _) = f
        .dir
        .create_personal_access_token(&f.org, new("alice", "one"), NOW)
        .expect("a1");
    let (c1, _) = f
        .dir
        .create_personal_access_token(&f.org, new("carol", "laptop"), NOW + 1)
        .expect("c1");
    let (a2, _) = f
        .dir
        .create_personal_access_token(&f.org, new("alice", "two"), NOW + 2)
        .expect("a2");
    let ids = |user: Option<&str>| {
        f.dir
            .list_personal_access_tokens(&f.org, user)
            .map(|l| l.into_iter().map(|p| p.id).collect::<Vec<_>>())
    };
    assert_eq!(
        ids(None),
        Ok(vec![a1.id.clone(), c1.id.clone(), a2.id.clone()])
    );
    assert_eq!(
        ids(Some("alice@example.test")),
        Ok(vec![a1.id.clone(), a2.id.clone()])
    );
    assert_eq!(code(ids(Some("nobody"))), "EntityNotFoundException");
    assert_eq!(
        f.dir
            .get_personal_access_token(&f.org, &c1.id)
            .map(|p| p.name),
        Ok("laptop".to_string())
    );
    // Another organization does not see them.
    let other = f
        .dir
        .create_organization("other", "other.test")
        .expect("org");
    assert_eq!(
        code(f.dir.get_personal_access_token(&other, &c1.id)),
        "ResourceNotFoundException"
    );
    assert_eq!(f.dir.delete_personal_access_token(&other, &c1.id), Ok(None));
    assert_eq!(
        code(f.dir.get_personal_access_token(&f.org, "no such id")),
        "InvalidParameterException"
    );
    // Delete: gone at once; deleting again is a successful no-op.
    let generation = f.dir.generation();
    assert_eq!(
        f.dir
            .delete_personal_access_token(&f.org, &c1.id)
            .map(|d| d.map(|p| p.id)),
        Ok(Some(c1.id.clone()))
    );
    assert!(f.dir.generation() > generation, "live sessions re-check");
    assert!(f.dir.personal_access_token(&c1.id).is_none());
    assert_eq!(
        code(f.dir.get_personal_access_token(&f.org, &c1.id)),
        "ResourceNotFoundException"
    );
    assert_eq!(f.dir.delete_personal_access_token(&f.org, &c1.id), Ok(None));
    assert_eq!(ids(None), Ok(vec![a1.id, a2.id]));
}

#[test]
fn deleting_a_user_deletes_its_tokens_and_a_disabled_user_keeps_them() {
    let f = fixture();
    let alice = f.user("alice");
    let (t, _) = f
        .dir
        .create_personal_access_token(&f.org, new(&alice, "phone"), NOW)
        .expect("create");
    f.dir
        .deregister_from_workmail(&f.org, &alice)
        .expect("disable");
    assert!(f.dir.personal_access_token(&t.id).is_some());
    assert_eq!(
        code(f.dir.list_personal_access_tokens(&f.org, Some(&alice))),
        "ok"
    );
    f.dir.delete_user(&f.org, &alice).expect("delete");
    assert!(f.dir.personal_access_token(&t.id).is_none());
    assert!(
        !f.backend
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::PersonalAccessToken)
    );
    assert_eq!(
        code(f.dir.list_personal_access_tokens(&f.org, Some(&alice))),
        "EntityStateException"
    );
}

#[test]
fn validity_for_live_sessions() {
    let f = fixture();
    let alice = f.user("alice");
    let bob = f.user("bob");
    let (t, _) = f
        .dir
        .create_personal_access_token(
            &f.org,
            NewToken {
                lifetime_days: Some(1),
                ..new(&alice, "x")
            },
            NOW,
        )
        .expect("create");
    assert!(f.dir.personal_access_token_valid(&t.id, &alice, NOW));
    assert!(!f.dir.personal_access_token_valid(&t.id, &bob, NOW));
    assert!(!f.dir.personal_access_token_valid(&t.id, &alice, NOW + DAY));
    assert!(!f.dir.personal_access_token_valid("gone", &alice, NOW));
}

#[test]
fn last_used_is_batched_persisted_and_moves_no_generation() {
    let f = fixture();
    f.user("alice");
    let (t, _) = f
        .dir
        .create_personal_access_token(&f.org, new("alice", "x"), NOW)
        .expect("create");
    let (gone, _) = f
        .dir
        .create_personal_access_token(&f.org, new("alice", "y"), NOW)
        .expect("create");
    let (generation, writes) = (f.dir.generation(), f.backend.apply_count());
    // The first use asks for a flush; uses within the next minute do not.
    assert!(f.dir.note_token_use(&t.id, NOW + 10));
    assert!(!f.dir.note_token_use(&t.id, NOW + 20));
    assert!(!f.dir.note_token_use(&gone.id, NOW + 30));
    assert_eq!(f.backend.apply_count(), writes, "no write per use");
    // What the API reports is the latest use, written or not.
    assert_eq!(
        f.dir
            .get_personal_access_token(&f.org, &t.id)
            .map(|p| p.last_used),
        Ok(Some(NOW + 20))
    );
    assert_eq!(
        f.dir.personal_access_token(&t.id).and_then(|p| p.last_used),
        None
    );
    f.dir
        .delete_personal_access_token(&f.org, &gone.id)
        .expect("delete");
    let (generation, writes) = (f.dir.generation().max(generation), f.backend.apply_count());
    f.dir.flush_token_uses().expect("flush");
    assert_eq!(f.backend.apply_count(), writes + 1, "one batch");
    assert_eq!(
        f.dir.generation(),
        generation,
        "bookkeeping moves no generation"
    );
    assert!(
        f.dir.personal_access_token(&gone.id).is_none(),
        "not resurrected"
    );
    assert_eq!(
        f.dir.personal_access_token(&t.id).and_then(|p| p.last_used),
        Some(NOW + 20)
    );
    // Nothing pending: a flush writes nothing. A minute later a use asks again.
    f.dir.flush_token_uses().expect("flush");
    assert_eq!(f.backend.apply_count(), writes + 1);
    assert!(f.dir.note_token_use(&t.id, NOW + 10 + LAST_USED_FLUSH_MS));
    // And the written value survives a restart.
    let reopened = Directory::open(f.backend.clone()).expect("reopen");
    let p = reopened.personal_access_token(&t.id).expect("still there");
    assert_eq!((p.last_used, p.name.as_str()), (Some(NOW + 20), "x"));
    assert_eq!(p, f.dir.personal_access_token(&t.id).expect("same"));
}

#[test]
fn a_token_record_of_an_unknown_organization_is_corrupt() {
    let f = fixture();
    f.user("alice");
    f.dir
        .create_personal_access_token(&f.org, new("alice", "x"), NOW)
        .expect("create");
    let records: Vec<Record> = f
        .backend
        .records()
        .into_iter()
        .filter(|r| r.kind != RecordKind::Organization)
        .collect();
    assert!(Directory::open(Arc::new(MemoryBackend::with_records(records))).is_err());
}

#[test]
fn tokens_made_in_the_same_millisecond_list_in_creation_order() {
    let f = fixture();
    f.user("alice");
    let made: Vec<String> = (0..5)
        .map(|i| {
            f.dir
                .create_personal_access_token(&f.org, new("alice", &format!("t{i}")), NOW)
                .expect("create")
                .0
                .id
        })
        .collect();
    let listed: Vec<String> = f
        .dir
        .list_personal_access_tokens(&f.org, None)
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, made);
}

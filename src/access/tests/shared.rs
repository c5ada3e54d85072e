//! Two engines over one versioned backend behave as two daemons on one
//! database: a rule saved on A is enforced by B after its refresh, and a save
//! made on stale state is validated against the newest.

use std::sync::Arc;

use super::support::*;
use crate::access::{AccessEngine, AccessLimits, Effect, Principal, Protocol};

fn daemon_b(backend: &Arc<crate::access::MemoryBackend>) -> AccessEngine {
    AccessEngine::open(backend.clone(), AccessLimits::default(), keys()).expect("open b")
}

#[test]
fn a_deny_rule_saved_on_a_is_enforced_by_b_after_refresh() {
    let (backend, a) = engine();
    let b = daemon_b(&backend);
    let imap = req("10.0.0.1", Protocol::Imap, Principal::User(ALICE));
    assert!(b.evaluate(ORG, &imap).allowed());
    let mut deny = rule("no-imap", Effect::Deny);
    deny.actions = strings(&["IMAP"]);
    a.put_access_control_rule(ORG, deny, T0).expect("put on A");
    assert!(
        b.evaluate(ORG, &imap).allowed(),
        "B still serves what it had"
    );
    let before = b.generation();
    assert_eq!(b.refresh(), Ok(true));
    assert!(!b.evaluate(ORG, &imap).allowed());
    assert!(b.generation() > before, "live sessions on B re-check");
    assert_eq!(b.refresh(), Ok(false));
}

#[test]
fn saves_on_stale_state_see_the_newest_first() {
    let (backend, a) = engine();
    let b = daemon_b(&backend);
    a.put_access_control_rule(ORG, rule("from-a", Effect::Allow), T0)
        .expect("on A");
    // B has not refreshed: its save still keeps A's rule.
    b.put_access_control_rule(ORG, rule("from-b", Effect::Allow), T0)
        .expect("on B");
    assert!(a.refresh().expect("refresh"));
    let names: Vec<String> = a
        .list_access_control_rules(ORG)
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names.len(), 3, "default, from-a, from-b: {names:?}");
    // The organization exists on B now, so its defaults are not made twice.
    assert_eq!(b.create_organization_defaults(OTHER_ORG, T0), Ok(true));
    assert_eq!(a.create_organization_defaults(OTHER_ORG, T0), Ok(false));
}

#[test]
fn a_document_that_does_not_decode_is_not_published() {
    let (backend, _a) = engine();
    let b = daemon_b(&backend);
    use crate::access::AccessBackend;
    backend.save(OTHER_ORG, "{not json").expect("raw save");
    assert!(b.refresh().is_err());
    assert!(!b.has_organization(OTHER_ORG));
    assert!(b.has_organization(ORG), "B keeps serving what it had");
}

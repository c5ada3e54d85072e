//! Fixtures shared by the access tests.

use std::net::IpAddr;
use std::sync::Arc;

use crate::access::{
    AccessControlRuleInput, AccessEngine, AccessLimits, Effect, ImpersonationRoleInput,
    ImpersonationRule, MemoryBackend, Principal, Protocol, Request, ResolvedUser, RoleType,
    TokenKeys, UserResolver,
};

pub const ORG: &str = "m-0123456789abcdef0123456789abcdef";
pub const OTHER_ORG: &str = "m-fedcba9876543210fedcba9876543210";
/// 2023-11-14T22:13:20Z in epoch ms.
pub const T0: u64 = 1_700_000_000_000;

pub const ALICE: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
pub const BOB: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
pub const CAROL: &str = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";

/// A directory of three users in ORG; carol is disabled.
pub struct Directory;

impl UserResolver for Directory {
    fn resolve_user(&self, org: &str, identifier: &str) -> Option<ResolvedUser> {
        if org != ORG {
            return None;
        }
        let users = [
            (ALICE, "alice", "alice@example.test", true),
            (BOB, "bob", "bob@example.test", true),
            (CAROL, "carol", "carol@example.test", false),
        ];
        users
            .iter()
            .find(|(id, name, email, _)| [*id, *name, *email].contains(&identifier))
            .map(|(id, _, _, enabled)| ResolvedUser {
                id: (*id).to_owned(),
                enabled: *enabled,
            })
    }
}

pub fn keys() -> TokenKeys {
    TokenKeys::new("k1", vec![7u8; 32])
}

/// An engine over a fresh memory backend with ORG created at T0.
pub fn engine_with(limits: AccessLimits) -> (Arc<MemoryBackend>, AccessEngine) {
    let backend = Arc::new(MemoryBackend::new());
    let engine = AccessEngine::open(backend.clone(), limits, keys()).expect("open");
    engine.create_organization_defaults(ORG, T0).expect("org");
    (backend, engine)
}

pub fn engine() -> (Arc<MemoryBackend>, AccessEngine) {
    engine_with(AccessLimits::default())
}

pub fn rule(name: &str, effect: Effect) -> AccessControlRuleInput {
    AccessControlRuleInput::new(name, effect)
}

pub fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

pub fn req<'a>(ip: &str, action: Protocol, principal: Principal<'a>) -> Request<'a> {
    let source_ip: IpAddr = ip.parse().expect("test ip");
    Request {
        source_ip,
        action,
        principal,
    }
}

pub fn imp_rule(
    id: &str,
    effect: Effect,
    targets: &[&str],
    not_targets: &[&str],
) -> ImpersonationRule {
    ImpersonationRule {
        impersonation_rule_id: id.to_owned(),
        name: format!("rule {id}"),
        description: None,
        effect,
        target_users: strings(targets),
        not_target_users: strings(not_targets),
    }
}

pub fn role_input(rules: Vec<ImpersonationRule>) -> ImpersonationRoleInput {
    ImpersonationRoleInput {
        name: "ews-sync".into(),
        role_type: RoleType::FullAccess,
        description: Some("sync service".into()),
        rules,
    }
}

/// A role allowing everyone, created in ORG.
pub fn allow_all_role(engine: &AccessEngine) -> String {
    engine
        .create_impersonation_role(
            ORG,
            role_input(vec![imp_rule("all", Effect::Allow, &[], &[])]),
            None,
            &Directory,
            T0,
        )
        .expect("role")
}

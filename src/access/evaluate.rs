//! The access control decision: one pure function shared by the live path (every login
//! and EWS request) and by GetAccessControlEffect, so a test answer is the live answer.

use std::net::IpAddr;

use serde::Serialize;

use super::iprange::ip_key;
use super::protocol::Protocol;
use super::rules::{Effect, Rule};

/// Who performs a request: an authenticated user, or an impersonation role (EWS bearer
/// token). Borrowed so the hot path copies no ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    /// A user id.
    User(&'a str),
    /// An impersonation role id.
    Role(&'a str),
}

/// What is being attempted, from where, by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Peer address; IPv4-mapped IPv6 and IPv4 are treated as the same address.
    pub source_ip: IpAddr,
    /// Protocol of the listener.
    pub action: Protocol,
    /// User or role.
    pub principal: Principal<'a>,
}

/// Outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Decision {
    /// ALLOW or DENY.
    pub effect: Effect,
    /// Names of every matching rule, in rule order (GetAccessControlEffect `MatchedRules`).
    pub matched_rules: Vec<String>,
    /// The rule the audit `rule_id` names: first matching DENY, else first matching ALLOW,
    /// else none (no rule matched, so the default deny decided).
    pub deciding_rule: Option<String>,
}

impl Decision {
    /// True when access is granted.
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The decision for an unknown organization or an empty rule set.
    pub fn deny_all() -> Decision {
        Decision {
            effect: Effect::Deny,
            matched_rules: Vec::new(),
            deciding_rule: None,
        }
    }
}

/// Decides a request against an organization's rules: any matching DENY denies,
/// otherwise any matching ALLOW allows, otherwise DENY (so an empty rule set denies all).
pub fn evaluate(rules: &[Rule], request: &Request<'_>) -> Decision {
    let key = ip_key(request.source_ip);
    let mut matched_rules = Vec::new();
    let mut first_deny: Option<usize> = None;
    let mut first_allow: Option<usize> = None;
    for (i, rule) in rules.iter().enumerate() {
        if !rule_matches(rule, key, request) {
            continue;
        }
        matched_rules.push(rule.name().to_owned());
        let slot = match rule.effect() {
            Effect::Deny => &mut first_deny,
            Effect::Allow => &mut first_allow,
        };
        slot.get_or_insert(i);
    }
    let (effect, decider) = match (first_deny, first_allow) {
        (Some(i), _) => (Effect::Deny, Some(i)),
        (None, Some(i)) => (Effect::Allow, Some(i)),
        (None, None) => (Effect::Deny, None),
    };
    Decision {
        effect,
        matched_rules,
        deciding_rule: decider.map(|i| rules[i].name().to_owned()),
    }
}

/// A rule matches when every condition family it sets matches (see the module doc).
fn rule_matches(rule: &Rule, key: u128, request: &Request<'_>) -> bool {
    let spec = rule.spec();
    if !rule.ip.is_empty() && !rule.ip.contains_key(key) {
        return false;
    }
    if !rule.not_ip.is_empty() && rule.not_ip.contains_key(key) {
        return false;
    }
    if !rule.actions.is_empty() && !rule.actions.contains(request.action) {
        return false;
    }
    if !rule.not_actions.is_empty() && rule.not_actions.contains(request.action) {
        return false;
    }
    let (users_ok, roles_ok) = match request.principal {
        Principal::User(user) => (
            family_matches(&spec.user_ids, &spec.not_user_ids, user),
            // A user is never one of the listed roles: a role list excludes users,
            // a NotRole list cannot exclude them.
            spec.impersonation_role_ids.is_empty(),
        ),
        Principal::Role(role) => (
            spec.user_ids.is_empty(),
            family_matches(
                &spec.impersonation_role_ids,
                &spec.not_impersonation_role_ids,
                role,
            ),
        ),
    };
    users_ok && roles_ok
}

/// Include list (if set) must contain the value; exclude list (if set) must not.
fn family_matches(include: &[String], exclude: &[String], value: &str) -> bool {
    (include.is_empty() || include.iter().any(|v| v == value))
        && !exclude.iter().any(|v| v == value)
}

//! WorkMail's access control rule operations on the engine: Put, Delete, List and
//! GetAccessControlEffect.

use std::net::IpAddr;

use super::engine::{AccessEngine, Change};
use super::error::{AccessError, invalid};
use super::evaluate::{Decision, Principal, Request, evaluate};
use super::protocol::Protocol;
use super::rules::{AccessControlRule, AccessControlRuleInput, Rule};
use super::validate;

impl AccessEngine {
    /// PutAccessControlRule: creates the rule, or replaces the rule of the same name
    /// (keeping its DateCreated and its position). Adding a rule beyond
    /// `max_rules_per_org` is LimitExceeded; a replace never is.
    pub fn put_access_control_rule(
        &self,
        org: &str,
        input: AccessControlRuleInput,
        now_ms: u64,
    ) -> Result<(), AccessError> {
        let limit = self.limits().max_rules_per_org;
        // Validate before taking the writer lock; the dates are fixed up below.
        let rule = Rule::new(AccessControlRule::from_input(input, now_ms, now_ms)?)?;
        self.mutate(org, |state| {
            let mut rule = rule.clone();
            match state.rules.iter().position(|r| r.name() == rule.name()) {
                Some(i) => {
                    let created = state.rules[i].spec().date_created;
                    rule.set_date_created(created);
                    state.rules[i] = rule;
                }
                None => {
                    if state.rules.len() >= limit {
                        return Err(AccessError::LimitExceeded(format!(
                            "an organization may have at most {limit} access control rules"
                        )));
                    }
                    state.rules.push(rule);
                }
            }
            Ok(Change::Changed(()))
        })
    }

    /// DeleteAccessControlRule: deleting an unknown name succeeds and changes nothing.
    /// Deleting the last rule blocks all access for the organization.
    pub fn delete_access_control_rule(&self, org: &str, name: &str) -> Result<(), AccessError> {
        self.mutate(org, |state| {
            let before = state.rules.len();
            state.rules.retain(|r| r.name() != name);
            Ok(if state.rules.len() == before {
                Change::Unchanged(())
            } else {
                Change::Changed(())
            })
        })
    }

    /// ListAccessControlRules, in rule order.
    pub fn list_access_control_rules(
        &self,
        org: &str,
    ) -> Result<Vec<AccessControlRule>, AccessError> {
        Ok(self
            .org(org)?
            .rules
            .iter()
            .map(|r| r.spec().clone())
            .collect())
    }

    /// GetAccessControlEffect: the live decision for a hypothetical request. Exactly one
    /// of `user_id` / `role_id` must be given, a role only with Action `EWS`, and the
    /// role must exist. IPv6 addresses are accepted as well as IPv4.
    pub fn get_access_control_effect(
        &self,
        org: &str,
        ip: &str,
        action: &str,
        user_id: Option<&str>,
        role_id: Option<&str>,
    ) -> Result<Decision, AccessError> {
        let source_ip: IpAddr = ip
            .parse()
            .map_err(|_| invalid("IpAddress must be an IPv4 or IPv6 address"))?;
        let action: Protocol = action.parse()?;
        let principal = match (user_id, role_id) {
            (Some(user), None) => {
                validate::char_len("UserId", user, 12, 256)?;
                Principal::User(user)
            }
            (None, Some(role)) => {
                validate::id_token("ImpersonationRoleId", role, 64)?;
                if action != Protocol::Ews {
                    return Err(invalid(
                        "ImpersonationRoleId may only be used with Action EWS",
                    ));
                }
                Principal::Role(role)
            }
            _ => {
                return Err(invalid(
                    "exactly one of UserId and ImpersonationRoleId must be given",
                ));
            }
        };
        let state = self.org(org)?;
        if let Principal::Role(role) = principal
            && state.role(role).is_none()
        {
            return Err(AccessError::ResourceNotFound(
                "impersonation role not found".into(),
            ));
        }
        Ok(evaluate(
            &state.rules,
            &Request {
                source_ip,
                action,
                principal,
            },
        ))
    }
}

//! Impersonation roles: their types, validation, target-user resolution and the pure
//! role decision (may this role act in that user's mailbox?).

use serde::{Deserialize, Serialize};

use super::error::{AccessError, invalid};
use super::rules::Effect;
use super::validate;

const MAX_RULES: usize = 10;
const MAX_TARGETS: usize = 10;

/// What an impersonation role may do in a mailbox it may enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoleType {
    /// Read and modify items, and send.
    FullAccess,
    /// Read only.
    ReadOnly,
}

/// Audit mailbox-access actions a READ_ONLY role may perform; every other action
/// (including `update_read_state`, i.e. marking an item read) is a write.
pub const READ_ACTIONS: [&str; 5] = [
    "read",
    "read_hierarchy",
    "read_summary",
    "read_attachment",
    "read_permissions",
];

impl RoleType {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleType::FullAccess => "FULL_ACCESS",
            RoleType::ReadOnly => "READ_ONLY",
        }
    }

    /// Whether the role type permits a mailbox action named in the audit vocabulary
    /// (`read`, `create`, `submit_email_for_sending`, ...).
    pub fn permits(self, audit_action: &str) -> bool {
        match self {
            RoleType::FullAccess => true,
            RoleType::ReadOnly => READ_ACTIONS.contains(&audit_action),
        }
    }
}

/// The directory, as the access module needs it: resolve a user id, user name or email
/// of an organization to its user id and state. Implemented by the daemon's directory.
pub trait UserResolver {
    /// `None` when no user of `org` has that identifier.
    fn resolve_user(&self, org: &str, identifier: &str) -> Option<ResolvedUser>;
}

/// A user as resolved by [`UserResolver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// Stable user id (what role rules store and compare).
    pub id: String,
    /// Disabled users may still be named in rules but cannot be impersonated.
    pub enabled: bool,
}

/// One rule of a role, as given by the administrator and returned by Get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ImpersonationRule {
    /// Unique within the role.
    pub impersonation_rule_id: String,
    /// Display name.
    pub name: String,
    /// Optional free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ALLOW or DENY.
    pub effect: Effect,
    /// Users (id, name or email) the rule applies to; empty = not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_users: Vec<String>,
    /// Users the rule does not apply to; empty = not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_target_users: Vec<String>,
}

/// Create/UpdateImpersonationRole body (without OrganizationId, role id, ClientToken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImpersonationRoleInput {
    /// Display name.
    pub name: String,
    /// FULL_ACCESS or READ_ONLY.
    #[serde(rename = "Type")]
    pub role_type: RoleType,
    /// Optional free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Rules, in evaluation-independent order (order only affects MatchedRules order).
    #[serde(default)]
    pub rules: Vec<ImpersonationRule>,
}

/// A stored role as GetImpersonationRole returns it (dates in epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ImpersonationRole {
    /// Lowercase UUIDv4.
    pub impersonation_role_id: String,
    /// Display name.
    pub name: String,
    /// FULL_ACCESS or READ_ONLY.
    #[serde(rename = "Type")]
    pub role_type: RoleType,
    /// Optional free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Rules as given.
    pub rules: Vec<ImpersonationRule>,
    /// Creation time.
    pub date_created: u64,
    /// Last update.
    pub date_modified: u64,
    /// Bumped on every update; tokens carry it, so an update invalidates them.
    pub version: u64,
}

/// ListImpersonationRoles entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImpersonationRoleSummary {
    /// Role id.
    pub impersonation_role_id: String,
    /// Display name.
    pub name: String,
    /// Role type.
    #[serde(rename = "Type")]
    pub role_type: RoleType,
    /// Creation time.
    pub date_created: u64,
    /// Last update.
    pub date_modified: u64,
}

/// A rule that matched in a role decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MatchedImpersonationRule {
    /// Rule id.
    pub impersonation_rule_id: String,
    /// Rule name.
    pub name: String,
}

/// GetImpersonationRoleEffect response, also what EWS authorization acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleEffect {
    /// The role's type (what it may do once inside).
    #[serde(rename = "Type")]
    pub role_type: RoleType,
    /// ALLOW or DENY.
    pub effect: Effect,
    /// Matching rules in role order.
    pub matched_rules: Vec<MatchedImpersonationRule>,
}

impl RoleEffect {
    /// True when impersonation is granted.
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// The user ids a rule's target lists resolved to when the role was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleTargets {
    /// Resolved `TargetUsers`.
    pub target_user_ids: Vec<String>,
    /// Resolved `NotTargetUsers`.
    pub not_target_user_ids: Vec<String>,
}

/// A validated role with its target users resolved to ids.
#[derive(Debug, Clone)]
pub struct Role {
    def: ImpersonationRole,
    targets: Vec<RuleTargets>,
}

impl Role {
    /// Pairs a role with its resolved targets, validating both (also used on load).
    pub(super) fn from_parts(
        def: ImpersonationRole,
        targets: Vec<RuleTargets>,
    ) -> Result<Role, AccessError> {
        if !validate::is_role_uuid(&def.impersonation_role_id) {
            return Err(invalid("ImpersonationRoleId must be a lowercase UUID"));
        }
        validate_fields(&def.name, def.description.as_deref(), &def.rules)?;
        let consistent = targets.len() == def.rules.len()
            && def.rules.iter().zip(&targets).all(|(r, t)| {
                r.target_users.len() == t.target_user_ids.len()
                    && r.not_target_users.len() == t.not_target_user_ids.len()
            });
        if !consistent {
            return Err(invalid("resolved targets do not match the role's rules"));
        }
        Ok(Role { def, targets })
    }

    /// The role as Get returns it.
    pub fn definition(&self) -> &ImpersonationRole {
        &self.def
    }

    /// Role id.
    pub fn id(&self) -> &str {
        &self.def.impersonation_role_id
    }

    /// Resolved targets, one entry per rule.
    pub(super) fn targets(&self) -> &[RuleTargets] {
        &self.targets
    }

    /// Summary for List.
    pub fn summary(&self) -> ImpersonationRoleSummary {
        ImpersonationRoleSummary {
            impersonation_role_id: self.def.impersonation_role_id.clone(),
            name: self.def.name.clone(),
            role_type: self.def.role_type,
            date_created: self.def.date_created,
            date_modified: self.def.date_modified,
        }
    }

    /// The role decision for a resolved target user id: among rules whose target
    /// condition matches, any DENY denies, else any ALLOW allows, else DENY. A rule with
    /// neither list matches everyone; a role without rules impersonates nobody.
    pub fn evaluate(&self, target_user_id: &str) -> RoleEffect {
        let mut matched_rules = Vec::new();
        let mut any_deny = false;
        let mut any_allow = false;
        for (rule, t) in self.def.rules.iter().zip(&self.targets) {
            let in_targets = t.target_user_ids.is_empty()
                || t.target_user_ids.iter().any(|u| u == target_user_id);
            let excluded = t.not_target_user_ids.iter().any(|u| u == target_user_id);
            if !in_targets || excluded {
                continue;
            }
            match rule.effect {
                Effect::Deny => any_deny = true,
                Effect::Allow => any_allow = true,
            }
            matched_rules.push(MatchedImpersonationRule {
                impersonation_rule_id: rule.impersonation_rule_id.clone(),
                name: rule.name.clone(),
            });
        }
        RoleEffect {
            role_type: self.def.role_type,
            effect: if any_allow && !any_deny {
                Effect::Allow
            } else {
                Effect::Deny
            },
            matched_rules,
        }
    }
}

/// Validates a Create/Update body.
pub(super) fn validate_input(input: &ImpersonationRoleInput) -> Result<(), AccessError> {
    validate_fields(&input.name, input.description.as_deref(), &input.rules)
}

fn validate_fields(
    name: &str,
    description: Option<&str>,
    rules: &[ImpersonationRule],
) -> Result<(), AccessError> {
    validate::char_len("Name", name, 1, 64)?;
    validate::no_markup_or_controls("Name", name, false)?;
    if let Some(d) = description {
        validate::char_len("Description", d, 1, 256)?;
        validate::no_markup_or_controls("Description", d, true)?;
    }
    validate::list_len("Rules", rules.len(), MAX_RULES)?;
    for (i, rule) in rules.iter().enumerate() {
        validate::id_token("ImpersonationRuleId", &rule.impersonation_rule_id, 64)?;
        if rules[..i]
            .iter()
            .any(|r| r.impersonation_rule_id == rule.impersonation_rule_id)
        {
            return Err(invalid("ImpersonationRuleId must be unique within a role"));
        }
        validate::char_len("Rules.Name", &rule.name, 1, 64)?;
        validate::no_markup_or_controls("Rules.Name", &rule.name, false)?;
        if let Some(d) = &rule.description {
            validate::char_len("Rules.Description", d, 1, 256)?;
            validate::no_markup_or_controls("Rules.Description", d, true)?;
        }
        for (field, list) in [
            ("TargetUsers", &rule.target_users),
            ("NotTargetUsers", &rule.not_target_users),
        ] {
            validate::list_len(field, list.len(), MAX_TARGETS)?;
            list.iter()
                .try_for_each(|u| validate::entity_identifier(field, u))?;
        }
    }
    Ok(())
}

/// Resolves every rule's target lists to user ids; an unknown identifier is
/// EntityNotFound. Disabled users are accepted (they simply cannot be impersonated
/// while disabled).
pub(super) fn resolve_targets(
    org: &str,
    rules: &[ImpersonationRule],
    resolver: &dyn UserResolver,
) -> Result<Vec<RuleTargets>, AccessError> {
    let resolve_all = |list: &[String]| {
        list.iter()
            .map(|ident| {
                resolver
                    .resolve_user(org, ident)
                    .map(|u| u.id)
                    .ok_or_else(|| AccessError::EntityNotFound(format!("user {ident} not found")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    rules
        .iter()
        .map(|r| {
            Ok(RuleTargets {
                target_user_ids: resolve_all(&r.target_users)?,
                not_target_user_ids: resolve_all(&r.not_target_users)?,
            })
        })
        .collect()
}

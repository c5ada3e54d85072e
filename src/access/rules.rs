//! Access control rule types, their validation, and the compiled form evaluation uses.

use serde::{Deserialize, Serialize};

use super::error::{AccessError, invalid};
use super::iprange::{IpRange, IpSet};
use super::protocol::{Protocol, ProtocolSet};
use super::validate;

/// Name of the rule every new organization starts with.
pub const DEFAULT_RULE_NAME: &str = "default";
/// Description of the default rule.
pub const DEFAULT_RULE_DESCRIPTION: &str = "Default allow-all rule";

const MAX_IP_RANGES: usize = 1024;
const MAX_LIST: usize = 10;

/// ALLOW or DENY, spelled as WorkMail's enum on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Effect {
    /// Grants access (unless a DENY also matches).
    Allow,
    /// Refuses access; wins over any ALLOW.
    Deny,
}

impl Effect {
    /// Wire spelling, also used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "ALLOW",
            Effect::Deny => "DENY",
        }
    }
}

/// A PutAccessControlRule request (without OrganizationId). `Actions` stay strings here
/// so an unknown value is reported as InvalidParameter rather than a decoding error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessControlRuleInput {
    /// Rule key: a Put with an existing name replaces that rule.
    pub name: String,
    /// ALLOW or DENY.
    pub effect: Effect,
    /// Free text, 0-255 Latin-1 printable characters.
    #[serde(default)]
    pub description: String,
    /// Source ranges the rule applies to (IPv4 or IPv6 CIDR).
    #[serde(default)]
    pub ip_ranges: Vec<String>,
    /// Source ranges the rule does not apply to.
    #[serde(default)]
    pub not_ip_ranges: Vec<String>,
    /// Protocols the rule applies to.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Protocols the rule does not apply to.
    #[serde(default)]
    pub not_actions: Vec<String>,
    /// Users the rule applies to.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// Users the rule does not apply to.
    #[serde(default)]
    pub not_user_ids: Vec<String>,
    /// Impersonation roles the rule applies to.
    #[serde(default)]
    pub impersonation_role_ids: Vec<String>,
    /// Impersonation roles the rule does not apply to.
    #[serde(default)]
    pub not_impersonation_role_ids: Vec<String>,
}

impl AccessControlRuleInput {
    /// A rule with no conditions, to be filled in by the caller.
    pub fn new(name: impl Into<String>, effect: Effect) -> Self {
        AccessControlRuleInput {
            name: name.into(),
            effect,
            description: String::new(),
            ip_ranges: Vec::new(),
            not_ip_ranges: Vec::new(),
            actions: Vec::new(),
            not_actions: Vec::new(),
            user_ids: Vec::new(),
            not_user_ids: Vec::new(),
            impersonation_role_ids: Vec::new(),
            not_impersonation_role_ids: Vec::new(),
        }
    }
}

/// A stored rule as ListAccessControlRules returns it (dates in epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccessControlRule {
    /// Rule key.
    pub name: String,
    /// ALLOW or DENY.
    pub effect: Effect,
    /// Free text.
    pub description: String,
    /// CIDRs as given by the administrator.
    pub ip_ranges: Vec<String>,
    /// Excluded CIDRs as given.
    pub not_ip_ranges: Vec<String>,
    /// Protocols (canonical spelling).
    pub actions: Vec<Protocol>,
    /// Excluded protocols.
    pub not_actions: Vec<Protocol>,
    /// User ids.
    pub user_ids: Vec<String>,
    /// Excluded user ids.
    pub not_user_ids: Vec<String>,
    /// Impersonation role ids.
    pub impersonation_role_ids: Vec<String>,
    /// Excluded impersonation role ids.
    pub not_impersonation_role_ids: Vec<String>,
    /// First creation under this name; kept when the rule is replaced.
    pub date_created: u64,
    /// Last Put under this name.
    pub date_modified: u64,
}

impl AccessControlRule {
    /// Validates a Put request and stamps the dates.
    pub fn from_input(
        input: AccessControlRuleInput,
        date_created: u64,
        date_modified: u64,
    ) -> Result<AccessControlRule, AccessError> {
        let parse_actions = |field: &str, values: Vec<String>| {
            validate::list_len(field, values.len(), MAX_LIST)?;
            values
                .iter()
                .map(|v| {
                    Protocol::parse(v).ok_or_else(|| {
                        invalid(format!(
                            "{field} entries must be one of ActiveSync, AutoDiscover, EWS, \
                             IMAP, SMTP, WindowsOutlook, WebMail"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(AccessControlRule {
            actions: parse_actions("Actions", input.actions)?,
            not_actions: parse_actions("NotActions", input.not_actions)?,
            name: input.name,
            effect: input.effect,
            description: input.description,
            ip_ranges: input.ip_ranges,
            not_ip_ranges: input.not_ip_ranges,
            user_ids: input.user_ids,
            not_user_ids: input.not_user_ids,
            impersonation_role_ids: input.impersonation_role_ids,
            not_impersonation_role_ids: input.not_impersonation_role_ids,
            date_created,
            date_modified,
        })
    }

    /// The rule a new organization gets: ALLOW everything.
    pub fn default_rule(now_ms: u64) -> AccessControlRule {
        AccessControlRule {
            name: DEFAULT_RULE_NAME.into(),
            effect: Effect::Allow,
            description: DEFAULT_RULE_DESCRIPTION.into(),
            ip_ranges: Vec::new(),
            not_ip_ranges: Vec::new(),
            actions: Vec::new(),
            not_actions: Vec::new(),
            user_ids: Vec::new(),
            not_user_ids: Vec::new(),
            impersonation_role_ids: Vec::new(),
            not_impersonation_role_ids: Vec::new(),
            date_created: now_ms,
            date_modified: now_ms,
        }
    }
}

/// A validated rule with its conditions precompiled (CIDR sets, protocol bitsets), so
/// evaluation does no parsing and no allocation per condition.
#[derive(Debug, Clone)]
pub struct Rule {
    spec: AccessControlRule,
    pub(super) ip: IpSet,
    pub(super) not_ip: IpSet,
    pub(super) actions: ProtocolSet,
    pub(super) not_actions: ProtocolSet,
}

impl Rule {
    /// Validates every field of a rule and compiles it. Used both for a Put and for rules
    /// read back from the store, so a hand-edited store cannot smuggle in a bad rule.
    pub fn new(spec: AccessControlRule) -> Result<Rule, AccessError> {
        validate::id_token("Name", &spec.name, 64)?;
        validate::char_len("Description", &spec.description, 0, 255)?;
        validate::latin1_printable("Description", &spec.description)?;
        let ip = parse_ranges("IpRanges", &spec.ip_ranges)?;
        let not_ip = parse_ranges("NotIpRanges", &spec.not_ip_ranges)?;
        validate::list_len("Actions", spec.actions.len(), MAX_LIST)?;
        validate::list_len("NotActions", spec.not_actions.len(), MAX_LIST)?;
        check_user_ids("UserIds", &spec.user_ids)?;
        check_user_ids("NotUserIds", &spec.not_user_ids)?;
        check_role_ids("ImpersonationRoleIds", &spec.impersonation_role_ids)?;
        check_role_ids("NotImpersonationRoleIds", &spec.not_impersonation_role_ids)?;
        Ok(Rule {
            actions: spec.actions.iter().copied().collect(),
            not_actions: spec.not_actions.iter().copied().collect(),
            ip,
            not_ip,
            spec,
        })
    }

    /// The rule as stored and listed.
    pub fn spec(&self) -> &AccessControlRule {
        &self.spec
    }

    /// The rule's key.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// ALLOW or DENY.
    pub fn effect(&self) -> Effect {
        self.spec.effect
    }

    /// A replace keeps the original creation date.
    pub(super) fn set_date_created(&mut self, date_created: u64) {
        self.spec.date_created = date_created;
    }
}

fn parse_ranges(field: &str, values: &[String]) -> Result<IpSet, AccessError> {
    validate::list_len(field, values.len(), MAX_IP_RANGES)?;
    let ranges = values
        .iter()
        .map(|v| {
            IpRange::parse(v).ok_or_else(|| {
                invalid(format!(
                    "{field} entries must be CIDR ranges such as 192.0.2.0/24 or 2001:db8::/32"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IpSet::new(ranges))
}

fn check_user_ids(field: &str, values: &[String]) -> Result<(), AccessError> {
    validate::list_len(field, values.len(), MAX_LIST)?;
    values
        .iter()
        .try_for_each(|v| validate::char_len(field, v, 12, 256))
}

fn check_role_ids(field: &str, values: &[String]) -> Result<(), AccessError> {
    validate::list_len(field, values.len(), MAX_LIST)?;
    values
        .iter()
        .try_for_each(|v| validate::id_token(field, v, 64))
}

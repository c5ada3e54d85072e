//! The persisted form of an organization's access state: one JSON document, validated
//! in full when read back so a damaged or hand-edited store is refused at start rather
//! than half-applied.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::engine::OrgState;
use super::error::{AccessError, invalid};
use super::roles::{ImpersonationRole, Role, RuleTargets};
use super::rules::{AccessControlRule, Rule};

const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct OrgDocument {
    format_version: u32,
    rules: Vec<AccessControlRule>,
    roles: Vec<StoredRole>,
    client_tokens: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct StoredRole {
    role: ImpersonationRole,
    resolved_targets: Vec<RuleTargets>,
}

/// Serialises an organization's state.
pub(super) fn encode(state: &OrgState) -> Result<String, AccessError> {
    let doc = OrgDocument {
        format_version: FORMAT_VERSION,
        rules: state.rules.iter().map(|r| r.spec().clone()).collect(),
        roles: state
            .roles
            .iter()
            .map(|r| StoredRole {
                role: r.definition().clone(),
                resolved_targets: r.targets().to_vec(),
            })
            .collect(),
        client_tokens: state.client_tokens.clone(),
    };
    serde_json::to_string(&doc).map_err(|e| AccessError::Backend(format!("encode: {e}")))
}

/// Parses and validates a stored document.
pub(super) fn decode(json: &str) -> Result<OrgState, AccessError> {
    let doc: OrgDocument =
        serde_json::from_str(json).map_err(|e| invalid(format!("unreadable document: {e}")))?;
    if doc.format_version != FORMAT_VERSION {
        return Err(invalid(format!(
            "unsupported document format {}",
            doc.format_version
        )));
    }
    let mut names = HashSet::new();
    let rules = doc
        .rules
        .into_iter()
        .map(|spec| {
            if !names.insert(spec.name.clone()) {
                return Err(invalid("duplicate rule name"));
            }
            Rule::new(spec)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids = HashSet::new();
    let roles = doc
        .roles
        .into_iter()
        .map(|stored| {
            if !ids.insert(stored.role.impersonation_role_id.clone()) {
                return Err(invalid("duplicate impersonation role id"));
            }
            Role::from_parts(stored.role, stored.resolved_targets)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A token whose role is gone is useless; drop it rather than refuse the start.
    let client_tokens = doc
        .client_tokens
        .into_iter()
        .filter(|(_, role_id)| ids.contains(role_id))
        .collect();
    Ok(OrgState {
        rules,
        roles,
        client_tokens,
    })
}

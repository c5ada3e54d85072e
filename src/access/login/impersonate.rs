//! The impersonation decision for one EWS request carrying a role's bearer token
//! and an `ExchangeImpersonation` target (WorkMail's pipeline: token, target,
//! access control rules for the role, the role's own rules), with its audit events.
//!
//! Runs on every request: the token check is one HMAC, the rest are in-memory
//! lookups, so a role changed or deleted, a rule added or a user disabled takes
//! effect on the next request.

use std::net::IpAddr;

use super::{Authenticator, audit_protocol};
use crate::access::{Effect, Principal, Protocol, Request, RoleType, TokenError};
use crate::directory::EntityKind;
use crate::events::audit::{AccessControl, AccessScope};
use crate::events::{AuditEvent, new_id};

/// A request the role may make, acting as `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    pub org_id: String,
    pub role_id: String,
    pub role_type: RoleType,
    /// The impersonated user (owner of the target mailbox).
    pub user_id: String,
}

/// Why an impersonated request is refused; each maps to the answer EWS gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpersonationRefusal {
    /// Forged, expired, or its role changed or vanished: HTTP 401.
    #[error("bearer token refused: {0}")]
    Token(TokenError),
    /// The access control rules deny the role: looks like a failed login (401).
    #[error("denied by an access control rule")]
    Rules,
    /// No enabled user of the token's organization has that address.
    #[error("no mailbox for {0}")]
    NoMailbox(String),
    /// The role's rules do not allow impersonating that user.
    #[error("the impersonation role may not impersonate this user")]
    Denied,
}

impl Authenticator {
    /// Decides whether the role behind `token` may act as `target` (an email
    /// address) from `source_ip`; emits the access-control audit events (scope
    /// `AccessControl` for the rules, `ImpersonationAccessControl` for the role).
    pub fn impersonate(
        &self,
        token: &str,
        target: &str,
        source_ip: IpAddr,
        now_ms: u64,
    ) -> Result<Impersonation, ImpersonationRefusal> {
        let verified = self
            .access
            .verify_token(token, now_ms)
            .map_err(ImpersonationRefusal::Token)?;
        let org = verified.org.clone();
        let user = self
            .directory
            .resolve_identifier(&org, target, &[EntityKind::User])
            .ok()
            .filter(|u| {
                matches!(
                    self.directory.user_epoch(&u.id),
                    Some((crate::directory::EntityState::Enabled, _))
                )
            })
            .ok_or_else(|| ImpersonationRefusal::NoMailbox(target.to_string()))?;
        let request_id = new_id();
        let decision = self.access.evaluate(
            &org,
            &Request {
                source_ip,
                action: Protocol::Ews,
                principal: Principal::Role(&verified.role_id),
            },
        );
        let allowed = decision.effect == Effect::Allow;
        self.audit_role(
            &request_id,
            &org,
            &user.id,
            &verified.role_id,
            source_ip,
            AccessScope::AccessControl,
            decision.deciding_rule,
            allowed,
        );
        if !allowed {
            return Err(ImpersonationRefusal::Rules);
        }
        let effect = self
            .access
            .authorize_impersonation(&verified, &user.id, self.directory.as_ref())
            .map_err(|_| ImpersonationRefusal::Token(TokenError::RoleChanged))?;
        let permitted = effect.effect == Effect::Allow;
        let deciding = effect.matched_rules.first().map(|r| r.name.clone());
        self.audit_role(
            &request_id,
            &org,
            &user.id,
            &verified.role_id,
            source_ip,
            AccessScope::ImpersonationAccessControl,
            deciding,
            permitted,
        );
        if !permitted {
            return Err(ImpersonationRefusal::Denied);
        }
        Ok(Impersonation {
            org_id: org,
            role_id: verified.role_id,
            role_type: effect.role_type,
            user_id: user.id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn audit_role(
        &self,
        request_id: &str,
        org: &str,
        user_id: &str,
        role_id: &str,
        ip: IpAddr,
        scope: AccessScope,
        rule_id: Option<String>,
        granted: bool,
    ) {
        self.events.audit(AuditEvent::AccessControl(AccessControl {
            request_id: request_id.to_string(),
            organization_arn: format!("{}{org}", self.arn_prefix),
            user_id: user_id.to_string(),
            impersonator_id: Some(role_id.to_string()),
            protocol: audit_protocol(Protocol::Ews),
            source_ip: ip.to_canonical(),
            scope,
            rule_id,
            access_granted: granted,
        }));
    }
}

//! AssumeImpersonationRole and the EWS side of bearer tokens: verification against the
//! current role state and the per-request impersonation decision.

use serde::Serialize;

use super::engine::AccessEngine;
use super::error::AccessError;
use super::role_api::role_effect;
use super::roles::{RoleEffect, RoleType, UserResolver};
use super::token::{self, TOKEN_LIFETIME_SECS, TokenError};

/// AssumeImpersonationRole response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumedRole {
    /// Bearer token for `Authorization: Bearer`.
    pub token: String,
    /// Validity in seconds (900).
    pub expires_in: u64,
}

/// A token that verified: signature, expiry, and its role still exists unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Organization the token was issued in.
    pub org: String,
    /// Impersonation role id (the audit `impersonator_id`).
    pub role_id: String,
    /// The role's type at verification time.
    pub role_type: RoleType,
    /// The role version the token was issued for.
    pub role_version: u64,
    /// Signing key id.
    pub key_id: String,
    /// Issue time, epoch ms.
    pub issued_at_ms: u64,
    /// Expiry, epoch ms.
    pub expires_at_ms: u64,
}

impl AccessEngine {
    /// AssumeImpersonationRole: mints a token for an existing role, valid 900 s from
    /// `now_ms`. The token is not stored.
    pub fn assume_impersonation_role(
        &self,
        org: &str,
        role_id: &str,
        now_ms: u64,
    ) -> Result<AssumedRole, AccessError> {
        let state = self.org(org)?;
        let role = state
            .role(role_id)
            .ok_or_else(|| AccessError::ResourceNotFound("impersonation role not found".into()))?;
        let token = token::mint(
            &self.token_keys(),
            org,
            role_id,
            role.definition().version,
            now_ms,
        )?;
        Ok(AssumedRole {
            token,
            expires_in: TOKEN_LIFETIME_SECS,
        })
    }

    /// Verifies a bearer token: shape, signature (either key), expiry, and that its role
    /// still exists at the same version. A token is reusable until it expires.
    pub fn verify_token(&self, token: &str, now_ms: u64) -> Result<VerifiedToken, TokenError> {
        self.verify(None, token, now_ms)
    }

    /// As [`AccessEngine::verify_token`], also requiring the token to belong to `org`
    /// (the organization the request's host or target mailbox belongs to).
    pub fn verify_token_for(
        &self,
        org: &str,
        token: &str,
        now_ms: u64,
    ) -> Result<VerifiedToken, TokenError> {
        self.verify(Some(org), token, now_ms)
    }

    fn verify(
        &self,
        expected_org: Option<&str>,
        token: &str,
        now_ms: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let claims = token::decode(&self.token_keys(), token, now_ms)?;
        if expected_org.is_some_and(|o| o != claims.org) {
            return Err(TokenError::WrongOrganization);
        }
        let state = self.org(&claims.org).map_err(|_| TokenError::UnknownRole)?;
        let role = state.role(&claims.role_id).ok_or(TokenError::UnknownRole)?;
        let def = role.definition();
        if def.version != claims.role_version {
            return Err(TokenError::RoleChanged);
        }
        Ok(VerifiedToken {
            role_type: def.role_type,
            org: claims.org,
            role_id: claims.role_id,
            role_version: claims.role_version,
            key_id: claims.key_id,
            issued_at_ms: claims.issued_at_ms,
            expires_at_ms: claims.expires_at_ms,
        })
    }

    /// The impersonation decision for one EWS request: the verified token's role rules
    /// applied to the target mailbox's user. The caller checks `effect` (and, for each
    /// mailbox action, `role_type`). Runs against current state: a role deleted or
    /// updated since verification is ResourceNotFound; unknown or disabled targets are
    /// EntityNotFound / EntityState.
    pub fn authorize_impersonation(
        &self,
        verified: &VerifiedToken,
        target_user: &str,
        resolver: &dyn UserResolver,
    ) -> Result<RoleEffect, AccessError> {
        if target_user.is_empty() || target_user.len() > 256 {
            return Err(AccessError::InvalidParameter(
                "target user must be 1-256 characters".into(),
            ));
        }
        let state = self.org(&verified.org)?;
        let role = state
            .role(&verified.role_id)
            .filter(|r| r.definition().version == verified.role_version)
            .ok_or_else(|| {
                AccessError::ResourceNotFound(
                    "impersonation role changed or deleted; assume it again".into(),
                )
            })?;
        role_effect(&verified.org, role, target_user, resolver)
    }
}

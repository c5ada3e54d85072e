//! Personal access tokens: ListPersonalAccessTokens, GetPersonalAccessTokenMetadata,
//! DeletePersonalAccessToken, and mailgate's own CreatePersonalAccessToken (WorkMail
//! creates tokens in its web app, which mailgate does not have; the action lives
//! outside WorkMail's namespace, `X-Amz-Target: MailgateService.CreatePersonalAccessToken`,
//! and `mailgate admin create-personal-access-token` calls it). Creating and deleting
//! a token writes WorkMail's personal-access-token audit record.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Empty;
use super::common::{date, page};
use crate::admin::context;
use crate::admin::error::ApiError;
use crate::admin::state::{AdminState, secs};
use crate::clock::now_ms_u64 as now_ms;
use crate::directory::{NewToken, PersonalAccessToken};
use crate::events::AuditEvent;
use crate::events::audit::{self, PatAction};

/// The audit `protocol` of token changes made through the admin API (WorkMail's
/// only value, `webapp`, names a client mailgate does not have).
const AUDIT_PROTOCOL: &str = "admin_api";

/// One token as ListPersonalAccessTokens and GetPersonalAccessTokenMetadata show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenOut {
    personal_access_token_id: String,
    user_id: String,
    name: String,
    date_created: f64,
    date_last_used: Option<f64>,
    expires_time: f64,
    scopes: Vec<String>,
}

impl From<PersonalAccessToken> for TokenOut {
    fn from(p: PersonalAccessToken) -> TokenOut {
        TokenOut {
            personal_access_token_id: p.id,
            user_id: p.user_id,
            name: p.name,
            date_created: secs(p.created),
            date_last_used: date(p.last_used),
            expires_time: secs(p.expires),
            scopes: p.scopes,
        }
    }
}

/// ListPersonalAccessTokens input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListIn {
    organization_id: String,
    user_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ListPersonalAccessTokens output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOut {
    personal_access_token_summaries: Vec<TokenOut>,
    next_token: Option<String>,
}

/// ListPersonalAccessTokens: the organization's tokens or one user's, oldest first, paged.
pub async fn list_personal_access_tokens(
    state: Arc<AdminState>,
    input: ListIn,
) -> Result<ListOut, ApiError> {
    let all = state
        .directory
        .list_personal_access_tokens(&input.organization_id, input.user_id.as_deref())?;
    let (items, next_token) = page(all, input.max_results, input.next_token.as_deref())?;
    Ok(ListOut {
        personal_access_token_summaries: items.into_iter().map(TokenOut::from).collect(),
        next_token,
    })
}

/// An organization plus a token id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrgToken {
    organization_id: String,
    personal_access_token_id: String,
}

/// GetPersonalAccessTokenMetadata: ResourceNotFound for an unknown token.
pub async fn get_personal_access_token_metadata(
    state: Arc<AdminState>,
    input: OrgToken,
) -> Result<TokenOut, ApiError> {
    Ok(state
        .directory
        .get_personal_access_token(&input.organization_id, &input.personal_access_token_id)?
        .into())
}

/// DeletePersonalAccessToken: the token stops working at once; an unknown one is a
/// successful no-op (the model has no not-found error here).
pub async fn delete_personal_access_token(
    state: Arc<AdminState>,
    input: OrgToken,
) -> Result<Empty, ApiError> {
    let ctx = context::current();
    state
        .blocking(move |s| {
            let deleted = s.directory.delete_personal_access_token(
                &input.organization_id,
                &input.personal_access_token_id,
            )?;
            if let Some(token) = deleted {
                audit_change(s, &ctx, PatAction::Delete, &token);
            }
            Ok(Empty {})
        })
        .await
}

/// CreatePersonalAccessToken input (a mailgate extension).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateIn {
    organization_id: String,
    /// The owner: user id, name or email address.
    user: String,
    name: String,
    /// 1–3,653; default 365.
    expires_in_days: Option<i64>,
    /// Any of `IMAP`, `SMTP`, `EWS`; default all.
    scopes: Option<Vec<String>>,
}

/// CreatePersonalAccessToken output: the only answer that carries the token itself.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOut {
    personal_access_token_id: String,
    token: String,
    user_id: String,
    name: String,
    date_created: f64,
    expires_time: f64,
    scopes: Vec<String>,
}

/// CreatePersonalAccessToken (mailgate extension): a token for an enabled mailbox user.
pub async fn create_personal_access_token(
    state: Arc<AdminState>,
    input: CreateIn,
) -> Result<CreateOut, ApiError> {
    let ctx = context::current();
    state
        .blocking(move |s| {
            let (token, text) = s.directory.create_personal_access_token(
                &input.organization_id,
                NewToken {
                    user: &input.user,
                    name: &input.name,
                    lifetime_days: input.expires_in_days,
                    scopes: input.scopes.as_deref(),
                },
                now_ms(),
            )?;
            audit_change(s, &ctx, PatAction::Create, &token);
            Ok(CreateOut {
                personal_access_token_id: token.id,
                token: text,
                user_id: token.user_id,
                name: token.name,
                date_created: secs(token.created),
                expires_time: secs(token.expires),
                scopes: token.scopes,
            })
        })
        .await
}

/// WorkMail's personal-access-token audit record for a change that was made.
fn audit_change(
    s: &AdminState,
    ctx: &context::RequestContext,
    action: PatAction,
    token: &PersonalAccessToken,
) {
    let user = s
        .directory
        .describe_user(&token.org_id, &token.user_id)
        .map(|u| u.base.name)
        .unwrap_or_default();
    s.events.audit(AuditEvent::PersonalAccessToken(
        audit::PersonalAccessToken {
            request_id: ctx.request_id.clone(),
            organization_arn: s.org_arn(&token.org_id),
            user_id: token.user_id.clone(),
            user,
            protocol: AUDIT_PROTOCOL,
            source_ip: ctx.source_ip,
            user_agent: ctx.user_agent.clone(),
            action,
            name: token.name.clone(),
            expires_time: i64::try_from(token.expires).ok(),
            scopes: token.scopes.clone(),
        },
    ));
}

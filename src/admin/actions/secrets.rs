//! mailgate's own secret rotations (outside WorkMail's namespace, like
//! CreatePersonalAccessToken): `MailgateService.RotateTokenKeys` and
//! `MailgateService.RotateAdminKey`, which `mailgate admin rotate-token-keys`
//! and `mailgate admin rotate-admin-key` call. On a store several daemons share,
//! a rotation made through one daemon reaches every other (their refresher
//! follows the store's `secrets` version); on the embedded store the daemon's
//! files are rewritten.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::context;
use super::super::error::ApiError;
use super::super::keys::RotateError;
use super::super::state::AdminState;
use crate::store::StoreError;

/// Neither rotation takes input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// RotateTokenKeys output: the id of the key that signs tokens from now on.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenKeysOut {
    key_id: String,
}

/// RotateAdminKey output: the new key, shown this once (as IAM's CreateAccessKey
/// does), for admin hosts that run no daemon; each daemon's host also gets it in
/// its `admin.credentials` file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdminKeyOut {
    access_key_id: String,
    secret_access_key: String,
}

/// RotateTokenKeys (mailgate extension): tokens are signed with a fresh key from
/// now on; those signed with the current key stay valid, those signed with the
/// key before it stop working.
pub async fn rotate_token_keys(
    state: Arc<AdminState>,
    _input: NoInput,
) -> Result<TokenKeysOut, ApiError> {
    let ctx = context::current();
    state
        .blocking(move |s| {
            let key_id = s.secrets.rotate_token_keys().map_err(rotate_error)?;
            tracing::info!(
                key_id,
                request_id = ctx.request_id,
                source_ip = %ctx.source_ip,
                "admin API: token keys rotated"
            );
            Ok(TokenKeysOut { key_id })
        })
        .await
}

/// RotateAdminKey (mailgate extension): the generated admin access key is
/// replaced; requests signed with the old one are refused from now on (keys
/// configured in `admin.access_keys` are not touched).
pub async fn rotate_admin_key(
    state: Arc<AdminState>,
    _input: NoInput,
) -> Result<AdminKeyOut, ApiError> {
    let ctx = context::current();
    state
        .blocking(move |s| {
            let key = s.secrets.rotate_admin_key().map_err(rotate_error)?;
            tracing::info!(
                access_key_id = key.access_key_id,
                request_id = ctx.request_id,
                source_ip = %ctx.source_ip,
                "admin API: admin access key rotated"
            );
            Ok(AdminKeyOut {
                access_key_id: key.access_key_id,
                secret_access_key: key.secret_access_key,
            })
        })
        .await
}

/// A store outage is AWS's retryable 503 (as for every action); anything else
/// a server failure.
fn rotate_error(e: RotateError) -> ApiError {
    match e {
        RotateError::Unavailable(m) => StoreError::Unavailable(m).into(),
        RotateError::Failed(m) => super::super::state::internal(m),
    }
}

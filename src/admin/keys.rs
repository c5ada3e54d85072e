//! The admin API's view of the daemon's secrets: the SigV4 keys it accepts now
//! and the rotations it may ask for. The daemon (`server::secrets`) owns where
//! the secrets live (files, or a backend every daemon shares) and keeps this
//! view current when another daemon rotates them; the admin API only reads and
//! asks, so it never imports `server`.

use std::sync::Arc;

use super::credentials::AccessKey;

/// The secrets the admin API authenticates with and rotates.
pub trait AdminSecrets: Send + Sync {
    /// The access keys accepted now: the configured ones and the generated one.
    fn admin_keys(&self) -> Arc<Vec<AccessKey>>;
    /// Rotates the token-signing keys (a fresh signing key; the current one is
    /// kept for verifying, the one before it dropped); returns the new key id.
    /// Blocking.
    fn rotate_token_keys(&self) -> Result<String, RotateError>;
    /// Replaces the generated admin access key with a fresh one (the old one
    /// stops working at once); returns the new key. Blocking.
    fn rotate_admin_key(&self) -> Result<AccessKey, RotateError>;
}

/// Why a rotation did not happen; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The shared store cannot be reached now: try again later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The secret could not be read or written (names the file or the store).
    #[error("{0}")]
    Failed(String),
}

/// Fixed keys that cannot be rotated: what tests of the request pipeline use.
#[cfg(test)]
pub struct FixedKeys(pub Arc<Vec<AccessKey>>);

#[cfg(test)]
impl AdminSecrets for FixedKeys {
    fn admin_keys(&self) -> Arc<Vec<AccessKey>> {
        self.0.clone()
    }
    fn rotate_token_keys(&self) -> Result<String, RotateError> {
        Err(RotateError::Failed("fixed keys".into()))
    }
    fn rotate_admin_key(&self) -> Result<AccessKey, RotateError> {
        Err(RotateError::Failed("fixed keys".into()))
    }
}

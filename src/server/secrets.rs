//! The daemon's secrets: the token-signing keys and the generated admin access
//! key. Where they live: in files under the data directory on the embedded
//! store; in the backend when daemons share it (the first daemon's fresh ones
//! win, so a token minted on one verifies on every other), each daemon's
//! `admin.credentials` file then mirroring the shared admin key for the admin
//! CLI on its host.
//!
//! Loaded at start, re-read on SIGHUP, rotated by the admin API
//! ([`AdminSecrets`]), and followed: a rotation on another daemon moves the
//! store's `secrets` version, which the refresher polls ([`Secrets::follow`]),
//! so every daemon uses the new keys within a poll.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::access::{AccessEngine, TokenKeys, keyfile};
use crate::admin::credentials::{self, AccessKey};
use crate::admin::keys::{AdminSecrets, RotateError};
use crate::config::Config;
use crate::shared::StartError;
use crate::store::{Backend, StoreError, Versioned};

/// The name of the token keys in a shared backend.
pub const TOKEN_KEYS_SECRET: &str = "token_keys";
/// The name of the generated admin access key in a shared backend.
pub const ADMIN_KEY_SECRET: &str = "admin_credentials";

/// How often a rotation retries when another daemon rotated the same secret
/// between its read and its write.
const ROTATE_ATTEMPTS: usize = 3;

/// The token-signing keys: from the backend when daemons share it, else from
/// the `access.token_keys` file (created on first start). Blocking.
pub fn token_keys(store: &dyn Backend, config: &Config) -> Result<TokenKeys, StartError> {
    let path = config.data_path(&config.access.token_keys);
    let fresh = || {
        proposal(
            &path,
            |t| keyfile::from_text(t).is_ok(),
            keyfile::generate_text,
        )
    };
    let shared = store
        .shared_secret(TOKEN_KEYS_SECRET, &fresh)
        .map_err(|e| StartError(format!("token keys in the store: {e}")))?;
    match shared {
        Some(text) => keyfile::from_text(&text)
            .map_err(|e| StartError(format!("token keys in the store: {e}"))),
        None => keyfile::load(&path).map_err(|e| StartError(format!("access.token_keys: {e}"))),
    }
}

/// The generated admin access key and whether its file was just written: from
/// the backend when daemons share it (then written to `admin.credentials` when
/// that file is missing or holds another key, for the admin CLI on this host; a
/// file that cannot be written is logged, the key is in force all the same),
/// else from that file (created on first start). Blocking.
pub fn admin_key(store: &dyn Backend, config: &Config) -> Result<(AccessKey, bool), StartError> {
    let path = config.data_path(&config.admin.credentials);
    let file_error =
        |e: credentials::CredentialsError| StartError(format!("admin.credentials: {e}"));
    let fresh = || {
        proposal(
            &path,
            |t| credentials::from_text(t).is_ok(),
            credentials::generate_text,
        )
    };
    let shared = store
        .shared_secret(ADMIN_KEY_SECRET, &fresh)
        .map_err(|e| StartError(format!("admin key in the store: {e}")))?;
    let Some(text) = shared else {
        return credentials::load_or_create(&path).map_err(file_error);
    };
    let key = credentials::from_text(&text)
        .map_err(|e| StartError(format!("admin key in the store: {e}")))?;
    let in_file = std::fs::read_to_string(&path).ok();
    if in_file.as_deref() == Some(text.as_str()) {
        return Ok((key, false));
    }
    // The key is in force either way; the file only serves the CLI on this host.
    match crate::secret_file::replace(&path, &text) {
        Ok(()) => Ok((key, true)),
        Err(e) => {
            tracing::warn!(error = %e, "admin.credentials: cannot write the shared admin key");
            Ok((key, false))
        }
    }
}

/// What this daemon offers a shared backend for a secret no daemon stored yet:
/// the usable file it already has (a store moved from one daemon to many keeps
/// its keys), else a fresh one.
fn proposal(path: &Path, usable: impl Fn(&str) -> bool, fresh: fn() -> String) -> String {
    std::fs::read_to_string(path)
        .ok()
        .filter(|text| usable(text))
        .unwrap_or_else(fresh)
}

/// The secrets in force in this daemon, and how to rotate and follow them.
pub struct Secrets {
    store: Arc<dyn Backend>,
    access: Arc<AccessEngine>,
    token_keys_path: PathBuf,
    credentials_path: PathBuf,
    /// `admin.access_keys`: accepted always, never rotated here.
    configured: Vec<AccessKey>,
    /// The configured keys and the generated one.
    admin_keys: ArcSwap<Vec<AccessKey>>,
    /// The store's `secrets` version these secrets were read at.
    seen: AtomicU64,
    /// One rotation at a time in this daemon.
    rotating: Mutex<()>,
}

impl Secrets {
    /// The secrets as loaded at start: `generated` is the admin key, `seen` the
    /// store's `secrets` version read before any secret was.
    pub fn new(
        store: Arc<dyn Backend>,
        config: &Config,
        access: Arc<AccessEngine>,
        generated: AccessKey,
        seen: u64,
    ) -> Secrets {
        let configured = config.admin.access_keys.clone();
        let admin_keys = ArcSwap::from_pointee(with_generated(&configured, generated));
        Secrets {
            store,
            access,
            token_keys_path: config.data_path(&config.access.token_keys),
            credentials_path: config.data_path(&config.admin.credentials),
            configured,
            admin_keys,
            seen: AtomicU64::new(seen),
            rotating: Mutex::new(()),
        }
    }

    /// Re-reads both secrets (SIGHUP, or another daemon rotated one) and puts
    /// them in force; on an error the running ones stay. Blocking.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let version = self
            .store
            .state_version(Versioned::Secrets)
            .map_err(|e| format!("secrets version: {e}"))?;
        let keys = token_keys(&*self.store, config).map_err(|e| e.to_string())?;
        let (generated, _) = admin_key(&*self.store, config).map_err(|e| e.to_string())?;
        self.access
            .set_token_keys(keys)
            .map_err(|e| format!("token keys: {e}"))?;
        self.admin_keys
            .store(Arc::new(with_generated(&self.configured, generated)));
        self.seen.store(version, Ordering::Relaxed);
        Ok(())
    }

    /// Reloads when a secret was rotated in the store since the last read (by
    /// another daemon, or this one: the re-read is then the same): one version
    /// read when nothing moved. Returns whether it reloaded. Blocking.
    pub fn follow(&self, config: &Config) -> Result<bool, String> {
        let version = self
            .store
            .state_version(Versioned::Secrets)
            .map_err(|e| format!("secrets version: {e}"))?;
        if version == self.seen.load(Ordering::Relaxed) {
            return Ok(false);
        }
        self.reload(config)?;
        tracing::info!(version, "secrets rotated in the store are in force here");
        Ok(true)
    }

    /// Rotates one secret: `current` reads its stored text, `next` makes the
    /// rotated value and its text from it, `file` is where the embedded store
    /// keeps it. On a shared store the write succeeds only over the text read
    /// (another daemon's rotation in between makes it read again). Returns the
    /// new value and its text.
    fn rotate<T>(
        &self,
        name: &str,
        file: &Path,
        current: impl Fn(&str) -> Result<T, String>,
        next: impl Fn(&T) -> (T, String),
    ) -> Result<(T, String), RotateError> {
        let _one = self.rotating.lock().unwrap_or_else(|p| p.into_inner());
        if !self.store.is_shared() {
            let text = std::fs::read_to_string(file)
                .map_err(|e| RotateError::Failed(format!("{}: {e}", file.display())))?;
            let (value, new_text) = next(&current(&text).map_err(RotateError::Failed)?);
            crate::secret_file::replace(file, &new_text)
                .map_err(|e| RotateError::Failed(e.to_string()))?;
            return Ok((value, new_text));
        }
        for _ in 0..ROTATE_ATTEMPTS {
            let text = self
                .store
                .shared_secret(name, &String::new)
                .map_err(rotate_store_error)?
                .unwrap_or_default();
            let (value, new_text) = next(&current(&text).map_err(RotateError::Failed)?);
            if self
                .store
                .replace_shared_secret(name, &text, &new_text)
                .map_err(rotate_store_error)?
            {
                return Ok((value, new_text));
            }
        }
        Err(RotateError::Failed(format!(
            "{name}: other daemons kept rotating it at the same time; try again"
        )))
    }
}

impl AdminSecrets for Secrets {
    fn admin_keys(&self) -> Arc<Vec<AccessKey>> {
        self.admin_keys.load_full()
    }

    fn rotate_token_keys(&self) -> Result<String, RotateError> {
        let (keys, _) = self.rotate(
            TOKEN_KEYS_SECRET,
            &self.token_keys_path,
            |text| keyfile::from_text(text).map_err(|e| format!("token keys: {e}")),
            keyfile::rotate,
        )?;
        let kid = keys.current.0.clone();
        self.access
            .set_token_keys(keys)
            .map_err(|e| RotateError::Failed(format!("token keys: {e}")))?;
        Ok(kid)
    }

    fn rotate_admin_key(&self) -> Result<AccessKey, RotateError> {
        let (key, text) = self.rotate(
            ADMIN_KEY_SECRET,
            &self.credentials_path,
            |text| credentials::from_text(text).map_err(|e| format!("admin key: {e}")),
            |_| {
                let text = credentials::generate_text();
                let key = credentials::from_text(&text).expect("a generated key parses");
                (key, text)
            },
        )?;
        if self.store.is_shared() {
            // The shared row changed; this host's file mirrors it.
            crate::secret_file::replace(&self.credentials_path, &text)
                .map_err(|e| RotateError::Failed(e.to_string()))?;
        }
        self.admin_keys
            .store(Arc::new(with_generated(&self.configured, key.clone())));
        Ok(key)
    }
}

/// The configured keys followed by the generated one.
fn with_generated(configured: &[AccessKey], generated: AccessKey) -> Vec<AccessKey> {
    let mut keys = configured.to_vec();
    keys.push(generated);
    keys
}

fn rotate_store_error(e: StoreError) -> RotateError {
    match e {
        StoreError::Unavailable(m) => RotateError::Unavailable(m),
        other => RotateError::Failed(format!("the store: {other}")),
    }
}

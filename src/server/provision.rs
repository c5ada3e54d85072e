//! First-start provisioning and start-up checks: the data directory layout, the
//! dev certificate, the first organization, the token keys and the admin access
//! key; on later starts the same steps load what exists and create nothing.
//!
//! On a backend several daemons share (PostgreSQL) the first organization is
//! created in one version-fenced write that checks the directory is empty, so
//! daemons starting together make one; where the secrets live is
//! [`super::secrets`]' business.
//!
//! Every failure is a [`StartError`] naming the config key at fault.

use std::path::Path;
use std::sync::Arc;

use super::secrets::{self, Secrets};
use crate::access::{AccessEngine, AccessLimits};
use crate::admin::credentials;
use crate::config::{CertificatePair, Config};
use crate::directory::Directory;
use crate::shared::StartError;
use crate::store::{Backend, Versioned};
use crate::tls::{self, DevCert};

/// Directory, access engine and admin keys, as loaded at start.
pub struct State {
    /// Organizations, users, groups, aliases.
    pub directory: Arc<Directory>,
    /// Access rules and impersonation roles.
    pub access: Arc<AccessEngine>,
    /// The token keys and the admin access keys (configured and generated).
    pub secrets: Arc<Secrets>,
}

/// Loads the directory and the access rules from the store; on first start creates
/// the organization for `server.default_domain`, the token keys and the admin key,
/// and says so.
pub async fn open_state(store: &Arc<dyn Backend>, config: &Config) -> Result<State, StartError> {
    let store = store.clone();
    let config = config.clone();
    let task = tokio::task::spawn_blocking(move || -> Result<State, StartError> {
        let directory = Directory::open(store.clone())
            .map_err(|e| StartError(format!("directory in the store: {e}")))?;
        let domain = &config.server.default_domain;
        let alias = organization_alias(domain);
        let first = directory
            .create_first_organization(&alias, domain)
            .map_err(|e| {
                StartError(format!(
                    "server.default_domain ({domain}): cannot create the first organization: {e}"
                ))
            })?;
        if let Some(org) = first {
            println!(
                "mailgate: created organization {org} (alias {alias}) with mail domain {domain}"
            );
        }
        // The version first: a rotation after it is seen by the first follow.
        let seen = store
            .state_version(Versioned::Secrets)
            .map_err(|e| StartError(format!("secrets in the store: {e}")))?;
        let keys = secrets::token_keys(store.as_ref(), &config)?;
        let limits = AccessLimits {
            max_rules_per_org: config.access.max_rules,
            max_roles_per_org: config.access.max_impersonation_roles,
        };
        let access = AccessEngine::open(store.clone(), limits, keys)
            .map_err(|e| StartError(format!("access rules in the store: {e}")))?;
        // Organizations without access state get WorkMail's default allow-all rule;
        // one whose rules were all deleted keeps none.
        for org in directory.list_organizations() {
            access
                .create_organization_defaults(&org.id, crate::clock::now_ms_u64())
                .map_err(|e| StartError(format!("access rules for {}: {e}", org.id)))?;
        }
        let (generated, created) = secrets::admin_key(store.as_ref(), &config)?;
        if created {
            println!(
                "mailgate: wrote the admin access key to {} (profile {})",
                config.data_path(&config.admin.credentials).display(),
                credentials::PROFILE
            );
        }
        let access = Arc::new(access);
        let secrets = Secrets::new(store.clone(), &config, access.clone(), generated, seen);
        Ok(State {
            directory: Arc::new(directory),
            access,
            secrets: Arc::new(secrets),
        })
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err(StartError(format!("start-up task failed: {e}"))),
    }
}

/// An organization alias from a domain: its labels joined by `-` (`example.test` → `example-test`).
pub fn organization_alias(domain: &str) -> String {
    let alias: String = domain
        .split('.')
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(62)
        .collect();
    let alias = alias.trim_matches('-').to_string();
    // WorkMail refuses aliases starting with "d-" (directory ids).
    if alias.is_empty() || alias.starts_with("d-") {
        format!("org-{alias}").trim_end_matches('-').to_string()
    } else {
        alias
    }
}

/// Creates the data directory layout and proves it is writable and not full.
pub fn prepare_data_dir(dir: &Path) -> Result<(), StartError> {
    let fail = |what: &str, e: std::io::Error| {
        StartError(format!("server.data_dir ({}): {what}: {e}", dir.display()))
    };
    for sub in ["", "run", "tls"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| fail(&format!("cannot create {sub}/"), e))?;
    }
    // A write that is synced proves the disk takes data (read-only and full disks fail here).
    let probe = dir.join("run").join(".write-probe");
    let res = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&probe)?;
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    res.map_err(|e| fail("not writable", e))
}

/// The configured certificates, or the dev certificate (generated on first use).
pub fn certificate_pairs(config: &Config) -> Result<Vec<CertificatePair>, StartError> {
    if !config.tls.certificates.is_empty() {
        return Ok(config.tls.certificates.clone());
    }
    let dir = config.server.data_dir.join("tls");
    let dev = DevCert::in_dir(&dir);
    if !dev.cert.exists() || !dev.key.exists() {
        let generated =
            tls::generate_dev_cert(&dir, &config.server.hostname).map_err(|e| StartError(e.0))?;
        println!(
            "mailgate: generated a dev CA at {} (trust it in test clients)",
            generated.ca.display()
        );
    } else if tls::renew_dev_cert_if_due(&dir, &config.server.hostname)
        .map_err(|e| StartError(e.0))?
    {
        tracing::info!(cert = %dev.cert.display(), "renewed the dev certificate");
    }
    Ok(vec![dev.pair()])
}

//! The access engine's state: one immutable snapshot per organization, swapped atomically
//! after every durable change, so evaluations never lock and see a change from the next
//! call on. Writers are serialised by one mutex and persist before they publish, so a
//! failed save leaves memory exactly as it was. On a backend several daemons share,
//! saves are fenced by the stored version (a writer that lost the race catches up,
//! validates again and retries) and [`AccessEngine::refresh`] brings in other daemons'
//! saves.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::backend::{AccessBackend, DocumentChanges, Fenced};
use super::document;
use super::error::AccessError;
use super::evaluate::{Decision, Request, evaluate};
use super::roles::Role;
use super::rules::{AccessControlRule, Rule};
use super::token::TokenKeys;
use super::validate;
use crate::directory::{MAX_FENCED_ATTEMPTS, fenced_retry_pause};

/// Per-organization count limits (config keys in the daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLimits {
    /// Access control rules per organization (WorkMail's model implies 10).
    pub max_rules_per_org: usize,
    /// Impersonation roles per organization.
    pub max_roles_per_org: usize,
}

impl Default for AccessLimits {
    fn default() -> Self {
        AccessLimits {
            max_rules_per_org: 10,
            max_roles_per_org: 20,
        }
    }
}

/// Everything the engine knows about one organization. Immutable once published.
#[derive(Debug, Clone, Default)]
pub(super) struct OrgState {
    /// Rules in order of first creation (a replace keeps the position).
    pub(super) rules: Vec<Rule>,
    /// Roles in order of creation.
    pub(super) roles: Vec<Role>,
    /// CreateImpersonationRole ClientToken -> role id, for idempotent retries.
    pub(super) client_tokens: BTreeMap<String, String>,
}

impl OrgState {
    pub(super) fn role(&self, role_id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id() == role_id)
    }
}

/// Result of a mutation closure: `Unchanged` skips the save and the generation bump.
pub(super) enum Change<T> {
    Changed(T),
    Unchanged(T),
}

type OrgMap = HashMap<String, Arc<OrgState>>;

/// Access control rules, impersonation roles and tokens of every organization.
pub struct AccessEngine {
    backend: Arc<dyn AccessBackend>,
    limits: AccessLimits,
    keys: ArcSwap<TokenKeys>,
    orgs: ArcSwap<OrgMap>,
    generation: AtomicU64,
    /// The backend version `orgs` reflects; its lock serialises writers and refreshes.
    loaded: Mutex<u64>,
}

impl std::fmt::Debug for AccessEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessEngine")
            .field("limits", &self.limits)
            .field("organizations", &self.orgs.load().len())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl AccessEngine {
    /// Loads every organization document from the backend. A document that does not
    /// parse or validate refuses the start (the daemon exits 78: corrupt store).
    pub fn open(
        backend: Arc<dyn AccessBackend>,
        limits: AccessLimits,
        keys: TokenKeys,
    ) -> Result<Self, AccessError> {
        keys.validate()?;
        let all = backend.documents_since(0)?;
        let orgs = decode_documents(all.documents, OrgMap::new())?;
        Ok(AccessEngine {
            backend,
            limits,
            keys: ArcSwap::from_pointee(keys),
            orgs: ArcSwap::from_pointee(orgs),
            generation: AtomicU64::new(0),
            loaded: Mutex::new(all.version),
        })
    }

    /// Brings the engine up to the backend's version: one cheap query when nothing
    /// moved; otherwise the documents saved since are decoded and published, and
    /// the generation moves (live sessions re-check). Returns whether anything was
    /// loaded. Blocking: call it from a blocking thread (the daemon's refresher
    /// polls it; a change notification may call it too). A document that does not
    /// decode publishes nothing and is an error; the engine keeps what it had.
    pub fn refresh(&self) -> Result<bool, AccessError> {
        let mut loaded = self.lock_writer();
        self.catch_up(&mut loaded)
    }

    /// [`AccessEngine::refresh`] with the writer lock held.
    fn catch_up(&self, loaded: &mut u64) -> Result<bool, AccessError> {
        if self.backend.version()? == *loaded {
            return Ok(false);
        }
        let DocumentChanges { version, documents } = self.backend.documents_since(*loaded)?;
        let current = self.orgs.load_full();
        let map = decode_documents(documents, OrgMap::clone(&current))?;
        self.orgs.store(Arc::new(map));
        *loaded = version;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// The limits in force.
    pub fn limits(&self) -> AccessLimits {
        self.limits
    }

    /// Bumped on every published change; live sessions re-check their access when it
    /// moves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the token keys (rotation on config reload). Tokens minted from now on use
    /// the new current key.
    pub fn set_token_keys(&self, keys: TokenKeys) -> Result<(), AccessError> {
        keys.validate()?;
        self.keys.store(Arc::new(keys));
        Ok(())
    }

    /// The keys in force (tokens are minted with the current one).
    pub(crate) fn token_keys(&self) -> Arc<TokenKeys> {
        self.keys.load_full()
    }

    /// Whether the engine knows the organization.
    pub fn has_organization(&self, org: &str) -> bool {
        self.orgs.load().contains_key(org)
    }

    /// Registers a new organization with the default allow-all rule. Returns false (and
    /// changes nothing) when the organization already exists, so an organization whose
    /// rules were all deleted stays locked.
    pub fn create_organization_defaults(
        &self,
        org: &str,
        now_ms: u64,
    ) -> Result<bool, AccessError> {
        validate::organization_id(org)?;
        let state = OrgState {
            rules: vec![Rule::new(AccessControlRule::default_rule(now_ms))?],
            ..OrgState::default()
        };
        let mut loaded = self.lock_writer();
        for attempt in 0..MAX_FENCED_ATTEMPTS {
            std::thread::sleep(fenced_retry_pause(attempt));
            self.catch_up(&mut loaded)?;
            let current = self.orgs.load_full();
            if current.contains_key(org) {
                return Ok(false);
            }
            if self.publish(&mut loaded, org, state.clone(), &current)? {
                return Ok(true);
            }
        }
        Err(gave_up())
    }

    /// The hot path: the access decision for a request, lock-free. An unknown
    /// organization is denied like an empty rule set.
    pub fn evaluate(&self, org: &str, request: &Request<'_>) -> Decision {
        match self.orgs.load().get(org) {
            Some(state) => evaluate(&state.rules, request),
            None => Decision::deny_all(),
        }
    }

    /// Current snapshot of an organization.
    pub(super) fn org(&self, org: &str) -> Result<Arc<OrgState>, AccessError> {
        self.orgs
            .load()
            .get(org)
            .cloned()
            .ok_or_else(|| AccessError::OrganizationNotFound("organization not found".into()))
    }

    /// Applies a change to a copy of an organization's state, persists it, then
    /// publishes it. Nothing is published when the closure or the save fails. The
    /// closure may run more than once (once per attempt, each time on the newest
    /// state), so it must not have effects outside the state it is given.
    pub(super) fn mutate<T>(
        &self,
        org: &str,
        mut change: impl FnMut(&mut OrgState) -> Result<Change<T>, AccessError>,
    ) -> Result<T, AccessError> {
        let mut loaded = self.lock_writer();
        for attempt in 0..MAX_FENCED_ATTEMPTS {
            std::thread::sleep(fenced_retry_pause(attempt));
            self.catch_up(&mut loaded)?;
            let current = self.orgs.load_full();
            let state = current.get(org).ok_or_else(|| {
                AccessError::OrganizationNotFound("organization not found".into())
            })?;
            let mut next = OrgState::clone(state);
            match change(&mut next)? {
                Change::Unchanged(value) => return Ok(value),
                Change::Changed(value) => {
                    if self.publish(&mut loaded, org, next, &current)? {
                        return Ok(value);
                    }
                }
            }
        }
        Err(gave_up())
    }

    /// Saves (if the stored version is still `loaded`), then swaps in the new map
    /// and bumps the generation (in that order, so a reader that sees the new
    /// generation also sees the new state). `false` when another daemon moved the
    /// version first: nothing was saved or published.
    fn publish(
        &self,
        loaded: &mut u64,
        org: &str,
        next: OrgState,
        current: &OrgMap,
    ) -> Result<bool, AccessError> {
        let json = document::encode(&next)?;
        let Fenced::Applied(version) = self.backend.save_at(*loaded, org, &json)? else {
            return Ok(false);
        };
        let mut map = current.clone();
        map.insert(org.to_owned(), Arc::new(next));
        self.orgs.store(Arc::new(map));
        *loaded = version;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, u64> {
        // The version is written only after its state is published.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a change that lost the race to other daemons every time.
fn gave_up() -> AccessError {
    AccessError::Backend(format!(
        "access rules kept changing under this save; gave up after {MAX_FENCED_ATTEMPTS} attempts"
    ))
}

/// Decodes and validates stored documents into `orgs` (replacing those
/// organizations); any bad document refuses the whole set.
fn decode_documents(
    documents: Vec<(String, String)>,
    mut orgs: OrgMap,
) -> Result<OrgMap, AccessError> {
    for (org, json) in documents {
        let state = document::decode(&json)
            .map_err(|e| AccessError::Backend(format!("organization {org}: {e}")))?;
        validate::organization_id(&org)
            .map_err(|e| AccessError::Backend(format!("stored organization id: {e}")))?;
        orgs.insert(org, Arc::new(state));
    }
    Ok(orgs)
}

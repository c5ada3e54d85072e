//! The access engine's state: one immutable snapshot per organization, swapped atomically
//! after every durable change, so evaluations never lock and see a change from the next
//! call on. Writers are serialised by one mutex and persist before they publish, so a
//! failed save leaves memory exactly as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::backend::AccessBackend;
use super::document;
use super::error::AccessError;
use super::evaluate::{Decision, Request, evaluate};
use super::roles::Role;
use super::rules::{AccessControlRule, Rule};
use super::token::TokenKeys;
use super::validate;

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
    writer: Mutex<()>,
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
        let mut orgs = OrgMap::new();
        for (org, json) in backend.load_all()? {
            let state = document::decode(&json)
                .map_err(|e| AccessError::Backend(format!("organization {org}: {e}")))?;
            validate::organization_id(&org)
                .map_err(|e| AccessError::Backend(format!("stored organization id: {e}")))?;
            orgs.insert(org, Arc::new(state));
        }
        Ok(AccessEngine {
            backend,
            limits,
            keys: ArcSwap::from_pointee(keys),
            orgs: ArcSwap::from_pointee(orgs),
            generation: AtomicU64::new(0),
            writer: Mutex::new(()),
        })
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

    pub(super) fn token_keys(&self) -> Arc<TokenKeys> {
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
        let _guard = self.lock_writer();
        let current = self.orgs.load_full();
        if current.contains_key(org) {
            return Ok(false);
        }
        let state = OrgState {
            rules: vec![Rule::new(AccessControlRule::default_rule(now_ms))?],
            ..OrgState::default()
        };
        self.publish(org, state, &current)?;
        Ok(true)
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
    /// publishes it. Nothing is published when the closure or the save fails.
    pub(super) fn mutate<T>(
        &self,
        org: &str,
        change: impl FnOnce(&mut OrgState) -> Result<Change<T>, AccessError>,
    ) -> Result<T, AccessError> {
        let _guard = self.lock_writer();
        let current = self.orgs.load_full();
        let state = current
            .get(org)
            .ok_or_else(|| AccessError::OrganizationNotFound("organization not found".into()))?;
        let mut next = OrgState::clone(state);
        match change(&mut next)? {
            Change::Unchanged(value) => Ok(value),
            Change::Changed(value) => {
                self.publish(org, next, &current)?;
                Ok(value)
            }
        }
    }

    /// Saves, then swaps in the new map and bumps the generation (in that order, so a
    /// reader that sees the new generation also sees the new state).
    fn publish(&self, org: &str, next: OrgState, current: &OrgMap) -> Result<(), AccessError> {
        let json = document::encode(&next)?;
        self.backend.save(org, &json)?;
        let mut map = current.clone();
        map.insert(org.to_owned(), Arc::new(next));
        self.orgs.store(Arc::new(map));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panicking writer cannot leave anything half-done.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

//! Personal access tokens on the [`Directory`]: creation (a mailgate extension, since
//! WorkMail creates them in its web app), ListPersonalAccessTokens,
//! GetPersonalAccessTokenMetadata, DeletePersonalAccessToken, the lookups logins make,
//! and DateLastUsed.
//!
//! Tokens are directory records of their own kind, held in memory by token id, so a
//! login costs one map lookup and one SHA-256. DateLastUsed is kept in memory at every
//! use and written to the store at most once a minute, for all tokens in one batch,
//! without moving the directory generation (so neither the write nor the sessions'
//! re-checks cost anything per login). A stop can lose up to a minute of DateLastUsed;
//! what the admin API reports is always the in-memory value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::DirectoryError;
use super::ids;
use super::model::{EntityState, User, UserRole};
use super::pat::{self, MAX_TOKENS_PER_USER, PersonalAccessToken};
use super::service::Directory;
use super::state::State;
use super::tx::Tx;

/// How often, at most, pending DateLastUsed values are written to the store.
pub const LAST_USED_FLUSH_MS: u64 = 60_000;

/// What [`Directory::create_personal_access_token`] needs.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    /// The owner: a user id, name or email address.
    pub user: &'a str,
    /// The token's name.
    pub name: &'a str,
    /// Lifetime in days (1–3,653); `None` for WorkMail's default of 365.
    pub lifetime_days: Option<i64>,
    /// Scopes; `None` for all of them.
    pub scopes: Option<&'a [String]>,
}

/// Token uses not yet written to the store.
#[derive(Debug, Default)]
pub(crate) struct UseLog {
    /// Token id → time of its latest use, epoch ms.
    pending: Mutex<HashMap<String, u64>>,
    /// When the last flush started, epoch ms.
    last_flush: AtomicU64,
}

impl UseLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn latest(&self, id: &str) -> Option<u64> {
        self.lock().get(id).copied()
    }
}

impl Directory {
    /// Creates a token for an ENABLED mailbox user and returns it with its text, the
    /// only time the text exists outside the client. Refused: a bad name, lifetime or
    /// scope (InvalidParameter), an unknown user (EntityNotFound), a user not ENABLED
    /// or without a mailbox (EntityState), a user holding [`MAX_TOKENS_PER_USER`]
    /// tokens already (LimitExceeded).
    pub fn create_personal_access_token(
        &self,
        org_id: &str,
        new: NewToken<'_>,
        now_ms: u64,
    ) -> Result<(PersonalAccessToken, String), DirectoryError> {
        pat::check_name(new.name)?;
        let expires = pat::expiry(now_ms, new.lifetime_days)?;
        let scopes = pat::check_scopes(new.scopes)?;
        self.mutate(|st, tx| {
            let user_id = st.resolve_one::<User>(org_id, new.user)?;
            let user = st
                .get::<User>(org_id, &user_id)
                .ok_or_else(|| DirectoryError::EntityNotFound(format!("no user {user_id}")))?;
            if user.base.state != EntityState::Enabled || user.role != UserRole::User {
                return Err(DirectoryError::EntityState(format!(
                    "user {user_id} is not an enabled mailbox user"
                )));
            }
            let held = st.pats.values().filter(|p| p.user_id == user_id).count();
            let seq = st.pats.values().map(|p| p.seq).max().map_or(0, |m| m + 1);
            if held >= MAX_TOKENS_PER_USER {
                return Err(DirectoryError::LimitExceeded(format!(
                    "user {user_id} already has {MAX_TOKENS_PER_USER} personal access tokens"
                )));
            }
            let mut id = ids::new_entity_uuid();
            while st.pats.contains_key(&id) {
                id = ids::new_entity_uuid();
            }
            let (text, hash) = pat::generate(&id);
            let token = PersonalAccessToken {
                id: id.clone(),
                org_id: org_id.to_string(),
                user_id,
                name: new.name.to_string(),
                created: now_ms,
                seq,
                last_used: None,
                expires,
                scopes: scopes.clone(),
                secret_sha256: hash,
            };
            tx.pats.insert(id, Some(token.clone()));
            Ok((token, text))
        })
    }

    /// ListPersonalAccessTokens: the organization's tokens, or one user's (an id, name
    /// or email), in the order they were created. EntityNotFound for an unknown user, EntityState for a
    /// deleted one.
    pub fn list_personal_access_tokens(
        &self,
        org_id: &str,
        user: Option<&str>,
    ) -> Result<Vec<PersonalAccessToken>, DirectoryError> {
        let st = self.read();
        st.active_org(org_id)?;
        let user_id = match user {
            None => None,
            Some(ident) => {
                let id = st.resolve_one::<User>(org_id, ident)?;
                if st
                    .get::<User>(org_id, &id)
                    .is_some_and(|u| u.base.is_deleted())
                {
                    return Err(DirectoryError::EntityState(format!("user {id} is deleted")));
                }
                Some(id)
            }
        };
        let mut out: Vec<PersonalAccessToken> = st
            .pats
            .values()
            .filter(|p| p.org_id == org_id && user_id.as_ref().is_none_or(|u| *u == p.user_id))
            .map(|p| self.with_latest_use(p))
            .collect();
        out.sort_by_key(|p| p.seq);
        Ok(out)
    }

    /// GetPersonalAccessTokenMetadata: ResourceNotFound for a token the organization
    /// does not have.
    pub fn get_personal_access_token(
        &self,
        org_id: &str,
        token_id: &str,
    ) -> Result<PersonalAccessToken, DirectoryError> {
        pat::check_id(token_id)?;
        let st = self.read();
        st.active_org(org_id)?;
        st.pats
            .get(token_id)
            .filter(|p| p.org_id == org_id)
            .map(|p| self.with_latest_use(p))
            .ok_or_else(|| {
                DirectoryError::ResourceNotFound(format!(
                    "no personal access token {token_id} in {org_id}"
                ))
            })
    }

    /// DeletePersonalAccessToken: the token stops working at once (logins look it up
    /// each time; the generation moves, so live sessions opened with it re-check and
    /// end). Returns what was deleted; an unknown token is a successful no-op, as the
    /// model has no not-found error for this action.
    pub fn delete_personal_access_token(
        &self,
        org_id: &str,
        token_id: &str,
    ) -> Result<Option<PersonalAccessToken>, DirectoryError> {
        pat::check_id(token_id)?;
        let deleted = self.mutate(|st, tx| {
            st.active_org(org_id)?;
            let found = st.pats.get(token_id).filter(|p| p.org_id == org_id);
            if found.is_some() {
                tx.pats.insert(token_id.to_string(), None);
            }
            Ok(found.cloned())
        })?;
        if deleted.is_some() {
            self.pat_uses.lock().remove(token_id);
        }
        Ok(deleted)
    }

    /// The token a login presents, by id (with its hash, for the caller to compare).
    pub fn personal_access_token(&self, token_id: &str) -> Option<PersonalAccessToken> {
        self.read().pats.get(token_id).cloned()
    }

    /// Whether a live session opened with this token may go on: it still exists, is
    /// the user's, and has not expired.
    pub fn personal_access_token_valid(&self, token_id: &str, user_id: &str, now_ms: u64) -> bool {
        self.read()
            .pats
            .get(token_id)
            .is_some_and(|p| p.user_id == user_id && !p.expired(now_ms))
    }

    /// Notes a successful login with a token. Returns true when pending uses should be
    /// written now ([`Directory::flush_token_uses`], a blocking call): at most once per
    /// [`LAST_USED_FLUSH_MS`], whoever asks.
    pub fn note_token_use(&self, token_id: &str, now_ms: u64) -> bool {
        {
            let mut pending = self.pat_uses.lock();
            let at = pending.entry(token_id.to_string()).or_insert(now_ms);
            *at = (*at).max(now_ms);
        }
        let last = self.pat_uses.last_flush.load(Ordering::Acquire);
        now_ms.saturating_sub(last) >= LAST_USED_FLUSH_MS
            && self
                .pat_uses
                .last_flush
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Writes every pending DateLastUsed in one batch (tokens deleted meanwhile are
    /// skipped). On failure the uses stay pending for the next flush.
    pub fn flush_token_uses(&self) -> Result<(), DirectoryError> {
        let snapshot: Vec<(String, u64)> = self
            .pat_uses
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if snapshot.is_empty() {
            return Ok(());
        }
        self.mutate_quietly(|st, tx| {
            for (id, at) in &snapshot {
                if let Some(p) = st.pats.get(id)
                    && p.last_used.is_none_or(|t| t < *at)
                {
                    let mut p = p.clone();
                    p.last_used = Some(*at);
                    tx.pats.insert(id.clone(), Some(p));
                }
            }
            Ok(())
        })?;
        let mut pending = self.pat_uses.lock();
        for (id, at) in snapshot {
            if pending.get(&id).is_some_and(|t| *t <= at) {
                pending.remove(&id);
            }
        }
        Ok(())
    }

    fn with_latest_use(&self, p: &PersonalAccessToken) -> PersonalAccessToken {
        let mut p = p.clone();
        if let Some(at) = self.pat_uses.latest(&p.id) {
            p.last_used = Some(p.last_used.map_or(at, |t| t.max(at)));
        }
        p
    }
}

/// Deletes a user's tokens in the same change set (the user is being deleted).
pub(crate) fn drop_user_tokens(st: &State, tx: &mut Tx, user_id: &str) {
    for p in st.pats.values().filter(|p| p.user_id == user_id) {
        tx.pats.insert(p.id.clone(), None);
    }
}

//! Password logins for every protocol, and the re-check live sessions run.
//!
//! One path for SMTP AUTH, IMAP LOGIN/AUTHENTICATE and EWS Basic: brute-force
//! throttling, the directory lookup, argon2 on a blocking thread (a login that names
//! nobody costs the same), the user's state, then the access control rules. A rule
//! denial looks exactly like a wrong password to the client; the audit events say
//! what really happened (one authentication event per attempt, one access-control
//! event per rule evaluation).
//!
//! A password of a personal access token's shape (`directory::pat`) is checked as
//! that token instead of against the password hash: one SHA-256 and a constant-time
//! compare, so it needs no verification thread. The token must be the login's user's,
//! unexpired, and scoped for the protocol; its id goes into the authentication event
//! (WorkMail's `personal_access_token_id`) whether the login succeeds or not. A session
//! opened with a token ends when the token expires or is deleted.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::throttle::Throttle;
use super::{AccessEngine, Effect, FailurePolicy, Principal, Protocol, Request, account_key};
use crate::directory::{Directory, EntityState, LoginCandidate};
use crate::events::audit::{AccessControl, AccessScope, AuditProtocol, Authentication};
use crate::events::{AuditEvent, Events, new_id};

mod impersonate;
mod verifier;
use super::mailbox::MailboxRights;
pub use impersonate::{Impersonation, ImpersonationRefusal};
use verifier::VerifierPool;

/// An authenticated user, kept by the session to re-check on later commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub org_id: String,
    /// The login name used (for logs and Received headers).
    pub login: String,
    credential_epoch: u64,
    directory_generation: u64,
    access_generation: u64,
    /// The personal access token it logged in with.
    token: Option<TokenLogin>,
}

/// The personal access token behind a session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenLogin {
    id: String,
    /// Epoch ms from which the session may not go on.
    expires_ms: u64,
}

impl Session {
    /// The personal access token the session logged in with, if it did.
    pub fn personal_access_token_id(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.id.as_str())
    }
}

/// The outcome a protocol turns into its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResult {
    Success(Session),
    /// Wrong login or password, disabled user, or denied by a rule: one answer for all.
    Failed,
    /// Too many recent failures from this address, or too many failed checks for this
    /// account from addresses it never logged in from: answer "try later".
    Throttled(Duration),
}

/// One login attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub protocol: Protocol,
    pub source_ip: IpAddr,
    pub user_agent: Option<&'a str>,
}

/// Shared by all listeners.
pub struct Authenticator {
    directory: Arc<Directory>,
    access: Arc<AccessEngine>,
    events: Events,
    failures: Throttle,
    /// `arn:aws:workmail:REGION:ACCOUNT:organization/`.
    arn_prefix: String,
    /// Where the argon2 checks run.
    verifier: VerifierPool,
    /// Mailbox-permission decisions, reached by sessions through this one handle.
    mailboxes: MailboxRights,
}

/// The token scope a protocol's logins need; `None` for protocols no token may reach.
fn token_scope(p: Protocol) -> Option<&'static str> {
    match p {
        Protocol::Imap => Some("IMAP"),
        Protocol::Smtp => Some("SMTP"),
        Protocol::Ews | Protocol::AutoDiscover => Some("EWS"),
        Protocol::ActiveSync | Protocol::WindowsOutlook | Protocol::WebMail => None,
    }
}

fn audit_protocol(p: Protocol) -> AuditProtocol {
    match p {
        Protocol::ActiveSync => AuditProtocol::ActiveSync,
        Protocol::AutoDiscover => AuditProtocol::AutoDiscover,
        Protocol::Ews => AuditProtocol::Ews,
        Protocol::Imap => AuditProtocol::Imap,
        Protocol::Smtp => AuditProtocol::Smtp,
        Protocol::WindowsOutlook => AuditProtocol::WindowsOutlook,
        Protocol::WebMail => AuditProtocol::WebMail,
    }
}

impl Authenticator {
    pub fn new(
        directory: Arc<Directory>,
        access: Arc<AccessEngine>,
        events: Events,
        region: &str,
        account: &str,
    ) -> Authenticator {
        let arn_prefix = crate::access::arn::org_arn_prefix(region, account);
        Authenticator {
            mailboxes: MailboxRights::new(directory.clone(), events.clone(), arn_prefix.clone()),
            directory,
            access,
            events,
            failures: Throttle::local(FailurePolicy::default()),
            arn_prefix,
            verifier: VerifierPool::per_core(),
        }
    }

    /// Keeps the login-failure counts in `store` when other daemons share it, so
    /// they throttle together (in memory otherwise).
    pub fn throttle_in(mut self, store: Arc<dyn crate::store::Backend>) -> Self {
        self.failures = Throttle::for_store(FailurePolicy::default(), store);
        self
    }

    /// What a logged-in user may do to a mailbox (audited decisions).
    pub fn mailboxes(&self) -> &MailboxRights {
        &self.mailboxes
    }

    /// The directory behind the logins.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Checks a password login; emits the audit events; updates the failure tracker.
    pub async fn login(&self, attempt: Attempt<'_>) -> LoginResult {
        let request_id = new_id();
        let token = crate::directory::pat::parse_token(attempt.password);
        let token_id = token.map(|(id, _)| id);
        let candidate = self.directory.login_lookup(attempt.login);
        let account = account_key(
            candidate.as_ref().map(|c| c.user_id.as_str()),
            attempt.login,
        );
        let admitted = self
            .failures
            .admit(attempt.source_ip, &account, crate::clock::now_ms_u64())
            .await;
        let admission = match admitted {
            Ok(admission) => admission,
            Err(retry) => {
                self.audit_auth(
                    &request_id,
                    &attempt,
                    None,
                    Some("too many failed attempts; throttled"),
                    token_id,
                );
                return LoginResult::Throttled(retry.0);
            }
        };
        let now = crate::clock::now_ms_u64();
        let (verified, token_problem) = match token {
            Some((id, secret)) => {
                match self.check_token(id, secret, candidate.as_ref(), attempt.protocol, now) {
                    Ok(expires_ms) => (
                        Some(TokenLogin {
                            id: id.to_string(),
                            expires_ms,
                        }),
                        None,
                    ),
                    Err(problem) => (None, Some(problem)),
                }
            }
            None => {
                let password = attempt.password.to_string();
                let checked = candidate.clone();
                let ok = self
                    .verifier
                    .run(move || match &checked {
                        Some(c) => c.verify(&password),
                        None => crate::directory::verify_dummy(&password),
                    })
                    .await
                    .unwrap_or(false);
                (None, (!ok).then_some("invalid password"))
            }
        };

        let refusal = match (&candidate, token_problem) {
            (None, _) => Some("unknown user"),
            (Some(_), Some(problem)) => Some(problem),
            (Some(c), None) if c.state != EntityState::Enabled => Some("user is not enabled"),
            (Some(_), None) => None,
        };
        let outcome = match (candidate, refusal) {
            (Some(c), None) => {
                if self.rules_allow(
                    &request_id,
                    &c.org_id,
                    &c.user_id,
                    attempt.protocol,
                    attempt.source_ip,
                ) {
                    Ok(Session {
                        user_id: c.user_id,
                        org_id: c.org_id,
                        login: attempt.login.to_string(),
                        credential_epoch: c.credential_epoch,
                        directory_generation: self.directory.generation(),
                        access_generation: self.access.generation(),
                        token: verified,
                    })
                } else {
                    Err((
                        Some(c.org_id),
                        c.user_id,
                        "denied by an access control rule",
                    ))
                }
            }
            (Some(c), Some(reason)) => Err((Some(c.org_id), c.user_id, reason)),
            (None, reason) => Err((None, String::new(), reason.unwrap_or("unknown user"))),
        };
        match outcome {
            Ok(session) => {
                self.audit_auth(
                    &request_id,
                    &attempt,
                    Some((&session.org_id, &session.user_id)),
                    None,
                    token_id,
                );
                if let Some(t) = &session.token {
                    self.note_token_use(&t.id, now);
                }
                self.failures
                    .record_success(
                        attempt.source_ip,
                        &account,
                        admission,
                        crate::clock::now_ms_u64(),
                    )
                    .await;
                LoginResult::Success(session)
            }
            Err((org, user, reason)) => {
                self.audit_auth(
                    &request_id,
                    &attempt,
                    org.as_deref().map(|o| (o, user.as_str())),
                    Some(reason),
                    token_id,
                );
                self.failures
                    .record_failure(attempt.source_ip, &account, crate::clock::now_ms_u64())
                    .await;
                LoginResult::Failed
            }
        }
    }

    /// Whether a live session may go on. Cheap while nothing changed; after any
    /// directory or rule change it re-checks the user's state and credentials and
    /// the rules (emitting an access-control audit event).
    pub fn recheck(&self, session: &mut Session, source_ip: IpAddr, protocol: Protocol) -> bool {
        // Only token sessions read the clock.
        if session
            .token
            .as_ref()
            .is_some_and(|t| crate::clock::now_ms_u64() >= t.expires_ms)
        {
            return false;
        }
        let (dir_gen, acc_gen) = (self.directory.generation(), self.access.generation());
        if dir_gen == session.directory_generation && acc_gen == session.access_generation {
            return true;
        }
        let still_valid = matches!(self.directory.user_epoch(&session.user_id),
            Some((EntityState::Enabled, epoch)) if epoch == session.credential_epoch)
            && session.token.as_ref().is_none_or(|t| {
                self.directory.personal_access_token_valid(
                    &t.id,
                    &session.user_id,
                    crate::clock::now_ms_u64(),
                )
            });
        if !still_valid
            || !self.rules_allow(
                &new_id(),
                &session.org_id,
                &session.user_id,
                protocol,
                source_ip,
            )
        {
            return false;
        }
        session.directory_generation = dir_gen;
        session.access_generation = acc_gen;
        true
    }

    /// Checks a personal access token presented as the password; `Ok` with its expiry,
    /// or the refusal reason for the audit event.
    fn check_token(
        &self,
        id: &str,
        secret: &str,
        candidate: Option<&LoginCandidate>,
        protocol: Protocol,
        now: u64,
    ) -> Result<u64, &'static str> {
        let token = self
            .directory
            .personal_access_token(id)
            .ok_or("unknown personal access token")?;
        if !token.secret_matches(secret) {
            return Err("invalid personal access token");
        }
        if candidate.is_some_and(|c| c.user_id != token.user_id) {
            return Err("personal access token of another user");
        }
        if token.expired(now) {
            return Err("personal access token expired");
        }
        if !token_scope(protocol).is_some_and(|s| token.allows(s)) {
            return Err("personal access token not scoped for this protocol");
        }
        Ok(token.expires)
    }

    /// Records DateLastUsed; when a write is due, makes it on a blocking thread, off
    /// the login's path.
    fn note_token_use(&self, id: &str, now: u64) {
        if self.directory.note_token_use(id, now) {
            let directory = self.directory.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = directory.flush_token_uses() {
                    tracing::warn!(error = %e, "cannot record personal access token use");
                }
            });
        }
    }

    fn rules_allow(
        &self,
        request_id: &str,
        org: &str,
        user_id: &str,
        protocol: Protocol,
        ip: IpAddr,
    ) -> bool {
        let decision = self.access.evaluate(
            org,
            &Request {
                source_ip: ip,
                action: protocol,
                principal: Principal::User(user_id),
            },
        );
        let granted = decision.effect == Effect::Allow;
        self.events.audit(AuditEvent::AccessControl(AccessControl {
            request_id: request_id.to_string(),
            organization_arn: format!("{}{org}", self.arn_prefix),
            user_id: user_id.to_string(),
            impersonator_id: None,
            protocol: audit_protocol(protocol),
            source_ip: ip.to_canonical(),
            scope: AccessScope::AccessControl,
            rule_id: decision.deciding_rule,
            access_granted: granted,
        }));
        granted
    }

    fn audit_auth(
        &self,
        request_id: &str,
        a: &Attempt<'_>,
        who: Option<(&str, &str)>,
        failure: Option<&str>,
        token_id: Option<&str>,
    ) {
        self.events
            .audit(AuditEvent::Authentication(Authentication {
                request_id: request_id.to_string(),
                organization_arn: who
                    .map(|(org, _)| format!("{}{org}", self.arn_prefix))
                    .unwrap_or_default(),
                user_id: who.map(|(_, u)| u.to_string()).unwrap_or_default(),
                user: a.login.chars().take(256).collect(),
                protocol: audit_protocol(a.protocol),
                source_ip: a.source_ip.to_canonical(),
                user_agent: a.user_agent.map(str::to_string),
                method: "basic",
                auth_successful: failure.is_none(),
                auth_failed_reason: failure.map(str::to_string),
                personal_access_token_id: token_id.map(str::to_string),
            }));
    }
}

#[cfg(test)]
mod tests;

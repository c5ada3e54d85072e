//! Who an EWS request comes from: HTTP Basic (a user's password, through the shared
//! login path) or `Authorization: Bearer` (an impersonation role's token, which
//! only ever acts through `ExchangeImpersonation`).
//!
//! EWS clients send Basic credentials on every request; an argon2 check per request
//! would cost tens of milliseconds each, so a successful check is remembered for
//! [`CACHE_TTL`], keyed by a hash of (source address, login, password), and the
//! remembered session re-checks the user's state and the rules on every use (the
//! same re-check live IMAP sessions run). A password change, disabled user or new
//! rule therefore ends it at once. One authentication audit event is written per
//! real check, not per cached request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use dashmap::DashMap;
use sha2::{Digest, Sha256};

use crate::access::Protocol;
use crate::access::login::{Attempt, Authenticator, LoginResult, Session};

/// How long a verified Basic credential is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(600);
/// Entries beyond which the cache is emptied (a flood of distinct passwords).
const CACHE_MAX: usize = 50_000;

/// What the `Authorization` header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { login: String, password: String },
    Bearer(String),
}

/// Parses an `Authorization` header value; `None` for anything else.
pub fn credentials(header: &str) -> Option<Credentials> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (login, password) = text.split_once(':')?;
        if login.is_empty() || login.len() > 320 || password.len() > 1024 {
            return None;
        }
        Some(Credentials::Basic {
            login: login.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() && rest.len() <= 4096 {
        Some(Credentials::Bearer(rest.to_string()))
    } else {
        None
    }
}

/// The outcome of a Basic check.
#[derive(Debug)]
pub enum BasicOutcome {
    Ok(Session),
    Failed,
    Throttled(Duration),
}

/// Basic logins with a short memory of the ones that succeeded.
pub struct BasicLogins {
    auth: Arc<Authenticator>,
    protocol: Protocol,
    cache: DashMap<[u8; 32], (Session, Instant)>,
}

impl BasicLogins {
    /// Logins for `protocol` (EWS or AutoDiscover: each its own rules and audit label).
    pub fn new(auth: Arc<Authenticator>, protocol: Protocol) -> BasicLogins {
        BasicLogins {
            auth,
            protocol,
            cache: DashMap::new(),
        }
    }

    fn key(ip: IpAddr, login: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(ip.to_canonical().to_string().as_bytes());
        h.update([0]);
        h.update(login.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Checks a login and password from `ip`.
    pub async fn check(
        &self,
        login: &str,
        password: &str,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> BasicOutcome {
        let key = Self::key(ip, login, password);
        if let Some(mut hit) = self.cache.get_mut(&key) {
            let (session, at) = hit.value_mut();
            if at.elapsed() < CACHE_TTL && self.auth.recheck(session, ip, self.protocol) {
                return BasicOutcome::Ok(session.clone());
            }
            drop(hit);
            self.cache.remove(&key);
        }
        let attempt = Attempt {
            login,
            password,
            protocol: self.protocol,
            source_ip: ip,
            user_agent,
        };
        match self.auth.login(attempt).await {
            LoginResult::Success(session) => {
                if self.cache.len() >= CACHE_MAX {
                    self.cache.clear();
                }
                self.cache.insert(key, (session.clone(), Instant::now()));
                BasicOutcome::Ok(session)
            }
            LoginResult::Failed => BasicOutcome::Failed,
            LoginResult::Throttled(d) => BasicOutcome::Throttled(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_and_bearer_and_refuses_the_rest() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice@example.test:pa:ss");
        assert_eq!(
            credentials(&format!("Basic {b64}")),
            Some(Credentials::Basic {
                login: "alice@example.test".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            credentials("bearer abc.def"),
            Some(Credentials::Bearer("abc.def".into()))
        );
        for bad in [
            "",
            "Basic",
            "Basic !!!",
            "NTLM TlRMTVNTUAAB",
            "Bearer ",
            "Digest x",
        ] {
            assert_eq!(credentials(bad), None, "{bad}");
        }
        let no_colon = base64::engine::general_purpose::STANDARD.encode("alice");
        assert_eq!(credentials(&format!("Basic {no_colon}")), None);
    }
}

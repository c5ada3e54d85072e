//! Personal access tokens (PATs), the pure part: the stored record, the token's text
//! form, its hash, and the limits a new token must meet (reference
//! `workmail-identity-and-access.md` §4.6, §11.20 for what WorkMail leaves open).
//!
//! Decided where WorkMail is silent:
//! * **Format.** `mgpat.<id>.<secret>`: the token id (a lowercase UUIDv4, WorkMail's
//!   `PersonalAccessTokenId`) in clear, so a login finds its record with one map lookup
//!   instead of hashing against every stored token, and 32 random bytes as base64url
//!   without padding (43 characters). 86 printable ASCII characters in all, usable as an
//!   IMAP, SMTP or HTTP Basic password as is. A password of exactly this shape is always
//!   taken as a token (no human password collides with it by accident).
//! * **At rest** only SHA-256 of the secret (domain-separated with the id) is kept. A
//!   fast hash is right here, unlike for passwords: the secret is 256 random bits, so no
//!   dictionary or brute-force search can recover it from the hash, and a slow hash would
//!   only make every IMAP/SMTP login with a token cost what argon2 costs. Hashes are
//!   compared in constant time.
//! * **Limits.** At most [`MAX_TOKENS_PER_USER`] tokens per user; names 1–64 characters
//!   without control characters, `<`, `>` or `\` (the model's pattern); lifetime 1–3,653
//!   days (the model's `LifetimeInDays`), 365 by default (WorkMail's default); no
//!   never-expiring tokens.
//! * **Scopes** name the protocols a token may log in to: `IMAP`, `SMTP`, `EWS` (which
//!   covers Autodiscover), all three by default.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::DirectoryError;
use super::ids;

/// The text every token starts with.
pub const TOKEN_PREFIX: &str = "mgpat.";
/// Random bytes in a token's secret.
const SECRET_BYTES: usize = 32;
/// Characters of the secret's base64url form.
const SECRET_CHARS: usize = 43;
/// Most tokens one user may hold (WorkMail states none; enough for a phone, a laptop
/// and a few scripts).
pub const MAX_TOKENS_PER_USER: usize = 10;
/// Longest token name (the model's `PersonalAccessTokenName`).
pub const MAX_NAME_CHARS: usize = 64;
/// Lifetime bounds in days (the model's `LifetimeInDays`) and WorkMail's default.
pub const MIN_LIFETIME_DAYS: u32 = 1;
/// Longest lifetime: ten years, the model's maximum.
pub const MAX_LIFETIME_DAYS: u32 = 3653;
/// WorkMail's default PAT lifetime.
pub const DEFAULT_LIFETIME_DAYS: u32 = 365;
/// Every scope a token can carry, in the order they are listed.
pub const SCOPES: [&str; 3] = ["IMAP", "SMTP", "EWS"];
const DAY_MS: u64 = 86_400_000;

/// One stored token: metadata plus the hash of its secret (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalAccessToken {
    /// `PersonalAccessTokenId`: a lowercase UUIDv4.
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// Owning user's id.
    pub user_id: String,
    /// Name given at creation.
    pub name: String,
    /// Creation time, epoch ms.
    pub created: u64,
    /// Creation order across the directory (tokens made in the same millisecond
    /// still list in the order they were made).
    #[serde(default)]
    pub seq: u64,
    /// Last successful login with it, epoch ms (as last persisted).
    pub last_used: Option<u64>,
    /// Expiry, epoch ms (invalid from this instant on).
    pub expires: u64,
    /// Protocols it may log in to (a subset of [`SCOPES`]).
    pub scopes: Vec<String>,
    /// Lowercase hex SHA-256 of the secret (see [`secret_hash`]).
    pub secret_sha256: String,
}

impl PersonalAccessToken {
    /// Whether it has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires
    }

    /// Whether `secret` is this token's, in time independent of where they differ.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let Ok(stored) = hex::decode(&self.secret_sha256) else {
            return false;
        };
        constant_time_eq(&stored, &secret_hash(&self.id, secret))
    }

    /// Whether it may log in to a protocol of that scope.
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A token split into its id and secret; `None` when the text is not a token's shape.
pub fn parse_token(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (ids::is_uuid_v4(id) && secret_ok).then_some((id, secret))
}

/// A new token's full text for `id`, and the secret's hash to store.
pub fn generate(id: &str) -> (String, String) {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hex::encode(secret_hash(id, &secret));
    (format!("{TOKEN_PREFIX}{id}.{secret}"), hash)
}

/// SHA-256 over a version label, the token id and the secret, so a hash is bound to
/// its token and to this format.
pub fn secret_hash(id: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mailgate-pat-v1\0");
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Equality whose running time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Checks a token name: 1–64 characters, none of them a control character, `<`, `>`
/// or `\`.
pub fn check_name(name: &str) -> Result<(), DirectoryError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(DirectoryError::InvalidParameter(format!(
            "Name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | '\\'))
    {
        return Err(DirectoryError::InvalidParameter(
            "Name may not contain control characters, '<', '>' or '\\'".into(),
        ));
    }
    Ok(())
}

/// The expiry, epoch ms, of a token created at `now_ms` for `days` (default 365).
pub fn expiry(now_ms: u64, days: Option<i64>) -> Result<u64, DirectoryError> {
    let days = days.unwrap_or(i64::from(DEFAULT_LIFETIME_DAYS));
    if days < i64::from(MIN_LIFETIME_DAYS) || days > i64::from(MAX_LIFETIME_DAYS) {
        return Err(DirectoryError::InvalidParameter(format!(
            "ExpiresInDays must be between {MIN_LIFETIME_DAYS} and {MAX_LIFETIME_DAYS}, not {days}"
        )));
    }
    // Cast: days is in 1..=3653 here.
    Ok(now_ms.saturating_add(days as u64 * DAY_MS))
}

/// Checks requested scopes (1–10 of [`SCOPES`], case-insensitive) and returns them in
/// [`SCOPES`] order without repeats; `None` means all of them.
pub fn check_scopes(scopes: Option<&[String]>) -> Result<Vec<String>, DirectoryError> {
    let Some(asked) = scopes else {
        return Ok(SCOPES.iter().map(|s| s.to_string()).collect());
    };
    if asked.is_empty() || asked.len() > 10 {
        return Err(DirectoryError::InvalidParameter(
            "Scopes must list 1 to 10 scopes".into(),
        ));
    }
    if let Some(bad) = asked
        .iter()
        .find(|a| !SCOPES.iter().any(|s| s.eq_ignore_ascii_case(a)))
    {
        return Err(DirectoryError::InvalidParameter(format!(
            "unknown scope {bad:?}; scopes are {}",
            SCOPES.join(", ")
        )));
    }
    Ok(SCOPES
        .iter()
        .filter(|s| asked.iter().any(|a| s.eq_ignore_ascii_case(a)))
        .map(|s| s.to_string())
        .collect())
}

/// Checks a `PersonalAccessTokenId` input: 1–64 `[a-zA-Z0-9_-]`.
pub fn check_id(id: &str) -> Result<(), DirectoryError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ok {
        true => Ok(()),
        false => Err(DirectoryError::InvalidParameter(
            "PersonalAccessTokenId must be 1 to 64 characters of [a-zA-Z0-9_-]".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, secret_hash: String) -> PersonalAccessToken {
        PersonalAccessToken {
            id: id.into(),
            org_id: "m-0".into(),
            user_id: "u".into(),
            name: "phone".into(),
            created: 0,
            seq: 0,
            last_used: None,
            expires: 1000,
            scopes: vec!["IMAP".into()],
            secret_sha256: secret_hash,
        }
    }

    #[test]
    fn a_generated_token_parses_back_and_matches_only_its_hash() {
        let id = ids::new_entity_uuid();
        let (text, hash) = generate(&id);
        assert_eq!(text.len(), 86);
        assert!(text.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        let (pid, secret) = parse_token(&text).expect("own format");
        assert_eq!(pid, id);
        let t = token(&id, hash);
        assert!(t.secret_matches(secret));
        // One character changed, or the same secret under another id: no match.
        let mut wrong = secret.to_string();
        let last = if wrong.ends_with('A') { "B" } else { "A" };
        wrong.replace_range(42.., last);
        assert!(!t.secret_matches(&wrong));
        let other = token(&ids::new_entity_uuid(), t.secret_sha256.clone());
        assert!(!other.secret_matches(secret));
        // A damaged stored hash never matches.
        assert!(!token(&id, "zz".into()).secret_matches(secret));
        // Two tokens never share a secret.
        assert_ne!(generate(&id).0, text);
    }

    #[test]
    fn only_the_exact_shape_is_a_token() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let secret = "A".repeat(43);
        assert!(parse_token(&format!("mgpat.{id}.{secret}")).is_some());
        for bad in [
            String::new(),
            "Corr3ct-Horse-Battery".into(),
            format!("mgpat.{id}.{}", "A".repeat(42)),
            format!("mgpat.{id}.{}", "A".repeat(44)),
            format!("mgpat.{id}.{}=", "A".repeat(42)),
            format!("mgpat.{id}.{}.", "A".repeat(42)),
            format!("MGPAT.{id}.{secret}"),
            format!("mgpat.{}.{secret}", id.to_uppercase()),
            format!("mgpat.not-a-uuid.{secret}"),
            format!("mgpat.{id}{secret}"),
            format!("mgpat.{id}.{}é", "A".repeat(41)),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn expiry_bounds_and_default() {
        assert_eq!(expiry(5, None), Ok(5 + 365 * DAY_MS));
        assert_eq!(expiry(0, Some(1)), Ok(DAY_MS));
        assert_eq!(expiry(0, Some(3653)), Ok(3653 * DAY_MS));
        for bad in [0, -1, 3654, i64::MAX] {
            assert!(
                matches!(
                    expiry(0, Some(bad)),
                    Err(DirectoryError::InvalidParameter(_))
                ),
                "{bad}"
            );
        }
        let t = token("x", String::new());
        assert!(!t.expired(999));
        assert!(t.expired(1000), "expiry is exclusive");
    }

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(check_name("phone").is_ok());
        assert!(check_name("Thunderbird on my laptop (work)").is_ok());
        assert!(check_name(&"é".repeat(64)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(65),
            "a<b".into(),
            "a>b".into(),
            "a\\b".into(),
            "tab\there".into(),
            "del\u{7f}".into(),
        ] {
            assert!(check_name(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_default_to_all_and_are_normalised() {
        assert_eq!(
            check_scopes(None),
            Ok(vec!["IMAP".into(), "SMTP".into(), "EWS".into()])
        );
        let asked = vec!["ews".to_string(), "IMAP".into(), "imap".into()];
        assert_eq!(
            check_scopes(Some(&asked)),
            Ok(vec!["IMAP".into(), "EWS".into()])
        );
        assert!(check_scopes(Some(&[])).is_err());
        assert!(check_scopes(Some(&["POP3".to_string()])).is_err());
        assert!(check_scopes(Some(&vec!["IMAP".to_string(); 11])).is_err());
        let t = token("x", String::new());
        assert!(t.allows("IMAP") && !t.allows("SMTP"));
    }

    #[test]
    fn ids_follow_the_model_pattern() {
        assert!(check_id("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(check_id("abc_DEF-1").is_ok());
        for bad in ["", "a b", "a.b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}

//! Passwords: the WorkMail directory policy (reference §4.4), argon2id hashing
//! in PHC string form, and a dummy verification so unknown logins cost as much
//! time as wrong passwords.

use std::sync::OnceLock;

use argon2::password_hash::{Output, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::error::DirectoryError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters ("less than 64").
pub const MAX_PASSWORD_CHARS: usize = 63;

/// An argon2id hash in PHC string form. A newtype so that `Debug` never prints
/// it and so that it cannot be mistaken for a plaintext password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhcString(String);

impl PhcString {
    /// Wraps a PHC string read from storage or produced by [`hash_password`].
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for [`verify_password`].
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PhcString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhcString(<redacted>)")
    }
}

/// The character classes of the policy; a password needs three of the five.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Classes {
    upper: bool,
    lower: bool,
    digit: bool,
    special: bool,
    latin1_letter: bool,
}

impl Classes {
    fn of(pw: &str) -> Self {
        let mut c = Classes::default();
        for ch in pw.chars() {
            match ch {
                'A'..='Z' => c.upper = true,
                'a'..='z' => c.lower = true,
                '0'..='9' => c.digit = true,
                // Latin-1 Supplement letters: À–ÿ except × and ÷, plus ª µ º.
                '\u{a0}'..='\u{ff}' if ch.is_alphabetic() => c.latin1_letter = true,
                _ => c.special = true,
            }
        }
        c
    }

    fn count(self) -> usize {
        [
            self.upper,
            self.lower,
            self.digit,
            self.special,
            self.latin1_letter,
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

/// Checks the WorkMail directory password policy: 8–63 characters, only Basic
/// Latin or Latin-1 Supplement printable characters (U+0020–U+00FF without
/// controls), and at least three of: uppercase, lowercase, digits, specials,
/// Latin-1 letters (é, ü, ñ, …). Violations are `InvalidPassword`.
pub fn check_password_policy(pw: &str) -> Result<(), DirectoryError> {
    let n = pw.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(DirectoryError::InvalidPassword(format!(
            "password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters"
        )));
    }
    if !pw
        .chars()
        .all(|c| ('\u{20}'..='\u{ff}').contains(&c) && !c.is_control())
    {
        return Err(DirectoryError::InvalidPassword(
            "password may use only Basic Latin and Latin-1 Supplement characters".into(),
        ));
    }
    if Classes::of(pw).count() < 3 {
        return Err(DirectoryError::InvalidPassword(
            "password needs three of: uppercase, lowercase, digits, specials, Latin-1 letters"
                .into(),
        ));
    }
    Ok(())
}

/// Hashes with argon2id, the crate's default parameters and a random 128-bit
/// salt. Does not check the policy (callers do, so they can refuse before paying
/// for a hash). Fails only if the argon2 crate refuses its own defaults.
pub fn hash_password(pw: &str) -> Result<String, DirectoryError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| DirectoryError::Backend(format!("salt encoding failed: {e}")))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Backend(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string (argon2 parameters are read from
/// the string; the digests are compared in constant time). A malformed PHC
/// string never matches.
///
/// The argon2 work area (19 MiB at the default parameters) is kept per thread
/// and reused while checks keep coming: a burst of 10,000 logins
/// allocates it once per verification thread (`access::login::verifier`), not
/// 10,000 times (each a 19 MiB mapping to fault in; before the daemon fixed
/// glibc's mmap threshold, each also moved that threshold and left the freed
/// memory resident: 1,000 IMAP sessions in IDLE cost 233 MiB instead of 43).
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm);
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let hashed = with_work_area(blocks, |area| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, out, area)
    });
    hashed.is_ok() && Output::new(out).is_ok_and(|o| o == expected)
}

/// Frees this thread's argon2 work area. The verification threads call it when
/// no check is waiting, so a daemon between login bursts keeps none.
pub fn release_work_area() {
    WORK_AREA.with_borrow_mut(|area| *area = Vec::new());
}

/// Runs `f` on this thread's argon2 work area of `blocks` blocks; parameters
/// beyond four times the default (hand-edited data) get a one-off area.
fn with_work_area<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if blocks > KEPT_WORK_AREA_BLOCKS {
        return f(&mut vec![Block::default(); blocks]);
    }
    WORK_AREA.with_borrow_mut(|area| {
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        f(&mut area[..blocks])
    })
}

/// The largest work area a thread keeps: four times the default 19 MiB.
const KEPT_WORK_AREA_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

thread_local! {
    /// This thread's argon2 work area, grown to the largest check it ran.
    static WORK_AREA: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spends the time of one real verification and returns `false`. Call it when a
/// login names no user (or a user without a password) so that the answer is not
/// faster than a wrong password's.
pub fn verify_dummy(password: &str) -> bool {
    let _ = verify_password(dummy_phc(), password);
    false
}

/// A hash of a random secret with the default parameters, made once per process.
pub(crate) fn dummy_phc() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(pw: &str) -> bool {
        matches!(
            check_password_policy(pw),
            Err(DirectoryError::InvalidPassword(_))
        )
    }

    #[test]
    fn length_boundaries() {
        assert!(refused("Abcde1!"), "7 chars");
        assert!(check_password_policy("Abcdef1!").is_ok(), "8 chars");
        let p63 = format!("Ab1{}", "x".repeat(60));
        assert_eq!(p63.chars().count(), 63);
        assert!(check_password_policy(&p63).is_ok());
        let p64 = format!("Ab1{}", "x".repeat(61));
        assert!(refused(&p64), "64 chars");
        assert!(refused(""));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 8 characters, 11 bytes.
        let p = "ééé Abc1";
        assert_eq!(p.chars().count(), 8);
        assert!(check_password_policy(p).is_ok());
        // 63 two-byte characters plus classes.
        let p = format!("Aa1{}", "é".repeat(60));
        assert!(check_password_policy(&p).is_ok());
    }

    #[test]
    fn latin1_only() {
        assert!(refused("Abcdef1€"), "euro sign is outside Latin-1");
        assert!(refused("Abcdef1☃"));
        assert!(refused("Abcdef1\t"), "control character");
        assert!(refused("Abcdef1\u{85}"), "C1 control");
        assert!(check_password_policy("Abcdef1ÿ").is_ok());
    }

    #[test]
    fn three_of_five_classes() {
        assert!(refused("abcdefgh"), "one class");
        assert!(refused("abcdEFGH"), "two classes");
        assert!(refused("abcd1234"), "two classes");
        assert!(
            check_password_policy("abcdEF12").is_ok(),
            "upper lower digit"
        );
        assert!(
            check_password_policy("abcd12!!").is_ok(),
            "lower digit special"
        );
        assert!(
            check_password_policy("ABCD12!!").is_ok(),
            "upper digit special"
        );
        assert!(
            check_password_policy("abcdéü12").is_ok(),
            "lower latin1 digit"
        );
        assert!(
            check_password_policy("ÉÜabcdef!").is_ok(),
            "latin1 lower special"
        );
        assert!(
            check_password_policy("abcd efG").is_ok(),
            "space counts as special"
        );
        assert!(refused("éüñéüñéü"), "latin-1 letters only");
        assert!(refused("éüñabcde"), "latin1 + lower only");
        // × and ÷ are not letters: they count as specials.
        assert!(check_password_policy("abcd×÷12").is_ok());
    }

    #[test]
    fn hash_and_verify_round_trip() {
        let h = hash_password("Correct-horse1").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "Correct-horse1"));
        assert!(!verify_password(&h, "correct-horse1"));
        assert!(!verify_password("not a phc string", "Correct-horse1"));
        assert!(!verify_dummy("Correct-horse1"));
        assert!(dummy_phc().starts_with("$argon2id$"));
    }

    #[test]
    fn debug_redacts() {
        let p = PhcString::new("$argon2id$secret".into());
        assert_eq!(format!("{p:?}"), "PhcString(<redacted>)");
        assert_eq!(p.as_str(), "$argon2id$secret");
    }
}

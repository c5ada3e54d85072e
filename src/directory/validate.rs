//! Input format rules (reference §6 and the WorkMail SDK model's shapes).
//! Every check returns `InvalidParameter` naming the field, so the admin API can
//! pass the message through unchanged. Hand-written matchers instead of regexes:
//! the patterns are small and this keeps the module free of a regex engine.

use super::error::DirectoryError;

/// Most aliases one user, group or resource may have (reference §10).
pub const MAX_ALIASES: usize = 100;
/// Smallest mailbox quota in MB.
pub const MIN_QUOTA_MB: u32 = 1;
/// Largest (and default) mailbox quota in MB: 50 GB.
pub const MAX_QUOTA_MB: u32 = 51_200;
/// Names no user, group or resource may take (compared case-insensitively).
/// The reference names no reserved names; these are the identities the daemon
/// itself uses as senders of DSNs and notices.
pub const RESERVED_NAMES: &[&str] = &["mailer-daemon", "system"];

fn invalid(field: &str, why: &str) -> DirectoryError {
    DirectoryError::InvalidParameter(format!("{field} {why}"))
}

/// Organization alias: 1–62 chars, `^(?!d-)([\da-zA-Z]+)([-][\da-zA-Z]+)*$`.
/// (Alphanumeric runs joined by single hyphens, not starting with `d-`, which
/// would look like a Directory Service id.)
pub fn org_alias(s: &str) -> Result<(), DirectoryError> {
    const F: &str = "Alias";
    if s.is_empty() || s.len() > 62 {
        return Err(invalid(F, "must be 1-62 characters"));
    }
    if s.starts_with("d-") {
        return Err(invalid(F, "must not start with \"d-\""));
    }
    if !s
        .split('-')
        .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(
            F,
            "must be letters and digits, joined by single hyphens",
        ));
    }
    Ok(())
}

/// User name: 1–64 chars, `[\w\-.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z0-9-]{2,})?` (ASCII `\w`).
pub fn user_name(s: &str) -> Result<(), DirectoryError> {
    word_name(s, "Name", 64)
}

/// Resource name: 1–20 chars, same pattern as a user name.
pub fn resource_name(s: &str) -> Result<(), DirectoryError> {
    word_name(s, "Name", 20)
}

/// Group name: 1–256 chars from U+0020–U+00FF (the SDK model's `GroupName`).
pub fn group_name(s: &str) -> Result<(), DirectoryError> {
    let n = s.chars().count();
    if n == 0 || n > 256 {
        return Err(invalid("Name", "must be 1-256 characters"));
    }
    if !s.chars().all(|c| ('\u{20}'..='\u{ff}').contains(&c)) {
        return Err(invalid("Name", "must use characters U+0020-U+00FF only"));
    }
    Ok(())
}

/// Refuses names reserved for the system, whatever their case.
pub fn not_reserved(s: &str) -> Result<(), DirectoryError> {
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return Err(DirectoryError::ReservedName(format!("{s} is reserved")));
    }
    Ok(())
}

fn word_name(s: &str, field: &str, max: usize) -> Result<(), DirectoryError> {
    if s.is_empty() || s.len() > max {
        return Err(invalid(field, &format!("must be 1-{max} characters")));
    }
    let (local, domain) = match s.split_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (s, None),
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if local.is_empty() || !local.bytes().all(word) {
        return Err(invalid(field, "must use letters, digits, '_', '-' and '.'"));
    }
    if let Some(d) = domain {
        let ok = match d.rsplit_once('.') {
            Some((head, tld)) => {
                !head.is_empty()
                    && head
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                    && tld.len() >= 2
                    && tld.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }
            None => false,
        };
        if !ok {
            return Err(invalid(field, "has an invalid @domain suffix"));
        }
    }
    Ok(())
}

/// Mail domain name: 3–209 chars of `[a-zA-Z0-9.-]`, at least two dot-separated
/// labels of 1–63 chars that neither start nor end with '-', and a top-level
/// label of letters and hyphens (so addresses in it can pass [`email`]).
/// Returns the lowercased domain, the form the directory stores.
pub fn domain_name(s: &str) -> Result<String, DirectoryError> {
    const F: &str = "DomainName";
    if s.len() < 3 || s.len() > 209 {
        return Err(invalid(F, "must be 3-209 characters"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(invalid(F, "must use letters, digits, '.' and '-' only"));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid(F, "must have at least two labels"));
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-') {
            return Err(invalid(F, "has an empty, overlong or hyphen-edged label"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(invalid(F, "top-level label must be 2+ letters"));
    }
    Ok(s.to_ascii_lowercase())
}

/// Email address: 1–254 chars, `[a-zA-Z0-9._%+-]{1,64}@domain` where the domain
/// passes [`domain_name`]. Returns the lowercased address: addresses are
/// compared case-insensitively, so one stored form avoids two spellings.
pub fn email(s: &str) -> Result<String, DirectoryError> {
    const F: &str = "Email";
    if s.is_empty() || s.len() > 254 {
        return Err(invalid(F, "must be 1-254 characters"));
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Err(invalid(F, "must contain '@'"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(invalid(F, "local part must be 1-64 characters"));
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-'))
    {
        return Err(invalid(
            F,
            "local part has a character outside [a-zA-Z0-9._%+-]",
        ));
    }
    domain_name(domain).map_err(|_| invalid(F, "has an invalid domain"))?;
    Ok(s.to_ascii_lowercase())
}

/// The domain part of an address already accepted by [`email`].
pub fn email_domain(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Free-text user attributes (display name, first/last name, …): at most 256 chars.
pub fn attribute(field: &str, s: &str) -> Result<(), DirectoryError> {
    if s.chars().count() > 256 {
        return Err(invalid(field, "must be at most 256 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Resource description: at most 64 chars, no control characters.
pub fn description(s: &str) -> Result<(), DirectoryError> {
    if s.chars().count() > 64 {
        return Err(invalid("Description", "must be at most 64 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(
            "Description",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Mailbox quota in MB: 1–51,200.
pub fn quota(mb: u32) -> Result<(), DirectoryError> {
    if !(MIN_QUOTA_MB..=MAX_QUOTA_MB).contains(&mb) {
        return Err(invalid("MailboxQuota", "must be 1-51200 MB"));
    }
    Ok(())
}

/// An "ID, name or email" input: 1–256 chars without control characters.
/// Deliberately looser than the SDK's `[a-zA-Z0-9._%+@-]+` so that group names
/// with spaces (which the model's own `GroupName` allows) can still be named.
pub fn identifier(s: &str) -> Result<(), DirectoryError> {
    if s.is_empty() || s.chars().count() > 256 {
        return Err(invalid("identifier", "must be 1-256 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid("identifier", "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(r: Result<impl std::fmt::Debug, DirectoryError>) -> bool {
        matches!(r, Err(DirectoryError::InvalidParameter(_)))
    }

    #[test]
    fn org_alias_rules() {
        assert!(org_alias("acme").is_ok());
        assert!(org_alias("acme-corp-2").is_ok());
        assert!(org_alias(&"a".repeat(62)).is_ok());
        assert!(bad(org_alias(&"a".repeat(63))));
        assert!(bad(org_alias("")));
        assert!(bad(org_alias("d-1234")));
        assert!(bad(org_alias("-acme")));
        assert!(bad(org_alias("acme-")));
        assert!(bad(org_alias("ac--me")));
        assert!(bad(org_alias("ac_me")));
        assert!(bad(org_alias("acmé")));
    }

    #[test]
    fn user_and_resource_name_rules() {
        assert!(user_name("bob").is_ok());
        assert!(user_name("bob.smith_2-x").is_ok());
        assert!(user_name("bob@example.com").is_ok());
        assert!(user_name(&"b".repeat(64)).is_ok());
        assert!(bad(user_name(&"b".repeat(65))));
        assert!(bad(user_name("")));
        assert!(bad(user_name("bob smith")));
        assert!(bad(user_name("bob@")));
        assert!(bad(user_name("bob@example")));
        assert!(bad(user_name("bob@example.c")));
        assert!(bad(user_name("@example.com")));
        assert!(bad(user_name("bøb")));
        assert!(resource_name(&"r".repeat(20)).is_ok());
        assert!(bad(resource_name(&"r".repeat(21))));
    }

    #[test]
    fn group_name_rules() {
        assert!(group_name("Sales Team (EU)").is_ok());
        assert!(group_name("Équipe").is_ok());
        assert!(group_name(&"g".repeat(256)).is_ok());
        assert!(bad(group_name(&"g".repeat(257))));
        assert!(bad(group_name("")));
        assert!(bad(group_name("tab\there")));
        assert!(bad(group_name("snow☃")));
    }

    #[test]
    fn reserved_names() {
        assert!(matches!(
            not_reserved("MAILER-DAEMON"),
            Err(DirectoryError::ReservedName(_))
        ));
        assert!(not_reserved("postmaster").is_ok());
    }

    #[test]
    fn domain_rules() {
        assert_eq!(
            domain_name("Example.COM").ok().as_deref(),
            Some("example.com")
        );
        assert!(domain_name("a.b.example.test").is_ok());
        assert!(bad(domain_name("ab")));
        assert!(bad(domain_name("localhost")));
        assert!(bad(domain_name("example..com")));
        assert!(bad(domain_name(".example.com")));
        assert!(bad(domain_name("-a.example.com")));
        assert!(bad(domain_name("a-.example.com")));
        assert!(bad(domain_name("example.c0m")));
        assert!(bad(domain_name("example.c")));
        assert!(bad(domain_name("exa_mple.com")));
        assert!(bad(domain_name(&format!("{}.com", "a".repeat(64)))));
        assert!(domain_name(&format!("{}com", "a.".repeat(103))).is_ok());
        assert!(bad(domain_name(&format!("{}com", "a.".repeat(104)))));
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            email("Bob.Smith+x@Example.com").ok().as_deref(),
            Some("bob.smith+x@example.com")
        );
        assert!(email("a%b_c-d@sub.example.org").is_ok());
        assert!(email(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert!(bad(email(&format!("{}@example.com", "a".repeat(65)))));
        assert!(bad(email("")));
        assert!(bad(email("bob")));
        assert!(bad(email("@example.com")));
        assert!(bad(email("bob@")));
        assert!(bad(email("bob@@example.com")));
        assert!(bad(email("bo b@example.com")));
        assert!(bad(email("bob@example")));
        assert!(bad(email("bøb@example.com")));
        assert_eq!(email_domain("bob@example.com"), "example.com");
    }

    #[test]
    fn attribute_description_quota_identifier() {
        assert!(attribute("DisplayName", &"x".repeat(256)).is_ok());
        assert!(bad(attribute("DisplayName", &"x".repeat(257))));
        assert!(bad(attribute("DisplayName", "a\nb")));
        assert!(description(&"d".repeat(64)).is_ok());
        assert!(bad(description(&"d".repeat(65))));
        assert!(bad(quota(0)));
        assert!(quota(1).is_ok());
        assert!(quota(51_200).is_ok());
        assert!(bad(quota(51_201)));
        assert!(identifier("Sales Team").is_ok());
        assert!(bad(identifier("")));
        assert!(bad(identifier(&"i".repeat(257))));
        assert!(bad(identifier("a\u{0}b")));
    }
}

//! Whom an Autodiscover request asks about, and how much the caller may learn.
//!
//! Decided (documented in the README): an authenticated user gets a mailbox's full
//! settings (display name, DNs, primary address) for their own addresses and for
//! mailboxes they hold FULL_ACCESS on (Outlook adds such mailboxes through
//! Autodiscover); anyone else, anonymous callers included, learns only what a
//! served domain's DNS already says: the URLs and ports. Whether an address exists
//! is told only to a signed-in user of the same organization, so Autodiscover
//! cannot be used to enumerate mailboxes.

use crate::access::login::Session;
use crate::access::mailbox::Actor;
use crate::directory::{Directory, Recipient};
use crate::events::audit::MailboxAction;

/// Longest address accepted (RFC 5321 path limits).
const MAX_ADDRESS: usize = 320;

/// A mailbox the caller may see in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub org_id: String,
    /// User or resource id.
    pub id: String,
    pub display_name: String,
    /// The primary address (lowercase).
    pub primary: String,
}

/// What a request about one address gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The caller's own mailbox or one they hold FULL_ACCESS on.
    Full(Mailbox),
    /// An alias, in another domain of the organization, of a mailbox the caller
    /// may see: its primary address (POX `RedirectAddr`).
    Redirect(String),
    /// A served domain, but the caller learns only the URLs: anonymous, another
    /// organization, or no right on the mailbox.
    Public,
    /// A signed-in user's organization has no mailbox with this address.
    InvalidUser,
    /// No organization here serves the address's domain.
    InvalidDomain,
    /// Not an email address.
    Malformed,
}

/// The domain of a plausible address (`local@domain`, no spaces or controls).
pub fn domain_of(address: &str) -> Option<&str> {
    if address.len() > MAX_ADDRESS || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some(domain)
}

/// Decides what `caller` (None: anonymous) learns about `address`; aliases in
/// another domain of the organization become [`Lookup::Redirect`] when
/// `redirect_aliases` (POX) and are answered with the primary address otherwise.
pub fn lookup(
    directory: &Directory,
    rights: &crate::access::mailbox::MailboxRights,
    caller: Option<&Session>,
    address: &str,
    redirect_aliases: bool,
) -> Lookup {
    let address = address.trim();
    let Some(domain) = domain_of(address) else {
        return Lookup::Malformed;
    };
    let Some(domain_org) = directory.domain_owner(domain) else {
        return Lookup::InvalidDomain;
    };
    let Some(session) = caller.filter(|s| s.org_id == domain_org) else {
        return Lookup::Public;
    };
    let (org, id) = match directory.resolve_address(address) {
        Some(Recipient::User { org, id } | Recipient::Resource { org, id })
            if org == session.org_id =>
        {
            (org, id)
        }
        _ => return Lookup::InvalidUser,
    };
    let actor = Actor::User {
        org_id: &session.org_id,
        user_id: &session.user_id,
    };
    if rights
        .peek(actor, &id, MailboxAction::ReadHierarchy)
        .is_none()
    {
        return Lookup::Public;
    }
    let Some(mailbox) = describe(directory, &org, &id) else {
        return Lookup::InvalidUser;
    };
    let asked_domain = domain.to_ascii_lowercase();
    let primary_domain = mailbox.primary.rsplit_once('@').map(|(_, d)| d);
    if redirect_aliases
        && !mailbox.primary.eq_ignore_ascii_case(address)
        && primary_domain != Some(asked_domain.as_str())
    {
        return Lookup::Redirect(mailbox.primary);
    }
    Lookup::Full(mailbox)
}

/// A user's or resource's name and primary address.
pub fn describe(directory: &Directory, org: &str, id: &str) -> Option<Mailbox> {
    let (display_name, primary) = match directory.describe_user(org, id) {
        Ok(u) => (u.display_name, u.base.email?),
        Err(_) => {
            let r = directory.describe_resource(org, id).ok()?;
            (r.base.name, r.base.email?)
        }
    };
    Some(Mailbox {
        org_id: org.to_string(),
        id: id.to_string(),
        display_name,
        primary,
    })
}

/// The X.500 DN Exchange clients expect for a mailbox (`LegacyDN`, `UserDN`).
pub fn legacy_dn(mailbox: &Mailbox) -> String {
    format!(
        "/o=mailgate/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}",
        mailbox.id
    )
}

/// The mailbox database DN (`MailboxDN`) of the server at `host`.
pub fn mailbox_dn(host: &str) -> String {
    format!(
        "/o=mailgate/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn={host}/cn=Microsoft Private MDB"
    )
}

/// The organization's id as the GUID Exchange calls a deployment id
/// (`m-` + 32 hex digits → 8-4-4-4-12).
pub fn deployment_id(org_id: &str) -> String {
    let hex: String = org_id
        .trim_start_matches("m-")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_of_addresses_and_non_addresses() {
        assert_eq!(domain_of("a@acme.test"), Some("acme.test"));
        assert_eq!(domain_of("\"a@b\"@acme.test"), Some("acme.test"));
        for bad in [
            "",
            "a",
            "@acme.test",
            "a@",
            "a b@acme.test",
            "a@b@",
            "a\u{0}@x",
        ] {
            assert_eq!(domain_of(bad), None, "{bad:?}");
        }
        assert_eq!(domain_of(&format!("{}@x.test", "a".repeat(400))), None);
    }

    #[test]
    fn deployment_ids_are_guids() {
        assert_eq!(
            deployment_id("m-0123456789abcdef0123456789ABCDEF"),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(deployment_id("x").len(), 36);
    }
}

//! Other users' mailboxes the logged-in user holds FULL_ACCESS to, shown in the
//! Other Users namespace (RFC 2342) as `Other Users/<address>/<folder>`. A shared
//! folder is the owner's store folder with its name rewritten to that path, so
//! every command that works by folder id works on it unchanged.

use crate::directory::{Directory, Recipient};
use crate::imap::names::{DELIMITER, OTHER_USERS, is_mail};
use crate::store::{Folder, Store};

/// A mailbox shared with the user: its owner's id and primary address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOwner {
    pub id: String,
    pub address: String,
}

/// Owners in the user's organization that granted them FULL_ACCESS.
pub fn owners(directory: &Directory, org: &str, me: &str) -> Vec<SharedOwner> {
    let mut out: Vec<SharedOwner> = Vec::new();
    let users = directory
        .list_users(org)
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.base);
    let resources = directory
        .list_resources(org)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.base);
    for base in users.chain(resources) {
        let Some(address) = base.email else { continue };
        if base.id != me && directory.mailbox_rights(org, me, &base.id).full_access {
            out.push(SharedOwner {
                id: base.id,
                address,
            });
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// The owner named by an `Other Users/<address>/...` path, if the user may open it.
pub fn owner_of(directory: &Directory, org: &str, me: &str, path: &str) -> Option<SharedOwner> {
    let rest = path.strip_prefix(OTHER_USERS)?.strip_prefix(DELIMITER)?;
    let address = rest.split(DELIMITER).next()?.to_ascii_lowercase();
    let (owner_org, id) = match directory.resolve_address(&address)? {
        Recipient::User { org, id } | Recipient::Resource { org, id } => (org, id),
        _ => return None,
    };
    (owner_org == org && id != me && directory.mailbox_rights(org, me, &id).full_access)
        .then_some(SharedOwner { id, address })
}

/// The owner's mail folders, renamed into the Other Users namespace.
pub async fn folders(store: &dyn Store, owner: &SharedOwner) -> crate::store::Result<Vec<Folder>> {
    Ok(store
        .folders(&owner.id)
        .await?
        .into_iter()
        .filter(is_mail)
        .map(|mut f| {
            f.name = format!(
                "{OTHER_USERS}{DELIMITER}{}{DELIMITER}{}",
                owner.address, f.name
            );
            f
        })
        .collect())
}

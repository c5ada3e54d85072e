//! Other users' mailboxes the logged-in user holds FULL_ACCESS to, shown in the
//! Other Users namespace (RFC 2342) as `Other Users/<address>/<folder>`. A shared
//! folder is the owner's store folder with its name rewritten to that path, so
//! every command that works by folder id works on it unchanged. Whether the user
//! may is `access::mailbox`'s decision: listing asks without an audit record,
//! opening a folder by name is audited (allowed or not).

use crate::access::mailbox::{Actor, MailboxRights, Object, Origin};
use crate::directory::{Directory, Recipient};
use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::names::{DELIMITER, OTHER_USERS, is_mail};
use crate::store::{Folder, Store};

/// A mailbox shared with the user: its owner's id and primary address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOwner {
    pub id: String,
    pub address: String,
}

/// Owners in the user's organization that granted them FULL_ACCESS.
pub fn owners(
    rights: &MailboxRights,
    directory: &Directory,
    org: &str,
    me: &str,
) -> Vec<SharedOwner> {
    let actor = Actor::User {
        org_id: org,
        user_id: me,
    };
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
        if base.id != me
            && rights
                .peek(actor, &base.id, MailboxAction::ReadHierarchy)
                .is_some()
        {
            out.push(SharedOwner {
                id: base.id,
                address,
            });
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// The owner named by an `Other Users/<address>/...` path, if the user may open it
/// (the decision is audited).
pub fn owner_of(
    rights: &MailboxRights,
    directory: &Directory,
    actor: Actor<'_>,
    path: &str,
    origin: Origin<'_>,
) -> Option<SharedOwner> {
    let Actor::User {
        org_id: org,
        user_id: me,
    } = actor
    else {
        return None;
    };
    let rest = path.strip_prefix(OTHER_USERS)?.strip_prefix(DELIMITER)?;
    let address = rest.split(DELIMITER).next()?.to_ascii_lowercase();
    let (owner_org, id) = match directory.resolve_address(&address)? {
        Recipient::User { org, id } | Recipient::Resource { org, id } => (org, id),
        _ => return None,
    };
    if owner_org != org || id == me {
        return None;
    }
    let object = Object {
        kind: Some(ObjectType::Folder),
        folder_path: Some(path),
        ..Object::default()
    };
    rights
        .authorize(actor, &id, MailboxAction::ReadHierarchy, object, origin)
        .map(|_| SharedOwner { id, address })
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

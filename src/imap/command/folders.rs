//! CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.

use imap_codec::imap_types::mailbox::Mailbox;

use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::names::{DELIMITER, valid_new_name};
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::StoreError;

/// CREATE, with any missing superior folders (RFC 9051 6.3.4).
pub async fn create(imap: &mut Imap, mailbox: &Mailbox<'_>) -> Done {
    let Some(name) = imap.parse_name(mailbox) else {
        return Done::no("[CANNOT] Mailbox name is not valid");
    };
    if !valid_new_name(&name) {
        return Done::no("[CANNOT] Invalid mailbox name");
    }
    let existing = match imap.ctx.store.folders(imap.mailbox_id()).await {
        Ok(f) => f,
        Err(e) => return store_failure(e),
    };
    if existing.iter().any(|f| f.name == name) {
        return Done::no("[ALREADYEXISTS] Mailbox already exists");
    }
    let orphans = match imap.ctx.subscriptions.list(imap.mailbox_id()).await {
        Ok(o) => o,
        Err(e) => return store_failure(e),
    };
    let mut path = String::new();
    for (i, level) in name.split(DELIMITER).enumerate() {
        if i > 0 {
            path.push(DELIMITER);
        }
        path.push_str(level);
        if existing.iter().any(|f| f.name == path) && path != name {
            continue;
        }
        match imap.ctx.store.create_folder(imap.mailbox_id(), &path).await {
            Ok(folder) => {
                imap.audit(MailboxAction::Create, ObjectType::Folder, &folder, None);
                // CREATE does not subscribe (RFC 9051 6.3.4), unless the name was
                // subscribed before it existed; the store creates folders
                // subscribed, as Exchange shows every folder.
                let keep = orphans.contains(&path);
                let subscribed = match keep {
                    true => {
                        imap.ctx
                            .subscriptions
                            .remove(imap.mailbox_id(), &path)
                            .await
                    }
                    false => imap.ctx.store.set_subscribed(folder.id, false).await,
                };
                if let Err(e) = subscribed {
                    return store_failure(e);
                }
            }
            Err(StoreError::Conflict(_)) if path != name => {}
            Err(StoreError::Conflict(_)) => {
                return Done::no("[ALREADYEXISTS] Mailbox already exists");
            }
            Err(e) => return store_failure(e),
        }
    }
    Done::ok("CREATE completed")
}

/// DELETE: not for default folders, nor for folders with subfolders.
pub async fn delete(imap: &mut Imap, mailbox: &Mailbox<'_>) -> Done {
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(done) => return done,
    };
    if folder.mailbox_id != imap.mailbox_id() {
        return Done::no("[NOPERM] Folders of shared mailboxes are managed by their owner");
    }
    if folder.kind.is_some() {
        return Done::no("[CANNOT] Default folders cannot be deleted");
    }
    let prefix = format!("{}{DELIMITER}", folder.name);
    match imap.ctx.store.folders(imap.mailbox_id()).await {
        Ok(all) if all.iter().any(|f| f.name.starts_with(&prefix)) => {
            return Done::no("[HASCHILDREN] Delete the subfolders first");
        }
        Ok(_) => {}
        Err(e) => return store_failure(e),
    }
    if imap
        .selected
        .as_ref()
        .is_some_and(|v| v.folder.id == folder.id)
    {
        imap.deselect();
    }
    // The subscription outlives the folder (RFC 9051 6.3.7).
    if folder.subscribed
        && let Err(e) = imap
            .ctx
            .subscriptions
            .add(imap.mailbox_id(), &folder.name)
            .await
    {
        return store_failure(e);
    }
    match imap.ctx.store.delete_folder(folder.id).await {
        Ok(()) => {
            imap.audit(MailboxAction::Delete, ObjectType::Folder, &folder, None);
            Done::ok("DELETE completed")
        }
        Err(StoreError::NotFound(_)) => Done::no("[NONEXISTENT] No such mailbox"),
        Err(e) => store_failure(e),
    }
}

/// RENAME; subfolders move along. INBOX and the default folders keep their names.
pub async fn rename(imap: &mut Imap, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Done {
    let folder = match imap.folder(from).await {
        Ok(f) => f,
        Err(done) => return done,
    };
    if folder.mailbox_id != imap.mailbox_id() {
        return Done::no("[NOPERM] Folders of shared mailboxes are managed by their owner");
    }
    if folder.kind.is_some() {
        return Done::no("[CANNOT] Default folders cannot be renamed");
    }
    let Some(new_name) = imap.parse_name(to) else {
        return Done::no("[CANNOT] Mailbox name is not valid");
    };
    if !valid_new_name(&new_name) {
        return Done::no("[CANNOT] Invalid mailbox name");
    }
    match imap.ctx.store.folders(imap.mailbox_id()).await {
        Ok(all) if all.iter().any(|f| f.name == new_name) => {
            return Done::no("[ALREADYEXISTS] Target mailbox already exists");
        }
        Ok(_) => {}
        Err(e) => return store_failure(e),
    }
    match imap.ctx.store.rename_folder(folder.id, &new_name).await {
        Ok(()) => {
            imap.audit(MailboxAction::Update, ObjectType::Folder, &folder, None);
            Done::ok("RENAME completed")
        }
        Err(StoreError::Conflict(_)) => Done::no("[ALREADYEXISTS] Target mailbox already exists"),
        Err(StoreError::NotFound(_)) => Done::no("[NONEXISTENT] No such mailbox"),
        Err(e) => store_failure(e),
    }
}

/// SUBSCRIBE / UNSUBSCRIBE: of a folder, its flag in the store; of a name with
/// no folder (RFC 9051 6.3.7 allows it), an entry in `subscriptions`.
pub async fn subscribe(imap: &mut Imap, mailbox: &Mailbox<'_>, on: bool) -> Done {
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(_) => return subscribe_absent(imap, mailbox, on).await,
    };
    if folder.mailbox_id != imap.mailbox_id() {
        return Done::no("[NOPERM] Shared folders cannot be subscribed to");
    }
    match imap.ctx.store.set_subscribed(folder.id, on).await {
        Ok(()) if on => Done::ok("SUBSCRIBE completed"),
        Ok(()) => Done::ok("UNSUBSCRIBE completed"),
        Err(e) => store_failure(e),
    }
}

/// SUBSCRIBE / UNSUBSCRIBE of a name with no folder of the user's own.
async fn subscribe_absent(imap: &mut Imap, mailbox: &Mailbox<'_>, on: bool) -> Done {
    let name = match imap.parse_name(mailbox) {
        Some(n) if valid_new_name(&n) && !n.starts_with(crate::imap::names::OTHER_USERS) => n,
        _ => return Done::no("[NONEXISTENT] No such mailbox"),
    };
    let orphans = &imap.ctx.subscriptions;
    if on {
        return match orphans.add(imap.mailbox_id(), &name).await {
            Ok(true) => Done::ok("SUBSCRIBE completed"),
            Ok(false) => Done::no("[LIMIT] Too many subscriptions to absent mailboxes"),
            Err(e) => store_failure(e),
        };
    }
    match orphans.list(imap.mailbox_id()).await {
        Ok(list) if list.contains(&name) => match orphans.remove(imap.mailbox_id(), &name).await {
            Ok(()) => Done::ok("UNSUBSCRIBE completed"),
            Err(e) => store_failure(e),
        },
        Ok(_) => Done::no("[NONEXISTENT] Not subscribed"),
        Err(e) => store_failure(e),
    }
}

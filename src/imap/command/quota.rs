//! GETQUOTA and GETQUOTAROOT (RFC 9208): one root, `""`, per user with STORAGE.

use imap_codec::imap_types::mailbox::Mailbox;

use crate::imap::session::{Done, Imap, store_failure};

async fn quota_line(imap: &mut Imap) -> Result<(), Done> {
    let q = imap
        .ctx
        .store
        .quota(imap.mailbox_id())
        .await
        .map_err(store_failure)?;
    let line = format!(
        "QUOTA \"\" (STORAGE {} {})",
        q.used.div_ceil(1024),
        q.limit / 1024
    );
    imap.untagged(&line);
    Ok(())
}

/// GETQUOTA of the single root `""`.
pub async fn get_quota(imap: &mut Imap, root: &[u8]) -> Done {
    if !root.is_empty() {
        return Done::no("[NONEXISTENT] No such quota root");
    }
    match quota_line(imap).await {
        Ok(()) => Done::ok("GETQUOTA completed"),
        Err(done) => done,
    }
}

/// GETQUOTAROOT: every folder is under the user's root `""`.
pub async fn get_quota_root(imap: &mut Imap, mailbox: &Mailbox<'_>) -> Done {
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(done) => return done,
    };
    let line = format!("QUOTAROOT {} \"\"", imap.wire_name(&folder.name));
    imap.untagged(&line);
    match quota_line(imap).await {
        Ok(()) => Done::ok("GETQUOTAROOT completed"),
        Err(done) => done,
    }
}

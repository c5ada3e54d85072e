//! APPEND (RFC 9051 6.3.12) with APPENDUID (UIDPLUS), APPENDLIMIT and quota.

use std::sync::Arc;

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::{FolderRef, Refused, Target, normalize_flags};

/// Flags as the store keeps them; `\Recent` is the server's, never the client's.
pub fn flag_strings(flags: &[Flag<'_>]) -> Vec<String> {
    let v: Vec<String> = flags
        .iter()
        .map(|f| f.to_string())
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    normalize_flags(&v)
}

/// Stores a message in a folder of the user's mailbox.
pub async fn append(
    imap: &mut Imap,
    mailbox: &Mailbox<'_>,
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    message: &LiteralOrLiteral8<'_>,
) -> Done {
    let data: &[u8] = match message {
        LiteralOrLiteral8::Literal(l) => l.data(),
        LiteralOrLiteral8::Literal8(l) => &l.data,
    };
    if data.len() > imap.ctx.max_message_size as usize {
        return Done::no(format!(
            "[TOOBIG] Message exceeds APPENDLIMIT={}",
            imap.ctx.max_message_size
        ));
    }
    if data.is_empty() {
        return Done::no("Empty message");
    }
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(_) => return Done::no("[TRYCREATE] No such mailbox"),
    };
    let internal = date
        .map(|d| d.as_ref().timestamp_millis())
        .unwrap_or_else(crate::store::now_ms);
    let target = Target {
        folder: FolderRef::Id(folder.id),
        flags: flag_strings(flags),
    };
    let result = imap
        .ctx
        .store
        .deliver(Arc::from(data), internal, vec![target])
        .await;
    match result.map(|mut v| v.pop()) {
        Ok(Some(Ok(stored))) => {
            imap.audit(
                MailboxAction::Create,
                ObjectType::Message,
                &folder,
                Some(stored.item_id.clone()),
            );
            Done::ok(format!(
                "[APPENDUID {} {}] APPEND completed",
                stored.uidvalidity, stored.uid
            ))
        }
        Ok(Some(Err(Refused::OverQuota))) => Done::no("[OVERQUOTA] Mailbox is over quota"),
        Ok(Some(Err(Refused::NoSuchFolder))) | Ok(None) => Done::no("[TRYCREATE] No such mailbox"),
        Err(e) => store_failure(e),
    }
}

//! APPEND (RFC 9051 6.3.12) and MULTIAPPEND (RFC 3502) with APPENDUID (UIDPLUS),
//! APPENDLIMIT and quota.

use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

use crate::events::audit::{MailboxAction, ObjectType};
use crate::imap::response::compact_set;
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::{NewMessage, Refused, normalize_flags};

/// Flags as the store keeps them; `\Recent` is the server's, never the client's.
pub fn flag_strings(flags: &[Flag<'_>]) -> Vec<String> {
    let v: Vec<String> = flags
        .iter()
        .map(|f| f.to_string())
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    normalize_flags(&v)
}

/// One message of an APPEND as imap-codec parsed it: flags, date and literal.
pub type Spec<'a> = (
    &'a [Flag<'a>],
    Option<&'a DateTime>,
    &'a LiteralOrLiteral8<'a>,
);

/// A message the client sent, checked against APPENDLIMIT, ready for the store.
fn new_message(imap: &Imap, (flags, date, message): Spec<'_>) -> Result<NewMessage, Done> {
    let data: &[u8] = match message {
        LiteralOrLiteral8::Literal(l) => l.data(),
        LiteralOrLiteral8::Literal8(l) => &l.data,
    };
    if data.len() > imap.ctx.max_message_size as usize {
        return Err(Done::no(format!(
            "[TOOBIG] Message exceeds APPENDLIMIT={}",
            imap.ctx.max_message_size
        )));
    }
    if data.is_empty() {
        return Err(Done::no("Empty message"));
    }
    // Binary parts sent as literal8 are kept as base64 (RFC 3516 4.4), so FETCH
    // BODY can return every part in a plain literal.
    let converted = match message {
        LiteralOrLiteral8::Literal8(_) => crate::imap::content::binary_parts_to_base64(data),
        LiteralOrLiteral8::Literal(_) => None,
    };
    Ok(NewMessage {
        body: converted.map_or_else(|| Arc::from(data), Arc::from),
        internal_date: date
            .map(|d| d.as_ref().timestamp_millis())
            .unwrap_or_else(crate::clock::now_ms),
        flags: flag_strings(flags),
        properties: Vec::new(),
    })
}

/// The messages of an APPEND: the one imap-codec parsed and, for MULTIAPPEND
/// (RFC 3502), those of the further single-message APPENDs `multiappend` split off.
fn messages(imap: &Imap, first: Spec<'_>, more: &[Vec<u8>]) -> Result<Vec<NewMessage>, Done> {
    let mut out = vec![new_message(imap, first)?];
    for raw in more {
        let cmd = match CommandCodec::default().decode(raw) {
            Ok((&[], cmd)) => cmd,
            _ => return Err(Done::bad("Invalid message in MULTIAPPEND")),
        };
        let CommandBody::Append {
            flags,
            date,
            message,
            ..
        } = &cmd.body
        else {
            return Err(Done::bad("Invalid message in MULTIAPPEND"));
        };
        out.push(new_message(imap, (flags, date.as_ref(), message))?);
    }
    Ok(out)
}

/// Stores one message (APPEND) or several (MULTIAPPEND) in a folder of the user's
/// mailbox: all of them or, if any is refused, none.
pub async fn append(
    imap: &mut Imap,
    mailbox: &Mailbox<'_>,
    first: Spec<'_>,
    more: &[Vec<u8>],
) -> Done {
    let messages = match messages(imap, first, more) {
        Ok(m) => m,
        Err(done) => return done,
    };
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(_) => return Done::no("[TRYCREATE] No such mailbox"),
    };
    match imap.ctx.store.append_all(folder.id, messages).await {
        Ok(Ok(stored)) => {
            for s in &stored {
                imap.audit(
                    MailboxAction::Create,
                    ObjectType::Message,
                    &folder,
                    Some(s.item_id.clone()),
                );
            }
            let uids: Vec<u32> = stored.iter().map(|s| s.uid).collect();
            let uidvalidity = stored.first().map(|s| s.uidvalidity).unwrap_or(0);
            Done::ok(format!(
                "[APPENDUID {uidvalidity} {}] APPEND completed",
                compact_set(&uids)
            ))
        }
        Ok(Err(Refused::OverQuota)) => Done::no("[OVERQUOTA] Mailbox is over quota"),
        Ok(Err(Refused::NoSuchFolder)) => Done::no("[TRYCREATE] No such mailbox"),
        Err(e) => store_failure(e),
    }
}

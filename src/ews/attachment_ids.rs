//! Attachment ids: which attachment of a stored message an EWS AttachmentId
//! names. An id is the item's id, a digest of the attachment's part (header and
//! body) and which of the parts with that digest it is, in document order; not
//! its part number, which changes when an attachment before it is removed
//! (exchangelib detaches one attachment per DeleteAttachment, holding ids it took
//! before). Attachments of attached messages have ids too, so a client can open
//! them in turn.

use super::ids::EwsId;
use super::xml::Element;
use crate::message::{Attachment, Children, Message, PartPath};

/// The attachments of `msg` and, recursively, of the messages attached to it,
/// with paths from `msg`'s root (an attached message's parts are numbered under
/// its part, as IMAP numbers them).
pub fn all_attachments(msg: &Message<'_>) -> Vec<Attachment> {
    let mut out = Vec::new();
    for a in msg.attachments() {
        let inner = (a.content_type == "message/rfc822")
            .then(|| msg.part(&a.path.0))
            .flatten()
            .filter(|p| matches!(p.children, Children::Message(_)));
        let nested: Vec<Attachment> = inner
            .map(|p| {
                let body = &msg.raw()[p.body.clone()];
                all_attachments(&Message::parse(body))
                    .into_iter()
                    .map(|mut n| {
                        n.path = PartPath([a.path.0.clone(), n.path.0].concat());
                        n
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(a);
        out.extend(nested);
    }
    out
}

/// A short digest of a part's bytes (header and body).
fn digest(msg: &Message<'_>, path: &PartPath) -> String {
    let Some(bytes) = msg
        .part(&path.0)
        .and_then(|p| msg.raw().get(p.header.start..p.body.end))
    else {
        return String::new();
    };
    let key = crate::store::change_key(&String::from_utf8_lossy(bytes), 0);
    key.rsplit('-').next().unwrap_or_default().to_string()
}

/// The ids of the attachments at `paths` of `msg`, the message of item
/// `item_id`, in order: every attachment's part is hashed once, however many
/// ids are asked.
pub fn attachment_ids(item_id: &str, msg: &Message<'_>, paths: &[&PartPath]) -> Vec<String> {
    let all: Vec<(PartPath, String)> = all_attachments(msg)
        .into_iter()
        .map(|a| {
            let d = digest(msg, &a.path);
            (a.path, d)
        })
        .collect();
    paths
        .iter()
        .map(|path| {
            let d = all
                .iter()
                .find(|(p, _)| p == *path)
                .map_or_else(|| digest(msg, path), |(_, d)| d.clone());
            let nth = all
                .iter()
                .take_while(|(p, _)| p != *path)
                .filter(|(_, e)| *e == d)
                .count();
            EwsId::Attachment(format!("{item_id}:{d}:{nth}")).encode()
        })
        .collect()
}

/// What an attachment id names.
pub struct AttachmentRef {
    /// The item's id.
    pub item: String,
    digest: String,
    nth: usize,
}

impl AttachmentRef {
    /// Reads an AttachmentId's `Id`; `None` when it is not one of ours.
    pub fn parse(id: &str) -> Option<AttachmentRef> {
        let EwsId::Attachment(v) = EwsId::decode(id).ok()? else {
            return None;
        };
        let mut it = v.splitn(3, ':');
        Some(AttachmentRef {
            item: it.next()?.to_string(),
            digest: it.next()?.to_string(),
            nth: it.next()?.parse().ok()?,
        })
    }

    /// The attachment of `msg` this id names, if it is still there.
    pub fn find(&self, msg: &Message<'_>) -> Option<Attachment> {
        all_attachments(msg)
            .into_iter()
            .filter(|a| digest(msg, &a.path) == self.digest)
            .nth(self.nth)
    }

    /// The `ItemId` element of the item holding it.
    pub fn item_element(&self) -> Element {
        Element {
            name: "ItemId".into(),
            attrs: vec![("Id".into(), EwsId::Item(self.item.clone()).encode())],
            ..Element::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::edit::tests::file;
    use crate::message::edit::{add_parts, remove_part};

    #[test]
    fn ids_survive_the_removal_of_other_attachments() {
        let raw = add_parts(
            b"Subject: s\r\n\r\nbody\r\n",
            &[
                file("a", b"A"),
                file("e", b""),
                file("e", b""),
                file("b", b"B"),
            ],
        );
        let msg = Message::parse(&raw);
        let list = msg.attachments();
        let paths: Vec<&PartPath> = list.iter().map(|a| &a.path).collect();
        let ids = attachment_ids("item", &msg, &paths);
        assert_eq!(ids.len(), 4);
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            4
        );
        // Remove "a": the others renumber, their ids still find them.
        let after = remove_part(&raw, &list[0].path.0).unwrap();
        let now = Message::parse(&after);
        let b = AttachmentRef::parse(&ids[3]).unwrap().find(&now).unwrap();
        assert_eq!(b.file_name.as_deref(), Some("b"));
        assert!(AttachmentRef::parse(&ids[0]).unwrap().find(&now).is_none());
        assert_eq!(AttachmentRef::parse(&ids[3]).unwrap().item, "item");
        assert!(AttachmentRef::parse("garbage").is_none());
    }
}

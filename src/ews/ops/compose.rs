//! Messages from EWS fields and back: the RFC 5322 message a `t:Message`'s fields
//! describe (when it comes without MimeContent), the fields a stored draft shows
//! as (to edit and rebuild it), the IMAP flags a new item starts with, and the
//! envelope recipients of a message to send (Bcc kept out of its header).

use crate::ews::context::Context;
use crate::ews::item::{Addr, category_to_keyword};
use crate::ews::ops::shape::Extended;
use crate::ews::ops::truthy;
use crate::ews::xml::Element;

pub(super) fn mailbox_addrs(el: Option<&Element>) -> Vec<Addr> {
    el.map(|list| {
        list.children
            .iter()
            .filter_map(|m| {
                let address = m.child_text("EmailAddress")?.to_string();
                Some(Addr {
                    name: m
                        .child_text("Name")
                        .map(str::to_string)
                        .filter(|n| !n.is_empty()),
                    address,
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

pub(super) fn builder_addrs(
    list: &[Addr],
) -> Vec<mail_builder::headers::address::Address<'static>> {
    list.iter()
        .map(|a| match &a.name {
            Some(n) => (n.clone(), a.address.clone()).into(),
            None => a.address.clone().into(),
        })
        .collect()
}

/// Builds RFC 5322 bytes from a `t:Message`'s fields (when it has no MimeContent).
pub(super) fn compose(ctx: &Context<'_>, msg: &Element, owner: &str) -> Vec<u8> {
    // Exchange keeps the first 255 characters of a subject (PR_SUBJECT's limit).
    let subject: String = msg
        .child_text("Subject")
        .unwrap_or("")
        .chars()
        .take(255)
        .collect();
    let mut b = mail_builder::MessageBuilder::new()
        .subject(subject)
        .date(crate::clock::now_secs());
    let from = msg
        .child("From")
        .map(|f| mailbox_addrs(Some(f)))
        .unwrap_or_default();
    let from = if from.is_empty() {
        ctx.ews
            .directory
            .describe_user(ctx.org_id(), owner)
            .ok()
            .and_then(|u| {
                u.base.email.map(|e| {
                    vec![Addr {
                        name: Some(u.display_name).filter(|n| !n.is_empty()),
                        address: e,
                    }]
                })
            })
            .unwrap_or_default()
    } else {
        from
    };
    if !from.is_empty() {
        b = b.from(builder_addrs(&from));
    }
    for (name, field) in [
        ("ToRecipients", 0),
        ("CcRecipients", 1),
        ("BccRecipients", 2),
    ] {
        let list = mailbox_addrs(msg.child(name));
        if list.is_empty() {
            continue;
        }
        let a = builder_addrs(&list);
        b = match field {
            0 => b.to(a),
            1 => b.cc(a),
            _ => b.bcc(a),
        };
    }
    let reply_to = mailbox_addrs(msg.child("ReplyTo"));
    if !reply_to.is_empty() {
        b = b.reply_to(builder_addrs(&reply_to));
    }
    let raw = |v: &str| mail_builder::headers::raw::Raw::new(v.trim().to_string());
    // Kept as the client wrote them, unfolded (a builder would refold them and
    // change their whitespace): EWS clients, exchangelib among them, treat these
    // as opaque text, and threading compares them byte for byte.
    let mut verbatim = Vec::new();
    for (element, header) in [
        ("InternetMessageId", "Message-ID"),
        ("InReplyTo", "In-Reply-To"),
        ("References", "References"),
    ] {
        if let Some(v) = msg.child_text(element).filter(|v| !v.trim().is_empty()) {
            let line: String = v
                .trim()
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect();
            verbatim.extend_from_slice(format!("{header}: {line}\r\n").as_bytes());
        }
    }
    if let Some(imp) = msg.child_text("Importance").filter(|i| *i != "Normal") {
        b = b.header("Importance", raw(imp));
    }
    // RFC 2156's spelling of the MAPI sensitivities, so other clients see it too.
    let sensitivity = match msg.child_text("Sensitivity").map(str::trim) {
        Some("Personal") => Some("Personal"),
        Some("Private") => Some("Private"),
        Some("Confidential") => Some("Company-Confidential"),
        _ => None,
    };
    if let Some(v) = sensitivity {
        b = b.header("Sensitivity", raw(v));
    }
    if truthy(msg.child_text("IsReadReceiptRequested"))
        && let Some(a) = from.first()
    {
        b = b.header("Disposition-Notification-To", raw(&a.address));
    }
    let body = msg.child("Body");
    let text = body.map(|b| b.text.clone()).unwrap_or_default();
    b = if body.and_then(|b| b.attr("BodyType")) == Some("HTML") {
        b.html_body(text)
    } else {
        b.text_body(text)
    };
    let built = b.write_to_vec().unwrap_or_default();
    // The builder makes a Message-ID of its own; the client's replaces it.
    let built = match msg
        .child_text("InternetMessageId")
        .filter(|v| !v.trim().is_empty())
    {
        Some(_) => strip_header(&built, b"message-id:"),
        None => built,
    };
    [verbatim, built].concat()
}

/// `raw` without its `name` fields (continuation lines included).
pub(super) fn strip_header(raw: &[u8], name: &[u8]) -> Vec<u8> {
    let header_end = crate::message::parse(raw).header.end.min(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in raw[..header_end].split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name);
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[header_end..]);
    out
}

/// The IMAP flags a new item starts with: IsRead, categories, PR_MESSAGE_FLAGS
/// (0x0E07: read 1, unsent 8), follow-up flag 0x1090.
pub(super) fn initial_flags(msg: &Element, draft_default: bool) -> Vec<String> {
    let mut flags = Vec::new();
    let mut draft = draft_default;
    if truthy(msg.child_text("IsRead")) {
        flags.push("\\Seen".to_string());
    }
    for p in msg.children_named("ExtendedProperty") {
        let Some(uri) = p.child("ExtendedFieldURI") else {
            continue;
        };
        let value: u32 = p
            .child_text("Value")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match Extended::parse(uri).tag {
            Some(0x0E07) => {
                if value & 1 != 0 {
                    flags.push("\\Seen".into());
                }
                draft = value & 8 != 0;
            }
            Some(0x1090) if value == 2 => flags.push("\\Flagged".into()),
            _ => {}
        }
    }
    if draft {
        flags.push("\\Draft".into());
    }
    if let Some(cats) = msg.child("Categories") {
        flags.extend(
            cats.children
                .iter()
                .map(|c| category_to_keyword(c.text.trim())),
        );
    }
    crate::store::normalize_flags(&flags)
}

/// The message header with every `Bcc:` field (and its continuation lines)
/// removed: Bcc recipients travel in the envelope only.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    strip_header(raw, b"bcc:")
}

/// Every envelope recipient of a message: its To, Cc and Bcc headers plus the
/// `BccRecipients` sent beside the MIME (Thunderbird keeps Bcc out of it).
pub(super) fn recipients(raw: &[u8], msg: Option<&Element>) -> Vec<String> {
    let parsed = crate::message::Message::parse(raw);
    let mut out: Vec<String> = ["To", "Cc", "Bcc"]
        .iter()
        .flat_map(|h| {
            crate::message::mailboxes(&parsed.addresses(h))
                .map(|m| m.address())
                .collect::<Vec<_>>()
        })
        .collect();
    if let Some(m) = msg {
        out.extend(
            mailbox_addrs(m.child("BccRecipients"))
                .into_iter()
                .map(|a| a.address),
        );
    }
    out
}

pub(super) fn mailbox_list(name: &str, list: &[Addr]) -> Element {
    let mailbox = |a: &Addr| {
        let mut children = vec![Element {
            name: "EmailAddress".into(),
            text: a.address.clone(),
            ..Element::default()
        }];
        if let Some(n) = &a.name {
            children.push(Element {
                name: "Name".into(),
                text: n.clone(),
                ..Element::default()
            });
        }
        Element {
            name: "Mailbox".into(),
            children,
            ..Element::default()
        }
    };
    Element {
        name: name.into(),
        children: list.iter().map(mailbox).collect(),
        ..Element::default()
    }
}

/// A draft as the `t:Message` fields it was (or could have been) created from.
pub(super) fn draft_fields(msg: &crate::message::Message<'_>) -> Element {
    let s = crate::ews::item::Summary::of(msg);
    let text = |name: &str, value: String| Element {
        name: name.into(),
        text: value,
        ..Element::default()
    };
    let bodies = msg.bodies();
    let (kind, body) = match (bodies.html, bodies.text) {
        (Some(h), _) => ("HTML", h.part.text(msg.raw())),
        (None, Some(t)) => ("Text", t.part.text(msg.raw())),
        (None, None) => ("Text", String::new()),
    };
    let mut body = text("Body", body);
    body.attrs.push(("BodyType".into(), kind.into()));
    let mut children = vec![
        text("Subject", s.subject.clone()),
        body,
        text("Importance", s.importance.to_string()),
        mailbox_list("ToRecipients", &s.to),
        mailbox_list("CcRecipients", &s.cc),
        mailbox_list("BccRecipients", &s.bcc),
        mailbox_list("From", &s.from),
        mailbox_list("ReplyTo", &s.reply_to),
    ];
    for (name, value) in [
        ("InternetMessageId", &s.message_id),
        ("InReplyTo", &s.in_reply_to),
        ("References", &s.references),
    ] {
        if let Some(v) = value {
            children.push(text(name, v.clone()));
        }
    }
    Element {
        name: "Message".into(),
        children,
        ..Element::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse;

    #[test]
    fn thunderbird_draft_flags_and_categories_on_create() {
        let msg = parse(br#"<Message><MimeContent>eA==</MimeContent><IsRead>true</IsRead><ExtendedProperty><ExtendedFieldURI PropertyTag="3591" PropertyType="Integer"/><Value>9</Value></ExtendedProperty><Categories><String>Red</String></Categories></Message>"#).unwrap();
        assert_eq!(initial_flags(&msg, false), ["\\Draft", "\\Seen", "Red"]);
        let plain = parse(b"<Message><Subject>x</Subject></Message>").unwrap();
        assert_eq!(initial_flags(&plain, true), ["\\Draft"]);
    }
}

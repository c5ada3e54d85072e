//! Response objects of CreateItem: `ReplyToItem`, `ReplyAllToItem` and
//! `ForwardItem` become the `t:Message` they describe (recipients from the
//! original unless given, a prefixed subject, threading headers, the new text over
//! the quoted original), which CreateItem then saves or sends like any message.
//! Once sent, the original is marked `\Answered` or `$Forwarded`, as IMAP clients
//! mark what they answer.

use super::item::{Found, open_item, stored_body};
use crate::events::audit::MailboxAction;
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::item::{Addr, Summary, xsd_datetime};
use crate::ews::xml::Element;

/// Which response a response object asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reply,
    ReplyAll,
    Forward,
}

impl Kind {
    /// The kind of a CreateItem child element, if it is a response object.
    pub fn of(element: &str) -> Option<Kind> {
        Some(match element {
            "ReplyToItem" => Kind::Reply,
            "ReplyAllToItem" => Kind::ReplyAll,
            "ForwardItem" => Kind::Forward,
            _ => return None,
        })
    }

    /// The IMAP flag the original gets once the response is sent.
    pub fn marks_with(self) -> &'static str {
        match self {
            Kind::Reply | Kind::ReplyAll => "\\Answered",
            Kind::Forward => "$Forwarded",
        }
    }
}

/// The message a response object describes, and the original it answers.
pub struct Response {
    pub message: Element,
    pub original: Found,
}

fn leaf(name: &str, text: String) -> Element {
    Element {
        name: name.into(),
        text,
        ..Element::default()
    }
}

fn mailboxes(name: &str, list: &[Addr]) -> Element {
    let mailbox = |a: &Addr| Element {
        name: "Mailbox".into(),
        children: std::iter::once(leaf("EmailAddress", a.address.clone()))
            .chain(a.name.clone().map(|n| leaf("Name", n)))
            .collect(),
        ..Element::default()
    };
    Element {
        name: name.into(),
        children: list.iter().map(mailbox).collect(),
        ..Element::default()
    }
}

/// "Re: x" for a reply to "x" (not "Re: Re: x"); "Fw: x" for a forward.
fn subject(kind: Kind, original: &str) -> String {
    let prefix = match kind {
        Kind::Reply | Kind::ReplyAll => "RE: ",
        Kind::Forward => "FW: ",
    };
    let has = original
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix));
    if has {
        original.to_string()
    } else {
        format!("{prefix}{original}")
    }
}

/// Who a reply goes to when the client names no one: the original's Reply-To or
/// From; a reply to all adds its To and Cc, without the replying mailbox itself.
fn default_recipients(kind: Kind, s: &Summary, me: &str) -> (Vec<Addr>, Vec<Addr>) {
    let author = if s.reply_to.is_empty() {
        s.from.clone()
    } else {
        s.reply_to.clone()
    };
    let not_me = |a: &&Addr| !a.address.eq_ignore_ascii_case(me);
    match kind {
        Kind::Forward => (Vec::new(), Vec::new()),
        Kind::Reply => (author, Vec::new()),
        Kind::ReplyAll => {
            let mut to = author;
            to.extend(s.to.iter().filter(not_me).cloned());
            (to, s.cc.iter().filter(not_me).cloned().collect())
        }
    }
}

/// The original's text under a header block, as Outlook quotes it.
fn quoted(s: &Summary, text: &str) -> String {
    let names = |l: &[Addr]| {
        l.iter()
            .map(|a| match &a.name {
                Some(n) => format!("{n} <{}>", a.address),
                None => a.address.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = String::from("\n\n-----Original Message-----\n");
    out.push_str(&format!("From: {}\n", names(&s.from)));
    if let Some(t) = s.sent {
        out.push_str(&format!("Sent: {}\n", xsd_datetime(t)));
    }
    out.push_str(&format!("To: {}\n", names(&s.to)));
    if !s.cc.is_empty() {
        out.push_str(&format!("Cc: {}\n", names(&s.cc)));
    }
    out.push_str(&format!("Subject: {}\n\n", s.subject));
    out.push_str(text);
    out
}

/// The original's attachments as the `t:Attachments` of a forward (a forward
/// carries them; a reply does not), for CreateItem to attach as it attaches any.
fn forwarded_attachments(msg: &crate::message::Message<'_>) -> Option<Element> {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let raw = msg.raw();
    let list: Vec<Element> = msg
        .attachments()
        .iter()
        .filter_map(|a| {
            let part = msg.part(&a.path.0)?;
            let content = part
                .decoded(raw)
                .unwrap_or_else(|_| raw[part.body.clone()].to_vec());
            let name = leaf(
                "Name",
                a.file_name.clone().unwrap_or_else(|| "attachment".into()),
            );
            Some(if a.content_type == "message/rfc822" {
                let inner = Element {
                    name: "Message".into(),
                    children: vec![leaf("MimeContent", b64(&content))],
                    ..Element::default()
                };
                Element {
                    name: "ItemAttachment".into(),
                    children: vec![name, inner],
                    ..Element::default()
                }
            } else {
                let mut children = vec![name, leaf("ContentType", a.content_type.clone())];
                children.extend(a.content_id.clone().map(|c| leaf("ContentId", c)));
                children.push(leaf("IsInline", a.inline.to_string()));
                children.push(leaf("Content", b64(&content)));
                Element {
                    name: "FileAttachment".into(),
                    children,
                    ..Element::default()
                }
            })
        })
        .collect();
    (!list.is_empty()).then(|| Element {
        name: "Attachments".into(),
        children: list,
        ..Element::default()
    })
}

/// Builds the message a response object describes.
pub async fn build(ctx: &Context<'_>, el: &Element, kind: Kind) -> Result<Response, ResponseCode> {
    let reference = el
        .child("ReferenceItemId")
        .ok_or(ResponseCode::ErrorSchemaValidation)?;
    let original = open_item(ctx, reference, MailboxAction::Read).await?;
    let raw = stored_body(ctx, original.meta.body_id).await?;
    let msg = crate::message::Message::parse(&raw);
    let s = Summary::of(&msg);
    let me = ctx.own_mailbox().unwrap_or_default().to_string();
    let me_address = ctx
        .ews
        .directory
        .describe_user(ctx.org_id(), &me)
        .ok()
        .and_then(|u| u.base.email)
        .unwrap_or_default();
    let bodies = msg.bodies();
    let original_text = bodies
        .text
        .or(bodies.html)
        .map(|l| l.part.text(msg.raw()))
        .unwrap_or_default();
    let new_body = el.child("NewBodyContent").or_else(|| el.child("Body"));
    let mut body = leaf(
        "Body",
        new_body.map(|b| b.text.clone()).unwrap_or_default() + &quoted(&s, &original_text),
    );
    body.attrs.push(("BodyType".into(), "Text".into()));
    let (to, cc) = default_recipients(kind, &s, &me_address);
    let given = |name: &str| el.child(name).filter(|l| !l.children.is_empty()).cloned();
    let mut children = vec![
        el.child("Subject")
            .filter(|e| !e.text.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| leaf("Subject", subject(kind, &s.subject))),
        body,
        given("ToRecipients").unwrap_or_else(|| mailboxes("ToRecipients", &to)),
        given("CcRecipients").unwrap_or_else(|| mailboxes("CcRecipients", &cc)),
    ];
    children.extend(given("BccRecipients"));
    children.extend(el.child("IsReadReceiptRequested").cloned());
    children.extend(el.child("IsDeliveryReceiptRequested").cloned());
    if kind == Kind::Forward {
        children.extend(forwarded_attachments(&msg));
    }
    if let Some(id) = &s.message_id {
        children.push(leaf("InReplyTo", id.clone()));
        let references = match &s.references {
            Some(r) => format!("{r} {id}"),
            None => id.clone(),
        };
        children.push(leaf("References", references));
    }
    Ok(Response {
        message: Element {
            name: "Message".into(),
            children,
            ..Element::default()
        },
        original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str) -> Addr {
        Addr {
            name: None,
            address: a.into(),
        }
    }

    #[test]
    fn subjects_get_one_prefix() {
        assert_eq!(subject(Kind::Reply, "Hello"), "RE: Hello");
        assert_eq!(subject(Kind::ReplyAll, "re: Hello"), "re: Hello");
        assert_eq!(subject(Kind::Forward, "Hello"), "FW: Hello");
        assert_eq!(subject(Kind::Forward, "RE: Hello"), "FW: RE: Hello");
    }

    #[test]
    fn replies_go_to_the_author_and_to_all_but_me() {
        let s = Summary {
            from: vec![addr("a@x")],
            to: vec![addr("me@x"), addr("b@x")],
            cc: vec![addr("c@x"), addr("ME@x")],
            ..Summary::default()
        };
        assert_eq!(default_recipients(Kind::Reply, &s, "me@x").0, [addr("a@x")]);
        let (to, cc) = default_recipients(Kind::ReplyAll, &s, "me@x");
        assert_eq!(to, [addr("a@x"), addr("b@x")]);
        assert_eq!(cc, [addr("c@x")]);
        let with_reply_to = Summary {
            reply_to: vec![addr("list@x")],
            ..s
        };
        assert_eq!(
            default_recipients(Kind::Reply, &with_reply_to, "me@x").0,
            [addr("list@x")]
        );
        assert!(
            default_recipients(Kind::Forward, &with_reply_to, "me@x")
                .0
                .is_empty()
        );
    }
}

//! A stored message as an EWS `t:Message`: its properties, derived from the store's
//! metadata (flags, dates, size, ids) and from the message itself (through
//! `message`), written in schema order for the shape a request asks.
//!
//! Flags are the IMAP flags of the same message: `\Seen` is IsRead, `\Flagged` the
//! follow-up Flag (and MAPI 0x1090), `\Draft` IsDraft, and every keyword that is not
//! an IMAP system keyword is a Category (categories that are not IMAP atoms are
//! stored escaped, see [`category_to_keyword`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::attachment_ids::attachment_ids;
use super::ids::EwsId;
use super::ops::shape::{Base, BodyType, Extended, Shape};
use super::props::{self, ItemProps};
use super::xml::Xml;
use crate::message::{Address, Message, PartPath, mailboxes};
use crate::store::MessageMeta;

/// `2026-12-07T05:03:20Z`.
pub fn xsd_datetime(secs: i64) -> String {
    let c = crate::clock::civil(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Reads an `xs:dateTime` (`Z`, an offset, or none meaning UTC; fractions ignored).
pub fn parse_xsd_datetime(text: &str) -> Option<i64> {
    let t = text.trim();
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let mut c = clock.split(':');
    let (h, min): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let s: f64 = c.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 {
        return None;
    }
    Some(
        crate::clock::days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s as i64 - offset,
    )
}

fn atom_safe(b: u8) -> bool {
    b.is_ascii_graphic() && !b"(){%*\"\\]&".contains(&b)
}

/// The IMAP keyword that stores an EWS category: the category itself when it is an
/// IMAP atom, else each byte outside the atom set as `&XX`.
pub fn category_to_keyword(category: &str) -> String {
    let mut out = String::new();
    for b in category.bytes() {
        if atom_safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("&{b:02X}"));
        }
    }
    out
}

/// The category an IMAP keyword shows as; `None` for flags that are not
/// categories (system flags and `$`-keywords such as `$Junk` or `$Forwarded`).
pub fn keyword_to_category(keyword: &str) -> Option<String> {
    if keyword.starts_with('\\') || keyword.starts_with('$') || keyword.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    let raw = keyword.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let escaped = raw
            .get(i + 1..i + 3)
            .filter(|_| raw[i] == b'&')
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        if let Some(b) = escaped {
            bytes.push(b);
            i += 3;
            continue;
        }
        bytes.push(raw[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn has_flag(meta: &MessageMeta, flag: &str) -> bool {
    meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// One address as EWS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub name: Option<String>,
    pub address: String,
}

fn addrs(list: &[Address]) -> Vec<Addr> {
    mailboxes(list)
        .map(|m| Addr {
            name: m.decoded_name().filter(|n| !n.trim().is_empty()),
            address: m.address(),
        })
        .collect()
}

/// What EWS reads from a message's header and structure.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub subject: String,
    pub from: Vec<Addr>,
    pub sender: Vec<Addr>,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    pub bcc: Vec<Addr>,
    pub reply_to: Vec<Addr>,
    pub sent: Option<i64>,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub has_attachments: bool,
    pub importance: &'static str,
    pub sensitivity: &'static str,
    pub read_receipt: bool,
}

impl Summary {
    /// Reads a parsed message.
    pub fn of(msg: &Message<'_>) -> Summary {
        let text = |name: &str| {
            msg.field(name)
                .map(|f| f.decoded().trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let importance = match text("Importance").or_else(|| text("X-Priority")).as_deref() {
            Some(v)
                if v.eq_ignore_ascii_case("high") || v.starts_with('1') || v.starts_with('2') =>
            {
                "High"
            }
            Some(v)
                if v.eq_ignore_ascii_case("low") || v.starts_with('4') || v.starts_with('5') =>
            {
                "Low"
            }
            _ => "Normal",
        };
        let sensitivity = match text("Sensitivity")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("personal") => "Personal",
            Some("private") => "Private",
            Some("company-confidential") => "Confidential",
            _ => "Normal",
        };
        Summary {
            subject: text("Subject").unwrap_or_default(),
            from: addrs(&msg.addresses("From")),
            sender: addrs(&msg.addresses("Sender")),
            to: addrs(&msg.addresses("To")),
            cc: addrs(&msg.addresses("Cc")),
            bcc: addrs(&msg.addresses("Bcc")),
            reply_to: addrs(&msg.addresses("Reply-To")),
            sent: msg.date().map(|d| d.utc),
            message_id: text("Message-ID"),
            in_reply_to: text("In-Reply-To"),
            references: text("References"),
            has_attachments: msg.attachments().iter().any(|a| !a.inline),
            importance,
            sensitivity,
            read_receipt: msg.field("Disposition-Notification-To").is_some(),
        }
    }
}

/// One message with what is needed to write it.
pub struct Item<'a> {
    pub meta: &'a MessageMeta,
    pub folder: &'a EwsId,
    /// The stored bytes, when the shape needs them (MIME content or parsing).
    pub raw: Option<&'a [u8]>,
    /// The parsed message, when the shape needs more than its bytes.
    pub message: Option<&'a Message<'a>>,
    pub summary: Option<&'a Summary>,
    /// The properties kept beside the message, when the shape reads any.
    pub props: Option<&'a ItemProps>,
}

/// Whether writing `shape` reads properties kept beside the message.
pub fn needs_props(shape: &Shape) -> bool {
    shape.base == Base::AllProperties || shape.additional.iter().any(props::is_stored)
}

/// Whether writing `shape` needs the stored message (not only store metadata).
pub fn needs_message(shape: &Shape) -> bool {
    shape.include_mime || needs_parse(shape)
}

/// Whether writing `shape` needs the message parsed: MimeContent alone is the
/// stored bytes as they are.
pub fn needs_parse(shape: &Shape) -> bool {
    const META_ONLY: &[&str] = &[
        "item:ItemId",
        "item:ParentFolderId",
        "item:DateTimeReceived",
        "item:Size",
        "item:Categories",
        "item:IsDraft",
        "item:Flag",
        "message:IsRead",
        "item:ItemClass",
    ];
    shape.base != Base::IdOnly
        || shape.additional.iter().any(|p| match p {
            super::ops::shape::Path::Field(f) => {
                f != "item:MimeContent" && !META_ONLY.contains(&f.as_str())
            }
            super::ops::shape::Path::Indexed { .. } => true,
            super::ops::shape::Path::Extended(e) => {
                !matches!(e.tag, Some(0x0E23 | 0x0E07 | 0x1090 | 0x0E08 | 0x0E17))
            }
        })
}

/// The item's ItemId element.
pub fn write_item_id(xml: &mut Xml, meta: &MessageMeta) {
    xml.empty(
        "t:ItemId",
        &[
            ("Id", &EwsId::Item(meta.item_id.clone()).encode()),
            ("ChangeKey", &meta.change_key()),
        ],
    );
}

/// A mailbox always has a Name, as in Exchange: the display name, else the
/// address (clients show and search it).
fn write_mailbox(xml: &mut Xml, a: &Addr) {
    xml.open("t:Mailbox", &[]);
    xml.leaf("t:Name", a.name.as_deref().unwrap_or(&a.address));
    xml.leaf("t:EmailAddress", &a.address)
        .leaf("t:RoutingType", "SMTP")
        .leaf("t:MailboxType", "Mailbox");
    xml.close("t:Mailbox");
}

/// A list of mailboxes under `name` (nothing when empty).
pub fn write_mailboxes(xml: &mut Xml, name: &str, list: &[Addr]) {
    if list.is_empty() {
        return;
    }
    xml.open(name, &[]);
    for a in list {
        write_mailbox(xml, a);
    }
    xml.close(name);
}

fn write_single(xml: &mut Xml, name: &str, list: &[Addr]) {
    if let Some(a) = list.first() {
        xml.open(name, &[]);
        write_mailbox(xml, a);
        xml.close(name);
    }
}

fn display(list: &[Addr]) -> String {
    list.iter()
        .map(|a| a.name.clone().unwrap_or_else(|| a.address.clone()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Crude HTML to text for a Text body of an HTML-only message: tags dropped,
/// block ends as newlines, the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    let mut skip = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let t = tag
                    .trim_start_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if t == "style" || t == "script" {
                    skip = !tag.starts_with('/');
                }
                if matches!(
                    t.as_str(),
                    "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3"
                ) {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) if !skip => out.push(c),
            _ => {}
        }
    }
    let mut text = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    // Exchange's text has CRLF line ends and ends its last line.
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// The Body element: HTML when asked or Best and present, else text.
pub fn write_body(xml: &mut Xml, name: &str, msg: &Message<'_>, kind: BodyType) {
    let bodies = msg.bodies();
    let html = bodies.html.as_ref().map(|l| l.part.text(msg.raw()));
    let text = bodies.text.as_ref().map(|l| l.part.text(msg.raw()));
    let (ty, content) = match (kind, html, text) {
        (BodyType::Html | BodyType::Best, Some(h), _) => ("HTML", h),
        (BodyType::Html, None, Some(t)) => {
            let escaped = t
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            (
                "HTML",
                format!("<html><body><pre>{escaped}</pre></body></html>"),
            )
        }
        (_, _, Some(t)) => ("Text", t),
        (BodyType::Text, Some(h), None) => ("Text", html_to_text(&h)),
        (_, None, None) => ("Text", String::new()),
    };
    xml.leaf_with(
        name,
        &[("BodyType", ty), ("IsTruncated", "false")],
        &content,
    );
}

fn write_attachments(xml: &mut Xml, meta: &MessageMeta, msg: &Message<'_>) {
    write_attachment_list(xml, &meta.item_id, msg, &msg.attachments());
}

/// `t:Attachments` listing `list`, attachments of `msg` (the message of item
/// `item_id`): ids, names, types, sizes.
pub fn write_attachment_list(
    xml: &mut Xml,
    item_id: &str,
    msg: &Message<'_>,
    list: &[crate::message::Attachment],
) {
    if list.is_empty() {
        return;
    }
    let paths: Vec<&PartPath> = list.iter().map(|a| &a.path).collect();
    let ids = attachment_ids(item_id, msg, &paths);
    xml.open("t:Attachments", &[]);
    for (a, id) in list.iter().zip(&ids) {
        let el = if a.content_type == "message/rfc822" {
            "t:ItemAttachment"
        } else {
            "t:FileAttachment"
        };
        xml.open(el, &[]);
        xml.empty("t:AttachmentId", &[("Id", id)]);
        xml.leaf("t:Name", a.file_name.as_deref().unwrap_or("attachment"));
        xml.leaf("t:ContentType", &a.content_type);
        if let Some(cid) = &a.content_id {
            xml.leaf("t:ContentId", cid);
        }
        xml.leaf("t:Size", &a.size.to_string());
        xml.leaf("t:IsInline", if a.inline { "true" } else { "false" });
        xml.close(el);
    }
    xml.close("t:Attachments");
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// MAPI PR_MESSAGE_FLAGS from the IMAP flags (read 1, unmodified 2, unsent 8,
/// has attachments 0x10).
pub fn message_flags(meta: &MessageMeta, has_attachments: bool) -> u32 {
    let mut f = 0;
    if has_flag(meta, "\\Seen") {
        f |= 1;
    }
    if has_flag(meta, "\\Draft") {
        f |= 8;
    } else {
        f |= 2;
    }
    if has_attachments {
        f |= 0x10;
    }
    f
}

fn extended_value(e: &Extended, item: &Item<'_>) -> Option<String> {
    let meta = item.meta;
    match e.tag? {
        0x0E23 => Some(meta.uid.to_string()),
        0x0E07 => {
            Some(message_flags(meta, item.summary.is_some_and(|s| s.has_attachments)).to_string())
        }
        0x1090 => Some(props::flag_status(item.props, has_flag(meta, "\\Flagged")).to_string()),
        0x0E08 => Some(meta.size.to_string()),
        0x0E17 => Some("0".to_string()),
        0x1081 => {
            if has_flag(meta, "$Forwarded") {
                Some("104".into())
            } else if has_flag(meta, "\\Answered") {
                Some("102".into())
            } else {
                None
            }
        }
        0x0E06 => Some(xsd_datetime(meta.internal_date.div_euclid(1000))),
        0x007D => item.message.map(|m| {
            let header = m.root().header.clone();
            String::from_utf8_lossy(m.raw().get(header).unwrap_or_default()).into_owned()
        }),
        _ => None,
    }
}

/// Writes one message in `shape`; `find` leaves out what FindItem never returns
/// (bodies, MIME, attachment details).
pub fn write_message(xml: &mut Xml, item: &Item<'_>, shape: &Shape, find: bool) {
    let meta = item.meta;
    let s = item.summary;
    let m = item.message;
    xml.open("t:Message", &[]);
    let mime = shape.include_mime || shape.names("item:MimeContent");
    if let (false, true, Some(raw)) = (find, mime, item.raw) {
        xml.base64_leaf("t:MimeContent", &[("CharacterSet", "UTF-8")], raw);
    }
    write_item_id(xml, meta);
    if shape.wants("item:ParentFolderId", true) {
        xml.empty("t:ParentFolderId", &[("Id", &item.folder.encode())]);
    }
    if shape.wants("item:ItemClass", true) {
        xml.leaf("t:ItemClass", "IPM.Note");
    }
    if let (true, Some(s)) = (shape.wants("item:Subject", true), s) {
        // FindItem returns the first 255 characters of a text property, as
        // Exchange does; GetItem all of it.
        let subject = match (find, s.subject.char_indices().nth(255)) {
            (true, Some((cut, _))) => &s.subject[..cut],
            _ => &s.subject,
        };
        xml.leaf("t:Subject", subject);
    }
    let stored = |uri: &str| item.props.and_then(|p| p.field_text(uri));
    if shape.wants("item:Sensitivity", true) {
        match (stored("item:Sensitivity"), s) {
            (Some(v), _) => {
                xml.leaf("t:Sensitivity", &v);
            }
            (None, Some(s)) => {
                xml.leaf("t:Sensitivity", s.sensitivity);
            }
            (None, None) => {}
        }
    }
    if let (false, true, Some(m)) = (find, shape.wants("item:Body", true), m) {
        write_body(xml, "t:Body", m, shape.body_type);
    }
    if let (false, true, Some(m)) = (find, shape.wants("item:Attachments", true), m) {
        write_attachments(xml, meta, m);
    }
    if shape.wants("item:DateTimeReceived", true) {
        xml.leaf(
            "t:DateTimeReceived",
            &xsd_datetime(meta.internal_date.div_euclid(1000)),
        );
    }
    if shape.wants("item:Size", true) {
        xml.leaf("t:Size", &meta.size.to_string());
    }
    if shape.wants("item:Categories", true) {
        let cats: Vec<String> = meta
            .flags
            .iter()
            .filter_map(|f| keyword_to_category(f))
            .collect();
        if !cats.is_empty() {
            xml.open("t:Categories", &[]);
            for c in cats {
                xml.leaf("t:String", &c);
            }
            xml.close("t:Categories");
        }
    }
    if let (true, Some(s)) = (shape.wants("item:Importance", true), s) {
        xml.leaf("t:Importance", s.importance);
    }
    if let (true, Some(v)) = (
        shape.wants("item:InReplyTo", true),
        s.and_then(|s| s.in_reply_to.as_ref()),
    ) {
        xml.leaf("t:InReplyTo", v);
    }
    let draft = has_flag(meta, "\\Draft");
    if shape.wants("item:IsSubmitted", true) {
        xml.leaf("t:IsSubmitted", "false");
    }
    if shape.wants("item:IsDraft", true) {
        xml.leaf("t:IsDraft", bool_text(draft));
    }
    if shape.wants("item:IsFromMe", true) {
        xml.leaf("t:IsFromMe", "false");
    }
    if shape.wants("item:IsResend", true) {
        xml.leaf("t:IsResend", "false");
    }
    if shape.wants("item:IsUnmodified", true) {
        xml.leaf("t:IsUnmodified", bool_text(!draft));
    }
    if let (false, true, Some(m)) = (find, shape.wants("item:InternetMessageHeaders", false), m) {
        xml.open("t:InternetMessageHeaders", &[]);
        for f in m.fields() {
            let name = String::from_utf8_lossy(f.name);
            xml.leaf_with(
                "t:InternetMessageHeader",
                &[("HeaderName", &name)],
                &f.decoded(),
            );
        }
        xml.close("t:InternetMessageHeaders");
    }
    if let (true, Some(t)) = (
        shape.wants("item:DateTimeSent", true),
        s.and_then(|s| s.sent),
    ) {
        xml.leaf("t:DateTimeSent", &xsd_datetime(t));
    }
    if shape.wants("item:DateTimeCreated", true) {
        xml.leaf(
            "t:DateTimeCreated",
            &xsd_datetime(meta.internal_date.div_euclid(1000)),
        );
    }
    if let (true, Some(due)) = (
        shape.wants("item:ReminderDueBy", false),
        stored("item:ReminderDueBy"),
    ) {
        xml.leaf("t:ReminderDueBy", &due);
    }
    if shape.wants("item:ReminderIsSet", false) {
        let set = stored("item:ReminderIsSet");
        xml.leaf("t:ReminderIsSet", set.as_deref().unwrap_or("false"));
    }
    if shape.wants("item:ReminderMinutesBeforeStart", false) {
        let minutes = stored("item:ReminderMinutesBeforeStart");
        xml.leaf(
            "t:ReminderMinutesBeforeStart",
            minutes.as_deref().unwrap_or("0"),
        );
    }
    if let (true, Some(s)) = (shape.wants("item:DisplayCc", true), s) {
        xml.leaf("t:DisplayCc", &display(&s.cc));
    }
    if let (true, Some(s)) = (shape.wants("item:DisplayTo", true), s) {
        xml.leaf("t:DisplayTo", &display(&s.to));
    }
    if let (true, Some(s)) = (shape.wants("item:HasAttachments", true), s) {
        xml.leaf("t:HasAttachments", bool_text(s.has_attachments));
    }
    for e in shape.extended() {
        let value = match extended_value(e, item) {
            Some(v) => props::Value {
                kind: e.kind.clone(),
                values: vec![v],
            },
            None => match item.props.and_then(|p| p.extended(e)) {
                Some(v) => v,
                None => continue,
            },
        };
        let attrs = e.attrs();
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        xml.open("t:ExtendedProperty", &[]);
        xml.empty("t:ExtendedFieldURI", &attrs);
        if value.is_array() {
            xml.open("t:Values", &[]);
            for v in &value.values {
                xml.leaf("t:Value", v);
            }
            xml.close("t:Values");
        } else {
            xml.leaf("t:Value", value.values.first().map_or("", String::as_str));
        }
        xml.close("t:ExtendedProperty");
    }
    if shape.wants("item:Culture", false) {
        let culture = stored("item:Culture");
        xml.leaf("t:Culture", culture.as_deref().unwrap_or("en-US"));
    }
    if shape.wants("item:EffectiveRights", true) {
        write_effective_rights(xml);
    }
    if shape.wants("item:LastModifiedTime", true) {
        xml.leaf(
            "t:LastModifiedTime",
            &xsd_datetime(meta.internal_date.div_euclid(1000)),
        );
    }
    if shape.wants("item:IsAssociated", false) {
        xml.leaf("t:IsAssociated", "false");
    }
    if shape.wants("item:ConversationId", false) {
        let conv = s.map(conversation_id).unwrap_or_default();
        xml.empty("t:ConversationId", &[("Id", &conv)]);
    }
    if let (false, true, Some(m)) = (find, shape.wants("item:UniqueBody", false), m) {
        write_body(xml, "t:UniqueBody", m, shape.body_type);
    }
    if shape.wants("item:Flag", false) {
        let status = if has_flag(meta, "\\Flagged") {
            "Flagged"
        } else {
            "NotFlagged"
        };
        xml.open("t:Flag", &[])
            .leaf("t:FlagStatus", status)
            .close("t:Flag");
    }
    if let (false, true, Some(m)) = (find, shape.wants("item:TextBody", false), m) {
        write_body(xml, "t:TextBody", m, BodyType::Text);
    }
    if let Some(s) = s {
        if shape.wants("message:Sender", true) {
            write_single(
                xml,
                "t:Sender",
                if s.sender.is_empty() {
                    &s.from
                } else {
                    &s.sender
                },
            );
        }
        if shape.wants("message:ToRecipients", false) {
            write_mailboxes(xml, "t:ToRecipients", &s.to);
        }
        if shape.wants("message:CcRecipients", false) {
            write_mailboxes(xml, "t:CcRecipients", &s.cc);
        }
        if shape.wants("message:BccRecipients", false) {
            write_mailboxes(xml, "t:BccRecipients", &s.bcc);
        }
        if shape.wants("message:IsReadReceiptRequested", true) {
            let asked = stored("message:IsReadReceiptRequested");
            xml.leaf(
                "t:IsReadReceiptRequested",
                asked.as_deref().unwrap_or(bool_text(s.read_receipt)),
            );
        }
        if shape.wants("message:IsDeliveryReceiptRequested", true) {
            let asked = stored("message:IsDeliveryReceiptRequested");
            xml.leaf(
                "t:IsDeliveryReceiptRequested",
                asked.as_deref().unwrap_or("false"),
            );
        }
        if shape.wants("message:ConversationTopic", true) {
            xml.leaf("t:ConversationTopic", conversation_topic(&s.subject));
        }
        if shape.wants("message:From", true) {
            write_single(xml, "t:From", &s.from);
        }
        if let (true, Some(id)) = (
            shape.wants("message:InternetMessageId", true),
            &s.message_id,
        ) {
            xml.leaf("t:InternetMessageId", id);
        }
    }
    if shape.wants("message:IsRead", true) {
        xml.leaf("t:IsRead", bool_text(has_flag(meta, "\\Seen")));
    }
    if let Some(s) = s {
        if shape.wants("message:IsResponseRequested", false) {
            let asked = stored("message:IsResponseRequested");
            xml.leaf("t:IsResponseRequested", asked.as_deref().unwrap_or("false"));
        }
        if let (true, Some(r)) = (shape.wants("message:References", true), &s.references) {
            xml.leaf("t:References", r);
        }
        if shape.wants("message:ReplyTo", false) {
            write_mailboxes(xml, "t:ReplyTo", &s.reply_to);
        }
    }
    xml.close("t:Message");
}

/// `EffectiveRights` of what the caller reached: the rights decision already
/// allowed it, and a READ_ONLY role's writes are refused when tried.
pub fn write_effective_rights(xml: &mut Xml) {
    xml.open("t:EffectiveRights", &[]);
    for right in [
        "CreateAssociated",
        "CreateContents",
        "CreateHierarchy",
        "Delete",
        "Modify",
        "Read",
    ] {
        xml.leaf(&format!("t:{right}"), "true");
    }
    xml.leaf("t:ViewPrivateItems", "true");
    xml.close("t:EffectiveRights");
}

/// The subject without reply and forward prefixes.
pub fn conversation_topic(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fw:", "fwd:", "aw:", "sv:", "wg:"]
            .iter()
            .find(|p| lower.starts_with(*p));
        match cut {
            Some(p) => s = s[p.len()..].trim_start(),
            None => return s,
        }
    }
}

/// A stable conversation id from the topic (EWS ConversationId is opaque).
fn conversation_id(s: &Summary) -> String {
    let topic = conversation_topic(&s.subject).to_lowercase();
    STANDARD.encode(crate::store::change_key(&topic, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_round_trip_through_keywords() {
        for c in ["Work", "red category", "Zürich", "a&b", "100%"] {
            let k = category_to_keyword(c);
            assert!(k.bytes().all(atom_safe) || k.contains('&'), "{k}");
            assert!(!k.contains(' '));
            assert_eq!(keyword_to_category(&k).as_deref(), Some(c));
        }
        assert_eq!(keyword_to_category("\\Seen"), None);
        assert_eq!(keyword_to_category("$Junk"), None);
    }

    #[test]
    fn datetimes_round_trip() {
        assert_eq!(xsd_datetime(0), "1970-01-01T00:00:00Z");
        let t = 1_796_000_000;
        assert_eq!(parse_xsd_datetime(&xsd_datetime(t)), Some(t));
        assert_eq!(
            parse_xsd_datetime("2026-12-07T06:00:00+01:00"),
            parse_xsd_datetime("2026-12-07T05:00:00Z")
        );
        assert_eq!(
            parse_xsd_datetime("2026-12-07T05:00:00.123Z"),
            parse_xsd_datetime("2026-12-07T05:00:00Z")
        );
        for bad in ["", "2026-13-01T00:00:00Z", "yesterday", "2026-12-07"] {
            assert_eq!(parse_xsd_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn html_becomes_text_with_crlf_line_ends() {
        assert_eq!(
            html_to_text("<html><body>Hello HTML</body></html>"),
            "Hello HTML\r\n"
        );
        assert_eq!(html_to_text("a<br>b &amp; c\n"), "a\r\nb & c\r\n");
        assert_eq!(html_to_text(""), "");
    }

    #[test]
    fn topic_strips_prefixes() {
        assert_eq!(conversation_topic("Re: Fwd: RE: hello"), "hello");
        assert_eq!(conversation_topic("Return"), "Return");
    }
}

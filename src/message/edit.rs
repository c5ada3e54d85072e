//! Editing a message's MIME structure as bytes (EWS CreateAttachment and
//! DeleteAttachment): adding body parts and removing one, leaving every other
//! byte as it was, so the parts that stay keep their content and, where they can,
//! their part numbers.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::mime::{Children, Part, parse, resolve};

/// A new attachment part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewPart {
    /// A file.
    File {
        /// Its file name (Content-Disposition `filename`, Content-Type `name`).
        name: String,
        /// `type/subtype`; anything else is sent as application/octet-stream.
        content_type: String,
        /// Content-ID, for inline images an HTML body refers to.
        content_id: Option<String>,
        /// Shown in the body rather than listed.
        inline: bool,
        /// The octets, stored base64-encoded.
        content: Vec<u8>,
    },
    /// A part of another message, header and body as they were (a rebuilt draft
    /// keeps its attachments).
    Verbatim(Vec<u8>),
    /// An attached message (`message/rfc822`).
    Message {
        /// Its file name.
        name: String,
        /// The RFC 5322 message.
        raw: Vec<u8>,
    },
}

/// A header parameter, quoted, or RFC 2231-encoded when it is not plain ASCII
/// (or holds a quote or backslash).
fn param(name: &str, value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        return format!("{name}=\"{value}\"");
    }
    let mut out = format!("{name}*=utf-8''");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A header field value with line breaks removed (they would end the field).
fn one_line(v: &str) -> String {
    v.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

impl NewPart {
    /// The part's header and body, without the CRLF that precedes the next
    /// delimiter. A new part gets an `X-Attachment-Id` (as Thunderbird and Gmail
    /// write one): two attachments with the same name and content are then still
    /// two parts with bytes of their own.
    pub fn render(&self) -> Vec<u8> {
        let id = format!("X-Attachment-Id: {}\r\n", uuid::Uuid::new_v4().simple());
        match self {
            NewPart::Verbatim(_) => self.render_part(),
            _ => [id.into_bytes(), self.render_part()].concat(),
        }
    }

    fn render_part(&self) -> Vec<u8> {
        match self {
            NewPart::File {
                name,
                content_type,
                content_id,
                inline,
                content,
            } => {
                let ct = if content_type.contains('/') {
                    one_line(content_type)
                } else {
                    "application/octet-stream".to_string()
                };
                let name = one_line(name);
                let mut head = format!(
                    "Content-Type: {ct}; {}\r\nContent-Disposition: {}; {}\r\nContent-Transfer-Encoding: base64\r\n",
                    param("name", &name),
                    if *inline { "inline" } else { "attachment" },
                    param("filename", &name),
                );
                if let Some(cid) = content_id {
                    head.push_str(&format!("Content-ID: <{}>\r\n", one_line(cid)));
                }
                head.push_str("\r\n");
                let encoded = STANDARD.encode(content);
                let lines: Vec<&str> = encoded
                    .as_bytes()
                    .chunks(76)
                    .map(|c| std::str::from_utf8(c).unwrap_or(""))
                    .collect();
                let mut out = head.into_bytes();
                out.extend_from_slice(lines.join("\r\n").as_bytes());
                out
            }
            NewPart::Verbatim(bytes) => bytes.strip_suffix(b"\r\n").unwrap_or(bytes).to_vec(),
            NewPart::Message { name, raw } => {
                let head = format!(
                    "Content-Type: message/rfc822\r\nContent-Disposition: attachment; {}\r\n\r\n",
                    param("filename", &one_line(name)),
                );
                let body = raw.strip_suffix(b"\r\n").unwrap_or(raw);
                [head.as_bytes(), body].concat()
            }
        }
    }
}

/// A boundary that occurs in none of `texts` (random: an attached message made
/// here has boundaries of its own, which a fixed one would repeat).
fn fresh_boundary(texts: &[&[u8]]) -> String {
    loop {
        let b = format!("=_mailgate_{}", uuid::Uuid::new_v4().simple());
        if texts
            .iter()
            .all(|t| memchr::memmem::find(t, b.as_bytes()).is_none())
        {
            return b;
        }
    }
}

/// Whether a header line starts field `name` (case-insensitive, then a colon).
fn is_field(line: &[u8], name: &str) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && line[name.len()..].trim_ascii_start().first() == Some(&b':')
}

/// The attachments of `raw` as parts to add elsewhere, byte for byte.
pub fn attachment_parts(raw: &[u8]) -> Vec<NewPart> {
    let msg = super::Message::parse(raw);
    msg.attachments()
        .iter()
        .filter_map(|a| {
            let part = msg.part(&a.path.0)?;
            Some(NewPart::Verbatim(
                raw.get(part.header.start..part.body.end)?.to_vec(),
            ))
        })
        .collect()
}

/// `raw` with `parts` added as attachments: inserted before the end of a
/// multipart/mixed message (the existing parts keep their numbers), else the
/// message becomes multipart/mixed with its old content as the first part.
pub fn add_parts(raw: &[u8], parts: &[NewPart]) -> Vec<u8> {
    let root = parse(raw);
    let rendered: Vec<Vec<u8>> = parts.iter().map(NewPart::render).collect();
    let clash = |b: &str| {
        rendered
            .iter()
            .any(|p| memchr::memmem::find(p, b.as_bytes()).is_some())
    };
    if let (true, Children::Multi(children), Some(boundary)) = (
        root.content_type.is("multipart", "mixed"),
        &root.children,
        root.content_type.param("boundary").filter(|b| !clash(b)),
    ) {
        let at = children.last().map_or(root.body.start, |c| c.body.end);
        let mut out = raw[..at].to_vec();
        for p in &rendered {
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&raw[at..]);
        return out;
    }
    let mut texts: Vec<&[u8]> = rendered.iter().map(Vec::as_slice).collect();
    texts.push(raw);
    let boundary = fresh_boundary(&texts);
    // The message's own header stays at the top, but for its content fields,
    // which describe the old content and go with it into the first part.
    let content_fields = [
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    ];
    let header = &raw[root.header.clone()];
    let mut top = Vec::new();
    let mut inner = Vec::new();
    let mut to_inner = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            continue;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            to_inner = content_fields.iter().any(|f| is_field(line, f));
            if is_field(line, "mime-version") {
                continue;
            }
        }
        if to_inner {
            inner.extend_from_slice(line);
        } else {
            top.extend_from_slice(line);
        }
    }
    let mut out = top;
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&inner);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[root.body.clone()]);
    for p in &rendered {
        out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// `raw` without the part at `path`, when it is one of several parts of a
/// multipart (the only part of a multipart, a message's own body or a part
/// inside an attached message cannot be removed this way: `None`).
pub fn remove_part(raw: &[u8], path: &[NonZeroU32]) -> Option<Vec<u8>> {
    let root = parse(raw);
    let (last, parent_path) = path.split_last()?;
    let parent: &Part = if parent_path.is_empty() {
        &root
    } else {
        resolve(&root, parent_path)?
    };
    let Children::Multi(children) = &parent.children else {
        return None;
    };
    let k = last.get() as usize - 1;
    if children.len() < 2 || k >= children.len() {
        return None;
    }
    // From the end of the previous part's body (where the delimiter before this
    // part starts) to the end of this one's; the first part goes with the
    // delimiter after it instead.
    let cut = if k > 0 {
        children[k - 1].body.end..children[k].body.end
    } else {
        children[0].header.start..children[1].header.start
    };
    let mut out = raw[..cut.start].to_vec();
    out.extend_from_slice(&raw[cut.end..]);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::message::Message;

    /// A plain-text file attachment (also for `ews::attachment_ids`' tests).
    pub(crate) fn file(name: &str, content: &[u8]) -> NewPart {
        NewPart::File {
            name: name.into(),
            content_type: "text/plain".into(),
            content_id: None,
            inline: false,
            content: content.to_vec(),
        }
    }

    fn names(raw: &[u8]) -> Vec<String> {
        Message::parse(raw)
            .attachments()
            .into_iter()
            .map(|a| a.file_name.unwrap_or_default())
            .collect()
    }

    const PLAIN: &[u8] = b"From: a@x\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo\r\n";

    #[test]
    fn a_single_part_message_becomes_mixed_with_its_body_kept() {
        let out = add_parts(
            PLAIN,
            &[file("a.txt", b"A"), file("Zürich \"x\".txt", b"B")],
        );
        let msg = Message::parse(&out);
        assert_eq!(names(&out), ["a.txt", "Zürich \"x\".txt"]);
        let text = msg.bodies().text.map(|t| t.part.text(msg.raw())).unwrap();
        assert_eq!(text.trim_end(), "héllo");
        assert_eq!(
            msg.field("Subject").map(|f| f.decoded()).as_deref(),
            Some("s")
        );
        let a = &msg.attachments()[0];
        let part = msg.part(&a.path.0).unwrap();
        assert_eq!(part.decoded(msg.raw()).unwrap(), b"A");
    }

    #[test]
    fn adding_to_mixed_keeps_part_numbers_and_removing_restores_the_bytes() {
        let once = add_parts(PLAIN, &[file("a.txt", b"A")]);
        let first = Message::parse(&once).attachments()[0].path.clone();
        let twice = add_parts(&once, &[file("b.txt", &[7u8; 200])]);
        let msg = Message::parse(&twice);
        assert_eq!(msg.attachments()[0].path, first);
        assert_eq!(names(&twice), ["a.txt", "b.txt"]);
        let second = msg.attachments()[1].path.clone();
        assert_eq!(remove_part(&twice, &second.0).unwrap(), once);
        let without_a = remove_part(&twice, &first.0).unwrap();
        assert_eq!(names(&without_a), ["b.txt"]);
        // The body is part 1: removing it leaves the attachments.
        let body = [NonZeroU32::MIN];
        assert_eq!(
            names(&remove_part(&twice, &body).unwrap()),
            ["a.txt", "b.txt"]
        );
    }

    #[test]
    fn attachments_move_verbatim_to_a_rebuilt_message() {
        let with = add_parts(PLAIN, &[file("a.txt", b"A"), file("b.txt", b"B")]);
        let parts = attachment_parts(&with);
        assert_eq!(parts.len(), 2);
        let rebuilt = add_parts(b"Subject: new\r\n\r\nnew body\r\n", &parts);
        assert_eq!(names(&rebuilt), ["a.txt", "b.txt"]);
        let msg = Message::parse(&rebuilt);
        let b = &msg.attachments()[1];
        assert_eq!(
            msg.part(&b.path.0).unwrap().decoded(msg.raw()).unwrap(),
            b"B"
        );
    }

    #[test]
    fn a_message_made_here_nests_in_another() {
        let inner = add_parts(PLAIN, &[file("deep.txt", b"D")]);
        let outer = add_parts(
            PLAIN,
            &[NewPart::Message {
                name: "m".into(),
                raw: inner.clone(),
            }],
        );
        let msg = Message::parse(&outer);
        let a = &msg.attachments()[0];
        let part = msg.part(&a.path.0).unwrap();
        assert_eq!(
            &outer[part.body.clone()],
            inner.strip_suffix(b"\r\n").unwrap()
        );
        assert_eq!(names(&msg.raw()[part.body.clone()]), ["deep.txt"]);
    }

    #[test]
    fn attached_messages_and_refusals() {
        let out = add_parts(
            PLAIN,
            &[NewPart::Message {
                name: "fwd".into(),
                raw: b"Subject: inner\r\n\r\nbody\r\n".to_vec(),
            }],
        );
        let msg = Message::parse(&out);
        let a = &msg.attachments()[0];
        assert_eq!(a.content_type, "message/rfc822");
        assert_eq!(
            remove_part(PLAIN, &[NonZeroU32::MIN]),
            None,
            "not multipart"
        );
        let two = NonZeroU32::new(2).unwrap();
        assert_eq!(
            remove_part(&out, &[two, two]),
            None,
            "inside an attached message"
        );
        assert_eq!(remove_part(&out, &[NonZeroU32::new(9).unwrap()]), None);
    }
}

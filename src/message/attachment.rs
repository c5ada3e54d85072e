//! Which parts are the message's body and which are its attachments, as a mail
//! client (and EWS Body/Attachments) sees them: in a multipart/alternative the last
//! alternative of each kind (text/plain, text/html) wins; in any other multipart
//! the body is found in the first part; every other leaf, every encapsulated
//! message and every part marked `Content-Disposition: attachment` is an
//! attachment.

use std::num::NonZeroU32;

use super::decode::{rfc2047, rfc2231};
use super::header::field;
use super::mime::{Children, Part, PartPath, split_params};

/// A part found in the tree together with its part path.
#[derive(Debug, Clone)]
pub struct Located<'p> {
    /// Its part path (`1.2`).
    pub path: PartPath,
    /// The part itself.
    pub part: &'p Part,
}

/// The parts a client shows as the message's body.
#[derive(Debug, Default)]
pub struct Bodies<'p> {
    /// The text/plain body, if any.
    pub text: Option<Located<'p>>,
    /// The text/html body, if any.
    pub html: Option<Located<'p>>,
}

/// One attachment, with what EWS lists about it without reading its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Where it is (the EWS attachment id is built from it).
    pub path: PartPath,
    /// Content-Disposition `filename` or else Content-Type `name`, RFC 2231 and
    /// RFC 2047 decoded.
    pub file_name: Option<String>,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Content-ID without its angle brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition: inline` (shown in the body, e.g. an embedded image).
    pub inline: bool,
    /// Octets after removing the transfer encoding (the encoded size when the
    /// encoding is unknown).
    pub size: usize,
}

/// The text and HTML bodies of the message whose root part is `root`.
pub fn bodies<'p>(raw: &[u8], root: &'p Part) -> Bodies<'p> {
    let mut out = Bodies::default();
    let path = if matches!(root.children, Children::Multi(_)) {
        vec![]
    } else {
        vec![NonZeroU32::MIN]
    };
    find_bodies(raw, root, path, &mut out);
    out
}

fn find_bodies<'p>(raw: &[u8], part: &'p Part, path: Vec<NonZeroU32>, out: &mut Bodies<'p>) {
    match &part.children {
        Children::Multi(parts) if part.content_type.is("multipart", "alternative") => {
            for (i, p) in parts.iter().enumerate() {
                let mut alternative = Bodies::default();
                find_bodies(raw, p, child(&path, i), &mut alternative);
                if alternative.text.is_some() {
                    out.text = alternative.text;
                }
                if alternative.html.is_some() {
                    out.html = alternative.html;
                }
            }
        }
        Children::Multi(parts) => {
            if let Some(first) = parts.first() {
                find_bodies(raw, first, child(&path, 0), out);
            }
        }
        Children::Message(_) => {}
        Children::Leaf => {
            if disposition(raw, part).0 == "attachment" {
                return;
            }
            let found = Some(Located {
                path: PartPath(path),
                part,
            });
            if part.content_type.is("text", "plain") {
                out.text = found;
            } else if part.content_type.is("text", "html") {
                out.html = found;
            }
        }
    }
}

/// The path of child `i` (0-based) of the multipart at `path`.
fn child(path: &[NonZeroU32], i: usize) -> Vec<NonZeroU32> {
    let n = u32::try_from(i + 1).ok().and_then(NonZeroU32::new);
    let mut p = path.to_vec();
    p.push(n.unwrap_or(NonZeroU32::MAX));
    p
}

/// The attachments of the message whose root part is `root`, in tree order.
pub fn attachments(raw: &[u8], root: &Part) -> Vec<Attachment> {
    let bodies = bodies(raw, root);
    let is_body = |p: &Part| {
        [&bodies.text, &bodies.html]
            .into_iter()
            .flatten()
            .any(|b| std::ptr::eq(b.part, p))
    };
    let mut out = Vec::new();
    let path = if matches!(root.children, Children::Multi(_)) {
        vec![]
    } else {
        vec![NonZeroU32::MIN]
    };
    collect(raw, root, path, false, &is_body, &mut out);
    out
}

fn collect(
    raw: &[u8],
    part: &Part,
    path: Vec<NonZeroU32>,
    in_alternative: bool,
    is_body: &dyn Fn(&Part) -> bool,
    out: &mut Vec<Attachment>,
) {
    if is_body(part) {
        return;
    }
    let (disposition, params) = disposition(raw, part);
    let attached = disposition == "attachment";
    // A multipart is opened unless it is itself attached; the root multipart
    // (path "") is the message and always opened.
    if let Children::Multi(parts) = &part.children
        && (!attached || path.is_empty())
    {
        let alternative = part.content_type.is("multipart", "alternative");
        for (i, p) in parts.iter().enumerate() {
            collect(raw, p, child(&path, i), alternative, is_body, out);
        }
        return;
    }
    let ct = &part.content_type;
    // A losing alternative is another rendering of the body, not an attachment.
    if in_alternative
        && !attached
        && matches!(part.children, Children::Leaf)
        && (ct.is("text", "plain") || ct.is("text", "html"))
    {
        return;
    }
    let param = |list: &[(String, String)], name: &str| {
        let get = |n: &str| {
            list.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        get(&format!("{name}*"))
            .map(rfc2231)
            .or_else(|| get(name).map(|v| rfc2047(v.as_bytes())))
    };
    let file_name = param(&params, "filename").or_else(|| param(&ct.params, "name"));
    let content_id = field(&part.fields(raw), "content-id")
        .map(|f| {
            let v = f.decoded();
            let v = v.trim();
            let v = v.strip_prefix('<').unwrap_or(v);
            v.strip_suffix('>').unwrap_or(v).trim().to_string()
        })
        .filter(|v| !v.is_empty());
    out.push(Attachment {
        path: PartPath(path),
        file_name: file_name.filter(|n| !n.is_empty()),
        content_type: format!("{}/{}", ct.kind, ct.subtype).to_ascii_lowercase(),
        content_id,
        inline: disposition == "inline",
        size: part
            .decoded(raw)
            .map_or(part.body.len(), |decoded| decoded.len()),
    });
}

/// The Content-Disposition type in lower case (empty when absent) and its
/// parameters.
fn disposition(raw: &[u8], part: &Part) -> (String, Vec<(String, String)>) {
    field(&part.fields(raw), "content-disposition").map_or_else(Default::default, |f| {
        let (kind, params) = split_params(&String::from_utf8_lossy(&f.unfolded()));
        (kind.to_ascii_lowercase(), params)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;

    fn crlf(s: &str) -> Vec<u8> {
        s.replace('\n', "\r\n").into_bytes()
    }

    fn path(b: &Option<Located<'_>>) -> Option<String> {
        b.as_ref().map(|l| l.path.to_string())
    }

    const MIXED: &str = "Content-Type: multipart/mixed; boundary=o

--o
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain

plain one
--a
Content-Type: text/plain

plain two
--a
Content-Type: multipart/related; boundary=r

--r
Content-Type: text/html

<img src=cid:logo>
--r
Content-Type: image/png
Content-ID: <logo@x>
Content-Disposition: inline
Content-Transfer-Encoding: base64

iVBORw==
--r--
--a
Content-Type: text/calendar; method=REQUEST

BEGIN:VCALENDAR
--a--
--o
Content-Type: application/pdf; name=\"=?utf-8?q?men=C3=BC?=.pdf\"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--o
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC; filename*1=\" rates.txt\"

abc
--o
Content-Type: text/plain
Content-Disposition: attachment

attached text
--o
Content-Type: message/rfc822

Subject: fwd

inner
--o--
";

    #[test]
    fn last_alternative_of_each_kind_is_the_body() {
        let raw = crlf(MIXED);
        let root = parse(&raw);
        let b = bodies(&raw, &root);
        assert_eq!(path(&b.text).as_deref(), Some("1.2"));
        assert_eq!(path(&b.html).as_deref(), Some("1.3.1"));
        assert_eq!(b.text.unwrap().part.text(&raw), "plain two");
    }

    #[test]
    fn attachments_with_names_ids_and_sizes() {
        let raw = crlf(MIXED);
        let got = attachments(&raw, &parse(&raw));
        let show: Vec<_> = got
            .iter()
            .map(|a| {
                (
                    a.path.to_string(),
                    a.file_name.clone(),
                    a.content_type.as_str(),
                    a.content_id.clone(),
                    a.inline,
                    a.size,
                )
            })
            .collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            show,
            vec![
                ("1.3.2".into(), None, "image/png", s("logo@x"), true, 4),
                ("1.4".into(), None, "text/calendar", None, false, 15),
                ("2".into(), s("menü.pdf"), "application/pdf", None, false, 9),
                (
                    "3".into(),
                    s("€ rates.txt"),
                    "application/octet-stream",
                    None,
                    false,
                    3
                ),
                ("4".into(), None, "text/plain", None, false, 13),
                ("5".into(), None, "message/rfc822", None, false, 21),
            ]
        );
    }

    #[test]
    fn single_part_messages() {
        let raw = crlf("Subject: x\n\nhello\n");
        let root = parse(&raw);
        assert_eq!(path(&bodies(&raw, &root).text).as_deref(), Some("1"));
        assert!(attachments(&raw, &root).is_empty());
        let raw = crlf("Content-Type: text/html\n\n<p>hi</p>\n");
        let root = parse(&raw);
        let b = bodies(&raw, &root);
        assert_eq!((path(&b.text), path(&b.html).as_deref()), (None, Some("1")));
        let raw = crlf("Content-Type: application/pdf; name=a.pdf\n\n%PDF\n");
        let root = parse(&raw);
        let b = bodies(&raw, &root);
        assert!(b.text.is_none() && b.html.is_none());
        let got = attachments(&raw, &root);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path.to_string(), "1");
        assert_eq!(got[0].file_name.as_deref(), Some("a.pdf"));
        // An attached text body is no body.
        let raw = crlf("Content-Disposition: attachment; filename=a.txt\n\ntext\n");
        let root = parse(&raw);
        assert!(bodies(&raw, &root).text.is_none());
        assert_eq!(
            attachments(&raw, &root)[0].file_name.as_deref(),
            Some("a.txt")
        );
    }

    #[test]
    fn mixed_body_is_in_the_first_part() {
        let raw = crlf(
            "Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: image/gif\n\nGIF\n--m\n\nsecond text\n--m--\n",
        );
        let root = parse(&raw);
        let b = bodies(&raw, &root);
        assert!(b.text.is_none() && b.html.is_none());
        let paths: Vec<String> = attachments(&raw, &root)
            .iter()
            .map(|a| a.path.to_string())
            .collect();
        assert_eq!(paths, ["1", "2"]);
    }

    #[test]
    fn an_attached_root_multipart_is_still_opened() {
        // Found by the property test: the message itself is never its attachment.
        let raw = crlf(
            "Content-Disposition: attachment\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: image/gif\n\nGIF\n--x--\n",
        );
        let paths: Vec<String> = attachments(&raw, &parse(&raw))
            .iter()
            .map(|a| a.path.to_string())
            .collect();
        assert_eq!(paths, ["1"]);
    }
}

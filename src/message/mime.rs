//! The MIME part tree over the raw bytes: byte ranges of every header and body,
//! without decoding anything. IMAP's sizes, line counts and sections and EWS's
//! MimeContent are defined on the encoded octets, so offsets must be exact; a decoding
//! parser would do work the FETCH path never needs. Tolerant of any input: every byte
//! string is a message. Also the parameter syntax of Content-Type and
//! Content-Disposition (quoting, RFC 2231 continuations).

use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::str::FromStr;

use memchr::memmem;

use super::decode::{UnknownEncoding, charset_text, transfer_decode};
use super::header::{Field, field, fields, unfold};

/// How deep multiparts and encapsulated messages may nest before the rest is
/// treated as an opaque leaf: bounds recursion on hostile input and keeps the
/// cached JSON within serde_json's nesting limit (128). Real mail stays far below.
const MAX_DEPTH: usize = 20;

/// One MIME entity, a message or a body part: where its header and body lie in
/// the raw message, so every protocol can slice, measure or decode it.
#[derive(Debug)]
pub struct Part {
    /// The header block, including the blank line that ends it (if any).
    pub header: Range<usize>,
    /// The body octets; for a part of a multipart, the CRLF before the next
    /// delimiter belongs to the delimiter, not to the body (RFC 2046 5.1.1).
    pub body: Range<usize>,
    /// Its Content-Type, or the default its place implies.
    pub content_type: ContentType,
    /// What its body holds.
    pub children: Children,
}

impl Part {
    /// The header fields of this part within `raw`, the message it was parsed from.
    pub fn fields<'m>(&self, raw: &'m [u8]) -> Vec<Field<'m>> {
        fields(&raw[self.header.clone()])
    }

    /// Its Content-Transfer-Encoding value, unfolded; `None` when absent.
    pub fn transfer_encoding(&self, raw: &[u8]) -> Option<Vec<u8>> {
        field(&self.fields(raw), "content-transfer-encoding").map(|f| unfold(f.value))
    }

    /// The body with its transfer encoding removed (IMAP BINARY, EWS attachment
    /// content and sizes).
    pub fn decoded(&self, raw: &[u8]) -> Result<Vec<u8>, UnknownEncoding> {
        transfer_decode(
            self.transfer_encoding(raw).as_deref(),
            &raw[self.body.clone()],
        )
    }

    /// The body as text: transfer encoding removed (an unknown one is read as is)
    /// and its charset decoded to UTF-8.
    pub fn text(&self, raw: &[u8]) -> String {
        let body = &raw[self.body.clone()];
        let decoded = self.decoded(raw).unwrap_or_else(|_| body.to_vec());
        charset_text(&decoded, self.content_type.param("charset"))
    }
}

/// What is inside a part's body.
#[derive(Debug)]
pub enum Children {
    /// Content, not further structure.
    Leaf,
    /// The parts of a multipart, never empty.
    Multi(Vec<Part>),
    /// A message/rfc822 body: the encapsulated message.
    Message(Box<Part>),
}

/// A parsed Content-Type (or the RFC 2045/2046 default).
#[derive(Debug, Clone)]
pub struct ContentType {
    /// The top-level media type as written (`text`, `Multipart`, ...).
    pub kind: String,
    /// The subtype as written.
    pub subtype: String,
    /// Parameters as written, quotes removed.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    fn default_for(in_digest: bool) -> ContentType {
        let (kind, subtype) = if in_digest {
            ("message", "rfc822")
        } else {
            ("text", "plain")
        };
        ContentType {
            kind: kind.into(),
            subtype: subtype.into(),
            params: vec![],
        }
    }

    /// Case-insensitive type/subtype test.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// A parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `raw` as a message.
pub fn parse(raw: &[u8]) -> Part {
    entity(raw, 0..raw.len(), false, 0)
}

/// Parses the entity occupying `range` of `raw`.
fn entity(raw: &[u8], range: Range<usize>, in_digest: bool, depth: usize) -> Part {
    let header_end = header_end(&raw[range.clone()]) + range.start;
    let header = range.start..header_end;
    let body = header_end..range.end;
    let flds = fields(&raw[header.clone()]);
    let mut content_type = field(&flds, "content-type")
        .and_then(|f| parse_content_type(&unfold(f.value)))
        .unwrap_or_else(|| ContentType::default_for(in_digest));
    let mut children = Children::Leaf;
    if depth < MAX_DEPTH {
        if content_type.kind.eq_ignore_ascii_case("multipart") {
            match content_type.param("boundary").filter(|b| !b.is_empty()) {
                Some(boundary) => {
                    let digest = content_type.subtype.eq_ignore_ascii_case("digest");
                    let parts = split_multipart(raw, body.clone(), boundary.as_bytes())
                        .into_iter()
                        .map(|r| entity(raw, r, digest, depth + 1))
                        .collect::<Vec<_>>();
                    children = Children::Multi(if parts.is_empty() {
                        // No delimiter at all: one empty part keeps the tree valid.
                        vec![entity(raw, body.end..body.end, digest, depth + 1)]
                    } else {
                        parts
                    });
                }
                // A multipart without a boundary cannot be split: plain text.
                None => content_type = ContentType::default_for(false),
            }
        } else if content_type.is("message", "rfc822") {
            children = Children::Message(Box::new(entity(raw, body.clone(), false, depth + 1)));
        }
    } else if content_type.kind.eq_ignore_ascii_case("multipart") {
        content_type = ContentType::default_for(false);
    }
    Part {
        header,
        body,
        content_type,
        children,
    }
}

/// Offset just past the blank line ending the header block, or the end of the
/// input when there is none (then everything is header).
fn header_end(s: &[u8]) -> usize {
    if s.starts_with(b"\r\n") {
        return 2;
    }
    if s.starts_with(b"\n") {
        return 1;
    }
    let mut pos = 0;
    while let Some(i) = memchr::memchr(b'\n', &s[pos..]) {
        let next = pos + i + 1;
        if s[next..].starts_with(b"\r\n") {
            return next + 2;
        }
        if s[next..].starts_with(b"\n") {
            return next + 1;
        }
        pos = next;
    }
    s.len()
}

/// The part ranges of a multipart body: between delimiter lines `--boundary`,
/// up to the close delimiter or the end of the body.
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delim);
    let s = &raw[body.clone()];
    let mut parts = Vec::new();
    let mut current: Option<usize> = None; // start of the current part
    let mut search = 0;
    while let Some(i) = finder.find(&s[search..]) {
        let at = search + i;
        search = at + 1;
        if at != 0 && s[at - 1] != b'\n' {
            continue;
        }
        let after = &s[at + delim.len()..];
        let close = after.starts_with(b"--");
        let rest = if close { &after[2..] } else { after };
        if !matches!(rest.first(), None | Some(b'\r' | b'\n' | b' ' | b'\t')) {
            continue;
        }
        if let Some(start) = current.take() {
            // The line break before the delimiter belongs to it.
            let mut end = at;
            if end > start && s[end - 1] == b'\n' {
                end -= 1;
                if end > start && s[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push(body.start + start..body.start + end.max(start));
        }
        if close {
            return parts;
        }
        let line_end = memchr::memchr(b'\n', &s[at..]).map_or(s.len(), |j| at + j + 1);
        current = Some(line_end);
        search = line_end.max(search);
    }
    if let Some(start) = current {
        parts.push(body.start + start..body.end);
    }
    parts
}

/// Parses `type/subtype; name=value; ...`; `None` when there is no usable type.
pub fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let value = String::from_utf8_lossy(value);
    let (head, params) = split_params(&value);
    let (kind, subtype) = head.split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() || kind.contains(char::is_whitespace) {
        return None;
    }
    Some(ContentType {
        kind: kind.to_string(),
        subtype: subtype.to_string(),
        params,
    })
}

/// Splits `value; a=b; c="d"` into the leading token and its parameters.
pub fn split_params(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for ch in value.chars() {
        if escaped {
            cur.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => {
                cur.push(ch);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ';' if !quoted => pieces.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    pieces.push(cur);
    let head = pieces.remove(0).trim().to_string();
    let params = pieces
        .iter()
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let n = n.trim();
            if n.is_empty() {
                return None;
            }
            Some((n.to_string(), unquote(v.trim())))
        })
        .collect();
    (head, merge_continuations(params))
}

/// Joins RFC 2231 continuations (`name*0`, `name*1*`, ...) into one parameter, as
/// Dovecot does: `name` when plain, `name*` (value still `charset'lang'%XX`)
/// when the first segment is extended. Other parameters pass through unchanged.
fn merge_continuations(params: Vec<(String, String)>) -> Vec<(String, String)> {
    /// (base name, segment number, extended) of a continuation key.
    fn segment(key: &str) -> Option<(&str, u32, bool)> {
        let (key, extended) = match key.strip_suffix('*') {
            Some(k) => (k, true),
            None => (key, false),
        };
        let (base, n) = key.rsplit_once('*')?;
        let n = n.parse().ok()?;
        Some((base, n, extended))
    }
    if !params.iter().any(|(k, _)| segment(k).is_some()) {
        return params;
    }
    /// Segments of one continued parameter: number, extended, value.
    type Segments = Vec<(u32, bool, String)>;
    let mut out: Vec<(String, String)> = Vec::new();
    // Base name, its slot in `out`, its segments.
    let mut merged: Vec<(String, usize, Segments)> = Vec::new();
    for (k, v) in params {
        match segment(&k) {
            Some((base, n, ext)) => {
                match merged.iter_mut().find(|m| m.0.eq_ignore_ascii_case(base)) {
                    Some(m) => m.2.push((n, ext, v)),
                    None => {
                        merged.push((base.to_string(), out.len(), vec![(n, ext, v)]));
                        out.push((String::new(), String::new()));
                    }
                }
            }
            None => out.push((k, v)),
        }
    }
    for (base, at, mut segs) in merged {
        segs.sort_by_key(|s| s.0);
        let extended = segs.first().is_some_and(|s| s.1);
        let key = if extended { format!("{base}*") } else { base };
        let value: String = segs.into_iter().map(|s| s.2).collect();
        out[at] = (key, value);
    }
    out
}

/// Removes surrounding quotes and backslash escapes.
fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"') else {
        return v.to_string();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Resolves a part path to a part (RFC 9051 6.4.5, the numbering IMAP and EWS
/// attachment ids share): part 1 of a non-multipart message is its body; numbers
/// after a message/rfc822 part count inside the encapsulated message.
pub fn resolve<'e>(root: &'e Part, path: &[NonZeroU32]) -> Option<&'e Part> {
    let (first, rest) = path.split_first()?;
    let mut cur = in_message(root, first.get())?;
    for n in rest {
        cur = match &cur.children {
            Children::Multi(parts) => parts.get(n.get() as usize - 1)?,
            Children::Message(m) => in_message(m, n.get())?,
            Children::Leaf => return None,
        };
    }
    Some(cur)
}

/// Part `n` of a message: its n-th part if multipart, else itself for n = 1.
fn in_message(msg: &Part, n: u32) -> Option<&Part> {
    match &msg.children {
        Children::Multi(parts) => parts.get(n as usize - 1),
        _ if n == 1 => Some(msg),
        _ => None,
    }
}

/// A part's number path (`1`, `1.2`, ...), as IMAP sections and EWS attachment
/// ids name parts; [`resolve`] finds the part it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartPath(pub Vec<NonZeroU32>);

impl fmt::Display for PartPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// Why a string is not a part path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a part path (numbers from 1 joined by dots): {0:?}")]
pub struct BadPartPath(pub String);

impl FromStr for PartPath {
    type Err = BadPartPath;

    fn from_str(s: &str) -> Result<PartPath, BadPartPath> {
        s.split('.')
            .map(|n| {
                n.parse::<NonZeroU32>()
                    .ok()
                    .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect::<Option<Vec<_>>>()
            .map(PartPath)
            .ok_or_else(|| BadPartPath(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_body_split_with_either_line_ending() {
        let e = parse(b"A: 1\r\nB: 2\r\n\r\nbody");
        assert_eq!((e.header.clone(), e.body.clone()), (0..14, 14..18));
        let e = parse(b"A: 1\nB: 2\n\nbody");
        assert_eq!((e.header, e.body), (0..11, 11..15));
        let e = parse(b"A: 1\r\n");
        assert_eq!((e.header, e.body), (0..6, 6..6));
        let e = parse(b"\r\nbody");
        assert_eq!((e.header, e.body), (0..2, 2..6));
    }

    #[test]
    fn multipart_parts_exclude_the_crlf_before_delimiters() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre\r\n--b\r\n\r\none\r\n--bb\r\n--b \r\nContent-Type: text/html\r\n\r\n<p>\r\n--b--\r\nepilogue";
        let e = parse(raw);
        let Children::Multi(parts) = &e.children else {
            panic!("{e:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(&raw[parts[0].body.clone()], b"one\r\n--bb");
        assert_eq!(&raw[parts[1].body.clone()], b"<p>");
        assert_eq!(parts[1].content_type.subtype, "html");
    }

    #[test]
    fn part_paths_print_and_parse() {
        let p: PartPath = "1.2.10".parse().unwrap();
        assert_eq!(p.to_string(), "1.2.10");
        assert_eq!(p.0.len(), 3);
        for bad in ["", "0", "1..2", "1.a", "+1", "1.", " 1"] {
            assert!(bad.parse::<PartPath>().is_err(), "{bad:?}");
        }
        assert_eq!(PartPath(vec![]).to_string(), "");
    }

    #[test]
    fn part_paths_resolve_through_messages() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n--b--\r\n";
        let root = parse(raw);
        let body = |p: &str| {
            let path: PartPath = p.parse().unwrap();
            resolve(&root, &path.0)
                .map(|e| String::from_utf8_lossy(&raw[e.body.clone()]).into_owned())
        };
        assert_eq!(body("1").as_deref(), Some("one"));
        assert_eq!(body("2.1").as_deref(), Some("inner"));
        assert_eq!(body("3"), None);
        assert_eq!(body("1.1"), None);
        let plain = parse(b"Subject: x\r\n\r\nbody");
        assert!(resolve(&plain, &"1".parse::<PartPath>().unwrap().0).is_some());
        assert!(resolve(&plain, &[]).is_none());
    }

    #[test]
    fn content_type_parameters() {
        let ct =
            parse_content_type(b"Text/Plain ; charset=\"utf-8\";format=flowed; x=\"a;b\\\"c\"")
                .unwrap();
        assert_eq!((ct.kind.as_str(), ct.subtype.as_str()), ("Text", "Plain"));
        assert_eq!(
            ct.params,
            vec![
                ("charset".to_string(), "utf-8".to_string()),
                ("format".to_string(), "flowed".to_string()),
                ("x".to_string(), "a;b\"c".to_string())
            ]
        );
        assert!(parse_content_type(b"garbage").is_none());
        let ct = parse_content_type(
            b"application/pdf; name*1=\" menu.pdf\"; a=b; name*0=\"The\"; title*0*=utf-8''%E2%82; title*1*=%AC",
        )
        .unwrap();
        assert_eq!(
            ct.params,
            vec![
                ("name".to_string(), "The menu.pdf".to_string()),
                ("a".to_string(), "b".to_string()),
                ("title*".to_string(), "utf-8''%E2%82%AC".to_string())
            ]
        );
    }
}

//! Mailbox names: IMAP names of the store's folders, which folders IMAP shows, and
//! LIST pattern matching (`*` and `%`, RFC 9051 6.3.9).

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

use crate::store::Folder;

/// The hierarchy delimiter; the store's own.
pub const DELIMITER: char = '/';

/// The name a command gave, as the store spells it (INBOX in any case is INBOX).
/// Names arrive as UTF-8 (UTF8=ACCEPT and modern clients); `None` if not UTF-8.
pub fn from_mailbox(m: &Mailbox<'_>) -> Option<String> {
    match m {
        Mailbox::Inbox => Some("INBOX".into()),
        Mailbox::Other(o) => {
            let s = std::str::from_utf8(o.as_ref()).ok()?;
            let s = s.trim_end_matches(DELIMITER);
            if s.eq_ignore_ascii_case("INBOX") {
                Some("INBOX".into())
            } else if let Some(rest) = s
                .get(..6)
                .filter(|p| p.eq_ignore_ascii_case("INBOX/"))
                .map(|_| &s[6..])
            {
                Some(format!("INBOX/{rest}"))
            } else {
                Some(s.to_string())
            }
        }
    }
}

/// The pattern of a LIST command as a string.
pub fn from_list_mailbox(m: &ListMailbox<'_>) -> String {
    match m {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}

const MB64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// A name in modified UTF-7 (RFC 3501 5.1.3), for clients that did not enable
/// UTF8=ACCEPT: non-ASCII runs become `&` + base64 of UTF-16 + `-`, `&` is `&-`.
pub fn to_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(MB64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` if it is not valid modified UTF-7, which
/// includes every non-canonical spelling (RFC 3501 5.1.3: printable ASCII encoded,
/// as in `&AGE-` for `a`, two encoded runs side by side, padding bits set): each
/// name has exactly one spelling, or two clients could create two folders that
/// look alike.
pub fn from_mutf7(name: &str) -> Option<String> {
    let decoded = decode_mutf7(name)?;
    (to_mutf7(&decoded) == name).then_some(decoded)
}

fn decode_mutf7(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut units = Vec::new();
            let mut bytes = Vec::new();
            for ch in encoded.bytes() {
                let v = MB64.iter().position(|&b| b == ch)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            for pair in bytes.chunks(2) {
                if pair.len() == 2 {
                    units.push(u16::from_be_bytes([pair[0], pair[1]]));
                }
            }
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The namespace prefix of other users' mailboxes (RFC 2342), kept free of
/// personal folders.
pub const OTHER_USERS: &str = "Other Users";

/// Whether a name is acceptable for CREATE/RENAME: not empty, no empty levels, no
/// wildcards or control characters, not in the Other Users namespace.
pub fn valid_new_name(name: &str) -> bool {
    name.split(DELIMITER).next() != Some(OTHER_USERS)
        && !name.is_empty()
        && name.len() <= 512
        && !name.split(DELIMITER).any(|p| p.is_empty())
        && !name.chars().any(|c| c == '*' || c == '%' || c.is_control())
}

/// Mail folders only: calendars, contacts, tasks and notes stay EWS-only.
pub fn is_mail(folder: &Folder) -> bool {
    folder.folder_class.is_empty() || folder.folder_class.starts_with("IPF.Note")
}

/// Case-sensitive wildcard match; `%` does not cross the delimiter. INBOX matches
/// case-insensitively.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != DELIMITER)
                .any(|i| go(&p[1..], &n[i..])),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if go(&p, &n) {
        return true;
    }
    // INBOX is case-insensitive: retry with the pattern's own spelling of it.
    if let Some(rest) = name.strip_prefix("INBOX")
        && pattern.len() >= 5
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        let alt: Vec<char> = format!("{}{rest}", &pattern[..5]).chars().collect();
        return go(&p, &alt);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "Archive/2024"));
        assert!(matches("%", "Archive"));
        assert!(!matches("%", "Archive/2024"));
        assert!(matches("Archive/%", "Archive/2024"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/*", "INBOX/x"));
        assert!(!matches("Sent", "Sent Items"));
        assert!(matches("Sent*", "Sent Items"));
    }

    #[test]
    fn names() {
        assert!(valid_new_name("a/b"));
        assert!(!valid_new_name("a//b"));
        assert!(!valid_new_name("a*"));
        assert!(!valid_new_name(""));
        assert_eq!(to_mutf7("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(to_mutf7("A&B"), "A&-B");
        assert_eq!(to_mutf7("\u{65e5}\u{672c}\u{8a9e}"), "&ZeVnLIqe-");
        assert_eq!(from_mutf7("Entw&APw-rfe").as_deref(), Some("Entw\u{fc}rfe"));
        assert_eq!(
            from_mutf7("&ZeVnLIqe-").as_deref(),
            Some("\u{65e5}\u{672c}\u{8a9e}")
        );
        assert_eq!(from_mutf7("A&-B").as_deref(), Some("A&B"));
        assert_eq!(from_mutf7("bad&"), None);
        // Issue 20.12: non-canonical spellings are refused.
        for bad in ["&AGE-", "&APw-&APw-", "&APx-", "&AGEA-"] {
            assert_eq!(from_mutf7(bad), None, "{bad}");
        }
        assert_eq!(to_mutf7("\u{fc}\u{fc}"), "&APwA,A-");
        assert_eq!(from_mutf7("&APwA,A-").as_deref(), Some("\u{fc}\u{fc}"));
        assert_eq!(from_mutf7("a&-&-").as_deref(), Some("a&&"));
        let m = Mailbox::try_from("inbox").unwrap();
        assert_eq!(from_mailbox(&m).as_deref(), Some("INBOX"));
    }
}

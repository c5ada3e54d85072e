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

/// Whether a name is acceptable for CREATE/RENAME: not empty, no empty levels, no
/// wildcards or control characters.
pub fn valid_new_name(name: &str) -> bool {
    !name.is_empty()
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
        let m = Mailbox::try_from("inbox").unwrap();
        assert_eq!(from_mailbox(&m).as_deref(), Some("INBOX"));
    }
}

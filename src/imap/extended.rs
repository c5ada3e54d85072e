//! The argument forms imap-codec does not parse: ESEARCH `SEARCH RETURN (...)`
//! (RFC 4731) and LIST-EXTENDED selection and return options (RFC 5258, RFC 5819
//! LIST-STATUS, RFC 6154 SPECIAL-USE). They are cut out of the command and kept
//! here; imap-codec parses what remains.

use std::borrow::Cow;

/// Options cut out of a command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extras {
    /// `RETURN (...)` of SEARCH, upper-cased words; `Some(vec![])` for `RETURN ()`.
    pub search_return: Option<Vec<String>>,
    /// LIST selection options (`SUBSCRIBED`, `REMOTE`, `RECURSIVEMATCH`, `SPECIAL-USE`).
    pub list_select: Vec<String>,
    /// LIST return options; `STATUS` is followed by its item names as one entry
    /// `STATUS (MESSAGES UNSEEN)`.
    pub list_return: Vec<String>,
    /// The second and later patterns of `LIST ref (pattern pattern ...)`; the
    /// first stays in the command.
    pub list_patterns: Vec<String>,
    /// The command's sequence set was the SEARCHRES `$` and the saved result is
    /// empty (set by `searchres`, not by `strip`): the command names no message.
    pub saved_set_empty: bool,
    /// The second and later messages of a MULTIAPPEND, each as a single-message
    /// APPEND command (set by `multiappend`, not by `strip`).
    pub more_appends: Vec<Vec<u8>>,
}

impl Extras {
    /// Whether SEARCH asked for its result to be saved (`RETURN (SAVE ...)`).
    pub fn saves(&self) -> bool {
        self.search_return
            .as_ref()
            .is_some_and(|o| o.iter().any(|w| w == "SAVE"))
    }
}

/// Splits a parenthesised option list into words, keeping nested groups whole.
fn words(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in list.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth -= 1;
                cur.push(ch);
            }
            ' ' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur).to_ascii_uppercase());
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur.to_ascii_uppercase());
    }
    // Join `STATUS` with its item list.
    let mut joined = Vec::new();
    let mut it = out.into_iter().peekable();
    while let Some(w) = it.next() {
        if w == "STATUS"
            && let Some(next) = it.peek()
            && next.starts_with('(')
        {
            let items = it.next().unwrap_or_default();
            joined.push(format!("STATUS {items}"));
            continue;
        }
        joined.push(w);
    }
    joined
}

/// Finds the balanced `(...)` group starting at `start` (which must be `(`); returns
/// the index just past its `)`.
fn group_end(s: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, &b) in s.iter().enumerate().skip(start) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'\r' | b'\n' => return None,
            _ => {}
        }
    }
    None
}

/// Cuts the extended options out of a SEARCH or LIST command; other commands pass
/// through untouched.
pub fn strip(msg: &[u8]) -> (Cow<'_, [u8]>, Extras) {
    let mut extras = Extras::default();
    let Some(sp) = msg.iter().position(|&b| b == b' ') else {
        return (Cow::Borrowed(msg), extras);
    };
    let mut pos = sp + 1;
    let upper = |from: usize, len: usize| -> String {
        msg.get(from..from + len)
            .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase())
            .unwrap_or_default()
    };
    if upper(pos, 4) == "UID " {
        pos += 4;
    }
    if upper(pos, 7) == "SEARCH " && upper(pos + 7, 8) == "RETURN (" {
        let open = pos + 14;
        if let Some(end) = group_end(msg, open) {
            let inner = String::from_utf8_lossy(&msg[open + 1..end - 1]).into_owned();
            extras.search_return = Some(words(&inner));
            let skip = if msg.get(end) == Some(&b' ') {
                end + 1
            } else {
                end
            };
            let mut out = msg[..pos + 7].to_vec();
            out.extend_from_slice(&msg[skip..]);
            return (Cow::Owned(out), extras);
        }
    }
    if upper(pos, 6) == "LIST (" && pos == sp + 1 {
        let open = pos + 5;
        if let Some(end) = group_end(msg, open) {
            let inner = String::from_utf8_lossy(&msg[open + 1..end - 1]).into_owned();
            extras.list_select = words(&inner);
            let mut out = msg[..pos + 5].to_vec();
            out.extend_from_slice(msg[end..].strip_prefix(b" ").unwrap_or(&msg[end..]));
            let (out, ret) = strip_list_return(out);
            extras.list_return = ret;
            let (out, patterns) = strip_list_patterns(out, pos + 5);
            extras.list_patterns = patterns;
            return (Cow::Owned(out), extras);
        }
    }
    if upper(pos, 5) == "LIST " && pos == sp + 1 {
        let (out, ret) = strip_list_return(msg.to_vec());
        let (out, patterns) = strip_list_patterns(out, pos + 5);
        if !ret.is_empty() || out.len() != msg.len() || !patterns.is_empty() {
            extras.list_return = ret;
            extras.list_patterns = patterns;
            return (Cow::Owned(out), extras);
        }
    }
    (Cow::Borrowed(msg), extras)
}

/// The end of the quoted string or atom starting at `at`, and its value.
fn token(s: &[u8], at: usize) -> Option<(usize, String)> {
    if s.get(at) == Some(&b'"') {
        let mut value = Vec::new();
        let mut i = at + 1;
        while let Some(&b) = s.get(i) {
            match b {
                b'\\' => {
                    value.push(*s.get(i + 1)?);
                    i += 2;
                }
                b'"' => return Some((i + 1, String::from_utf8_lossy(&value).into_owned())),
                b'\r' | b'\n' => return None,
                _ => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        return None;
    }
    let len = s
        .get(at..)?
        .iter()
        .take_while(|b| !matches!(b, b' ' | b'(' | b')' | b'"' | b'{' | b'\r' | b'\n'))
        .count();
    (len > 0).then(|| {
        (
            at + len,
            String::from_utf8_lossy(&s[at..at + len]).into_owned(),
        )
    })
}

/// Cuts `LIST ref (pattern pattern ...)` (RFC 5258 3) down to its first pattern,
/// which imap-codec then parses; returns the others. `args` is where the
/// reference starts. Commands in another shape (a literal) pass unchanged.
fn strip_list_patterns(msg: Vec<u8>, args: usize) -> (Vec<u8>, Vec<String>) {
    let Some((after_ref, _)) = token(&msg, args) else {
        return (msg, Vec::new());
    };
    let open = after_ref + 1;
    if msg.get(after_ref) != Some(&b' ') || msg.get(open) != Some(&b'(') {
        return (msg, Vec::new());
    }
    let mut patterns = Vec::new();
    let mut first_end = None;
    let mut i = open + 1;
    loop {
        match msg.get(i) {
            Some(b' ') => i += 1,
            Some(b')') => break,
            _ => match token(&msg, i) {
                Some((end, value)) => {
                    first_end.get_or_insert(end);
                    patterns.push(value);
                    i = end;
                }
                None => return (msg, Vec::new()),
            },
        }
    }
    let (Some(first_end), true) = (first_end, matches!(&msg[i + 1..], b"\r\n" | b"")) else {
        return (msg, Vec::new());
    };
    let mut out = msg[..open].to_vec();
    out.extend_from_slice(&msg[open + 1..first_end]);
    out.extend_from_slice(&msg[i + 1..]);
    patterns.remove(0);
    (out, patterns)
}

/// Cuts a trailing ` RETURN (...)` from the last line of a LIST command.
fn strip_list_return(mut msg: Vec<u8>) -> (Vec<u8>, Vec<String>) {
    let line_start = msg[..msg.len().saturating_sub(2)]
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let last = String::from_utf8_lossy(&msg[line_start..]).to_ascii_uppercase();
    let Some(at) = last.rfind(" RETURN (") else {
        return (msg, Vec::new());
    };
    let open = line_start + at + 8;
    let Some(end) = group_end(&msg, open) else {
        return (msg, Vec::new());
    };
    let inner = String::from_utf8_lossy(&msg[open + 1..end - 1]).into_owned();
    let ret = words(&inner);
    msg.drain(line_start + at..end);
    (msg, ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_return() {
        let (m, e) = strip(b"a UID SEARCH RETURN (MIN COUNT) UNSEEN\r\n");
        assert_eq!(&*m, b"a UID SEARCH UNSEEN\r\n");
        assert_eq!(e.search_return, Some(vec!["MIN".into(), "COUNT".into()]));
        let (m, e) = strip(b"a SEARCH RETURN () ALL\r\n");
        assert_eq!(&*m, b"a SEARCH ALL\r\n");
        assert_eq!(e.search_return, Some(vec![]));
        let (m, e) = strip(b"a SEARCH ALL\r\n");
        assert_eq!(&*m, b"a SEARCH ALL\r\n");
        assert_eq!(e, Extras::default());
    }

    #[test]
    fn list_extended() {
        let (m, e) =
            strip(b"a LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n");
        assert_eq!(&*m, b"a LIST \"\" \"*\"\r\n");
        assert_eq!(e.list_select, vec!["SUBSCRIBED".to_string()]);
        assert_eq!(
            e.list_return,
            vec![
                "CHILDREN".to_string(),
                "STATUS (MESSAGES UNSEEN)".to_string()
            ]
        );
        let (m, e) = strip(b"a list \"\" % return (special-use)\r\n");
        assert_eq!(&*m, b"a list \"\" %\r\n");
        assert_eq!(e.list_return, vec!["SPECIAL-USE".to_string()]);
    }

    #[test]
    fn list_with_several_patterns() {
        let (m, e) = strip(b"a LIST \"\" (\"Sent Items\" INBOX* \"a\\\"b\")\r\n");
        assert_eq!(&*m, b"a LIST \"\" \"Sent Items\"\r\n");
        assert_eq!(
            e.list_patterns,
            vec!["INBOX*".to_string(), "a\"b".to_string()]
        );
        let (m, e) = strip(b"a LIST (SUBSCRIBED) x (p%) RETURN (CHILDREN)\r\n");
        assert_eq!(&*m, b"a LIST x p%\r\n");
        assert!(e.list_patterns.is_empty());
        assert_eq!(e.list_select, vec!["SUBSCRIBED".to_string()]);
        // Not a pattern list: unchanged.
        for plain in [
            &b"a LIST \"\" \"(x)\"\r\n"[..],
            b"a LIST \"\" (x\r\n",
            b"a LIST {2}\r\n",
        ] {
            let (m, e) = strip(plain);
            assert_eq!(&*m, plain);
            assert!(e.list_patterns.is_empty());
        }
    }
}

//! Long OR chains in SEARCH, rebalanced so the parser takes them.
//!
//! Clients build a filter on many addresses as `OR FROM a OR FROM b OR FROM c ...`,
//! each OR nested in the one before. imap-codec refuses keys nested deeper than 9, so
//! ten alternatives were a BAD. The chain means the same as a balanced tree of ORs
//! (`OR OR FROM a FROM b OR FROM c FROM d`), whose depth grows with the logarithm of
//! the number of alternatives: 256 fit in imap-codec's limit. A command within the
//! limit is never touched; one this module cannot read is left for imap-codec to
//! refuse. Recursion here is bounded by [`MAX_DEPTH`].

use super::lexer::{Tok, token};

/// The depth imap-codec accepts for one search key.
const CODEC_DEPTH: usize = 9;
/// Deepest nesting this module reads (each level is one stack frame).
const MAX_DEPTH: usize = 512;

/// A parsed search key, by byte ranges of the command.
enum Key {
    /// Copied as it is: a key with its arguments, or a sequence set.
    Verbatim(usize, usize),
    Not(Box<Key>),
    List(Vec<Key>),
    Or(Box<Key>, Box<Key>),
}

impl Key {
    fn depth(&self) -> usize {
        match self {
            Key::Verbatim(..) => 1,
            Key::Not(k) => 1 + k.depth(),
            Key::List(ks) => 1 + ks.iter().map(Key::depth).max().unwrap_or(0),
            Key::Or(a, b) => 1 + a.depth().max(b.depth()),
        }
    }

    fn write(&self, msg: &[u8], out: &mut Vec<u8>) {
        match self {
            Key::Verbatim(s, e) => out.extend_from_slice(&msg[*s..*e]),
            Key::Not(k) => {
                out.extend_from_slice(b"NOT ");
                k.write(msg, out);
            }
            Key::List(ks) => {
                out.push(b'(');
                write_all(ks, msg, out);
                out.push(b')');
            }
            Key::Or(..) => {
                let mut alternatives = Vec::new();
                self.alternatives(&mut alternatives);
                write_balanced(&alternatives, msg, out);
            }
        }
    }

    /// The keys an OR chain chooses between, in order.
    fn alternatives<'k>(&'k self, into: &mut Vec<&'k Key>) {
        match self {
            Key::Or(a, b) => {
                a.alternatives(into);
                b.alternatives(into);
            }
            other => into.push(other),
        }
    }
}

fn write_all(keys: &[Key], msg: &[u8], out: &mut Vec<u8>) {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        k.write(msg, out);
    }
}

fn write_balanced(keys: &[&Key], msg: &[u8], out: &mut Vec<u8>) {
    match keys {
        [] => {}
        [one] => one.write(msg, out),
        _ => {
            let (left, right) = keys.split_at(keys.len().div_ceil(2));
            out.extend_from_slice(b"OR ");
            write_balanced(left, msg, out);
            out.push(b' ');
            write_balanced(right, msg, out);
        }
    }
}

/// Arguments a key takes (`None`: not a key name this module knows).
fn arity(name: &[u8]) -> Option<usize> {
    const NONE: [&str; 14] = [
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
    ];
    const ONE: [&str; 25] = [
        "BCC",
        "BEFORE",
        "BODY",
        "CC",
        "FROM",
        "KEYWORD",
        "LARGER",
        "ON",
        "SENTBEFORE",
        "SENTON",
        "SENTSINCE",
        "SINCE",
        "SMALLER",
        "SUBJECT",
        "TEXT",
        "TO",
        "UID",
        "UNKEYWORD",
        "OLDER",
        "YOUNGER",
        "SAVEDBEFORE",
        "SAVEDON",
        "SAVEDSINCE",
        "EMAILID",
        "THREADID",
    ];
    let name = std::str::from_utf8(name).ok()?;
    let is = |list: &[&str]| list.iter().any(|k| k.eq_ignore_ascii_case(name));
    if is(&NONE) {
        Some(0)
    } else if is(&ONE) {
        Some(1)
    } else if name.eq_ignore_ascii_case("HEADER") {
        Some(2)
    } else if name
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b':' | b',' | b'$'))
    {
        Some(0) // a sequence set
    } else {
        None
    }
}

struct Parser<'m> {
    msg: &'m [u8],
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<(Tok, usize, usize)> {
        let t = token(self.msg, self.pos)?;
        self.pos = t.2;
        Some(t)
    }

    fn key(&mut self, depth: usize) -> Option<Key> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (tok, start, end) = self.next()?;
        match tok {
            Tok::Open => {
                let mut keys = Vec::new();
                loop {
                    match token(self.msg, self.pos)? {
                        (Tok::Close, _, e) => {
                            self.pos = e;
                            return Some(Key::List(keys));
                        }
                        _ => keys.push(self.key(depth + 1)?),
                    }
                }
            }
            Tok::Atom => {
                let name = &self.msg[start..end];
                if name.eq_ignore_ascii_case(b"OR") {
                    let a = self.key(depth + 1)?;
                    let b = self.key(depth + 1)?;
                    return Some(Key::Or(Box::new(a), Box::new(b)));
                }
                if name.eq_ignore_ascii_case(b"NOT") {
                    return Some(Key::Not(Box::new(self.key(depth + 1)?)));
                }
                let args = if name.eq_ignore_ascii_case(b"MODSEQ") {
                    // MODSEQ [entry-name entry-type] value (RFC 7162 3.1.5).
                    match token(self.msg, self.pos)? {
                        (Tok::Str, ..) => 3,
                        _ => 1,
                    }
                } else {
                    arity(name)?
                };
                let mut last = end;
                for _ in 0..args {
                    let (t, _, e) = self.next()?;
                    if matches!(t, Tok::Open | Tok::Close) {
                        return None;
                    }
                    last = e;
                }
                Some(Key::Verbatim(start, last))
            }
            Tok::Close | Tok::Str | Tok::Literal => None,
        }
    }
}

/// The command with its SEARCH keys' OR chains balanced, when some key nests deeper
/// than imap-codec takes; `None` leaves the command as it is.
pub fn balance(msg: &[u8]) -> Option<Vec<u8>> {
    let mut p = Parser { msg, pos: 0 };
    p.next()?; // tag
    let (_, s, e) = p.next()?;
    let mut verb = &msg[s..e];
    if verb.eq_ignore_ascii_case(b"UID") {
        let (_, s, e) = p.next()?;
        verb = &msg[s..e];
    }
    if !verb.eq_ignore_ascii_case(b"SEARCH") {
        return None;
    }
    let head_end = if let Some((Tok::Atom, s, e)) = token(msg, p.pos)
        && msg[s..e].eq_ignore_ascii_case(b"CHARSET")
    {
        p.pos = e;
        p.next()?.2
    } else {
        p.pos
    };
    let mut keys = Vec::new();
    while token(msg, p.pos).is_some() {
        keys.push(p.key(1)?);
    }
    if keys.iter().all(|k| k.depth() <= CODEC_DEPTH) {
        return None;
    }
    let mut out = msg[..head_end].to_vec();
    for k in &keys {
        out.push(b' ');
        k.write(msg, &mut out);
    }
    out.extend_from_slice(&msg[p.pos..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;

    fn chain(n: usize) -> String {
        let mut s = String::new();
        for i in 0..n - 1 {
            s.push_str(&format!("OR FROM u{i}@x.test "));
        }
        s.push_str(&format!("FROM u{}@x.test", n - 1));
        s
    }

    fn parses(cmd: &[u8]) -> bool {
        matches!(CommandCodec::default().decode(cmd), Ok((&[], _)))
    }

    #[test]
    fn short_commands_are_left_alone() {
        assert_eq!(balance(b"a SEARCH OR FROM a FROM b\r\n"), None);
        assert_eq!(balance(b"a FETCH 1 FLAGS\r\n"), None);
        assert_eq!(
            balance(format!("a SEARCH {}\r\n", chain(8)).as_bytes()),
            None
        );
    }

    /// Issue 20.11: ten, a hundred, two hundred and fifty alternatives all parse.
    #[test]
    fn long_chains_become_balanced_and_parse() {
        for n in [10, 100, 250] {
            let cmd = format!(
                "a UID SEARCH CHARSET UTF-8 UNSEEN {} SINCE 1-Jan-2026\r\n",
                chain(n)
            );
            assert!(!parses(cmd.as_bytes()), "imap-codec alone refuses {n}");
            let out = balance(cmd.as_bytes()).expect("rebalanced");
            assert!(parses(&out), "{n}: {}", String::from_utf8_lossy(&out));
            let text = String::from_utf8(out).unwrap();
            for i in 0..n {
                assert!(text.contains(&format!("FROM u{i}@x.test")), "{i}");
            }
            assert_eq!(text.matches("OR ").count(), n - 1);
            assert!(text.starts_with("a UID SEARCH CHARSET UTF-8 UNSEEN OR "));
            assert!(text.ends_with(" SINCE 1-Jan-2026\r\n"));
        }
    }

    #[test]
    fn nested_keys_and_arguments_are_kept() {
        let inner = format!(
            "NOT (HEADER X-Spam yes {} MODSEQ \"/flags/\\\\seen\" all 5 1:*)",
            chain(12)
        );
        let cmd = format!("t SEARCH {inner}\r\n");
        let out = balance(cmd.as_bytes()).expect("rebalanced");
        assert!(parses(&out), "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("NOT (HEADER X-Spam yes OR "), "{text}");
        assert!(
            text.contains("MODSEQ \"/flags/\\\\seen\" all 5 1:*)"),
            "{text}"
        );
    }

    #[test]
    fn what_it_cannot_read_is_left_to_the_parser() {
        assert_eq!(
            balance(format!("a SEARCH FOO {}\r\n", chain(12)).as_bytes()),
            None
        );
        assert_eq!(
            balance(format!("a SEARCH {} (\r\n", chain(12)).as_bytes()),
            None
        );
        let deep = format!("a SEARCH {}1\r\n", "NOT ".repeat(100_000));
        assert_eq!(balance(deep.as_bytes()), None, "bounded recursion");
    }
}

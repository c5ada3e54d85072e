//! Just enough of IMAP's lexical syntax to find argument boundaries before
//! imap-codec parses a command: atoms, parentheses, quoted strings and literals
//! (skipped whole, so nothing inside them is ever taken for syntax).

/// What kind of token `token` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Open,
    Close,
    Atom,
    /// A literal (`{n}`, `{n+}`, `~{n}`) with its data.
    Literal,
    /// A quoted string: never looked into.
    Str,
}

/// The token at or after `pos` (spaces skipped), with its byte range; `None` at the
/// end of the command or on bytes that are no token.
pub fn token(msg: &[u8], mut pos: usize) -> Option<(Tok, usize, usize)> {
    while msg.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let start = pos;
    match *msg.get(pos)? {
        b'\r' | b'\n' => None,
        b'(' => Some((Tok::Open, start, pos + 1)),
        b')' => Some((Tok::Close, start, pos + 1)),
        b'"' => {
            pos += 1;
            loop {
                match *msg.get(pos)? {
                    b'\\' => pos += 2,
                    b'"' => return Some((Tok::Str, start, pos + 1)),
                    b'\r' | b'\n' => return None,
                    _ => pos += 1,
                }
            }
        }
        b'{' | b'~' => {
            let open = if msg[pos] == b'~' { pos + 1 } else { pos };
            if msg.get(open) != Some(&b'{') {
                return atom(msg, start);
            }
            let close = open + msg[open..].iter().position(|&b| b == b'}')?;
            let digits = std::str::from_utf8(&msg[open + 1..close]).ok()?;
            let len: usize = digits.trim_end_matches(['+', '-']).parse().ok()?;
            let data = close + 1 + msg[close + 1..].strip_prefix(b"\r\n").map(|_| 2)?;
            let end = data.checked_add(len)?;
            (end <= msg.len()).then_some((Tok::Literal, start, end))
        }
        _ => atom(msg, start),
    }
}

/// The atom starting at `start` (up to a space, a parenthesis or the line end).
pub fn atom(msg: &[u8], start: usize) -> Option<(Tok, usize, usize)> {
    let len = msg[start..]
        .iter()
        .position(|&b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'))
        .unwrap_or(msg.len() - start);
    (len > 0).then_some((Tok::Atom, start, start + len))
}

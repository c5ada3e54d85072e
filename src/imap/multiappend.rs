//! MULTIAPPEND (RFC 3502): `APPEND mailbox [flags] [date] literal [flags] [date]
//! literal ...`. imap-codec parses an APPEND of one message only, so a command
//! with several is split into one single-message APPEND per message, each parsed
//! by imap-codec as usual; the session stores them together, all or none.

use super::lexer::{Tok, token};

/// Splits an APPEND carrying more than one message into single-message APPENDs
/// (`tag APPEND mailbox spec CRLF` each). `None` for any other command, an APPEND
/// of one message, or one whose shape is not understood (imap-codec then judges it).
pub fn split(msg: &[u8]) -> Option<Vec<Vec<u8>>> {
    let sp = msg.iter().position(|&b| b == b' ')?;
    let (tok, start, end) = token(msg, sp + 1)?;
    if tok != Tok::Atom || !msg[start..end].eq_ignore_ascii_case(b"APPEND") {
        return None;
    }
    // The mailbox: an atom, a quoted string or a literal.
    let (tok, _, mailbox_end) = token(msg, end)?;
    if matches!(tok, Tok::Open | Tok::Close) {
        return None;
    }
    let head = &msg[..mailbox_end];
    let mut parts = Vec::new();
    let mut spec_start = mailbox_end;
    let mut pos = mailbox_end;
    let mut depth = 0usize;
    while let Some((tok, _, end)) = token(msg, pos) {
        pos = end;
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.checked_sub(1)?,
            Tok::Literal if depth == 0 => {
                let mut part = head.to_vec();
                part.extend_from_slice(&msg[spec_start..end]);
                part.extend_from_slice(b"\r\n");
                parts.push(part);
                spec_start = end;
            }
            _ => {}
        }
    }
    let rest = &msg[spec_start..];
    (parts.len() > 1 && (rest == b"\r\n" || rest == b"\n")).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(msg: &str) -> Option<Vec<String>> {
        split(msg.as_bytes()).map(|v| {
            v.into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        })
    }

    #[test]
    fn several_messages_become_several_appends() {
        assert_eq!(
            parts(
                "a APPEND INBOX (\\Seen) {3}\r\nabc (\\Flagged) \"24-Nov-2026 01:02:03 +0000\" {2+}\r\nde {1}\r\n)\r\n"
            ),
            Some(vec![
                "a APPEND INBOX (\\Seen) {3}\r\nabc\r\n".to_string(),
                "a APPEND INBOX (\\Flagged) \"24-Nov-2026 01:02:03 +0000\" {2+}\r\nde\r\n"
                    .to_string(),
                "a APPEND INBOX {1}\r\n)\r\n".to_string(),
            ])
        );
        assert_eq!(
            parts("a append {5}\r\nIN {X (x) {1}\r\n{ ~{2}\r\n\r\n\r\n"),
            Some(vec![
                "a append {5}\r\nIN {X (x) {1}\r\n{\r\n".to_string(),
                "a append {5}\r\nIN {X ~{2}\r\n\r\n\r\n".to_string(),
            ])
        );
    }

    #[test]
    fn everything_else_is_left_to_imap_codec() {
        for m in [
            "a APPEND INBOX {3}\r\nabc\r\n",
            "a APPEND INBOX {3}\r\nabc garbage\r\n",
            "a APPEND INBOX {3}\r\nabc {1}\r\nx trailing\r\n",
            "a NOOP\r\n",
            "a FETCH 1 {3}\r\nabc {1}\r\nx\r\n",
            "a APPEND (INBOX) {1}\r\nx {1}\r\ny\r\n",
            "a APPEND INBOX ((a) {1}\r\nx {1}\r\ny\r\n",
        ] {
            assert_eq!(parts(m), None, "{m}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let _ = split(&input);
        }
    }
}

//! Lenient decoders for transfer encodings, RFC 2047 encoded words, RFC 2231
//! parameter values and charsets (mail-parser's decoders). Real mail breaks every
//! rule, so nothing here fails on bad input: it decodes to something reasonable.
//! The one refusal is a transfer encoding nobody can decode.

use mail_parser::decoders::charsets::map::charset_decoder;

/// Base64 ignoring line breaks and junk characters, stopping at padding.
pub fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045 6.7): `=XX`, soft line breaks; a stray `=` stays.
/// With `underscore_is_space` it is RFC 2047's Q encoding.
pub fn quoted_printable(input: &[u8], underscore_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'=' => {
                let rest = &input[i + 1..];
                if let (Some(h), Some(l)) = (
                    rest.first().and_then(|c| hex(*c)),
                    rest.get(1).and_then(|c| hex(*c)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // Soft line break: "=" then optional whitespace then a line end.
                let ws = rest
                    .iter()
                    .take_while(|c| matches!(c, b' ' | b'\t'))
                    .count();
                let after = &rest[ws..];
                if after.starts_with(b"\r\n") {
                    i += 1 + ws + 2;
                    continue;
                }
                if after.starts_with(b"\n") {
                    i += 1 + ws + 1;
                    continue;
                }
                if after.is_empty() {
                    break;
                }
                out.push(b'=');
            }
            b' ' | b'\t' => {
                let ws = input[i..]
                    .iter()
                    .take_while(|c| matches!(c, b' ' | b'\t'))
                    .count();
                let after = &input[i + ws..];
                // White space at the end of a line was added in transport and
                // is deleted (RFC 2045 6.7, rule 3).
                if !(after.is_empty() || after.starts_with(b"\r\n") || after.starts_with(b"\n")) {
                    out.extend_from_slice(&input[i..i + ws]);
                }
                i += ws;
                continue;
            }
            b'_' if underscore_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// Text in `charset` as UTF-8; unknown charsets are read as UTF-8, lossily.
pub fn charset_text(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| charset_decoder(c.trim().as_bytes())) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A Content-Transfer-Encoding that cannot be removed (`x-uuencode`, `?bogus`):
/// IMAP answers `[UNKNOWN-CTE]`, others fall back to the encoded octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Content-Transfer-Encoding")]
pub struct UnknownEncoding;

/// Removes the transfer encoding named by a Content-Transfer-Encoding value
/// (unfolded; `None` when the field is absent, which means 7bit).
pub fn transfer_decode(cte: Option<&[u8]>, body: &[u8]) -> Result<Vec<u8>, UnknownEncoding> {
    let cte = cte.map(|c| c.to_ascii_lowercase()).unwrap_or_default();
    match cte.as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => Ok(body.to_vec()),
        b"base64" => Ok(base64(body)),
        b"quoted-printable" => Ok(quoted_printable(body, false)),
        _ => Err(UnknownEncoding),
    }
}

/// An RFC 2231 extended parameter value (`charset'language'%XX...`, as a
/// `name*` parameter holds it after continuations are joined) as UTF-8. Without
/// the two quotes the value is percent-decoded as UTF-8.
pub fn rfc2231(value: &str) -> String {
    let (charset, encoded) = match value.split_once('\'') {
        Some((charset, rest)) => match rest.split_once('\'') {
            Some((_language, text)) => (Some(charset), text),
            None => (None, value),
        },
        None => (None, value),
    };
    let bytes = value_bytes(encoded.as_bytes());
    charset_text(&bytes, charset.filter(|c| !c.is_empty()))
}

/// Percent-decodes `%XX`; a `%` not followed by two hex digits stays.
fn value_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|c| hex(*c)),
                s.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words in a header value; whitespace between two
/// adjacent encoded words disappears, as the RFC requires.
pub fn rfc2047(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_ws = String::new();
    let mut last_was_word = false;
    let mut i = 0;
    while i < value.len() {
        if value[i..].starts_with(b"=?")
            && let Some((text, len)) = encoded_word(&value[i..])
        {
            if !last_was_word {
                out.push_str(&pending_ws);
            }
            pending_ws.clear();
            out.push_str(&text);
            last_was_word = true;
            i += len;
            continue;
        }
        // Copy a run up to the next possible encoded word.
        let next = memchr::memmem::find(&value[i + 1..], b"=?").map_or(value.len(), |n| i + 1 + n);
        let run = String::from_utf8_lossy(&value[i..next]);
        if run.chars().all(char::is_whitespace) {
            pending_ws.push_str(&run);
        } else {
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push_str(&run);
            last_was_word = false;
        }
        i = next;
    }
    out.push_str(&pending_ws);
    out
}

/// `=?charset?B|Q?text?=` at the start of `s`: the decoded text and its length.
fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    let body = s.get(2..)?;
    let q1 = memchr::memchr(b'?', body)?;
    let charset = std::str::from_utf8(&body[..q1]).ok()?;
    // RFC 2231 language suffix: charset*lang.
    let charset = charset.split('*').next().unwrap_or(charset);
    let enc = *body.get(q1 + 1)?;
    if body.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let end = memchr::memmem::find(&body[text_start..], b"?=")? + text_start;
    let text = &body[text_start..end];
    if text.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => base64(text),
        b'Q' | b'q' => quoted_printable(text, true),
        _ => return None,
    };
    Some((charset_text(&bytes, Some(charset)), 2 + end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_encodings() {
        assert_eq!(base64(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(base64(b"aGVsbG8"), b"hello");
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nau lait=3D=\nx =zz", false),
            "café au lait=x =zz".as_bytes()
        );
        // Trailing white space goes, also before a soft line break; inner stays.
        assert_eq!(
            quoted_printable(
                b"hello  \r\nbar=\r\n\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar  ",
                false
            ),
            b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar"
        );
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            rfc2047(b"=?UTF-8?B?SMOpbGxv?= =?iso-8859-1?q?_w=F6rld?= !"),
            "Héllo wörld !"
        );
        assert_eq!(rfc2047(b"plain =?x?y?z"), "plain =?x?y?z");
        assert_eq!(rfc2047(b"a =?utf-8?Q?b?= c"), "a b c");
    }

    #[test]
    fn transfer_decoding_names_the_encoding() {
        assert_eq!(transfer_decode(None, b"a=3D"), Ok(b"a=3D".to_vec()));
        assert_eq!(
            transfer_decode(Some(b"BASE64"), b"aGk="),
            Ok(b"hi".to_vec())
        );
        assert_eq!(
            transfer_decode(Some(b"Quoted-Printable"), b"a=3D"),
            Ok(b"a=".to_vec())
        );
        assert_eq!(
            transfer_decode(Some(b"8bit"), b"\xff"),
            Ok(b"\xff".to_vec())
        );
        assert_eq!(
            transfer_decode(Some(b"x-uuencode"), b""),
            Err(UnknownEncoding)
        );
    }

    #[test]
    fn rfc2231_values() {
        assert_eq!(rfc2231("utf-8''%E2%82%AC%20rates.pdf"), "€ rates.pdf");
        assert_eq!(rfc2231("iso-8859-1'en'caf%E9"), "café");
        assert_eq!(rfc2231("''plain"), "plain");
        assert_eq!(rfc2231("no quotes%21 100%"), "no quotes! 100%");
        assert_eq!(rfc2231("x-unknown''a%C3%A9"), "aé");
    }
}

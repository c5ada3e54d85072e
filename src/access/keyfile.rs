//! The token signing keys file (`data_dir/token-keys` by default): one key per line,
//! `KEY_ID HEX_SECRET`, the first line signs new tokens, a second line is still
//! accepted (rotation: `mailgate admin rotate-token-keys`, or add a new first line,
//! keep the old one second, SIGHUP).
//! Generated on first start (mode 0600); every daemon sharing it validates the others' tokens.

use std::path::Path;

use super::{AccessError, TokenKeys};
use crate::secret_file::SecretFileError;

/// Why the token keys file was refused; parse errors name the line.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// A line is not `KEY_ID HEX_SECRET`.
    #[error("line {0}: expected `KEY_ID HEX_SECRET`")]
    Syntax(usize),
    /// A line's secret is not hex.
    #[error("line {0}: the secret is not hex")]
    NotHex(usize),
    /// The file holds no key.
    #[error("no key in the file")]
    Empty,
    /// More than a current and a previous key.
    #[error("at most two keys (current, previous)")]
    TooMany,
    /// The keys parse but are unusable (too short a secret, bad id).
    #[error(transparent)]
    Invalid(#[from] AccessError),
    /// The file could not be read, created or parsed (names the path).
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// Reads the keys, generating a file with one fresh key if it does not exist.
pub fn load(path: &Path) -> Result<TokenKeys, KeyFileError> {
    Ok(crate::secret_file::load_or_create(path, parse, generate)?.0)
}

/// One fresh key and its file text.
fn generate() -> (TokenKeys, String) {
    let keys = TokenKeys::generate(format!("k{}", crate::clock::now_secs()));
    let text = to_text(&keys);
    (keys, text)
}

/// A fresh key as file text: what the first daemon on a shared backend stores.
pub fn generate_text() -> String {
    generate().1
}

/// Rotation: a fresh signing key first, `keys`' current one kept second so
/// tokens it signed stay valid (the previous key before it is dropped, and with
/// it the tokens it signed). Returns the new keys and their file text.
pub fn rotate(keys: &TokenKeys) -> (TokenKeys, String) {
    // Millisecond ids (14 characters, under the 16 allowed), never the current one's.
    let mut ms = crate::clock::now_ms_u64();
    while format!("k{ms}") == keys.current.0 {
        ms += 1;
    }
    let (kid, secret) = &keys.current;
    let next = TokenKeys::generate(format!("k{ms}")).with_previous(kid.clone(), secret.clone());
    let text = to_text(&next);
    (next, text)
}

/// The file text of `keys`: the signing key's line first.
fn to_text(keys: &TokenKeys) -> String {
    std::iter::once(&keys.current)
        .chain(keys.previous.as_ref())
        .map(|(kid, secret)| format!("{kid} {}\n", hex::encode(secret)))
        .collect()
}

/// The keys of file text kept elsewhere than in a file (a shared backend).
pub fn from_text(text: &str) -> Result<TokenKeys, KeyFileError> {
    parse(text)
}

fn parse(text: &str) -> Result<TokenKeys, KeyFileError> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kid, secret) = line
            .split_once(char::is_whitespace)
            .ok_or(KeyFileError::Syntax(n))?;
        let secret = hex::decode(secret.trim()).map_err(|_| KeyFileError::NotHex(n))?;
        keys.push((kid.to_string(), secret));
    }
    let mut it = keys.into_iter();
    let (kid, secret) = it.next().ok_or(KeyFileError::Empty)?;
    let mut out = TokenKeys::new(kid, secret);
    if let Some((kid, secret)) = it.next() {
        out = out.with_previous(kid, secret);
    }
    if it.next().is_some() {
        return Err(KeyFileError::TooMany);
    }
    out.validate()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_then_reloaded_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-keys");
        let first = load(&path).unwrap();
        assert_eq!(load(&path).unwrap().current, first.current);
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("k2 {}\n{old}", "ab".repeat(32))).unwrap();
        let rotated = load(&path).unwrap();
        assert_eq!(rotated.current.0, "k2");
        assert_eq!(rotated.previous.unwrap().0, first.current.0);
    }

    #[test]
    fn generated_text_reads_back_as_one_fresh_key() {
        let keys = from_text(&generate_text()).unwrap();
        assert!(keys.previous.is_none());
        assert_ne!(from_text(&generate_text()).unwrap().current, keys.current);
        assert!(from_text("").is_err());
    }

    #[test]
    fn a_rotation_signs_with_a_new_key_and_keeps_the_current_one_second() {
        let first = from_text(&generate_text()).unwrap();
        let (second, text) = rotate(&first);
        assert_ne!(second.current.0, first.current.0);
        assert_ne!(second.current.1, first.current.1);
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        second.validate().unwrap();
        let read = from_text(&text).unwrap();
        assert_eq!(
            (read.current, read.previous),
            (second.current.clone(), second.previous.clone())
        );
        // A second rotation drops the first key (its tokens die).
        let (third, _) = rotate(&second);
        assert_eq!(third.previous.as_ref(), Some(&second.current));
        assert_ne!(
            third.current.0, second.current.0,
            "ids differ even within one millisecond"
        );
    }

    #[test]
    fn bad_files_are_refused() {
        for bad in [
            "",
            "k1\n",
            "k1 zz\n",
            "k1 00\n",
            "a 0000000000000000000000000000000000000000000000000000000000000000\nb 0000000000000000000000000000000000000000000000000000000000000000\nc 00\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! The token signing keys file (`data_dir/token-keys` by default): one key per line,
//! `KEY_ID HEX_SECRET`, the first line signs new tokens, a second line is still
//! accepted (rotation: add a new first line, keep the old one second, SIGHUP).
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
    let line = format!("{} {}\n", keys.current.0, hex::encode(&keys.current.1));
    (keys, line)
}

/// A fresh key as file text: what the first daemon on a shared backend stores.
pub fn generate_text() -> String {
    generate().1
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

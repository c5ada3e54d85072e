//! The admin access key generated on first start into `data_dir/admin-credentials`
//! (AWS shared-credentials format, profile `mailgate`), so boto3 and the AWS CLI
//! can be pointed at it with `AWS_SHARED_CREDENTIALS_FILE` and `--profile mailgate`.
//! Read again on every start, never regenerated.

use std::path::Path;

use rand::Rng;

use crate::secret_file::SecretFileError;

/// Why the admin credentials file could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file has no usable `[mailgate]` profile.
    #[error("no [{PROFILE}] profile with aws_access_key_id and aws_secret_access_key")]
    NoProfile,
    /// The file could not be read, created or parsed (names the path).
    #[error(transparent)]
    File(#[from] SecretFileError),
}

/// One SigV4 access key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The profile name written to the credentials file.
pub const PROFILE: &str = "mailgate";

/// Reads the key of an existing credentials file (the CLI never creates one).
pub fn load_existing(path: &Path) -> Result<(AccessKey, bool), CredentialsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key = parse(&text).map_err(|e| SecretFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((key, false))
}

/// Loads the generated key, creating it (mode 0600) if the file does not exist.
/// Returns the key and whether it was just created.
pub fn load_or_create(path: &Path) -> Result<(AccessKey, bool), CredentialsError> {
    let create = || {
        let key = generate();
        let text = file_text(&key);
        (key, text)
    };
    Ok(crate::secret_file::load_or_create(path, parse, create)?)
}

/// A fresh key as credentials-file text: what the first daemon on a shared
/// backend stores for all of them.
pub fn generate_text() -> String {
    file_text(&generate())
}

/// The key of credentials-file text kept elsewhere than in a file (a shared backend).
pub fn from_text(text: &str) -> Result<AccessKey, CredentialsError> {
    parse(text)
}

/// Writes `key` (the key the daemons share) to the credentials file if there is
/// none, so the admin CLI on this host finds it. Returns the key the file holds
/// (another one if the file predates the sharing) and whether it was just written.
pub fn write_if_missing(
    path: &Path,
    key: &AccessKey,
) -> Result<(AccessKey, bool), CredentialsError> {
    let create = || (key.clone(), file_text(key));
    Ok(crate::secret_file::load_or_create(path, parse, create)?)
}

fn file_text(key: &AccessKey) -> String {
    format!(
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    )
}

fn generate() -> AccessKey {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let id: String = (0..16)
        .map(|_| UPPER[rng.random_range(0..UPPER.len())] as char)
        .collect();
    let secret: String = (0..40)
        .map(|_| SECRET[rng.random_range(0..SECRET.len())] as char)
        .collect();
    AccessKey {
        access_key_id: format!("MGAK{id}"),
        secret_access_key: secret,
    }
}

/// Reads the `[mailgate]` profile of a shared-credentials file.
fn parse(text: &str) -> Result<AccessKey, CredentialsError> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == format!("[{PROFILE}]");
        } else if in_profile && let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key))
            if !access_key_id.is_empty() && !secret_access_key.is_empty() =>
        {
            Ok(AccessKey {
                access_key_id,
                secret_access_key,
            })
        }
        _ => Err(CredentialsError::NoProfile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first, again);
        assert_eq!(first.access_key_id.len(), 20);
        assert_eq!(first.secret_access_key.len(), 40);
    }

    #[test]
    fn a_shared_key_is_written_once_and_an_existing_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        let shared = from_text(&generate_text()).unwrap();
        assert_eq!(
            write_if_missing(&path, &shared).unwrap(),
            (shared.clone(), true)
        );
        assert_eq!(load_existing(&path).unwrap().0, shared);
        let other = from_text(&generate_text()).unwrap();
        assert_eq!(
            write_if_missing(&path, &other).unwrap(),
            (shared, false),
            "never overwritten: the caller sees the file holds another key"
        );
        assert!(from_text("[default]\n").is_err());
    }

    #[test]
    fn damaged_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-credentials");
        std::fs::write(&path, "[default]\naws_access_key_id = X\n").unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("[mailgate]"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[default]\naws_access_key_id = X\n"
        );
    }
}

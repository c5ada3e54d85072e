//! Secrets generated on first start (the admin access key, the token signing keys):
//! read on every start, created once, owner-only (0600), synced before use, never
//! regenerated over a file that exists but does not parse.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a secret file could not be had; every message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The file exists but its text is not a valid secret.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with its text.
        message: String,
    },
    /// There is no file and a new one could not be created.
    #[error("{}: cannot create: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The new file was created but writing or syncing it failed.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file exists but cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Parses the file at `path`, or, if there is none, creates it from `generate`
/// (the value and its file text). Returns the value and whether it was created.
pub fn load_or_create<T, E: std::fmt::Display>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
    generate: impl FnOnce() -> (T, String),
) -> Result<(T, bool), SecretFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(|v| (v, false))
            .map_err(|e| SecretFileError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (value, text) = generate();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| SecretFileError::Create {
                    path: path.to_path_buf(),
                    source,
                })?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|source| SecretFileError::Write {
                    path: path.to_path_buf(),
                    source,
                })?;
            Ok((value, true))
        }
        Err(source) => Err(SecretFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces the file at `path` with `text` (a rotated secret): written owner-only
/// to a temporary file beside it, synced, renamed over it, the directory synced,
/// so a crash leaves the old secret or the new one, never half of either.
pub fn replace(path: &Path, text: &str) -> Result<(), SecretFileError> {
    let write_error = |source| SecretFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(e));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_replaced_file_holds_the_new_text_owner_only_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "old").unwrap();
        replace(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that does not exist: an error naming the file, nothing written.
        let missing = dir.path().join("no/such/secret");
        let err = replace(&missing, "x").unwrap_err().to_string();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
    }
}

//! Secrets generated on first start (the admin access key, the token signing keys):
//! read on every start, created once, owner-only (0600), synced before use, never
//! regenerated over a file that exists but does not parse.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Parses the file at `path`, or, if there is none, creates it from `generate`
/// (the value and its file text). Returns the value and whether it was created.
pub fn load_or_create<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
    generate: impl FnOnce() -> (T, String),
) -> Result<(T, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(|v| (v, false))
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (value, text) = generate();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
            Ok((value, true))
        }
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}
